//! Behaviour tests of the template engine: one test per language feature, the maand functions,
//! constructs of the catalog jobs, error reporting, and a no-panic property test.

mod catalog;
mod errors;
mod language;
mod limits;
mod maand_functions;
mod no_panic;

use std::collections::BTreeMap;

use super::{render, TemplateContext, TemplateData};

/// In-memory KV for tests: readable namespaces, values, the job's secrets.
pub(super) struct MapData {
    pub job: String,
    pub allowed: Vec<String>,
    pub kv: BTreeMap<String, BTreeMap<String, String>>,
    pub secrets: BTreeMap<String, String>,
}

impl MapData {
    pub fn new() -> Self {
        MapData { job: "api".into(), allowed: Vec::new(), kv: BTreeMap::new(), secrets: BTreeMap::new() }
    }

    /// Adds `key = value` in `ns` and makes `ns` readable.
    pub fn with(mut self, ns: &str, key: &str, value: &str) -> Self {
        self = self.allow(ns);
        self.kv.entry(ns.to_string()).or_default().insert(key.to_string(), value.to_string());
        self
    }

    pub fn allow(mut self, ns: &str) -> Self {
        if !self.allowed.iter().any(|a| a == ns) {
            self.allowed.push(ns.to_string());
        }
        self
    }

    pub fn secret(mut self, key: &str, value: &str) -> Self {
        self.secrets.insert(key.to_string(), value.to_string());
        self
    }

    fn check(&self, ns: &str) -> Result<(), String> {
        match self.allowed.iter().any(|a| a == ns) {
            true => Ok(()),
            false => Err(format!("{ns} namespace is not available for job {}", self.job)),
        }
    }
}

impl TemplateData for MapData {
    fn get(&self, ns: &str, key: &str) -> Result<Option<String>, String> {
        self.check(ns)?;
        Ok(self.kv.get(ns).and_then(|m| m.get(key)).cloned())
    }

    fn keys(&self, ns: &str) -> Result<Vec<String>, String> {
        self.check(ns)?;
        Ok(self.kv.get(ns).map(|m| m.keys().cloned().collect()).unwrap_or_default())
    }

    fn get_secret(&self, key: &str) -> Result<Option<String>, String> {
        Ok(self.secrets.get(key).cloned())
    }

    fn scrape_configs(&self) -> Result<String, String> {
        Ok("  - job_name: api\n".to_string())
    }

    fn rule_files(&self) -> Result<String, String> {
        Ok("rule_files:\n  - rules/maand/certs.yaml\n".to_string())
    }
}

pub(super) fn context() -> TemplateContext {
    TemplateContext {
        allocation_id: "alloc-1".into(),
        job: "api".into(),
        current_version: "1.0.0".into(),
        new_version: "1.1.0".into(),
        worker_ip: "10.0.0.1".into(),
        worker_id: "worker-1".into(),
        labels: vec!["api".into(), "worker".into()],
        bucket_path: "/opt/worker/b1".into(),
        job_path: "/opt/worker/b1/jobs/api".into(),
        bucket_id: "b1".into(),
        update_seq: 3,
    }
}

/// Renders with the test context; the error is the full message.
pub(super) fn run(source: &str, data: &MapData) -> Result<String, String> {
    render("t.tpl", source, &context(), data).map_err(|e| e.to_string())
}

/// Renders with no KV at all and unwraps.
pub(super) fn ok(source: &str) -> String {
    match run(source, &MapData::new()) {
        Ok(out) => out,
        Err(e) => panic!("render of {source:?} failed: {e}"),
    }
}

/// Renders with no KV and returns the error.
pub(super) fn fails(source: &str) -> String {
    match run(source, &MapData::new()) {
        Ok(out) => panic!("render of {source:?} should fail, got {out:?}"),
        Err(e) => e,
    }
}
