//! Reconcile before the waves (spec §5.6 with DESIGN §3.6): stop disabled allocations that still
//! run (once), stop removed allocations and delete their deployed files (keeping `data/` and
//! `logs/`), forget their hash rows, drop the bucket directory from workers that left the catalog,
//! and clear the build-owned KV of jobs left without allocations.

use super::hooks::DeployHooks;
use super::plan::AllocationPlan;
use super::planner::{allocation_plan, hash_namespace, plan_input};
use super::reach::Reachability;
use super::snapshot::Snapshot;
use super::staged_tree::shipped_job_dir;
use crate::build::{allocation_ns, job_ns};
use crate::jobcmd::{lock_kv, SharedKv};
use crate::remote_steps::{Remote, Step};
use maand_core::manifest::{Event, RestartPolicy};
use maand_core::rollout::{job_side_paths, planned_action, DeploySettings, PlannedAction};
use maand_core::{Error, ErrorKind, Result};
use maand_remote::RemoteScript;
use maand_store::catalog;
use maand_store::kv::KvStore;
use rusqlite::Connection;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Allocations reconcile acts on, in catalog order: (job, plan with Stop/StopAndPromote).
pub fn reconcile_plan(conn: &Connection, snap: &Snapshot) -> Result<Vec<(String, AllocationPlan)>> {
    let settings = DeploySettings { sync_only: false, force: false, policy: RestartPolicy::Always, globs: &[] };
    let mut out = Vec::new();
    for a in snap.allocations.iter().filter(|a| a.removed || a.disabled) {
        let row = catalog::get_hash(conn, &hash_namespace(&a.job), &a.alloc_id)?;
        let current_version = row.as_ref().and_then(|r| r.current_version.clone()).unwrap_or_else(|| "0.0.0".into());
        let input = plan_input(a, row.as_ref(), None, &current_version);
        let planned = planned_action(&input, &a.new_version, snap.stopped.contains(&a.alloc_id), &settings);
        // Pending changes of disabled allocations are staged and promoted in their wave; here
        // only the stop matters.
        let planned = match planned {
            PlannedAction::StopAndPromote => PlannedAction::Stop,
            other => other,
        };
        if planned == PlannedAction::Stop {
            out.push((a.job.clone(), allocation_plan(a, &input, planned, &current_version, &a.new_version)));
        }
    }
    Ok(out)
}

/// What reconcile did: failures per job, and jobs that had a running allocation stopped.
#[derive(Default)]
pub struct ReconcileOutcome {
    pub failed: BTreeMap<String, String>,
    /// (job, worker) whose stop waits for the worker to be reachable again.
    pub pending: Vec<(String, String)>,
    pub stopped_jobs: BTreeSet<String>,
}

pub struct ReconcileInput<'a> {
    pub conn: &'a Connection,
    pub snap: &'a Snapshot,
    pub remote: &'a Remote<'a>,
    pub staging_root: &'a Path,
    pub timeout_for: &'a dyn Fn(&str) -> Option<u64>,
    /// `after_allocation_stopped` runs after each stop.
    pub hooks: &'a DeployHooks<'a, 'a>,
    /// Workers that cannot be reached (probed here first, in parallel).
    pub reach: &'a Reachability,
    /// Workers connected to at once.
    pub parallel: usize,
}

pub fn reconcile(input: &ReconcileInput<'_>, kv: &SharedKv) -> Result<ReconcileOutcome> {
    let snap = input.snap;
    let remote = input.remote;
    let mut outcome = ReconcileOutcome::default();
    let mut dead_workers_with_files = BTreeSet::new();
    let plan = reconcile_plan(input.conn, snap)?;
    let workers: BTreeSet<&str> = plan.iter().map(|(_, a)| a.worker_ip.as_str()).collect();
    let addrs: Vec<_> = workers.iter().map(|ip| snap.addr(ip)).collect();
    input.reach.probe(remote, &addrs, input.parallel);
    for (job, a) in plan {
        let in_catalog = snap.worker(&a.worker_ip).is_some();
        let step = |action: &str, script: RemoteScript| Step {
            job: Some(&job),
            phase: "reconcile",
            action: if action == "stop" { "stop" } else { "cleanup_job_tree" },
            worker: snap.addr(&a.worker_ip),
            script,
            timeout_secs: (input.timeout_for)(&job),
        };
        if a.disabled && !a.removed {
            remote.out.message(&format!("deploy: stop disabled allocation {job} on {}", a.worker_ip));
        } else {
            remote.out.message(&format!("deploy: stop removed allocation {job} on {}", a.worker_ip));
        }
        let stop = match input.reach.why(&a.worker_ip) {
            Some(why) => Err(Error::new(ErrorKind::WorkerUnreachable, why)),
            None => remote.run_captured(&step("stop", remote.runner_script("stop", &job, &[]))),
        };
        if let Err(e) = &stop {
            input.reach.record(&a.worker_ip, e);
        }
        match stop {
            Ok(o) if o.exit_code != 0 => {
                outcome
                    .failed
                    .insert(job.clone(), format!("stop on {}: exited with status {}", a.worker_ip, o.exit_code));
                continue;
            }
            Ok(_) => {
                outcome.stopped_jobs.insert(job.clone());
                let hook = input.hooks.run(
                    &job,
                    Event::AfterAllocationStopped,
                    std::slice::from_ref(&a.worker_ip),
                    1,
                    &stopped_env(&a.worker_ip),
                );
                if let Err(e) = hook {
                    outcome.failed.insert(job.clone(), format!("after_allocation_stopped on {}: {e}", a.worker_ip));
                    continue;
                }
            }
            Err(e) if !in_catalog => {
                remote.out.message(&format!("deploy: removed worker {} unreachable, assuming dead: {e}", a.worker_ip));
                dead_workers_with_files.insert(a.worker_ip.clone());
            }
            Err(e) if e.kind == ErrorKind::WorkerUnreachable => {
                // The worker cannot be reached: the allocation is stopped by a later deploy.
                remote.out.message(&format!(
                    "deploy: warning: job \"{job}\" on {}: stop pending (worker unreachable: {e})",
                    a.worker_ip
                ));
                outcome.pending.push((job.clone(), a.worker_ip.clone()));
                continue;
            }
            Err(e) => {
                outcome.failed.insert(job.clone(), format!("stop on {}: {e}", a.worker_ip));
                continue;
            }
        }
        if a.removed {
            if in_catalog {
                let base = format!("/opt/worker/{}/jobs/{}", snap.bucket_id, job);
                let cleanup = RemoteScript::from_lines([
                    format!(
                        "if [ -d {b} ]; then find {b} -mindepth 1 -maxdepth 1 ! -name data ! -name logs -exec rm -rf {{}} +; fi",
                        b = maand_remote::script::shell_quote(&base)
                    ),
                    format!(
                        "rm -rf {}",
                        job_side_paths(&job)
                            .map(|p| maand_remote::script::shell_quote(&format!("/opt/worker/{}/jobs/{p}", snap.bucket_id)))
                            .join(" ")
                    ),
                ]);
                if let Err(e) = remote.run(&step("cleanup", cleanup)) {
                    outcome.failed.insert(job.clone(), format!("remove files on {}: {e}", a.worker_ip));
                    continue;
                }
            } else {
                dead_workers_with_files.insert(a.worker_ip.clone());
            }
            catalog::delete_hash(input.conn, &hash_namespace(&job), &a.alloc_id)?;
            catalog::set_stopped(input.conn, &job, &a.alloc_id, false)?;
            let _ = std::fs::remove_dir_all(shipped_job_dir(input.staging_root, &a.worker_ip, &job));
        } else {
            catalog::set_stopped(input.conn, &job, &a.alloc_id, true)?;
        }
    }
    // Hash rows of removed allocations that never ran are dropped too (a re-add starts fresh).
    for a in snap.allocations.iter().filter(|a| a.removed) {
        let pending = outcome.pending.iter().any(|(j, ip)| *j == a.job && *ip == a.worker_ip);
        if !outcome.failed.contains_key(&a.job) && !pending {
            catalog::delete_hash(input.conn, &hash_namespace(&a.job), &a.alloc_id)?;
        }
    }
    for ip in dead_workers_with_files {
        if let Some(why) = input.reach.why(&ip) {
            remote.out.message(&format!("deploy: removed worker {ip} unreachable, assuming dead: {why}"));
            continue;
        }
        let script = RemoteScript::from_lines([format!("rm -rf /opt/worker/{}", snap.bucket_id)]);
        let step = Step {
            job: None,
            phase: "reconcile",
            action: "cleanup_worker",
            worker: snap.addr(&ip),
            script,
            timeout_secs: Some(30),
        };
        if let Err(e) = remote.run(&step) {
            remote.out.message(&format!("deploy: removed worker {ip} unreachable, assuming dead: {e}"));
        }
    }
    purge_jobs_without_allocations(snap, &mut lock_kv(kv));
    Ok(outcome)
}

/// The batch environment of `after_allocation_stopped` for one stopped allocation.
fn stopped_env(ip: &str) -> Vec<(String, String)> {
    [
        ("DEPLOY_PHASE", "stop"),
        ("BATCH_INDEX", "0"),
        ("BATCH_COUNT", "1"),
        ("BATCH_ALLOCATIONS", ip),
        ("ROLLOUT_ORDER", ip),
        ("ROLLOUT_ORDER_SOURCE", "default"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Jobs whose allocations are all removed lose their build-owned KV. `vars/job/<job>` and
/// `secrets/job/<job>` are kept (only `maand build --purge-job-kv` clears them): a deploy never
/// destroys secrets an operator may still need.
fn purge_jobs_without_allocations(snap: &Snapshot, kv: &mut KvStore) {
    let jobs: BTreeSet<&str> = snap.allocations.iter().map(|a| a.job.as_str()).collect();
    for job in jobs {
        if snap.non_removed(job).is_empty() {
            kv.purge_namespace(&job_ns(job));
            kv.purge_namespace(&format!("vars/bucket/job/{job}"));
            for a in snap.allocations.iter().filter(|a| a.job == job) {
                kv.purge_namespace(&allocation_ns(job, &a.worker_ip));
            }
        }
    }
}
