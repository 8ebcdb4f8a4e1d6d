//! What a deploy, a `maand job` run or a gc did, per job, for the history — read from the report
//! each of them returns. `None` means the run changed nothing (it is not recorded).

use super::record::{JobOutcome, RunOutcome, RunResult};
use crate::bucket::Bucket;
use crate::deploy::{hash_namespace, AllocationPlan, DeployReport};
use crate::gc::GcReport;
use crate::jobctl::JobControlReport;
use maand_core::rollout::was_promoted;
use maand_core::Result;
use maand_store::catalog;
use rusqlite::Connection;
use std::collections::{BTreeMap, BTreeSet};

/// A deploy: each job it rolled out, failed, blocked or interrupted, and each stop of a disabled
/// or removed allocation, with the versions from → to of the allocations acted on.
pub fn deploy_outcome(result: &Result<DeployReport>) -> Option<RunOutcome> {
    let report = match result {
        Ok(report) => report,
        Err(e) => return Some(RunOutcome::error(e)),
    };
    let pending: BTreeSet<(&str, &str)> = report.pending_stops.iter().map(|(j, w)| (j.as_str(), w.as_str())).collect();
    let mut acted: BTreeMap<&str, Vec<&AllocationPlan>> = BTreeMap::new();
    for (job, a) in &report.plan.reconcile {
        if !pending.contains(&(job.as_str(), a.worker_ip.as_str())) {
            acted.entry(job).or_default().push(a);
        }
    }
    for plan in report.plan.waves.iter().flat_map(|w| &w.jobs).filter(|j| j.deploys()) {
        acted.entry(&plan.job).or_default().extend(plan.allocations.iter().filter(|a| a.planned.is_required()));
    }
    let mut names: BTreeSet<&str> = acted.keys().copied().collect();
    names.retain(|j| !acted[j].is_empty() || report.deployed.iter().any(|d| d == j));
    names.extend(report.deployed.iter().map(String::as_str));
    names.extend(report.failed.keys().map(String::as_str));
    names.extend(report.blocked.iter().map(String::as_str));
    names.extend(report.interrupted_jobs.iter().map(String::as_str));
    if names.is_empty() && !report.interrupted {
        return None;
    }
    let jobs = names
        .into_iter()
        .map(|job| {
            let allocations = acted.get(job).map(Vec::as_slice).unwrap_or_default();
            let (result, reason) = if let Some(e) = report.failed.get(job) {
                (RunResult::Failed, Some(e.clone()))
            } else if report.blocked.iter().any(|b| b == job) {
                (RunResult::Failed, Some("blocked (an upstream job failed)".to_string()))
            } else if report.interrupted_jobs.iter().any(|i| i == job) {
                (RunResult::Interrupted, None)
            } else {
                (RunResult::Ok, None)
            };
            JobOutcome {
                job: job.to_string(),
                version_from: joined(
                    allocations
                        .iter()
                        .filter(|a| was_promoted(a.previous_hash.as_deref()))
                        .map(|a| a.current_version.clone()),
                ),
                version_to: joined(allocations.iter().filter(|a| a.action != "stop").map(|a| a.new_version.clone())),
                allocations: allocations.iter().map(|a| a.worker_ip.clone()).collect(),
                promoted: report.progress.get(job).map(|p| p.promoted.clone()).unwrap_or_default(),
                result,
                reason,
            }
        })
        .collect();
    Some(RunOutcome::from_jobs(jobs, report.interrupted))
}

/// A `maand job <target>` run: each job with the allocations its batches ran on; the version is
/// what is promoted there (a target does not change it). Nothing run anywhere: not recorded.
pub fn job_control_outcome(bucket: &Bucket, result: &Result<JobControlReport>) -> Option<RunOutcome> {
    let report = match result {
        Ok(report) => report,
        Err(e) => return Some(RunOutcome::error(e)),
    };
    let nothing_ran = report.jobs.iter().all(|j| j.batches.is_empty() && j.error.is_none());
    if nothing_ran && !report.interrupted {
        return None;
    }
    let conn = bucket.connect().ok();
    let jobs = report
        .jobs
        .iter()
        .map(|j| {
            let allocations: Vec<String> = j.batches.iter().flatten().cloned().collect();
            let (result, reason) = match (&j.error, &j.skipped) {
                (Some(e), _) => (RunResult::Failed, Some(e.clone())),
                (None, Some(why)) if why.starts_with("interrupted") => (RunResult::Interrupted, Some(why.clone())),
                (None, Some(why)) => (RunResult::Skipped, Some(why.clone())),
                (None, None) => (RunResult::Ok, None),
            };
            let version = conn.as_ref().and_then(|c| promoted_version(c, &j.job, &allocations).ok().flatten());
            JobOutcome {
                job: j.job.clone(),
                version_from: version.clone(),
                version_to: version,
                allocations,
                promoted: Vec::new(),
                result,
                reason,
            }
        })
        .collect();
    Some(RunOutcome::from_jobs(jobs, report.interrupted))
}

/// A gc: each job with the removed allocations it collected. Nothing collected and no KV purged:
/// not recorded.
pub fn gc_outcome(result: &Result<GcReport>) -> Option<RunOutcome> {
    let report = match result {
        Ok(report) => report,
        Err(e) => return Some(RunOutcome::error(e)),
    };
    if report.collected.is_empty() && report.purged_namespaces.is_empty() && report.kv_rows_purged == 0 {
        return None;
    }
    let mut by_job: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for a in &report.collected {
        by_job.entry(&a.job).or_default().push(a.worker_ip.clone());
    }
    let jobs = by_job
        .into_iter()
        .map(|(job, allocations)| JobOutcome {
            job: job.to_string(),
            version_from: None,
            version_to: None,
            allocations,
            promoted: Vec::new(),
            result: RunResult::Ok,
            reason: Some("removed allocations collected".to_string()),
        })
        .collect();
    Some(RunOutcome::from_jobs(jobs, false))
}

/// The promoted version(s) of the job's allocations on `ips` (comma-joined when they differ).
fn promoted_version(conn: &Connection, job: &str, ips: &[String]) -> Result<Option<String>> {
    let mut versions = Vec::new();
    for a in catalog::load_allocations(conn)?.iter().filter(|a| a.job == job && ips.contains(&a.worker_ip)) {
        let row = catalog::get_hash(conn, &hash_namespace(job), &a.alloc_id)?;
        if let Some(v) = row.filter(|r| was_promoted(r.previous_hash.as_deref())).and_then(|r| r.current_version) {
            versions.push(v);
        }
    }
    Ok(joined(versions.into_iter()))
}

/// Distinct values in first-seen order, comma-joined; `None` when there are none.
fn joined(values: impl Iterator<Item = String>) -> Option<String> {
    let mut seen: Vec<String> = Vec::new();
    for v in values {
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    (!seen.is_empty()).then(|| seen.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::{DeployPlan, JobPlan, JobProgress, WavePlan};
    use maand_core::rollout::PlannedAction;

    fn alloc(ip: &str, planned: PlannedAction, promoted: Option<&str>, to: &str) -> AllocationPlan {
        AllocationPlan {
            worker_ip: ip.into(),
            alloc_id: format!("id-{ip}"),
            action: planned.label().into(),
            planned,
            class: maand_core::rollout::AllocationClass::New,
            disabled: false,
            removed: false,
            previous_hash: promoted.map(|_| "h".to_string()),
            current_hash: Some("h2".into()),
            current_version: promoted.unwrap_or("0.0.0").into(),
            new_version: to.into(),
            matched: Vec::new(),
            files: Default::default(),
            diff: Vec::new(),
            release: None,
        }
    }

    fn job_plan(job: &str, decision: &str, allocations: Vec<AllocationPlan>) -> JobPlan {
        JobPlan {
            job: job.into(),
            deployment_seq: 0,
            decision: decision.into(),
            reason: None,
            allocations,
            unhealthy: Vec::new(),
            rollout: Default::default(),
            pre_deploy: None,
        }
    }

    #[test]
    fn a_deploy_names_versions_allocations_and_results_per_job() {
        let web = job_plan(
            "web",
            "deploy",
            vec![
                alloc("10.0.0.1", PlannedAction::Restart { matched: vec![] }, Some("1"), "2"),
                alloc("10.0.0.2", PlannedAction::Skip, Some("2"), "2"),
                alloc("10.0.0.3", PlannedAction::Start, None, "2"),
            ],
        );
        let db = job_plan(
            "db",
            "deploy",
            vec![alloc("10.0.0.1", PlannedAction::Restart { matched: vec![] }, Some("5"), "6")],
        );
        let idle = job_plan("idle", "skip", vec![alloc("10.0.0.1", PlannedAction::Skip, Some("1"), "1")]);
        let mut report = DeployReport {
            deployed: vec!["web".into()],
            skipped: vec!["idle".into()],
            plan: DeployPlan {
                waves: vec![WavePlan { deployment_seq: 0, jobs: vec![db, idle, web] }],
                reconcile: vec![],
                rollback: None,
            },
            ..Default::default()
        };
        report.failed.insert("db".into(), "health check failed: job db: 10.0.0.1 down".into());
        report.progress.insert(
            "web".into(),
            JobProgress { promoted: vec!["10.0.0.1".into(), "10.0.0.3".into()], ..Default::default() },
        );
        let outcome = deploy_outcome(&Ok(report)).unwrap();
        assert_eq!(outcome.result, RunResult::Failed);
        assert_eq!(outcome.reason.as_deref(), Some("failed: db"));
        let names: Vec<&str> = outcome.jobs.iter().map(|j| j.job.as_str()).collect();
        assert_eq!(names, vec!["db", "web"], "unchanged jobs are left out");
        let web = &outcome.jobs[1];
        assert_eq!(web.version_from.as_deref(), Some("1"), "only allocations acted on that were promoted");
        assert_eq!(web.version_to.as_deref(), Some("2"));
        assert_eq!(web.allocations, vec!["10.0.0.1", "10.0.0.3"]);
        assert_eq!(web.promoted, vec!["10.0.0.1", "10.0.0.3"]);
        assert_eq!(web.result, RunResult::Ok);
        assert_eq!(outcome.jobs[0].result, RunResult::Failed);
        assert!(outcome.jobs[0].reason.as_deref().unwrap().contains("10.0.0.1 down"));
    }

    #[test]
    fn a_deploy_with_nothing_to_do_is_not_recorded_but_an_error_is() {
        let idle = job_plan("idle", "skip", vec![alloc("10.0.0.1", PlannedAction::Skip, Some("1"), "1")]);
        let report = DeployReport {
            skipped: vec!["idle".into()],
            plan: DeployPlan {
                waves: vec![WavePlan { deployment_seq: 0, jobs: vec![idle] }],
                reconcile: vec![],
                rollback: None,
            },
            ..Default::default()
        };
        assert_eq!(deploy_outcome(&Ok(report)), None);
        let failed = deploy_outcome(&Err(maand_core::Error::msg("catalog is gone"))).unwrap();
        assert_eq!((failed.result, failed.reason.as_deref()), (RunResult::Failed, Some("catalog is gone")));
    }

    #[test]
    fn stops_count_unless_their_worker_was_unreachable() {
        let stop = |ip: &str| ("web".to_string(), alloc(ip, PlannedAction::Stop, Some("1"), "1"));
        let report = DeployReport {
            plan: DeployPlan { waves: vec![], reconcile: vec![stop("10.0.0.1"), stop("10.0.0.2")], rollback: None },
            pending_stops: vec![("web".into(), "10.0.0.2".into())],
            ..Default::default()
        };
        let outcome = deploy_outcome(&Ok(report)).unwrap();
        assert_eq!(outcome.jobs.len(), 1);
        assert_eq!(outcome.jobs[0].allocations, vec!["10.0.0.1"]);
        assert_eq!(outcome.jobs[0].version_from.as_deref(), Some("1"));
        assert_eq!(outcome.jobs[0].version_to, None, "a stop rolls out no version");
        let only_pending = DeployReport {
            plan: DeployPlan { waves: vec![], reconcile: vec![stop("10.0.0.2")], rollback: None },
            pending_stops: vec![("web".into(), "10.0.0.2".into())],
            ..Default::default()
        };
        assert_eq!(deploy_outcome(&Ok(only_pending)), None);
    }

    #[test]
    fn gc_records_collected_allocations_per_job() {
        use crate::gc::RemovedAllocation;
        let report = GcReport {
            collected: vec![
                RemovedAllocation { job: "b".into(), worker_ip: "10.0.0.2".into() },
                RemovedAllocation { job: "a".into(), worker_ip: "10.0.0.1".into() },
            ],
            ..Default::default()
        };
        let outcome = gc_outcome(&Ok(report)).unwrap();
        assert_eq!(
            outcome.jobs.iter().map(|j| (j.job.as_str(), j.allocations.clone())).collect::<Vec<_>>(),
            vec![("a", vec!["10.0.0.1".to_string()]), ("b", vec!["10.0.0.2".to_string()])]
        );
        assert_eq!(gc_outcome(&Ok(GcReport::default())), None);
    }
}
