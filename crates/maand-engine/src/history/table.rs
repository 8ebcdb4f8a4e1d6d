//! The text form of `maand history`: one row per job of a run (a run without jobs gets one row),
//! the run's own columns only on its first row, newest run first.

use super::read::{HistoryJob, HistoryRun};
use crate::inspect::Table;
use crate::runlog::human_timestamp;
use serde_json::{json, Value};

/// Longest reason shown in a cell (the JSON has it whole).
const REASON_WIDTH: usize = 60;

pub fn history_table(runs: &[HistoryRun]) -> Table {
    let mut t = Table::new(&[
        ("id", "ID"),
        ("started", "STARTED (UTC)"),
        ("duration", "DURATION"),
        ("who", "WHO"),
        ("kind", "KIND"),
        ("command", "COMMAND"),
        ("result", "RESULT"),
        ("job", "JOB"),
        ("version", "VERSION"),
        ("allocations", "ALLOCATIONS"),
        ("job_result", "JOB RESULT"),
    ]);
    for run in runs {
        let kind = match &run.target {
            Some(target) => format!("{} {target}", run.kind),
            None => run.kind.clone(),
        };
        let result = if run.jobs.is_empty() { outcome(&run.result, run.reason.as_deref()) } else { run.result.clone() };
        let head = vec![
            json!(run.id),
            json!(human_timestamp(&run.started)),
            json!(run.duration_ms.map(duration).unwrap_or_else(|| "-".into())),
            json!(run.who),
            json!(kind),
            json!(command_line(&run.argv)),
            json!(result),
        ];
        if run.jobs.is_empty() {
            t.push(head.iter().cloned().chain(std::iter::repeat_n(json!(""), 4)).collect());
        }
        for (i, job) in run.jobs.iter().enumerate() {
            let run_cells = if i == 0 { head.clone() } else { vec![json!(""); head.len()] };
            t.push(run_cells.into_iter().chain(job_cells(job)).collect());
        }
    }
    t
}

fn job_cells(job: &HistoryJob) -> Vec<Value> {
    let version =
        format!("{} → {}", job.version_from.as_deref().unwrap_or("-"), job.version_to.as_deref().unwrap_or("-"));
    let allocations = if job.allocations.is_empty() { "-".to_string() } else { job.allocations.join(",") };
    vec![json!(job.job), json!(version), json!(allocations), json!(outcome(&job.result, job.reason.as_deref()))]
}

/// `ok`, `interrupted`, `failed: why` (cut to one short line).
fn outcome(result: &str, reason: Option<&str>) -> String {
    match reason {
        Some(why) if result == "failed" || result == "aborted" || result == "skipped" => {
            format!("{result}: {}", Table::short(why, REASON_WIDTH))
        }
        _ => result.to_string(),
    }
}

/// `850ms`, `12.3s`, `2m05s`.
fn duration(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, ms % 60_000 / 1000)
    }
}

/// The command line as a shell would read it, the program shown by its file name.
fn command_line(argv: &[String]) -> String {
    argv.iter()
        .enumerate()
        .map(|(i, a)| if i == 0 { a.rsplit('/').next().unwrap_or(a).to_string() } else { quoted(a) })
        .collect::<Vec<_>>()
        .join(" ")
}

fn quoted(arg: &str) -> String {
    let plain = !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(jobs: Vec<HistoryJob>) -> HistoryRun {
        HistoryRun {
            id: 7,
            kind: "job".into(),
            target: Some("restart".into()),
            started_at: 1_795_545_731,
            started: "2026-11-24T18:42:11.007Z".into(),
            duration_ms: Some(65_400),
            who: "ops@cli1".into(),
            argv: vec!["/usr/local/bin/maand".into(), "job".into(), "restart".into(), "a b".into()],
            result: "failed".into(),
            reason: Some("failed: web".into()),
            jobs,
        }
    }

    fn job(name: &str, result: &str, reason: Option<&str>) -> HistoryJob {
        HistoryJob {
            job: name.into(),
            version_from: Some("1".into()),
            version_to: Some("2".into()),
            allocations: vec!["10.0.0.1".into(), "10.0.0.2".into()],
            promoted: vec![],
            result: result.into(),
            reason: reason.map(String::from),
        }
    }

    fn texts(t: &Table) -> Vec<Vec<String>> {
        t.rows.iter().map(|r| r.iter().map(Table::cell_text).collect()).collect()
    }

    #[test]
    fn one_row_per_job_with_the_run_on_the_first() {
        let t = history_table(&[run(vec![job("api", "ok", None), job("web", "failed", Some("health\ncheck failed"))])]);
        let rows = texts(&t);
        assert_eq!(
            rows[0][..7],
            ["7", "2026-11-24 18:42:11", "1m05s", "ops@cli1", "job restart", "maand job restart 'a b'", "failed"]
        );
        assert_eq!(rows[0][7..], ["api", "1 → 2", "10.0.0.1,10.0.0.2", "ok"]);
        assert!(rows[1][..7].iter().all(String::is_empty));
        assert_eq!(rows[1][10], "failed: health check failed");
    }

    #[test]
    fn a_run_without_jobs_shows_its_reason() {
        let mut r = run(vec![]);
        r.reason = Some("catalog locked".into());
        r.duration_ms = None;
        let rows = texts(&history_table(&[r]));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][2], "-");
        assert_eq!(rows[0][6], "failed: catalog locked");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(850), "850ms");
        assert_eq!(duration(12_340), "12.3s");
        assert_eq!(duration(125_000), "2m05s");
    }
}
