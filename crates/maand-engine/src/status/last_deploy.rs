//! When each allocation was last deployed, from the run history: the start of the newest deploy
//! or rollback that promoted it. Unknown (None) for allocations promoted before the history was
//! kept, or by the Go maand.

use maand_store::catalog::RunRow;
use std::collections::BTreeMap;

/// (job, worker IP) -> unix milliseconds of the run's start.
pub(crate) fn last_deploys(runs: &[RunRow]) -> BTreeMap<(String, String), i64> {
    let mut out = BTreeMap::new();
    for run in runs.iter().filter(|r| matches!(r.run.kind.as_str(), "deploy" | "rollback")) {
        for job in &run.jobs {
            for ip in &job.promoted {
                let at = out.entry((job.job.clone(), ip.clone())).or_insert(run.run.started_ms);
                *at = (*at).max(run.run.started_ms);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use maand_store::catalog::{NewRun, RunJobRow};

    fn run(kind: &str, started_ms: i64, job: &str, promoted: &[&str]) -> RunRow {
        RunRow {
            id: started_ms,
            run: NewRun {
                kind: kind.into(),
                target: None,
                argv: vec![],
                user: String::new(),
                host: String::new(),
                pid: 1,
                started_ms,
            },
            finished_ms: None,
            result: "ok".into(),
            reason: None,
            jobs: vec![RunJobRow {
                job: job.into(),
                promoted: promoted.iter().map(|p| p.to_string()).collect(),
                ..Default::default()
            }],
        }
    }

    #[test]
    fn newest_promoting_deploy_or_rollback_wins() {
        let runs = vec![
            run("job", 400, "web", &["10.0.0.1"]),
            run("rollback", 300, "web", &["10.0.0.2"]),
            run("deploy", 200, "web", &["10.0.0.1"]),
            run("deploy", 100, "web", &["10.0.0.1", "10.0.0.2", "10.0.0.3"]),
        ];
        let last = last_deploys(&runs);
        let at = |ip: &str| last.get(&("web".to_string(), ip.to_string())).copied();
        assert_eq!(
            (at("10.0.0.1"), at("10.0.0.2"), at("10.0.0.3"), at("10.0.0.4")),
            (Some(200), Some(300), Some(100), None)
        );
    }
}
