//! `maand cat prometheus`: which jobs ship what under `_prometheus/`, one of those files, and the
//! scrape configs exactly as the server job's `{{ scrapeConfigs }}` expands them.

use super::live::LiveCatalog;
use crate::bucket::Bucket;
use crate::inspect::Table;
use maand_core::prometheus::{parse_alerts, scrape_configs_fragment, PrometheusFiles, SCRAPE_TPL, SCRAPE_YAML};
use maand_core::{Error, Result};
use maand_store::catalog;
use maand_store::kv::KvStore;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The bucket directory: `start` or the nearest parent holding `maand.conf` or `data/maand.db`
/// (`cat prometheus` may run from inside the workspace); `start` itself when none does.
pub fn find_bucket_root(start: &Path) -> PathBuf {
    let start = std::fs::canonicalize(start).unwrap_or_else(|_| start.to_path_buf());
    start
        .ancestors()
        .find(|dir| dir.join("maand.conf").is_file() || dir.join("data/maand.db").is_file())
        .map(Path::to_path_buf)
        .unwrap_or(start)
}

/// One row per job shipping `_prometheus/` files: the scrape file, alert names, runbook names and
/// dashboard paths.
pub fn prometheus_jobs(bucket: &Bucket, jobs: &[String]) -> Result<Table> {
    let live = LiveCatalog::load(&bucket.connect()?)?;
    let known: Vec<String> = live.files.keys().cloned().collect();
    crate::inspect::check_filter("jobs", jobs, &known)?;
    let mut t = Table::new(&[
        ("job", "job"),
        ("scrape", "scrape"),
        ("alerts", "alerts"),
        ("runbooks", "runbooks"),
        ("dashboards", "dashboards"),
    ]);
    for (job, f) in live.files.iter().filter(|(j, f)| !f.is_empty() && (jobs.is_empty() || jobs.contains(j))) {
        let scrape = match (&f.scrape_yaml, &f.scrape_tpl) {
            (Some(_), _) => "scrape.yaml",
            (None, Some(_)) => "scrape.yaml.tpl",
            (None, None) => "",
        };
        t.push(vec![
            json!(job),
            json!(scrape),
            json!(alert_names(job, f)),
            json!(f.runbooks.keys().collect::<Vec<_>>()),
            json!(f.dashboards.keys().collect::<Vec<_>>()),
        ]);
    }
    Ok(t)
}

/// Alert names of a job's rule files (a file that does not parse counts by its name).
fn alert_names(job: &str, f: &PrometheusFiles) -> Vec<String> {
    f.alerts
        .iter()
        .flat_map(|(file, text)| match parse_alerts(job, file, text, &f.runbooks) {
            Ok(parsed) => parsed.alerts,
            Err(_) => vec![format!("{file} (invalid)")],
        })
        .collect()
}

/// A file under the job's `_prometheus/` (`scrape` = its scrape file), from the catalog, else from
/// the workspace.
pub fn prometheus_file(bucket: &Bucket, job: &str, path: &str) -> Result<String> {
    let conn = bucket.connect()?;
    let stored = catalog::load_job_files(&conn, job)?;
    let candidates: Vec<String> = match path.trim_start_matches("./") {
        "scrape" => vec![SCRAPE_YAML.to_string(), SCRAPE_TPL.to_string()],
        rel => vec![format!("_prometheus/{rel}")],
    };
    for rel in &candidates {
        if let Some(f) = stored.iter().find(|f| &f.path == rel && !f.isdir) {
            return Ok(String::from_utf8_lossy(&f.content).into_owned());
        }
        let on_disk = bucket.paths.jobs_dir().join(job).join(rel);
        if rel.split('/').all(|part| part != "..") && on_disk.is_file() {
            return std::fs::read_to_string(&on_disk).map_err(|e| Error::msg(format!("{}: {e}", on_disk.display())));
        }
    }
    Err(Error::msg(format!(
        "prometheus file not found: job {job}, {} (neither in the catalog nor in workspace/jobs/{job}; see maand cat prometheus)",
        candidates.join(" or ")
    )))
}

/// Expanded scrape configs as values and as the `{{ scrapeConfigs }}` text.
pub struct ScrapeView {
    pub configs: Vec<Value>,
    pub fragment: String,
}

/// The expanded scrape configs of the scrape jobs (only `jobs` when given).
pub fn prometheus_scrape(bucket: &Bucket, jobs: &[String]) -> Result<ScrapeView> {
    let conn = bucket.connect()?;
    let live = LiveCatalog::load(&conn)?;
    let known: Vec<String> = live.files.keys().cloned().collect();
    crate::inspect::check_filter("jobs", jobs, &known)?;
    let configs = live.expanded_scrape_configs(&KvStore::load(&conn)?, jobs);
    let fragment = scrape_configs_fragment(&configs).map_err(Error::msg)?;
    Ok(ScrapeView { configs, fragment })
}
