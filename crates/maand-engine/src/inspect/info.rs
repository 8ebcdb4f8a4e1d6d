//! `maand info`: bucket id, update sequence and catalog counts.

use super::Table;
use crate::bucket::Bucket;
use maand_core::{Error, ErrorKind, Result};
use maand_store::catalog;
use serde::Serialize;
use serde_json::json;

#[derive(Debug, Clone, Serialize)]
pub struct Info {
    pub bucket_id: String,
    pub update_seq: i64,
    pub workers: i64,
    pub jobs: i64,
    pub allocations: i64,
}

impl Info {
    pub fn to_table(&self) -> Table {
        let mut t = Table::new(&[("description", "Description"), ("value", "Value")]);
        t.push(vec![json!("Bucket ID"), json!(self.bucket_id)]);
        t.push(vec![json!("Update Sequence"), json!(self.update_seq)]);
        t.push(vec![json!("Number of Workers"), json!(self.workers)]);
        t.push(vec![json!("Number of Jobs"), json!(self.jobs)]);
        t.push(vec![json!("Number of Allocations"), json!(self.allocations)]);
        t
    }
}

pub fn info(bucket: &Bucket) -> Result<Info> {
    let conn = bucket.connect()?;
    let row = catalog::bucket_row(&conn)?;
    let count = |table: &str| -> Result<i64> {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .map_err(|e| Error::new(ErrorKind::Database, format!("count {table}: {e}")))
    };
    Ok(Info {
        bucket_id: row.bucket_id,
        update_seq: row.update_seq,
        workers: count("worker")?,
        jobs: count("job")?,
        allocations: count("allocations")?,
    })
}
