//! Rolling out one job (spec §5.5 default path): new allocations `start` in batches of
//! `max_concurrent_starts` then one health gate; changed ones `reload` (first) or `restart` in
//! batches of `max_concurrent_upgrades`, each batch followed by a health gate. Order per phase
//! comes from the job's rollout order (DESIGN §3.7). Any failure stops the job's rollout.

use super::plan::JobPlan;
use super::remote::{Remote, Step};
use super::snapshot::Snapshot;
use maand_core::rollout::{batches, resolve_rollout_order, PlannedAction};
use maand_core::{Error, ErrorKind, Result};
use maand_store::kv::KvStore;

pub struct JobRollout<'a> {
    pub remote: &'a Remote<'a>,
    pub snap: &'a Snapshot,
    pub kv: &'a KvStore,
    pub timeout_secs: Option<u64>,
    pub sync_only: bool,
    /// Health gate of the whole job (wait mode).
    pub gate: &'a dyn Fn(&str) -> Result<()>,
}

impl JobRollout<'_> {
    pub fn run(&self, plan: &JobPlan) -> Result<()> {
        let job = plan.job.as_str();
        let acting = |pred: &dyn Fn(&PlannedAction) -> bool| -> Vec<String> {
            plan.allocations
                .iter()
                .filter(|a| !a.disabled && !a.removed && pred(&a.planned))
                .map(|a| a.worker_ip.clone())
                .collect()
        };
        let new = acting(&|p| *p == PlannedAction::Start);
        if self.sync_only {
            if !new.is_empty() {
                return Err(Error::new(
                    ErrorKind::Message,
                    format!("sync-only deploy cannot start new allocations on job \"{job}\": {}", new.join(",")),
                ));
            }
            return Ok(());
        }
        let job_row = self.snap.jobs.get(job);
        let starts = job_row.map(|j| j.max_concurrent_starts).unwrap_or(0);
        let upgrades = job_row.map(|j| j.max_concurrent_upgrades).unwrap_or(1).max(1);
        if !new.is_empty() {
            self.phase(plan, "start", &new, starts)
                .map_err(|e| e.context(format!("job {job}: start new allocations")))?;
            (self.gate)(job)?;
        }
        for (target, pred) in [
            ("reload", (|p: &PlannedAction| *p == PlannedAction::Reload) as fn(&PlannedAction) -> bool),
            ("restart", |p: &PlannedAction| matches!(p, PlannedAction::Restart { .. })),
        ] {
            let group = acting(&pred);
            if group.is_empty() {
                continue;
            }
            self.phase_with_gates(plan, target, &group, upgrades)
                .map_err(|e| e.context(format!("job {job}: {target} updated allocations")))?;
        }
        Ok(())
    }

    fn ordered(&self, job: &str, candidates: &[String]) -> Vec<String> {
        let default: Vec<String> = self.snap.non_removed(job).iter().map(|a| a.worker_ip.clone()).collect();
        let order =
            resolve_rollout_order(job, &default, candidates, self.kv.get(&format!("maand/job/{job}"), "rollout_order"));
        for w in &order.warnings {
            self.remote.out.message(w);
        }
        order.order
    }

    /// Start batches (no gate between batches; the caller gates once after all of them).
    fn phase(&self, plan: &JobPlan, target: &str, ips: &[String], size: i64) -> Result<()> {
        for batch in batches(&self.ordered(&plan.job, ips), size) {
            self.run_batch(plan, target, &batch)?;
        }
        Ok(())
    }

    /// Update batches, each followed by the job's health gate.
    fn phase_with_gates(&self, plan: &JobPlan, target: &str, ips: &[String], size: i64) -> Result<()> {
        for batch in batches(&self.ordered(&plan.job, ips), size) {
            self.run_batch(plan, target, &batch)?;
            (self.gate)(&plan.job)?;
        }
        Ok(())
    }

    fn run_batch(&self, plan: &JobPlan, target: &str, batch: &[String]) -> Result<()> {
        self.remote.out.message(&format!("deploy: {target} {} on {}", plan.job, batch.join(", ")));
        let steps: Vec<Step<'_>> = batch
            .iter()
            .map(|ip| {
                let a = plan.allocations.iter().find(|a| &a.worker_ip == ip);
                let current = a.map(|a| a.current_version.as_str()).unwrap_or("0.0.0");
                let new = a.map(|a| a.new_version.as_str()).unwrap_or("0.0.0");
                Step {
                    job: Some(&plan.job),
                    phase: "rollout",
                    action: target,
                    worker: self.snap.addr(ip),
                    script: self.remote.runner_script(
                        target,
                        &plan.job,
                        &[("CURRENT_VERSION", current), ("NEW_VERSION", new)],
                    ),
                    timeout_secs: self.timeout_secs,
                }
            })
            .collect();
        let errors: Vec<String> =
            self.remote.run_all(&steps).into_iter().filter_map(|r| r.err()).map(|e| e.to_string()).collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::new(ErrorKind::RunCommand, errors.join("; ")))
        }
    }
}
