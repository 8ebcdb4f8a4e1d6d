//! `workspace/workers.json` (spec §1.6, DESIGN §3.1/§3.9/§3.11): the worker list with labels,
//! capacities, tags, ordering position and an optional per-worker SSH port.
//!
//! Decisions: `host` must be an IP address or a DNS name ([`crate::worker_host`]); labels are
//! trimmed, lower-cased, empties dropped and duplicates removed silently (including the implicit
//! `worker` label, which is always present), then sorted. `memory`/`cpu` may also be JSON numbers
//! (MB / MHz). Unknown fields are ignored.

use crate::json_fields::{as_i64, as_object, as_str, as_string_list, describe, field};
use crate::json_text::parse_json;
use crate::placement::normalize_labels;
use crate::units::{parse_cpu_mhz, parse_memory_mb};
use crate::worker_host::validate_host;
use crate::{Error, ErrorKind, Result, Warning};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

const FILE: &str = "workspace/workers.json";

/// One worker of workers.json, normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerSpec {
    /// SSH address, trimmed: an IP address or a DNS name ([`validate_host`]).
    pub host: String,
    pub hostname: Option<String>,
    /// Normalised, sorted, always containing `worker`.
    pub labels: Vec<String>,
    pub memory_mb: f64,
    pub cpu_mhz: f64,
    /// Keys and values trimmed and lower-cased.
    pub tags: BTreeMap<String, String>,
    /// Ordering key; defaults to the index in the file.
    pub position: i64,
    /// SSH port of this worker (overrides maand.conf `ssh_port`).
    pub port: Option<u16>,
}

/// Parse workers.json. The result is sorted by (position, host). Keys written twice go to
/// `warnings`.
pub fn parse_workers(content: &str, warnings: &mut Vec<Warning>) -> Result<Vec<WorkerSpec>> {
    let value = parse_json(content, FILE, warnings).map_err(|e| invalid(format!("{FILE}: {e}")))?;
    let entries = value
        .as_array()
        .ok_or_else(|| invalid(format!("{FILE} must be a JSON array of worker objects, not {}", describe(&value))))?;
    let mut workers: Vec<WorkerSpec> = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let worker = parse_worker(index, entry)?;
        if let Some(first) = workers.iter().position(|w| w.host == worker.host) {
            return Err(invalid(format!(
                "{FILE}: duplicate host {:?} (entries {first} and {index}); list each worker once",
                worker.host
            )));
        }
        workers.push(worker);
    }
    workers.sort_by(|a, b| a.position.cmp(&b.position).then_with(|| a.host.cmp(&b.host)));
    Ok(workers)
}

fn invalid(detail: String) -> Error {
    Error::new(ErrorKind::InvalidWorkerJson, detail)
}

fn parse_worker(index: usize, entry: &Value) -> Result<WorkerSpec> {
    let at = |host: Option<&str>, msg: String| match host {
        Some(h) => invalid(format!("{FILE}: entry {index} (host {h:?}): {msg}")),
        None => invalid(format!("{FILE}: entry {index}: {msg}")),
    };
    let obj = as_object(entry, "a worker entry").map_err(|e| at(None, e))?;
    let host = match field(obj, "host") {
        Some(v) => as_str(v, "host").map_err(|e| at(None, e))?.trim().to_string(),
        None => String::new(),
    };
    if host.is_empty() {
        return Err(at(None, "host attribute can't be empty".into()));
    }
    validate_host(&host).map_err(|e| at(None, e))?;
    let fail = |msg: String| at(Some(&host), msg);
    let hostname = match field(obj, "hostname") {
        Some(v) => Some(as_str(v, "hostname").map_err(fail)?.trim().to_string()).filter(|h| !h.is_empty()),
        None => None,
    };
    let mut labels = match field(obj, "labels") {
        Some(v) => normalize_labels(as_string_list(v, "labels").map_err(fail)?),
        None => Vec::new(),
    };
    if !labels.iter().any(|l| l == "worker") {
        labels.push("worker".into());
    }
    labels.sort();
    let memory_mb = capacity(obj, "memory", parse_memory_mb).map_err(fail)?;
    let cpu_mhz = capacity(obj, "cpu", parse_cpu_mhz).map_err(fail)?;
    let tags = match field(obj, "tags") {
        Some(v) => parse_tags(v).map_err(fail)?,
        None => BTreeMap::new(),
    };
    let position = match field(obj, "position") {
        Some(v) => as_i64(v, "position").map_err(fail)?,
        None => i64::try_from(index).unwrap_or(i64::MAX),
    };
    let port = match field(obj, "port") {
        Some(v) => Some(
            v.as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p >= 1)
                .ok_or_else(|| fail(format!("port must be an SSH port between 1 and 65535, not {}", describe(v))))?,
        ),
        None => None,
    };
    Ok(WorkerSpec { host, hostname, labels, memory_mb, cpu_mhz, tags, position, port })
}

/// `memory` / `cpu`: a string with a unit, or a plain JSON number.
fn capacity(obj: &Map<String, Value>, key: &str, parse: fn(&str) -> Result<f64, String>) -> Result<f64, String> {
    match field(obj, key) {
        None => Ok(0.0),
        Some(Value::String(s)) => parse(s),
        Some(Value::Number(n)) => parse(&n.to_string()),
        Some(other) => Err(format!("{key} must be a string such as \"4 gb\", not {}", describe(other))),
    }
}

fn parse_tags(v: &Value) -> Result<BTreeMap<String, String>, String> {
    let mut tags = BTreeMap::new();
    for (raw_key, raw_value) in as_object(v, "tags")? {
        let value = as_str(raw_value, &format!("tags.{raw_key}"))?;
        let key = raw_key.trim().to_lowercase();
        if key.is_empty() {
            return Err("tags must not have an empty key".into());
        }
        if tags.insert(key.clone(), value.trim().to_lowercase()).is_some() {
            return Err(format!("tags has key {key:?} twice (keys are compared trimmed and lower-cased)"));
        }
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(content: &str) -> Result<Vec<WorkerSpec>> {
        parse_workers(content, &mut Vec::new())
    }

    fn err_text(content: &str) -> String {
        let e = parse(content).unwrap_err();
        assert!(e.is(ErrorKind::InvalidWorkerJson), "{e:?}");
        e.to_string()
    }

    #[test]
    fn parses_full_entry() {
        let ws = parse(
            r#"[{"host": " 10.0.0.1 ", "hostname": "node-1", "labels": [" Web", "worker", "", "web", "DB"],
                 "memory": "4 gb", "cpu": "2 ghz", "tags": {" Zone ": " EU-1 "}, "position": 3, "port": 2222,
                 "unknown": true}]"#,
        )
        .unwrap();
        assert_eq!(
            ws,
            vec![WorkerSpec {
                host: "10.0.0.1".into(),
                hostname: Some("node-1".into()),
                labels: vec!["db".into(), "web".into(), "worker".into()],
                memory_mb: 4096.0,
                cpu_mhz: 2000.0,
                tags: BTreeMap::from([("zone".to_string(), "eu-1".to_string())]),
                position: 3,
                port: Some(2222),
            }]
        );
    }

    #[test]
    fn defaults_and_ordering() {
        let ws = parse(
            r#"[{"host": "b"}, {"host": "a", "position": 1, "memory": 512, "hostname": "  "}, {"host": "c", "position": 0}]"#,
        )
        .unwrap();
        let order: Vec<(&str, i64)> = ws.iter().map(|w| (w.host.as_str(), w.position)).collect();
        assert_eq!(order, vec![("b", 0), ("c", 0), ("a", 1)]);
        assert_eq!(ws[0].labels, vec!["worker"]);
        assert_eq!(ws[0].memory_mb, 0.0);
        assert_eq!(ws[2].memory_mb, 512.0);
        assert_eq!(ws[2].hostname, None);
        assert_eq!(ws[0].port, None);
        assert!(parse("[]").unwrap().is_empty());
    }

    #[test]
    fn errors_name_file_entry_and_field() {
        assert_eq!(
            err_text(r#"[{"host": "a"}, {"host": "  "}]"#),
            "invalid worker.json: workspace/workers.json: entry 1: host attribute can't be empty"
        );
        assert_eq!(
            err_text(r#"[{"host": "a"}, {"host": "b"}, {"host": " a"}]"#),
            "invalid worker.json: workspace/workers.json: duplicate host \"a\" (entries 0 and 2); list each worker once"
        );
        assert_eq!(
            err_text(r#"[{"host": "a", "memory": "8 kb"}]"#),
            "invalid worker.json: workspace/workers.json: entry 0 (host \"a\"): invalid memory \"8 kb\": unknown unit \
             \"kb\" (units: mb, gb, tb; a plain number means mb)"
        );
        assert!(err_text(r#"[{"host": "a", "cpu": "-1 ghz"}]"#)
            .contains("entry 0 (host \"a\"): invalid cpu \"-1 ghz\": must not be negative"));
        assert!(err_text(r#"[{"host": "a", "memory": -1}]"#).contains("must not be negative"));
        assert!(err_text(r#"[{"host": "a", "memory": true}]"#).contains("memory must be a string"));
        assert!(err_text("[{\"host\": \"a\",\n ]").contains("workspace/workers.json: not valid JSON: "));
        assert!(err_text("[{\"host\": \"a\",\n ]").contains("line 2 column"));
        assert!(err_text(r#"{"host": "a"}"#).contains("must be a JSON array of worker objects, not an object"));
        assert!(err_text(r#"["a"]"#).contains("entry 0: a worker entry must be an object"));
        assert!(err_text(r#"[{"host": 1}]"#).contains("entry 0: host must be a string, not number 1"));
        assert!(err_text(r#"[{"host": "a", "labels": "web"}]"#).contains("labels must be an array of strings"));
        assert!(err_text(r#"[{"host": "a", "labels": ["x", 1]}]"#).contains("labels[1] must be a string"));
        assert!(err_text(r#"[{"host": "a", "position": 1.5}]"#).contains("position must be a whole number"));
        assert!(err_text(r#"[{"host": "a", "port": 0}]"#)
            .contains("port must be an SSH port between 1 and 65535, not number 0"));
        assert!(err_text(r#"[{"host": "a", "port": 70000}]"#).contains("port must be an SSH port"));
        assert!(err_text(r#"[{"host": "a", "tags": {"z": 1}}]"#).contains("tags.z must be a string"));
        assert!(err_text(r#"[{"host": "a", "tags": {"Z": "1", "z ": "2"}}]"#).contains("tags has key \"z\" twice"));
        assert!(err_text(r#"[{"host": "a", "tags": {" ": "1"}}]"#).contains("empty key"));
        assert!(err_text("").contains("not valid JSON"));
        assert_eq!(
            err_text(r#"[{"host": "a"}, {"host": "../../x"}]"#),
            "invalid worker.json: workspace/workers.json: entry 1: host \"../../x\" must be an IP address or a DNS \
             name: '/' is not allowed (letters, digits, '-', '_' and '.' only)"
        );
    }
}
