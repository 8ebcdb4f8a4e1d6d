//! Placement of jobs on workers by labels (spec §2.11), label/selector normalisation, the
//! `min_allocations_count` check (§2.2) and the per-worker capacity check of build step 12 (§4).

use crate::workers::WorkerSpec;
use crate::{Error, ErrorKind, Result};

/// Labels and selectors as maand compares them: trimmed, lower-cased, empties dropped,
/// duplicates removed (first occurrence kept, order otherwise preserved).
pub fn normalize_labels<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let label = item.trim().to_lowercase();
        if !label.is_empty() && !out.contains(&label) {
            out.push(label);
        }
    }
    out
}

/// `(job, worker host)` for every worker (input order) and job (input order) such that every
/// selector of the job is one of the worker's labels, compared case-insensitively. A job with no
/// selectors is placed nowhere (effective selectors are never empty: they default to the job name).
pub fn place(workers: &[WorkerSpec], jobs: &[(String, Vec<String>)]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for worker in workers {
        let labels: Vec<String> = worker.labels.iter().map(|l| l.trim().to_lowercase()).collect();
        for (job, selectors) in jobs {
            let matches =
                !selectors.is_empty() && selectors.iter().all(|s| labels.iter().any(|l| *l == s.trim().to_lowercase()));
            if matches {
                out.push((job.clone(), worker.host.clone()));
            }
        }
    }
    out
}

/// `counts` = (job, non-removed allocation count, min_allocations_count). Every job below its
/// minimum is listed, one per line.
pub fn validate_min_allocations(counts: &[(String, i64, i64)]) -> Result<()> {
    let failures: Vec<String> = counts
        .iter()
        .filter(|(_, count, min)| count < min)
        .map(|(job, count, min)| {
            format!(
                "job {job} has {count} allocation(s), min_allocations_count is {min} \
                 (label more workers with the job's selectors or lower min_allocations_count)"
            )
        })
        .collect();
    collected(ErrorKind::InsufficientAllocations, failures)
}

/// What one worker offers and what its active allocations reserve (build step 12).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerLoad {
    pub ip: String,
    pub available_memory_mb: f64,
    pub available_cpu_mhz: f64,
    pub required_memory_mb: f64,
    pub required_cpu_mhz: f64,
}

/// Every worker whose reservations exceed its capacity (or that declares no capacity while
/// jobs reserve some) is reported; all problems are collected, one per line.
pub fn validate_worker_resources(loads: &[WorkerLoad]) -> Result<()> {
    let mut failures = Vec::new();
    for load in loads {
        let checks = [
            ("memory", "MB", load.available_memory_mb, load.required_memory_mb),
            ("cpu", "MHZ", load.available_cpu_mhz, load.required_cpu_mhz),
        ];
        for (what, unit, available, required) in checks {
            if required <= 0.0 {
                continue;
            }
            let ip = &load.ip;
            if available <= 0.0 {
                failures.push(format!(
                    "worker_ip {ip} must specify {what} in workers.json (allocated jobs require {required:.2} {unit})"
                ));
            } else if required > available {
                failures.push(format!(
                    "worker_ip {ip}, available {what} is {available:.2} {unit}, required {what} is {required:.2} {unit}"
                ));
            }
        }
    }
    collected(ErrorKind::InsufficientResource, failures)
}

fn collected(kind: ErrorKind, failures: Vec<String>) -> Result<()> {
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::new(kind, failures.join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn worker(host: &str, labels: &[&str]) -> WorkerSpec {
        WorkerSpec {
            host: host.into(),
            hostname: None,
            labels: labels.iter().map(|l| l.to_string()).collect(),
            memory_mb: 0.0,
            cpu_mhz: 0.0,
            tags: BTreeMap::new(),
            position: 0,
            port: None,
        }
    }

    fn job(name: &str, selectors: &[&str]) -> (String, Vec<String>) {
        (name.into(), selectors.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn normalizes_labels() {
        assert_eq!(normalize_labels([" Web ", "", "web", "DB", "  "]), vec!["web", "db"]);
    }

    #[test]
    fn places_where_all_selectors_match() {
        let workers = [worker("10.0.0.2", &["worker", "web", "db"]), worker("10.0.0.1", &["worker", "web"])];
        let jobs = [job("api", &["web"]), job("db", &["db", "web"]), job("none", &[]), job("Case", &["WEB"])];
        assert_eq!(
            place(&workers, &jobs),
            vec![
                ("api".to_string(), "10.0.0.2".to_string()),
                ("db".into(), "10.0.0.2".into()),
                ("Case".into(), "10.0.0.2".into()),
                ("api".into(), "10.0.0.1".into()),
                ("Case".into(), "10.0.0.1".into()),
            ]
        );
    }

    #[test]
    fn min_allocations_lists_every_failure() {
        assert!(validate_min_allocations(&[("a".into(), 2, 2), ("b".into(), 0, 0)]).is_ok());
        let e = validate_min_allocations(&[("a".into(), 1, 3), ("b".into(), 5, 1), ("c".into(), 0, 1)]).unwrap_err();
        assert!(e.is(ErrorKind::InsufficientAllocations));
        assert_eq!(
            e.to_string(),
            "missing allocations: job a has 1 allocation(s), min_allocations_count is 3 (label more workers with the \
             job's selectors or lower min_allocations_count)\njob c has 0 allocation(s), min_allocations_count is 1 \
             (label more workers with the job's selectors or lower min_allocations_count)"
        );
    }

    fn load(ip: &str, am: f64, ac: f64, rm: f64, rc: f64) -> WorkerLoad {
        WorkerLoad {
            ip: ip.into(),
            available_memory_mb: am,
            available_cpu_mhz: ac,
            required_memory_mb: rm,
            required_cpu_mhz: rc,
        }
    }

    #[test]
    fn worker_resources_messages() {
        assert!(validate_worker_resources(&[load("a", 1024.0, 1000.0, 1024.0, 1000.0), load("b", 0.0, 0.0, 0.0, 0.0)])
            .is_ok());
        let e = validate_worker_resources(&[
            load("10.0.0.1", 0.0, 2000.0, 512.0, 2500.5),
            load("10.0.0.2", 1024.0, 0.0, 1024.0, 100.0),
        ])
        .unwrap_err();
        assert!(e.is(ErrorKind::InsufficientResource));
        assert_eq!(
            e.to_string(),
            "insufficient resource: worker_ip 10.0.0.1 must specify memory in workers.json (allocated jobs require 512.00 MB)\n\
             worker_ip 10.0.0.1, available cpu is 2000.00 MHZ, required cpu is 2500.50 MHZ\n\
             worker_ip 10.0.0.2 must specify cpu in workers.json (allocated jobs require 100.00 MHZ)"
        );
    }
}
