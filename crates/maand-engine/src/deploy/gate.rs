//! The deploy's health gate and its pre-flight check: each allocation's worker answering SSH with
//! its banner, the job's manifest probes, then its `health_check` commands, on the allocations in
//! scope — waiting up to the manifest's attempts after a batch, one try per allocation before a
//! rollout (DESIGN §3.14–3.15).

use super::snapshot::Snapshot;
use crate::bucket::Bucket;
use crate::health::{bounded_map, check_job, parse_health_spec, ExtraCheck, HealthTarget, ProbeAllocation};
use maand_core::Result;
use maand_remote::Executor;
use std::collections::BTreeMap;

/// Allocations checked at once by the pre-flight check.
const PREFLIGHT_PARALLELISM: usize = 16;

/// What a gate needs besides the allocations in scope.
pub struct GateContext<'a> {
    pub bucket: &'a Bucket,
    pub snap: &'a Snapshot,
    pub executor: &'a dyn Executor,
    pub extra: &'a dyn ExtraCheck,
}

impl GateContext<'_> {
    /// The job's gate over `allocations` (worker IPs), waiting per the manifest; progress lines
    /// go to `report`.
    pub fn gate(&self, job: &str, allocations: &[String], report: &(dyn Fn(&str) + Sync)) -> Result<()> {
        self.check(job, allocations, true, report)
    }

    /// True when the job has something to check (manifest probes or `health_check` commands).
    pub fn has_checks(&self, job: &str) -> bool {
        let probes = self
            .snap
            .jobs
            .get(job)
            .and_then(|j| j.health_check.as_deref())
            .and_then(|json| parse_health_spec(json).ok().map(|s| !s.checks.is_empty()));
        probes.unwrap_or(false) || self.extra.has_checks(job)
    }

    /// The pre-flight check: one try on each of `allocations` on its own; those failing, with
    /// the reason. Nothing to check: none fail.
    pub fn failing(&self, job: &str, allocations: &[String]) -> Result<BTreeMap<String, String>> {
        if !self.has_checks(job) {
            return Ok(BTreeMap::new());
        }
        let results = bounded_map(allocations, PREFLIGHT_PARALLELISM, |ip| {
            self.check(job, std::slice::from_ref(ip), false, &|_| {}).err().map(|e| (ip.clone(), e.detail))
        });
        Ok(results.into_iter().flatten().collect())
    }

    fn check(&self, job: &str, allocations: &[String], wait: bool, report: &(dyn Fn(&str) + Sync)) -> Result<()> {
        let spec = match self.snap.jobs.get(job).and_then(|j| j.health_check.as_deref()) {
            Some(json) => Some(parse_health_spec(json)?),
            None => None,
        };
        let allocations: Vec<ProbeAllocation> =
            allocations.iter().map(|ip| ProbeAllocation { worker: self.snap.addr(ip) }).collect();
        let ports = self.snap.job_ports(job);
        let target = HealthTarget {
            job,
            spec: spec.as_ref(),
            allocations: &allocations,
            ports: &ports,
            use_sudo: self.bucket.conf.use_sudo,
            require_live_workers: true,
        };
        check_job(&target, self.executor, self.extra, wait, report).map(|_| ())
    }
}
