//! `maand cat workers | jobs | allocations | deployments | job_commands | job_ports`.

use super::{check_filter, Filter, Table};
use crate::bucket::Bucket;
use maand_core::Result;
use maand_store::catalog::{self, AllocationRow, HashRow};
use serde_json::{json, Value};
use std::collections::HashMap;

fn zone_by_ip(workers: &[catalog::WorkerRow]) -> HashMap<String, String> {
    workers.iter().map(|w| (w.worker_ip.clone(), w.tags.get("zone").cloned().unwrap_or_default())).collect()
}

/// Numbers are stored as text (Go `%v` of a float); show them as JSON numbers when they parse.
fn number(text: &str) -> Value {
    match text.parse::<f64>() {
        Ok(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => json!(v as i64),
        Ok(v) => json!(v),
        Err(_) => json!(text),
    }
}

pub fn workers(bucket: &Bucket) -> Result<Table> {
    let conn = bucket.connect()?;
    let mut t = Table::new(&[
        ("worker_ip", "Worker IP"),
        ("zone", "zone"),
        ("cpu_mhz", "CPU (mhz)"),
        ("memory_mb", "Memory (mb)"),
        ("position", "Position"),
        ("labels", "labels"),
    ]);
    for w in catalog::load_workers(&conn)? {
        t.push(vec![
            json!(w.worker_ip),
            json!(w.tags.get("zone").cloned().unwrap_or_default()),
            number(&w.available_cpu_mhz),
            number(&w.available_memory_mb),
            json!(w.position),
            json!(w.labels),
        ]);
    }
    Ok(t)
}

pub fn jobs(bucket: &Bucket) -> Result<Table> {
    let conn = bucket.connect()?;
    let allocations = catalog::load_allocations(&conn)?;
    let mut t = Table::new(&[
        ("job", "job"),
        ("version", "version"),
        ("disabled", "disabled"),
        ("deployment_seq", "deployment_seq"),
        ("cpu_mhz", "cpu"),
        ("memory_mb", "memory"),
        ("selectors", "selectors"),
    ]);
    let selectors = catalog::load_job_selectors(&conn)?;
    let mut rows: Vec<(i64, Vec<Value>)> = Vec::new();
    for j in catalog::load_jobs(&conn)? {
        let mine: Vec<&AllocationRow> = allocations.iter().filter(|a| a.job == j.name).collect();
        let disabled = !mine.iter().any(|a| !a.disabled);
        let seq = mine.iter().map(|a| a.deployment_seq).max().unwrap_or(0);
        let sel = selectors.get(&j.name).cloned().unwrap_or_default();
        rows.push((
            seq,
            vec![
                json!(j.name),
                json!(j.version),
                json!(i64::from(disabled)),
                json!(seq),
                number(&j.current_cpu_mhz),
                number(&j.current_memory_mb),
                json!(sel),
            ],
        ));
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| Table::cell_text(&a.1[0]).cmp(&Table::cell_text(&b.1[0]))));
    t.rows = rows.into_iter().map(|(_, r)| r).collect();
    Ok(t)
}

fn filtered_allocations(conn: &rusqlite::Connection, filter: &Filter) -> Result<Vec<AllocationRow>> {
    let all = catalog::load_allocations(conn)?;
    let jobs: Vec<String> = catalog::load_job_names(conn)?;
    let mut known_jobs = jobs;
    known_jobs.extend(all.iter().map(|a| a.job.clone()));
    let known_workers: Vec<String> = all.iter().map(|a| a.worker_ip.clone()).collect();
    check_filter("jobs", &filter.jobs, &known_jobs)?;
    check_filter("workers", &filter.workers, &known_workers)?;
    Ok(all.into_iter().filter(|a| filter.job_ok(&a.job) && filter.worker_ok(&a.worker_ip)).collect())
}

pub fn allocations(bucket: &Bucket, filter: &Filter) -> Result<Table> {
    let conn = bucket.connect()?;
    let zones = zone_by_ip(&catalog::load_workers(&conn)?);
    let mut t = Table::new(&[
        ("allocation_id", "allocation_id"),
        ("worker_ip", "worker_ip"),
        ("zone", "zone"),
        ("job", "job"),
        ("disabled", "disabled"),
        ("removed", "removed"),
    ]);
    for a in filtered_allocations(&conn, filter)? {
        t.push(vec![
            json!(a.alloc_id),
            json!(a.worker_ip),
            json!(zones.get(&a.worker_ip).cloned().unwrap_or_default()),
            json!(a.job),
            json!(i64::from(a.disabled)),
            json!(i64::from(a.removed)),
        ]);
    }
    Ok(t)
}

/// Rollout state of one allocation (spec/features.md §5.10).
pub fn rollout_state(a: &AllocationRow, h: &HashRow) -> &'static str {
    let previous = h.previous_hash.clone().unwrap_or_default();
    let current = h.current_hash.clone().unwrap_or_default();
    let version_differs = h.current_version.as_deref().unwrap_or("0.0.0") != a.new_version;
    if a.removed {
        "removed"
    } else if a.disabled {
        if (!previous.is_empty() && previous != current) || version_differs {
            "disabled_restart"
        } else {
            "disabled"
        }
    } else if previous.is_empty() {
        "new"
    } else if previous == "__maand_health_failed__" {
        "health_failed"
    } else if previous != current || version_differs {
        "restart"
    } else {
        "promoted"
    }
}

pub fn deployments(bucket: &Bucket, filter: &Filter, active_only: bool) -> Result<Table> {
    let conn = bucket.connect()?;
    let mut t = Table::new(&[
        ("job", "job"),
        ("worker_ip", "worker_ip"),
        ("alloc_id", "alloc_id"),
        ("rollout", "rollout"),
        ("current_hash", "current_hash"),
        ("previous_hash", "previous_hash"),
        ("current_version", "current_version"),
        ("new_version", "new_version"),
    ]);
    for a in filtered_allocations(&conn, filter)? {
        if active_only && !a.is_active() {
            continue;
        }
        let h = catalog::get_hash(&conn, &format!("{}_allocation", a.job), &a.alloc_id)?.unwrap_or_default();
        t.push(vec![
            json!(a.job),
            json!(a.worker_ip),
            json!(a.alloc_id),
            json!(rollout_state(&a, &h)),
            json!(h.current_hash.unwrap_or_default()),
            json!(h.previous_hash.unwrap_or_default()),
            json!(h.current_version.unwrap_or_else(|| "0.0.0".into())),
            json!(a.new_version),
        ]);
    }
    Ok(t)
}

pub fn job_commands(bucket: &Bucket) -> Result<Table> {
    let conn = bucket.connect()?;
    let mut t = Table::new(&[
        ("job", "job"),
        ("command_name", "command_name"),
        ("executed_on", "executed_on"),
        ("demand_job", "demand_job"),
        ("demand_command", "demand_command"),
        ("demand_config", "demand_config"),
    ]);
    for c in catalog::load_job_commands(&conn)? {
        let config: Value = serde_json::from_str(&c.demand_config).unwrap_or(Value::String(c.demand_config.clone()));
        t.push(vec![
            json!(c.job),
            json!(c.name),
            json!(c.executed_on),
            json!(c.demand_job),
            json!(c.demand_command),
            config,
        ]);
    }
    Ok(t)
}

pub fn job_ports(bucket: &Bucket, jobs: &[String]) -> Result<Table> {
    let conn = bucket.connect()?;
    check_filter("jobs", jobs, &catalog::load_job_names(&conn)?)?;
    let mut t = Table::new(&[("job", "job"), ("name", "name"), ("port", "port")]);
    for p in catalog::load_job_ports(&conn)? {
        if jobs.is_empty() || jobs.contains(&p.job) {
            t.push(vec![json!(p.job), json!(p.name), json!(p.port)]);
        }
    }
    Ok(t)
}
