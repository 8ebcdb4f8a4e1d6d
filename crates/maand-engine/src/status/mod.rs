//! `maand status [--jobs a,b] [--json]` (read-only, no lock): one screen of the cluster — per job
//! and allocation the worker, the promoted version, the change `maand deploy` would make there
//! now (the deploy planner on the last build; "run maand build" when the workspace is newer),
//! live health (the job's checks, in parallel, bounded), drift (the live files against the
//! promoted release, one SSH session per worker) and the last deploy from the run history.

mod drift;
mod health;
mod last_deploy;
mod pending;
mod report;

pub use report::{AllocationStatus, DriftState, HealthState, JobStatus, StatusReport, StatusSummary};

use crate::bucket::Bucket;
use crate::deploy::gate::GateContext;
use crate::deploy::hash_namespace;
use crate::deploy::snapshot::Snapshot;
use crate::health::{health_check_log, ReportLines};
use crate::jobcmd::{shared_kv, HealthCheckCommands, JobCommands};
use crate::runlog::utc_timestamp;
use drift::{DriftCheck, DriftTarget};
use health::HealthCheck;
use maand_core::drift::FileDrift;
use maand_core::rollout::{parse_file_manifest, was_promoted, FileManifest};
use maand_core::{Error, Result};
use maand_remote::Executor;
use maand_store::catalog::{self, AllocationRow};
use maand_store::kv::KvStore;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusOptions {
    /// `--jobs`: empty = every catalog job.
    pub jobs: Vec<String>,
}

/// `maand status` in the bucket at `root`, over SSH; job-command messages go to `report`.
pub fn status(root: &Path, opts: &StatusOptions, report: &(dyn Fn(&str) + Sync)) -> Result<StatusReport> {
    let bucket = Bucket::open(root)?;
    let executor = crate::transport::ssh_executor(&bucket);
    let status = status_with(&bucket, opts, &executor, report);
    executor.close();
    status
}

/// An allocation as the catalog says it was promoted.
struct Promoted<'a> {
    alloc: &'a AllocationRow,
    /// The promoted version; None when never promoted.
    version: Option<String>,
    /// The promoted release's file manifest (None: never promoted, or a legacy row without one).
    manifest: Option<FileManifest>,
}

/// `maand status` on an opened bucket through `executor`.
pub fn status_with(
    bucket: &Bucket,
    opts: &StatusOptions,
    executor: &dyn Executor,
    report: &(dyn Fn(&str) + Sync),
) -> Result<StatusReport> {
    let conn = bucket.connect()?;
    let snap = Snapshot::load(&conn)?;
    let jobs = select_jobs(&snap, &opts.jobs)?;
    let workspace = pending::workspace_changes(bucket, &conn, &snap.jobs.keys().cloned().collect::<Vec<_>>())?;
    let pending = pending::pending_actions(bucket, &conn, &snap, &jobs)?;

    let mut promoted: Vec<(String, Vec<Promoted<'_>>)> = Vec::new();
    for job in &jobs {
        let mut allocations = Vec::new();
        for a in snap.non_removed(job) {
            let row = catalog::get_hash(&conn, &hash_namespace(job), &a.alloc_id)?;
            let row = row.filter(|r| was_promoted(r.previous_hash.as_deref()));
            allocations.push(Promoted {
                alloc: a,
                version: row.as_ref().and_then(|r| r.current_version.clone()),
                manifest: row.as_ref().and_then(|r| r.previous_files.as_deref()).and_then(parse_file_manifest),
            });
        }
        promoted.push((job.clone(), allocations));
    }
    let deployed = |p: &Promoted<'_>| p.alloc.is_active() && p.version.is_some();

    let targets: Vec<DriftTarget> = promoted
        .iter()
        .flat_map(|(job, allocations)| allocations.iter().map(move |p| (job, p)))
        .filter(|(_, p)| deployed(p))
        .filter_map(|(job, p)| {
            Some(DriftTarget { job: job.clone(), worker: snap.addr(&p.alloc.worker_ip), promoted: p.manifest.clone()? })
        })
        .collect();
    let health_jobs: Vec<(String, Vec<String>)> = promoted
        .iter()
        .map(|(job, allocations)| {
            (job.clone(), allocations.iter().filter(|p| deployed(p)).map(|p| p.alloc.worker_ip.clone()).collect())
        })
        .collect();
    let log = health_check_log(bucket, &conn, "status")?;
    let lines = ReportLines { report, verbose: false };
    let commands = JobCommands::start(bucket, &conn, shared_kv(KvStore::load(&conn)?), &lines, &log)?;
    let extra = HealthCheckCommands { commands: &commands };
    let gates = GateContext { bucket, snap: &snap, executor, extra: &extra };
    // Drift listings and health probes at the same time: a down worker costs one connection timeout.
    let (drift, health) = std::thread::scope(|s| {
        let drift = s.spawn(|| drift::check_drift(executor, &snap.bucket_id, &targets, bucket.conf.parallel));
        let health = health::check_health(&gates, &health_jobs);
        (drift.join().unwrap_or_default(), health)
    });

    let last = last_deploy::last_deploys(&catalog::load_runs(&conn)?);
    let statuses = promoted
        .into_iter()
        .map(|(job, allocations)| {
            let planned = pending.get(&job).cloned().unwrap_or_else(|| Ok(BTreeMap::new()));
            let allocations = allocations
                .iter()
                .map(|p| {
                    let key = (job.clone(), p.alloc.worker_ip.clone());
                    let mut status = allocation_status(p, health.get(&key), drift.get(&key));
                    status.pending = planned.as_ref().ok().and_then(|m| m.get(&p.alloc.worker_ip).cloned());
                    if let Some(ms) = last.get(&key) {
                        status.last_deploy_at = Some(ms.div_euclid(1000));
                        status.last_deploy =
                            Some(utc_timestamp(UNIX_EPOCH + Duration::from_millis(u64::try_from(*ms).unwrap_or(0))));
                    }
                    status
                })
                .collect();
            JobStatus {
                version: snap.jobs.get(&job).map(|j| j.version.clone()).unwrap_or_default(),
                workspace_changed: workspace.changed_jobs.contains(&job),
                plan_error: planned.err(),
                allocations,
                job,
            }
        })
        .collect();
    Ok(StatusReport::new(statuses, workspace.notes))
}

/// One allocation's health and drift columns from what the checks found.
fn allocation_status(p: &Promoted<'_>, health: Option<&HealthCheck>, drift: Option<&DriftCheck>) -> AllocationStatus {
    let (health, health_reason) = if !p.alloc.is_active() {
        (HealthState::Disabled, None)
    } else if p.version.is_none() {
        (HealthState::NotDeployed, None)
    } else {
        match health {
            Some(HealthCheck::Healthy) => (HealthState::Healthy, None),
            Some(HealthCheck::Unhealthy(why)) => (HealthState::Unhealthy, Some(why.clone())),
            Some(HealthCheck::NoChecks) | None => (HealthState::NoChecks, None),
        }
    };
    let (drift, drift_reason, files) = match (health, drift) {
        (HealthState::Disabled, _) => (DriftState::Disabled, None, FileDrift::default()),
        (HealthState::NotDeployed, _) => (DriftState::NotDeployed, None, FileDrift::default()),
        (_, Some(DriftCheck::Compared(d))) if d.is_empty() => (DriftState::None, None, FileDrift::default()),
        (_, Some(DriftCheck::Compared(d))) => (DriftState::Drifted, Some(d.describe()), d.clone()),
        (_, Some(DriftCheck::Failed(why))) => (DriftState::Error, Some(why.clone()), FileDrift::default()),
        (_, None) => (DriftState::Unknown, None, FileDrift::default()),
    };
    AllocationStatus {
        worker_ip: p.alloc.worker_ip.clone(),
        disabled: p.alloc.disabled,
        version: p.version.clone(),
        pending: None,
        health,
        health_reason,
        drift,
        drift_reason,
        files,
        last_deploy_at: None,
        last_deploy: None,
    }
}

/// The jobs named by `--jobs` (all when empty), in name order; unknown names are an error.
fn select_jobs(snap: &Snapshot, names: &[String]) -> Result<Vec<String>> {
    let unknown: Vec<&str> =
        names.iter().map(|n| n.trim()).filter(|n| !n.is_empty() && !snap.jobs.contains_key(*n)).collect();
    if !unknown.is_empty() {
        return Err(Error::msg(format!("jobs not in this bucket: [{}] (see maand cat jobs)", unknown.join(" "))));
    }
    Ok(snap.jobs.keys().filter(|j| names.is_empty() || names.iter().any(|n| n.trim() == j.as_str())).cloned().collect())
}
