//! `maand build` with the Prometheus integration: `_prometheus/` files validated only when a
//! server job exists, KV `maand/prometheus` and `maand/job/<job>/job_name`, and bad scrape or alert
//! files failing the build with the file and the problem named (and nothing committed).
#![allow(clippy::unwrap_used)]

mod common;
use common::{three_workers, TestBucket};
use serde_json::{json, Value};

const SCRAPE_TPL: &str = "- job_name: '{{ .Job }}'\n  static_configs:\n    - targets: ['maand:port/_implicit']\n      labels: {maand_job: 'maand:job', v: '{{ .NewVersion }}'}\n";
const ALERTS: &str = "groups:\n  - name: app\n    rules:\n      - alert: app down\n        expr: up{job=\"app\"} == 0\n        annotations: {summary: '{{ $labels.instance }} down', runbook: app-down}\n";

/// Workers, an `app` job on `web` with a metrics port and `_prometheus/` files, and (optionally)
/// a `prometheus` server job on `db`.
fn bucket(with_server: bool) -> TestBucket {
    let b = TestBucket::new();
    b.workers(three_workers());
    b.job("app", json!({"version": "v1.2", "selectors": ["web"], "resources": {"ports": {"app_metrics_port": {}}}}));
    b.write("workspace/jobs/app/_prometheus/scrape.yaml.tpl", SCRAPE_TPL);
    b.write("workspace/jobs/app/_prometheus/alerts/app.yaml", ALERTS);
    b.write("workspace/jobs/app/_prometheus/runbooks/app-down.md", "# App down\n");
    if with_server {
        b.job("prometheus", json!({"selectors": ["db"], "resources": {"ports": {"prometheus_port_http": {}}}}));
        b.write("workspace/jobs/prometheus/prometheus.yml.tpl", "scrape_configs:{{ scrapeConfigs }}\n{{ ruleFiles }}");
    }
    b
}

fn port(b: &TestBucket, job: &str, name: &str) -> i64 {
    let ports = b.cat(&["job_ports"]);
    ports.iter().find(|p| p["job"] == job && p["name"] == name).unwrap()["port"].as_i64().unwrap()
}

#[test]
fn without_a_server_job_nothing_is_validated() {
    let b = bucket(false);
    b.write("workspace/jobs/app/_prometheus/scrape.yaml", "- job_name: x\n  consul_sd_configs: []\n");
    b.build().ok();
    assert_eq!(b.kv("maand/prometheus", "scrape_configs").as_deref(), Some("[]"));
    assert_eq!(b.kv("maand/prometheus", "scrape_jobs_length").as_deref(), Some("0"));
    assert_eq!(b.kv("maand/job/app", "job_name").as_deref(), Some("app"));
}

#[test]
fn server_job_builds_the_scrape_catalog() {
    let b = bucket(true);
    b.build().ok();
    assert_eq!(b.kv("maand/prometheus", "scrape_jobs").as_deref(), Some("app"));
    assert_eq!(b.kv("maand/prometheus", "scrape_jobs_length").as_deref(), Some("1"));
    let per_job: Value = serde_json::from_str(&b.kv("maand/prometheus", "scrape/app").unwrap()).unwrap();
    assert_eq!(
        per_job,
        json!([{"job_name": "app", "static_configs": [{"targets": ["maand:port/_implicit"], "labels": {"maand_job": "maand:job", "v": "1.2.0"}}]}]),
        "stored rendered but unexpanded"
    );
    let all: Value = serde_json::from_str(&b.kv("maand/prometheus", "scrape_configs").unwrap()).unwrap();
    assert_eq!(all, per_job);
    assert_eq!(b.kv("maand/job/app", "job_name").as_deref(), Some("app"));

    // A scrape job_name of its own becomes the job's job_name; a job without active allocations
    // drops out of the aggregate but keeps its scrape/<job> entry.
    b.write(
        "workspace/jobs/app/_prometheus/scrape.yaml.tpl",
        "- job_name: app_metrics\n  static_configs: [{targets: ['maand:port/app_metrics_port']}]\n",
    );
    b.build().ok();
    assert_eq!(b.kv("maand/job/app", "job_name").as_deref(), Some("app_metrics"));
    b.write("workspace/disabled.json", r#"{"jobs": {"app": {}}}"#);
    b.build().ok();
    assert_eq!(b.kv("maand/prometheus", "scrape_jobs").as_deref(), Some(""));
    assert!(b.kv("maand/prometheus", "scrape/app").is_some());
    assert!(port(&b, "app", "app_metrics_port") > 0);
}

/// A good build, then `mutate`, then a build failing with every needle and changing nothing.
fn expect_failure(mutate: impl FnOnce(&TestBucket), needles: &[&str]) {
    let b = bucket(true);
    b.build().ok();
    let before = b.dump();
    mutate(&b);
    let out = b.build();
    assert_eq!(out.code, 1, "expected failure, stdout: {} stderr: {}", out.stdout, out.stderr);
    for n in needles {
        assert!(out.stderr.contains(n), "stderr lacks {n:?}: {}", out.stderr);
    }
    assert_eq!(b.dump(), before, "failed build changed the catalog");
}

#[test]
fn bad_prometheus_files_fail_the_build() {
    let scrape = "workspace/jobs/app/_prometheus/scrape.yaml.tpl";
    expect_failure(
        |b| {
            b.write(
                scrape,
                "- job_name: app\n  file_sd_configs: [{files: [x]}]\n  static_configs: [{targets: ['h:1']}]\n",
            )
        },
        &["invalid job", "workspace/jobs/app/_prometheus/scrape.yaml.tpl", "file_sd_configs is not supported"],
    );
    expect_failure(
        |b| b.write(scrape, "- job_name: app\n  static_configs: [{targets: ['maand:port/app_http']}]\n"),
        &[
            "workspace/jobs/app/_prometheus/scrape.yaml.tpl",
            "port app_http is not declared in resources.ports of job app",
        ],
    );
    expect_failure(
        |b| {
            b.job("other", json!({"selectors": ["web"]}));
            b.write(
                "workspace/jobs/other/_prometheus/scrape.yaml",
                "- job_name: app\n  static_configs: [{targets: ['h:1']}]\n",
            );
        },
        &["workspace/jobs/other/_prometheus/scrape.yaml", "duplicate scrape job_name \"app\" (also in job app)"],
    );
    expect_failure(
        |b| {
            b.job("other", json!({"selectors": ["web"]}));
            b.write(
                "workspace/jobs/other/_prometheus/alerts/o.yaml",
                "groups: [{name: o, rules: [{alert: app down, expr: vector(1)}]}]\n",
            );
        },
        &["workspace/jobs/other/_prometheus/alerts/o.yaml", "duplicate alert name \"app down\""],
    );
    expect_failure(
        |b| b.remove("workspace/jobs/app/_prometheus/runbooks/app-down.md"),
        &["workspace/jobs/app/_prometheus/alerts/app.yaml", "runbook \"app-down\" not found"],
    );
    expect_failure(
        |b| b.write("workspace/jobs/app/_prometheus/scrape.yaml", "[]"),
        &["cannot define both scrape.yaml and scrape.yaml.tpl"],
    );
    expect_failure(
        |b| b.write(scrape, "- job_name: '{{ get \"maand/worker\" \"x\" }}'\n"),
        &["workspace/jobs/app/_prometheus/scrape.yaml.tpl", "maand/worker namespace is not available for job app"],
    );
}

#[test]
fn cat_prometheus_lists_gets_and_expands() {
    let b = bucket(true);
    b.build().ok();
    let rows = b.cat(&["prometheus"]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["job"], "app");
    assert_eq!(rows[0]["scrape"], "scrape.yaml.tpl");
    assert_eq!(rows[0]["alerts"], json!(["app down"]));
    assert_eq!(rows[0]["runbooks"], json!(["app-down"]));

    let got = b.maand(&["cat", "prometheus", "get", "app", "scrape"]).ok();
    assert_eq!(got.stdout, SCRAPE_TPL, "the stored template source");
    let got = b.maand(&["cat", "prometheus", "get", "app", "runbooks/app-down.md"]).ok();
    assert_eq!(got.stdout, "# App down\n");
    b.maand(&["cat", "prometheus", "get", "app", "alerts/none.yaml"]).fails_with("prometheus file not found");

    // Expanded against the two active `web` allocations; the text form is the template fragment.
    let p = port(&b, "app", "app_metrics_port");
    let scrape = b.cat(&["prometheus", "scrape", "--jobs", "app"]);
    assert_eq!(
        scrape,
        vec![
            json!({"job_name": "app", "static_configs": [{"targets": [format!("10.0.0.1:{p}"), format!("10.0.0.2:{p}")], "labels": {"maand_job": "app", "v": "1.2.0"}}]})
        ]
    );
    let text = common::maand_in(&b.path("workspace/jobs"), &["cat", "prometheus", "scrape"]).ok();
    assert!(text.stdout.starts_with("  - job_name: app\n    static_configs:\n"), "{}", text.stdout);
    assert!(text.stdout.contains(&format!("- 10.0.0.2:{p}")), "{}", text.stdout);
    b.maand(&["cat", "prometheus", "--jobs", "nope"]).fails_with("invalid input, jobs [nope]");
}

#[test]
fn dry_run_stages_the_server_job_and_names_what_is_missing() {
    let b = bucket(true);
    b.build().ok();
    let plan = b.maand(&["deploy", "--dry-run", "--json"]).ok();
    assert!(plan.stdout.contains("\"prometheus\""), "{}", plan.stdout);
    assert!(!plan.stderr.contains("certificate metrics"), "a dry-run pushes nothing: {}", plan.stderr);

    // Runbook links need the server's prometheus_port_http; other jobs cannot call scrapeConfigs.
    b.job("prometheus", json!({"selectors": ["db"]}));
    b.write("workspace/jobs/app/app.conf.tpl", "{{ scrapeConfigs }}");
    b.build().ok();
    let out = b.maand(&["deploy", "--dry-run"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("the Prometheus server job needs port prometheus_port_http"), "{}", out.stderr);
    assert!(
        out.stderr.contains("scrapeConfigs is only available in the templates of the Prometheus server job"),
        "{}",
        out.stderr
    );
}
