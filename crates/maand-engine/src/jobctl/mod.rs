//! `maand job start|stop|restart|status <jobs>` and `maand job run <jobs> --target T` (spec §3.5,
//! internals §7.6): every catalog worker must be at the bucket's deploy state (worker.py), then
//! the target runs on the selected jobs' active allocations — jobs in `deployment_seq` order (the
//! jobs of one seq in parallel), each job in batches of `max_concurrent_upgrades` in rollout order
//! through the deploy's batch executor, with an optional health gate after every batch (over what
//! was rolled so far; with it, allocations failing their health check beforehand go first). An
//! interrupt lets the batch in flight finish and starts nothing new. A job that registers `job_control` commands
//! runs those instead (the [`JobControlHooks`] seam), its `health_check` commands join its health
//! gates, and what the commands wrote to the KV is committed at the end (DESIGN §3.10).

mod hooks;
mod plan;
mod sync_check;
mod target;

pub use hooks::JobControlHooks;
pub use plan::{plan_waves, ControlCatalog, JobTask};
pub use sync_check::{check_workers_in_sync, sync_check_script, SyncMismatch};
pub use target::{validate_target, BUILT_IN_TARGETS};

use crate::batch_executor::{execute, BatchSteps, Ending};
use crate::bucket::Bucket;
use crate::deploy::gate::GateContext;
use crate::health::ExtraCheck;
use crate::history::{job_control_outcome, RunKind, RunRecorder};
use crate::jobcmd::{persist_kv, shared_kv, HealthCheckCommands, JobCommands};
use crate::output::Reporter;
use crate::remote_steps::{Remote, TargetBatch};
use crate::runlog::RunLog;
use crate::transport::ssh_executor;
use maand_core::rollout::{plan_target_rollout, Batch, Gate};
use maand_core::{Error, ErrorKind, Result};
use maand_remote::interrupt::Interrupt;
use maand_remote::Executor;
use maand_store::catalog;
use maand_store::kv::KvStore;
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;

#[derive(Debug, Clone, Default)]
pub struct JobControlOptions {
    /// The jobs (the comma-separated `<job>` argument).
    pub jobs: Vec<String>,
    /// `start`, `stop`, `restart`, `status` or a custom Makefile target (validated).
    pub target: String,
    /// `--allocations`: only these worker IPs (empty: every active allocation).
    pub allocations: Vec<String>,
    /// `--health_check`: the job's health gate (wait mode) after every batch. Not run after
    /// `stop` or `status`, where a healthy service is not the expected outcome.
    pub health_check: bool,
    /// Asked between batches: once set, no new batch or job starts.
    pub interrupt: Interrupt,
}

/// How one job's part of the run went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobRun {
    pub job: String,
    pub deployment_seq: i64,
    /// `makefile` (runner.py batches) or `job_control` (the job's commands).
    pub via: &'static str,
    /// The batches that ran, in order (the last one may have failed).
    pub batches: Vec<Vec<String>>,
    /// Why nothing ran on this job (no selected allocation, an earlier seq failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// `job <j> target <t> failed: …`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobControlReport {
    pub target: String,
    /// In run order (deployment_seq, then job name).
    pub jobs: Vec<JobRun>,
    /// An interrupt stopped the run between batches.
    pub interrupted: bool,
}

impl JobControlReport {
    /// What an interrupt left undone, or None when the run was not cut short.
    pub fn interruption(&self) -> Option<String> {
        if !self.interrupted {
            return None;
        }
        let mut lines = vec![format!("job {} interrupted: no new batch was started", self.target)];
        for j in &self.jobs {
            let ran: Vec<String> = j.batches.iter().map(|b| b.join(", ")).collect();
            let ran = if ran.is_empty() { "nothing".to_string() } else { ran.join("; ") };
            match &j.skipped {
                Some(why) => lines.push(format!("  job {}: ran on {ran}; {why}", j.job)),
                None => lines.push(format!("  job {}: ran on {ran}", j.job)),
            }
        }
        lines.push("run the same command again (with --allocations) for what remains".to_string());
        Some(lines.join("\n"))
    }

    /// The failed jobs' errors (one per line), or None when every job succeeded.
    pub fn failure(&self) -> Option<Error> {
        let lines: Vec<&str> = self.jobs.iter().filter_map(|j| j.error.as_deref()).collect();
        (!lines.is_empty()).then(|| Error::new(ErrorKind::RunCommand, lines.join("\n")))
    }
}

/// Everything a run talks to. `hooks` and `health` are where the job-commands pipeline plugs in
/// `job_control` and `health_check` commands.
pub struct JobControlContext<'a> {
    pub bucket: &'a Bucket,
    pub executor: &'a dyn Executor,
    pub out: &'a dyn Reporter,
    pub log: &'a RunLog,
    pub hooks: &'a dyn JobControlHooks,
    pub health: &'a dyn ExtraCheck,
}

/// `maand job <target>` in the bucket at `root`, under the bucket lock, over SSH: Makefile
/// targets, or the job's `job_control` commands (with `health_check` commands in its gates). The
/// KV the commands wrote is committed at the end, also when a job failed. A failed job is in the
/// report (`JobControlReport::failure`); a bad target, an unknown job or worker, or a worker out
/// of sync is an error before anything runs.
pub fn job_control(root: &Path, opts: &JobControlOptions, out: &dyn Reporter) -> Result<JobControlReport> {
    let target = validate_target(&opts.target)?;
    let bucket = Bucket::open_locked(root, "job")?;
    // `status` changes nothing: it is not recorded in the history.
    let run = if target == "status" { None } else { Some(RunRecorder::begin(&bucket, RunKind::Job, Some(&target))?) };
    let executor = ssh_executor(&bucket);
    let report = job_control_with_commands(&bucket, &executor, opts, out);
    executor.close();
    if let Some(run) = run {
        run.end(&bucket, job_control_outcome(&bucket, &report), out);
    }
    report
}

/// `maand job <target>` on an opened (locked) bucket through `executor`, with the bucket's job
/// commands and a KV commit at the end.
pub fn job_control_with_commands(
    bucket: &Bucket,
    executor: &dyn Executor,
    opts: &JobControlOptions,
    out: &dyn Reporter,
) -> Result<JobControlReport> {
    let conn = bucket.connect()?;
    let log = RunLog::open(&bucket.paths, bucket.conf.log_format, "job", catalog::bucket_row(&conn)?.update_seq)?;
    let kv = shared_kv(KvStore::load(&conn)?);
    let report = {
        let commands = JobCommands::start(bucket, &conn, kv.clone(), out, &log)?;
        let health = HealthCheckCommands { commands: &commands };
        let ctx = JobControlContext { bucket, executor, out, log: &log, hooks: &commands, health: &health };
        job_control_with(&ctx, opts)
    };
    persist_kv(&conn, &kv, "job")?;
    report
}

/// `maand job <target>` on an opened (locked) bucket.
pub fn job_control_with(ctx: &JobControlContext<'_>, opts: &JobControlOptions) -> Result<JobControlReport> {
    let target = validate_target(&opts.target)?;
    let cat = ControlCatalog::load(&ctx.bucket.connect()?)?;
    let waves = plan_waves(&cat, &opts.jobs, &opts.allocations)?;
    let remote = Remote { executor: ctx.executor, out: ctx.out, log: ctx.log, bucket_id: &cat.snap.bucket_id };
    check_workers_in_sync(&remote, &cat.snap.workers, cat.snap.update_seq, ctx.bucket.conf.parallel)?;

    let runner = JobRunner { ctx, cat: &cat, remote: &remote, target: &target, opts };
    let mut report = JobControlReport { target: target.clone(), jobs: Vec::new(), interrupted: false };
    let mut failed_seq: Option<i64> = None;
    for (seq, tasks) in waves {
        if opts.interrupt.requested() {
            for t in tasks {
                report.jobs.push(t.not_run("interrupted before it started".into()));
            }
            continue;
        }
        if let Some(failed) = failed_seq {
            for t in tasks {
                ctx.out.message(&format!("job: skip {} (deployment_seq {failed} failed)", t.job));
                report.jobs.push(t.not_run(format!("a job of deployment_seq {failed} failed")));
            }
            continue;
        }
        let runs: Vec<JobRun> = std::thread::scope(|s| {
            let handles: Vec<_> = tasks.iter().map(|t| s.spawn(|| runner.run(t))).collect();
            handles
                .into_iter()
                .zip(&tasks)
                .map(|(h, t)| h.join().unwrap_or_else(|_| t.failed("job control thread panicked".into())))
                .collect()
        });
        if runs.iter().any(|r| r.error.is_some()) {
            failed_seq = Some(seq);
        }
        report.jobs.extend(runs);
    }
    report.interrupted = report.jobs.iter().any(|j| j.skipped.as_deref().is_some_and(|w| w.starts_with("interrupted")));
    Ok(report)
}

impl JobTask {
    fn run_record(&self, via: &'static str) -> JobRun {
        JobRun {
            job: self.job.clone(),
            deployment_seq: self.deployment_seq,
            via,
            batches: Vec::new(),
            skipped: None,
            error: None,
        }
    }

    fn not_run(&self, why: String) -> JobRun {
        JobRun { skipped: Some(why), ..self.run_record("makefile") }
    }

    fn failed(&self, error: String) -> JobRun {
        JobRun { error: Some(error), ..self.run_record("makefile") }
    }
}

/// Runs one job's part.
struct JobRunner<'a> {
    ctx: &'a JobControlContext<'a>,
    cat: &'a ControlCatalog,
    remote: &'a Remote<'a>,
    target: &'a str,
    opts: &'a JobControlOptions,
}

impl JobRunner<'_> {
    fn run(&self, task: &JobTask) -> JobRun {
        let out = self.ctx.out;
        let job = task.job.as_str();
        for w in &task.warnings {
            out.message(w);
        }
        if task.workers.is_empty() {
            let why = "no active allocation selected".to_string();
            out.message(&format!("job: skip {job} ({why})"));
            return task.not_run(why);
        }
        let fail = |run: JobRun, e: String| JobRun {
            error: Some(format!("job {job} target {} failed: {e}", self.target)),
            ..run
        };
        if self.ctx.hooks.has_job_control(job) {
            let mut run = task.run_record("job_control");
            out.message(&format!("job: {} {job} via job_control on {}", self.target, task.workers.join(", ")));
            run.batches.push(task.workers.clone());
            if let Err(e) = self.ctx.hooks.run_job_control(job, self.target, &task.workers) {
                return fail(run, e.to_string());
            }
            return match self.gate(job) {
                Ok(()) => run,
                Err(e) => fail(run, e.to_string()),
            };
        }
        let mut run = task.run_record("makefile");
        let gated = self.gated();
        let unhealthy: BTreeSet<String> = if gated {
            match self.gates().failing(job, &task.workers) {
                Ok(failing) => {
                    for (ip, why) in &failing {
                        out.message(&format!("job: {job} on {ip} fails its health check ({why}); it goes first"));
                    }
                    failing.into_keys().collect()
                }
                Err(e) => return fail(run, e.to_string()),
            }
        } else {
            BTreeSet::new()
        };
        let batches = plan_target_rollout(self.target, &task.workers, &unhealthy, task.batch_size, gated);
        let steps = TargetSteps { runner: self, job, started: Mutex::new(Vec::new()) };
        let execution = execute(&batches, &steps, &|| self.opts.interrupt.requested());
        run.batches = steps.started.into_inner().unwrap_or_else(|p| p.into_inner());
        match execution.ending {
            Ending::Completed => run,
            Ending::Interrupted { next } => {
                JobRun { skipped: Some(format!("interrupted: {} of {} batches ran", next, batches.len())), ..run }
            }
            Ending::Failed { error, .. } => fail(run, error.to_string()),
        }
    }

    /// Gates run after every batch with `--health_check` (not after stop/status).
    fn gated(&self) -> bool {
        self.opts.health_check && !matches!(self.target, "stop" | "status")
    }

    fn gates(&self) -> GateContext<'_> {
        GateContext {
            bucket: self.ctx.bucket,
            snap: &self.cat.snap,
            executor: self.ctx.executor,
            extra: self.ctx.health,
        }
    }

    fn run_batch(&self, job: &str, batch: &[String]) -> std::result::Result<(), String> {
        let timeout_secs =
            self.cat.snap.jobs.get(job).and_then(|j| j.remote_timeout_seconds).and_then(|t| u64::try_from(t).ok());
        let workers = batch.iter().map(|ip| (self.cat.snap.addr(ip), Vec::new())).collect();
        let run = TargetBatch { job, phase: "job_control", target: self.target, timeout_secs, swap: false };
        self.remote.run_target_batch(&run, workers)
    }

    /// The job's health gate in wait mode when `--health_check` asks for it (not after stop/status).
    fn gate(&self, job: &str) -> Result<()> {
        if !self.gated() {
            return Ok(());
        }
        let active = self.cat.active(job);
        self.gates().gate(job, &active, &|m: &str| self.ctx.out.message(m))
    }
}

/// `maand job`'s side of the batch executor for one job: its target through runner.py, no hooks
/// after a batch, the gate over what was rolled so far.
struct TargetSteps<'a> {
    runner: &'a JobRunner<'a>,
    job: &'a str,
    started: Mutex<Vec<Vec<String>>>,
}

impl BatchSteps for TargetSteps<'_> {
    fn run(&self, batch: &Batch) -> Result<()> {
        let out = self.runner.ctx.out;
        let repair = if batch.repair { " (repair)" } else { "" };
        out.message(&format!(
            "job: {} {} batch {}/{}{repair} on {}",
            self.runner.target,
            self.job,
            batch.index + 1,
            batch.count,
            batch.allocations.join(", ")
        ));
        if let Ok(mut started) = self.started.lock() {
            started.push(batch.allocations.clone());
        }
        self.runner.run_batch(self.job, &batch.allocations).map_err(|e| Error::new(ErrorKind::RunCommand, e))
    }

    fn after(&self, _batch: &Batch) -> Result<()> {
        Ok(())
    }

    fn gate(&self, _batch: &Batch, gate: &Gate) -> Result<()> {
        self.runner.gates().gate(self.job, &gate.allocations, &|m: &str| self.runner.ctx.out.message(m))
    }

    fn passed(&self, _batches: &[&Batch]) -> Result<()> {
        Ok(())
    }
}
