//! Planning one job: stage every non-removed allocation, compare with what was promoted, and
//! decide each allocation's action (spec §5.2, §5.4, §5.8, DESIGN §3.6). A rollback plans only the
//! allocations it takes back, each staged from its kept release at that release's version.

use super::diff::{AllocationSides, DiffSource};
use super::plan::{AllocationPlan, JobPlan};
use super::snapshot::Snapshot;
use super::stage::{stage_allocation, stage_release, StageInput, Staged};
use crate::prometheus::ServerAssets;
use crate::template::Limits;
use maand_core::manifest::RestartPolicy;
use maand_core::rollout::{
    classify, file_changes, job_needs_rollout, parse_file_manifest, plan_job_rollout, plan_rollback_rollout,
    planned_action, was_promoted, AllocationAction, AllocationPlanInput, DeploySettings, FileChanges, HashState,
    JobRollout, PlannedAction, RolloutInput,
};
use maand_core::{Error, ErrorKind, Result};
use maand_store::catalog::{self, AllocationRelease, AllocationRow, HashRow};
use maand_store::kv::KvStore;
use maand_store::secrets::SecretKey;
use rusqlite::Connection;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

pub struct PlanInput<'a> {
    pub conn: &'a Connection,
    pub snap: &'a Snapshot,
    pub kv: &'a KvStore,
    pub key: Option<&'a SecretKey>,
    pub staging_root: &'a Path,
    pub update_seq: i64,
    pub force: bool,
    pub sync_only: bool,
    /// Diff each changed file against the last promoted release (`--diff`).
    pub diff: bool,
    pub template_limits: Limits,
    /// A rollback: the kept release each allocation goes back to, by allocation id (the others
    /// are not planned).
    pub releases: Option<&'a BTreeMap<String, AllocationRelease>>,
}

/// A planned job plus what staging produced, keyed by allocation id.
pub struct PlannedJob {
    pub plan: JobPlan,
    pub staged: BTreeMap<String, Staged>,
}

pub fn hash_namespace(job: &str) -> String {
    format!("{job}_allocation")
}

/// Stage and classify the job. Removed allocations that still run appear with `Stop` (they are
/// handled by reconcile before the waves).
pub fn plan_job(input: &PlanInput<'_>, job: &str, deployment_seq: i64) -> Result<PlannedJob> {
    let snap = input.snap;
    let files = catalog::load_job_files(input.conn, job)?;
    let upstream = snap.upstream(job);
    let job_row = snap.jobs.get(job);
    let policy = job_row.and_then(|j| RestartPolicy::parse(&j.restart_policy)).unwrap_or(RestartPolicy::Always);
    let globs: Vec<String> = job_row.and_then(|j| serde_json::from_str(&j.restart_globs).ok()).unwrap_or_default();
    let settings = DeploySettings { sync_only: input.sync_only, force: input.force, policy, globs: &globs };
    let prometheus = match input.releases {
        None => ServerAssets::load(input.conn, input.kv, job, files.iter().map(|f| f.path.as_str()))?,
        Some(_) => None,
    };
    let mut staged = BTreeMap::new();
    let mut inputs = Vec::new();
    let mut allocations = Vec::new();
    for a in snap.non_removed(job) {
        let kept = match input.releases.map(|r| r.get(&a.alloc_id)) {
            Some(None) => continue,
            Some(Some(kept)) => Some(kept),
            None => None,
        };
        let row = catalog::get_hash(input.conn, &hash_namespace(job), &a.alloc_id)?;
        let current_version = row.as_ref().and_then(|r| r.current_version.clone()).unwrap_or_else(|| "0.0.0".into());
        let (s, new_version) = match kept {
            Some(kept) => {
                let key = input.key.ok_or_else(|| {
                    Error::new(
                        ErrorKind::KvKey,
                        format!("job {job}: secrets/kv.key (the kept releases are encrypted with it)"),
                    )
                })?;
                (stage_release(input.staging_root, &a.worker_ip, input.conn, key, kept)?, kept.of.version.clone())
            }
            None => {
                let stage = StageInput {
                    staging_root: input.staging_root,
                    bucket_id: &snap.bucket_id,
                    update_seq: input.update_seq,
                    job,
                    alloc: a,
                    worker: snap.worker(&a.worker_ip),
                    files: &files,
                    current_version: &current_version,
                    upstream: &upstream,
                    kv: input.kv,
                    key: input.key,
                    prometheus: prometheus.as_ref(),
                    template_limits: input.template_limits,
                };
                (stage_allocation(&stage)?, a.new_version.clone())
            }
        };
        let plan_input = plan_input(a, row.as_ref(), Some(&s), &current_version);
        let was_stopped = snap.stopped.contains(&a.alloc_id);
        let planned = planned_action(&plan_input, &new_version, was_stopped, &settings);
        let mut plan = allocation_plan(a, &plan_input, planned, &current_version, &new_version);
        plan.release = kept.map(|k| k.of.release);
        if input.diff && !plan.files.is_empty() {
            let source = DiffSource { conn: input.conn, key: input.key, staging_root: input.staging_root };
            let sides = AllocationSides { job, alloc_id: &a.alloc_id, worker_ip: &a.worker_ip };
            plan.diff = source.diffs(&sides, &plan.files)?;
        }
        allocations.push(plan);
        inputs.push((plan_input, new_version));
        staged.insert(a.alloc_id.clone(), s);
    }
    let needs = job_needs_rollout(&inputs);
    let deploys = needs || input.force;
    Ok(PlannedJob {
        plan: JobPlan {
            job: job.to_string(),
            deployment_seq,
            decision: if deploys { "deploy" } else { "skip" }.into(),
            reason: (!deploys).then(|| "already promoted on all allocations".into()),
            allocations,
            unhealthy: Vec::new(),
            rollout: JobRollout::default(),
            pre_deploy: None,
        },
        staged,
    })
}

/// What the rollout of a planned job is computed from besides its allocations' actions.
pub struct RolloutContext<'a> {
    pub snap: &'a Snapshot,
    pub stored_order: Option<&'a str>,
    /// Active allocations failing the pre-flight health check, with why.
    pub unhealthy: &'a BTreeMap<String, String>,
    pub job_control: bool,
    /// An automatic rollback: the allocations going back, in this order (no pre-flight order).
    pub reverse_of: Option<&'a [String]>,
}

/// Fill in the job's rollout plan (batches, gates, swaps) from its allocations' actions.
pub fn plan_rollout(plan: &mut JobPlan, ctx: &RolloutContext<'_>) {
    let actions: Vec<AllocationAction> = plan
        .allocations
        .iter()
        .filter(|a| !a.removed)
        .map(|a| AllocationAction { worker_ip: a.worker_ip.clone(), active: !a.disabled, action: a.planned.clone() })
        .collect();
    let unhealthy: BTreeSet<String> = ctx.unhealthy.keys().cloned().collect();
    let job_row = ctx.snap.jobs.get(&plan.job);
    plan.unhealthy = ctx.unhealthy.iter().map(|(ip, why)| (ip.clone(), why.clone())).collect();
    let input = RolloutInput {
        job: &plan.job,
        allocations: &actions,
        stored_order: ctx.stored_order,
        unhealthy: &unhealthy,
        max_concurrent_starts: job_row.map_or(0, |j| j.max_concurrent_starts),
        max_concurrent_upgrades: job_row.map_or(1, |j| j.max_concurrent_upgrades),
        job_control: ctx.job_control,
    };
    plan.rollout = match ctx.reverse_of {
        Some(order) => plan_rollback_rollout(&input, order),
        None => plan_job_rollout(&input),
    };
}

/// Active allocations of the job that were promoted at least once (running, unless broken).
pub fn running_allocations(conn: &Connection, snap: &Snapshot, job: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for a in snap.active(job) {
        let row = catalog::get_hash(conn, &hash_namespace(job), &a.alloc_id)?;
        if row.is_some_and(|r| was_promoted(r.previous_hash.as_deref())) {
            out.push(a.worker_ip.clone());
        }
    }
    Ok(out)
}

/// The classification input for an allocation, using the freshly staged hash when there is one.
pub fn plan_input(
    a: &AllocationRow,
    row: Option<&HashRow>,
    staged: Option<&Staged>,
    current_version: &str,
) -> AllocationPlanInput {
    let hash_row = match (row, staged) {
        (_, Some(s)) => Some(HashState {
            current_hash: s.hash.clone(),
            previous_hash: row.and_then(|r| r.previous_hash.clone()),
            current_files: s.files.clone(),
            previous_files: row.and_then(|r| r.previous_files.as_deref()).and_then(parse_file_manifest),
            current_version: current_version.to_string(),
        }),
        (Some(r), None) => Some(HashState {
            current_hash: r.current_hash.clone().unwrap_or_default(),
            previous_hash: r.previous_hash.clone(),
            current_files: r.current_files.as_deref().and_then(parse_file_manifest).unwrap_or_default(),
            previous_files: r.previous_files.as_deref().and_then(parse_file_manifest),
            current_version: current_version.to_string(),
        }),
        (None, None) => None,
    };
    AllocationPlanInput {
        ip: a.worker_ip.clone(),
        alloc_id: a.alloc_id.clone(),
        disabled: a.disabled,
        removed: a.removed,
        hash_row,
    }
}

/// The plan of one allocation rolling out `new_version` (the build's, or a kept release's).
pub fn allocation_plan(
    a: &AllocationRow,
    input: &AllocationPlanInput,
    planned: PlannedAction,
    current_version: &str,
    new_version: &str,
) -> AllocationPlan {
    let matched = match &planned {
        PlannedAction::Restart { matched } => matched.clone(),
        _ => Vec::new(),
    };
    let files = match &input.hash_row {
        Some(h) if !matches!(planned, PlannedAction::Stop) => {
            let promoted = was_promoted(h.previous_hash.as_deref()).then_some(h.previous_files.as_ref()).flatten();
            file_changes(promoted, &h.current_files)
        }
        _ => FileChanges::default(),
    };
    AllocationPlan {
        files,
        diff: Vec::new(),
        worker_ip: a.worker_ip.clone(),
        alloc_id: a.alloc_id.clone(),
        action: planned.label().to_string(),
        class: classify(input, new_version),
        planned,
        disabled: a.disabled,
        removed: a.removed,
        previous_hash: input.hash_row.as_ref().and_then(|h| h.previous_hash.clone()),
        current_hash: input.hash_row.as_ref().map(|h| h.current_hash.clone()),
        current_version: current_version.to_string(),
        new_version: new_version.to_string(),
        matched,
        release: None,
    }
}
