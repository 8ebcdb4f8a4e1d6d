//! Build steps 2–6: workers, jobs (resources, ports, commands, files), allocations with the
//! disabled state, min_allocations_count and deployment_seq — workspace values into catalog rows.

use super::workspace::Workspace;
use maand_core::bucket_conf::{port_range, resolve_reservation, Reservation};
use maand_core::demands::validate_demands;
use maand_core::ids::stable_uuid;
use maand_core::manifest::{Manifest, PortDecl, ProbeKind};
use maand_core::placement::{place, validate_min_allocations};
use maand_core::ports::assign_ports;
use maand_core::units::format_number;
use maand_core::waves::deployment_seq;
use maand_core::Result;
use maand_store::catalog::{self, AllocationRow, CertRow, CommandRow, JobRow, JobWrite, WorkerRow};
use rusqlite::Connection;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};

/// What the later build steps need to know about the catalog after steps 2–6.
pub struct CatalogState {
    pub workers: Vec<WorkerRow>,
    pub jobs: Vec<JobRow>,
    pub reservations: BTreeMap<String, Reservation>,
    pub ports: BTreeMap<(String, String), u16>,
    pub allocations: Vec<AllocationRow>,
    /// Workers that were in the catalog before this build and are gone now.
    pub removed_workers: Vec<String>,
    /// Jobs that were in the catalog before this build and are gone from the workspace.
    pub removed_jobs: Vec<String>,
}

pub fn write_catalog(conn: &Connection, ws: &Workspace) -> Result<CatalogState> {
    let previous_workers = catalog::load_workers(conn)?;
    let workers = worker_rows(ws, &previous_workers);
    catalog::write_workers(conn, &workers)?;
    let removed_workers = previous_workers
        .iter()
        .filter(|old| !workers.iter().any(|w| w.worker_ip == old.worker_ip))
        .map(|w| w.worker_ip.clone())
        .collect();

    let (jobs, reservations, ports) = write_jobs(conn, ws)?;
    let previous_jobs = catalog::load_job_names(conn)?;
    let removed_jobs: Vec<String> = previous_jobs.into_iter().filter(|j| !ws.jobs.contains_key(j)).collect();
    for job in &removed_jobs {
        catalog::delete_job(conn, job)?;
        catalog::delete_hash(conn, "build_certs", job)?;
    }
    let manifests: BTreeMap<String, Manifest> =
        ws.jobs.iter().map(|(name, src)| (name.clone(), src.manifest.clone())).collect();
    validate_demands(&manifests)?;

    let allocations = write_allocations(conn, ws)?;
    let counts: Vec<(String, i64, i64)> = ws
        .jobs
        .iter()
        .map(|(name, src)| {
            let n = allocations.iter().filter(|a| &a.job == name && !a.removed).count() as i64;
            (name.clone(), n, src.manifest.min_allocations_count)
        })
        .collect();
    validate_min_allocations(&counts)?;

    let seqs = deployment_seq(&manifests)?;
    for (job, seq) in &seqs {
        catalog::set_deployment_seq(conn, job, *seq)?;
    }
    let allocations = catalog::load_allocations(conn)?;
    Ok(CatalogState { workers, jobs, reservations, ports, allocations, removed_workers, removed_jobs })
}

fn worker_rows(ws: &Workspace, previous: &[WorkerRow]) -> Vec<WorkerRow> {
    let ids: HashMap<&str, &str> = previous.iter().map(|w| (w.worker_ip.as_str(), w.worker_id.as_str())).collect();
    ws.workers
        .iter()
        .map(|w| WorkerRow {
            worker_id: ids
                .get(w.host.as_str())
                .map(|s| s.to_string())
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            worker_ip: w.host.clone(),
            available_memory_mb: format_number(w.memory_mb),
            available_cpu_mhz: format_number(w.cpu_mhz),
            position: w.position,
            labels: w.labels.clone(),
            tags: w.tags.clone(),
            ssh_port: w.port,
        })
        .collect()
}

type JobsOutcome = (Vec<JobRow>, BTreeMap<String, Reservation>, BTreeMap<(String, String), u16>);

fn write_jobs(conn: &Connection, ws: &Workspace) -> Result<JobsOutcome> {
    let previous_ports: BTreeMap<(String, String), u16> = catalog::load_job_ports(conn)?
        .into_iter()
        .filter_map(|p| u16::try_from(p.port).ok().map(|port| ((p.job, p.name), port)))
        .collect();
    let requests: Vec<(String, Vec<(String, PortDecl)>)> =
        ws.jobs.iter().map(|(name, src)| (name.clone(), src.manifest.ports.clone())).collect();
    let ports = if requests.iter().any(|(_, p)| !p.is_empty()) {
        assign_ports(port_range(&ws.bucket_conf)?, &requests, &previous_ports)?
    } else {
        BTreeMap::new()
    };
    let file_label = format!("workspace/{}", ws.jobs_conf_name);
    let mut rows = Vec::new();
    let mut reservations = BTreeMap::new();
    for (name, src) in &ws.jobs {
        let m = &src.manifest;
        let reservation = resolve_reservation(name, m, ws.jobs_conf.get(name), &file_label)?;
        let row = job_row(name, m, &reservation);
        let job_ports: Vec<(String, i64)> = m
            .ports
            .iter()
            .filter_map(|(p, _)| ports.get(&(name.clone(), p.clone())).map(|n| (p.clone(), i64::from(*n))))
            .collect();
        let certs: Vec<CertRow> = m
            .certs
            .iter()
            .map(|c| CertRow {
                name: c.name.clone(),
                pkcs8: c.pkcs8,
                one: c.one,
                subject: json!({ "common_name": c.common_name }).to_string(),
            })
            .collect();
        let commands = command_rows(name, m);
        catalog::write_job(
            conn,
            &JobWrite {
                row: &row,
                selectors: &m.selectors,
                ports: &job_ports,
                certs: &certs,
                commands: &commands,
                files: &src.files,
            },
        )?;
        reservations.insert(name.clone(), reservation);
        rows.push(row);
    }
    Ok((rows, reservations, ports))
}

fn job_row(name: &str, m: &Manifest, r: &Reservation) -> JobRow {
    JobRow {
        job_id: stable_uuid(name),
        name: name.to_string(),
        version: m.version_raw.clone().unwrap_or_else(|| "unknown".into()),
        min_memory_mb: format_number(r.min_memory_mb),
        max_memory_mb: format_number(r.max_memory_mb),
        current_memory_mb: format_number(r.memory_mb),
        current_memory_source: r.memory_source.clone(),
        min_cpu_mhz: format_number(r.min_cpu_mhz),
        max_cpu_mhz: format_number(r.max_cpu_mhz),
        current_cpu_mhz: format_number(r.cpu_mhz),
        current_cpu_source: r.cpu_source.clone(),
        max_concurrent_upgrades: m.max_concurrent_upgrades,
        max_concurrent_starts: m.max_concurrent_starts,
        restart_policy: m.restart_policy.as_str().to_string(),
        restart_globs: serde_json::to_string(&m.restart_globs).unwrap_or_else(|_| "[]".into()),
        health_check: m.health_check.as_ref().map(|hc| {
            let checks: Vec<serde_json::Value> = hc
                .checks
                .iter()
                .map(|c| match c {
                    ProbeKind::Tcp { port } => json!({"type": "tcp", "port": port}),
                    ProbeKind::Http { port, path, expect_status, scheme } => {
                        json!({"type": "http", "port": port, "path": path, "expect_status": expect_status, "scheme": scheme})
                    }
                    ProbeKind::Ssh { command } => json!({"type": "ssh", "command": command}),
                })
                .collect();
            json!({
                "checks": checks,
                "timeout_seconds": hc.timeout_seconds,
                "wait": {"attempts": hc.wait_attempts, "interval_seconds": hc.wait_interval_seconds},
            })
            .to_string()
        }),
        remote_timeout_seconds: m.remote_timeout_seconds.and_then(|t| i64::try_from(t).ok()),
        rollback_on_failure: m.rollback_on_failure,
    }
}

fn command_rows(job: &str, m: &Manifest) -> Vec<CommandRow> {
    let mut rows = Vec::new();
    for c in &m.commands {
        for event in &c.executed_on {
            let (demand_job, demand_command, demand_config) = match &c.demand {
                Some(d) => (d.job.clone(), d.command.clone(), d.config.to_string()),
                None => (String::new(), String::new(), "{}".to_string()),
            };
            rows.push(CommandRow {
                job: job.to_string(),
                name: c.name.clone(),
                executed_on: event.as_str().to_string(),
                demand_job,
                demand_command,
                demand_config,
            });
        }
    }
    rows
}

/// Step 5: place jobs on workers, keep allocation ids, mark vanished placements removed, apply
/// disabled.json, and mark re-enabled allocations "start pending".
fn write_allocations(conn: &Connection, ws: &Workspace) -> Result<Vec<AllocationRow>> {
    let previous = catalog::load_allocations(conn)?;
    let by_key: HashMap<(&str, &str), &AllocationRow> =
        previous.iter().map(|a| ((a.job.as_str(), a.worker_ip.as_str()), a)).collect();
    let selectors: Vec<(String, Vec<String>)> =
        ws.jobs.iter().map(|(name, src)| (name.clone(), src.manifest.selectors.clone())).collect();
    let placements = place(&ws.workers, &selectors);
    let mut placed = std::collections::HashSet::new();
    for (job, ip) in &placements {
        let src = &ws.jobs[job];
        let old = by_key.get(&(job.as_str(), ip.as_str()));
        let disabled = ws.disabled.is_disabled(job, ip);
        let row = AllocationRow {
            alloc_id: old.map(|a| a.alloc_id.clone()).unwrap_or_else(|| stable_uuid(&format!("{job}|{ip}"))),
            worker_ip: ip.clone(),
            job: job.clone(),
            disabled,
            removed: false,
            deployment_seq: old.map(|a| a.deployment_seq).unwrap_or(0),
            new_version: src.manifest.version_raw.clone().unwrap_or_else(|| "0.0.0".into()),
        };
        if old.is_some_and(|a| a.disabled && !a.removed) && !disabled {
            catalog::clear_previous_hash(conn, job, &row.alloc_id)?;
        }
        if old.is_none_or(|a| *a != &row) {
            catalog::upsert_allocation(conn, &row)?;
        }
        placed.insert((job.clone(), ip.clone()));
    }
    for a in &previous {
        if !a.removed && !placed.contains(&(a.job.clone(), a.worker_ip.clone())) {
            catalog::mark_removed(conn, &a.job, &a.worker_ip)?;
        }
    }
    catalog::load_allocations(conn)
}
