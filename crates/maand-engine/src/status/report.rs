//! What `maand status` found: per job and allocation the worker, the promoted version, the
//! pending change, live health, drift and the last deploy; a summary line; the text table; and
//! whether anything is wrong (exit 1: unhealthy, drifted, or drift not checkable).

use crate::inspect::Table;
use maand_core::drift::FileDrift;
use serde::Serialize;
use serde_json::json;

/// Longest reason shown in a cell (the JSON has it whole).
const REASON_WIDTH: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    Healthy,
    Unhealthy,
    /// The job has neither probes nor `health_check` commands.
    NoChecks,
    /// Never promoted here: nothing to check yet.
    NotDeployed,
    Disabled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftState {
    /// The live files are the promoted release's.
    None,
    /// Files were added, changed or are missing (named in `files`).
    Drifted,
    /// The worker could not be listed (unreachable, or the listing failed).
    Error,
    /// The promoted release has no file manifest (promoted by an old Go maand).
    Unknown,
    NotDeployed,
    Disabled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllocationStatus {
    pub worker_ip: String,
    pub disabled: bool,
    /// The promoted version (null: never deployed).
    pub version: Option<String>,
    /// What `maand deploy` would do here now (`start`, `restart`, `reload`, …); null: nothing.
    pub pending: Option<String>,
    pub health: HealthState,
    pub health_reason: Option<String>,
    pub drift: DriftState,
    pub drift_reason: Option<String>,
    /// The files that drifted (paths relative to the job directory).
    pub files: FileDrift,
    /// Unix time (seconds) of the last deploy that promoted this allocation (null: not recorded).
    pub last_deploy_at: Option<i64>,
    /// The same instant, UTC.
    pub last_deploy: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobStatus {
    pub job: String,
    /// The version of the last build.
    pub version: String,
    /// `workspace/jobs/<job>` changed since the last build (run maand build).
    pub workspace_changed: bool,
    /// Why the pending changes could not be computed (a template error, …).
    pub plan_error: Option<String>,
    /// Non-removed allocations in catalog order.
    pub allocations: Vec<AllocationStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StatusSummary {
    pub jobs: usize,
    pub allocations: usize,
    pub healthy: usize,
    pub unhealthy: usize,
    pub no_checks: usize,
    pub not_deployed: usize,
    pub disabled: usize,
    pub drifted: usize,
    /// Allocations whose drift could not be checked.
    pub drift_errors: usize,
    /// Allocations with a pending change.
    pub pending: usize,
    /// Nothing unhealthy, drifted or uncheckable (exit 0).
    pub ok: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusReport {
    pub jobs: Vec<JobStatus>,
    /// Bucket-level findings (the workspace changed since the last build, …).
    pub notes: Vec<String>,
    pub summary: StatusSummary,
}

impl StatusReport {
    pub fn new(jobs: Vec<JobStatus>, notes: Vec<String>) -> StatusReport {
        let all: Vec<&AllocationStatus> = jobs.iter().flat_map(|j| &j.allocations).collect();
        let health = |s: HealthState| all.iter().filter(|a| a.health == s).count();
        let drift = |s: DriftState| all.iter().filter(|a| a.drift == s).count();
        let mut summary = StatusSummary {
            jobs: jobs.len(),
            allocations: all.len(),
            healthy: health(HealthState::Healthy),
            unhealthy: health(HealthState::Unhealthy),
            no_checks: health(HealthState::NoChecks),
            not_deployed: health(HealthState::NotDeployed),
            disabled: health(HealthState::Disabled),
            drifted: drift(DriftState::Drifted),
            drift_errors: drift(DriftState::Error),
            pending: all.iter().filter(|a| a.pending.is_some()).count(),
            ok: false,
        };
        summary.ok = summary.unhealthy == 0 && summary.drifted == 0 && summary.drift_errors == 0;
        StatusReport { jobs, notes, summary }
    }

    /// `status: 1 job, 3 allocations: 2 healthy, 1 unhealthy; 1 drifted; 1 with a pending change`.
    pub fn summary_line(&self) -> String {
        let s = &self.summary;
        let counted = |n: usize, what: &str| (n > 0).then(|| format!("{n} {what}"));
        let health: Vec<String> = [
            counted(s.healthy, "healthy"),
            counted(s.unhealthy, "unhealthy"),
            counted(s.no_checks, "without health checks"),
            counted(s.not_deployed, "not deployed"),
            counted(s.disabled, "disabled"),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut parts = vec![format!(
            "status: {} job{}, {} allocation{}: {}",
            s.jobs,
            plural(s.jobs),
            s.allocations,
            plural(s.allocations),
            if health.is_empty() { "none".to_string() } else { health.join(", ") }
        )];
        parts.push(if s.drifted == 0 { "no drift".to_string() } else { format!("{} drifted", s.drifted) });
        if s.drift_errors > 0 {
            parts.push(format!("{} not checked for drift", s.drift_errors));
        }
        parts.push(match s.pending {
            0 => "no pending change".to_string(),
            1 => "1 with a pending change".to_string(),
            n => format!("{n} with pending changes"),
        });
        parts.join("; ")
    }

    /// `status: job svc on 10.0.0.2: unhealthy (…)` one line per allocation that is unhealthy,
    /// drifted or not checkable; None when the summary is ok.
    pub fn failure(&self) -> Option<maand_core::Error> {
        let mut lines = Vec::new();
        for job in &self.jobs {
            for a in &job.allocations {
                let at = format!("job {} on {}", job.job, a.worker_ip);
                if a.health == HealthState::Unhealthy {
                    lines.push(format!("{at}: unhealthy ({})", a.health_reason.as_deref().unwrap_or("")));
                }
                if a.drift == DriftState::Drifted {
                    lines.push(format!("{at}: drifted ({})", a.files.describe()));
                }
                if a.drift == DriftState::Error {
                    lines.push(format!("{at}: drift not checked ({})", a.drift_reason.as_deref().unwrap_or("")));
                }
            }
        }
        (!lines.is_empty()).then(|| maand_core::Error::msg(format!("status: {}", lines.join("\n"))))
    }

    /// One row per allocation.
    pub fn to_table(&self) -> Table {
        let mut t = Table::new(&[
            ("job", "JOB"),
            ("worker_ip", "WORKER"),
            ("version", "VERSION"),
            ("pending", "PENDING"),
            ("health", "HEALTH"),
            ("drift", "DRIFT"),
            ("last_deploy", "LAST DEPLOY (UTC)"),
        ]);
        for job in &self.jobs {
            for a in &job.allocations {
                t.push(vec![
                    json!(job.job),
                    json!(a.worker_ip),
                    json!(a.version.as_deref().unwrap_or("-")),
                    json!(a.pending.as_deref().unwrap_or("-")),
                    json!(health_cell(a)),
                    json!(drift_cell(a)),
                    json!(a.last_deploy.as_deref().map(crate::runlog::human_timestamp).unwrap_or_else(|| "-".into())),
                ]);
            }
        }
        t
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn health_cell(a: &AllocationStatus) -> String {
    match a.health {
        HealthState::Healthy => "healthy".into(),
        HealthState::Unhealthy => {
            format!("unhealthy: {}", Table::short(a.health_reason.as_deref().unwrap_or(""), REASON_WIDTH))
        }
        HealthState::NoChecks => "no checks".into(),
        HealthState::NotDeployed => "not deployed".into(),
        HealthState::Disabled => "disabled".into(),
    }
}

fn drift_cell(a: &AllocationStatus) -> String {
    match a.drift {
        DriftState::None => "none".into(),
        DriftState::Drifted => Table::short(&a.files.describe(), REASON_WIDTH),
        DriftState::Error => {
            format!("not checked: {}", Table::short(a.drift_reason.as_deref().unwrap_or(""), REASON_WIDTH))
        }
        DriftState::Unknown => "unknown (no file manifest)".into(),
        DriftState::NotDeployed | DriftState::Disabled => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc(ip: &str, health: HealthState, drift: DriftState, pending: Option<&str>) -> AllocationStatus {
        AllocationStatus {
            worker_ip: ip.into(),
            disabled: false,
            version: Some("1".into()),
            pending: pending.map(String::from),
            health,
            health_reason: (health == HealthState::Unhealthy).then(|| "ssh probe failed".into()),
            drift,
            drift_reason: None,
            files: FileDrift {
                changed: if drift == DriftState::Drifted { vec!["conf.txt".into()] } else { vec![] },
                ..Default::default()
            },
            last_deploy_at: None,
            last_deploy: None,
        }
    }

    fn report(allocations: Vec<AllocationStatus>) -> StatusReport {
        let job = JobStatus {
            job: "svc".into(),
            version: "1".into(),
            workspace_changed: false,
            plan_error: None,
            allocations,
        };
        StatusReport::new(vec![job], vec![])
    }

    #[test]
    fn all_well_is_ok() {
        let r = report(vec![
            alloc("10.0.0.1", HealthState::Healthy, DriftState::None, None),
            alloc("10.0.0.2", HealthState::NoChecks, DriftState::None, Some("restart")),
            alloc("10.0.0.3", HealthState::NotDeployed, DriftState::NotDeployed, Some("start")),
        ]);
        assert!(r.summary.ok);
        assert!(r.failure().is_none());
        assert_eq!(
            r.summary_line(),
            "status: 1 job, 3 allocations: 1 healthy, 1 without health checks, 1 not deployed; no drift; 2 with pending changes"
        );
    }

    #[test]
    fn unhealthy_drifted_or_uncheckable_is_not_ok() {
        for (health, drift) in [
            (HealthState::Unhealthy, DriftState::None),
            (HealthState::Healthy, DriftState::Drifted),
            (HealthState::Healthy, DriftState::Error),
        ] {
            let r = report(vec![alloc("10.0.0.1", health, drift, None)]);
            assert!(!r.summary.ok, "{health:?} {drift:?}");
        }
        let r = report(vec![
            alloc("10.0.0.1", HealthState::Unhealthy, DriftState::None, None),
            alloc("10.0.0.2", HealthState::Healthy, DriftState::Drifted, None),
        ]);
        assert_eq!(
            r.summary_line(),
            "status: 1 job, 2 allocations: 1 healthy, 1 unhealthy; 1 drifted; no pending change"
        );
        assert_eq!(
            r.failure().unwrap().to_string(),
            "status: job svc on 10.0.0.1: unhealthy (ssh probe failed)\njob svc on 10.0.0.2: drifted (changed conf.txt)"
        );
        let rows: Vec<Vec<String>> =
            r.to_table().rows.iter().map(|row| row.iter().map(Table::cell_text).collect()).collect();
        assert_eq!(rows[0], ["svc", "10.0.0.1", "1", "-", "unhealthy: ssh probe failed", "none", "-"]);
        assert_eq!(rows[1][5], "changed conf.txt");
    }
}
