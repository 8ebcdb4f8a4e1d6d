//! The single `bucket` row: bucket id and deploy update sequence.

use super::db_err;
use maand_core::{Error, ErrorKind, Result};
use rusqlite::{Connection, OptionalExtension};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketRow {
    pub bucket_id: String,
    pub update_seq: i64,
}

pub fn bucket_row(conn: &Connection) -> Result<BucketRow> {
    conn.query_row("SELECT bucket_id, update_seq FROM bucket LIMIT 1", [], |r| {
        Ok(BucketRow { bucket_id: r.get(0)?, update_seq: r.get::<_, Option<i64>>(1)?.unwrap_or(0) })
    })
    .optional()
    .map_err(db_err("read bucket row"))?
    .ok_or_else(|| {
        Error::new(ErrorKind::NotInitialized, "the catalog has no bucket row: run maand init in the bucket directory")
    })
}

/// Insert the bucket row when absent; returns true when it was created.
pub fn insert_bucket(conn: &Connection, bucket_id: &str) -> Result<bool> {
    let n: i64 =
        conn.query_row("SELECT count(*) FROM bucket", [], |r| r.get(0)).map_err(db_err("count bucket rows"))?;
    if n > 0 {
        return Ok(false);
    }
    conn.execute("INSERT INTO bucket(bucket_id, update_seq) VALUES (?1, 0)", [bucket_id])
        .map_err(db_err("insert bucket row"))?;
    Ok(true)
}

/// Record that the workers were synced at `update_seq`.
pub fn set_update_seq(conn: &Connection, update_seq: i64) -> Result<()> {
    conn.execute("UPDATE bucket SET update_seq = ?1", [update_seq]).map_err(db_err("update update_seq"))?;
    Ok(())
}
