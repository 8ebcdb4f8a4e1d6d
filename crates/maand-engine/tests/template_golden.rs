//! Differential test of the template engine against Go: every `*.tpl` in
//! `tests/fixtures/templates` is rendered over the fixture KV in `data.json` and compared byte
//! for byte with the `*.out` golden Go's text/template produced (`tests/gotmpl-reference`), or
//! must fail where Go failed (`*.err`), on the line Go reported.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use maand_engine::template::{render, TemplateContext, TemplateData};
use serde_json::Value as Json;

/// `data.json`: the context, readable namespaces, KV, secrets and Prometheus fragments.
struct Fixture {
    context: TemplateContext,
    allowed: Vec<String>,
    kv: BTreeMap<String, BTreeMap<String, String>>,
    secrets: BTreeMap<String, String>,
    scrape_configs: String,
    rule_files: String,
}

fn text(json: &Json, key: &str) -> String {
    json[key].as_str().unwrap_or_else(|| panic!("data.json: {key} must be a string")).to_string()
}

fn string_map(json: &Json) -> BTreeMap<String, String> {
    json.as_object()
        .expect("object of strings")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string value").to_string()))
        .collect()
}

impl Fixture {
    fn load(dir: &Path) -> Fixture {
        let raw = fs::read_to_string(dir.join("data.json")).expect("read data.json");
        let json: Json = serde_json::from_str(&raw).expect("parse data.json");
        let c = &json["context"];
        let context = TemplateContext {
            allocation_id: text(c, "AllocationID"),
            job: text(c, "Job"),
            current_version: text(c, "CurrentVersion"),
            new_version: text(c, "NewVersion"),
            worker_ip: text(c, "WorkerIP"),
            worker_id: text(c, "WorkerID"),
            labels: c["Labels"]
                .as_array()
                .expect("Labels")
                .iter()
                .map(|l| l.as_str().expect("label").to_string())
                .collect(),
            bucket_path: text(c, "BucketPath"),
            job_path: text(c, "JobPath"),
            bucket_id: text(c, "BucketID"),
            update_seq: c["UpdateSeq"].as_i64().expect("UpdateSeq"),
        };
        Fixture {
            context,
            allowed: json["allowed"]
                .as_array()
                .expect("allowed")
                .iter()
                .map(|a| a.as_str().expect("namespace").to_string())
                .collect(),
            kv: json["kv"].as_object().expect("kv").iter().map(|(ns, keys)| (ns.clone(), string_map(keys))).collect(),
            secrets: string_map(&json["secrets"]),
            scrape_configs: text(&json, "scrape_configs"),
            rule_files: text(&json, "rule_files"),
        }
    }

    fn check(&self, ns: &str) -> Result<(), String> {
        match self.allowed.iter().any(|a| a == ns) {
            true => Ok(()),
            false => Err(format!("{ns} namespace is not available for job {}", self.context.job)),
        }
    }
}

impl TemplateData for Fixture {
    fn get(&self, ns: &str, key: &str) -> Result<Option<String>, String> {
        self.check(ns)?;
        Ok(self.kv.get(ns).and_then(|keys| keys.get(key)).cloned())
    }

    fn keys(&self, ns: &str) -> Result<Vec<String>, String> {
        self.check(ns)?;
        Ok(self.kv.get(ns).map(|keys| keys.keys().cloned().collect()).unwrap_or_default())
    }

    fn get_secret(&self, key: &str) -> Result<Option<String>, String> {
        Ok(self.secrets.get(key).cloned())
    }

    fn scrape_configs(&self) -> Result<String, String> {
        Ok(self.scrape_configs.clone())
    }

    fn rule_files(&self) -> Result<String, String> {
        Ok(self.rule_files.clone())
    }
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates")
}

fn corpus() -> Vec<PathBuf> {
    let mut templates: Vec<PathBuf> = fs::read_dir(corpus_dir())
        .expect("read corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "tpl"))
        .collect();
    templates.sort();
    templates
}

/// The line of Go's message `template: name:LINE[:COL]: …`.
fn go_error_line(message: &str, name: &str) -> Option<usize> {
    let rest = message.strip_prefix(&format!("template: {name}:"))?;
    rest.split(':').next()?.parse().ok()
}

/// The line of our message `… template name: line LINE: …`.
fn our_error_line(message: &str) -> Option<usize> {
    let rest = &message[message.find(": line ")? + ": line ".len()..];
    rest.split(':').next()?.parse().ok()
}

fn first_difference(expected: &str, actual: &str) -> String {
    let line = expected
        .lines()
        .zip(actual.lines())
        .position(|(e, a)| e != a)
        .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
    format!(
        "first difference at line {}:\n  go:   {:?}\n  rust: {:?}",
        line + 1,
        expected.lines().nth(line).unwrap_or("<end>"),
        actual.lines().nth(line).unwrap_or("<end>")
    )
}

#[test]
fn corpus_renders_exactly_like_go() {
    let fixture = Fixture::load(&corpus_dir());
    let templates = corpus();
    assert!(templates.len() >= 40, "the corpus should hold at least 40 templates, found {}", templates.len());
    let mut failures = Vec::new();
    let (mut outputs, mut errors) = (0, 0);
    for path in &templates {
        let name = path.file_name().and_then(|n| n.to_str()).expect("file name");
        let source = fs::read_to_string(path).expect("read template");
        let result = render(name, &source, &fixture.context, &fixture);
        let golden_out = path.with_extension("out");
        let golden_err = path.with_extension("err");
        if golden_out.exists() {
            outputs += 1;
            let expected = fs::read_to_string(&golden_out).expect("read golden");
            match result {
                Ok(actual) if actual == expected => {}
                Ok(actual) => {
                    failures.push(format!("{name}: output differs from Go\n{}", first_difference(&expected, &actual)))
                }
                Err(e) => failures.push(format!("{name}: Go rendered it, we failed: {e}")),
            }
        } else if golden_err.exists() {
            errors += 1;
            let go_message = fs::read_to_string(&golden_err).expect("read golden error");
            match result {
                Ok(actual) => {
                    failures.push(format!("{name}: Go failed ({}), we rendered {actual:?}", go_message.trim()))
                }
                Err(e) => {
                    let message = e.to_string();
                    if !(message.starts_with(&format!("parse template {name}: "))
                        || message.starts_with(&format!("execute template {name}: ")))
                    {
                        failures.push(format!("{name}: unexpected error format: {message}"));
                    }
                    if let (Some(go), ours) = (go_error_line(&go_message, name), our_error_line(&message)) {
                        if ours != Some(go) {
                            failures.push(format!("{name}: Go reports line {go}, we report {ours:?}: {message}"));
                        }
                    }
                }
            }
        } else {
            failures.push(format!("{name}: no golden (.out or .err); regenerate them (see README.md)"));
        }
    }
    assert!(outputs >= 30 && errors >= 15, "corpus too small: {outputs} outputs, {errors} error cases");
    assert!(
        failures.is_empty(),
        "{} of {} templates differ from Go:\n\n{}",
        failures.len(),
        templates.len(),
        failures.join("\n\n")
    );
}
