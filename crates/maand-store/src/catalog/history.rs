//! Run history of ours (`maand history`): one `maand_runs` row per run that changed something,
//! inserted when it starts (result `running`) and completed when it ends, with one
//! `maand_run_jobs` row per job it acted on.

use super::db_err;
use maand_core::Result;
use rusqlite::{params, Connection, Row};

/// A run as it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRun {
    /// `deploy`, `job`, `gc`, `rollback`.
    pub kind: String,
    /// The Makefile target of a `job` run.
    pub target: Option<String>,
    pub argv: Vec<String>,
    pub user: String,
    pub host: String,
    pub pid: u32,
    pub started_ms: i64,
}

/// How a job fared in a run (also the `jobs` items of `maand history --json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RunJobRow {
    pub job: String,
    /// Promoted before the run (null: never deployed).
    pub version_from: Option<String>,
    /// Rolled out by the run (null: stopped or collected).
    pub version_to: Option<String>,
    /// Worker IPs the run acted on.
    pub allocations: Vec<String>,
    /// Worker IPs promoted by the run (deploy, rollback).
    pub promoted: Vec<String>,
    /// `ok`, `failed`, `interrupted` or `skipped`.
    pub result: String,
    pub reason: Option<String>,
}

/// A stored run with its jobs (in job name order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    pub id: i64,
    pub run: NewRun,
    pub finished_ms: Option<i64>,
    /// As stored: `running` until the run ends.
    pub result: String,
    pub reason: Option<String>,
    pub jobs: Vec<RunJobRow>,
}

/// The result a run has until it ends.
pub const RUNNING: &str = "running";

/// Record a run that starts now (result `running`); returns its id.
pub fn insert_run(conn: &Connection, run: &NewRun) -> Result<i64> {
    conn.execute(
        "INSERT INTO maand_runs(kind, target, argv, user, host, pid, started_ms, result)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![run.kind, run.target, to_json(&run.argv), run.user, run.host, run.pid, run.started_ms, RUNNING],
    )
    .map_err(db_err("record run start"))?;
    Ok(conn.last_insert_rowid())
}

/// Complete a run: its result, when it ended and what it did per job, in one transaction.
pub fn finish_run(
    conn: &Connection,
    id: i64,
    finished_ms: i64,
    result: &str,
    reason: Option<&str>,
    jobs: &[RunJobRow],
) -> Result<()> {
    let tx = conn.unchecked_transaction().map_err(db_err("begin run record"))?;
    tx.execute(
        "UPDATE maand_runs SET finished_ms = ?2, result = ?3, reason = ?4 WHERE id = ?1",
        params![id, finished_ms, result, reason],
    )
    .map_err(db_err("record run end"))?;
    tx.execute("DELETE FROM maand_run_jobs WHERE run_id = ?1", [id]).map_err(db_err("record run jobs"))?;
    for j in jobs {
        tx.execute(
            "INSERT INTO maand_run_jobs(run_id, job, version_from, version_to, allocations, promoted, result, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                id,
                j.job,
                j.version_from,
                j.version_to,
                to_json(&j.allocations),
                to_json(&j.promoted),
                j.result,
                j.reason
            ],
        )
        .map_err(db_err("record run jobs"))?;
    }
    tx.commit().map_err(db_err("commit run record"))
}

/// Forget a run that turned out to change nothing (a deploy with nothing to do).
pub fn delete_run(conn: &Connection, id: i64) -> Result<()> {
    conn.execute("DELETE FROM maand_run_jobs WHERE run_id = ?1", [id]).map_err(db_err("delete run"))?;
    conn.execute("DELETE FROM maand_runs WHERE id = ?1", [id]).map_err(db_err("delete run"))?;
    Ok(())
}

/// Every recorded run, newest first.
pub fn load_runs(conn: &Connection) -> Result<Vec<RunRow>> {
    let mut stmt = conn
        .prepare(
            "SELECT id, kind, target, argv, user, host, pid, started_ms, finished_ms, result, reason
             FROM maand_runs ORDER BY started_ms DESC, id DESC",
        )
        .map_err(db_err("read runs"))?;
    let rows = stmt.query_map([], run_row).map_err(db_err("read runs"))?;
    let mut runs: Vec<RunRow> = rows.collect::<rusqlite::Result<_>>().map_err(db_err("read runs"))?;
    let mut stmt = conn
        .prepare(
            "SELECT run_id, job, version_from, version_to, allocations, promoted, result, reason
             FROM maand_run_jobs ORDER BY run_id, job",
        )
        .map_err(db_err("read run jobs"))?;
    let jobs = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                RunJobRow {
                    job: r.get(1)?,
                    version_from: r.get(2)?,
                    version_to: r.get(3)?,
                    allocations: from_json(r.get::<_, Option<String>>(4)?),
                    promoted: from_json(r.get::<_, Option<String>>(5)?),
                    result: r.get(6)?,
                    reason: r.get(7)?,
                },
            ))
        })
        .map_err(db_err("read run jobs"))?;
    let mut by_run: std::collections::HashMap<i64, Vec<RunJobRow>> = std::collections::HashMap::new();
    for row in jobs {
        let (id, job) = row.map_err(db_err("read run jobs"))?;
        by_run.entry(id).or_default().push(job);
    }
    for run in &mut runs {
        run.jobs = by_run.remove(&run.id).unwrap_or_default();
    }
    Ok(runs)
}

fn run_row(r: &Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: r.get(0)?,
        run: NewRun {
            kind: r.get(1)?,
            target: r.get(2)?,
            argv: from_json(r.get::<_, Option<String>>(3)?),
            user: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
            host: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
            pid: r.get::<_, Option<u32>>(6)?.unwrap_or(0),
            started_ms: r.get(7)?,
        },
        finished_ms: r.get(8)?,
        result: r.get(9)?,
        reason: r.get(10)?,
        jobs: Vec::new(),
    })
}

fn to_json(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_string())
}

fn from_json(text: Option<String>) -> Vec<String> {
    text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{db, BucketPaths};

    fn catalog() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let paths = BucketPaths::new(dir.path());
        std::fs::create_dir_all(paths.data_dir()).unwrap();
        let conn = db::open(&paths).unwrap();
        db::migrate(&conn).unwrap();
        (dir, conn)
    }

    fn run(kind: &str, started_ms: i64) -> NewRun {
        NewRun {
            kind: kind.into(),
            target: None,
            argv: vec!["maand".into(), kind.into()],
            user: "ops".into(),
            host: "cli1".into(),
            pid: 42,
            started_ms,
        }
    }

    #[test]
    fn a_run_is_running_until_finished_then_carries_its_jobs() {
        let (_dir, conn) = catalog();
        let id = insert_run(&conn, &run("deploy", 1_000)).unwrap();
        let runs = load_runs(&conn).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].result, RUNNING);
        assert_eq!(runs[0].finished_ms, None);
        assert_eq!(runs[0].run, run("deploy", 1_000));
        let web = RunJobRow {
            job: "web".into(),
            version_from: Some("1".into()),
            version_to: Some("2".into()),
            allocations: vec!["10.0.0.1".into(), "10.0.0.2".into()],
            promoted: vec!["10.0.0.1".into()],
            result: "failed".into(),
            reason: Some("health check failed".into()),
        };
        let api = RunJobRow { job: "api".into(), result: "ok".into(), ..Default::default() };
        finish_run(&conn, id, 2_500, "failed", Some("job web failed"), &[web.clone(), api.clone()]).unwrap();
        let runs = load_runs(&conn).unwrap();
        assert_eq!(runs[0].result, "failed");
        assert_eq!(runs[0].reason.as_deref(), Some("job web failed"));
        assert_eq!(runs[0].finished_ms, Some(2_500));
        assert_eq!(runs[0].jobs, vec![api, web], "jobs in name order");
    }

    #[test]
    fn newest_first_and_deleted_runs_are_gone_with_their_jobs() {
        let (_dir, conn) = catalog();
        let first = insert_run(&conn, &run("deploy", 1_000)).unwrap();
        let second = insert_run(&conn, &run("gc", 2_000)).unwrap();
        let third = insert_run(&conn, &run("job", 3_000)).unwrap();
        finish_run(&conn, second, 2_100, "ok", None, &[RunJobRow { job: "a".into(), ..Default::default() }]).unwrap();
        delete_run(&conn, second).unwrap();
        let ids: Vec<i64> = load_runs(&conn).unwrap().iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![third, first]);
        let orphans: i64 = conn.query_row("SELECT count(*) FROM maand_run_jobs", [], |r| r.get(0)).unwrap();
        assert_eq!(orphans, 0);
        let next = insert_run(&conn, &run("deploy", 4_000)).unwrap();
        assert!(next > third, "ids are never reused ({next} after {third})");
    }
}
