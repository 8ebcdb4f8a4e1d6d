//! `hash` rows: deploy plan hashes per allocation (`<job>_allocation`/alloc_id) and build change
//! markers (`build`/`ca`, `build_certs`/<job>).

use super::db_err;
use maand_core::Result;
use rusqlite::{params, Connection, OptionalExtension};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HashRow {
    pub current_hash: Option<String>,
    pub previous_hash: Option<String>,
    pub current_files: Option<String>,
    pub previous_files: Option<String>,
    pub current_version: Option<String>,
}

pub fn get_hash(conn: &Connection, namespace: &str, key: &str) -> Result<Option<HashRow>> {
    conn.query_row(
        "SELECT current_hash, previous_hash, current_files, previous_files, current_version FROM hash
         WHERE namespace = ?1 AND key = ?2",
        params![namespace, key],
        |r| {
            Ok(HashRow {
                current_hash: r.get(0)?,
                previous_hash: r.get(1)?,
                current_files: r.get(2)?,
                previous_files: r.get(3)?,
                current_version: r.get(4)?,
            })
        },
    )
    .optional()
    .map_err(db_err("read hash"))
}

/// Record a build change marker (the value lives in `current_hash`).
pub fn put_build_hash(conn: &Connection, namespace: &str, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO hash(namespace, key, current_hash) VALUES (?1,?2,?3)
         ON CONFLICT(namespace, key) DO UPDATE SET current_hash = excluded.current_hash",
        params![namespace, key, value],
    )
    .map_err(db_err("write hash"))?;
    Ok(())
}

pub fn delete_hash(conn: &Connection, namespace: &str, key: &str) -> Result<()> {
    conn.execute("DELETE FROM hash WHERE namespace = ?1 AND key = ?2", params![namespace, key])
        .map_err(db_err("delete hash"))?;
    Ok(())
}

/// Record what deploy staged for an allocation (a new row starts at version 0.0.0, never promoted).
pub fn put_plan_hash(conn: &Connection, namespace: &str, key: &str, hash: &str, files_json: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO hash(namespace, key, current_hash, current_files, current_version) VALUES (?1,?2,?3,?4,'0.0.0')
         ON CONFLICT(namespace, key) DO UPDATE SET current_hash = excluded.current_hash, current_files = excluded.current_files",
        params![namespace, key, hash, files_json],
    )
    .map_err(db_err("write plan hash"))?;
    Ok(())
}

/// Promote an allocation: what was staged is now what runs, at `version`.
pub fn promote_hash(conn: &Connection, namespace: &str, key: &str, version: &str) -> Result<()> {
    conn.execute(
        "UPDATE hash SET previous_hash = current_hash, previous_files = current_files, current_version = ?3
         WHERE namespace = ?1 AND key = ?2",
        params![namespace, key, version],
    )
    .map_err(db_err("promote hash"))?;
    Ok(())
}

/// An allocation whose staged files were swapped into place but whose batch did not pass its gate
/// (DESIGN §3.16): it now runs files that were never proven. Its promoted hash becomes the
/// health-failed marker and its promoted manifest what was swapped in, so the next deploy rolls
/// it out again whatever is staged then (also when the change was reverted). Allocations never
/// promoted are left alone: they start again anyway.
pub fn mark_unproven(conn: &Connection, namespace: &str, key: &str) -> Result<()> {
    conn.execute(
        "UPDATE hash SET previous_hash = ?3, previous_files = current_files
         WHERE namespace = ?1 AND key = ?2 AND previous_hash IS NOT NULL AND previous_hash != ''",
        params![namespace, key, maand_core::rollout::HEALTH_FAILED_MARKER],
    )
    .map_err(db_err("mark hash unproven"))?;
    Ok(())
}
