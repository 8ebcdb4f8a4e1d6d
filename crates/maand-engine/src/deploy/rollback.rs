//! Which kept release each allocation of a job goes back to. `maand rollback <job>` takes every
//! active allocation back to the release before the one it runs (`--to N`: its latest release at
//! or before N); an allocation without one is an error naming it and the releases that exist. The
//! automatic rollback of a failed deploy takes the allocations that run rolled back to what they
//! ran before it. The deploy then stages each from its release instead of rendering.

use super::snapshot::Snapshot;
use maand_core::rollout::{rollback_release, RollbackTo};
use maand_core::{Error, ErrorKind, Result};
use maand_store::catalog::{self, AllocationRelease};
use rusqlite::Connection;
use std::collections::BTreeMap;

/// What `maand rollback` asks of a deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackRequest {
    pub job: String,
    /// `--to N`; None: each allocation's previous release.
    pub to: Option<i64>,
}

impl RollbackRequest {
    pub fn target(&self) -> RollbackTo {
        self.to.map_or(RollbackTo::Previous, RollbackTo::AtOrBefore)
    }
}

/// The release chosen for each allocation, and the allocations without one.
pub struct Chosen {
    /// By allocation id.
    pub releases: BTreeMap<String, AllocationRelease>,
    /// (worker IP, the numbers of the releases it is in).
    pub without: Vec<(String, Vec<i64>)>,
}

/// The release each allocation of `job` on `ips` goes back to.
pub fn choose(conn: &Connection, snap: &Snapshot, job: &str, to: RollbackTo, ips: &[String]) -> Result<Chosen> {
    let mut chosen = Chosen { releases: BTreeMap::new(), without: Vec::new() };
    for a in snap.non_removed(job).into_iter().filter(|a| ips.contains(&a.worker_ip)) {
        let kept = catalog::allocation_release_numbers(conn, job, &a.alloc_id)?;
        let Some(n) = rollback_release(&kept, to) else {
            chosen.without.push((a.worker_ip.clone(), kept));
            continue;
        };
        let release = catalog::allocation_release(conn, job, &a.alloc_id, Some(n))?.ok_or_else(|| {
            Error::new(ErrorKind::Database, format!("job {job} on {}: release {n} vanished", a.worker_ip))
        })?;
        chosen.releases.insert(a.alloc_id.clone(), release);
    }
    Ok(chosen)
}

/// For `maand rollback`: the release every active allocation of the job goes back to.
pub fn requested_releases(
    conn: &Connection,
    snap: &Snapshot,
    request: &RollbackRequest,
) -> Result<BTreeMap<String, AllocationRelease>> {
    let job = &request.job;
    if !snap.jobs.contains_key(job) {
        return Err(Error::msg(format!("cannot roll back job {job}: it is not in the catalog (see maand cat jobs)")));
    }
    let mut all: Vec<i64> = catalog::job_releases(conn, job)?.iter().map(|r| r.release).collect();
    all.reverse();
    let listed = |numbers: &[i64]| -> String {
        if numbers.is_empty() {
            "none".to_string()
        } else {
            numbers.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
        }
    };
    if all.is_empty() {
        return Err(Error::msg(format!(
            "job {job} has no kept release to roll back to (a release is kept each time a deploy promotes it)"
        )));
    }
    if let Some(n) = request.to.filter(|n| !all.contains(n)) {
        return Err(Error::msg(format!(
            "job {job} has no release {n} (its releases: {}); see maand rollback {job} --list",
            listed(&all)
        )));
    }
    let active: Vec<String> = snap.active(job).iter().map(|a| a.worker_ip.clone()).collect();
    if active.is_empty() {
        return Err(Error::msg(format!("job {job} has no active allocation to roll back")));
    }
    let chosen = choose(conn, snap, job, request.target(), &active)?;
    if !chosen.without.is_empty() {
        let which = match request.to {
            Some(n) => format!("at or before release {n}"),
            None => "before the one it runs".to_string(),
        };
        let workers: Vec<String> =
            chosen.without.iter().map(|(ip, kept)| format!("{ip} (its releases: {})", listed(kept))).collect();
        return Err(Error::msg(format!(
            "cannot roll back job {job}: no kept release {which} on {}; the job's releases: {}; see maand rollback {job} --list",
            workers.join(", "),
            listed(&all)
        )));
    }
    Ok(chosen.releases)
}
