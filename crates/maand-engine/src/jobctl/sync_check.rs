//! The worker sync check before `maand job …` (spec §3.5, internals §2.5, DESIGN §3.3): worker.py
//! on every catalog worker in parallel, each non-zero exit turned into the real reason (another
//! bucket, another worker, a stale `update_seq`) and what to do about it.

use crate::remote_steps::{Remote, Step, StepOutput};
use maand_core::{Error, Result};
use maand_remote::script::shell_quote;
use maand_remote::RemoteScript;
use maand_store::catalog::WorkerRow;

/// Time limit of one worker's check.
const CHECK_TIMEOUT_SECS: u64 = 60;

/// Why a worker is not at the bucket's deploy state (worker.py's exit status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMismatch {
    /// Exit 1: worker.json names another bucket.
    OtherBucket,
    /// Exit 2: worker.json names another worker, or is missing or unreadable.
    OtherWorker,
    /// Exit 3: the worker was synced by an older (or newer) deploy.
    StaleUpdateSeq,
    /// Any other exit status.
    Failed(i32),
}

impl SyncMismatch {
    pub fn from_exit(code: i32) -> SyncMismatch {
        match code {
            1 => SyncMismatch::OtherBucket,
            2 => SyncMismatch::OtherWorker,
            3 => SyncMismatch::StaleUpdateSeq,
            n => SyncMismatch::Failed(n),
        }
    }

    /// `worker <ip>: <what> (<worker.py's reason>); <what to do>`.
    pub fn describe(self, ip: &str, reason: &str) -> String {
        let reason = if reason.is_empty() { "no reason given".to_string() } else { reason.to_string() };
        match self {
            SyncMismatch::OtherBucket => {
                format!("worker {ip}: deployed by another bucket ({reason}); run maand deploy")
            }
            SyncMismatch::OtherWorker => format!(
                "worker {ip}: holds another worker's files or none from this bucket ({reason}); run maand deploy"
            ),
            SyncMismatch::StaleUpdateSeq => {
                format!("worker {ip}: stale update_seq, not synced by the last deploy ({reason}); run maand deploy")
            }
            SyncMismatch::Failed(code) => format!("worker {ip}: sync check exited with status {code} ({reason})"),
        }
    }
}

/// The check script: worker.py, or exit 2 with a reason when this bucket never reached the worker.
pub fn sync_check_script(bucket_id: &str, worker_id: &str, update_seq: i64) -> RemoteScript {
    let py = shell_quote(&format!("/opt/worker/{bucket_id}/bin/worker.py"));
    RemoteScript::from_lines([
        format!("if [ ! -f {py} ]; then echo \"this bucket has not been deployed to this worker\" >&2; exit 2; fi"),
        format!("python3 {py} {} {} {update_seq}", shell_quote(bucket_id), shell_quote(worker_id)),
    ])
}

/// Run worker.py on every worker (at most `parallel` at once). Every worker that is not in sync
/// or cannot be reached is named in one error.
pub fn check_workers_in_sync(
    remote: &Remote<'_>,
    workers: &[WorkerRow],
    update_seq: i64,
    parallel: usize,
) -> Result<()> {
    let steps: Vec<Step<'_>> = workers
        .iter()
        .map(|w| Step {
            job: None,
            phase: "validate",
            action: "worker_sync",
            worker: crate::transport::worker_addr(w),
            script: sync_check_script(remote.bucket_id, &w.worker_id, update_seq),
            timeout_secs: Some(CHECK_TIMEOUT_SECS),
        })
        .collect();
    let problems: Vec<String> = workers
        .iter()
        .zip(remote.run_all_captured(&steps, parallel))
        .filter_map(|(w, result)| problem(&w.worker_ip, result))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::msg(format!("workers are not in sync with this bucket: {}", problems.join("; "))))
    }
}

fn problem(ip: &str, result: Result<StepOutput>) -> Option<String> {
    match result {
        Ok(out) if out.exit_code == 0 => None,
        Ok(out) => Some(SyncMismatch::from_exit(out.exit_code).describe(ip, &out.stderr.join(" "))),
        Err(e) => Some(format!("worker {ip}: sync check failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_become_reasons() {
        let d = SyncMismatch::from_exit(1).describe("10.0.0.1", "worker.json belongs to bucket x, not y");
        assert_eq!(
            d,
            "worker 10.0.0.1: deployed by another bucket (worker.json belongs to bucket x, not y); run maand deploy"
        );
        assert!(SyncMismatch::from_exit(2).describe("h", "").contains("another worker's files"));
        let d = SyncMismatch::from_exit(3).describe("h", "worker is at update_seq 1, the bucket is at 2");
        assert!(d.contains("stale update_seq") && d.contains("update_seq 1") && d.ends_with("run maand deploy"));
        assert_eq!(SyncMismatch::from_exit(127).describe("h", "x"), "worker h: sync check exited with status 127 (x)");
    }

    /// The embedded worker.py, run for real against worker.json files, gives the exit statuses the
    /// messages are keyed on.
    #[test]
    fn worker_py_exit_statuses() {
        let dir = tempfile::tempdir().unwrap();
        let py = dir.path().join("worker.py");
        std::fs::write(&py, crate::deploy::WORKER_PY).unwrap();
        let run = |args: &[&str]| {
            std::process::Command::new("python3").arg(&py).args(args).output().unwrap().status.code().unwrap()
        };
        // worker.py reads /opt/worker/<bucket>/worker.json: a bucket id nobody uses is unreadable.
        assert_eq!(run(&["no-such-bucket-for-tests", "w", "1"]), 2);
        assert_eq!(run(&["only-two", "args"]), 3);
    }
}
