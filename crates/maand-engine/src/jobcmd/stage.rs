//! Staging a job command for one allocation (spec §8.2 step 3): the job's catalog files under
//! `tmp/workers/<ip>/jobs/<job>/` (for `health_check` only the command's own script), the embedded
//! helpers and the allocation's certificates (keys decrypted, 0600) in `_modules/`. The staging
//! root is private (0700) and the runner removes what it staged when the command run ends.

use super::helpers::write_helpers;
use crate::deploy::{job_staging_dir, prepare_worker_dir, write_cert_files, write_job_files};
use maand_core::Result;
use maand_store::catalog::JobFile;
use maand_store::kv::KvStore;
use maand_store::secrets::SecretKey;
use std::path::{Path, PathBuf};

pub struct StageRequest<'a> {
    pub staging_root: &'a Path,
    pub job: &'a str,
    pub worker_ip: &'a str,
    /// The job's catalog files.
    pub files: &'a [JobFile],
    /// The command's script (`_modules/command_x.py`).
    pub script: &'a JobFile,
    /// Stage only the script (health checks run often and need nothing else).
    pub script_only: bool,
    /// The bucket's key, to decrypt the certificate keys.
    pub key: Option<&'a SecretKey>,
}

/// Stage and return the `_modules` directory the command runs in.
pub fn stage_command(req: &StageRequest<'_>, kv: &KvStore) -> Result<PathBuf> {
    prepare_worker_dir(req.staging_root, req.worker_ip)?;
    let job_dir = job_staging_dir(req.staging_root, req.worker_ip, req.job);
    if req.script_only {
        write_job_files(&job_dir, std::slice::from_ref(req.script))?;
    } else {
        write_job_files(&job_dir, req.files)?;
    }
    let modules = job_dir.join("_modules");
    write_helpers(&modules)?;
    write_cert_files(&modules.join("certs"), kv, req.key, req.job, req.worker_ip)?;
    Ok(modules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, content: &str) -> JobFile {
        JobFile::file(path, content.as_bytes())
    }

    #[test]
    fn stages_job_files_helpers_and_certs() {
        let tmp = tempfile::tempdir().unwrap();
        let key = SecretKey::from_bytes([1u8; 32]);
        let mut kv = KvStore::default();
        kv.put("maand/job/api/worker/10.0.0.1", "certs/tls.crt", "CRT");
        kv.put_secret(&key, "maand/job/api/worker/10.0.0.1", "certs/tls.key", "KEY").unwrap();
        kv.put("maand/worker", "certs/ca.crt", "CA");
        let files = vec![
            file("Makefile", "start:\n"),
            file("_modules/command_a.py", "print(1)\n"),
            file("_modules/lib.py", "X = 1\n"),
        ];
        let req = StageRequest {
            staging_root: tmp.path(),
            job: "api",
            worker_ip: "10.0.0.1",
            files: &files,
            script: &files[1],
            script_only: false,
            key: Some(&key),
        };
        let modules = stage_command(&req, &kv).unwrap();
        assert_eq!(modules, tmp.path().join("workers/10.0.0.1/jobs/api/_modules"));
        let read = |rel: &str| std::fs::read_to_string(modules.join(rel)).unwrap();
        assert_eq!(read("command_a.py"), "print(1)\n");
        assert_eq!(read("lib.py"), "X = 1\n");
        assert_eq!(read("certs/tls.crt"), "CRT");
        assert_eq!(read("certs/tls.key"), "KEY", "decrypted for the command");
        assert_eq!(maand_store::file_modes::mode_of(&modules.join("certs/tls.key")).unwrap(), 0o600);
        assert_eq!(maand_store::file_modes::mode_of(&tmp.path().join("workers")).unwrap(), 0o700);
        assert_eq!(read("certs/ca.crt"), "CA");
        assert!(read("maand.py").contains("def put_deploy_order") || read("maand.py").contains("put_deploy_order ="));
        assert!(read("maand.js").contains("putRolloutOrder"));
        assert!(read("maand.ts").contains("export const putRolloutOrder"));
        assert!(modules.join("../Makefile").exists());

        let other = tempfile::tempdir().unwrap();
        let req = StageRequest { staging_root: other.path(), script_only: true, ..req };
        let modules = stage_command(&req, &kv).unwrap();
        assert!(modules.join("command_a.py").exists());
        assert!(modules.join("maand.py").exists() && modules.join("certs/ca.crt").exists());
        assert!(!modules.join("lib.py").exists(), "health checks stage only the command");
        assert!(!modules.join("../Makefile").exists());
    }
}
