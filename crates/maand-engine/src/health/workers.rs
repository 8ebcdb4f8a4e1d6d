//! The worker gate of `maand health_check` (spec §3.4, §9.1 step 2): every worker's SSH server
//! must answer — its SSH port accepts a connection and sends the SSH banner (a frozen host still
//! accepts TCP connections) — checked in parallel, retried while waiting.

use super::parallel::bounded_map;
use super::retry::RetryPolicy;
use maand_core::health_check::{DEFAULT_WAIT_ATTEMPTS, DEFAULT_WAIT_INTERVAL_SECONDS};
use maand_core::{Error, ErrorKind, Result};
use maand_remote::{Executor, WorkerAddr};
use std::time::Duration;

/// Time limit of one worker's check: connecting to its SSH port and reading the banner.
pub const WORKER_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Checks that every worker's SSH server answers (its own port, else the executor's default),
/// within 5 s each, at most `parallel` at once. With `wait`: up to 30 tries 1 s apart. Every
/// worker that does not answer is named in the error, in the order given
/// (`health check failed: worker 10.0.0.1 ssh port 22: connection refused`).
pub fn check_workers(
    executor: &dyn Executor,
    workers: &[WorkerAddr],
    parallel: usize,
    wait: bool,
    report: &(dyn Fn(&str) + Sync),
) -> Result<()> {
    if workers.is_empty() {
        report("worker health check skipped: no workers");
        return Ok(());
    }
    let try_once = || -> std::result::Result<(), String> {
        let failures: Vec<String> =
            bounded_map(workers, parallel, |w| executor.check_alive(w, Some(WORKER_CONNECT_TIMEOUT)).err())
                .into_iter()
                .flatten()
                .map(|e| e.detail)
                .collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    };
    let policy = if wait {
        RetryPolicy::waiting(DEFAULT_WAIT_ATTEMPTS, DEFAULT_WAIT_INTERVAL_SECONDS)
    } else {
        RetryPolicy::once()
    };
    let on_retry = |i: u32, n: u32| report(&format!("worker health check failed (attempt {i}/{n}), retrying..."));
    match policy.run(try_once, on_retry) {
        Ok(()) => {
            report("worker health check passed");
            Ok(())
        }
        Err(reason) => {
            report("worker health check failed");
            Err(Error::new(ErrorKind::HealthCheckFailed, reason))
        }
    }
}
