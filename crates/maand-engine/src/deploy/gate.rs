//! The deploy's health gate: the job's manifest probes, then its `health_check` commands (the
//! `extra` checks), on its active allocations, waiting up to the manifest's attempts.

use super::snapshot::Snapshot;
use crate::bucket::Bucket;
use crate::health::{check_job, parse_health_spec, ExtraCheck, HealthTarget, ProbeAllocation};
use maand_core::Result;
use maand_remote::Executor;

pub fn deploy_gate(
    bucket: &Bucket,
    snap: &Snapshot,
    executor: &dyn Executor,
    job: &str,
    report: &(dyn Fn(&str) + Sync),
    extra: &dyn ExtraCheck,
) -> Result<()> {
    let spec = match snap.jobs.get(job).and_then(|j| j.health_check.as_deref()) {
        Some(json) => Some(parse_health_spec(json)?),
        None => None,
    };
    let allocations: Vec<ProbeAllocation> =
        snap.active(job).iter().map(|a| ProbeAllocation { worker: snap.addr(&a.worker_ip) }).collect();
    let ports = snap.job_ports(job);
    let target = HealthTarget {
        job,
        spec: spec.as_ref(),
        allocations: &allocations,
        ports: &ports,
        use_sudo: bucket.conf.use_sudo,
    };
    check_job(&target, executor, extra, true, report).map(|_| ())
}
