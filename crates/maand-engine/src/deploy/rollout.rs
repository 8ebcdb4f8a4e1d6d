//! Rolling out one job (spec §5.5 with DESIGN §3.14–3.17): its plan's files swapped in at once
//! where no lifecycle step runs, then its batches through the one batch executor — each batch's
//! files swapped into place right before its target (`start`, `reload`, `restart`) runs through
//! runner.py, or the job's `job_control` commands; the job's `after_allocation_started` commands;
//! the gate over what was rolled so far; and each allocation promoted as soon as its batch passed
//! its gate.

use super::gate::GateContext;
use super::hooks::DeployHooks;
use super::plan::JobPlan;
use super::snapshot::Snapshot;
use super::JobProgress;
use crate::batch_executor::{execute, BatchSteps, Ending, Execution};
use crate::remote_steps::{Remote, Step, TargetBatch};
use maand_core::manifest::Event;
use maand_core::rollout::{Batch, Gate, PlannedAction};
use maand_core::{Error, ErrorKind, Result};
use std::collections::BTreeMap;

/// Everything one job's rollout talks to.
pub struct JobRolloutRun<'a> {
    pub remote: &'a Remote<'a>,
    pub snap: &'a Snapshot,
    pub hooks: &'a DeployHooks<'a, 'a>,
    pub gates: &'a GateContext<'a>,
    pub timeout_secs: Option<u64>,
    pub sync_only: bool,
    /// How shipping the job's files went, per worker (a disabled allocation on a worker that
    /// was not shipped to is left as it is).
    pub shipped: &'a BTreeMap<String, Result<()>>,
    /// Where promotions and the job's state are written.
    pub records: &'a dyn RolloutRecords,
    pub interrupted: &'a (dyn Fn() -> bool + Sync),
}

/// How a job's plan ran when it did not fail before its first batch.
struct RolloutEnd {
    /// Allocations promoted in this run, in order.
    pub promoted: Vec<String>,
    /// Allocations of batches that did not run (interrupt) or did not pass (failure).
    pub remaining: Vec<String>,
    /// Allocations of batches that ran but did not pass (their files were swapped in).
    pub unproven: Vec<String>,
    pub ending: Ending,
}

/// What a rollout writes to the catalog as it goes.
pub trait RolloutRecords: Sync {
    /// Promote these allocations of the plan's job at the version the plan rolls out (hash rows,
    /// KV `version`, the kept release).
    fn promote(&self, plan: &JobPlan, ips: &[String]) -> Result<()>;
    /// These allocations run swapped-in files that never passed a gate (a re-run rolls them).
    fn mark_unproven(&self, job: &str, ips: &[String]) -> Result<()>;
    /// Whether `job`'s `post_deploy` still has to succeed.
    fn set_post_deploy_pending(&self, job: &str, pending: bool) -> Result<()>;
}

/// `post_deploy` of a complete job, on its active allocations. A failure is remembered, so the
/// next deploy runs the hook again (and only it) even when nothing else changed.
pub fn post_deploy(hooks: &DeployHooks<'_, '_>, records: &dyn RolloutRecords, snap: &Snapshot, job: &str) -> JobEnd {
    let active: Vec<String> = snap.active(job).iter().map(|a| a.worker_ip.clone()).collect();
    let outcome = hooks.run(job, Event::PostDeploy, &active, 1, &[]);
    let pending = outcome.is_err();
    if pending != snap.post_deploy_pending.contains(job) {
        if let Err(e) = records.set_post_deploy_pending(job, pending) {
            return JobEnd::Failed(e.to_string());
        }
    }
    match outcome {
        Ok(()) => JobEnd::Deployed,
        Err(e) => JobEnd::Failed(format!("{e} (post_deploy runs again at the next deploy)")),
    }
}

/// How one job's rollout ended.
pub enum JobEnd {
    Deployed,
    Interrupted,
    Failed(String),
}

impl JobRolloutRun<'_> {
    /// Roll the job out (see [`JobRolloutRun::roll_batches`]), then `post_deploy` once the job is
    /// complete.
    pub fn roll(&self, plan: &JobPlan) -> (JobProgress, JobEnd) {
        let (progress, ending) = self.roll_batches(plan);
        let outcome = match ending {
            Ok(Ending::Completed) => post_deploy(self.hooks, self.records, self.snap, &plan.job),
            Ok(Ending::Interrupted { .. }) => JobEnd::Interrupted,
            Ok(Ending::Failed { error, .. }) => JobEnd::Failed(error.to_string()),
            Err(e) => JobEnd::Failed(e),
        };
        (progress, outcome)
    }

    /// Refuse when the job's files did not reach a worker of an active allocation (nothing changed
    /// there) or when `--sync-only` would have to start new allocations; else run its plan. An
    /// error: the rollout failed before its first batch.
    pub fn roll_batches(&self, plan: &JobPlan) -> (JobProgress, std::result::Result<Ending, String>) {
        let job = plan.job.as_str();
        let mut progress = JobProgress::default();
        let ship_errors: Vec<String> = self
            .snap
            .active(job)
            .iter()
            .filter_map(|a| self.shipped.get(&a.worker_ip).and_then(|r| r.as_ref().err()).map(|e| e.to_string()))
            .collect();
        if !ship_errors.is_empty() {
            return (progress, Err(format!("nothing changed on its workers: {}", ship_errors.join("; "))));
        }
        let new: Vec<&str> = plan
            .allocations
            .iter()
            .filter(|a| !a.disabled && a.planned == PlannedAction::Start)
            .map(|a| a.worker_ip.as_str())
            .collect();
        if self.sync_only && !new.is_empty() {
            let msg = format!("sync-only deploy cannot start new allocations on job \"{job}\": {}", new.join(","));
            return (progress, Err(msg));
        }
        match self.run(plan) {
            Ok(end) => {
                progress.promoted = end.promoted;
                progress.remaining = end.remaining;
                progress.unproven = end.unproven;
                (progress, Ok(end.ending))
            }
            Err(e) => (progress, Err(e.to_string())),
        }
    }

    fn run(&self, plan: &JobPlan) -> Result<RolloutEnd> {
        let job = plan.job.as_str();
        let rollout = &plan.rollout;
        if let Some(why) = rollout.refusal(job) {
            return Err(Error::new(ErrorKind::HealthCheckFailed, why));
        }
        for w in &rollout.warnings {
            self.remote.out.message(w);
        }
        let mut promoted = self.swap_at_once(plan)?;
        let steps = JobSteps { run: self, plan };
        let Execution { passed, ending } = execute(&rollout.batches, &steps, self.interrupted);
        let mut unproven = Vec::new();
        if let Ending::Failed { at, .. } = &ending {
            // The batches that ran (files swapped in) without passing a gate.
            unproven = (0..=*at)
                .filter(|i| !passed.contains(i))
                .flat_map(|i| rollout.batches[i].allocations.iter().cloned())
                .collect();
            self.records.mark_unproven(job, &unproven)?;
        }
        promoted.extend(passed.iter().flat_map(|&i| rollout.batches[i].allocations.iter().cloned()));
        let remaining = rollout
            .batches
            .iter()
            .enumerate()
            .filter(|(i, _)| !passed.contains(i))
            .flat_map(|(_, b)| b.allocations.iter().cloned())
            .collect();
        Ok(RolloutEnd { promoted, remaining, unproven, ending })
    }

    /// Swap the files of allocations that run no lifecycle step, then promote them.
    fn swap_at_once(&self, plan: &JobPlan) -> Result<Vec<String>> {
        let job = plan.job.as_str();
        let mut ips = Vec::new();
        for ip in &plan.rollout.swap_at_once {
            if self.shipped.get(ip).is_some_and(Result::is_err) {
                self.remote.out.message(&format!(
                    "deploy: job \"{job}\" on {ip}: files not swapped (they did not reach the worker); a later deploy does it"
                ));
            } else {
                ips.push(ip.clone());
            }
        }
        if ips.is_empty() {
            return Ok(Vec::new());
        }
        let steps: Vec<Step<'_>> = ips
            .iter()
            .map(|ip| Step {
                job: Some(job),
                phase: "rollout",
                action: "swap",
                worker: self.snap.addr(ip),
                script: self.remote.runner_script("--swap-only", job, &[]),
                timeout_secs: self.timeout_secs,
            })
            .collect();
        let errors: Vec<String> =
            self.remote.run_all(&steps).into_iter().filter_map(|r| r.err()).map(|e| e.to_string()).collect();
        if !errors.is_empty() {
            return Err(Error::new(ErrorKind::RunCommand, errors.join("; ")));
        }
        self.records.promote(plan, &ips)?;
        Ok(ips)
    }
}

/// The deploy's side of the batch executor for one job.
struct JobSteps<'a> {
    run: &'a JobRolloutRun<'a>,
    plan: &'a JobPlan,
}

impl JobSteps<'_> {
    fn job(&self) -> &str {
        &self.plan.job
    }

    fn describe(batch: &Batch) -> String {
        let repair = if batch.repair { " (repair)" } else { "" };
        format!(
            "{} batch {}/{}{repair} on {}",
            batch.target,
            batch.index + 1,
            batch.count,
            batch.allocations.join(", ")
        )
    }

    /// The `job_control` path (spec §5.5 step 2): the commands replace the Makefile lifecycle on
    /// every active allocation, told which allocations are new and which changed.
    fn job_control(&self, batch: &Batch) -> Result<()> {
        let acting = |pred: &dyn Fn(&PlannedAction) -> bool| -> String {
            let ips: Vec<&str> = self
                .plan
                .allocations
                .iter()
                .filter(|a| !a.disabled && !a.removed && pred(&a.planned))
                .map(|a| a.worker_ip.as_str())
                .collect();
            ips.join(",")
        };
        let new = acting(&|p| *p == PlannedAction::Start);
        let updated =
            acting(&|p| matches!(p, PlannedAction::Restart { .. } | PlannedAction::Reload | PlannedAction::Sync));
        let env = [("NEW_ALLOCATIONS", new), ("UPDATED_ALLOCATIONS", updated)].map(|(k, v)| (k.to_string(), v));
        let concurrency = batch.allocations.len().max(1);
        self.run.remote.out.message(&format!("deploy: job_control {} on {}", self.job(), batch.allocations.join(", ")));
        self.run.hooks.run(self.job(), Event::JobControl, &batch.allocations, concurrency, &env)
    }
}

impl BatchSteps for JobSteps<'_> {
    fn run(&self, batch: &Batch) -> Result<()> {
        let job = self.job();
        let out = self.run.remote.out;
        out.job_status(job, &Self::describe(batch));
        if batch.target == "job_control" {
            return self.job_control(batch).map_err(|e| e.context(format!("job {job}: job_control")));
        }
        out.message(&format!("deploy: {} {job} on {}", batch.target, batch.allocations.join(", ")));
        let workers = batch
            .allocations
            .iter()
            .map(|ip| {
                let a = self.plan.allocations.iter().find(|a| &a.worker_ip == ip);
                let current = a.map(|a| a.current_version.as_str()).unwrap_or("0.0.0");
                let new = a.map(|a| a.new_version.as_str()).unwrap_or("0.0.0");
                (self.run.snap.addr(ip), vec![("CURRENT_VERSION", current), ("NEW_VERSION", new)])
            })
            .collect();
        let target = TargetBatch {
            job,
            phase: "rollout",
            target: &batch.target,
            timeout_secs: self.run.timeout_secs,
            swap: true,
        };
        self.run
            .remote
            .run_target_batch(&target, workers)
            .map_err(|e| Error::new(ErrorKind::RunCommand, format!("job {job}: {}: {e}", Self::describe(batch))))
    }

    fn after(&self, batch: &Batch) -> Result<()> {
        if batch.target == "job_control" {
            return Ok(());
        }
        let rollout = &self.plan.rollout;
        let env = [
            ("BATCH_ALLOCATIONS", batch.allocations.join(",")),
            ("BATCH_INDEX", batch.index.to_string()),
            ("BATCH_COUNT", batch.count.to_string()),
            ("DEPLOY_PHASE", batch.phase.as_str().to_string()),
            ("ROLLOUT_ORDER", rollout.order.clone()),
            ("ROLLOUT_ORDER_SOURCE", rollout.order_source.to_string()),
            ("JOB", self.plan.job.clone()),
        ]
        .map(|(k, v)| (k.to_string(), v));
        self.run.hooks.run(self.job(), Event::AfterAllocationStarted, &batch.allocations, batch.allocations.len(), &env)
    }

    fn gate(&self, batch: &Batch, gate: &Gate) -> Result<()> {
        let job = self.job();
        let out = self.run.remote.out;
        let scope = if gate.whole_job { "the whole job".to_string() } else { gate.allocations.join(", ") };
        out.job_status(job, &format!("health gate on {scope}"));
        self.run
            .gates
            .gate(job, &gate.allocations, &|m: &str| out.message(m))
            .map_err(|e| e.context(format!("after {}", Self::describe(batch))))
    }

    fn passed(&self, batches: &[&Batch]) -> Result<()> {
        let ips: Vec<String> = batches.iter().flat_map(|b| b.allocations.iter().cloned()).collect();
        self.run.records.promote(self.plan, &ips)?;
        self.run.remote.out.message(&format!("deploy: job \"{}\" promoted on {}", self.job(), ips.join(", ")));
        Ok(())
    }
}
