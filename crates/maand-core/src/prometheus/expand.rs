//! Expanding a job's stored scrape configs against the live catalog (its active allocations and
//! assigned ports), and the two template fragments of the server job: `{{ scrapeConfigs }}` and
//! `{{ ruleFiles }}`.

use super::placeholder::{parse_target, TargetSpec};
use super::scrape::resolve_job_placeholder;
use serde_json::Value;
use std::collections::BTreeMap;

/// A job as the server scrapes it now.
pub struct LiveJob<'a> {
    pub job: &'a str,
    /// Active allocations' worker IPs in catalog order.
    pub active_ips: &'a [String],
    /// Port name → assigned number.
    pub ports: &'a BTreeMap<String, u16>,
}

/// The configs with `maand:job` resolved in `job_name` and label values and every target
/// expanded; static configs without targets and configs left without any are dropped.
pub fn expand_configs(configs: &[Value], live: &LiveJob<'_>) -> Vec<Value> {
    let port_names: Vec<String> = live.ports.keys().cloned().collect();
    let mut out = Vec::new();
    for config in configs {
        let Value::Object(mut config) = config.clone() else { continue };
        if let Some(Value::String(name)) = config.get_mut("job_name") {
            *name = resolve_job_placeholder(name, live.job);
        }
        let statics = match config.get("static_configs") {
            Some(Value::Array(list)) => list.clone(),
            _ => continue,
        };
        let mut kept = Vec::new();
        for sc in statics {
            let Value::Object(mut sc) = sc else { continue };
            let targets: Vec<Value> = sc
                .get("targets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .flat_map(|t| expand_target(t, live, &port_names))
                .map(Value::String)
                .collect();
            if targets.is_empty() {
                continue;
            }
            sc.insert("targets".into(), Value::Array(targets));
            if let Some(Value::Object(labels)) = sc.get_mut("labels") {
                for value in labels.values_mut() {
                    if let Value::String(s) = value {
                        *s = resolve_job_placeholder(s, live.job);
                    }
                }
            }
            kept.push(Value::Object(sc));
        }
        if kept.is_empty() {
            continue;
        }
        config.insert("static_configs".into(), Value::Array(kept));
        out.push(Value::Object(config));
    }
    out
}

/// `<ip>:<port>` for each allocation a target names (nothing for a port or worker that is gone).
fn expand_target(target: &str, live: &LiveJob<'_>, port_names: &[String]) -> Vec<String> {
    match parse_target(target, live.job, port_names) {
        Ok(TargetSpec::Literal(t)) => vec![t],
        Ok(TargetSpec::Port { key, ip }) => {
            let Some(port) = live.ports.get(&key) else { return Vec::new() };
            live.active_ips
                .iter()
                .filter(|a| ip.as_ref().is_none_or(|only| only == *a))
                .map(|a| format!("{a}:{port}"))
                .collect()
        }
        Err(_) => Vec::new(),
    }
}

/// `{{ scrapeConfigs }}`: the configs as a YAML list, every line prefixed by `"\n  "` so the
/// fragment continues a `scrape_configs:` list; empty when there are none.
pub fn scrape_configs_fragment(configs: &[Value]) -> Result<String, String> {
    if configs.is_empty() {
        return Ok(String::new());
    }
    let yaml = serde_yaml_ng::to_string(configs).map_err(|e| format!("scrape configs as YAML: {e}"))?;
    Ok(yaml.lines().map(|line| format!("\n  {line}")).collect())
}

/// `{{ ruleFiles }}`: the `rule_files:` block with maand's certificate rules first, then each
/// `rules/<job>/<file>` given.
pub fn rule_files_fragment(rule_files: &[String]) -> String {
    let mut out = String::from("rule_files:\n  - rules/maand/certs.yaml\n");
    for f in rule_files {
        out.push_str(&format!("  - {f}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live<'a>(ips: &'a [String], ports: &'a BTreeMap<String, u16>) -> LiveJob<'a> {
        LiveJob { job: "app", active_ips: ips, ports }
    }

    #[test]
    fn expands_placeholders_against_allocations() {
        let ips = vec!["10.0.0.1".to_string(), "10.0.0.2".to_string()];
        let ports: BTreeMap<String, u16> = [("app_metrics_port".to_string(), 9100)].into();
        let configs = vec![json!({
            "job_name": "maand:job",
            "static_configs": [
                {"targets": ["maand:port/_implicit", "static:1"], "labels": {"maand_job": "maand:job"}},
                {"targets": ["maand:port/app_metrics_port/10.0.0.2"]},
                {"targets": ["maand:port/app_metrics_port/10.9.9.9"]}
            ]
        })];
        let out = expand_configs(&configs, &live(&ips, &ports));
        assert_eq!(
            out,
            vec![json!({
                "job_name": "app",
                "static_configs": [
                    {"targets": ["10.0.0.1:9100", "10.0.0.2:9100", "static:1"], "labels": {"maand_job": "app"}},
                    {"targets": ["10.0.0.2:9100"]}
                ]
            })]
        );
        assert!(expand_configs(&configs[..1], &live(&[], &ports)).len() == 1, "the literal target remains");
        let only_ports = vec![json!({"job_name": "x", "static_configs": [{"targets": ["maand:port/_implicit"]}]})];
        assert!(expand_configs(&only_ports, &live(&[], &ports)).is_empty(), "zero targets: skipped");
    }

    #[test]
    fn fragments() {
        assert_eq!(scrape_configs_fragment(&[]).unwrap(), "");
        let frag =
            scrape_configs_fragment(&[json!({"job_name": "app", "static_configs": [{"targets": ["h:1"]}]})]).unwrap();
        assert_eq!(frag, "\n  - job_name: app\n    static_configs:\n    - targets:\n      - h:1");
        let doc: serde_json::Value = serde_yaml_ng::from_str(&format!("scrape_configs:{frag}\n")).unwrap();
        assert_eq!(doc["scrape_configs"][0]["static_configs"][0]["targets"][0], "h:1");
        assert_eq!(
            rule_files_fragment(&["rules/app/a.yaml".into()]),
            "rule_files:\n  - rules/maand/certs.yaml\n  - rules/app/a.yaml\n"
        );
    }
}
