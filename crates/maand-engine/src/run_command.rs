//! `maand run_command ["cmd"] [-w ips | -l labels] [-c N] [--health_check]` (spec §3.7, §10.5):
//! an ad-hoc shell command (or `workspace/command.sh`) on catalog workers in fixed-size batches
//! (batches one after another, the workers of a batch in parallel), output streamed as
//! `ip | line`, `BUCKET_ID`/`WORKER_IP` exported, starting in `/opt/worker/<bucket_id>`. A failing
//! batch stops the run; the report names the failed workers and those never reached. With
//! `--health_check` every batch is followed by the worker gate and every job's health check.

use crate::bucket::Bucket;
use crate::health::{run_health_check, HealthCheckOptions};
use crate::output::Reporter;
use crate::remote_steps::{Remote, Step};
use crate::runlog::RunLog;
use crate::transport::{ssh_executor, worker_addr};
use maand_core::rollout::batches;
use maand_core::{Error, ErrorKind, Result};
use maand_remote::script::shell_quote;
use maand_remote::{Executor, RemoteScript};
use maand_store::catalog::{self, WorkerRow};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// Pause between a batch and its health check, so services restarted by the command can come up.
pub const HEALTH_SETTLE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCommandOptions {
    /// The shell command; None = `workspace/command.sh`.
    pub command: Option<String>,
    /// `-w/--workers`.
    pub workers: Vec<String>,
    /// `-l/--labels` (any-match, case-insensitive).
    pub labels: Vec<String>,
    /// `-c/--concurrency`: batch size (at least 1).
    pub concurrency: i64,
    /// `--health_check` after every batch.
    pub health_check: bool,
    /// Pause before each batch's health check ([`HEALTH_SETTLE`]).
    pub health_settle: Duration,
}

impl Default for RunCommandOptions {
    fn default() -> Self {
        RunCommandOptions {
            command: None,
            workers: Vec::new(),
            labels: Vec::new(),
            concurrency: 1,
            health_check: false,
            health_settle: HEALTH_SETTLE,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunCommandReport {
    /// The batches that ran, in order.
    pub batches: Vec<Vec<String>>,
    /// `(worker, error)` of every worker whose command failed.
    pub failed: Vec<(String, String)>,
    /// Workers of later batches that were not run because a batch failed.
    pub not_run: Vec<String>,
    /// `after worker batch N: …` when a health check after a batch failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_failure: Option<String>,
}

impl RunCommandReport {
    /// `run command failed: worker <ip>: …` naming every failed worker (and those not reached),
    /// or None when everything succeeded.
    pub fn failure(&self) -> Option<Error> {
        let mut parts: Vec<String> = self.failed.iter().map(|(_, e)| e.clone()).collect();
        if let Some(h) = &self.health_failure {
            parts.push(h.clone());
        }
        if parts.is_empty() {
            return None;
        }
        let failed: Vec<&str> = self.failed.iter().map(|(ip, _)| ip.as_str()).collect();
        let mut text = parts.join("; ");
        if !failed.is_empty() {
            text.push_str(&format!("\nfailed workers: {}", failed.join(", ")));
        }
        if !self.not_run.is_empty() {
            text.push_str(&format!("\nnot run (a batch failed): {}", self.not_run.join(", ")));
        }
        Some(Error::new(ErrorKind::RunCommand, text))
    }
}

/// `maand run_command` in the bucket at `root` (no lock: the catalog is only read) over SSH.
pub fn run_command(root: &Path, opts: &RunCommandOptions, out: &dyn Reporter) -> Result<RunCommandReport> {
    check_options(opts)?;
    let bucket = Bucket::open(root)?;
    let executor = ssh_executor(&bucket);
    let report = run_command_with(&bucket, opts, out, &executor);
    executor.close();
    report
}

/// `maand run_command` with a given executor.
pub fn run_command_with(
    bucket: &Bucket,
    opts: &RunCommandOptions,
    out: &dyn Reporter,
    executor: &dyn Executor,
) -> Result<RunCommandReport> {
    check_options(opts)?;
    let command = command_text(opts.command.as_deref(), &bucket.paths.command_sh())?;
    let conn = bucket.connect()?;
    let bucket_row = catalog::bucket_row(&conn)?;
    let selected = select_workers(&catalog::load_workers(&conn)?, &opts.workers, &opts.labels)?;
    drop(conn);
    let log = RunLog::open(&bucket.paths, bucket.conf.log_format, "run_command", bucket_row.update_seq)?;
    let remote = Remote { executor, out, log: &log, bucket_id: &bucket_row.bucket_id };
    let all = batches(&selected, opts.concurrency);
    let count = all.len();
    let mut report = RunCommandReport::default();
    for (i, batch) in all.iter().enumerate() {
        let ips: Vec<&str> = batch.iter().map(|w| w.worker_ip.as_str()).collect();
        out.message(&format!("run_command: batch {}/{count}: {}", i + 1, ips.join(", ")));
        report.batches.push(ips.iter().map(|s| s.to_string()).collect());
        let steps: Vec<Step<'_>> = batch
            .iter()
            .map(|w| Step {
                job: None,
                phase: "run_command",
                action: "ssh",
                worker: worker_addr(w),
                script: command_script(&bucket_row.bucket_id, &w.worker_ip, &command),
                timeout_secs: None,
            })
            .collect();
        for (w, result) in batch.iter().zip(remote.run_all(&steps)) {
            if let Err(e) = result {
                report.failed.push((w.worker_ip.clone(), e.detail));
            }
        }
        let rest = || all[i + 1..].iter().flatten().map(|w| w.worker_ip.clone()).collect();
        if !report.failed.is_empty() {
            report.not_run = rest();
            break;
        }
        if opts.health_check {
            std::thread::sleep(opts.health_settle);
            let health_opts = HealthCheckOptions { jobs: Vec::new(), wait: true, verbose: true };
            let report_line = |m: &str| out.message(m);
            let failure = match run_health_check(bucket, &health_opts, executor, &report_line) {
                Ok(summary) => summary.failure(),
                Err(e) => Some(e),
            };
            if let Some(e) = failure {
                report.health_failure = Some(format!("after worker batch {}: {e}", i + 1));
                report.not_run = rest();
                break;
            }
        }
    }
    Ok(report)
}

fn check_options(opts: &RunCommandOptions) -> Result<()> {
    if opts.concurrency < 1 {
        return Err(Error::msg("batch size (-c) must be at least 1"));
    }
    if !opts.workers.is_empty() && !opts.labels.is_empty() {
        return Err(Error::msg("specify either --workers or --labels, not both"));
    }
    Ok(())
}

/// The command to run: the argument (trimmed), else the content of `workspace/command.sh`.
pub fn command_text(arg: Option<&str>, command_sh: &Path) -> Result<String> {
    let text = match arg {
        Some(a) => a.to_string(),
        None => match std::fs::read_to_string(command_sh) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::msg("command argument or workspace/command.sh is required"))
            }
            Err(e) => {
                return Err(Error::new(ErrorKind::Unexpected, format!("cannot read {}: {e}", command_sh.display())))
            }
        },
    };
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::msg("command is empty"));
    }
    Ok(text.to_string())
}

/// Catalog workers in position order: all, those named by `-w` (every name must be a catalog
/// worker), or those carrying any of the `-l` labels (case-insensitive).
pub fn select_workers(all: &[WorkerRow], workers: &[String], labels: &[String]) -> Result<Vec<WorkerRow>> {
    let workers: BTreeSet<&str> = workers.iter().map(|w| w.trim()).filter(|w| !w.is_empty()).collect();
    let labels: BTreeSet<String> = labels.iter().map(|l| l.trim().to_lowercase()).filter(|l| !l.is_empty()).collect();
    let unknown: Vec<&str> = workers.iter().copied().filter(|w| !all.iter().any(|c| c.worker_ip == *w)).collect();
    if !unknown.is_empty() {
        return Err(Error::msg(format!("workers not in this bucket: [{}]", unknown.join(" "))));
    }
    let selected: Vec<WorkerRow> = all
        .iter()
        .filter(|w| workers.is_empty() || workers.contains(w.worker_ip.as_str()))
        .filter(|w| labels.is_empty() || w.labels.iter().any(|l| labels.contains(&l.to_lowercase())))
        .cloned()
        .collect();
    if selected.is_empty() {
        return Err(Error::msg("no workers matched the selection"));
    }
    Ok(selected)
}

/// The script sent to a worker: `BUCKET_ID` and `WORKER_IP` exported, strict mode off (the
/// command runs as the operator wrote it), the bucket directory as working directory when it
/// exists, then the command.
pub fn command_script(bucket_id: &str, worker_ip: &str, command: &str) -> RemoteScript {
    RemoteScript::from_lines([
        "set +e +u".to_string(),
        format!("cd {} 2>/dev/null || true", shell_quote(&format!("/opt/worker/{bucket_id}"))),
        command.to_string(),
    ])
    .with_env("BUCKET_ID", bucket_id)
    .with_env("WORKER_IP", worker_ip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn worker(ip: &str, labels: &[&str]) -> WorkerRow {
        WorkerRow {
            worker_id: ip.into(),
            worker_ip: ip.into(),
            available_memory_mb: String::new(),
            available_cpu_mhz: String::new(),
            position: 0,
            labels: labels.iter().map(|l| l.to_string()).collect(),
            tags: BTreeMap::new(),
            ssh_port: None,
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn ips(w: &[WorkerRow]) -> Vec<&str> {
        w.iter().map(|w| w.worker_ip.as_str()).collect()
    }

    #[test]
    fn selection_by_workers_labels_or_all() {
        let all = vec![worker("a", &["web", "worker"]), worker("b", &["db", "worker"]), worker("c", &["worker"])];
        assert_eq!(ips(&select_workers(&all, &[], &[]).unwrap()), ["a", "b", "c"]);
        assert_eq!(ips(&select_workers(&all, &s(&["c", "a"]), &[]).unwrap()), ["a", "c"], "position order");
        assert_eq!(ips(&select_workers(&all, &[], &s(&["DB", "web"])).unwrap()), ["a", "b"]);
        let e = select_workers(&all, &s(&["a", "x", "y"]), &[]).unwrap_err();
        assert_eq!(e.to_string(), "workers not in this bucket: [x y]");
        let e = select_workers(&all, &[], &s(&["nope"])).unwrap_err();
        assert_eq!(e.to_string(), "no workers matched the selection");
    }

    #[test]
    fn options_are_checked() {
        let o = RunCommandOptions { concurrency: 0, ..Default::default() };
        assert_eq!(check_options(&o).unwrap_err().to_string(), "batch size (-c) must be at least 1");
        let o = RunCommandOptions { workers: s(&["a"]), labels: s(&["b"]), ..Default::default() };
        assert_eq!(check_options(&o).unwrap_err().to_string(), "specify either --workers or --labels, not both");
    }

    #[test]
    fn command_from_argument_or_command_sh() {
        let dir = tempfile::tempdir().unwrap();
        let sh = dir.path().join("command.sh");
        assert_eq!(command_text(Some("  uptime \n"), &sh).unwrap(), "uptime");
        assert_eq!(
            command_text(None, &sh).unwrap_err().to_string(),
            "command argument or workspace/command.sh is required"
        );
        std::fs::write(&sh, "echo one\necho two\n").unwrap();
        assert_eq!(command_text(None, &sh).unwrap(), "echo one\necho two");
        std::fs::write(&sh, " \n").unwrap();
        assert_eq!(command_text(None, &sh).unwrap_err().to_string(), "command is empty");
        assert_eq!(command_text(Some(""), &sh).unwrap_err().to_string(), "command is empty");
    }

    /// The rendered script, run by a real bash: variables exported, a failing first line does not
    /// stop the command, the exit status is the command's.
    #[test]
    fn script_runs_the_command_as_written() {
        let script = command_script("b-1", "10.0.0.9", "false\necho \"$BUCKET_ID $WORKER_IP $UNSET_VAR\"\nexit 7");
        let out = std::process::Command::new("bash").arg("-c").arg(script.render().unwrap()).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "b-1 10.0.0.9 \n");
        assert_eq!(out.status.code(), Some(7));
    }

    #[test]
    fn failure_names_failed_and_unreached_workers() {
        let r = RunCommandReport {
            batches: vec![s(&["a", "b"])],
            failed: vec![("b".into(), "worker b: ssh exited with status 3".into())],
            not_run: s(&["c"]),
            health_failure: None,
        };
        let e = r.failure().unwrap().to_string();
        assert!(e.starts_with("run command failed: worker b: ssh exited with status 3"), "{e}");
        assert!(e.contains("failed workers: b") && e.contains("not run (a batch failed): c"), "{e}");
        assert!(RunCommandReport::default().failure().is_none());
    }
}
