//! The workers a deploy could not reach (DESIGN §3.12 with the "down workers" rule): checked in
//! parallel before anything changes on them, remembered for the rest of the run, so a dead
//! worker costs one connection backoff per deploy, not one per step. A worker must first send its
//! SSH banner within the connect timeout: a frozen host accepts TCP connections but never answers,
//! and is then known unreachable after one timeout instead of one per connection attempt.

use crate::health::bounded_map;
use crate::remote_steps::{Remote, Step};
use maand_core::{Error, ErrorKind, Result};
use maand_remote::{Executor, RemoteScript, WorkerAddr};
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long connecting (and running `true`) may take per worker.
const PROBE_TIMEOUT_SECS: u64 = 30;

pub struct Reachability {
    /// maand.conf `connect_timeout_seconds`: the time a worker has to send its SSH banner.
    connect_timeout: Duration,
    unreachable: Mutex<BTreeMap<String, String>>,
}

impl Reachability {
    pub fn new(connect_timeout: Duration) -> Self {
        Reachability { connect_timeout, unreachable: Mutex::default() }
    }

    /// Check every worker not known unreachable yet (its SSH banner, then connecting and running
    /// `true`), at most `parallel` at once, and remember those that cannot be reached.
    pub fn probe(&self, remote: &Remote<'_>, workers: &[WorkerAddr], parallel: usize) {
        let unknown: Vec<&WorkerAddr> = workers.iter().filter(|w| self.why(&w.host).is_none()).collect();
        let answering: Vec<&WorkerAddr> = unknown
            .iter()
            .zip(bounded_map(&unknown, parallel, |w| self.check(remote.executor, w).is_ok()))
            .filter_map(|(w, ok)| ok.then_some(*w))
            .collect();
        let steps: Vec<Step<'_>> = answering
            .iter()
            .map(|w| Step {
                job: None,
                phase: "connect",
                action: "connect",
                worker: (*w).clone(),
                script: RemoteScript::from_lines(["true"]),
                timeout_secs: Some(PROBE_TIMEOUT_SECS),
            })
            .collect();
        for (step, result) in steps.iter().zip(remote.run_all_limited(&steps, parallel)) {
            if let Err(e) = result {
                self.record(&step.worker.host, &e);
            }
        }
    }

    /// Whether `worker` may be used: not known unreachable, and its SSH server answering. A
    /// worker silent for the whole connect timeout (frozen, or its route gone) is recorded
    /// unreachable at once; a quick failure (a refused connection) is left to the SSH
    /// connection, which retries transient failures with backoff and says why in detail.
    pub fn check(&self, executor: &dyn Executor, worker: &WorkerAddr) -> Result<()> {
        if let Some(why) = self.why(&worker.host) {
            return Err(Error::new(ErrorKind::WorkerUnreachable, why));
        }
        let started = Instant::now();
        match executor.check_alive(worker, Some(self.connect_timeout)) {
            Err(e) if started.elapsed() >= self.connect_timeout => {
                self.record(&worker.host, &e);
                Err(e)
            }
            _ => Ok(()),
        }
    }

    /// Remember `ip` as unreachable when `e` says the connection failed.
    pub fn record(&self, ip: &str, e: &maand_core::Error) {
        if e.kind == ErrorKind::WorkerUnreachable {
            self.lock().insert(ip.to_string(), e.to_string());
        }
    }

    /// Why `ip` could not be reached, if it could not.
    pub fn why(&self, ip: &str) -> Option<String> {
        self.lock().get(ip).cloned()
    }

    /// Every worker found unreachable so far (IP -> why).
    pub fn all(&self) -> BTreeMap<String, String> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.unreachable.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
