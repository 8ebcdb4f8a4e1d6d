//! Staging one allocation of a job under `tmp/workers/<ip>/jobs/<job>/` (spec §5.2): the job's
//! files from the catalog, rendered templates, certificates — then its per-file manifest and plan
//! hash, plus the assembled rules and consoles of the Prometheus server job. What is staged is
//! exactly what rsync ships (minus `.tpl`, `_modules`, `_prometheus`).

use super::template_data::KvTemplateData;
use crate::build::allocation_ns;
use crate::prometheus::ServerAssets;
use crate::template::{render_within, Limits, TemplateContext};
use maand_core::rollout::{file_md5, link_md5, plan_hash, shipped_dir_name, FileManifest};
use maand_core::{Error, ErrorKind, Result};
use maand_store::catalog::{AllocationRow, JobFile, WorkerRow};
use maand_store::kv::KvStore;
use maand_store::secrets::SecretKey;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub struct StageInput<'a> {
    pub staging_root: &'a Path,
    pub bucket_id: &'a str,
    pub update_seq: i64,
    pub job: &'a str,
    pub alloc: &'a AllocationRow,
    pub worker: Option<&'a WorkerRow>,
    pub files: &'a [JobFile],
    pub current_version: &'a str,
    pub upstream: &'a [String],
    pub kv: &'a KvStore,
    pub key: Option<&'a SecretKey>,
    /// Set when the job is the Prometheus server job.
    pub prometheus: Option<&'a ServerAssets>,
    pub template_limits: Limits,
}

pub struct Staged {
    pub files: FileManifest,
    pub hash: String,
}

/// `tmp/workers/<ip>` — the tree rsynced to a worker.
pub fn worker_staging_dir(staging_root: &Path, ip: &str) -> PathBuf {
    staging_root.join("workers").join(ip)
}

pub fn job_staging_dir(staging_root: &Path, ip: &str, job: &str) -> PathBuf {
    worker_staging_dir(staging_root, ip).join("jobs").join(job)
}

/// `tmp/workers/<ip>/jobs/.<job>.next` — an allocation staged for shipping into the job's side
/// directory on the worker.
pub fn shipped_job_dir(staging_root: &Path, ip: &str, job: &str) -> PathBuf {
    worker_staging_dir(staging_root, ip).join("jobs").join(shipped_dir_name(job))
}

pub fn stage_allocation(input: &StageInput<'_>) -> Result<Staged> {
    let ip = &input.alloc.worker_ip;
    let dir = shipped_job_dir(input.staging_root, ip, input.job);
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(|e| io(&dir, e))?;
    }
    fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    write_job_files(&dir, input.files)?;
    render_templates(&dir, input)?;
    if let Some(assets) = input.prometheus {
        assets.write_into(&dir, ip)?;
    }
    write_certs(&dir, input)?;
    let files = file_manifest(&dir)?;
    let hash = plan_hash(&files);
    Ok(Staged { files, hash })
}

/// Job files (directories first), except the CLI-side `_prometheus/` tree. Files are staged
/// executable (as the Go maand does) so scripts shipped with a job can run; links are staged as
/// links (the build kept only those that stay inside the job).
pub(crate) fn write_job_files(dir: &Path, files: &[JobFile]) -> Result<()> {
    let shipped = |f: &&JobFile| f.path != "_prometheus" && !f.path.starts_with("_prometheus/");
    for f in files.iter().filter(shipped).filter(|f| f.isdir) {
        let p = dir.join(&f.path);
        fs::create_dir_all(&p).map_err(|e| io(&p, e))?;
    }
    for f in files.iter().filter(shipped).filter(|f| !f.isdir) {
        let p = dir.join(&f.path);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        if let Some(target) = &f.link {
            std::os::unix::fs::symlink(target, &p).map_err(|e| io(&p, e))?;
            continue;
        }
        fs::write(&p, &f.content).map_err(|e| io(&p, e))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).map_err(|e| io(&p, e))?;
    }
    Ok(())
}

fn render_templates(dir: &Path, input: &StageInput<'_>) -> Result<()> {
    let mut templates = Vec::new();
    collect_templates(dir, &mut templates)?;
    templates.sort();
    if templates.is_empty() {
        return Ok(());
    }
    let ctx = TemplateContext {
        allocation_id: input.alloc.alloc_id.clone(),
        job: input.job.to_string(),
        current_version: input.current_version.to_string(),
        new_version: input.alloc.new_version.clone(),
        worker_ip: input.alloc.worker_ip.clone(),
        worker_id: input.worker.map(|w| w.worker_id.clone()).unwrap_or_default(),
        labels: input.worker.map(|w| w.labels.clone()).unwrap_or_default(),
        bucket_path: format!("/opt/worker/{}", input.bucket_id),
        job_path: format!("/opt/worker/{}/jobs/{}", input.bucket_id, input.job),
        bucket_id: input.bucket_id.to_string(),
        update_seq: input.update_seq,
    };
    let data = KvTemplateData::new(input.kv, input.key, input.job, &input.alloc.worker_ip, input.upstream)
        .with_prometheus(input.prometheus.map(|p| &p.fragments));
    for tpl in templates {
        let rel = tpl.strip_prefix(dir).unwrap_or(&tpl).to_string_lossy().into_owned();
        let source = fs::read(&tpl).map_err(|e| io(&tpl, e))?;
        let source = String::from_utf8(source).map_err(|_| {
            Error::new(ErrorKind::InvalidJob, format!("job {}: template {rel} is not UTF-8 text", input.job))
        })?;
        let out = render_within(&rel, &source, &ctx, &data, input.template_limits)
            .map_err(|e| e.context(format!("job {} on {}", input.job, input.alloc.worker_ip)))?;
        let target = tpl.with_extension("");
        fs::write(&target, out).map_err(|e| io(&target, e))?;
        fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).map_err(|e| io(&target, e))?;
    }
    Ok(())
}

/// The `*.tpl` files under `dir`; links to directories are not followed.
fn collect_templates(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        let p = entry.path();
        if entry.file_type().map_err(|e| io(&p, e))?.is_dir() {
            collect_templates(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "tpl") {
            out.push(p);
        }
    }
    Ok(())
}

/// `certs/<name>.crt` (0644), `certs/<name>.key` (0600) from the allocation's KV, plus `ca.crt`.
fn write_certs(dir: &Path, input: &StageInput<'_>) -> Result<()> {
    write_cert_files(&dir.join("certs"), input.kv, input.job, &input.alloc.worker_ip)
}

/// The allocation's certificates from KV into `certs_dir` (created): `<name>.crt` (0644),
/// `<name>.key` (0600), and the bucket CA as `ca.crt`. Shared with job-command staging.
pub(crate) fn write_cert_files(certs: &Path, kv: &KvStore, job: &str, worker_ip: &str) -> Result<()> {
    fs::create_dir_all(certs).map_err(|e| io(certs, e))?;
    let ns = allocation_ns(job, worker_ip);
    for key in kv.keys(&ns) {
        let Some(file) = key.strip_prefix("certs/") else { continue };
        if file.contains('/') || !(file.ends_with(".crt") || file.ends_with(".key")) {
            continue;
        }
        let Some(pem) = kv.get(&ns, &key) else { continue };
        let p = certs.join(file);
        fs::write(&p, pem).map_err(|e| io(&p, e))?;
        let mode = if file.ends_with(".key") { 0o600 } else { 0o644 };
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).map_err(|e| io(&p, e))?;
    }
    if let Some(ca) = kv.get("maand/worker", "certs/ca.crt") {
        let p = certs.join("ca.crt");
        fs::write(&p, ca).map_err(|e| io(&p, e))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).map_err(|e| io(&p, e))?;
    }
    Ok(())
}

/// Relative path -> content MD5 of every regular file under `dir` (for a link, the MD5 of its
/// target path: links are shipped as links).
pub fn file_manifest(dir: &Path) -> Result<FileManifest> {
    let mut out = FileManifest::new();
    walk_files(dir, dir, &mut out)?;
    Ok(out)
}

fn walk_files(base: &Path, dir: &Path, out: &mut FileManifest) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        let p = entry.path();
        let kind = entry.file_type().map_err(|e| io(&p, e))?;
        let rel = || p.strip_prefix(base).unwrap_or(&p).to_string_lossy().into_owned();
        if kind.is_dir() {
            walk_files(base, &p, out)?;
        } else if kind.is_file() {
            let content = fs::read(&p).map_err(|e| io(&p, e))?;
            out.insert(rel(), file_md5(&content));
        } else if kind.is_symlink() {
            let target = fs::read_link(&p).map_err(|e| io(&p, e))?;
            out.insert(rel(), link_md5(&target.to_string_lossy()));
        }
    }
    Ok(())
}

pub fn io(path: &Path, e: std::io::Error) -> Error {
    Error::new(ErrorKind::Unexpected, format!("{}: {e}", path.display()))
}
