//! `maand health_check` (spec §3.4, §9.1): the worker gate (every worker's SSH server answers with
//! its banner), then every selected job's gate (up to 16 jobs at once) — manifest probes, then the
//! job's `health_check` commands — summarised per job for the terminal and `--json`.

use super::check_workers;
use super::job::{gate_job, JobVerdict};
use super::parallel::bounded_map;
use super::targets::HealthCatalog;
use crate::bucket::Bucket;
use crate::jobcmd::{shared_kv, HealthCheckCommands, JobCommands};
use crate::output::Reporter;
use crate::runlog::RunLog;
use crate::transport::ssh_executor;
use maand_core::manifest::Event;
use maand_core::{Error, ErrorKind, Result};
use maand_remote::{Executor, Stream};
use maand_store::catalog;
use maand_store::kv::KvStore;
use serde::Serialize;
use std::path::Path;

/// Jobs checked at once (the Go maand's `defaultJobParallelism`).
pub const JOB_PARALLELISM: usize = 16;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthCheckOptions {
    /// `--jobs`: empty = every catalog job.
    pub jobs: Vec<String>,
    /// `--wait`: retry each job (and the worker gate) until it passes or the tries run out.
    pub wait: bool,
    /// `--verbose`: stream ssh probe output (`job@worker | line`) through `report`.
    pub verbose: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobHealthStatus {
    Passed,
    Failed,
    Skipped,
}

/// One job's result: the skip reason, or the failure (`<worker> <probe>: <reason>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobHealth {
    pub job: String,
    pub status: JobHealthStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What `maand health_check` found.
#[must_use]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HealthSummary {
    /// Workers that passed the worker gate.
    pub workers: usize,
    /// Checked jobs in name order.
    pub jobs: Vec<JobHealth>,
}

impl HealthSummary {
    /// `health check failed: job a: …` with one line per failed job, or None when none failed.
    pub fn failure(&self) -> Option<Error> {
        let lines: Vec<String> = self
            .jobs
            .iter()
            .filter(|j| j.status == JobHealthStatus::Failed)
            .map(|j| format!("job {}: {}", j.job, j.reason.as_deref().unwrap_or("failed")))
            .collect();
        (!lines.is_empty()).then(|| Error::new(ErrorKind::HealthCheckFailed, lines.join("\n")))
    }
}

/// `maand health_check` in the bucket at `root` (read-only, no lock; SSH per maand.conf), returning
/// the summary even when jobs failed (`HealthSummary::failure`; the CLI prints `--json` first).
pub fn health_check_summary(
    root: &Path,
    opts: &HealthCheckOptions,
    report: &(dyn Fn(&str) + Sync),
) -> Result<HealthSummary> {
    let bucket = Bucket::open(root)?;
    let executor = ssh_executor(&bucket);
    let summary = run_health_check(&bucket, opts, &executor, report);
    executor.close();
    summary
}

/// The health check on an opened bucket with a given executor. Each job's `health_check`
/// commands run after its probes.
/// Returns the summary even when jobs failed (see `HealthSummary::failure`); an unknown `--jobs`
/// name, an unreadable catalog or a failed worker gate is an error.
pub fn run_health_check(
    bucket: &Bucket,
    opts: &HealthCheckOptions,
    executor: &dyn Executor,
    report: &(dyn Fn(&str) + Sync),
) -> Result<HealthSummary> {
    let conn = bucket.connect()?;
    let catalog = HealthCatalog::load(&conn)?;
    let jobs = catalog.select(&opts.jobs)?;
    check_workers(executor, &catalog.workers, bucket.conf.parallel, opts.wait, report)?;
    let log = health_check_log(bucket, &conn, "healthcheck")?;
    let lines = ReportLines { report, verbose: opts.verbose };
    let commands = JobCommands::start(bucket, &conn, shared_kv(KvStore::load(&conn)?), &lines, &log)?;
    let extra = &HealthCheckCommands { commands: &commands };
    let output = |source: &str, stream: Stream, text: &str| {
        if opts.verbose {
            let sep = if stream == Stream::Stderr { '!' } else { '|' };
            report(&format!("{source} {sep} {text}"));
        }
    };
    let jobs = bounded_map(&jobs, JOB_PARALLELISM, |inputs| {
        let target = inputs.target(bucket.conf.use_sudo);
        let (status, reason) = match gate_job(&target, executor, extra, opts.wait, report, &output) {
            JobVerdict::Passed => (JobHealthStatus::Passed, None),
            JobVerdict::Skipped(reason) => (JobHealthStatus::Skipped, Some(reason)),
            JobVerdict::Failed(reason) => (JobHealthStatus::Failed, Some(reason)),
        };
        JobHealth { job: inputs.job.clone(), status, reason }
    });
    Ok(HealthSummary { workers: catalog.workers.len(), jobs })
}

/// The run log of a read-only command that runs health checks (`health_check`, `status`): opened
/// only when a job has `health_check` commands, whose output it keeps.
pub(crate) fn health_check_log(bucket: &Bucket, conn: &rusqlite::Connection, command: &str) -> Result<RunLog> {
    let has_commands = catalog::load_job_commands(conn)?.iter().any(|c| c.executed_on == Event::HealthCheck.as_str());
    if !has_commands {
        return Ok(RunLog::disabled());
    }
    RunLog::open(&bucket.paths, bucket.conf.log_format, command, catalog::bucket_row(conn)?.update_seq)
}

/// Job-command output for `maand health_check` and `maand status`: shown with `verbose`,
/// messages always.
pub(crate) struct ReportLines<'r> {
    pub report: &'r (dyn Fn(&str) + Sync),
    pub verbose: bool,
}

impl Reporter for ReportLines<'_> {
    fn line(&self, source: &str, stream: Stream, text: &str) {
        if self.verbose {
            let sep = if stream == Stream::Stderr { '!' } else { '|' };
            (self.report)(&format!("{source} {sep} {text}"));
        }
    }

    fn message(&self, text: &str) {
        (self.report)(text);
    }
}
