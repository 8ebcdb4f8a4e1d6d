//! Alert rule files (`_prometheus/alerts/*.yaml`): Prometheus rule groups, validated (each rule has
//! `expr` and exactly one of `alert`/`record`, `runbook` annotations name a shipped runbook), and
//! rewritten for the server with `runbook` turned into `runbook_url`.

use super::file_error;
use crate::Result;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A validated alert rule file.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertsFile {
    /// The document as written.
    pub doc: Value,
    /// Alert names in file order.
    pub alerts: Vec<String>,
}

/// Parse and validate `alerts/<file>` of `job`; `runbooks` are the runbook names the job ships.
pub fn parse_alerts(job: &str, file: &str, text: &str, runbooks: &BTreeMap<String, String>) -> Result<AlertsFile> {
    let path = format!("_prometheus/alerts/{file}");
    let err = |problem: String| file_error(job, &path, problem);
    let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| err(format!("not valid YAML: {e}")))?;
    let Some(Value::Array(groups)) = doc.get("groups") else {
        return Err(err("expected `groups:` with a list of rule groups".into()));
    };
    let mut alerts = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        let Some(group_name) = group.get("name").and_then(Value::as_str).filter(|s| !s.trim().is_empty()) else {
            return Err(err(format!("groups[{g}]: name is required")));
        };
        let Some(Value::Array(rules)) = group.get("rules") else {
            return Err(err(format!("group {group_name}: rules is required (a list)")));
        };
        for (r, rule) in rules.iter().enumerate() {
            let at = |problem: &str| err(format!("group {group_name}, rule {r}: {problem}"));
            if !rule.is_object() {
                return Err(at("not a mapping"));
            }
            let text_field = |key: &str| rule.get(key).and_then(Value::as_str).filter(|s| !s.trim().is_empty());
            if text_field("expr").is_none() {
                return Err(at("expr is required"));
            }
            match (text_field("alert"), text_field("record")) {
                (Some(_), Some(_)) | (None, None) => return Err(at("needs exactly one of alert or record")),
                (None, Some(_)) => continue,
                (Some(name), None) => {
                    if let Some(runbook) = rule.get("annotations").and_then(|a| a.get("runbook")) {
                        let Some(runbook) = runbook.as_str() else {
                            return Err(at("annotations.runbook must be a string"));
                        };
                        if !runbooks.contains_key(runbook) {
                            return Err(err(format!(
                                "alert {name:?}: runbook {runbook:?} not found (add _prometheus/runbooks/{runbook}.md)"
                            )));
                        }
                    }
                    alerts.push(name.to_string());
                }
            }
        }
    }
    Ok(AlertsFile { doc, alerts })
}

/// The file name of a runbook's HTML page (without `.html`): letters, digits, `-` and `_` kept,
/// everything else `-`.
pub fn runbook_slug(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect()
}

/// The rule file as the server loads it: each alert's `runbook` annotation removed and
/// `runbook_url = url(runbook)` added unless `runbook_url` is already set.
pub fn rewrite_alerts(doc: &Value, url: &dyn Fn(&str) -> String) -> std::result::Result<String, String> {
    let mut doc = doc.clone();
    let groups = doc.get_mut("groups").and_then(Value::as_array_mut);
    for group in groups.into_iter().flatten() {
        let rules = group.get_mut("rules").and_then(Value::as_array_mut);
        for rule in rules.into_iter().flatten() {
            let Some(annotations) = rule.get_mut("annotations").and_then(Value::as_object_mut) else { continue };
            rewrite_annotations(annotations, url);
        }
    }
    serde_yaml_ng::to_string(&doc).map_err(|e| e.to_string())
}

fn rewrite_annotations(annotations: &mut Map<String, Value>, url: &dyn Fn(&str) -> String) {
    let Some(Value::String(runbook)) = annotations.remove("runbook") else { return };
    if !annotations.contains_key("runbook_url") {
        annotations.insert("runbook_url".to_string(), Value::String(url(&runbook)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = "groups:\n  - name: app\n    rules:\n      - alert: app down\n        expr: up{job=\"app\"} == 0\n        for: 1m\n        annotations:\n          summary: '{{ $labels.instance }} is down'\n          runbook: app-down\n      - record: app:up\n        expr: sum(up)\n      - alert: custom\n        expr: vector(1)\n        annotations: {runbook: app-down, runbook_url: 'http://wiki/x'}\n";

    fn runbooks(names: &[&str]) -> BTreeMap<String, String> {
        names.iter().map(|n| (n.to_string(), String::new())).collect()
    }

    #[test]
    fn parses_alert_names_and_checks_runbooks() {
        let f = parse_alerts("app", "a.yaml", RULES, &runbooks(&["app-down"])).unwrap();
        assert_eq!(f.alerts, ["app down", "custom"]);
        let e = parse_alerts("app", "a.yaml", RULES, &runbooks(&[])).unwrap_err().to_string();
        assert!(e.contains("workspace/jobs/app/_prometheus/alerts/a.yaml"), "{e}");
        assert!(e.contains("runbook \"app-down\" not found (add _prometheus/runbooks/app-down.md)"), "{e}");
    }

    #[test]
    fn rule_shape_errors() {
        let check = |text: &str, needle: &str| {
            let e = parse_alerts("app", "a.yaml", text, &runbooks(&[])).unwrap_err().to_string();
            assert!(e.contains(needle), "{e} lacks {needle}");
        };
        check("rules: []", "expected `groups:`");
        check("groups: [{rules: []}]", "groups[0]: name is required");
        check("groups: [{name: g}]", "group g: rules is required");
        check("groups: [{name: g, rules: [{alert: a}]}]", "group g, rule 0: expr is required");
        check("groups: [{name: g, rules: [{alert: a, record: b, expr: x}]}]", "exactly one of alert or record");
        check("groups: [{name: g, rules: [{expr: x}]}]", "exactly one of alert or record");
        check("groups: [", "not valid YAML");
    }

    #[test]
    fn rewrite_turns_runbook_into_url() {
        let f = parse_alerts("app", "a.yaml", RULES, &runbooks(&["app-down"])).unwrap();
        let out =
            rewrite_alerts(&f.doc, &|name| format!("http://p:9090/consoles/runbooks/app/{}.html", runbook_slug(name)))
                .unwrap();
        let back: Value = serde_yaml_ng::from_str(&out).unwrap();
        let rules = &back["groups"][0]["rules"];
        assert_eq!(rules[0]["annotations"]["runbook_url"], "http://p:9090/consoles/runbooks/app/app-down.html");
        assert!(rules[0]["annotations"].get("runbook").is_none());
        assert_eq!(rules[0]["annotations"]["summary"], "{{ $labels.instance }} is down");
        assert_eq!(rules[2]["annotations"]["runbook_url"], "http://wiki/x", "an explicit runbook_url wins");
        assert_eq!(rules[1]["record"], "app:up");
    }

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(runbook_slug("disk full/now"), "disk-full-now");
        assert_eq!(runbook_slug("app_down-2"), "app_down-2");
    }
}
