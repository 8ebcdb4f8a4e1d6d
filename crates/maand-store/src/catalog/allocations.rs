//! `allocations` rows: one per (job, worker) placement, with disabled/removed state.

use super::db_err;
use maand_core::Result;
use rusqlite::{params, Connection};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocationRow {
    pub alloc_id: String,
    pub worker_ip: String,
    pub job: String,
    pub disabled: bool,
    pub removed: bool,
    pub deployment_seq: i64,
    pub new_version: String,
}

impl AllocationRow {
    pub fn is_active(&self) -> bool {
        !self.disabled && !self.removed
    }
}

/// Every allocation in catalog order: job, then worker position, then IP (workers no longer in
/// the catalog sort last).
pub fn load_allocations(conn: &Connection) -> Result<Vec<AllocationRow>> {
    let mut stmt = conn
        .prepare(
            "SELECT a.alloc_id, a.worker_ip, a.job, ifnull(a.disabled,0), ifnull(a.removed,0), ifnull(a.deployment_seq,0),
                    ifnull(a.new_version,'0.0.0')
             FROM allocations a LEFT JOIN worker w ON w.worker_ip = a.worker_ip
             ORDER BY a.job, w.position IS NULL, w.position, a.worker_ip",
        )
        .map_err(db_err("read allocations"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok(AllocationRow {
                alloc_id: r.get(0)?,
                worker_ip: r.get(1)?,
                job: r.get(2)?,
                disabled: r.get::<_, i64>(3)? != 0,
                removed: r.get::<_, i64>(4)? != 0,
                deployment_seq: r.get(5)?,
                new_version: r.get(6)?,
            })
        })
        .map_err(db_err("read allocations"))?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_err("read allocations"))
}

pub fn upsert_allocation(conn: &Connection, row: &AllocationRow) -> Result<()> {
    conn.execute(
        "INSERT INTO allocations(alloc_id, worker_ip, job, disabled, removed, deployment_seq, new_version)
         VALUES (?1,?2,?3,?4,?5,?6,?7)
         ON CONFLICT(worker_ip, job) DO UPDATE SET alloc_id = excluded.alloc_id, disabled = excluded.disabled,
             removed = excluded.removed, deployment_seq = excluded.deployment_seq, new_version = excluded.new_version",
        params![
            row.alloc_id,
            row.worker_ip,
            row.job,
            row.disabled as i64,
            row.removed as i64,
            row.deployment_seq,
            row.new_version
        ],
    )
    .map_err(db_err("write allocation"))?;
    Ok(())
}

pub fn mark_removed(conn: &Connection, job: &str, worker_ip: &str) -> Result<()> {
    conn.execute("UPDATE allocations SET removed = 1 WHERE job = ?1 AND worker_ip = ?2", params![job, worker_ip])
        .map_err(db_err("mark allocation removed"))?;
    Ok(())
}

pub fn set_deployment_seq(conn: &Connection, job: &str, seq: i64) -> Result<()> {
    conn.execute("UPDATE allocations SET deployment_seq = ?2 WHERE job = ?1", params![job, seq])
        .map_err(db_err("write deployment_seq"))?;
    Ok(())
}

/// Forget what was promoted for an allocation so the next deploy starts it ("start pending").
pub fn clear_previous_hash(conn: &Connection, job: &str, alloc_id: &str) -> Result<()> {
    conn.execute(
        "UPDATE hash SET previous_hash = NULL, previous_files = NULL WHERE namespace = ?1 AND key = ?2",
        params![format!("{job}_allocation"), alloc_id],
    )
    .map_err(db_err("clear previous hash"))?;
    Ok(())
}

/// Allocation ids maand has stopped and not started since (DESIGN §3.6: a disabled allocation is
/// stopped once, not on every deploy).
pub fn stopped_allocations(conn: &Connection) -> Result<std::collections::HashSet<String>> {
    let mut stmt = conn
        .prepare("SELECT alloc_id FROM maand_allocation_state WHERE stopped = 1")
        .map_err(db_err("read stopped"))?;
    let rows = stmt.query_map([], |r| r.get(0)).map_err(db_err("read stopped"))?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_err("read stopped"))
}

pub fn set_stopped(conn: &Connection, job: &str, alloc_id: &str, stopped: bool) -> Result<()> {
    if stopped {
        conn.execute(
            "INSERT INTO maand_allocation_state(alloc_id, job, stopped) VALUES (?1, ?2, 1)
             ON CONFLICT(alloc_id) DO UPDATE SET stopped = 1, job = excluded.job",
            params![alloc_id, job],
        )
    } else {
        conn.execute("DELETE FROM maand_allocation_state WHERE alloc_id = ?1", [alloc_id])
    }
    .map_err(db_err("write allocation state"))?;
    Ok(())
}
