//! Bad input: every init/build error class of spec §11 exits 1 with a message naming the file,
//! job or worker and field — and leaves the catalog as it was.
#![allow(clippy::unwrap_used)]

mod common;
use common::{three_workers, TestBucket};
use serde_json::json;

/// A bucket with a good build, then `mutate`, then a failing build whose stderr contains every needle.
fn expect_failure(mutate: impl FnOnce(&TestBucket), needles: &[&str]) {
    let b = TestBucket::new();
    b.workers(three_workers());
    b.job("api", json!({"version": "1.0", "selectors": ["web"]}));
    b.build().ok();
    let before = b.dump();
    mutate(&b);
    let out = b.build();
    assert_eq!(out.code, 1, "expected failure, stdout: {} stderr: {}", out.stdout, out.stderr);
    assert!(out.stderr.starts_with("maand build failed: "), "{}", out.stderr);
    for n in needles {
        assert!(out.stderr.contains(n), "stderr lacks {n:?}: {}", out.stderr);
    }
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert_eq!(b.dump(), before, "failed build changed the catalog");
}

fn manifest(b: &TestBucket, m: serde_json::Value) {
    b.job("api", m);
}

#[test]
fn maand_conf_and_bucket_conf_errors() {
    expect_failure(|b| b.write("maand.conf", "ssh_user = \n"), &["invalid maand.conf"]);
    expect_failure(|b| b.write("workspace/bucket.conf", "port_min = 30000\n"), &["invalid bucket.conf", "port_min"]);
    expect_failure(
        |b| {
            b.write("workspace/bucket.conf", "port_min = \"40000\"\nport_max = \"30000\"\n");
            manifest(b, json!({"selectors": ["web"], "resources": {"ports": {"p": {}}}}));
        },
        &["invalid port range in bucket.conf", "port_min=40000"],
    );
    expect_failure(|b| b.write("workspace/bucket.jobs.conf", "[api\n"), &["invalid bucket.conf", "bucket.jobs.conf"]);
}

#[test]
fn workers_json_errors() {
    expect_failure(|b| b.write("workspace/workers.json", "[{\"host\": }]"), &["invalid worker.json", "workers.json"]);
    expect_failure(|b| b.workers(json!([{"host": " "}])), &["invalid worker.json", "host"]);
    expect_failure(
        |b| b.workers(json!([{"host": "10.0.0.1"}, {"host": "10.0.0.1"}])),
        &["invalid worker.json", "duplicate host", "10.0.0.1"],
    );
    expect_failure(
        |b| b.workers(json!([{"host": "10.0.0.1", "memory": "12 parsecs"}])),
        &["invalid worker.json", "10.0.0.1", "memory"],
    );
    expect_failure(
        |b| b.workers(json!([{"host": "10.0.0.1", "cpu": "-5"}])),
        &["invalid worker.json", "10.0.0.1", "cpu"],
    );
    expect_failure(|b| b.workers(json!({"host": "10.0.0.1"})), &["invalid worker.json"]);
}

#[test]
fn manifest_errors() {
    expect_failure(|b| b.write("workspace/jobs/api/manifest.json", "{"), &["invalid manifest.json", "job api"]);
    expect_failure(
        |b| manifest(b, json!({"restart_policy": "sometimes"})),
        &["invalid manifest.json", "job api", "restart_policy must be one of always, reload, never"],
    );
    expect_failure(
        |b| manifest(b, json!({"restart_globs": ["*.conf"]})),
        &["invalid manifest.json", "job api", "restart_globs requires restart_policy reload"],
    );
    expect_failure(
        |b| manifest(b, json!({"resources": {"memory": {"min": "2 gb", "max": "1 gb"}}})),
        &["invalid manifest.json", "job api"],
    );
    expect_failure(
        |b| manifest(b, json!({"resources": {"cpu": {"max": "fast"}}})),
        &["invalid manifest.json", "job api", "cpu"],
    );
    expect_failure(
        |b| manifest(b, json!({"min_allocations_count": -1})),
        &["invalid manifest.json", "job api", "min_allocations_count"],
    );
    expect_failure(
        |b| manifest(b, json!({"health_check": {"checks": [{"type": "tcp", "port": "nope"}]}})),
        &["invalid manifest.json", "job api", "nope"],
    );
    expect_failure(
        |b| manifest(b, json!({"health_check": {"checks": [{"type": "smoke"}]}})),
        &["invalid manifest.json", "job api"],
    );
    expect_failure(|b| manifest(b, json!({"version": "1.2.3.4"})), &["invalid job version", "job api"]);
    expect_failure(
        |b| manifest(b, json!({"resources": {"ports": {"HTTP": {}}}})),
        &["invalid port key format", "HTTP"],
    );
    expect_failure(
        |b| manifest(b, json!({"resources": {"ports": {"http": "8080"}}})),
        &["invalid manifest port declaration", "http"],
    );
    expect_failure(|b| b.write("workspace/jobs/api/vars.toml", "x = [1,2]\n"), &["invalid vars.toml", "api"]);
}

#[test]
fn command_errors() {
    let with_cmd = |cmd: &str, body: serde_json::Value| {
        let cmd = cmd.to_string();
        move |b: &TestBucket| {
            manifest(b, json!({"version": "1.0", "selectors": ["web"], "commands": {cmd.clone(): body}}));
            b.write(&format!("workspace/jobs/api/_modules/{cmd}.py"), "print(1)\n");
        }
    };
    expect_failure(with_cmd("hello", json!({"executed_on": ["cli"]})), &["invalid job command configuration", "hello"]);
    expect_failure(with_cmd("command_a", json!({})), &["invalid job command configuration", "missing executed_on"]);
    expect_failure(
        with_cmd("command_a", json!({"executed_on": ["sometimes"]})),
        &["invalid job command configuration", "sometimes"],
    );
    expect_failure(
        with_cmd("command_a", json!({"executed_on": ["cli"], "demands": {"job": "api", "command": "command_a"}})),
        &["invalid job command configuration", "self"],
    );
    expect_failure(
        with_cmd("command_a", json!({"executed_on": ["cli"], "demands": {"job": "db"}})),
        &["invalid job command demand", "command_a"],
    );
    expect_failure(
        with_cmd("command_a", json!({"executed_on": ["cli"], "demands": {"job": "ghost", "command": "command_x"}})),
        &["invalid job command demand", "ghost"],
    );
}

#[test]
fn disabled_json_errors() {
    expect_failure(|b| b.write("workspace/disabled.json", "{\"jobs\": [1]}"), &["disabled.json"]);
}
