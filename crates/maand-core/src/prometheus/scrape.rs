//! One job's scrape file: a YAML array of Prometheus `scrape_config` objects, validated (no
//! service discovery, `static_configs` with targets, placeholders naming declared ports) and kept
//! as JSON values in file order.

use super::file_error;
use super::placeholder::{parse_target, TargetSpec};
use crate::Result;
use serde_json::Value;

/// A validated scrape file.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeFile {
    /// The configs as written (placeholders unexpanded).
    pub configs: Vec<Value>,
    /// `job_name` of each config with `maand:job` replaced by the job name.
    pub job_names: Vec<String>,
    /// Whether any target uses a `maand:port/…` placeholder.
    pub uses_ports: bool,
}

/// `maand:job` in a job name or label value → the job's name.
pub(crate) fn resolve_job_placeholder(value: &str, job: &str) -> String {
    value.replace("maand:job", job)
}

/// Parse and validate the scrape file `file` (job-relative path) of `job`.
pub fn parse_scrape(job: &str, file: &str, text: &str, ports: &[String]) -> Result<ScrapeFile> {
    let err = |problem: String| file_error(job, file, problem);
    let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| err(format!("not valid YAML: {e}")))?;
    let items = match doc {
        Value::Array(items) if !items.is_empty() => items,
        Value::Array(_) | Value::Null => return Err(err("expected a non-empty YAML list of scrape configs".into())),
        _ => return Err(err("expected a YAML list of scrape configs (- job_name: …)".into())),
    };
    let mut job_names = Vec::new();
    let mut uses_ports = false;
    for (i, item) in items.iter().enumerate() {
        let Value::Object(config) = item else {
            return Err(err(format!("item {i} is not a mapping")));
        };
        let name = match config.get("job_name") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            _ => return Err(err(format!("item {i}: job_name is required"))),
        };
        let at = |problem: String| err(format!("scrape config {name}: {problem}"));
        if let Some(key) = config.keys().find(|k| k.ends_with("_sd_configs")) {
            return Err(at(format!("{key} is not supported (use static_configs with maand:port placeholders)")));
        }
        let statics = match config.get("static_configs") {
            Some(Value::Array(list)) if !list.is_empty() => list,
            _ => return Err(at("static_configs is required (a non-empty list)".into())),
        };
        for (j, sc) in statics.iter().enumerate() {
            let targets = match sc.get("targets") {
                Some(Value::Array(t)) if !t.is_empty() => t,
                _ => return Err(at(format!("static_configs[{j}]: targets is required (a non-empty list)"))),
            };
            for t in targets {
                let Some(target) = t.as_str().filter(|s| !s.trim().is_empty()) else {
                    return Err(at(format!("static_configs[{j}]: every target must be a non-empty string")));
                };
                if let TargetSpec::Port { .. } = parse_target(target, job, ports).map_err(&at)? {
                    uses_ports = true;
                }
            }
            match sc.get("labels") {
                None | Some(Value::Object(_)) => {}
                Some(_) => return Err(at(format!("static_configs[{j}]: labels must be a mapping"))),
            }
        }
        job_names.push(resolve_job_placeholder(&name, job));
    }
    Ok(ScrapeFile { configs: items, job_names, uses_ports })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "_prometheus/scrape.yaml";

    fn parse(text: &str) -> Result<ScrapeFile> {
        parse_scrape("app", FILE, text, &["app_metrics_port".to_string()])
    }

    fn problem(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn valid_file_keeps_configs_and_resolves_names() {
        let f = parse(
            "- job_name: maand:job\n  metrics_path: /m\n  static_configs:\n    - targets: ['maand:port/app_metrics_port']\n      labels: {maand_job: 'maand:job'}\n- job_name: extra\n  static_configs:\n    - targets: ['10.1.1.1:9100']\n",
        )
        .unwrap();
        assert_eq!(f.job_names, ["app", "extra"]);
        assert!(f.uses_ports);
        assert_eq!(f.configs[0]["job_name"], "maand:job");
        let keys: Vec<&String> = f.configs[0].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["job_name", "metrics_path", "static_configs"], "key order is kept");
        let literal = parse("- job_name: x\n  static_configs: [{targets: ['h:1']}]\n").unwrap();
        assert!(!literal.uses_ports);
    }

    #[test]
    fn errors_name_file_and_problem() {
        let e = problem("- job_name: app\n  kubernetes_sd_configs: []\n  static_configs: [{targets: ['h:1']}]\n");
        assert!(e.starts_with("invalid job: job app: workspace/jobs/app/_prometheus/scrape.yaml: "), "{e}");
        assert!(e.contains("scrape config app: kubernetes_sd_configs is not supported"), "{e}");
        let e = problem("- job_name: app\n  static_configs: [{targets: ['maand:port/http']}]\n");
        assert!(e.contains("port http is not declared in resources.ports of job app"), "{e}");
        assert!(problem("job_name: app\n").contains("expected a YAML list"));
        assert!(problem("[]").contains("non-empty YAML list"));
        assert!(problem("- static_configs: []\n").contains("item 0: job_name is required"));
        assert!(problem("- job_name: a\n").contains("static_configs is required"));
        assert!(problem("- job_name: a\n  static_configs: [{labels: {}}]\n").contains("targets is required"));
        assert!(problem("- job_name: a\n  static_configs: [{targets: [1]}]\n").contains("non-empty string"));
        assert!(problem("- job_name: a\n  static_configs: [{targets: ['h:1'], labels: [x]}]\n")
            .contains("labels must be a mapping"));
        assert!(problem("- job_name: [").contains("not valid YAML"));
    }
}
