//! `maand history [--jobs a,b] [--json]`: the recorded runs, newest first, as values with stable
//! JSON field names. A `running` row whose process no longer holds the bucket lock reads as
//! `aborted` (the run was killed before it could record its end).

use crate::bucket::Bucket;
use crate::runlog::utc_timestamp;
use maand_core::Result;
use maand_store::catalog::{self, RunRow, RUNNING};
use maand_store::lock::held_by;
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryOptions {
    /// `--jobs`: only runs that acted on one of these jobs, showing only these jobs (empty: all).
    pub jobs: Vec<String>,
}

/// One run (`--json` object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryRun {
    pub id: i64,
    /// `deploy`, `job`, `gc` or `rollback`.
    pub kind: String,
    /// The Makefile target of a `job` run (`start`, `restart`, …), else null.
    pub target: Option<String>,
    /// Unix time (seconds) the run started.
    pub started_at: i64,
    /// The same instant, UTC (`2026-12-03T19:11:53.120Z`).
    pub started: String,
    /// Null while running or when aborted.
    pub duration_ms: Option<i64>,
    /// `user@host`.
    pub who: String,
    /// The command line as typed.
    pub argv: Vec<String>,
    /// `running`, `ok`, `failed`, `interrupted` or `aborted`.
    pub result: String,
    pub reason: Option<String>,
    pub jobs: Vec<HistoryJob>,
}

/// What a run did to one job: the stored row as it is.
pub use maand_store::catalog::RunJobRow as HistoryJob;

/// The history of the bucket at `root` (read-only, no lock).
pub fn history(root: &Path, opts: &HistoryOptions) -> Result<Vec<HistoryRun>> {
    let bucket = Bucket::open(root)?;
    let rows = catalog::load_runs(&bucket.connect()?)?;
    Ok(select(rows, &opts.jobs, &|pid| held_by(&bucket.paths, pid)))
}

/// Rows (newest first) as history entries, filtered by job; `running(pid)` says whether a run's
/// process still holds the bucket lock.
pub(crate) fn select(rows: Vec<RunRow>, jobs: &[String], running: &dyn Fn(u32) -> bool) -> Vec<HistoryRun> {
    let wanted: BTreeSet<&str> = jobs.iter().map(|j| j.trim()).filter(|j| !j.is_empty()).collect();
    rows.into_iter()
        .filter(|r| wanted.is_empty() || r.jobs.iter().any(|j| wanted.contains(j.job.as_str())))
        .map(|r| entry(r, &wanted, running))
        .collect()
}

fn entry(row: RunRow, wanted: &BTreeSet<&str>, running: &dyn Fn(u32) -> bool) -> HistoryRun {
    let aborted = row.result == RUNNING && !running(row.run.pid);
    let (result, reason) = if aborted {
        ("aborted".to_string(), Some(format!("maand (pid {}) ended before the run finished", row.run.pid)))
    } else {
        (row.result, row.reason)
    };
    let started = UNIX_EPOCH + Duration::from_millis(u64::try_from(row.run.started_ms).unwrap_or(0));
    HistoryRun {
        id: row.id,
        kind: row.run.kind,
        target: row.run.target,
        started_at: row.run.started_ms.div_euclid(1000),
        started: utc_timestamp(started),
        duration_ms: row.finished_ms.map(|f| (f - row.run.started_ms).max(0)),
        who: format!("{}@{}", row.run.user, row.run.host),
        argv: row.run.argv,
        result,
        reason,
        jobs: row.jobs.into_iter().filter(|j| wanted.is_empty() || wanted.contains(j.job.as_str())).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use maand_store::catalog::NewRun;

    fn row(id: i64, result: &str, pid: u32, jobs: &[&str]) -> RunRow {
        RunRow {
            id,
            run: NewRun {
                kind: "deploy".into(),
                target: None,
                argv: vec!["maand".into(), "deploy".into()],
                user: "ops".into(),
                host: "cli1".into(),
                pid,
                started_ms: 1_795_545_731_007,
            },
            finished_ms: (result != RUNNING).then_some(1_795_545_733_507),
            result: result.into(),
            reason: None,
            jobs: jobs
                .iter()
                .map(|j| HistoryJob { job: j.to_string(), result: "ok".into(), ..Default::default() })
                .collect(),
        }
    }

    #[test]
    fn fields_and_times() {
        let runs = select(vec![row(3, "ok", 7, &["web"])], &[], &|_| false);
        let r = &runs[0];
        assert_eq!((r.id, r.kind.as_str(), r.result.as_str()), (3, "deploy", "ok"));
        assert_eq!(r.started_at, 1_795_545_731);
        assert_eq!(r.started, "2026-11-24T18:42:11.007Z");
        assert_eq!(r.duration_ms, Some(2_500));
        assert_eq!(r.who, "ops@cli1");
    }

    #[test]
    fn a_running_row_of_a_process_that_no_longer_holds_the_lock_is_aborted() {
        let rows = || vec![row(2, RUNNING, 100, &["web"]), row(1, RUNNING, 200, &["web"])];
        let runs = select(rows(), &[], &|pid| pid == 100);
        assert_eq!(runs[0].result, "running");
        assert_eq!(runs[1].result, "aborted");
        assert_eq!(runs[1].duration_ms, None);
        assert!(runs[1].reason.as_deref().unwrap().contains("pid 200"));
    }

    #[test]
    fn jobs_filter_keeps_matching_runs_and_only_their_matching_jobs() {
        let rows = vec![row(3, "ok", 1, &["api", "web"]), row(2, "ok", 1, &["db"]), row(1, "ok", 1, &["web"])];
        let runs = select(rows, &["web".to_string()], &|_| false);
        assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), vec![3, 1]);
        assert_eq!(runs[0].jobs.iter().map(|j| j.job.as_str()).collect::<Vec<_>>(), vec!["web"]);
    }
}
