//! Sorting a job's stored files into its `_prometheus/` parts: the scrape file (plain or
//! template), alert rule files, runbooks and dashboards (with `.dashboardignore`).

use super::file_error;
use crate::Result;
use std::collections::BTreeMap;

pub const SCRAPE_YAML: &str = "_prometheus/scrape.yaml";
pub const SCRAPE_TPL: &str = "_prometheus/scrape.yaml.tpl";
const ALERTS_DIR: &str = "_prometheus/alerts/";
const RUNBOOKS_DIR: &str = "_prometheus/runbooks/";
const DASHBOARDS_DIR: &str = "_prometheus/dashboards/";
const DASHBOARD_IGNORE: &str = ".dashboardignore";

/// A job is the Prometheus server job when it ships `prometheus.yml` or `prometheus.yml.tpl`.
pub fn is_server_job<'a>(mut paths: impl Iterator<Item = &'a str>) -> bool {
    paths.any(|p| p == "prometheus.yml" || p == "prometheus.yml.tpl")
}

/// The `_prometheus/` files of one job, paths relative to the job directory.
#[derive(Debug, Clone, Default)]
pub struct PrometheusFiles {
    pub scrape_yaml: Option<String>,
    pub scrape_tpl: Option<String>,
    /// `alerts/<file>.yaml` file name → text.
    pub alerts: BTreeMap<String, String>,
    /// Runbook name (file stem of `runbooks/<name>.md`) → Markdown.
    pub runbooks: BTreeMap<String, String>,
    /// Path below `dashboards/` → content (`.dashboardignore` excluded).
    pub dashboards: BTreeMap<String, Vec<u8>>,
    pub dashboard_ignore: Vec<String>,
}

impl PrometheusFiles {
    /// Pick the `_prometheus/` files out of `(path, content, isdir)` entries. Text files must be
    /// UTF-8; the error names the file.
    pub fn from_files<'a>(job: &str, files: impl Iterator<Item = (&'a str, &'a [u8], bool)>) -> Result<Self> {
        let mut out = PrometheusFiles::default();
        let text = |path: &str, content: &[u8]| {
            String::from_utf8(content.to_vec()).map_err(|_| file_error(job, path, "not valid UTF-8 text"))
        };
        for (path, content, isdir) in files {
            if isdir || !path.starts_with("_prometheus/") {
                continue;
            }
            if path == SCRAPE_YAML {
                out.scrape_yaml = Some(text(path, content)?);
            } else if path == SCRAPE_TPL {
                out.scrape_tpl = Some(text(path, content)?);
            } else if let Some(name) = path.strip_prefix(ALERTS_DIR) {
                if !name.contains('/') && name.ends_with(".yaml") {
                    out.alerts.insert(name.to_string(), text(path, content)?);
                }
            } else if let Some(name) = path.strip_prefix(RUNBOOKS_DIR) {
                if let Some(stem) = name.strip_suffix(".md").filter(|s| !s.contains('/') && !s.is_empty()) {
                    out.runbooks.insert(stem.to_string(), text(path, content)?);
                }
            } else if let Some(rel) = path.strip_prefix(DASHBOARDS_DIR) {
                if rel == DASHBOARD_IGNORE {
                    out.dashboard_ignore = text(path, content)?
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .map(str::to_string)
                        .collect();
                } else {
                    out.dashboards.insert(rel.to_string(), content.to_vec());
                }
            }
        }
        Ok(out)
    }

    /// True when the job ships anything Prometheus-related.
    pub fn is_empty(&self) -> bool {
        self.scrape_yaml.is_none()
            && self.scrape_tpl.is_none()
            && self.alerts.is_empty()
            && self.runbooks.is_empty()
            && self.dashboards.is_empty()
    }

    /// The scrape file's path and whether it is a template; both present is an error.
    pub fn scrape_source(&self, job: &str) -> Result<Option<(&'static str, &str)>> {
        match (&self.scrape_yaml, &self.scrape_tpl) {
            (Some(_), Some(_)) => {
                Err(file_error(job, "_prometheus", "cannot define both scrape.yaml and scrape.yaml.tpl; keep one"))
            }
            (Some(text), None) => Ok(Some((SCRAPE_YAML, text))),
            (None, Some(text)) => Ok(Some((SCRAPE_TPL, text))),
            (None, None) => Ok(None),
        }
    }

    /// Dashboard paths listed in the index: every file not matched by `.dashboardignore`.
    pub fn indexed_dashboards(&self) -> Vec<&str> {
        self.dashboards
            .keys()
            .filter(|p| !self.dashboard_ignore.iter().any(|pat| crate::globs::glob_matches(pat, p)))
            .map(String::as_str)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(entries: &[(&str, &str)]) -> PrometheusFiles {
        PrometheusFiles::from_files("app", entries.iter().map(|(p, c)| (*p, c.as_bytes(), false))).unwrap()
    }

    #[test]
    fn sorts_files_into_parts() {
        let f = files(&[
            ("Makefile", ""),
            ("_prometheus/scrape.yaml", "[]"),
            ("_prometheus/alerts/a.yaml", "groups: []"),
            ("_prometheus/alerts/notes.txt", "x"),
            ("_prometheus/runbooks/disk-full.md", "# Disk"),
            ("_prometheus/dashboards/main.html", "<p>"),
            ("_prometheus/dashboards/detail.html", "<p>"),
            ("_prometheus/dashboards/.dashboardignore", "# comment\ndetail.html\n"),
        ]);
        assert_eq!(f.scrape_yaml.as_deref(), Some("[]"));
        assert_eq!(f.alerts.keys().collect::<Vec<_>>(), ["a.yaml"]);
        assert_eq!(f.runbooks.keys().collect::<Vec<_>>(), ["disk-full"]);
        assert_eq!(f.dashboards.len(), 2);
        assert_eq!(f.indexed_dashboards(), ["main.html"]);
        assert!(!f.is_empty());
        assert!(files(&[("Makefile", "")]).is_empty());
    }

    #[test]
    fn both_scrape_files_are_refused() {
        let f = files(&[("_prometheus/scrape.yaml", "[]"), ("_prometheus/scrape.yaml.tpl", "[]")]);
        let e = f.scrape_source("app").unwrap_err().to_string();
        assert!(e.contains("cannot define both scrape.yaml and scrape.yaml.tpl"), "{e}");
        assert!(e.contains("workspace/jobs/app/_prometheus"), "{e}");
    }

    #[test]
    fn server_job_detection() {
        assert!(is_server_job(["Makefile", "prometheus.yml.tpl"].into_iter()));
        assert!(!is_server_job(["Makefile", "conf/prometheus.yml"].into_iter()));
    }
}
