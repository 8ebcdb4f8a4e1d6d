//! The automatic rollback of a job whose batch failed (`deploy --rollback-on-failure`, manifest
//! `rollback_on_failure`): the allocations this run rolled — those it promoted and those of the
//! failed batch — go back to what they ran before the run: each staged from its kept release,
//! shipped, and rolled out through the same executor in the reverse order, every batch gated.
//! They end promoted at their old release, so the next deploy tries the change again.
//! Allocations the run did not reach are never touched; one that was new in this run has no
//! earlier release and is left as it is.

use super::plan::JobPlan;
use super::planner::{plan_job, plan_rollout, PlanInput, RolloutContext};
use super::rollback::choose;
use super::sync::Syncer;
use super::{record_plan_hashes, CatalogRecords, JobProgress, RolloutDeps};
use crate::batch_executor::Ending;
use crate::jobcmd::{lock_kv, SharedKv};
use maand_core::manifest::Event;
use maand_core::rollout::{rollback_order, RollbackTo};
use maand_core::Result;
use maand_store::catalog;
use maand_store::secrets::SecretKey;
use rusqlite::Connection;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// What an automatic rollback did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AutoRollbackOutcome {
    /// The allocations it was to take back, in order: (worker, release, version).
    pub targets: Vec<(String, i64, String)>,
    /// Those it took back (promoted at their earlier release again).
    pub rolled_back: Vec<String>,
    /// Allocations new in this run (no earlier release): left as they are.
    pub without_release: Vec<String>,
    /// Why it did not complete.
    pub error: Option<String>,
}

impl AutoRollbackOutcome {
    /// `automatic rollback of 10.0.0.2 (to release 3, version 1.0.0): succeeded`, or why not.
    pub fn describe(&self) -> String {
        let targets: Vec<String> = self
            .targets
            .iter()
            .map(|(ip, release, version)| format!("{ip} to release {release} ({version})"))
            .collect();
        let mut text = match (&self.error, targets.is_empty()) {
            (None, true) => "automatic rollback: nothing to roll back".to_string(),
            (None, false) => format!("automatic rollback of {}: succeeded", targets.join(", ")),
            (Some(e), _) => {
                let done = if self.rolled_back.is_empty() { "none".to_string() } else { self.rolled_back.join(", ") };
                format!("automatic rollback of {} failed: {e} (rolled back: {done})", targets.join(", "))
            }
        };
        if !self.without_release.is_empty() {
            text.push_str(&format!(
                "; not rolled back (new in this deploy, no earlier release): {}",
                self.without_release.join(", ")
            ));
        }
        text
    }
}

/// What an automatic rollback needs besides the rollout's dependencies.
pub(super) struct AutoRollback<'a> {
    pub conn: &'a Connection,
    pub kv: &'a SharedKv,
    pub key: Option<&'a SecretKey>,
    pub staging_root: &'a Path,
    pub update_seq: i64,
    pub syncer: &'a Syncer<'a>,
    pub records: &'a CatalogRecords<'a>,
    pub deps: &'a RolloutDeps<'a>,
}

impl AutoRollback<'_> {
    /// Take back what the failed rollout of `failed` rolled (per `progress`), and say how it went.
    pub fn roll_back(&self, failed: &JobPlan, progress: &JobProgress) -> AutoRollbackOutcome {
        let job = failed.job.as_str();
        let order = rollback_order(&progress.promoted, &progress.unproven);
        let out = self.deps.remote.out;
        out.job_status(job, "rolling back");
        out.message(&format!(
            "deploy: job \"{job}\": rolling back {} to what ran before this deploy",
            order.join(", ")
        ));
        // The automatic rollback is part of this deploy's run (its history row records the job
        // as failed, with this outcome in the failure text).
        let mut outcome = AutoRollbackOutcome::default();
        if let Err(e) = self.run(failed, &order, &mut outcome) {
            outcome.error = Some(e.to_string());
        }
        out.message(&format!("deploy: job \"{job}\": {}", outcome.describe()));
        outcome
    }

    fn run(&self, failed: &JobPlan, order: &[String], outcome: &mut AutoRollbackOutcome) -> Result<()> {
        let job = failed.job.as_str();
        let snap = self.deps.snap;
        // What each allocation ran before the release this run keeps of the job.
        let this_run = match self.records.release_of(job) {
            Some(n) => n,
            None => catalog::next_release(self.conn, job)?,
        };
        let chosen = choose(self.conn, snap, job, RollbackTo::Before(this_run), order)?;
        outcome.without_release = chosen.without.iter().map(|(ip, _)| ip.clone()).collect();
        let back: Vec<String> = order.iter().filter(|ip| !outcome.without_release.contains(ip)).cloned().collect();
        if back.is_empty() {
            return Ok(());
        }
        for ip in &back {
            if let Some(r) = chosen.releases.values().find(|r| &r.of.worker_ip == ip) {
                outcome.targets.push((ip.clone(), r.of.release, r.of.version.clone()));
            }
        }
        let kv = lock_kv(self.kv);
        let input = PlanInput {
            conn: self.conn,
            snap,
            kv: &kv,
            key: self.key,
            staging_root: self.staging_root,
            update_seq: self.update_seq,
            force: false,
            sync_only: false,
            diff: false,
            releases: Some(&chosen.releases),
            // Staging from kept releases renders nothing.
            template_limits: crate::template::Limits::default(),
        };
        let planned = plan_job(&input, job, failed.deployment_seq);
        drop(kv);
        let mut planned = planned?;
        let context = RolloutContext {
            snap,
            stored_order: None,
            unhealthy: &BTreeMap::new(),
            job_control: self.deps.hooks.has(job, Event::JobControl),
            reverse_of: Some(&back),
        };
        plan_rollout(&mut planned.plan, &context);
        record_plan_hashes(self.conn, snap, &planned)?;
        let shipped = self.syncer.sync_jobs(&[job.to_string()])?;
        let (progress, ending) = self.deps.run(job, &shipped).roll_batches(&planned.plan);
        outcome.rolled_back = progress.promoted;
        match ending {
            Ok(Ending::Completed) => {}
            Ok(Ending::Interrupted { .. }) => outcome.error = Some("interrupted".to_string()),
            Ok(Ending::Failed { error, .. }) => outcome.error = Some(error.to_string()),
            Err(e) => outcome.error = Some(e),
        }
        Ok(())
    }
}
