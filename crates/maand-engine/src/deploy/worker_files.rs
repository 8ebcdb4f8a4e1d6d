//! The bucket-level files every worker receives (spec §5.2): `worker.json`, `jobs.json` and our
//! worker-side scripts `bin/runner.py` and `bin/worker.py`.

use super::snapshot::Snapshot;
use super::staged_tree::{prepare_worker_dir, staged_dir, write_staged};
use maand_core::{Error, ErrorKind, Result};
use maand_store::catalog::WorkerRow;
use serde::Serialize;
use serde_json::json;
use std::path::{Path, PathBuf};

pub const RUNNER_PY: &str = include_str!("worker_scripts/runner.py");
pub const WORKER_PY: &str = include_str!("worker_scripts/worker.py");

/// JSON with a 3-space indent, as the Go maand writes these files.
fn json_3(v: &serde_json::Value) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"   ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    v.serialize(&mut ser).map_err(|e| Error::new(ErrorKind::Unexpected, e.to_string()))?;
    Ok(buf)
}

/// Write `tmp/workers/<ip>/{worker.json, jobs.json, bin/}` for one worker; returns that directory.
pub fn write_worker_root(staging_root: &Path, snap: &Snapshot, worker: &WorkerRow, update_seq: i64) -> Result<PathBuf> {
    let dir = prepare_worker_dir(staging_root, &worker.worker_ip)?;
    let bin = dir.join("bin");
    staged_dir(&bin)?;
    staged_dir(&dir.join("jobs"))?;
    let worker_json = json!({
        "bucket_id": snap.bucket_id,
        "worker_id": worker.worker_id,
        "worker_ip": worker.worker_ip,
        "labels": worker.labels,
        "update_seq": update_seq,
    });
    let jobs: Vec<serde_json::Value> = snap
        .allocations
        .iter()
        .filter(|a| a.worker_ip == worker.worker_ip && !a.removed)
        .map(|a| json!({"job": a.job, "disabled": i64::from(a.disabled)}))
        .collect();
    write_staged(&dir.join("worker.json"), &json_3(&worker_json)?, 0o644)?;
    write_staged(&dir.join("jobs.json"), &json_3(&serde_json::Value::Array(jobs))?, 0o644)?;
    write_staged(&bin.join("runner.py"), RUNNER_PY.as_bytes(), 0o755)?;
    write_staged(&bin.join("worker.py"), WORKER_PY.as_bytes(), 0o755)?;
    Ok(dir)
}
