//! Build step 10: the `maand/prometheus` namespace. Without a Prometheus server job (a job
//! shipping `prometheus.yml` or `prometheus.yml.tpl`) the scrape catalog is empty and `_prometheus/`
//! is not validated (spec/features.md §10.2). Assembling the catalog for a server job is the
//! Prometheus integration's work.

use super::workspace::Workspace;
use maand_store::kv::KvStore;
use std::collections::BTreeMap;

pub const PROMETHEUS_NS: &str = "maand/prometheus";

pub fn has_server_job(ws: &Workspace) -> bool {
    ws.jobs.values().any(|j| j.files.iter().any(|f| f.path == "prometheus.yml" || f.path == "prometheus.yml.tpl"))
}

pub fn write_scrape_catalog(kv: &mut KvStore, ws: &Workspace) {
    if has_server_job(ws) {
        // The scrape catalog of a server job is built by the Prometheus integration (not yet
        // available): keep whatever an earlier build wrote rather than clearing it.
        return;
    }
    let empty: BTreeMap<String, String> = [
        ("scrape_configs".to_string(), "[]".to_string()),
        ("scrape_jobs".to_string(), String::new()),
        ("scrape_jobs_length".to_string(), "0".to_string()),
    ]
    .into();
    kv.sync_namespace(PROMETHEUS_NS, &empty);
}
