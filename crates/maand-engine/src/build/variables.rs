//! Build steps 7 and 9: the build-owned KV namespaces of spec/features.md §6.2 — bucket, workers,
//! labels, jobs and per-allocation namespaces — synced so stale keys are tombstoned, plus the
//! purge rules of §6.3.

use super::catalog_rows::CatalogState;
use super::workspace::Workspace;
use maand_core::ids::stable_uuid;
use maand_core::units::format_number;
use maand_store::catalog::AllocationRow;
use maand_store::kv::KvStore;
use std::collections::{BTreeMap, BTreeSet};

pub fn job_ns(job: &str) -> String {
    format!("maand/job/{job}")
}

pub fn allocation_ns(job: &str, ip: &str) -> String {
    format!("maand/job/{job}/worker/{ip}")
}

/// The user-owned namespaces of a job (only purged on request).
fn user_job_namespaces(job: &str) -> [String; 2] {
    [format!("vars/job/{job}"), format!("secrets/job/{job}")]
}

pub struct VariablesInput<'a> {
    pub ws: &'a Workspace,
    pub state: &'a CatalogState,
    pub bucket_id: &'a str,
    pub ca_crt: &'a str,
    pub purge_job_kv: bool,
}

/// Step 7: every namespace except the per-allocation ones.
pub fn write_variables(kv: &mut KvStore, input: &VariablesInput<'_>) {
    let state = input.state;
    let active = |a: &&AllocationRow| a.is_active();
    let active_jobs: BTreeSet<&str> = state.allocations.iter().filter(active).map(|a| a.job.as_str()).collect();

    // maand/worker/<ip> and tags, and the shared maand/worker label lists.
    let mut label_members: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for w in &state.workers {
        for label in &w.labels {
            label_members.entry(label.as_str()).or_default().push(w.worker_ip.as_str());
        }
    }
    for (spec, w) in input.ws.workers.iter().zip(&state.workers) {
        let mut values = BTreeMap::new();
        values.insert("worker_ip".to_string(), w.worker_ip.clone());
        values.insert("worker_id".to_string(), w.worker_id.clone());
        if let Some(h) = spec.hostname.as_ref().filter(|h| !h.trim().is_empty()) {
            values.insert("hostname".to_string(), h.trim().to_string());
        }
        values.insert("position".to_string(), w.position.to_string());
        values.insert("labels".to_string(), w.labels.join(","));
        values.insert("worker_memory_mb".to_string(), w.available_memory_mb.clone());
        values.insert("worker_cpu_mhz".to_string(), w.available_cpu_mhz.clone());
        let jobs: BTreeSet<&str> = state
            .allocations
            .iter()
            .filter(|a| a.is_active() && a.worker_ip == w.worker_ip)
            .map(|a| a.job.as_str())
            .collect();
        values.insert("jobs".to_string(), jobs.into_iter().collect::<Vec<_>>().join(","));
        for label in &w.labels {
            let members = &label_members[label.as_str()];
            let peers: Vec<&str> = members.iter().copied().filter(|ip| *ip != w.worker_ip).collect();
            if !peers.is_empty() {
                values.insert(format!("{label}_peers"), peers.join(","));
            }
            if let Some(i) = members.iter().position(|ip| *ip == w.worker_ip) {
                values.insert(format!("{label}_allocation_index"), i.to_string());
            }
        }
        kv.sync_namespace(&format!("maand/worker/{}", w.worker_ip), &values);
        kv.sync_namespace(&format!("maand/worker/{}/tags", w.worker_ip), &w.tags);
    }
    for ip in &state.removed_workers {
        kv.purge_namespace(&format!("maand/worker/{ip}"));
        kv.purge_namespace(&format!("maand/worker/{ip}/tags"));
        for ns in kv.namespaces() {
            if ns.starts_with("maand/job/") && ns.ends_with(&format!("/worker/{ip}")) {
                kv.purge_namespace(&ns);
            }
        }
    }
    let mut shared = BTreeMap::new();
    for (label, members) in &label_members {
        shared.insert(format!("{label}_workers"), members.join(","));
        shared.insert(format!("{label}_workers_length"), members.len().to_string());
        for (i, ip) in members.iter().enumerate() {
            shared.insert(format!("{label}_{i}"), ip.to_string());
        }
        shared.insert(format!("{label}_label_id"), stable_uuid(label));
    }
    shared.insert("certs/ca.crt".to_string(), input.ca_crt.to_string());
    kv.sync_namespace("maand/worker", &shared);

    // Per-job namespaces.
    for (name, src) in &input.ws.jobs {
        let non_removed: Vec<&AllocationRow> =
            state.allocations.iter().filter(|a| &a.job == name && !a.removed).collect();
        if non_removed.is_empty() {
            purge_job(kv, name, input.purge_job_kv);
            continue;
        }
        let m = &src.manifest;
        let r = &state.reservations[name];
        let workers: Vec<&str> = non_removed.iter().filter(|a| !a.disabled).map(|a| a.worker_ip.as_str()).collect();
        let mut values = BTreeMap::new();
        values.insert("name".to_string(), name.clone());
        values.insert("job_id".to_string(), stable_uuid(name));
        values.insert("job_name".to_string(), name.clone());
        values.insert("version".to_string(), m.version_raw.clone().unwrap_or_else(|| "0.0.0".into()));
        values.insert("selectors".to_string(), m.selectors.join(","));
        values.insert("workers".to_string(), workers.join(","));
        values.insert("workers_length".to_string(), workers.len().to_string());
        for (i, ip) in workers.iter().enumerate() {
            values.insert(format!("worker_{i}"), ip.to_string());
        }
        values.insert("rollout_order".to_string(), workers.join(","));
        let (min_mem, max_mem) = bounds_or_current(r.min_memory_mb, r.max_memory_mb, r.memory_mb);
        let (min_cpu, max_cpu) = bounds_or_current(r.min_cpu_mhz, r.max_cpu_mhz, r.cpu_mhz);
        values.insert("memory".to_string(), format_number(r.memory_mb));
        values.insert("cpu".to_string(), format_number(r.cpu_mhz));
        values.insert("min_memory_mb".to_string(), format_number(min_mem));
        values.insert("max_memory_mb".to_string(), format_number(max_mem));
        values.insert("min_cpu_mhz".to_string(), format_number(min_cpu));
        values.insert("max_cpu_mhz".to_string(), format_number(max_cpu));
        kv.sync_namespace(&job_ns(name), &values);
        let conf = input.ws.jobs_conf.get(name).cloned().unwrap_or_default();
        kv.sync_namespace(&format!("vars/bucket/job/{name}"), &conf);
        for (k, v) in &src.vars {
            kv.put(&format!("vars/job/{name}"), k, v);
        }
    }
    // Jobs gone from the workspace (this build or earlier, their removed allocations kept until gc).
    let gone: BTreeSet<&str> = state
        .removed_jobs
        .iter()
        .map(String::as_str)
        .chain(state.allocations.iter().map(|a| a.job.as_str()))
        .filter(|j| !input.ws.jobs.contains_key(*j))
        .collect();
    for job in gone {
        purge_job(kv, job, input.purge_job_kv);
    }

    // Bucket namespaces.
    let mut bucket = BTreeMap::new();
    bucket.insert("bucket_id".to_string(), input.bucket_id.to_string());
    bucket.insert("jobs".to_string(), input.ws.jobs.keys().cloned().collect::<Vec<_>>().join(","));
    bucket.insert("activejobs".to_string(), active_jobs.iter().copied().collect::<Vec<_>>().join(","));
    for ((job, port_name), port) in &state.ports {
        if active_jobs.contains(job.as_str()) {
            bucket.insert(port_name.clone(), port.to_string());
        }
    }
    kv.sync_namespace("maand/bucket", &bucket);
    kv.sync_namespace("vars/bucket", &input.ws.bucket_conf);
}

/// When a job declares neither bound, its min/max keys equal the current reservation.
fn bounds_or_current(min: f64, max: f64, current: f64) -> (f64, f64) {
    if min == 0.0 && max == 0.0 {
        (current, current)
    } else {
        (min, max)
    }
}

/// Clear a job's build-owned namespaces and every allocation namespace of it (plus the user
/// namespaces with `--purge-job-kv`).
pub fn purge_job(kv: &mut KvStore, job: &str, purge_user_kv: bool) {
    kv.purge_namespace(&job_ns(job));
    kv.purge_namespace(&format!("vars/bucket/job/{job}"));
    let prefix = format!("maand/job/{job}/worker/");
    for ns in kv.namespaces() {
        if ns.starts_with(&prefix) {
            kv.purge_namespace(&ns);
        }
    }
    if purge_user_kv {
        for ns in user_job_namespaces(job) {
            kv.purge_namespace(&ns);
        }
    }
}

/// Step 9: per non-removed allocation `<job>_allocation_index` and `peer_workers`; stale keys
/// removed except `certs/*` and `version`; removed allocations' namespaces cleared.
pub fn write_allocation_variables(kv: &mut KvStore, state: &CatalogState) {
    let mut by_job: BTreeMap<&str, Vec<&AllocationRow>> = BTreeMap::new();
    for a in &state.allocations {
        if !a.removed {
            by_job.entry(a.job.as_str()).or_default().push(a);
        }
    }
    for (job, allocs) in &by_job {
        for (i, a) in allocs.iter().enumerate() {
            let ns = allocation_ns(job, &a.worker_ip);
            let mut values = BTreeMap::new();
            values.insert(format!("{job}_allocation_index"), i.to_string());
            let peers: Vec<&str> =
                allocs.iter().filter(|p| p.worker_ip != a.worker_ip).map(|p| p.worker_ip.as_str()).collect();
            values.insert("peer_workers".to_string(), peers.join(","));
            for key in kv.keys(&ns) {
                if key.starts_with("certs/") || key == "version" {
                    continue;
                }
                if !values.contains_key(&key) {
                    let _ = kv.delete(&ns, &key);
                }
            }
            for (k, v) in &values {
                kv.put(&ns, k, v);
            }
        }
    }
    for a in state.allocations.iter().filter(|a| a.removed) {
        kv.purge_namespace(&allocation_ns(&a.job, &a.worker_ip));
    }
}
