//! Build step 10 (`BuildPrometheusCatalog`, spec/features.md §10.2): with a Prometheus server job
//! (a job shipping `prometheus.yml` or `prometheus.yml.tpl`) every job's `_prometheus/` files are
//! validated — `scrape.yaml.tpl` rendered first — and KV `maand/prometheus` plus each job's
//! `job_name` are written. Without one the scrape catalog is empty and nothing is validated.

use super::catalog_rows::CatalogState;
use super::variables::job_ns;
use super::workspace::{JobSource, Workspace};
use crate::deploy::KvTemplateData;
use crate::template::{render_within, Limits, TemplateContext};
use maand_core::prometheus::{
    build_catalog, empty_kv, is_server_job, scrape_template_namespaces, JobPrometheusInput, PrometheusFiles,
    PROMETHEUS_NS, SCRAPE_TPL,
};
use maand_core::{Error, ErrorKind, Result};
use maand_store::kv::KvStore;
use maand_store::secrets::SecretKey;
use std::collections::{BTreeMap, BTreeSet};

pub fn has_server_job(ws: &Workspace) -> bool {
    ws.jobs.values().any(|j| is_server_job(j.files.iter().map(|f| f.path.as_str())))
}

/// The `_prometheus/` files of a workspace job.
fn prometheus_files(job: &str, src: &JobSource) -> Result<PrometheusFiles> {
    PrometheusFiles::from_files(job, src.files.iter().map(|f| (f.path.as_str(), f.content.as_slice(), f.isdir)))
}

pub fn write_scrape_catalog(
    kv: &mut KvStore,
    ws: &Workspace,
    state: &CatalogState,
    key: Option<&SecretKey>,
    template_limits: Limits,
) -> Result<()> {
    if !has_server_job(ws) {
        kv.sync_namespace(PROMETHEUS_NS, &empty_kv());
        return Ok(());
    }
    let mut files = BTreeMap::new();
    for (job, src) in &ws.jobs {
        files.insert(job.as_str(), prometheus_files(job, src)?);
    }
    let active: BTreeSet<&str> = state.allocations.iter().filter(|a| a.is_active()).map(|a| a.job.as_str()).collect();
    let mut inputs = Vec::new();
    for (job, f) in &files {
        let src = &ws.jobs[*job];
        let scrape = match f.scrape_source(job)? {
            Some((path, text)) if path == SCRAPE_TPL => {
                Some((path, render_scrape_template(kv, key, job, src, text, template_limits)?))
            }
            Some((path, text)) => Some((path, text.to_string())),
            None => None,
        };
        inputs.push(JobPrometheusInput {
            job,
            files: f,
            scrape,
            ports: src.manifest.ports.iter().map(|(name, _)| name.clone()).collect(),
            has_active_allocations: active.contains(job),
        });
    }
    let catalog = build_catalog(&inputs)?;
    kv.sync_namespace(PROMETHEUS_NS, &catalog.kv);
    for (job, name) in &catalog.job_names {
        if kv.get(&job_ns(job), "job_name").is_some() {
            kv.put(&job_ns(job), "job_name", name);
        }
    }
    Ok(())
}

/// Render `scrape.yaml.tpl` with the restricted build-time map: `.Job`, `.CurrentVersion` and
/// `.NewVersion` (both the job's version), `get`/`getSecret`/`keys` over the job's namespaces.
fn render_scrape_template(
    kv: &KvStore,
    key: Option<&SecretKey>,
    job: &str,
    src: &JobSource,
    text: &str,
    template_limits: Limits,
) -> Result<String> {
    let m = &src.manifest;
    let upstream: BTreeSet<String> =
        m.commands.iter().filter_map(|c| c.demand.as_ref()).map(|d| d.job.clone()).collect();
    let upstream: Vec<String> = upstream.into_iter().collect();
    let version = m.version.as_ref().map(|v| v.to_string()).unwrap_or_else(|| "0.0.0".into());
    let ctx = TemplateContext {
        job: job.to_string(),
        current_version: version.clone(),
        new_version: version,
        ..Default::default()
    };
    let data = KvTemplateData::with_namespaces(kv, key, job, scrape_template_namespaces(job, &upstream));
    render_within(SCRAPE_TPL, text, &ctx, &data, template_limits)
        .map_err(|e| Error::new(ErrorKind::InvalidJob, format!("job {job}: workspace/jobs/{job}/{SCRAPE_TPL}: {e}")))
}
