//! A read of the catalog a deploy plans from: workers, jobs, allocations, ports, commands and the
//! allocations maand has stopped. Taken once at the start (and after reconcile).

use crate::transport::worker_addr;
use maand_core::Result;
use maand_remote::WorkerAddr;
use maand_store::catalog::{self, AllocationRow, CommandRow, JobRow, WorkerRow};
use rusqlite::Connection;
use std::collections::{BTreeMap, BTreeSet, HashSet};

pub struct Snapshot {
    pub bucket_id: String,
    pub update_seq: i64,
    /// Catalog order (position, IP).
    pub workers: Vec<WorkerRow>,
    pub jobs: BTreeMap<String, JobRow>,
    /// Ordered by job, then worker position.
    pub allocations: Vec<AllocationRow>,
    /// job -> port name -> number.
    pub ports: BTreeMap<String, BTreeMap<String, u16>>,
    pub commands: Vec<CommandRow>,
    pub stopped: HashSet<String>,
    /// Jobs whose `post_deploy` failed after a completed rollout (it runs again).
    pub post_deploy_pending: HashSet<String>,
    /// SSH ports recorded per worker IP, including workers that left the catalog.
    pub ssh_ports: std::collections::HashMap<String, u16>,
}

impl Snapshot {
    pub fn load(conn: &Connection) -> Result<Snapshot> {
        let bucket = catalog::bucket_row(conn)?;
        let mut ports: BTreeMap<String, BTreeMap<String, u16>> = BTreeMap::new();
        for p in catalog::load_job_ports(conn)? {
            if let Ok(n) = u16::try_from(p.port) {
                ports.entry(p.job).or_default().insert(p.name, n);
            }
        }
        Ok(Snapshot {
            bucket_id: bucket.bucket_id,
            update_seq: bucket.update_seq,
            workers: catalog::load_workers(conn)?,
            jobs: catalog::load_jobs(conn)?.into_iter().map(|j| (j.name.clone(), j)).collect(),
            allocations: catalog::load_allocations(conn)?,
            ports,
            commands: catalog::load_job_commands(conn)?,
            stopped: catalog::stopped_allocations(conn)?,
            post_deploy_pending: catalog::post_deploy_pending(conn)?,
            ssh_ports: catalog::worker_ports(conn)?,
        })
    }

    pub fn worker(&self, ip: &str) -> Option<&WorkerRow> {
        self.workers.iter().find(|w| w.worker_ip == ip)
    }

    /// How to reach a worker (off-catalog workers use the default port).
    pub fn addr(&self, ip: &str) -> WorkerAddr {
        self.worker(ip).map(worker_addr).unwrap_or_else(|| WorkerAddr::new(ip, self.ssh_ports.get(ip).copied()))
    }

    /// Non-removed allocations of a job in catalog order.
    pub fn non_removed(&self, job: &str) -> Vec<&AllocationRow> {
        self.allocations.iter().filter(|a| a.job == job && !a.removed).collect()
    }

    pub fn active(&self, job: &str) -> Vec<&AllocationRow> {
        self.allocations.iter().filter(|a| a.job == job && a.is_active()).collect()
    }

    /// Jobs this job's commands demand (sorted).
    pub fn upstream(&self, job: &str) -> Vec<String> {
        let set: BTreeSet<String> = self
            .commands
            .iter()
            .filter(|c| c.job == job && !c.demand_job.is_empty())
            .map(|c| c.demand_job.clone())
            .collect();
        set.into_iter().collect()
    }

    /// The job's `deployment_seq` (the highest of its allocations'; 0 without any).
    pub fn deployment_seq(&self, job: &str) -> i64 {
        self.allocations.iter().filter(|a| a.job == job).map(|a| a.deployment_seq).max().unwrap_or(0)
    }

    pub fn job_ports(&self, job: &str) -> BTreeMap<String, u16> {
        self.ports.get(job).cloned().unwrap_or_default()
    }
}
