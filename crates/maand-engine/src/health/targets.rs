//! What `maand health_check` reads from the catalog: workers with their SSH ports, and per job its
//! parsed health_check, its ACTIVE allocations and its port numbers.

use super::{parse_health_spec, HealthTarget, ProbeAllocation};
use crate::transport::worker_addr;
use maand_core::{Error, HealthCheckSpec, Result};
use maand_remote::WorkerAddr;
use maand_store::catalog;
use rusqlite::Connection;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One job's health inputs, owned (borrowed as a `HealthTarget`).
pub(crate) struct JobInputs {
    pub job: String,
    pub spec: Option<HealthCheckSpec>,
    pub allocations: Vec<ProbeAllocation>,
    pub ports: BTreeMap<String, u16>,
}

impl JobInputs {
    pub(crate) fn target(&self, use_sudo: bool) -> HealthTarget<'_> {
        HealthTarget {
            job: &self.job,
            spec: self.spec.as_ref(),
            allocations: &self.allocations,
            ports: &self.ports,
            use_sudo,
            require_live_workers: false,
        }
    }
}

pub(crate) struct HealthCatalog {
    /// Catalog order.
    pub workers: Vec<WorkerAddr>,
    /// Job name order.
    pub jobs: Vec<JobInputs>,
}

impl HealthCatalog {
    pub(crate) fn load(conn: &Connection) -> Result<HealthCatalog> {
        let workers: Vec<WorkerAddr> = catalog::load_workers(conn)?.iter().map(worker_addr).collect();
        let by_ip: HashMap<&str, &WorkerAddr> = workers.iter().map(|w| (w.host.as_str(), w)).collect();
        let mut ports: BTreeMap<String, BTreeMap<String, u16>> = BTreeMap::new();
        for p in catalog::load_job_ports(conn)? {
            if let Ok(number) = u16::try_from(p.port) {
                ports.entry(p.job).or_default().insert(p.name, number);
            }
        }
        let allocations = catalog::load_allocations(conn)?;
        let mut jobs = Vec::new();
        for row in catalog::load_jobs(conn)? {
            let spec = match row.health_check.as_deref() {
                Some(json) => Some(parse_health_spec(json).map_err(|e| e.context(format!("job {}", row.name)))?),
                None => None,
            };
            let allocations = allocations
                .iter()
                .filter(|a| a.job == row.name && a.is_active())
                .map(|a| ProbeAllocation {
                    worker: by_ip
                        .get(a.worker_ip.as_str())
                        .map(|w| (*w).clone())
                        .unwrap_or_else(|| WorkerAddr::new(a.worker_ip.clone(), None)),
                })
                .collect();
            let ports = ports.remove(&row.name).unwrap_or_default();
            jobs.push(JobInputs { job: row.name, spec, allocations, ports });
        }
        jobs.sort_by(|a, b| a.job.cmp(&b.job));
        Ok(HealthCatalog { workers, jobs })
    }

    /// The jobs named by `--jobs` (all when empty), in job name order; unknown names are an error.
    pub(crate) fn select(&self, names: &[String]) -> Result<Vec<&JobInputs>> {
        let wanted: BTreeSet<&str> = names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()).collect();
        let unknown: Vec<&str> = wanted.iter().copied().filter(|n| !self.jobs.iter().any(|j| j.job == *n)).collect();
        if !unknown.is_empty() {
            return Err(Error::msg(format!("jobs not in this bucket: [{}]", unknown.join(" "))));
        }
        Ok(self.jobs.iter().filter(|j| wanted.is_empty() || wanted.contains(j.job.as_str())).collect())
    }
}
