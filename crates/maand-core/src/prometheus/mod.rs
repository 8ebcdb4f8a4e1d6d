//! The Prometheus integration's decisions (spec/features.md §10.2): which `_prometheus/` files a
//! job ships, scrape-config and alert-rule validation, the build-time scrape catalog, expansion of
//! `maand:` placeholders against live allocations, and the `scrapeConfigs` / `ruleFiles` fragments.

mod alerts;
mod catalog;
mod expand;
mod files;
mod placeholder;
mod scrape;
mod scrape_template;

pub use alerts::{parse_alerts, rewrite_alerts, runbook_slug, AlertsFile};
pub use catalog::{build_catalog, empty_kv, JobPrometheusInput, PrometheusCatalog};
pub use expand::{expand_configs, rule_files_fragment, scrape_configs_fragment, LiveJob};
pub use files::{is_server_job, PrometheusFiles, SCRAPE_TPL, SCRAPE_YAML};
pub use placeholder::{parse_target, TargetSpec};
pub use scrape::{parse_scrape, ScrapeFile};
pub use scrape_template::scrape_template_namespaces;

/// KV namespace of the scrape catalog.
pub const PROMETHEUS_NS: &str = "maand/prometheus";

use crate::{Error, ErrorKind};

/// `invalid job: job <job>: <file>: <problem>` — the error of every bad `_prometheus/` file.
pub(crate) fn file_error(job: &str, file: &str, problem: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::InvalidJob, format!("job {job}: workspace/jobs/{job}/{file}: {problem}"))
}
