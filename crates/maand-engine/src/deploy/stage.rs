//! Staging one allocation of a job under `tmp/workers/<ip>/jobs/.<job>.next/` (spec §5.2): the
//! job's files from the catalog, rendered templates (each with its template's mode), certificates
//! — then its per-file manifest and plan hash, plus the assembled rules and consoles of the
//! Prometheus server job. What is staged is exactly what rsync ships (minus `.tpl`, `_modules`,
//! `_prometheus`), modes included. A rollback stages an allocation from a kept release instead:
//! the files exactly as that release kept them (bytes, modes, links), nothing rendered; the
//! manifest and hash are computed the same way.

use super::staged_tree::{prepare_worker_dir, shipped_job_dir, staged_dir, write_staged};
use super::template_data::KvTemplateData;
use crate::build::allocation_ns;
use crate::prometheus::ServerAssets;
use crate::template::{render_within, Limits, TemplateContext};
use maand_core::rollout::{file_md5, link_md5, plan_hash, rendered_file_entry, FileManifest, DEFAULT_RENDERED_MODE};
use maand_core::{Error, ErrorKind, Result};
use maand_store::catalog::{self, AllocationRelease, AllocationRow, JobFile, ReleaseFile, WorkerRow};
use maand_store::kv::KvStore;
use maand_store::secrets::SecretKey;
use std::collections::BTreeMap;
use std::fs;
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

/// Mode of every staged job file: executable, as the Go maand stages them, so scripts shipped
/// with a job can run.
const JOB_FILE_MODE: u32 = 0o755;

/// `tmp/masked/<ip>/<job>` — the allocation's rendered templates that read a secret, rendered
/// again with every secret masked (never shipped; kept with the release, shown by diffs).
pub fn masked_job_dir(staging_root: &Path, ip: &str, job: &str) -> PathBuf {
    staging_root.join("masked").join(ip).join(job)
}

pub fn stage_allocation(input: &StageInput<'_>) -> Result<Staged> {
    let ip = &input.alloc.worker_ip;
    prepare_worker_dir(input.staging_root, ip)?;
    let dir = fresh_staging_dir(input.staging_root, ip, input.job)?;
    write_job_files(&dir, input.files)?;
    let rendered = render_templates(&dir, input)?;
    if let Some(assets) = input.prometheus {
        assets.write_into(&dir, ip)?;
    }
    write_certs(&dir, input)?;
    Staged::of(&dir, &rendered)
}

/// Stage the allocation on `ip` from a kept release: every file with the bytes and mode it was
/// promoted with (links as links), and the masked renderings beside (for diffs and the release
/// this keeps).
pub fn stage_release(
    staging_root: &Path,
    ip: &str,
    conn: &rusqlite::Connection,
    key: &SecretKey,
    release: &AllocationRelease,
) -> Result<Staged> {
    let job = &release.of.job;
    prepare_worker_dir(staging_root, ip)?;
    let dir = fresh_staging_dir(staging_root, ip, job)?;
    let masked_dir = masked_job_dir(staging_root, ip, job);
    let mut rendered = Vec::new();
    for (rel, kept) in &release.files {
        let target = dir.join(rel);
        let content = catalog::release_content(conn, key, &kept.blob)?;
        if kept.mode == SYMLINK_MODE {
            if let Some(parent) = target.parent() {
                staged_dir(parent)?;
            }
            let link = String::from_utf8_lossy(&content).into_owned();
            std::os::unix::fs::symlink(link, &target).map_err(|e| io(&target, e))?;
            continue;
        }
        write_staged(&target, &content, kept.mode)?;
        if release.files.contains_key(&format!("{rel}.tpl")) {
            rendered.push((rel.clone(), kept.mode));
        }
        if let Some(masked) = &kept.masked {
            write_staged(&masked_dir.join(rel), &catalog::release_content(conn, key, masked)?, 0o600)?;
        }
    }
    Staged::of(&dir, &rendered)
}

/// The allocation's side directory in the staging tree, emptied (and its masked renderings gone).
fn fresh_staging_dir(staging_root: &Path, ip: &str, job: &str) -> Result<PathBuf> {
    let dir = shipped_job_dir(staging_root, ip, job);
    for old in [&dir, &masked_job_dir(staging_root, ip, job)] {
        if old.exists() {
            fs::remove_dir_all(old).map_err(|e| io(old, e))?;
        }
    }
    staged_dir(&dir)?;
    Ok(dir)
}

impl Staged {
    /// The per-file manifest and plan hash of a staged directory; `rendered` files (path, mode)
    /// carry their mode in the manifest (`rendered_file_entry`).
    fn of(dir: &Path, rendered: &[(String, u32)]) -> Result<Staged> {
        let mut files = file_manifest(dir)?;
        for (rel, mode) in rendered {
            if let Some(md5) = files.get_mut(rel) {
                *md5 = rendered_file_entry(md5, *mode);
            }
        }
        let hash = plan_hash(&files);
        Ok(Staged { files, hash })
    }
}

/// Job files (directories first), except the CLI-side `_prometheus/` tree, into `dir` (a
/// directory of a worker's staged tree); links are staged as links (the build kept only those
/// that stay inside the job).
pub(crate) fn write_job_files(dir: &Path, files: &[JobFile]) -> Result<()> {
    let shipped = |f: &&JobFile| f.path != "_prometheus" && !f.path.starts_with("_prometheus/");
    for f in files.iter().filter(shipped).filter(|f| f.isdir) {
        staged_dir(&dir.join(&f.path))?;
    }
    for f in files.iter().filter(shipped).filter(|f| !f.isdir) {
        let p = dir.join(&f.path);
        if let Some(target) = &f.link {
            if let Some(parent) = p.parent() {
                staged_dir(parent)?;
            }
            std::os::unix::fs::symlink(target, &p).map_err(|e| io(&p, e))?;
            continue;
        }
        write_staged(&p, &f.content, JOB_FILE_MODE)?;
    }
    Ok(())
}

/// Render every staged `*.tpl` next to itself (suffix dropped), with the template's mode from the
/// workspace (0644 when the catalog does not know it). Returns each rendered file's relative path
/// and mode.
fn render_templates(dir: &Path, input: &StageInput<'_>) -> Result<Vec<(String, u32)>> {
    let mut templates = Vec::new();
    collect_templates(dir, &mut templates)?;
    templates.sort();
    if templates.is_empty() {
        return Ok(Vec::new());
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
    let modes: BTreeMap<&str, u32> = input.files.iter().filter_map(|f| Some((f.path.as_str(), f.mode?))).collect();
    let mut rendered = Vec::with_capacity(templates.len());
    for tpl in templates {
        let rel = tpl.strip_prefix(dir).unwrap_or(&tpl).to_string_lossy().into_owned();
        let source = fs::read(&tpl).map_err(|e| io(&tpl, e))?;
        let source = String::from_utf8(source).map_err(|_| {
            Error::new(ErrorKind::InvalidJob, format!("job {}: template {rel} is not UTF-8 text", input.job))
        })?;
        let in_context = |e: Error| e.context(format!("job {} on {}", input.job, input.alloc.worker_ip));
        let real = data();
        let out = render_within(&rel, &source, &ctx, &real, input.template_limits).map_err(in_context)?;
        let mode = modes.get(rel.as_str()).copied().unwrap_or(DEFAULT_RENDERED_MODE);
        let target = tpl.with_extension("");
        write_staged(&target, out.as_bytes(), mode)?;
        if real.secret_read() {
            let masked =
                render_within(&rel, &source, &ctx, &data().masking(), input.template_limits).map_err(in_context)?;
            write_staged(&masked_dir.join(target.strip_prefix(dir).unwrap_or(&target)), masked.as_bytes(), 0o600)?;
        }
        let target_rel = rel.strip_suffix(".tpl").unwrap_or(&rel).to_string();
        rendered.push((target_rel, mode));
    }
    Ok(rendered)
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
    write_cert_files(&dir.join("certs"), input.kv, input.key, input.job, &input.alloc.worker_ip)
}

/// The allocation's certificates from KV into `certs_dir` (created): `<name>.crt` (0644),
/// `<name>.key` (0600, decrypted: the KV holds it encrypted), and the bucket CA as `ca.crt`.
/// Shared with job-command staging.
pub(crate) fn write_cert_files(
    certs: &Path,
    kv: &KvStore,
    key: Option<&SecretKey>,
    job: &str,
    worker_ip: &str,
) -> Result<()> {
    staged_dir(certs)?;
    let ns = allocation_ns(job, worker_ip);
    for name in kv.keys(&ns) {
        let Some(file) = name.strip_prefix("certs/") else { continue };
        let mode = match file {
            f if f.contains('/') => continue,
            f if f.ends_with(".key") => 0o600,
            f if f.ends_with(".crt") => 0o644,
            _ => continue,
        };
        let pem = kv.get_revealed(key, &ns, &name).map_err(|e| e.context(format!("job {job} on {worker_ip}")))?;
        let Some(pem) = pem else { continue };
        write_staged(&certs.join(file), pem.as_bytes(), mode)?;
    }
    if let Some(ca) = kv.get("maand/worker", "certs/ca.crt") {
        write_staged(&certs.join("ca.crt"), ca.as_bytes(), 0o644)?;
    }
    Ok(())
}

/// The mode a kept release gives a symbolic link (`S_IFLNK`); its content is the link's target.
pub const SYMLINK_MODE: u32 = 0o120_777;

/// The allocation's staged files as a release keeps them: each shipped file with its mode, and
/// its masked rendering when it has one; a link as [`SYMLINK_MODE`] and its target.
pub fn release_files(staging_root: &Path, ip: &str, job: &str) -> Result<Vec<ReleaseFile>> {
    let dir = shipped_job_dir(staging_root, ip, job);
    let masked = masked_job_dir(staging_root, ip, job);
    let mut out = Vec::new();
    for rel in file_manifest(&dir)?.into_keys() {
        let p = dir.join(&rel);
        let meta = fs::symlink_metadata(&p).map_err(|e| io(&p, e))?;
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&p).map_err(|e| io(&p, e))?;
            out.push(ReleaseFile {
                content: target.to_string_lossy().into_owned().into_bytes(),
                mode: SYMLINK_MODE,
                masked: None,
                path: rel,
            });
            continue;
        }
        let m = masked.join(&rel);
        out.push(ReleaseFile {
            content: fs::read(&p).map_err(|e| io(&p, e))?,
            mode: std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777,
            masked: if m.is_file() { Some(fs::read(&m).map_err(|e| io(&m, e))?) } else { None },
            path: rel,
        });
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;
    use maand_store::catalog::{allocation_release, keep_release, ReleaseOf};
    use std::os::unix::fs::PermissionsExt;

    fn put(path: &Path, content: &str, mode: u32) {
        write_staged(path, content.as_bytes(), mode).unwrap();
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
        let staged = Staged::of(&dir, &[("app.conf".to_string(), 0o644)]).unwrap();
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
