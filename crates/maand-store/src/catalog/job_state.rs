//! Per-job deploy state of ours: jobs whose `post_deploy` commands still have to succeed after
//! every allocation was promoted (a later deploy runs them again, and only them).

use super::db_err;
use maand_core::Result;
use rusqlite::{params, Connection};
use std::collections::HashSet;

/// Jobs whose `post_deploy` failed after their rollout completed.
pub fn post_deploy_pending(conn: &Connection) -> Result<HashSet<String>> {
    let mut stmt = conn
        .prepare("SELECT job FROM maand_job_state WHERE post_deploy_pending = 1")
        .map_err(db_err("read job state"))?;
    let rows = stmt.query_map([], |r| r.get(0)).map_err(db_err("read job state"))?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_err("read job state"))
}

pub fn set_post_deploy_pending(conn: &Connection, job: &str, pending: bool) -> Result<()> {
    conn.execute(
        "INSERT INTO maand_job_state(job, post_deploy_pending) VALUES (?1, ?2)
         ON CONFLICT(job) DO UPDATE SET post_deploy_pending = excluded.post_deploy_pending",
        params![job, i64::from(pending)],
    )
    .map_err(db_err("write job state"))?;
    Ok(())
}

/// Forget the state of jobs no longer in the catalog (`maand gc`); how many were forgotten.
pub fn forget_removed_jobs_state(conn: &Connection) -> Result<usize> {
    conn.execute("DELETE FROM maand_job_state WHERE job NOT IN (SELECT name FROM job)", [])
        .map_err(db_err("forget job state"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_of_removed_jobs_is_forgotten() {
        let conn = Connection::open_in_memory().unwrap();
        crate::db::migrate(&conn).unwrap();
        conn.execute("INSERT INTO job(job_id, name) VALUES ('j', 'web')", []).unwrap();
        set_post_deploy_pending(&conn, "web", true).unwrap();
        set_post_deploy_pending(&conn, "gone", true).unwrap();
        assert_eq!(forget_removed_jobs_state(&conn).unwrap(), 1);
        assert_eq!(post_deploy_pending(&conn).unwrap(), HashSet::from(["web".to_string()]));
    }
}
