//! A bucket with sandbox workers (real sshd per loopback address, private /opt), torn down on
//! drop: the fixture of every end-to-end deploy test.
#![allow(dead_code, clippy::unwrap_used)]

use super::TestBucket;
use maand_remote::sandbox::{Sandbox, SandboxWorker};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The files of a deployed job directory: path -> (mode, bytes).
pub type JobTree = BTreeMap<String, (u32, Vec<u8>)>;

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

    /// The times of worker i's events of one kind (`<kind> <unix time> …` lines), in order.
    pub fn event_times(&self, i: usize, job: &str, kind: &str) -> Vec<f64> {
        self.events(i, job)
            .iter()
            .filter(|l| l.split_whitespace().next() == Some(kind))
            .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
            .collect()
    }

    /// Every file of the live directory of `job` on worker i except its `data/` and `logs/`.
    pub fn job_tree(&self, i: usize, job: &str) -> JobTree {
        fn walk(base: &Path, dir: &Path, out: &mut JobTree) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                if rel == "data" || rel == "logs" {
                    continue;
                }
                if p.is_dir() {
                    walk(base, &p, out);
                } else {
                    let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
                    out.insert(rel, (mode, std::fs::read(&p).unwrap()));
                }
            }
        }
        let base = self.worker_path(i, &format!("jobs/{job}"));
        let mut out = JobTree::new();
        walk(&base, &base, &mut out);
        out
    }

    /// The bucket's `update_seq` (the seq of the last run that synced workers).
    pub fn update_seq(&self) -> i64 {
        let info: serde_json::Value =
            serde_json::from_str(&self.bucket.maand(&["info", "--json"]).ok().stdout).unwrap();
        info["update_seq"].as_i64().unwrap()
    }

    /// Workers on which the run at `seq` began `action` (a lifecycle target) of `job` in its
    /// rollout, in the order the run logs say.
    pub fn logged_rollout(&self, seq: i64, job: &str, action: &str) -> Vec<String> {
        let mut begins: Vec<(String, String)> = Vec::new();
        for e in std::fs::read_dir(self.bucket.path("logs")).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_none_or(|x| x != "log") {
                continue;
            }
            for line in std::fs::read_to_string(&p).unwrap().lines() {
                let field = |k: &str| {
                    line.split_whitespace().find_map(|w| w.strip_prefix(&format!("{k}=")).map(str::to_string))
                };
                let wanted = [("event", "command_begin"), ("job", job), ("phase", "rollout"), ("action", action)];
                if field("seq") == Some(seq.to_string()) && wanted.iter().all(|(k, v)| field(k).as_deref() == Some(*v))
                {
                    begins.push((field("ts").unwrap(), field("worker").unwrap()));
                }
            }
        }
        begins.sort();
        begins.into_iter().map(|(_, w)| w).collect()
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
