//! Fixtures of the job-command end-to-end tests: sandbox clusters whose job commands start fast,
//! small jobs whose Python commands report through files under `<bucket>/out`, and readers of
//! those reports.
#![allow(dead_code, clippy::unwrap_used)]

use super::cluster::{Cluster, COUNTING_MAKEFILE};
use serde_json::{json, Value};

/// Sandbox workers, with the system's interpreters first on PATH for the job commands maand
/// starts: a version manager's shims (pyenv) cost about a second per process. Each test runs in
/// its own process under nextest, and every test sets the same value.
pub fn cluster(n: usize) -> Cluster {
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::set_var("PATH", format!("/usr/local/bin:/usr/bin:/bin:{path}"));
    Cluster::up(n)
}

/// Python prelude of the reporting commands: `out(name, value)` writes JSON to `<bucket>/out/name`;
/// `record(name, value)` appends one JSON line to `<bucket>/out/name` (one per invocation).
pub const REPORT_PY: &str = r#"
import json, os, sys, time
import maand

def out(name, value):
    d = os.path.join(maand.find_bucket_root(), "out")
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, "%s.%d.tmp" % (name, os.getpid()))  # allocations may run at once
    with open(tmp, "w") as f:
        json.dump(value, f)
    os.replace(tmp, os.path.join(d, name))

def record(name, value):
    d = os.path.join(maand.find_bucket_root(), "out")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "a") as f:
        f.write(json.dumps(value) + "\n")
"#;

/// A job on the `app` workers with the counting Makefile and `commands` (name → events); each
/// command's body follows [`REPORT_PY`].
pub fn command_job(c: &Cluster, job: &str, commands: &[(&str, &[&str], &str)]) {
    let b = &c.bucket;
    let registered: serde_json::Map<String, Value> =
        commands.iter().map(|(name, events, _)| (name.to_string(), json!({"executed_on": events}))).collect();
    b.write(
        &format!("workspace/jobs/{job}/manifest.json"),
        &json!({"version": "1.0.0", "selectors": ["app"], "commands": registered}).to_string(),
    );
    b.write(&format!("workspace/jobs/{job}/Makefile"), COUNTING_MAKEFILE);
    for (name, _, body) in commands {
        b.write(&format!("workspace/jobs/{job}/_modules/{name}.py"), &format!("{REPORT_PY}\n{body}"));
    }
}

/// `<bucket>/out/<name>` as JSON.
pub fn reported(c: &Cluster, name: &str) -> Value {
    let text = std::fs::read_to_string(c.bucket.path(&format!("out/{name}")))
        .unwrap_or_else(|e| panic!("out/{name} was not written: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// The JSON lines `record` appended to `<bucket>/out/<name>` (none if it was never written).
pub fn recorded(c: &Cluster, name: &str) -> Vec<Value> {
    std::fs::read_to_string(c.bucket.path(&format!("out/{name}")))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The timestamp of a `data/events` line (`<kind> <seconds.nanos> …`).
pub fn event_time(line: &str) -> f64 {
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Time of the last `kind` event of `job` on worker i, if any.
pub fn last_event(c: &Cluster, i: usize, job: &str, kind: &str) -> Option<f64> {
    c.events(i, job).iter().rev().find(|l| l.split_whitespace().next() == Some(kind)).map(|l| event_time(l))
}
