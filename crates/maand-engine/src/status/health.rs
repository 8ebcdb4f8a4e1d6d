//! Live health for `maand status`: each job's health checks (manifest probes, then its
//! `health_check` commands) on each deployed allocation on its own, one try — the deploy's
//! pre-flight check — jobs a few at a time, allocations in parallel (both bounded).

use crate::deploy::gate::GateContext;
use crate::health::bounded_map;
use std::collections::BTreeMap;

/// Jobs checked at once (each checks up to 16 allocations at once).
const JOBS_AT_ONCE: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HealthCheck {
    Healthy,
    Unhealthy(String),
    /// The job has neither probes nor `health_check` commands.
    NoChecks,
}

/// Check each job's allocations (job, worker IPs); results keyed by (job, worker IP).
pub(crate) fn check_health(
    gates: &GateContext<'_>,
    jobs: &[(String, Vec<String>)],
) -> BTreeMap<(String, String), HealthCheck> {
    let results = bounded_map(jobs, JOBS_AT_ONCE, |(job, ips)| {
        if !gates.has_checks(job) {
            return ips.iter().map(|ip| (ip.clone(), HealthCheck::NoChecks)).collect::<Vec<_>>();
        }
        match gates.failing(job, ips) {
            Ok(failing) => ips
                .iter()
                .map(|ip| {
                    let check = failing
                        .get(ip)
                        .map_or(HealthCheck::Healthy, |why| HealthCheck::Unhealthy(reason(job, ip, why)));
                    (ip.clone(), check)
                })
                .collect(),
            Err(e) => ips.iter().map(|ip| (ip.clone(), HealthCheck::Unhealthy(e.to_string()))).collect(),
        }
    });
    jobs.iter()
        .zip(results)
        .flat_map(|((job, _), checks)| checks.into_iter().map(move |(ip, c)| ((job.clone(), ip), c)))
        .collect()
}

/// The failure without the `job <job>: <ip> ` the gate puts first (the row says both).
fn reason(job: &str, ip: &str, why: &str) -> String {
    let why = why.strip_prefix(&format!("job {job}: ")).unwrap_or(why);
    why.strip_prefix(&format!("{ip} ")).unwrap_or(why).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reasons_lose_the_job_and_worker_the_row_names() {
        assert_eq!(super::reason("svc", "10.0.0.1", "job svc: 10.0.0.1 tcp 8080: refused"), "tcp 8080: refused");
        assert_eq!(super::reason("svc", "10.0.0.1", "command_check failed"), "command_check failed");
    }
}
