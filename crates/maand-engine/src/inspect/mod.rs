//! Read-only inspection behind `maand info`, `maand cat …` and `maand rollback --list`: each
//! function returns a [`Table`] the CLI prints as a box table or as JSON (an array of objects
//! keyed by the column keys).

mod catalog_views;
mod certs;
mod info;
mod kv;
mod releases;
mod table;

pub use catalog_views::{allocations, deployments, job_commands, job_ports, jobs, rollout_state, workers};
pub use certs::{cert_inventory, certs, CertEntry};
pub use info::{info, Info};
pub use kv::{kv_get, kv_list, KvGet, KvListOptions};
pub use releases::releases;
pub use table::{Column, Table};

use maand_core::{Error, Result};

/// `--jobs` / `--workers` filters: empty = everything; otherwise at least one name must exist.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub jobs: Vec<String>,
    pub workers: Vec<String>,
}

impl Filter {
    pub fn job_ok(&self, job: &str) -> bool {
        self.jobs.is_empty() || self.jobs.iter().any(|j| j == job)
    }
    pub fn worker_ok(&self, ip: &str) -> bool {
        self.workers.is_empty() || self.workers.iter().any(|w| w == ip)
    }
}

/// Refuse a filter that names nothing the catalog has (`invalid input, jobs [x]`).
pub(crate) fn check_filter(kind: &str, wanted: &[String], known: &[String]) -> Result<()> {
    if wanted.is_empty() || wanted.iter().any(|w| known.contains(w)) {
        return Ok(());
    }
    Err(Error::msg(format!(
        "invalid input, {kind} [{}]: none of them is in this bucket (see maand cat {kind})",
        wanted.join(" ")
    )))
}
