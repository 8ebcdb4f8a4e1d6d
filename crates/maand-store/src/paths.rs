//! Where every file of a bucket lives (spec/features.md §1.1). Pure path arithmetic: nothing here
//! touches the file system.

use std::path::PathBuf;

/// The paths of one bucket, all derived from its root directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketPaths {
    pub root: PathBuf,
    /// The catalog to use instead of `data/maand.db` (a plan's throwaway copy).
    catalog: Option<PathBuf>,
}

impl BucketPaths {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        BucketPaths { root: root.into(), catalog: None }
    }

    /// `maand.conf` at the bucket root.
    pub fn maand_conf(&self) -> PathBuf {
        self.root.join("maand.conf")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// The SQLite catalog `data/maand.db` (or the copy these paths were made to use).
    pub fn db(&self) -> PathBuf {
        self.catalog.clone().unwrap_or_else(|| self.data_dir().join("maand.db"))
    }

    /// The same bucket with another catalog file (everything else unchanged).
    pub fn with_catalog(&self, catalog: impl Into<PathBuf>) -> BucketPaths {
        BucketPaths { root: self.root.clone(), catalog: Some(catalog.into()) }
    }

    /// `data/.plan` — where a plan keeps its throwaway copy of the catalog.
    pub fn plan_dir(&self) -> PathBuf {
        self.data_dir().join(".plan")
    }

    /// The exclusive bucket lock `data/maand.lock`.
    pub fn lock_file(&self) -> PathBuf {
        self.data_dir().join("maand.lock")
    }

    pub fn workspace(&self) -> PathBuf {
        self.root.join("workspace")
    }

    pub fn workers_json(&self) -> PathBuf {
        self.workspace().join("workers.json")
    }

    pub fn disabled_json(&self) -> PathBuf {
        self.workspace().join("disabled.json")
    }

    pub fn bucket_conf(&self) -> PathBuf {
        self.workspace().join("bucket.conf")
    }

    /// `workspace/bucket.jobs.conf` for an empty selector, else `workspace/bucket.jobs.<selector>.conf`.
    pub fn bucket_jobs_conf(&self, selector: &str) -> PathBuf {
        match selector.trim() {
            "" => self.workspace().join("bucket.jobs.conf"),
            selector => self.workspace().join(format!("bucket.jobs.{selector}.conf")),
        }
    }

    pub fn jobs_dir(&self) -> PathBuf {
        self.workspace().join("jobs")
    }

    /// Default script of `maand run_command`.
    pub fn command_sh(&self) -> PathBuf {
        self.workspace().join("command.sh")
    }

    pub fn secrets(&self) -> PathBuf {
        self.root.join("secrets")
    }

    pub fn ca_crt(&self) -> PathBuf {
        self.secrets().join("ca.crt")
    }

    pub fn ca_key(&self) -> PathBuf {
        self.secrets().join("ca.key")
    }

    /// The AES-256 key of encrypted KV values.
    pub fn kv_key(&self) -> PathBuf {
        self.secrets().join("kv.key")
    }

    /// Host keys trusted on first use (DESIGN §3.2).
    pub fn known_hosts(&self) -> PathBuf {
        self.secrets().join("known_hosts")
    }

    /// The worker SSH private key named by `maand.conf` `ssh_key` (a file under `secrets/`).
    pub fn ssh_key(&self, file_name: &str) -> PathBuf {
        self.secrets().join(file_name)
    }

    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The staging tree `tmp/workers/` (per worker: what a deploy ships, job commands' files).
    pub fn staging(&self) -> PathBuf {
        self.tmp().join("workers")
    }

    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// Per-invocation log copies `logs/runs/<run_id>/`.
    pub fn run_logs(&self, run_id: &str) -> PathBuf {
        self.logs().join("runs").join(run_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn layout_matches_spec_tree() {
        let p = BucketPaths::new("/b");
        assert_eq!(p.maand_conf(), Path::new("/b/maand.conf"));
        assert_eq!(p.db(), Path::new("/b/data/maand.db"));
        assert_eq!(p.lock_file(), Path::new("/b/data/maand.lock"));
        assert_eq!(p.workers_json(), Path::new("/b/workspace/workers.json"));
        assert_eq!(p.disabled_json(), Path::new("/b/workspace/disabled.json"));
        assert_eq!(p.bucket_conf(), Path::new("/b/workspace/bucket.conf"));
        assert_eq!(p.jobs_dir(), Path::new("/b/workspace/jobs"));
        assert_eq!(p.command_sh(), Path::new("/b/workspace/command.sh"));
        assert_eq!(p.ca_crt(), Path::new("/b/secrets/ca.crt"));
        assert_eq!(p.ca_key(), Path::new("/b/secrets/ca.key"));
        assert_eq!(p.kv_key(), Path::new("/b/secrets/kv.key"));
        assert_eq!(p.known_hosts(), Path::new("/b/secrets/known_hosts"));
        assert_eq!(p.ssh_key("worker.key"), Path::new("/b/secrets/worker.key"));
        assert_eq!(p.tmp(), Path::new("/b/tmp"));
        assert_eq!(p.staging(), Path::new("/b/tmp/workers"));
        assert_eq!(p.logs(), Path::new("/b/logs"));
        assert_eq!(p.run_logs("r1"), Path::new("/b/logs/runs/r1"));
    }

    #[test]
    fn bucket_jobs_conf_follows_selector() {
        let p = BucketPaths::new("/b");
        assert_eq!(p.bucket_jobs_conf(""), Path::new("/b/workspace/bucket.jobs.conf"));
        assert_eq!(p.bucket_jobs_conf("  "), Path::new("/b/workspace/bucket.jobs.conf"));
        assert_eq!(p.bucket_jobs_conf(" prod "), Path::new("/b/workspace/bucket.jobs.prod.conf"));
    }
}
