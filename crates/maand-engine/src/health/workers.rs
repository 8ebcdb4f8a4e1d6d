//! The worker gate of `maand health_check` (spec §3.4, §9.1 step 2): a TCP connect to every
//! worker's SSH port, one worker after another, retried while waiting.

use super::net::tcp_connect;
use super::retry::RetryPolicy;
use maand_core::health_check::{DEFAULT_WAIT_ATTEMPTS, DEFAULT_WAIT_INTERVAL_SECONDS};
use maand_core::{Error, ErrorKind, Result};
use maand_remote::WorkerAddr;
use std::time::Duration;

/// Time limit of one worker's TCP connect.
pub const WORKER_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to every worker's SSH port (its own port, else `default_port`) in order, 5 s each.
/// With `wait`: up to 30 tries 1 s apart. Every unreachable worker is named in the error
/// (`health check failed: worker 10.0.0.1 ssh port 22: connection refused`).
pub fn check_workers(
    workers: &[WorkerAddr],
    default_port: u16,
    wait: bool,
    report: &(dyn Fn(&str) + Sync),
) -> Result<()> {
    if workers.is_empty() {
        report("worker health check skipped: no workers");
        return Ok(());
    }
    let try_once = || -> std::result::Result<(), String> {
        let failures: Vec<String> = workers
            .iter()
            .filter_map(|w| {
                let port = w.port.unwrap_or(default_port);
                tcp_connect(&w.host, port, WORKER_CONNECT_TIMEOUT)
                    .err()
                    .map(|r| format!("worker {w} ssh port {port}: {r}"))
            })
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
