//! Staging one allocation of a job under `tmp/workers/<ip>/jobs/<job>/` (spec §5.2): the job's
//! files from the catalog, rendered templates, certificates — then its per-file manifest and plan
//! hash, plus the assembled rules and consoles of the Prometheus server job. What is staged is
//! exactly what rsync ships (minus `.tpl`, `_modules`, `_prometheus`). A rollback stages an
//! allocation from a kept release instead: the files exactly as that release kept them (bytes and
//! modes), nothing rendered; the manifest and hash are computed the same way.

use super::template_data::KvTemplateData;
use crate::build::allocation_ns;
use crate::prometheus::ServerAssets;
use crate::template::{render, TemplateContext};
use maand_core::rollout::{file_md5, plan_hash, shipped_dir_name, FileManifest};
use maand_core::{Error, ErrorKind, Result};
use maand_store::catalog::{self, AllocationRelease, AllocationRow, JobFile, ReleaseFile, WorkerRow};
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

/// `tmp/masked/<ip>/<job>` — the allocation's rendered templates that read a secret, rendered
/// again with every secret masked (never shipped; kept with the release, shown by diffs).
pub fn masked_job_dir(staging_root: &Path, ip: &str, job: &str) -> PathBuf {
    staging_root.join("masked").join(ip).join(job)
}

pub fn stage_allocation(input: &StageInput<'_>) -> Result<Staged> {
    let ip = &input.alloc.worker_ip;
    let dir = fresh_staging_dir(input.staging_root, ip, input.job)?;
    write_job_files(&dir, input.files)?;
    render_templates(&dir, input)?;
    if let Some(assets) = input.prometheus {
        assets.write_into(&dir, ip)?;
    }
    write_certs(&dir, input)?;
    Staged::of(&dir)
}

/// Stage the allocation on `ip` from a kept release: every file with the bytes and mode it was
/// promoted with, and the masked renderings beside (for diffs and the release this keeps).
pub fn stage_release(
    staging_root: &Path,
    ip: &str,
    conn: &rusqlite::Connection,
    key: &SecretKey,
    release: &AllocationRelease,
) -> Result<Staged> {
    let job = &release.of.job;
    let dir = fresh_staging_dir(staging_root, ip, job)?;
    let masked_dir = masked_job_dir(staging_root, ip, job);
    for (rel, kept) in &release.files {
        let target = dir.join(rel);
        write_file(&target, &catalog::release_content(conn, key, &kept.blob)?, kept.mode)?;
        if let Some(masked) = &kept.masked {
            write_file(&masked_dir.join(rel), &catalog::release_content(conn, key, masked)?, 0o600)?;
        }
    }
    Staged::of(&dir)
}

/// The allocation's side directory in the staging tree, emptied (and its masked renderings gone).
fn fresh_staging_dir(staging_root: &Path, ip: &str, job: &str) -> Result<PathBuf> {
    let dir = shipped_job_dir(staging_root, ip, job);
    for old in [&dir, &masked_job_dir(staging_root, ip, job)] {
        if old.exists() {
            fs::remove_dir_all(old).map_err(|e| io(old, e))?;
        }
    }
    fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    Ok(dir)
}

fn write_file(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    }
    fs::write(path, content).map_err(|e| io(path, e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| io(path, e))
}

impl Staged {
    /// The per-file manifest and plan hash of a staged directory.
    fn of(dir: &Path) -> Result<Staged> {
        let files = file_manifest(dir)?;
        let hash = plan_hash(&files);
        Ok(Staged { files, hash })
    }
}

/// Job files (directories first), except the CLI-side `_prometheus/` tree. Files are staged
/// executable (as the Go maand does) so scripts shipped with a job can run.
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
    let data = || {
        KvTemplateData::new(input.kv, input.key, input.job, &input.alloc.worker_ip, input.upstream)
            .with_prometheus(input.prometheus.map(|p| &p.fragments))
    };
    let masked_dir = masked_job_dir(input.staging_root, &input.alloc.worker_ip, input.job);
    for tpl in templates {
        let rel = tpl.strip_prefix(dir).unwrap_or(&tpl).to_string_lossy().into_owned();
        let source = fs::read(&tpl).map_err(|e| io(&tpl, e))?;
        let source = String::from_utf8(source).map_err(|_| {
            Error::new(ErrorKind::InvalidJob, format!("job {}: template {rel} is not UTF-8 text", input.job))
        })?;
        let in_context = |e: Error| e.context(format!("job {} on {}", input.job, input.alloc.worker_ip));
        let real = data();
        let out = render(&rel, &source, &ctx, &real).map_err(in_context)?;
        let target = tpl.with_extension("");
        fs::write(&target, out).map_err(|e| io(&target, e))?;
        fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).map_err(|e| io(&target, e))?;
        if real.secret_read() {
            let masked = render(&rel, &source, &ctx, &data().masking()).map_err(in_context)?;
            let target = masked_dir.join(target.strip_prefix(dir).unwrap_or(&target));
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
            }
            fs::write(&target, masked).map_err(|e| io(&target, e))?;
        }
    }
    Ok(())
}

fn collect_templates(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        let p = entry.path();
        if p.is_dir() {
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

/// The allocation's staged files as a release keeps them: each shipped file with its mode, and
/// its masked rendering when it has one.
pub fn release_files(staging_root: &Path, ip: &str, job: &str) -> Result<Vec<ReleaseFile>> {
    let dir = shipped_job_dir(staging_root, ip, job);
    let masked = masked_job_dir(staging_root, ip, job);
    let mut out = Vec::new();
    for rel in file_manifest(&dir)?.into_keys() {
        let p = dir.join(&rel);
        let meta = fs::metadata(&p).map_err(|e| io(&p, e))?;
        let m = masked.join(&rel);
        out.push(ReleaseFile {
            content: fs::read(&p).map_err(|e| io(&p, e))?,
            mode: meta.permissions().mode() & 0o7777,
            masked: if m.is_file() { Some(fs::read(&m).map_err(|e| io(&m, e))?) } else { None },
            path: rel,
        });
    }
    Ok(out)
}

/// Relative path -> content MD5 of every regular file under `dir`.
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
        if kind.is_dir() {
            walk_files(base, &p, out)?;
        } else if kind.is_file() {
            let rel = p.strip_prefix(base).unwrap_or(&p).to_string_lossy().into_owned();
            let content = fs::read(&p).map_err(|e| io(&p, e))?;
            out.insert(rel, file_md5(&content));
        }
    }
    Ok(())
}

pub fn io(path: &Path, e: std::io::Error) -> Error {
    Error::new(ErrorKind::Unexpected, format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use maand_store::catalog::{allocation_release, keep_release, ReleaseOf};

    fn put(path: &Path, content: &str, mode: u32) {
        write_file(path, content.as_bytes(), mode).unwrap();
    }

    fn modes(dir: &Path) -> Vec<(String, u32)> {
        file_manifest(dir)
            .unwrap()
            .into_keys()
            .map(|rel| {
                let mode = fs::metadata(dir.join(&rel)).unwrap().permissions().mode() & 0o7777;
                (rel, mode)
            })
            .collect()
    }

    #[test]
    fn a_kept_release_stages_again_byte_for_byte_with_its_modes_and_hash() {
        let root = tempfile::tempdir().unwrap();
        let (ip, job) = ("10.0.0.1", "db");
        let dir = shipped_job_dir(root.path(), ip, job);
        put(&dir.join("Makefile"), "start:\n", 0o755);
        put(&dir.join("app.conf"), "password=hunter2\n", 0o644);
        put(&dir.join("app.conf.tpl"), "password={{ getSecret \"pw\" }}\n", 0o755);
        put(&dir.join("certs/tls.key"), "KEY", 0o600);
        put(&masked_job_dir(root.path(), ip, job).join("app.conf"), "password=********\n", 0o644);
        let staged = Staged::of(&dir).unwrap();
        let before = modes(&dir);

        let conn = rusqlite::Connection::open_in_memory().unwrap();
        maand_store::db::migrate(&conn).unwrap();
        let key = SecretKey::from_bytes([3; 32]);
        let of = ReleaseOf {
            job: job.into(),
            release: 1,
            alloc_id: "a1".into(),
            worker_ip: ip.into(),
            version: "1.0.0".into(),
            created: 0,
        };
        keep_release(&conn, &key, &of, &release_files(root.path(), ip, job).unwrap()).unwrap();

        // Something else is staged there since (a later render), with a file the release lacks.
        fs::remove_dir_all(root.path().join("workers")).unwrap();
        fs::remove_dir_all(root.path().join("masked")).unwrap();
        put(&dir.join("app.conf"), "password=other\n", 0o600);
        put(&dir.join("extra"), "x", 0o644);

        let kept = allocation_release(&conn, job, "a1", None).unwrap().unwrap();
        let again = stage_release(root.path(), ip, &conn, &key, &kept).unwrap();
        assert_eq!((again.hash, again.files), (staged.hash, staged.files));
        assert_eq!(modes(&dir), before);
        assert_eq!(fs::read_to_string(dir.join("app.conf")).unwrap(), "password=hunter2\n");
        let masked = masked_job_dir(root.path(), ip, job).join("app.conf");
        assert_eq!(fs::read_to_string(masked).unwrap(), "password=********\n");
    }
}
