//! Reading the operator's workspace from disk into parsed values (the only file I/O of a build
//! besides the catalog): workers.json, bucket confs, disabled.json, and every job directory.
//! Text files must be UTF-8 (an error of the file's kind names the file otherwise); what the
//! parsers accept with a warning is collected for the caller to print.

use maand_core::bucket_conf::{parse_bucket_jobs_conf, parse_string_table};
use maand_core::disabled::{parse_disabled, Disabled};
use maand_core::job_links::{link_outside_job, validate_link};
use maand_core::manifest::{is_skipped_dir, parse_manifest, validate_job_files, Manifest};
use maand_core::workers::{parse_workers, WorkerSpec};
use maand_core::{Error, ErrorKind, Result, Warning};
use maand_store::catalog::JobFile;
use maand_store::file_modes::mode_of;
use maand_store::paths::BucketPaths;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

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

/// Read and parse the workspace. Warnings (inputs accepted as the Go maand accepted them) go to
/// `warnings`, also those found before an error.
pub fn read_workspace(
    paths: &BucketPaths,
    job_config_selector: &str,
    warnings: &mut Vec<Warning>,
) -> Result<Workspace> {
    let workers_text = read_text(&paths.workers_json(), "workspace/workers.json", ErrorKind::InvalidWorkerJson)?;
    let workers = parse_workers(&workers_text.unwrap_or_else(|| "[]".into()), warnings)?;
    let disabled = match read_text(&paths.disabled_json(), "workspace/disabled.json", ErrorKind::InvalidDisabledJson)? {
        Some(text) => parse_disabled(&text, warnings)?,
        None => Disabled::none(),
    };
    let bucket_label = "workspace/bucket.conf";
    let bucket_conf = match read_text(&paths.bucket_conf(), bucket_label, ErrorKind::InvalidBucketConf)? {
        Some(text) => parse_string_table(bucket_label, &text, ErrorKind::InvalidBucketConf)?,
        None => BTreeMap::new(),
    };
    let selector = job_config_selector.trim();
    let jobs_conf_path = paths.bucket_jobs_conf(selector);
    let jobs_conf_name = file_name(&jobs_conf_path);
    let jobs_conf_label = format!("workspace/{jobs_conf_name}");
    let jobs_conf = match read_text(&jobs_conf_path, &jobs_conf_label, ErrorKind::InvalidBucketConf)? {
        Some(text) => parse_bucket_jobs_conf(&jobs_conf_label, &text)?,
        None if selector.is_empty() => BTreeMap::new(),
        None => {
            return Err(Error::new(
                ErrorKind::InvalidMaandConf,
                format!(
                    "maand.conf: job_config_selector = {selector:?} selects {jobs_conf_label}, which does not exist \
                     (create it, or set job_config_selector = \"\")"
                ),
            ))
        }
    };
    let mut jobs = BTreeMap::new();
    for name in job_names(&paths.jobs_dir())? {
        jobs.insert(name.clone(), read_job(&paths.jobs_dir().join(&name), &name, warnings)?);
    }
    let hosts = workers.iter().map(|w| w.host.as_str());
    warnings.extend(disabled.unknown_names(jobs.keys().map(String::as_str), hosts));
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

fn read_job(dir: &Path, job: &str, warnings: &mut Vec<Warning>) -> Result<JobSource> {
    let manifest_label = format!("job {job}: manifest.json");
    let manifest_text = read_text(&dir.join("manifest.json"), &manifest_label, ErrorKind::InvalidManifest)?;
    let manifest = parse_manifest(job, &manifest_text.unwrap_or_default(), warnings)?;
    let mut files = walk_job(dir, job)?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let paths: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
    validate_job_files(job, &manifest, &paths)?;
    let vars_label = format!("workspace/jobs/{job}/vars.toml");
    let vars = match read_text(&dir.join("vars.toml"), &vars_label, ErrorKind::InvalidJobVars)? {
        Some(text) => parse_string_table(&vars_label, &text, ErrorKind::InvalidJobVars)?,
        None => BTreeMap::new(),
    };
    Ok(JobSource { manifest, files, vars })
}

/// Every file, directory and symbolic link of job directory `dir` (paths relative,
/// '/'-separated), skipping virtualenvs, node_modules and __pycache__ anywhere. Links are never
/// followed: one that stays inside the job directory is kept as a link (checked on its text, and
/// on where it really leads when its target exists), any other is an error naming it.
fn walk_job(dir: &Path, job: &str) -> Result<Vec<JobFile>> {
    let real_root = fs::canonicalize(dir).map_err(|e| io_err(dir, e))?;
    let mut walk = JobWalk { job, real_root, files: Vec::new() };
    walk.dir(dir, "")?;
    Ok(walk.files)
}

struct JobWalk<'a> {
    job: &'a str,
    /// The job directory with every link resolved: where inside links must lead.
    real_root: PathBuf,
    files: Vec<JobFile>,
}

impl JobWalk<'_> {
    fn dir(&mut self, dir: &Path, prefix: &str) -> Result<()> {
        for entry in fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
            let entry = entry.map_err(|e| io_err(dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| io_err(&path, e))?;
            if is_skipped_dir(&name) && (kind.is_dir() || kind.is_symlink()) {
                continue;
            }
            if kind.is_symlink() {
                self.link(&path, rel)?;
            } else if kind.is_dir() {
                self.files.push(JobFile::dir(rel.clone()));
                self.dir(&path, &rel)?;
            } else if kind.is_file() {
                let content = fs::read(&path).map_err(|e| io_err(&path, e))?;
                let mode = mode_of(&path).map_err(|e| io_err(&path, e))? & 0o777;
                self.files.push(JobFile::file(rel, content).with_mode(mode));
            }
        }
        Ok(())
    }

    fn link(&mut self, path: &Path, rel: String) -> Result<()> {
        let job = self.job;
        let target = fs::read_link(path).map_err(|e| io_err(path, e))?;
        let Some(target) = target.to_str() else {
            return Err(Error::new(
                ErrorKind::InvalidJob,
                format!("job {job}: workspace/jobs/{job}/{rel} is a symbolic link whose target is not UTF-8 text"),
            ));
        };
        validate_link(job, &rel, target)?;
        if let Ok(real) = fs::canonicalize(path) {
            if !real.starts_with(&self.real_root) {
                return Err(link_outside_job(job, &rel, target));
            }
        }
        self.files.push(JobFile::link(rel, target));
        Ok(())
    }
}

/// Read a UTF-8 text file; `None` when it does not exist. Bytes that are not UTF-8 are an error
/// of `kind` naming the file as `label` and where the first bad byte is.
pub fn read_text(path: &Path, label: &str, kind: ErrorKind) -> Result<Option<String>> {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes).map(Some).map_err(|e| {
            let offset = e.utf8_error().valid_up_to();
            Error::new(kind, format!("{label} is not UTF-8 text (invalid byte at offset {offset}); save it as UTF-8"))
        }),
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
