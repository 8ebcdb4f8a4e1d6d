//! `maand gc [--retain-days N]` (spec §3.9, §10.4) under the bucket lock, in one transaction:
//! delete the worker-side job trees of removed allocations (the whole bucket directory on workers
//! that left the catalog), tombstone their KV namespaces, delete their hash and allocation rows,
//! then trim KV history older than N days.
//!
//! Unlike the Go maand, a job keeps `vars/job/<job>` and `secrets/job/<job>` (and its other job
//! namespaces) while it still has non-removed allocations, disabled ones included. A removed
//! allocation that is still deployed (a deploy has not stopped it yet) is left for a later gc.

use crate::bucket::{now_unix, Bucket};
use crate::build::{allocation_ns, job_ns};
use crate::history::{gc_outcome, RunKind, RunRecorder};
use crate::output::Reporter;
use crate::remote_steps::{Remote, Step};
use crate::runlog::RunLog;
use crate::transport::{ssh_executor, worker_addr};
use maand_core::rollout::job_side_paths;
use maand_core::{Error, ErrorKind, Result};
use maand_remote::script::shell_quote;
use maand_remote::{Executor, RemoteScript, WorkerAddr};
use maand_store::catalog::{self, AllocationRow, WorkerRow};
use maand_store::kv::{purge_stale_versions, KvStore};
use rusqlite::Connection;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// Time limit of one worker's cleanup.
const CLEANUP_TIMEOUT_SECS: u64 = 120;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcOptions {
    /// Deleted KV history newer than this many days is kept (0: purge all of it).
    pub retain_days: i64,
}

/// A removed allocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemovedAllocation {
    pub job: String,
    pub worker_ip: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Removed allocations collected: job tree deleted, rows and KV purged.
    pub collected: Vec<RemovedAllocation>,
    /// Removed allocations left alone because they are still deployed (run maand deploy first).
    pub still_deployed: Vec<RemovedAllocation>,
    /// Workers no longer in the catalog that could not be reached (assumed dead).
    pub unreachable_workers: Vec<String>,
    /// KV namespaces whose live keys were tombstoned.
    pub purged_namespaces: Vec<String>,
    /// KV history rows deleted.
    pub kv_rows_purged: usize,
    /// Kept release rows (one allocation of one release) and contents deleted: beyond
    /// maand.conf's `releases_kept`, or of jobs no longer in the catalog.
    pub release_rows_pruned: usize,
    pub release_contents_pruned: usize,
}

/// `maand gc` in the bucket at `root`, under the bucket lock, over SSH.
pub fn gc(root: &Path, opts: &GcOptions, out: &dyn Reporter) -> Result<GcReport> {
    let bucket = Bucket::open_locked(root, "gc")?;
    let run = RunRecorder::begin(&bucket, RunKind::Gc, None)?;
    let executor = ssh_executor(&bucket);
    let report = gc_with(&bucket, opts, out, &executor);
    executor.close();
    run.end(&bucket, gc_outcome(&report), out);
    report
}

/// `maand gc` on an opened (locked) bucket with a given executor. A cleanup failure on a worker
/// still in the catalog aborts gc with nothing committed.
pub fn gc_with(bucket: &Bucket, opts: &GcOptions, out: &dyn Reporter, executor: &dyn Executor) -> Result<GcReport> {
    if opts.retain_days < 0 {
        return Err(Error::msg(format!("--retain-days must be 0 or more, not {}", opts.retain_days)));
    }
    let conn = bucket.connect()?;
    let tx = conn.unchecked_transaction().map_err(|e| Error::new(ErrorKind::Database, format!("begin gc: {e}")))?;
    let bucket_row = catalog::bucket_row(&tx)?;
    let workers = catalog::load_workers(&tx)?;
    let allocations = catalog::load_allocations(&tx)?;
    let ports = catalog::worker_ports(&tx)?;
    let mut report = GcReport::default();
    let mut collect = Vec::new();
    for a in allocations.iter().filter(|a| a.removed) {
        let entry = RemovedAllocation { job: a.job.clone(), worker_ip: a.worker_ip.clone() };
        if still_deployed(&tx, a)? {
            out.message(&format!(
                "gc: skip {} on {}: removed but still deployed; run maand deploy first",
                a.job, a.worker_ip
            ));
            report.still_deployed.push(entry);
        } else {
            collect.push(a);
            report.collected.push(entry);
        }
    }
    let plan = CleanupPlan::new(&workers, &ports, &collect, &report.still_deployed);

    let log = RunLog::open(&bucket.paths, bucket.conf.log_format, "gc", bucket_row.update_seq)?;
    let remote = Remote { executor, out, log: &log, bucket_id: &bucket_row.bucket_id };
    report.unreachable_workers = plan.run(&remote, bucket.conf.parallel)?;

    let mut kv = KvStore::load(&tx)?;
    report.purged_namespaces = purge_kv(&mut kv, &plan.departed, &allocations, &collect);
    let now = now_unix();
    kv.persist(&tx, now)?;
    for a in &collect {
        catalog::delete_hash(&tx, &format!("{}_allocation", a.job), &a.alloc_id)?;
        catalog::set_stopped(&tx, &a.job, &a.alloc_id, false)?;
        delete_allocation_row(&tx, a)?;
    }
    for ip in &plan.departed {
        forget_worker_port(&tx, ip)?;
    }
    // `now + 1`: history written up to this very second (the tombstones above) counts as older
    // than 0 days, so `--retain-days 0` leaves nothing of it.
    report.kv_rows_purged = purge_stale_versions(&tx, opts.retain_days, now + 1)?;
    let pruned = catalog::prune_releases(&tx, bucket.conf.releases_kept)?;
    catalog::forget_removed_jobs_state(&tx)?;
    (report.release_rows_pruned, report.release_contents_pruned) = (pruned.rows, pruned.blobs);
    tx.commit().map_err(|e| Error::new(ErrorKind::Database, format!("commit gc: {e}")))?;
    Ok(report)
}

/// A removed allocation some deploy promoted and no deploy has stopped since (reconcile deletes
/// the hash row once it stopped it).
fn still_deployed(conn: &Connection, a: &AllocationRow) -> Result<bool> {
    let row = catalog::get_hash(conn, &format!("{}_allocation", a.job), &a.alloc_id)?;
    Ok(row.and_then(|r| r.previous_hash).is_some_and(|h| !h.is_empty()))
}

/// What gc deletes on workers.
struct CleanupPlan {
    /// Catalog workers and the job trees of collected allocations on them.
    job_trees: Vec<(WorkerAddr, Vec<String>)>,
    /// Workers that left the catalog (collected allocations or a remembered SSH port) and run
    /// nothing of this bucket any more: their whole bucket directory goes, best effort.
    departed: BTreeSet<String>,
    departed_addrs: Vec<WorkerAddr>,
}

impl CleanupPlan {
    fn new(
        workers: &[WorkerRow],
        ports: &HashMap<String, u16>,
        collect: &[&AllocationRow],
        still_deployed: &[RemovedAllocation],
    ) -> CleanupPlan {
        let in_catalog = |ip: &str| workers.iter().any(|w| w.worker_ip == ip);
        let mut trees: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut departed: BTreeSet<String> = ports.keys().filter(|ip| !in_catalog(ip)).cloned().collect();
        for a in collect {
            if in_catalog(&a.worker_ip) {
                trees.entry(&a.worker_ip).or_default().push(a.job.clone());
            } else {
                departed.insert(a.worker_ip.clone());
            }
        }
        for a in still_deployed {
            departed.remove(&a.worker_ip);
        }
        let job_trees = workers
            .iter()
            .filter_map(|w| trees.remove(w.worker_ip.as_str()).map(|jobs| (worker_addr(w), jobs)))
            .collect();
        let departed_addrs = departed.iter().map(|ip| WorkerAddr::new(ip.clone(), ports.get(ip).copied())).collect();
        CleanupPlan { job_trees, departed, departed_addrs }
    }

    /// Run the deletions in parallel (at most `parallel` workers at once). A failure on a catalog
    /// worker is an error; departed workers that fail are returned (assumed dead).
    fn run(&self, remote: &Remote<'_>, parallel: usize) -> Result<Vec<String>> {
        let base = format!("/opt/worker/{}", remote.bucket_id);
        let mut steps: Vec<Step<'_>> = self
            .job_trees
            .iter()
            .map(|(addr, jobs)| {
                let trees: Vec<String> = jobs
                    .iter()
                    .flat_map(|j| {
                        std::iter::once(format!("{base}/jobs/{j}"))
                            .chain(job_side_paths(j).map(|p| format!("{base}/jobs/{p}")))
                    })
                    .map(|p| shell_quote(&p))
                    .collect();
                let script = RemoteScript::from_lines([format!("rm -rf {}", trees.join(" "))]);
                cleanup_step("cleanup_job_tree", addr.clone(), script)
            })
            .collect();
        steps.extend(self.departed_addrs.iter().map(|addr| {
            let script = RemoteScript::from_lines([format!("rm -rf {}", shell_quote(&base))]);
            cleanup_step("cleanup_worker", addr.clone(), script)
        }));
        let mut failures = Vec::new();
        let mut unreachable = Vec::new();
        for (i, (step, result)) in steps.iter().zip(remote.run_all_limited(&steps, parallel)).enumerate() {
            match result {
                Ok(()) => {}
                Err(e) if i < self.job_trees.len() => failures.push(e.to_string()),
                Err(e) => {
                    remote.out.message(&format!("gc: removed worker {} unreachable, assuming dead: {e}", step.worker));
                    unreachable.push(step.worker.host.clone());
                }
            }
        }
        if failures.is_empty() {
            Ok(unreachable)
        } else {
            Err(Error::new(ErrorKind::RunCommand, format!("gc: {}; nothing was collected", failures.join("; "))))
        }
    }
}

fn cleanup_step(action: &'static str, worker: WorkerAddr, script: RemoteScript) -> Step<'static> {
    Step { job: None, phase: "gc", action, worker, script, timeout_secs: Some(CLEANUP_TIMEOUT_SECS) }
}

/// Tombstone the KV of collected allocations: their allocation namespaces; `maand/worker/<ip>`
/// (and tags) of departed workers; and the four job namespaces of jobs left with no
/// non-removed allocation. Returns the namespaces that had live keys.
fn purge_kv(
    kv: &mut KvStore,
    departed: &BTreeSet<String>,
    allocations: &[AllocationRow],
    collect: &[&AllocationRow],
) -> Vec<String> {
    let mut namespaces: BTreeSet<String> = BTreeSet::new();
    for ip in departed {
        namespaces.insert(format!("maand/worker/{ip}"));
        namespaces.insert(format!("maand/worker/{ip}/tags"));
    }
    let mut jobs: BTreeSet<&str> = BTreeSet::new();
    for a in collect {
        namespaces.insert(allocation_ns(&a.job, &a.worker_ip));
        jobs.insert(&a.job);
    }
    for job in jobs {
        if allocations.iter().any(|a| a.job == job && !a.removed) {
            continue;
        }
        namespaces.insert(job_ns(job));
        namespaces.insert(format!("vars/bucket/job/{job}"));
        namespaces.insert(format!("vars/job/{job}"));
        namespaces.insert(format!("secrets/job/{job}"));
    }
    let mut purged = Vec::new();
    for ns in namespaces {
        if !kv.keys(&ns).is_empty() {
            kv.purge_namespace(&ns);
            purged.push(ns);
        }
    }
    purged
}

// Catalog SQL belongs in maand-store: these two are to move there (`catalog::delete_removed_allocation`,
// `catalog::forget_worker_port`).

/// Delete a removed allocation's row.
fn delete_allocation_row(conn: &Connection, a: &AllocationRow) -> Result<()> {
    conn.execute(
        "DELETE FROM allocations WHERE job = ?1 AND worker_ip = ?2 AND removed = 1",
        rusqlite::params![a.job, a.worker_ip],
    )
    .map_err(|e| Error::new(ErrorKind::Database, format!("delete allocation {} on {}: {e}", a.job, a.worker_ip)))?;
    Ok(())
}

/// Forget the SSH port remembered for a worker that left the catalog.
fn forget_worker_port(conn: &Connection, ip: &str) -> Result<()> {
    conn.execute(
        "DELETE FROM maand_worker_options WHERE worker_ip = ?1 AND worker_ip NOT IN (SELECT worker_ip FROM worker)",
        [ip],
    )
    .map_err(|e| Error::new(ErrorKind::Database, format!("forget the SSH port of worker {ip}: {e}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc(job: &str, ip: &str, disabled: bool, removed: bool) -> AllocationRow {
        AllocationRow {
            alloc_id: format!("{job}|{ip}"),
            worker_ip: ip.into(),
            job: job.into(),
            disabled,
            removed,
            deployment_seq: 0,
            new_version: "1".into(),
        }
    }

    fn kv_with(namespaces: &[&str]) -> KvStore {
        let mut kv = KvStore::default();
        for ns in namespaces {
            kv.put(ns, "k", "v");
        }
        kv
    }

    #[test]
    fn disabled_only_job_keeps_its_namespaces() {
        let ns = [
            "maand/job/vault",
            "vars/job/vault",
            "secrets/job/vault",
            "vars/bucket/job/vault",
            "maand/job/vault/worker/10.0.0.3",
        ];
        let mut kv = kv_with(&ns);
        let allocations = vec![alloc("vault", "10.0.0.1", true, false), alloc("vault", "10.0.0.3", false, true)];
        let collect: Vec<&AllocationRow> = allocations.iter().filter(|a| a.removed).collect();
        let purged = purge_kv(&mut kv, &BTreeSet::new(), &allocations, &collect);
        assert_eq!(purged, ["maand/job/vault/worker/10.0.0.3"]);
        for kept in &ns[..4] {
            assert_eq!(kv.get(kept, "k"), Some("v"), "{kept} must survive gc");
        }
    }

    #[test]
    fn fully_removed_job_and_departed_worker_lose_everything() {
        let ns = [
            "maand/job/old",
            "vars/job/old",
            "secrets/job/old",
            "vars/bucket/job/old",
            "maand/job/old/worker/10.0.0.9",
            "maand/worker/10.0.0.9",
            "maand/worker/10.0.0.9/tags",
            "maand/worker/10.0.0.1",
        ];
        let mut kv = kv_with(&ns);
        let allocations = vec![alloc("old", "10.0.0.9", false, true)];
        let collect: Vec<&AllocationRow> = allocations.iter().collect();
        let departed: BTreeSet<String> = ["10.0.0.9".to_string()].into();
        let purged = purge_kv(&mut kv, &departed, &allocations, &collect);
        assert_eq!(purged.len(), 7, "{purged:?}");
        for gone in &ns[..7] {
            assert_eq!(kv.get(gone, "k"), None, "{gone}");
        }
        assert_eq!(kv.get("maand/worker/10.0.0.1", "k"), Some("v"), "a catalog worker keeps its KV");
    }
}
