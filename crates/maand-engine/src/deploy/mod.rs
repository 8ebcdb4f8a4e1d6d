//! `maand deploy` (spec §5 with the DESIGN §3 fixes): reconcile disabled/removed allocations, then
//! per `deployment_seq` wave: check the health of running jobs (pre-flight), run `pre_deploy`
//! hooks, stage and plan each job with its batches, ship what changed to the side directories,
//! and roll each job out batch by batch — files swapped in right before a batch, each allocation
//! promoted as soon as its batch passed its gate. A failed job never undoes another job's
//! promotion; a job whose upstream failed in this run is reported blocked; an interrupt lets the
//! step in flight finish and starts nothing new. `update_seq` advances only when workers were
//! actually synced, and an unchanged deploy contacts no worker at all. A rollback is a deploy of
//! one job staged from its kept releases; with `rollback_on_failure`, a job whose batch failed
//! has what this run rolled taken back to what ran before.

mod auto_rollback;
mod diff;
pub(crate) mod gate;
mod hooks;
mod plan;
mod planner;
mod reach;
mod reconcile;
mod rollback;
mod rollout;
mod scratch;
pub mod snapshot;
mod stage;
mod staged_tree;
mod sync;
mod template_data;
mod worker_files;

pub use auto_rollback::AutoRollbackOutcome;
pub use plan::{AllocationPlan, DeployPlan, JobPlan, WavePlan};
pub(crate) use planner::{hash_namespace, plan_job, PlanInput};
pub use rollback::RollbackRequest;
pub(crate) use stage::{io as io_error, write_cert_files, write_job_files};
pub(crate) use staged_tree::{job_staging_dir, prepare_worker_dir, write_staged};
pub(crate) use template_data::{KvTemplateData, PrometheusFragments};
pub use worker_files::{RUNNER_PY, WORKER_PY};

use crate::bucket::{now_unix, Bucket};
use crate::build::{allocation_ns, build_in_with, job_ns, BuildOptions};
use crate::health::bounded_map;
use crate::history::{deploy_outcome, RunKind, RunRecorder};
use crate::jobcmd::{lock_kv, persist_kv, shared_kv, HealthCheckCommands, JobCommands, SharedKv};
use crate::output::Reporter;
use crate::remote_steps::Remote;
use crate::runlog::{LogCtx, LogEvent, RunLog};
use crate::template::Limits;
use gate::GateContext;
use hooks::DeployHooks;
use maand_core::manifest::Event;
use maand_core::rollout::{blocked_jobs, file_manifest_json, wave_jobs, WaveCandidate};
use maand_core::rollout::{resume_release, was_promoted, PlannedAction};
use maand_core::{Error, ErrorKind, Result};
use maand_remote::interrupt::Interrupt;
use maand_remote::Executor;
use maand_store::catalog;
use maand_store::kv::KvStore;
use maand_store::secrets::SecretKey;
use planner::{plan_rollout, running_allocations, PlannedJob, RolloutContext};
use rollout::JobEnd;
use rusqlite::Connection;
use serde::Serialize;
use snapshot::Snapshot;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Jobs of one wave rolled out at once. Bounded so that the SSH sessions multiplexed over one
/// worker's connection stay well under sshd's default `MaxSessions` (10).
const CONCURRENT_JOBS: usize = 4;

#[derive(Debug, Clone, Default)]
pub struct DeployOptions {
    pub jobs: Vec<String>,
    pub build: bool,
    pub dry_run: bool,
    pub force: bool,
    pub sync_only: bool,
    /// With `dry_run`: diff each changed file against the last promoted release.
    pub diff: bool,
    /// With `dry_run`: run no hook (`post_build`, `pre_deploy`); rollout order is the default.
    pub no_hooks: bool,
    /// `maand rollback`: deploy only this job, each allocation staged from a kept release (no
    /// build, no reconcile of other jobs).
    pub rollback: Option<RollbackRequest>,
    /// When a batch fails, take what this run rolled of that job back to what ran before (also
    /// per job: manifest `rollback_on_failure`).
    pub rollback_on_failure: bool,
    /// Asked between batches: once set, no new batch, job or wave starts.
    pub interrupt: Interrupt,
}

/// Where a job's rollout got to in this run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobProgress {
    /// Allocations promoted in this run.
    pub promoted: Vec<String>,
    /// Allocations of the plan that were not (a later deploy rolls them).
    pub remaining: Vec<String>,
    /// Allocations whose batch ran but did not pass (their files were swapped in).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unproven: Vec<String>,
}

/// What a deploy did, job by job.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeployReport {
    pub update_seq: i64,
    pub deployed: Vec<String>,
    pub skipped: Vec<String>,
    pub blocked: Vec<String>,
    pub failed: BTreeMap<String, String>,
    /// True when an interrupt stopped the deploy between batches.
    pub interrupted: bool,
    /// Jobs stopped by the interrupt, and jobs it kept from starting.
    pub interrupted_jobs: Vec<String>,
    pub not_started: Vec<String>,
    /// Per job that rolled out (fully or not): what was promoted and what remains.
    pub progress: BTreeMap<String, JobProgress>,
    /// (job, worker) whose stop waits for an unreachable worker.
    pub pending_stops: Vec<(String, String)>,
    /// Per failed job: what its automatic rollback did.
    pub rolled_back: BTreeMap<String, AutoRollbackOutcome>,
    pub plan: DeployPlan,
}

impl DeployReport {
    /// One line for the end of a deploy: `deploy: 2 jobs deployed (a, b), 1 unchanged, 1 failed (c)`,
    /// or `deploy: nothing to deploy` when the catalog has no job to roll out.
    pub fn summary(&self) -> String {
        if let Some(job) = &self.plan.rollback {
            return self.rollback_summary(job);
        }
        let named = |n: usize, what: &str, jobs: &[&String]| {
            let list: Vec<&str> = jobs.iter().map(|j| j.as_str()).collect();
            format!("{n} {what} ({})", list.join(", "))
        };
        let mut parts = Vec::new();
        if !self.deployed.is_empty() {
            let noun = if self.deployed.len() == 1 { "job deployed" } else { "jobs deployed" };
            parts.push(named(self.deployed.len(), noun, &self.deployed.iter().collect::<Vec<_>>()));
        }
        if !self.skipped.is_empty() {
            parts.push(format!("{} unchanged", self.skipped.len()));
        }
        if !self.failed.is_empty() {
            parts.push(named(self.failed.len(), "failed", &self.failed.keys().collect::<Vec<_>>()));
        }
        if !self.blocked.is_empty() {
            parts.push(named(self.blocked.len(), "blocked", &self.blocked.iter().collect::<Vec<_>>()));
        }
        if !self.interrupted_jobs.is_empty() {
            let jobs: Vec<&String> = self.interrupted_jobs.iter().collect();
            parts.push(named(jobs.len(), "interrupted", &jobs));
        }
        if !self.not_started.is_empty() {
            parts.push(named(self.not_started.len(), "not started", &self.not_started.iter().collect::<Vec<_>>()));
        }
        if !self.pending_stops.is_empty() {
            let stops: Vec<String> = self.pending_stops.iter().map(|(j, w)| format!("{j} on {w}")).collect();
            parts.push(format!("stop pending (worker unreachable): {}", stops.join(", ")));
        }
        if parts.is_empty() {
            return "deploy: nothing to deploy (no job in the catalog; run maand build)".to_string();
        }
        format!("deploy: {}", parts.join(", "))
    }

    /// `deploy failed: …` naming each failed or blocked job (and what its automatic rollback
    /// did), or None when everything succeeded. A rollback's says how to resume it.
    pub fn failure(&self) -> Option<Error> {
        if self.failed.is_empty() && self.blocked.is_empty() {
            return None;
        }
        let rolled_back = |j: &str| self.rolled_back.get(j).map(|r| format!("; {}", r.describe())).unwrap_or_default();
        let mut parts: Vec<String> = self
            .failed
            .iter()
            .map(|(j, e)| format!("job {j}: {e}{}{}", self.progress_note(j), rolled_back(j)))
            .collect();
        parts.extend(self.blocked.iter().map(|j| format!("job {j}: blocked (an upstream job failed)")));
        if self.plan.rollback.is_some() && self.progress.values().any(|p| !p.promoted.is_empty()) {
            parts.push(format!("re-run {} to resume", self.resume_command()));
        }
        Some(Error::msg(format!("{} failed: {}", self.command(), parts.join("\n"))))
    }

    /// What the interrupt left, or None when the deploy was not interrupted.
    pub fn interruption(&self) -> Option<String> {
        if !self.interrupted {
            return None;
        }
        let mut lines = vec![format!("{} interrupted: no new batch was started", self.command())];
        for (job, p) in &self.progress {
            if p.promoted.is_empty() && p.remaining.is_empty() {
                continue;
            }
            let done = if p.promoted.is_empty() { "nothing".to_string() } else { p.promoted.join(", ") };
            let left = if p.remaining.is_empty() { "nothing".to_string() } else { p.remaining.join(", ") };
            lines.push(format!("  job {job}: done (promoted) on {done}; remaining on {left}"));
        }
        if !self.not_started.is_empty() {
            lines.push(format!("  not started: {}", self.not_started.join(", ")));
        }
        lines.push(format!("re-run {} to resume: only what was not promoted is rolled out", self.resume_command()));
        Some(lines.join("\n"))
    }

    /// `deploy`, or `rollback` for a rollback.
    fn command(&self) -> &'static str {
        if self.plan.rollback.is_some() {
            "rollback"
        } else {
            "deploy"
        }
    }

    /// The command that resumes this run: the same deploy, or the rollback to the releases it chose.
    fn resume_command(&self) -> String {
        let Some(job) = &self.plan.rollback else { return "maand deploy".to_string() };
        let releases: Vec<i64> = self.rollback_targets(job).into_iter().map(|(_, release, _)| release).collect();
        match resume_release(&releases) {
            Some(n) => format!("maand rollback {job} --to {n}"),
            None => format!("maand rollback {job}"),
        }
    }

    /// (worker, release, version) of each allocation the rollback of `job` planned.
    fn rollback_targets(&self, job: &str) -> Vec<(String, i64, String)> {
        let plans = self.plan.waves.iter().flat_map(|w| &w.jobs).filter(|p| p.job == job);
        plans
            .flat_map(|p| &p.allocations)
            .filter_map(|a| a.release.map(|r| (a.worker_ip.clone(), r, a.new_version.clone())))
            .collect()
    }

    /// `rollback: job "db" back to release 3 (version 1.0.0) on 10.0.0.1, 10.0.0.2`.
    fn rollback_summary(&self, job: &str) -> String {
        if self.deployed.iter().any(|j| j == job) {
            let mut groups: BTreeMap<(i64, String), Vec<String>> = BTreeMap::new();
            for (ip, release, version) in self.rollback_targets(job) {
                groups.entry((release, version)).or_default().push(ip);
            }
            let parts: Vec<String> = groups
                .into_iter()
                .map(|((release, version), ips)| format!("release {release} (version {version}) on {}", ips.join(", ")))
                .collect();
            return format!("rollback: job \"{job}\" back to {}", parts.join("; "));
        }
        if self.skipped.iter().any(|j| j == job) {
            return format!("rollback: job \"{job}\" already runs those releases; nothing to do");
        }
        format!("rollback: job \"{job}\" not rolled back")
    }

    fn progress_note(&self, job: &str) -> String {
        match self.progress.get(job) {
            Some(p) if !p.promoted.is_empty() || !p.remaining.is_empty() => format!(
                " (promoted in this run: {}; not rolled out: {})",
                if p.promoted.is_empty() { "none".to_string() } else { p.promoted.join(", ") },
                if p.remaining.is_empty() { "none".to_string() } else { p.remaining.join(", ") }
            ),
            _ => String::new(),
        }
    }
}

/// Run a deploy (or a dry-run) in the bucket at `root`. Whatever happens, `tmp/` (the staged
/// files: rendered templates, certificate keys) is removed at the end.
pub fn deploy(root: &Path, opts: &DeployOptions, out: &dyn Reporter) -> Result<DeployReport> {
    let command = if opts.rollback.is_some() { "rollback" } else { "deploy" };
    let bucket = Bucket::open_locked(root, command)?;
    let result = if opts.dry_run { plan_workspace(&bucket, opts, out) } else { build_and_deploy(&bucket, opts, out) };
    let _ = std::fs::remove_dir_all(bucket.paths.tmp());
    result
}

/// The plan of the workspace as `deploy -b` would run it now: built into a scratch copy of the
/// catalog (same validation and errors as `maand build`), planned against the last promoted state,
/// with `pre_deploy` hooks run against the copy unless `--no-hooks`. Nothing reaches the bucket.
/// A rollback's plan is made on the copy as it is (a rollback builds nothing).
fn plan_workspace(bucket: &Bucket, opts: &DeployOptions, out: &dyn Reporter) -> Result<DeployReport> {
    let scratch = scratch::ScratchCatalog::copy(bucket)?;
    if opts.rollback.is_none() {
        let build = BuildOptions { skip_post_build: opts.no_hooks, ..Default::default() };
        build_in_with(&scratch.bucket, &build, out)?;
    }
    let executor = crate::transport::ssh_executor(&scratch.bucket);
    let result = deploy_with(&scratch.bucket, opts, out, &executor);
    executor.close();
    result
}

/// A deploy (a rollback when `opts.rollback` says so), recorded in the history.
fn build_and_deploy(bucket: &Bucket, opts: &DeployOptions, out: &dyn Reporter) -> Result<DeployReport> {
    if opts.build && opts.rollback.is_none() {
        build_in_with(bucket, &BuildOptions::default(), out)?;
    }
    let run = match &opts.rollback {
        Some(r) => {
            // A rollback that cannot be done is refused before it is a run.
            let conn = bucket.connect()?;
            rollback::requested_releases(&conn, &Snapshot::load(&conn)?, r)?;
            RunRecorder::begin(bucket, RunKind::Rollback, Some(&r.job))?
        }
        None => RunRecorder::begin(bucket, RunKind::Deploy, None)?,
    };
    let executor = crate::transport::ssh_executor(bucket);
    let result = deploy_with(bucket, opts, out, &executor);
    executor.close();
    run.end(bucket, deploy_outcome(&result), out);
    crate::prometheus::push_after_deploy(bucket, opts.dry_run, result.as_ref().ok(), out);
    result
}

/// Deploy through a given executor (tests pass a recording one).
pub fn deploy_with(
    bucket: &Bucket,
    opts: &DeployOptions,
    out: &dyn Reporter,
    executor: &dyn Executor,
) -> Result<DeployReport> {
    let staging_root = private_absolute(&bucket.paths.tmp())?;
    maand_store::private_files::remove_staging(&bucket.paths)?;
    let conn = bucket.connect()?;
    let snap = Snapshot::load(&conn)?;
    let kv = shared_kv(KvStore::load(&conn)?);
    let key = SecretKey::load(&bucket.paths).ok();
    let new_seq = snap.update_seq + 1;
    let log = match (opts.dry_run, &opts.rollback) {
        (true, _) => RunLog::disabled(),
        (false, None) => RunLog::open(&bucket.paths, bucket.conf.log_format, "deploy", new_seq)?,
        (false, Some(_)) => RunLog::open(&bucket.paths, bucket.conf.log_format, "rollback", new_seq)?,
    };
    let commands = JobCommands::start(bucket, &conn, kv.clone(), out, &log)?;
    let writer = Mutex::new(bucket.connect()?);
    let hooks = DeployHooks { commands: &commands, conn: &writer, checkpoint: !opts.dry_run };
    let health_commands = HealthCheckCommands { commands: &commands };
    let bucket_id = snap.bucket_id.clone();
    let remote = Remote { executor, out, log: &log, bucket_id: &bucket_id };
    let timeouts: BTreeMap<String, u64> = snap
        .jobs
        .values()
        .filter_map(|j| j.remote_timeout_seconds.and_then(|t| u64::try_from(t).ok()).map(|t| (j.name.clone(), t)))
        .collect();
    let timeout_for = |job: &str| -> Option<u64> { timeouts.get(job).copied() };
    let interrupted = || opts.interrupt.requested();
    let mut report = DeployReport { update_seq: snap.update_seq, ..Default::default() };
    report.plan.rollback = opts.rollback.as_ref().map(|r| r.job.clone());
    let jobs_filter = match &opts.rollback {
        Some(r) => vec![r.job.clone()],
        None => opts.jobs.clone(),
    };

    // Reconcile disabled and removed allocations first (all jobs, whatever --jobs says; a
    // rollback touches its job only).
    let reconciles = opts.rollback.is_none();
    if reconciles {
        report.plan.reconcile = reconcile::reconcile_plan(&conn, &snap)?;
    }
    let mut failed: BTreeMap<String, String> = BTreeMap::new();
    let reach = reach::Reachability::new(Duration::from_secs(bucket.conf.connect_timeout_seconds.max(1)));
    if !opts.dry_run && reconciles {
        let outcome = reconcile::reconcile(
            &reconcile::ReconcileInput {
                conn: &conn,
                snap: &snap,
                remote: &remote,
                staging_root: &staging_root,
                timeout_for: &timeout_for,
                hooks: &hooks,
                reach: &reach,
                parallel: bucket.conf.parallel,
            },
            &kv,
        )?;
        persist_kv(&conn, &kv, "deploy")?;
        failed.extend(outcome.failed);
        report.pending_stops = outcome.pending;
        let gates = GateContext { bucket, snap: &snap, executor, extra: &health_commands };
        for job in &outcome.stopped_jobs {
            let active: Vec<String> = snap.active(job).iter().map(|a| a.worker_ip.clone()).collect();
            if !active.is_empty() && !failed.contains_key(job) {
                if let Err(e) = gates.gate(job, &active, &|m: &str| out.message(m)) {
                    failed.insert(job.clone(), e.to_string());
                }
            }
        }
    }
    let snap = if opts.dry_run || !reconciles { snap } else { Snapshot::load(&conn)? };
    let gates = GateContext { bucket, snap: &snap, executor, extra: &health_commands };

    let candidates: Vec<WaveCandidate> = snap
        .jobs
        .keys()
        .map(|job| WaveCandidate {
            job: job.clone(),
            deployment_seq: snap.deployment_seq(job),
            non_removed_allocations: snap.non_removed(job).len(),
        })
        .collect();
    let upstream_of: BTreeMap<String, Vec<String>> = snap.jobs.keys().map(|j| (j.clone(), snap.upstream(j))).collect();
    let syncer = sync::Syncer {
        remote: &remote,
        snap: &snap,
        staging_root: &staging_root,
        update_seq: new_seq,
        use_sudo: bucket.conf.use_sudo,
        parallel: bucket.conf.parallel,
        prepared: Default::default(),
        reach: &reach,
    };
    let preflight = |job: &str, running: &[String]| -> Result<BTreeMap<String, String>> {
        if running.is_empty() {
            return Ok(BTreeMap::new());
        }
        out.job_status(job, "pre-flight health check");
        let failing = gates.failing(job, running)?;
        for (ip, why) in &failing {
            out.message(&format!(
                "deploy: job \"{job}\" on {ip} fails its health check before the rollout ({why}); it is rolled out first"
            ));
        }
        Ok(failing)
    };
    let records = CatalogRecords {
        writer: &writer,
        snap: &snap,
        kv: &kv,
        staging_root: &staging_root,
        key: key.as_ref(),
        releases: Mutex::default(),
    };
    let mut synced_any = false;
    let mut told_unreachable: std::collections::BTreeSet<String> = Default::default();
    let mut planned_waves: Vec<(i64, Vec<PlannedJob>)> = Vec::new();
    let deps = RolloutDeps {
        remote: &remote,
        snap: &snap,
        hooks: &hooks,
        gates: &gates,
        timeouts: &timeouts,
        sync_only: opts.sync_only,
        records: &records,
        interrupted: &interrupted,
    };
    let auto_rollback = auto_rollback::AutoRollback {
        conn: &conn,
        kv: &kv,
        key: key.as_ref(),
        staging_root: &staging_root,
        update_seq: new_seq,
        syncer: &syncer,
        records: &records,
        deps: &deps,
    };
    for (seq, jobs) in wave_jobs(&candidates, &jobs_filter) {
        if interrupted() {
            report.not_started.extend(jobs);
            continue;
        }
        let mut wave = Vec::new();
        for job in jobs {
            let blocked = blocked_jobs(&failed.keys().cloned().collect(), &upstream_of);
            if let Some(reason) = failed.get(&job) {
                wave.push(not_planned(&job, seq, "failed", reason));
                continue;
            }
            if blocked.contains(&job) {
                out.job_status(&job, "blocked (an upstream job failed)");
                wave.push(not_planned(&job, seq, "blocked", "an upstream job failed in this deploy"));
                report.blocked.push(job.clone());
                continue;
            }
            match plan_one(
                &job,
                seq,
                &PlanCtx {
                    conn: &conn,
                    snap: &snap,
                    kv: &kv,
                    key: key.as_ref(),
                    staging_root: &staging_root,
                    new_seq,
                    opts,
                    hooks: &hooks,
                    out,
                    preflight: &preflight,
                    template_limits: Limits::with_time_limit_seconds(bucket.conf.template_timeout_seconds),
                },
            ) {
                Ok(p) => wave.push(p),
                Err(e) => {
                    out.message(&format!("deploy: job \"{job}\" failed: {e}"));
                    failed.insert(job.clone(), e.to_string());
                    wave.push(not_planned(&job, seq, "failed", &e.to_string()));
                }
            }
        }
        if opts.dry_run {
            planned_waves.push((seq, wave));
            continue;
        }
        // Record staged hashes, then ship and roll out the jobs that need it.
        let mut to_roll = Vec::new();
        for p in wave {
            if p.plan.deploys() {
                record_plan_hashes(&conn, &snap, &p)?;
                to_roll.push(p);
            } else {
                let job = p.plan.job.clone();
                if p.plan.decision == "skip" && snap.post_deploy_pending.contains(&job) {
                    // Promoted everywhere, but its post_deploy failed last time: run only that.
                    out.message(&format!("deploy: job \"{job}\": running post_deploy again (it failed last time)"));
                    let end = rollout::post_deploy(&hooks, &records, &snap, &job);
                    finish_job(&writer, &kv, out, &job, &end)?;
                    match end {
                        JobEnd::Failed(e) => {
                            failed.insert(job, e);
                        }
                        _ => report.deployed.push(job),
                    }
                } else if p.plan.decision == "skip" {
                    report_skip(out, &log, &job);
                    report.skipped.push(job);
                }
                planned_waves.push((seq, vec![p]));
            }
        }
        if to_roll.is_empty() {
            continue;
        }
        let names: Vec<String> = to_roll.iter().map(|p| p.plan.job.clone()).collect();
        for job in &names {
            out.job_status(job, "syncing files");
        }
        let synced = syncer.sync_jobs(&names)?;
        synced_any |= synced.values().any(Result::is_ok);
        let newly: Vec<String> = reach.all().into_keys().filter(|ip| !told_unreachable.contains(ip)).collect();
        for ip in newly {
            let hit: Vec<&str> =
                names.iter().filter(|j| snap.active(j).iter().any(|a| a.worker_ip == ip)).map(String::as_str).collect();
            let jobs = if hit.is_empty() { "no job fails".to_string() } else { format!("failing {}", hit.join(", ")) };
            out.message(&format!("deploy: worker {ip} unreachable; {jobs} (nothing changed there)"));
            told_unreachable.insert(ip);
        }
        // The jobs of one wave do not depend on each other (DESIGN §3.5): roll them out
        // concurrently, each allocation promoted as soon as its batch passed its gate.
        let outcomes = bounded_map(&to_roll, CONCURRENT_JOBS, |p| {
            let (progress, end) = deps.run(&p.plan.job, &synced).roll(&p.plan);
            finish_job(&writer, &kv, out, &p.plan.job, &end).map(|()| (progress, end))
        });
        for (p, outcome) in to_roll.into_iter().zip(outcomes) {
            let (progress, end) = outcome?;
            let job = p.plan.job.clone();
            match end {
                JobEnd::Deployed => report.deployed.push(job.clone()),
                JobEnd::Interrupted => report.interrupted_jobs.push(job.clone()),
                JobEnd::Failed(e) => {
                    let wanted = opts.rollback_on_failure || snap.jobs.get(&job).is_some_and(|j| j.rollback_on_failure);
                    // A failed rollback is not rolled "back" to what it was taking away.
                    if wanted && opts.rollback.is_none() && !progress.unproven.is_empty() {
                        report.rolled_back.insert(job.clone(), auto_rollback.roll_back(&p.plan, &progress));
                    }
                    failed.insert(job.clone(), e);
                }
            }
            report.progress.insert(job, progress);
            planned_waves.push((seq, vec![p]));
        }
    }
    if synced_any {
        catalog::set_update_seq(&conn, new_seq)?;
        report.update_seq = new_seq;
    }
    // Interrupted only when the interrupt cut something short (not when it came after the last batch).
    report.interrupted = !report.interrupted_jobs.is_empty() || !report.not_started.is_empty();
    report.plan.waves = merge_waves(planned_waves);
    report.failed = failed;
    Ok(report)
}

/// The pre-flight check of a job's running allocations: those failing, with why.
type Preflight<'a> = dyn Fn(&str, &[String]) -> Result<BTreeMap<String, String>> + 'a;

/// What planning one job needs.
struct PlanCtx<'a> {
    conn: &'a Connection,
    snap: &'a Snapshot,
    kv: &'a SharedKv,
    key: Option<&'a SecretKey>,
    staging_root: &'a Path,
    new_seq: i64,
    opts: &'a DeployOptions,
    hooks: &'a DeployHooks<'a, 'a>,
    out: &'a dyn Reporter,
    preflight: &'a Preflight<'a>,
    template_limits: Limits,
}

/// Plan one job: pre-flight health check (before its `pre_deploy` hooks when it has any, so they
/// can order by it), the hooks, staging and classification, then its batches. A rollback first
/// chooses the kept release of each allocation (an allocation without one fails the job before
/// any hook runs).
fn plan_one(job: &str, seq: i64, ctx: &PlanCtx<'_>) -> Result<PlannedJob> {
    ctx.out.job_status(job, "staging");
    let releases = match &ctx.opts.rollback {
        Some(request) => Some(rollback::requested_releases(ctx.conn, ctx.snap, request)?),
        None => None,
    };
    let mut unhealthy: Option<BTreeMap<String, String>> = None;
    let skip_hooks = ctx.opts.dry_run && ctx.opts.no_hooks;
    let has_hook = ctx.hooks.has(job, Event::PreDeploy);
    if has_hook && !skip_hooks {
        unhealthy = Some((ctx.preflight)(job, &running_allocations(ctx.conn, ctx.snap, job)?)?);
    }
    let env: Vec<(String, String)> = unhealthy
        .iter()
        .map(|u| ("UNHEALTHY_ALLOCATIONS".to_string(), u.keys().cloned().collect::<Vec<_>>().join(",")))
        .collect();
    let active: Vec<String> = ctx.snap.active(job).iter().map(|a| a.worker_ip.clone()).collect();
    let pre_deploy = match (has_hook, skip_hooks) {
        (false, _) => None,
        (true, true) => Some("skipped (--no-hooks)".to_string()),
        (true, false) => {
            ctx.hooks.run(job, Event::PreDeploy, &active, 1, &env)?;
            Some("ran".to_string())
        }
    };
    let kv_now = lock_kv(ctx.kv);
    let plan_input = PlanInput {
        conn: ctx.conn,
        snap: ctx.snap,
        kv: &kv_now,
        key: ctx.key,
        staging_root: ctx.staging_root,
        update_seq: ctx.new_seq,
        force: ctx.opts.force,
        sync_only: ctx.opts.sync_only,
        diff: ctx.opts.dry_run && ctx.opts.diff,
        template_limits: ctx.template_limits,
        releases: releases.as_ref(),
    };
    let mut planned = plan_job(&plan_input, job, seq)?;
    let stored_order = kv_now.get(&job_ns(job), "rollout_order").filter(|_| !skip_hooks).map(str::to_string);
    planned.plan.pre_deploy = pre_deploy;
    drop(kv_now);
    let updates = planned
        .plan
        .allocations
        .iter()
        .any(|a| !a.disabled && matches!(a.planned, PlannedAction::Reload | PlannedAction::Restart { .. }));
    if unhealthy.is_none() && planned.plan.deploys() && updates {
        let running: Vec<String> = planned
            .plan
            .allocations
            .iter()
            .filter(|a| !a.disabled && !a.removed && was_promoted(a.previous_hash.as_deref()))
            .map(|a| a.worker_ip.clone())
            .collect();
        unhealthy = Some((ctx.preflight)(job, &running)?);
    }
    let unhealthy = unhealthy.unwrap_or_default();
    plan_rollout(
        &mut planned.plan,
        &RolloutContext {
            snap: ctx.snap,
            stored_order: stored_order.as_deref(),
            unhealthy: &unhealthy,
            job_control: ctx.hooks.has(job, Event::JobControl),
            reverse_of: None,
        },
    );
    Ok(planned)
}

fn report_skip(out: &dyn Reporter, log: &RunLog, job: &str) {
    out.job_status(job, "skipped (already promoted)");
    out.message(&format!("deploy: skip job \"{job}\" (already promoted on all allocations)"));
    log.event(&LogEvent {
        event: "deploy_skip".into(),
        ctx: LogCtx { worker: None, job: Some(job.to_string()), phase: "rollout".into(), action: "skip".into() },
        reason: Some("already_promoted".into()),
        msg: None,
        extra: Vec::new(),
    });
}

/// Report how a job's rollout ended, then checkpoint the KV. The error is a catalog write failure
/// (fatal for the deploy).
fn finish_job(writer: &Mutex<Connection>, kv: &SharedKv, out: &dyn Reporter, job: &str, end: &JobEnd) -> Result<()> {
    match end {
        JobEnd::Deployed => {
            out.job_status(job, "promoted");
            out.message(&format!("deploy: job \"{job}\" promoted"));
        }
        JobEnd::Interrupted => {
            out.job_status(job, "interrupted");
            out.message(&format!("deploy: job \"{job}\" interrupted between batches"));
        }
        JobEnd::Failed(e) => {
            out.job_status(job, "failed");
            out.message(&format!("deploy: job \"{job}\" failed: {e}"));
        }
    }
    persist_kv(&writer.lock().unwrap_or_else(PoisonError::into_inner), kv, "deploy").map(|_| ())
}

fn not_planned(job: &str, seq: i64, decision: &str, reason: &str) -> PlannedJob {
    PlannedJob {
        plan: JobPlan {
            job: job.to_string(),
            deployment_seq: seq,
            decision: decision.to_string(),
            reason: Some(reason.to_string()),
            allocations: Vec::new(),
            unhealthy: Vec::new(),
            rollout: Default::default(),
            pre_deploy: None,
        },
        staged: BTreeMap::new(),
    }
}

fn merge_waves(planned: Vec<(i64, Vec<PlannedJob>)>) -> Vec<WavePlan> {
    let mut waves: BTreeMap<i64, Vec<JobPlan>> = BTreeMap::new();
    for (seq, jobs) in planned {
        waves.entry(seq).or_default().extend(jobs.into_iter().map(|p| p.plan));
    }
    waves
        .into_iter()
        .map(|(deployment_seq, mut jobs)| {
            jobs.sort_by(|a, b| a.job.cmp(&b.job));
            WavePlan { deployment_seq, jobs }
        })
        .collect()
}

fn record_plan_hashes(conn: &Connection, snap: &Snapshot, p: &PlannedJob) -> Result<()> {
    for a in snap.non_removed(&p.plan.job) {
        if let Some(s) = p.staged.get(&a.alloc_id) {
            catalog::put_plan_hash(conn, &hash_namespace(&a.job), &a.alloc_id, &s.hash, &file_manifest_json(&s.files))?;
        }
    }
    Ok(())
}

/// The deploy's catalog writes during a rollout, on its one writer connection.
struct CatalogRecords<'a> {
    writer: &'a Mutex<Connection>,
    snap: &'a Snapshot,
    kv: &'a SharedKv,
    /// Where the promoted files were staged, and the key their kept release is encrypted with
    /// (none: no release is kept).
    staging_root: &'a Path,
    key: Option<&'a SecretKey>,
    /// The release number of each job that promoted something in this run.
    releases: Mutex<BTreeMap<String, i64>>,
}

impl CatalogRecords<'_> {
    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The release this run keeps of `job`, once it promoted something.
    fn release_of(&self, job: &str) -> Option<i64> {
        self.releases.lock().unwrap_or_else(PoisonError::into_inner).get(job).copied()
    }
}

/// What every job rollout of this deploy talks to; the files shipped differ per wave.
struct RolloutDeps<'a> {
    remote: &'a Remote<'a>,
    snap: &'a Snapshot,
    hooks: &'a DeployHooks<'a, 'a>,
    gates: &'a GateContext<'a>,
    /// Per-job remote step timeouts.
    timeouts: &'a BTreeMap<String, u64>,
    sync_only: bool,
    records: &'a CatalogRecords<'a>,
    interrupted: &'a (dyn Fn() -> bool + Sync),
}

impl RolloutDeps<'_> {
    /// The rollout of `job` over what `shipped` says reached each worker.
    fn run<'s>(&'s self, job: &str, shipped: &'s BTreeMap<String, Result<()>>) -> rollout::JobRolloutRun<'s> {
        rollout::JobRolloutRun {
            remote: self.remote,
            snap: self.snap,
            hooks: self.hooks,
            gates: self.gates,
            timeout_secs: self.timeouts.get(job).copied(),
            sync_only: self.sync_only,
            shipped,
            records: self.records,
            interrupted: self.interrupted,
        }
    }
}

impl rollout::RolloutRecords for CatalogRecords<'_> {
    /// Their staged state becomes their promoted state at the plan's version (the build's, or a
    /// kept release's; its files kept as this run's release of the job), running ones lose any
    /// "stopped" marker, KV `version` is set — with the KV checkpoint, in one transaction.
    fn promote(&self, plan: &JobPlan, ips: &[String]) -> Result<()> {
        let job = plan.job.as_str();
        let conn = self.conn();
        let mut kv = lock_kv(self.kv);
        let tx =
            conn.unchecked_transaction().map_err(|e| Error::new(ErrorKind::Database, format!("begin promote: {e}")))?;
        let release = match self.key {
            Some(_) => {
                Some(match self.releases.lock().unwrap_or_else(PoisonError::into_inner).entry(job.to_string()) {
                    std::collections::btree_map::Entry::Occupied(e) => *e.get(),
                    std::collections::btree_map::Entry::Vacant(e) => *e.insert(catalog::next_release(&tx, job)?),
                })
            }
            None => None,
        };
        for a in self.snap.non_removed(job).into_iter().filter(|a| ips.contains(&a.worker_ip)) {
            let version = plan
                .allocations
                .iter()
                .find(|p| p.alloc_id == a.alloc_id)
                .map_or(a.new_version.as_str(), |p| p.new_version.as_str());
            catalog::promote_hash(&tx, &hash_namespace(job), &a.alloc_id, version)?;
            if let (Some(key), Some(release)) = (self.key, release) {
                let files = stage::release_files(self.staging_root, &a.worker_ip, job)?;
                let kept = catalog::ReleaseOf {
                    job: job.to_string(),
                    release,
                    alloc_id: a.alloc_id.clone(),
                    worker_ip: a.worker_ip.clone(),
                    version: version.to_string(),
                    created: now_unix(),
                };
                catalog::keep_release(&tx, key, &kept, &files)?;
            }
            if a.is_active() {
                catalog::set_stopped(&tx, job, &a.alloc_id, false)?;
            }
            let ns = allocation_ns(job, &a.worker_ip);
            kv.put(&ns, "version", version);
            for legacy in ["current_version", "new_version"] {
                if kv.get(&ns, legacy).is_some() {
                    let _ = kv.delete(&ns, legacy);
                }
            }
        }
        kv.persist(&tx, now_unix())?;
        tx.commit().map_err(|e| Error::new(ErrorKind::Database, format!("commit promote: {e}")))
    }

    fn mark_unproven(&self, job: &str, ips: &[String]) -> Result<()> {
        let conn = self.conn();
        for a in self.snap.non_removed(job).into_iter().filter(|a| ips.contains(&a.worker_ip)) {
            catalog::mark_unproven(&conn, &hash_namespace(job), &a.alloc_id)?;
        }
        Ok(())
    }

    fn set_post_deploy_pending(&self, job: &str, pending: bool) -> Result<()> {
        catalog::set_post_deploy_pending(&self.conn(), job, pending)
    }
}

/// The absolute path of a private directory of the bucket (created 0700 when missing).
fn private_absolute(p: &Path) -> Result<std::path::PathBuf> {
    maand_store::private_files::create_private_dir(p)?;
    Ok(std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()))
}
