//! `maand rollback <job> --list`: the job's kept releases, newest first — number, when it was
//! kept, the version(s) it promoted and on which workers — so `--to` can name one.

use super::Table;
use crate::bucket::Bucket;
use maand_core::{Error, Result};
use maand_store::catalog;
use maand_store::timestamp::rfc3339_utc;
use serde_json::json;

pub fn releases(bucket: &Bucket, job: &str) -> Result<Table> {
    let conn = bucket.connect()?;
    let kept = catalog::job_releases(&conn, job)?;
    if kept.is_empty() && !catalog::load_job_names(&conn)?.iter().any(|j| j == job) {
        return Err(Error::msg(format!(
            "job {job} is not in the catalog and has no kept release (see maand cat jobs)"
        )));
    }
    let mut t = Table::new(&[
        ("release", "release"),
        ("created", "created (UTC)"),
        ("version", "version"),
        ("workers", "workers"),
    ]);
    for r in kept {
        t.push(vec![json!(r.release), json!(rfc3339_utc(r.created)), json!(r.versions), json!(r.workers)]);
    }
    Ok(t)
}
