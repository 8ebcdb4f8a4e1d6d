//! Reading the operator's workspace from disk into parsed values (the only file I/O of a build
//! besides the catalog): workers.json, bucket confs, disabled.json, and every job directory.

use maand_core::bucket_conf::{parse_bucket_jobs_conf, parse_string_table};
use maand_core::disabled::{parse_disabled, Disabled};
use maand_core::manifest::{is_skipped_dir, parse_manifest, validate_job_files, Manifest};
use maand_core::workers::{parse_workers, WorkerSpec};
use maand_core::{Error, ErrorKind, Result};
use maand_store::catalog::JobFile;
use maand_store::file_modes::mode_of;
use maand_store::paths::BucketPaths;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// One job directory: its manifest, its stored files and its vars.toml.
pub struct JobSource {
    pub manifest: Manifest,
    pub files: Vec<JobFile>,
    pub vars: BTreeMap<String, String>,
}

pub struct Workspace {
    pub workers: Vec<WorkerSpec>,
    pub jobs: BTreeMap<String, JobSource>,
    pub disabled: Disabled,
    pub bucket_conf: BTreeMap<String, String>,
    /// Sections of the active bucket.jobs*.conf, and that file's name (the reservation source).
    pub jobs_conf: BTreeMap<String, BTreeMap<String, String>>,
    pub jobs_conf_name: String,
}

pub fn read_workspace(paths: &BucketPaths, job_config_selector: &str) -> Result<Workspace> {
    let workers = parse_workers(&read_text(&paths.workers_json())?.unwrap_or_else(|| "[]".into()))?;
    let disabled = match read_text(&paths.disabled_json())? {
        Some(text) => parse_disabled(&text)?,
        None => Disabled::none(),
    };
    let bucket_conf = match read_text(&paths.bucket_conf())? {
        Some(text) => parse_string_table("workspace/bucket.conf", &text, ErrorKind::InvalidBucketConf)?,
        None => BTreeMap::new(),
    };
    let jobs_conf_path = paths.bucket_jobs_conf(job_config_selector.trim());
    let jobs_conf_name = file_name(&jobs_conf_path);
    let jobs_conf = match read_text(&jobs_conf_path)? {
        Some(text) => parse_bucket_jobs_conf(&format!("workspace/{jobs_conf_name}"), &text)?,
        None => BTreeMap::new(),
    };
    let mut jobs = BTreeMap::new();
    for name in job_names(&paths.jobs_dir())? {
        jobs.insert(name.clone(), read_job(&paths.jobs_dir().join(&name), &name)?);
    }
    Ok(Workspace { workers, jobs, disabled, bucket_conf, jobs_conf, jobs_conf_name })
}

/// Job directories = subdirectories of workspace/jobs holding a manifest.json, sorted.
pub fn job_names(jobs_dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let entries = match fs::read_dir(jobs_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
        Err(e) => return Err(io_err(jobs_dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io_err(jobs_dir, e))?;
        let path = entry.path();
        if path.is_dir() && path.join("manifest.json").is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

fn read_job(dir: &Path, job: &str) -> Result<JobSource> {
    let manifest_text = read_text(&dir.join("manifest.json"))?.unwrap_or_default();
    let manifest = parse_manifest(job, &manifest_text)?;
    let mut files = Vec::new();
    walk(dir, "", &mut files)?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let paths: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
    validate_job_files(job, &manifest, &paths)?;
    let vars = match read_text(&dir.join("vars.toml"))? {
        Some(text) => parse_string_table(&format!("workspace/jobs/{job}/vars.toml"), &text, ErrorKind::InvalidJobVars)?,
        None => BTreeMap::new(),
    };
    Ok(JobSource { manifest, files, vars })
}

/// Every file and directory below `dir` (relative, '/'-separated), with each file's mode,
/// skipping virtualenvs, node_modules and __pycache__ anywhere. Symlinked files are read through;
/// symlinked directories are not followed.
fn walk(dir: &Path, prefix: &str, out: &mut Vec<JobFile>) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| io_err(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| io_err(&path, e))?;
        if kind.is_dir() {
            if is_skipped_dir(&name) {
                continue;
            }
            out.push(JobFile { path: rel.clone(), content: Vec::new(), isdir: true, mode: None });
            walk(&path, &rel, out)?;
        } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
            let content = fs::read(&path).map_err(|e| io_err(&path, e))?;
            let mode = mode_of(&path).map_err(|e| io_err(&path, e))? & 0o777;
            out.push(JobFile { path: rel, content, isdir: false, mode: Some(mode) });
        }
    }
    Ok(())
}

/// Read a UTF-8 text file; `None` when it does not exist.
pub fn read_text(path: &Path) -> Result<Option<String>> {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| Error::new(ErrorKind::Unexpected, format!("{}: not valid UTF-8 text", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path, e)),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

pub fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::new(ErrorKind::Unexpected, format!("{}: {e}", path.display()))
}
