//! The catalog as Prometheus sees it now: each job's `_prometheus/` files, active allocations and
//! ports — what `{{ scrapeConfigs }}`, `{{ ruleFiles }}` and `maand cat prometheus` are built from.

use maand_core::prometheus::{expand_configs, is_server_job, LiveJob, PrometheusFiles, PROMETHEUS_NS};
use maand_core::Result;
use maand_store::catalog;
use maand_store::kv::KvStore;
use rusqlite::Connection;
use serde_json::Value;
use std::collections::BTreeMap;

pub struct LiveCatalog {
    /// Job → its `_prometheus/` files (every job of the catalog, sorted).
    pub files: BTreeMap<String, PrometheusFiles>,
    /// Jobs shipping `prometheus.yml` or `prometheus.yml.tpl`.
    pub server_jobs: Vec<String>,
    /// Job → active allocations' worker IPs in catalog order.
    pub active: BTreeMap<String, Vec<String>>,
    /// Job → port name → number.
    pub ports: BTreeMap<String, BTreeMap<String, u16>>,
}

impl LiveCatalog {
    pub fn load(conn: &Connection) -> Result<LiveCatalog> {
        let mut files = BTreeMap::new();
        let mut server_jobs = Vec::new();
        for job in catalog::load_job_names(conn)? {
            let stored = catalog::load_job_files(conn, &job)?;
            if is_server_job(stored.iter().map(|f| f.path.as_str())) {
                server_jobs.push(job.clone());
            }
            let f = PrometheusFiles::from_files(
                &job,
                stored.iter().map(|f| (f.path.as_str(), f.content.as_slice(), f.isdir)),
            )?;
            files.insert(job, f);
        }
        server_jobs.sort();
        let mut active: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for a in catalog::load_allocations(conn)?.into_iter().filter(|a| a.is_active()) {
            active.entry(a.job).or_default().push(a.worker_ip);
        }
        let mut ports: BTreeMap<String, BTreeMap<String, u16>> = BTreeMap::new();
        for p in catalog::load_job_ports(conn)? {
            if let Ok(n) = u16::try_from(p.port) {
                ports.entry(p.job).or_default().insert(p.name, n);
            }
        }
        Ok(LiveCatalog { files, server_jobs, active, ports })
    }

    /// The server job that receives certificate metrics: the one named `prometheus`, else the
    /// first in name order.
    pub fn server_job(&self) -> Option<&str> {
        self.server_jobs.iter().find(|j| *j == "prometheus").or(self.server_jobs.first()).map(String::as_str)
    }

    pub fn port(&self, job: &str, name: &str) -> Option<u16> {
        self.ports.get(job).and_then(|p| p.get(name)).copied()
    }

    /// The scrape configs of the jobs in KV `scrape_jobs` (only `only` when given), expanded
    /// against active allocations and ports; configs without targets are left out.
    pub fn expanded_scrape_configs(&self, kv: &KvStore, only: &[String]) -> Vec<Value> {
        let no_ports = BTreeMap::new();
        let scrape_jobs = kv.get(PROMETHEUS_NS, "scrape_jobs").unwrap_or_default();
        let mut out = Vec::new();
        for job in scrape_jobs.split(',').filter(|j| !j.is_empty()) {
            if !only.is_empty() && !only.iter().any(|o| o == job) {
                continue;
            }
            let stored = kv.get(PROMETHEUS_NS, &format!("scrape/{job}")).unwrap_or("[]");
            let configs: Vec<Value> = serde_json::from_str(stored).unwrap_or_default();
            let live = LiveJob {
                job,
                active_ips: self.active.get(job).map(Vec::as_slice).unwrap_or(&[]),
                ports: self.ports.get(job).unwrap_or(&no_ports),
            };
            out.extend(expand_configs(&configs, &live));
        }
        out
    }

    /// `rules/<job>/<file>` of every job's alert files, in job then file order.
    pub fn rule_files(&self) -> Vec<String> {
        self.files.iter().flat_map(|(job, f)| f.alerts.keys().map(move |file| format!("rules/{job}/{file}"))).collect()
    }
}
