//! What deploy adds to the Prometheus server job's staged tree (spec/features.md §10.2): the
//! `{{ scrapeConfigs }}` / `{{ ruleFiles }}` fragments, `rules/<job>/*.yaml` with runbook links,
//! `rules/maand/certs.yaml`, `consoles/runbooks/` and `consoles/dashboards/`.

use super::cert_rules::{CERT_RULES_PATH, CERT_RULES_YAML};
use super::dashboards::dashboard_files;
use super::live::LiveCatalog;
use super::runbooks::runbook_pages;
use crate::deploy::PrometheusFragments;
use maand_core::prometheus::{
    is_server_job, parse_alerts, rewrite_alerts, rule_files_fragment, runbook_slug, scrape_configs_fragment,
};
use maand_core::{Error, ErrorKind, Result};
use maand_store::kv::KvStore;
use rusqlite::Connection;
use std::path::Path;

/// The port of the server job that runbook links and the certificate metrics push use.
pub const HTTP_PORT: &str = "prometheus_port_http";

/// Everything the server job's allocations get besides their own files.
pub struct ServerAssets {
    pub job: String,
    pub fragments: PrometheusFragments,
    live: LiveCatalog,
}

impl ServerAssets {
    /// The assets when `job` (whose stored files are `paths`) is a Prometheus server job.
    pub fn load<'a>(
        conn: &Connection,
        kv: &KvStore,
        job: &str,
        mut paths: impl Iterator<Item = &'a str>,
    ) -> Result<Option<ServerAssets>> {
        if !is_server_job(&mut paths) {
            return Ok(None);
        }
        let live = LiveCatalog::load(conn)?;
        let scrape_configs = scrape_configs_fragment(&live.expanded_scrape_configs(kv, &[]))
            .map_err(|e| Error::new(ErrorKind::Unexpected, format!("job {job}: {e}")))?;
        let fragments = PrometheusFragments { scrape_configs, rule_files: rule_files_fragment(&live.rule_files()) };
        Ok(Some(ServerAssets { job: job.to_string(), fragments, live }))
    }

    /// Write rules and consoles into the staged job directory of the allocation on `worker_ip`.
    pub fn write_into(&self, dir: &Path, worker_ip: &str) -> Result<()> {
        let job = &self.job;
        let needs_port = self.live.files.values().any(|f| !f.runbooks.is_empty());
        let port = self.live.port(job, HTTP_PORT);
        if needs_port && port.is_none() {
            return Err(Error::new(
                ErrorKind::InvalidJob,
                format!("job {job}: the Prometheus server job needs port {HTTP_PORT} in resources.ports (runbook links point at it)"),
            ));
        }
        let port = port.unwrap_or_default();
        for (alert_job, files) in &self.live.files {
            for (file, text) in &files.alerts {
                let parsed = parse_alerts(alert_job, file, text, &files.runbooks)?;
                let url = |name: &str| {
                    format!("http://{worker_ip}:{port}/consoles/runbooks/{alert_job}/{}.html", runbook_slug(name))
                };
                let yaml = rewrite_alerts(&parsed.doc, &url)
                    .map_err(|e| Error::new(ErrorKind::Unexpected, format!("job {alert_job}: alerts/{file}: {e}")))?;
                write(dir, &format!("rules/{alert_job}/{file}"), yaml.as_bytes())?;
            }
        }
        write(dir, CERT_RULES_PATH, CERT_RULES_YAML.as_bytes())?;
        for (rel, html) in runbook_pages(&self.live.files) {
            write(dir, &format!("consoles/runbooks/{rel}"), html.as_bytes())?;
        }
        for (rel, content) in dashboard_files(&self.live.files) {
            write(dir, &format!("consoles/dashboards/{rel}"), &content)?;
        }
        Ok(())
    }
}

fn write(dir: &Path, rel: &str, content: &[u8]) -> Result<()> {
    crate::deploy::write_staged(&dir.join(rel), content, 0o644)
}
