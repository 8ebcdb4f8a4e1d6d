//! The health gate of one job (spec §9.1 step 4, internals §7.5): skip without active allocations
//! or without anything to check; otherwise tries of "the allocations' workers answer SSH (when
//! required), every probe on every allocation in parallel, then the extra checks", retried while
//! waiting, with the spec's progress lines.

use super::parallel::bounded_map;
use super::probe::{OutputSink, ProbeContext};
use super::retry::RetryPolicy;
use super::{ExtraCheck, HealthOutcome, HealthTarget};
use maand_core::health_check::{DEFAULT_TIMEOUT_SECONDS, DEFAULT_WAIT_ATTEMPTS, DEFAULT_WAIT_INTERVAL_SECONDS};
use maand_core::{Error, ErrorKind, ProbeKind, Result};
use maand_remote::{Executor, WorkerAddr};
use std::time::Duration;

/// Probes of one try running at once (DESIGN §4: bounded fan-out, default 32).
const PROBE_PARALLELISM: usize = 32;

pub const SKIP_NO_ALLOCATIONS: &str = "no active allocations";
pub const SKIP_NOTHING_TO_CHECK: &str = "no health_check config or commands";

/// How one job's gate ended; `Failed` holds `<worker> <probe>: <reason>` (or an extra check's reason).
pub(crate) enum JobVerdict {
    Passed,
    Skipped(String),
    Failed(String),
}

/// One try = each allocation's worker answering SSH when the target requires it, then every probe
/// on every allocation in parallel (all must pass), then the extra checks.
/// With `wait`: up to the manifest's `wait.attempts` tries, `wait.interval_seconds` apart (30 x 1 s
/// without a manifest health_check); without: one try. Progress lines go to `report`; a final
/// failure is `health check failed: job <job>: <worker> <probe>: <reason>`.
pub fn check_job(
    target: &HealthTarget<'_>,
    executor: &dyn Executor,
    extra: &dyn ExtraCheck,
    wait: bool,
    report: &(dyn Fn(&str) + Sync),
) -> Result<HealthOutcome> {
    check_job_streaming(target, executor, extra, wait, report, &|_, _, _| {})
}

/// `check_job`, also streaming ssh probe output to `output` (`job@worker`, stream, line).
pub fn check_job_streaming(
    target: &HealthTarget<'_>,
    executor: &dyn Executor,
    extra: &dyn ExtraCheck,
    wait: bool,
    report: &(dyn Fn(&str) + Sync),
    output: &OutputSink<'_>,
) -> Result<HealthOutcome> {
    match gate_job(target, executor, extra, wait, report, output) {
        JobVerdict::Passed => Ok(HealthOutcome::Passed),
        JobVerdict::Skipped(reason) => Ok(HealthOutcome::Skipped(reason)),
        JobVerdict::Failed(reason) => {
            Err(Error::new(ErrorKind::HealthCheckFailed, format!("job {}: {reason}", target.job)))
        }
    }
}

pub(crate) fn gate_job(
    target: &HealthTarget<'_>,
    executor: &dyn Executor,
    extra: &dyn ExtraCheck,
    wait: bool,
    report: &(dyn Fn(&str) + Sync),
    output: &OutputSink<'_>,
) -> JobVerdict {
    let job = target.job;
    let probes: &[ProbeKind] = target.spec.map(|s| s.checks.as_slice()).unwrap_or_default();
    let has_extra = extra.has_checks(job);
    let skip_reason = if target.allocations.is_empty() {
        Some(SKIP_NO_ALLOCATIONS)
    } else if probes.is_empty() && !has_extra {
        Some(SKIP_NOTHING_TO_CHECK)
    } else {
        None
    };
    if let Some(reason) = skip_reason {
        report(&format!("health check skipped: {job} ({reason})"));
        return JobVerdict::Skipped(reason.to_string());
    }

    let ctx = ProbeContext {
        job,
        executor,
        ports: target.ports,
        timeout: Duration::from_secs(target.spec.map_or(DEFAULT_TIMEOUT_SECONDS, |s| s.timeout_seconds)),
        use_sudo: target.use_sudo,
        output,
    };
    let pairs: Vec<(&WorkerAddr, &ProbeKind)> =
        target.allocations.iter().flat_map(|a| probes.iter().map(move |p| (&a.worker, p))).collect();
    let workers: Vec<&WorkerAddr> =
        if target.require_live_workers { target.allocations.iter().map(|a| &a.worker).collect() } else { Vec::new() };
    let try_once = || -> std::result::Result<(), String> {
        let dead: Vec<String> =
            bounded_map(&workers, PROBE_PARALLELISM, |w| executor.check_alive(w, Some(ctx.timeout)).err())
                .into_iter()
                .flatten()
                .map(|e| e.detail)
                .collect();
        if !dead.is_empty() {
            return Err(dead.join("; "));
        }
        let failures: Vec<String> =
            bounded_map(&pairs, PROBE_PARALLELISM, |(worker, probe)| ctx.run(worker, probe).err())
                .into_iter()
                .flatten()
                .collect();
        if !failures.is_empty() {
            return Err(failures.join("; "));
        }
        if has_extra {
            let ips: Vec<String> = target.allocations.iter().map(|a| a.worker.host.clone()).collect();
            extra.run(job, &ips)?;
        }
        Ok(())
    };
    let policy = match (wait, target.spec) {
        (false, _) => RetryPolicy::once(),
        (true, Some(spec)) => RetryPolicy::waiting(spec.wait_attempts, spec.wait_interval_seconds),
        (true, None) => RetryPolicy::waiting(DEFAULT_WAIT_ATTEMPTS, DEFAULT_WAIT_INTERVAL_SECONDS),
    };
    let on_retry = |i: u32, n: u32| report(&format!("health check failed: {job} (attempt {i}/{n}), retrying..."));
    match policy.run(try_once, on_retry) {
        Ok(()) => {
            report(&format!("health check passed: {job}"));
            JobVerdict::Passed
        }
        Err(reason) => {
            report(&format!("health check failed: {job}"));
            JobVerdict::Failed(reason)
        }
    }
}
