//! Rolling out one job (spec §5.5 default path): new allocations `start` in batches of
//! `max_concurrent_starts` then one health gate; changed ones `reload` (first) or `restart` in
//! batches of `max_concurrent_upgrades`, each batch followed by a health gate. After every batch
//! the job's `after_allocation_started` commands run on its members (before the gate). Order per
//! phase comes from the job's rollout order (DESIGN §3.7). A job with `job_control` commands runs
//! those instead of the Makefile lifecycle. Any failure stops the job's rollout.

use super::hooks::DeployHooks;
use super::plan::JobPlan;
use super::snapshot::Snapshot;
use crate::jobcmd::{lock_kv, SharedKv};
use crate::remote_steps::{Remote, TargetBatch};
use maand_core::manifest::Event;
use maand_core::rollout::{batches, resolve_rollout_order, PlannedAction, RolloutOrder};
use maand_core::{Error, ErrorKind, Result};

pub struct JobRollout<'a> {
    pub remote: &'a Remote<'a>,
    pub snap: &'a Snapshot,
    pub kv: &'a SharedKv,
    pub hooks: &'a DeployHooks<'a, 'a>,
    pub timeout_secs: Option<u64>,
    pub sync_only: bool,
    /// Health gate of the whole job (wait mode).
    pub gate: &'a (dyn Fn(&str) -> Result<()> + Sync),
}

/// The two rollout phases, as `DEPLOY_PHASE` names them.
#[derive(Clone, Copy)]
enum Phase {
    New,
    Update,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::New => "new",
            Phase::Update => "update",
        }
    }
}

/// Worker IPs of the plan's active allocations whose planned action matches `pred`.
fn acting(plan: &JobPlan, pred: &dyn Fn(&PlannedAction) -> bool) -> Vec<String> {
    plan.allocations
        .iter()
        .filter(|a| !a.disabled && !a.removed && pred(&a.planned))
        .map(|a| a.worker_ip.clone())
        .collect()
}

impl JobRollout<'_> {
    pub fn run(&self, plan: &JobPlan) -> Result<()> {
        let job = plan.job.as_str();
        let new = acting(plan, &|p| *p == PlannedAction::Start);
        if self.sync_only {
            if !new.is_empty() {
                return Err(Error::new(
                    ErrorKind::Message,
                    format!("sync-only deploy cannot start new allocations on job \"{job}\": {}", new.join(",")),
                ));
            }
            return Ok(());
        }
        if self.hooks.has(job, Event::JobControl) {
            return self.job_control(plan, &new).map_err(|e| e.context(format!("job {job}: job_control")));
        }
        let job_row = self.snap.jobs.get(job);
        let starts = job_row.map(|j| j.max_concurrent_starts).unwrap_or(0);
        let upgrades = job_row.map(|j| j.max_concurrent_upgrades).unwrap_or(1).max(1);
        if !new.is_empty() {
            self.phase(plan, "start", Phase::New, &new, starts)
                .map_err(|e| e.context(format!("job {job}: start new allocations")))?;
            self.remote.out.job_status(job, "health gate");
            (self.gate)(job)?;
        }
        for (target, pred) in [
            ("reload", (|p: &PlannedAction| *p == PlannedAction::Reload) as fn(&PlannedAction) -> bool),
            ("restart", |p: &PlannedAction| matches!(p, PlannedAction::Restart { .. })),
        ] {
            let group = acting(plan, &pred);
            if group.is_empty() {
                continue;
            }
            self.phase(plan, target, Phase::Update, &group, upgrades)
                .map_err(|e| e.context(format!("job {job}: {target} updated allocations")))?;
        }
        Ok(())
    }

    /// The `job_control` path (spec §5.5 step 2): the commands replace the Makefile lifecycle on
    /// every active allocation, told which allocations are new and which changed; then the gate.
    fn job_control(&self, plan: &JobPlan, new: &[String]) -> Result<()> {
        let job = plan.job.as_str();
        let updated =
            acting(plan, &|p| matches!(p, PlannedAction::Restart { .. } | PlannedAction::Reload | PlannedAction::Sync));
        let active: Vec<String> = self.snap.active(job).iter().map(|a| a.worker_ip.clone()).collect();
        let env = [("NEW_ALLOCATIONS", new.join(",")), ("UPDATED_ALLOCATIONS", updated.join(","))]
            .map(|(k, v)| (k.to_string(), v));
        let concurrency = self.snap.non_removed(job).len().max(1);
        self.remote.out.message(&format!("deploy: job_control {job} on {}", active.join(", ")));
        self.hooks.run(job, Event::JobControl, &active, concurrency, &env)?;
        (self.gate)(job)
    }

    fn ordered(&self, job: &str, candidates: &[String]) -> RolloutOrder {
        let default: Vec<String> = self.snap.non_removed(job).iter().map(|a| a.worker_ip.clone()).collect();
        let stored = lock_kv(self.kv).get(&format!("maand/job/{job}"), "rollout_order").map(str::to_string);
        let order = resolve_rollout_order(job, &default, candidates, stored.as_deref());
        for w in &order.warnings {
            self.remote.out.message(w);
        }
        order
    }

    /// Batches of one phase. After each: `after_allocation_started` on the batch, then (updates
    /// only) the job's health gate; new allocations are gated once by the caller after all batches.
    fn phase(&self, plan: &JobPlan, target: &str, phase: Phase, ips: &[String], size: i64) -> Result<()> {
        let order = self.ordered(&plan.job, ips);
        let all = batches(&order.order, size);
        for (index, batch) in all.iter().enumerate() {
            let status = format!("{target} batch {}/{} on {}", index + 1, all.len(), batch.join(", "));
            self.remote.out.job_status(&plan.job, &status);
            self.run_batch(plan, target, batch)?;
            let env = [
                ("BATCH_ALLOCATIONS", batch.join(",")),
                ("BATCH_INDEX", index.to_string()),
                ("BATCH_COUNT", all.len().to_string()),
                ("DEPLOY_PHASE", phase.as_str().to_string()),
                ("ROLLOUT_ORDER", order.raw.clone()),
                ("ROLLOUT_ORDER_SOURCE", order.source.as_str().to_string()),
                ("JOB", plan.job.clone()),
            ]
            .map(|(k, v)| (k.to_string(), v));
            self.hooks.run(&plan.job, Event::AfterAllocationStarted, batch, batch.len(), &env)?;
            if let Phase::Update = phase {
                self.remote.out.job_status(&plan.job, "health gate");
                (self.gate)(&plan.job)?;
            }
        }
        Ok(())
    }

    fn run_batch(&self, plan: &JobPlan, target: &str, batch: &[String]) -> Result<()> {
        self.remote.out.message(&format!("deploy: {target} {} on {}", plan.job, batch.join(", ")));
        let workers = batch
            .iter()
            .map(|ip| {
                let a = plan.allocations.iter().find(|a| &a.worker_ip == ip);
                let current = a.map(|a| a.current_version.as_str()).unwrap_or("0.0.0");
                let new = a.map(|a| a.new_version.as_str()).unwrap_or("0.0.0");
                (self.snap.addr(ip), vec![("CURRENT_VERSION", current), ("NEW_VERSION", new)])
            })
            .collect();
        let run = TargetBatch { job: &plan.job, phase: "rollout", target, timeout_secs: self.timeout_secs };
        self.remote.run_target_batch(&run, workers).map_err(|e| Error::new(ErrorKind::RunCommand, e))
    }
}
