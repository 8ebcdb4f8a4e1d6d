//! The build-time Prometheus catalog across all jobs: every job's scrape and alert files validated,
//! scrape job names and alert names unique bucket-wide, and the values of KV `maand/prometheus`
//! plus each job's resolved scrape `job_name`.

use super::alerts::parse_alerts;
use super::files::PrometheusFiles;
use super::scrape::parse_scrape;
use crate::{Error, ErrorKind, Result};
use serde_json::Value;
use std::collections::BTreeMap;

/// One job's input: its `_prometheus/` files (a `scrape.yaml.tpl` already rendered into
/// `scrape_text`), declared port names and whether it has active allocations.
pub struct JobPrometheusInput<'a> {
    pub job: &'a str,
    pub files: &'a PrometheusFiles,
    /// `(job-relative path, text)` of the scrape file after rendering.
    pub scrape: Option<(&'a str, String)>,
    pub ports: Vec<String>,
    pub has_active_allocations: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrometheusCatalog {
    /// The whole `maand/prometheus` namespace.
    pub kv: BTreeMap<String, String>,
    /// Job → the `job_name` of its first scrape config (`maand:job` resolved).
    pub job_names: BTreeMap<String, String>,
}

/// The empty catalog (no server job): `scrape_configs = []`, no scrape jobs.
pub fn empty_kv() -> BTreeMap<String, String> {
    [("scrape_configs", "[]"), ("scrape_jobs", ""), ("scrape_jobs_length", "0")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Validate every job's files and assemble the catalog (jobs in the given order).
pub fn build_catalog(jobs: &[JobPrometheusInput<'_>]) -> Result<PrometheusCatalog> {
    let mut out = PrometheusCatalog { kv: empty_kv(), job_names: BTreeMap::new() };
    let mut scrape_owner: BTreeMap<String, String> = BTreeMap::new();
    let mut alert_owner: BTreeMap<String, String> = BTreeMap::new();
    let mut aggregate: Vec<Value> = Vec::new();
    let mut scrape_jobs: Vec<&str> = Vec::new();
    for input in jobs {
        let job = input.job;
        if job == "maand" && !input.files.alerts.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidJob,
                "job maand: the name maand is reserved for maand's own alert rules (rules/maand); rename the job",
            ));
        }
        for (file, text) in &input.files.alerts {
            let parsed = parse_alerts(job, file, text, &input.files.runbooks)?;
            for alert in parsed.alerts {
                if let Some(other) = alert_owner.insert(alert.clone(), format!("{job} ({file})")) {
                    return Err(super::file_error(
                        job,
                        &format!("_prometheus/alerts/{file}"),
                        format!("duplicate alert name {alert:?} (also in job {other}); alert names must be unique in the bucket"),
                    ));
                }
            }
        }
        let Some((path, text)) = &input.scrape else { continue };
        let parsed = parse_scrape(job, path, text, &input.ports)?;
        for name in &parsed.job_names {
            if let Some(other) = scrape_owner.insert(name.clone(), job.to_string()) {
                let also = if other == job { "twice in this file".to_string() } else { format!("also in job {other}") };
                return Err(super::file_error(
                    job,
                    path,
                    format!("duplicate scrape job_name {name:?} ({also}); job names must be unique in the bucket"),
                ));
            }
        }
        if let Some(first) = parsed.job_names.first() {
            out.job_names.insert(job.to_string(), first.clone());
        }
        out.kv.insert(format!("scrape/{job}"), Value::Array(parsed.configs.clone()).to_string());
        if input.has_active_allocations || !parsed.uses_ports {
            aggregate.extend(parsed.configs);
            scrape_jobs.push(job);
        }
    }
    out.kv.insert("scrape_configs".into(), Value::Array(aggregate).to_string());
    out.kv.insert("scrape_jobs".into(), scrape_jobs.join(","));
    out.kv.insert("scrape_jobs_length".into(), scrape_jobs.len().to_string());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(entries: &[(&str, &str)]) -> PrometheusFiles {
        PrometheusFiles::from_files("x", entries.iter().map(|(p, c)| (*p, c.as_bytes(), false))).unwrap()
    }

    const SCRAPE: &str = "- job_name: maand:job\n  static_configs: [{targets: ['maand:port/_implicit']}]\n";

    fn input<'a>(job: &'a str, f: &'a PrometheusFiles, active: bool) -> JobPrometheusInput<'a> {
        JobPrometheusInput {
            job,
            files: f,
            scrape: f.scrape_yaml.clone().map(|t| (super::super::SCRAPE_YAML, t)),
            ports: vec![format!("{job}_metrics_port")],
            has_active_allocations: active,
        }
    }

    #[test]
    fn catalog_kv_and_job_names() {
        let a = files(&[("_prometheus/scrape.yaml", SCRAPE)]);
        let b = files(&[("_prometheus/scrape.yaml", SCRAPE)]);
        let c = files(&[("_prometheus/scrape.yaml", "- job_name: static\n  static_configs: [{targets: ['h:1']}]\n")]);
        let none = files(&[]);
        let cat = build_catalog(&[
            input("a", &a, true),
            input("b", &b, false),
            input("c", &c, false),
            input("d", &none, true),
        ])
        .unwrap();
        assert_eq!(cat.kv["scrape_jobs"], "a,c", "b uses ports but has no active allocation");
        assert_eq!(cat.kv["scrape_jobs_length"], "2");
        assert!(cat.kv.contains_key("scrape/b"));
        let agg: Vec<Value> = serde_json::from_str(&cat.kv["scrape_configs"]).unwrap();
        assert_eq!(agg.len(), 2);
        assert_eq!(cat.job_names["a"], "a");
        assert_eq!(cat.job_names["c"], "static");
        assert_eq!(build_catalog(&[]).unwrap().kv, empty_kv());
    }

    #[test]
    fn duplicate_scrape_job_names_and_alert_names() {
        let fixed = "- job_name: same\n  static_configs: [{targets: ['h:1']}]\n";
        let a = files(&[("_prometheus/scrape.yaml", fixed)]);
        let b = files(&[("_prometheus/scrape.yaml", fixed)]);
        let e = build_catalog(&[input("a", &a, true), input("b", &b, true)]).unwrap_err().to_string();
        assert!(e.contains("workspace/jobs/b/_prometheus/scrape.yaml"), "{e}");
        assert!(e.contains("duplicate scrape job_name \"same\" (also in job a)"), "{e}");

        let rules = "groups: [{name: g, rules: [{alert: down, expr: up == 0}]}]";
        let a = files(&[("_prometheus/alerts/a.yaml", rules)]);
        let b = files(&[("_prometheus/alerts/b.yaml", rules)]);
        let e = build_catalog(&[input("a", &a, true), input("b", &b, true)]).unwrap_err().to_string();
        assert!(e.contains("workspace/jobs/b/_prometheus/alerts/b.yaml"), "{e}");
        assert!(e.contains("duplicate alert name \"down\" (also in job a (a.yaml))"), "{e}");

        let m = files(&[("_prometheus/alerts/a.yaml", rules)]);
        assert!(build_catalog(&[input("maand", &m, true)]).unwrap_err().to_string().contains("reserved"));
    }
}
