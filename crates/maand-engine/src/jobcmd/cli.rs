//! `maand job_command <command> [job]` (alias `jobcommand`, spec §3.6): run a `cli` command on the
//! active allocations of the job naming it (or of every job registering it), `--concurrency`
//! allocations at once. What the scripts wrote to the KV is committed, even when some failed.
//! The legacy order `<job> <command>` is accepted: the command is the argument starting `command_`.

use super::runner::{EventRun, JobCommands};
use super::shared_kv;
use crate::bucket::{now_unix, Bucket};
use crate::output::Reporter;
use crate::runlog::RunLog;
use maand_core::manifest::Event;
use maand_core::{Error, ErrorKind, Result};
use maand_store::catalog;
use maand_store::kv::KvStore;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCommandOptions {
    pub command: String,
    /// Only this job; None = every job registering the command for `cli`.
    pub job: Option<String>,
    /// Allocations at once (at least 1).
    pub concurrency: usize,
    /// Also report each job's start and end.
    pub verbose: bool,
}

/// What ran: jobs in order, and the failure of each job that failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobCommandReport {
    pub command: String,
    pub jobs: Vec<String>,
    pub failed: BTreeMap<String, String>,
    pub kv_rows_written: usize,
}

impl JobCommandReport {
    /// `job command failed: job a command c failed: 10.0.0.1: …` per failed job, or None.
    pub fn failure(&self) -> Option<Error> {
        if self.failed.is_empty() {
            return None;
        }
        let parts: Vec<&str> = self.failed.values().map(String::as_str).collect();
        Some(Error::new(ErrorKind::JobCommandFailed, parts.join("\n")))
    }
}

/// The (command, job) of `maand job_command <first> [second]`: `<command> [job]`, or the legacy
/// `<job> <command>` when only the second argument starts with `command_`.
pub fn resolve_command_args(first: &str, second: Option<&str>) -> (String, Option<String>) {
    match second {
        Some(second) if !first.starts_with("command_") && second.starts_with("command_") => {
            (second.to_string(), Some(first.to_string()))
        }
        _ => (first.to_string(), second.map(str::to_string)),
    }
}

/// Run `maand job_command` in the bucket at `root`. Job failures are in the report (see
/// [`JobCommandReport::failure`]); unknown commands and bad options are errors.
pub fn job_command(root: &Path, opts: &JobCommandOptions, out: &dyn Reporter) -> Result<JobCommandReport> {
    if opts.concurrency < 1 {
        return Err(Error::msg("concurrency must be at least 1"));
    }
    let bucket = Bucket::open_locked(root, "jobcommand")?;
    let mut conn = bucket.connect()?;
    let tx = conn.transaction().map_err(|e| Error::new(ErrorKind::Database, format!("begin jobcommand: {e}")))?;
    let kv = shared_kv(KvStore::load(&tx)?);
    let log = RunLog::open(&bucket.paths, bucket.conf.log_format, "jobcommand", catalog::bucket_row(&tx)?.update_seq)?;
    let mut report = JobCommandReport { command: opts.command.clone(), ..Default::default() };
    {
        let commands = JobCommands::start(&bucket, &tx, kv.clone(), out, &log)?;
        report.jobs = selected_jobs(&commands, opts)?;
        for job in &report.jobs {
            if report.jobs.len() > 1 {
                out.message(&format!("jobcommand: {job}"));
            }
            let workers = commands.active_workers(job);
            if opts.verbose {
                out.message(&format!("jobcommand: {job} {} on {}", opts.command, workers.join(", ")));
            }
            let run = EventRun { job, event: Event::Cli, workers: &workers, concurrency: opts.concurrency, env: &[] };
            if let Err(e) = commands.run_command(&run, &opts.command) {
                out.message(&format!("jobcommand: {job} {} failed", opts.command));
                report.failed.insert(job.clone(), e.detail);
            } else if opts.verbose {
                out.message(&format!("jobcommand: {job} {} done", opts.command));
            }
        }
    }
    let mut kv = super::lock_kv(&kv);
    report.kv_rows_written = kv.persist(&tx, now_unix())?;
    tx.commit().map_err(|e| Error::new(ErrorKind::Database, format!("commit jobcommand: {e}")))?;
    Ok(report)
}

/// The jobs to run: the named one (which must register the command for `cli`), else every job
/// registering it, in `deployment_seq` then name order.
fn selected_jobs(commands: &JobCommands<'_>, opts: &JobCommandOptions) -> Result<Vec<String>> {
    let command = opts.command.as_str();
    match &opts.job {
        Some(job) => {
            if !commands.commands(job, Event::Cli).iter().any(|c| c == command) {
                return Err(Error::msg(format!(
                    "job \"{job}\" command \"{command}\" is not registered for event \"cli\""
                )));
            }
            Ok(vec![job.clone()])
        }
        None => {
            let jobs: Vec<String> = commands
                .catalog()
                .jobs_with(Event::Cli)
                .into_iter()
                .filter(|job| commands.commands(job, Event::Cli).iter().any(|c| c == command))
                .collect();
            if jobs.is_empty() {
                return Err(Error::msg(format!("command \"{command}\" is not registered for event \"cli\"")));
            }
            Ok(jobs)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_argument_orders() {
        assert_eq!(resolve_command_args("command_x", None), ("command_x".into(), None));
        assert_eq!(resolve_command_args("command_x", Some("api")), ("command_x".into(), Some("api".into())));
        assert_eq!(resolve_command_args("api", Some("command_x")), ("command_x".into(), Some("api".into())));
        // Both look like commands: the documented order wins.
        assert_eq!(
            resolve_command_args("command_a", Some("command_b")),
            ("command_a".into(), Some("command_b".into()))
        );
        assert_eq!(resolve_command_args("x", Some("y")), ("x".into(), Some("y".into())));
    }

    #[test]
    fn failures_are_joined() {
        let mut r = JobCommandReport::default();
        assert!(r.failure().is_none());
        r.failed.insert("a".into(), "job a command c failed: 10.0.0.1: exit".into());
        let e = r.failure().unwrap();
        assert_eq!(e.kind, ErrorKind::JobCommandFailed);
        assert!(e.to_string().starts_with("job command failed: job a command c failed: 10.0.0.1"), "{e}");
    }
}
