//! `maand deploy` (spec §5 with the DESIGN §3 fixes): reconcile disabled/removed allocations, then
//! per `deployment_seq` wave stage and plan each job, sync what changed, roll it out with health
//! gates, and promote per job. A failed job never undoes another job's promotion; a job whose
//! upstream failed in this run is reported blocked. `update_seq` advances only when workers were
//! actually synced, and an unchanged deploy contacts no worker at all.

pub(crate) mod gate;
mod hooks;
mod plan;
mod planner;
mod reconcile;
mod rollout;
pub mod snapshot;
mod stage;
mod sync;
mod template_data;
mod worker_files;

pub use plan::{AllocationPlan, DeployPlan, JobPlan, WavePlan};
pub(crate) use planner::hash_namespace;
pub(crate) use stage::{io as io_error, job_staging_dir, write_cert_files, write_job_files};
pub(crate) use template_data::{KvTemplateData, PrometheusFragments};
pub use worker_files::{RUNNER_PY, WORKER_PY};

use crate::bucket::{now_unix, Bucket};
use crate::build::{allocation_ns, build_in_with, BuildOptions};
use crate::health::bounded_map;
use crate::jobcmd::{lock_kv, persist_kv, shared_kv, HealthCheckCommands, JobCommands, SharedKv};
use crate::output::Reporter;
use crate::remote_steps::Remote;
use crate::runlog::{LogCtx, LogEvent, RunLog};
use hooks::DeployHooks;
use maand_core::manifest::Event;
use maand_core::rollout::{blocked_jobs, file_manifest_json, wave_jobs, WaveCandidate};
use maand_core::{Error, ErrorKind, Result};
use maand_remote::Executor;
use maand_store::catalog;
use maand_store::kv::KvStore;
use maand_store::secrets::SecretKey;
use planner::{plan_job, PlanInput, PlannedJob};
use rusqlite::Connection;
use serde::Serialize;
use snapshot::Snapshot;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

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
}

/// What a deploy did, job by job.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeployReport {
    pub update_seq: i64,
    pub deployed: Vec<String>,
    pub skipped: Vec<String>,
    pub blocked: Vec<String>,
    pub failed: BTreeMap<String, String>,
    pub plan: DeployPlan,
}

impl DeployReport {
    /// One line for the end of a deploy: `deploy: 2 jobs deployed (a, b), 1 unchanged, 1 failed (c)`,
    /// or `deploy: nothing to deploy` when the catalog has no job to roll out.
    pub fn summary(&self) -> String {
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
        if parts.is_empty() {
            return "deploy: nothing to deploy (no job in the catalog; run maand build)".to_string();
        }
        format!("deploy: {}", parts.join(", "))
    }

    /// `deploy failed: …` naming each failed or blocked job, or None when everything succeeded.
    pub fn failure(&self) -> Option<Error> {
        if self.failed.is_empty() && self.blocked.is_empty() {
            return None;
        }
        let mut parts: Vec<String> = self.failed.iter().map(|(j, e)| format!("job {j}: {e}")).collect();
        parts.extend(self.blocked.iter().map(|j| format!("job {j}: blocked (an upstream job failed)")));
        Some(Error::msg(format!("deploy failed: {}", parts.join("\n"))))
    }
}

/// Run a deploy (or a dry-run) in the bucket at `root`.
pub fn deploy(root: &Path, opts: &DeployOptions, out: &dyn Reporter) -> Result<DeployReport> {
    let bucket = Bucket::open_locked(root, "deploy")?;
    if opts.build {
        build_in_with(&bucket, &BuildOptions::default(), out)?;
    }
    let executor = crate::transport::ssh_executor(&bucket);
    let result = deploy_with(&bucket, opts, out, &executor);
    executor.close();
    crate::prometheus::push_after_deploy(&bucket, opts.dry_run, result.as_ref().ok(), out);
    let _ = std::fs::remove_dir_all(bucket.paths.tmp());
    result
}

/// Deploy through a given executor (tests pass a recording one).
pub fn deploy_with(
    bucket: &Bucket,
    opts: &DeployOptions,
    out: &dyn Reporter,
    executor: &dyn Executor,
) -> Result<DeployReport> {
    let staging_root = absolute(&bucket.paths.tmp());
    let _ = std::fs::remove_dir_all(staging_root.join("workers"));
    let conn = bucket.connect()?;
    let snap = Snapshot::load(&conn)?;
    let kv = shared_kv(KvStore::load(&conn)?);
    let key = SecretKey::load(&bucket.paths).ok();
    let new_seq = snap.update_seq + 1;
    let log = if opts.dry_run {
        RunLog::disabled()
    } else {
        RunLog::open(&bucket.paths, bucket.conf.log_format, "deploy", new_seq)?
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
    let mut report = DeployReport { update_seq: snap.update_seq, ..Default::default() };

    // Reconcile disabled and removed allocations first (all jobs, whatever --jobs says).
    report.plan.reconcile = reconcile::reconcile_plan(&conn, &snap)?;
    let mut failed: BTreeMap<String, String> = BTreeMap::new();
    let gate = |job: &str| gate::deploy_gate(bucket, &snap, executor, job, &|m: &str| out.message(m), &health_commands);
    if !opts.dry_run {
        let outcome = reconcile::reconcile(
            &reconcile::ReconcileInput {
                conn: &conn,
                snap: &snap,
                remote: &remote,
                staging_root: &staging_root,
                timeout_for: &timeout_for,
                hooks: &hooks,
            },
            &kv,
        )?;
        persist_kv(&conn, &kv, "deploy")?;
        failed.extend(outcome.failed);
        for job in &outcome.stopped_jobs {
            if !snap.active(job).is_empty() && !failed.contains_key(job) {
                if let Err(e) = gate(job) {
                    failed.insert(job.clone(), e.to_string());
                }
            }
        }
    }
    let snap = if opts.dry_run { snap } else { Snapshot::load(&conn)? };
    let gate = |job: &str| gate::deploy_gate(bucket, &snap, executor, job, &|m: &str| out.message(m), &health_commands);

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
    };
    let mut synced_any = false;
    let mut planned_waves: Vec<(i64, Vec<PlannedJob>)> = Vec::new();
    for (seq, jobs) in wave_jobs(&candidates, &opts.jobs) {
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
            out.job_status(&job, "staging");
            let active: Vec<String> = snap.active(&job).iter().map(|a| a.worker_ip.clone()).collect();
            if let Err(e) = hooks.run(&job, Event::PreDeploy, &active, 1, &[]) {
                out.message(&format!("deploy: job \"{job}\" failed: {e}"));
                failed.insert(job.clone(), e.to_string());
                wave.push(not_planned(&job, seq, "failed", &e.to_string()));
                continue;
            }
            let kv_now = lock_kv(&kv);
            let plan_input = PlanInput {
                conn: &conn,
                snap: &snap,
                kv: &kv_now,
                key: key.as_ref(),
                staging_root: &staging_root,
                update_seq: new_seq,
                force: opts.force,
                sync_only: opts.sync_only,
            };
            let planned = plan_job(&plan_input, &job, seq);
            drop(kv_now);
            match planned {
                Ok(p) => wave.push(p),
                Err(e) => {
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
                if p.plan.decision == "skip" {
                    out.job_status(&p.plan.job, "skipped (already promoted)");
                    out.message(&format!("deploy: skip job \"{}\" (already promoted on all allocations)", p.plan.job));
                    log.event(&LogEvent {
                        event: "deploy_skip".into(),
                        ctx: LogCtx {
                            worker: None,
                            job: Some(p.plan.job.clone()),
                            phase: "rollout".into(),
                            action: "skip".into(),
                        },
                        reason: Some("already_promoted".into()),
                        msg: None,
                        extra: Vec::new(),
                    });
                    report.skipped.push(p.plan.job.clone());
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
        // The jobs of one wave do not depend on each other (DESIGN §3.5): roll them out
        // concurrently, each promoted as soon as it succeeds.
        let roll_out = |p: &PlannedJob| -> Result<()> {
            let job = p.plan.job.as_str();
            let sync_error: Vec<String> = snap
                .non_removed(job)
                .iter()
                .filter_map(|a| synced.get(&a.worker_ip).and_then(|r| r.as_ref().err()).map(|e| e.to_string()))
                .collect();
            if !sync_error.is_empty() {
                return Err(Error::new(ErrorKind::RunCommand, sync_error.join("; ")));
            }
            let rollout = rollout::JobRollout {
                remote: &remote,
                snap: &snap,
                kv: &kv,
                hooks: &hooks,
                timeout_secs: timeout_for(job),
                sync_only: opts.sync_only,
                gate: &gate,
            };
            rollout.run(&p.plan)?;
            let active: Vec<String> = snap.active(job).iter().map(|a| a.worker_ip.clone()).collect();
            hooks.run(job, Event::PostDeploy, &active, 1, &[])
        };
        let outcomes =
            bounded_map(&to_roll, CONCURRENT_JOBS, |p| finish_job(&writer, &snap, &kv, out, &p.plan.job, roll_out(p)));
        for (p, outcome) in to_roll.into_iter().zip(outcomes) {
            match outcome? {
                Ok(()) => report.deployed.push(p.plan.job.clone()),
                Err(e) => {
                    failed.insert(p.plan.job.clone(), e);
                }
            }
            planned_waves.push((seq, vec![p]));
        }
    }
    if synced_any {
        conn.execute("UPDATE bucket SET update_seq = ?1", [new_seq])
            .map_err(|e| Error::new(ErrorKind::Database, format!("update update_seq: {e}")))?;
        report.update_seq = new_seq;
    }
    report.plan.waves = merge_waves(planned_waves);
    report.failed = failed;
    Ok(report)
}

/// Promote a job whose rollout succeeded, or report its failure; then checkpoint the KV. The outer
/// error is a catalog write failure (fatal for the deploy), the inner one the job's own failure.
fn finish_job(
    writer: &Mutex<Connection>,
    snap: &Snapshot,
    kv: &SharedKv,
    out: &dyn Reporter,
    job: &str,
    rolled_out: Result<()>,
) -> Result<std::result::Result<(), String>> {
    let conn = writer.lock().unwrap_or_else(PoisonError::into_inner);
    let outcome = match rolled_out {
        Ok(()) => promote(&conn, snap, &mut lock_kv(kv), job).map(|()| {
            out.job_status(job, "promoted");
            out.message(&format!("deploy: job \"{job}\" promoted"));
            Ok(())
        }),
        Err(e) => {
            out.job_status(job, "failed");
            out.message(&format!("deploy: job \"{job}\" failed: {e}"));
            Ok(Err(e.to_string()))
        }
    };
    persist_kv(&conn, kv, "deploy").and(outcome)
}

fn not_planned(job: &str, seq: i64, decision: &str, reason: &str) -> PlannedJob {
    PlannedJob {
        plan: JobPlan {
            job: job.to_string(),
            deployment_seq: seq,
            decision: decision.to_string(),
            reason: Some(reason.to_string()),
            allocations: Vec::new(),
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

/// After a successful rollout: every non-removed allocation's staged state becomes its promoted
/// state at the build's version; running allocations lose any "stopped" marker.
fn promote(conn: &Connection, snap: &Snapshot, kv: &mut KvStore, job: &str) -> Result<()> {
    let tx =
        conn.unchecked_transaction().map_err(|e| Error::new(ErrorKind::Database, format!("begin promote: {e}")))?;
    for a in snap.non_removed(job) {
        catalog::promote_hash(&tx, &hash_namespace(job), &a.alloc_id, &a.new_version)?;
        if a.is_active() {
            catalog::set_stopped(&tx, job, &a.alloc_id, false)?;
        }
        let ns = allocation_ns(job, &a.worker_ip);
        kv.put(&ns, "version", &a.new_version);
        for legacy in ["current_version", "new_version"] {
            if kv.get(&ns, legacy).is_some() {
                let _ = kv.delete(&ns, legacy);
            }
        }
    }
    kv.persist(&tx, now_unix())?;
    tx.commit().map_err(|e| Error::new(ErrorKind::Database, format!("commit promote: {e}")))
}

fn absolute(p: &Path) -> std::path::PathBuf {
    let _ = std::fs::create_dir_all(p);
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}
