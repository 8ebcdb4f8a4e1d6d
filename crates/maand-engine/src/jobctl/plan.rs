//! What `maand job …` acts on and in which order (spec §3.5, internals §7.6): the jobs and workers
//! filters checked against the catalog, each job's selected ACTIVE allocations in rollout order cut
//! into batches of `max_concurrent_upgrades`, and jobs grouped by `deployment_seq` (ascending).

use crate::build::job_ns;
use crate::deploy::snapshot::Snapshot;
use maand_core::rollout::{batches, resolve_rollout_order};
use maand_core::{Error, Result};
use maand_store::kv::KvStore;
use rusqlite::Connection;
use std::collections::{BTreeMap, BTreeSet};

/// The catalog as job control reads it: the deploy's snapshot and each job's stored rollout order.
pub struct ControlCatalog {
    pub snap: Snapshot,
    /// job -> KV `maand/job/<job>:rollout_order`.
    pub rollout_orders: BTreeMap<String, String>,
}

impl ControlCatalog {
    pub fn load(conn: &Connection) -> Result<ControlCatalog> {
        let snap = Snapshot::load(conn)?;
        let kv = KvStore::load(conn)?;
        let rollout_orders = snap
            .jobs
            .keys()
            .filter_map(|j| kv.get(&job_ns(j), "rollout_order").map(|v| (j.clone(), v.to_string())))
            .collect();
        Ok(ControlCatalog { snap, rollout_orders })
    }

    /// IPs of the job's ACTIVE allocations in catalog order.
    pub fn active(&self, job: &str) -> Vec<String> {
        self.snap.active(job).iter().map(|a| a.worker_ip.clone()).collect()
    }
}

/// One job's part of a `maand job …` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobTask {
    pub job: String,
    pub deployment_seq: i64,
    /// Selected active allocations in rollout order (empty: nothing to do on this job).
    pub workers: Vec<String>,
    /// `max_concurrent_upgrades` (at least 1).
    pub batch_size: i64,
    /// Rollout order warnings to show.
    pub warnings: Vec<String>,
}

impl JobTask {
    pub fn batches(&self) -> Vec<Vec<String>> {
        batches(&self.workers, self.batch_size)
    }
}

/// The tasks of a run grouped by `deployment_seq`, ascending; jobs of one seq in name order.
/// `jobs` must name catalog jobs and `allocations` (when given) catalog workers, else
/// `invalid jobs filter: [..]` / `invalid workers filter: [..]` naming the unknown ones.
pub fn plan_waves(cat: &ControlCatalog, jobs: &[String], allocations: &[String]) -> Result<Vec<(i64, Vec<JobTask>)>> {
    let jobs: BTreeSet<&str> = jobs.iter().map(|j| j.trim()).filter(|j| !j.is_empty()).collect();
    if jobs.is_empty() {
        return Err(Error::msg("no job given: name one or more jobs (comma-separated)"));
    }
    let unknown: Vec<&str> = jobs.iter().copied().filter(|j| !cat.snap.jobs.contains_key(*j)).collect();
    if !unknown.is_empty() {
        return Err(Error::msg(format!("invalid jobs filter: [{}]", unknown.join(" "))));
    }
    let wanted_workers: BTreeSet<&str> = allocations.iter().map(|w| w.trim()).filter(|w| !w.is_empty()).collect();
    let unknown: Vec<&str> =
        wanted_workers.iter().copied().filter(|w| !cat.snap.workers.iter().any(|c| c.worker_ip == *w)).collect();
    if !unknown.is_empty() {
        return Err(Error::msg(format!("invalid workers filter: [{}]", unknown.join(" "))));
    }
    let mut waves: BTreeMap<i64, Vec<JobTask>> = BTreeMap::new();
    for job in jobs {
        let selected: Vec<String> = cat
            .active(job)
            .into_iter()
            .filter(|ip| wanted_workers.is_empty() || wanted_workers.contains(ip.as_str()))
            .collect();
        let default_order: Vec<String> = cat.snap.non_removed(job).iter().map(|a| a.worker_ip.clone()).collect();
        let order =
            resolve_rollout_order(job, &default_order, &selected, cat.rollout_orders.get(job).map(String::as_str));
        let batch_size = cat.snap.jobs.get(job).map_or(1, |j| j.max_concurrent_upgrades).max(1);
        let seq = cat.snap.deployment_seq(job);
        waves.entry(seq).or_default().push(JobTask {
            job: job.to_string(),
            deployment_seq: seq,
            workers: order.order,
            batch_size,
            warnings: order.warnings,
        });
    }
    Ok(waves.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use maand_store::catalog::{AllocationRow, JobRow, WorkerRow};

    fn alloc(job: &str, ip: &str, seq: i64, disabled: bool, removed: bool) -> AllocationRow {
        AllocationRow {
            alloc_id: format!("{job}|{ip}"),
            worker_ip: ip.into(),
            job: job.into(),
            disabled,
            removed,
            deployment_seq: seq,
            new_version: "1".into(),
        }
    }

    fn job(name: &str, upgrades: i64) -> JobRow {
        JobRow {
            job_id: name.into(),
            name: name.into(),
            version: "1".into(),
            min_memory_mb: String::new(),
            max_memory_mb: String::new(),
            current_memory_mb: String::new(),
            current_memory_source: String::new(),
            min_cpu_mhz: String::new(),
            max_cpu_mhz: String::new(),
            current_cpu_mhz: String::new(),
            current_cpu_source: String::new(),
            max_concurrent_upgrades: upgrades,
            max_concurrent_starts: 0,
            restart_policy: "always".into(),
            restart_globs: "[]".into(),
            health_check: None,
            remote_timeout_seconds: None,
            rollback_on_failure: false,
        }
    }

    fn worker(ip: &str, position: i64) -> WorkerRow {
        WorkerRow {
            worker_id: ip.into(),
            worker_ip: ip.into(),
            available_memory_mb: String::new(),
            available_cpu_mhz: String::new(),
            position,
            labels: Vec::new(),
            tags: BTreeMap::new(),
            ssh_port: None,
        }
    }

    fn catalog() -> ControlCatalog {
        let ips = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"];
        let workers = ips.iter().enumerate().map(|(i, ip)| worker(ip, i as i64)).collect();
        let mut allocations = Vec::new();
        for ip in ips {
            allocations.push(alloc("api", ip, 1, ip == "10.0.0.4", ip == "10.0.0.5"));
        }
        allocations.push(alloc("db", "10.0.0.1", 0, false, false));
        allocations.push(alloc("db", "10.0.0.2", 0, false, false));
        allocations.push(alloc("cache", "10.0.0.3", 0, false, false));
        let snap = Snapshot {
            bucket_id: "b".into(),
            update_seq: 1,
            workers,
            jobs: [job("api", 2), job("db", 1), job("cache", 0)].into_iter().map(|j| (j.name.clone(), j)).collect(),
            allocations,
            ports: BTreeMap::new(),
            commands: Vec::new(),
            stopped: Default::default(),
            post_deploy_pending: Default::default(),
            ssh_ports: Default::default(),
        };
        ControlCatalog { snap, rollout_orders: BTreeMap::new() }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn jobs_grouped_by_seq_and_cut_into_batches_of_active_allocations() {
        let waves = plan_waves(&catalog(), &s(&["api", "db", "cache"]), &[]).unwrap();
        assert_eq!(waves.len(), 2);
        assert_eq!(waves[0].0, 0);
        let names: Vec<&str> = waves[0].1.iter().map(|t| t.job.as_str()).collect();
        assert_eq!(names, ["cache", "db"]);
        assert_eq!(waves[0].1[0].batch_size, 1, "max_concurrent_upgrades 0 counts as 1");
        let api = &waves[1].1[0];
        assert_eq!(api.workers, s(&["10.0.0.1", "10.0.0.2", "10.0.0.3"]), "disabled and removed are not acted on");
        assert_eq!(api.batches(), vec![s(&["10.0.0.1", "10.0.0.2"]), s(&["10.0.0.3"])]);
    }

    #[test]
    fn allocations_filter_and_kv_rollout_order() {
        let mut cat = catalog();
        cat.rollout_orders.insert("api".into(), "10.0.0.3,10.0.0.2,10.0.0.1".into());
        let waves = plan_waves(&cat, &s(&["api"]), &s(&["10.0.0.1", "10.0.0.3"])).unwrap();
        assert_eq!(waves[0].1[0].workers, s(&["10.0.0.3", "10.0.0.1"]));
        // A worker without an active allocation of the job selects nothing for it.
        let waves = plan_waves(&cat, &s(&["db"]), &s(&["10.0.0.3"])).unwrap();
        assert!(waves[0].1[0].workers.is_empty());
    }

    #[test]
    fn unknown_jobs_and_workers_are_named() {
        let cat = catalog();
        let e = plan_waves(&cat, &s(&["api", "nope", "zz"]), &[]).unwrap_err();
        assert_eq!(e.to_string(), "invalid jobs filter: [nope zz]");
        let e = plan_waves(&cat, &s(&["api"]), &s(&["10.0.0.1", "10.9.9.9"])).unwrap_err();
        assert_eq!(e.to_string(), "invalid workers filter: [10.9.9.9]");
        assert!(plan_waves(&cat, &s(&[" "]), &[]).unwrap_err().to_string().contains("no job given"));
    }
}
