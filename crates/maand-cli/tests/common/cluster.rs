//! A bucket with sandbox workers (real sshd per loopback address, private /opt), torn down on
//! drop: the fixture of every end-to-end deploy test.
#![allow(dead_code, clippy::unwrap_used)]

use super::TestBucket;
use maand_remote::sandbox::{Sandbox, SandboxWorker};
use std::path::PathBuf;

pub struct Cluster {
    pub bucket: TestBucket,
    pub workers: Vec<SandboxWorker>,
}

impl Cluster {
    /// A bucket with `n` sandbox workers labelled `app`.
    pub fn up(n: usize) -> Cluster {
        let bucket = TestBucket::new();
        bucket.maand(&["sandbox", "up", "--workers", &n.to_string(), "--labels", "app"]).ok();
        let workers = Sandbox::new(bucket.path("sandbox")).workers().unwrap();
        assert_eq!(workers.len(), n);
        Cluster { bucket, workers }
    }

    pub fn sandbox(&self) -> Sandbox {
        Sandbox::new(self.bucket.path("sandbox"))
    }

    pub fn ip(&self, i: usize) -> String {
        self.workers[i].ip.clone()
    }

    pub fn bucket_id(&self) -> String {
        let info: serde_json::Value =
            serde_json::from_str(&self.bucket.maand(&["info", "--json"]).ok().stdout).unwrap();
        info["bucket_id"].as_str().unwrap().to_string()
    }

    /// Host path of `/opt/worker/<bucket>/<rel>` on worker `i`.
    pub fn worker_path(&self, i: usize, rel: &str) -> PathBuf {
        self.workers[i].opt_dir().join("worker").join(self.bucket_id()).join(rel)
    }

    pub fn worker_file(&self, i: usize, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.worker_path(i, rel)).ok()
    }

    /// Lines of jobs/<job>/data/events on worker i (written by the test Makefile).
    pub fn events(&self, i: usize, job: &str) -> Vec<String> {
        self.worker_file(i, &format!("jobs/{job}/data/events"))
            .map(|t| t.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// Event kinds (first word) on worker i.
    pub fn kinds(&self, i: usize, job: &str) -> Vec<String> {
        self.events(i, job).iter().map(|l| l.split_whitespace().next().unwrap_or("").to_string()).collect()
    }

    pub fn connections(&self) -> usize {
        let s = self.sandbox();
        self.workers.iter().map(|w| s.accepted_connections(&w.ip).unwrap()).sum()
    }

    pub fn deploy(&self, args: &[&str]) -> super::Output {
        let mut all = vec!["deploy"];
        all.extend_from_slice(args);
        self.bucket.maand(&all)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.sandbox().down();
    }
}

/// A Makefile that records every lifecycle target with a timestamp and the version variables.
pub const COUNTING_MAKEFILE: &str = "\
start:
\tmkdir -p data
\techo \"start $$(date +%s.%N) $$CURRENT_VERSION $$NEW_VERSION\" >> data/events
stop:
\tmkdir -p data
\techo \"stop $$(date +%s.%N)\" >> data/events
restart:
\tmkdir -p data
\techo \"restart $$(date +%s.%N) $$CURRENT_VERSION $$NEW_VERSION\" >> data/events
reload:
\tmkdir -p data
\techo \"reload $$(date +%s.%N) $$CURRENT_VERSION $$NEW_VERSION\" >> data/events
";
