//! The workers a deploy could not reach (DESIGN §3.12 with the "down workers" rule): connected to
//! in parallel before anything changes on them, remembered for the rest of the run, so a dead
//! worker costs one connection backoff per deploy, not one per step.

use crate::remote_steps::{Remote, Step};
use maand_core::ErrorKind;
use maand_remote::{RemoteScript, WorkerAddr};
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

/// How long connecting (and running `true`) may take per worker.
const PROBE_TIMEOUT_SECS: u64 = 30;

#[derive(Default)]
pub struct Reachability {
    unreachable: Mutex<BTreeMap<String, String>>,
}

impl Reachability {
    /// Connect to every worker not known unreachable yet, at most `parallel` at once, and
    /// remember those that cannot be reached.
    pub fn probe(&self, remote: &Remote<'_>, workers: &[WorkerAddr], parallel: usize) {
        let unknown: Vec<&WorkerAddr> = workers.iter().filter(|w| self.why(&w.host).is_none()).collect();
        let steps: Vec<Step<'_>> = unknown
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
