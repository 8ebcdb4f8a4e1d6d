//! `maand health_check` on a real (temporary) bucket: worker gate, job selection, per-job results,
//! the summary, and the catalog's health_check JSON read back as the manifest's spec.
#![allow(clippy::unwrap_used)]

mod health_support;

use health_support::*;
use maand_core::{parse_manifest, ErrorKind};
use maand_engine::bucket::Bucket;
use maand_engine::build::{build, BuildOptions};
use maand_engine::health::HealthSummary;
use maand_engine::health::{
    health_check_summary, parse_health_spec, run_health_check, HealthCheckOptions, JobHealth, JobHealthStatus,
};
use maand_remote::recording::Reply;
use maand_remote::{Call, RecordingExecutor, Stream};
use std::path::Path;

fn write(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn job(root: &Path, name: &str, manifest: &str) {
    write(root, &format!("workspace/jobs/{name}/manifest.json"), manifest);
    write(root, &format!("workspace/jobs/{name}/Makefile"), "start:\n\ttrue\n");
}

/// A built bucket with worker 127.0.0.1 (SSH port `gate_port`) and jobs:
/// api (tcp + http probes that pass), db (tcp probe on a closed port), idle (no health_check),
/// orphan (no allocations), sshjob (an ssh probe).
fn bucket(gate_port: u16) -> tempfile::TempDir {
    std::env::set_var("MAAND_TEST", "1");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    maand_engine::init::init(root).unwrap();
    write(
        root,
        "workspace/workers.json",
        &format!(r#"[{{"host": "127.0.0.1", "labels": ["app"], "port": {gate_port}}}]"#),
    );
    let (api, web, db) = (silent_server(), http_server(200), free_port());
    job(
        root,
        "api",
        &format!(
            r#"{{"selectors": ["app"], "resources": {{"ports": {{"api_port": {api}, "web_port": {web}}}}},
               "health_check": {{"checks": [{{"type": "tcp", "port": "api_port"}},
                                            {{"type": "http", "port": "web_port", "path": "/ready"}}],
                                 "timeout_seconds": 1}}}}"#
        ),
    );
    job(
        root,
        "db",
        &format!(
            r#"{{"selectors": ["app"], "resources": {{"ports": {{"db_port": {db}}}}},
               "health_check": {{"checks": [{{"type": "TCP", "port": "db_port"}}], "timeout_seconds": 1,
                                 "wait": {{"attempts": 2, "interval_seconds": 1}}}}}}"#
        ),
    );
    job(root, "idle", r#"{"selectors": ["app"]}"#);
    job(
        root,
        "orphan",
        r#"{"selectors": ["nowhere"], "health_check": {"checks": [{"type": "ssh", "command": "true"}]}}"#,
    );
    job(
        root,
        "sshjob",
        r#"{"selectors": ["app"], "health_check": {"checks": [{"type": "ssh", "command": "systemctl is-active x"}]}}"#,
    );
    build(root, &BuildOptions::default()).unwrap();
    dir
}

fn opts(jobs: &[&str], wait: bool, verbose: bool) -> HealthCheckOptions {
    HealthCheckOptions { jobs: jobs.iter().map(|s| s.to_string()).collect(), wait, verbose }
}

#[test]
fn checks_every_job_and_fails_naming_the_failed_job() {
    let dir = bucket(ssh_server());
    let lines = Lines::default();
    let bucket = Bucket::open(dir.path()).unwrap();
    let exec = RecordingExecutor::with_responder(|_| Ok(Reply::ok().with_line(Stream::Stdout, "active")));
    let summary = run_health_check(&bucket, &opts(&[], false, true), &exec, &|l| lines.push(l)).unwrap();

    let db_port = bucket_port(&bucket, "db", "db_port");
    let expected_db_failure = format!("127.0.0.1 tcp db_port {db_port}: connection refused");
    let status = |job: &str, status, reason: Option<&str>| JobHealth {
        job: job.into(),
        status,
        reason: reason.map(str::to_string),
    };
    assert_eq!(summary.workers, 1);
    assert_eq!(
        summary.jobs,
        vec![
            status("api", JobHealthStatus::Passed, None),
            status("db", JobHealthStatus::Failed, Some(&expected_db_failure)),
            status("idle", JobHealthStatus::Skipped, Some("no health_check config or commands")),
            status("orphan", JobHealthStatus::Skipped, Some("no active allocations")),
            status("sshjob", JobHealthStatus::Passed, None),
        ]
    );
    let failure = summary.failure().unwrap();
    assert_eq!(failure.kind, ErrorKind::HealthCheckFailed);
    assert_eq!(failure.to_string(), format!("health check failed: job db: {expected_db_failure}"));

    let lines = lines.all();
    assert_eq!(lines[0], "worker health check passed", "the worker gate runs first: {lines:?}");
    for expected in [
        "health check passed: api",
        "health check failed: db",
        "health check skipped: idle (no health_check config or commands)",
        "health check skipped: orphan (no active allocations)",
        "health check passed: sshjob",
        "sshjob@127.0.0.1 | active",
    ] {
        assert!(lines.iter().any(|l| l == expected), "missing {expected:?} in {lines:?}");
    }
    assert!(!lines.iter().any(|l| l.contains("retrying")), "no retries without --wait: {lines:?}");

    // Only the ssh probe reached the executor, once; `maand init` writes use_sudo = true, so the
    // command runs in a login shell.
    assert!(bucket.conf.use_sudo);
    let calls = exec.calls();
    assert_eq!(calls.len(), 1);
    assert!(matches!(&calls[0], Call::Script { script, .. } if script.contains("bash -lc 'systemctl is-active x'")));

    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["jobs"][0], serde_json::json!({"job": "api", "status": "passed"}));
    assert_eq!(json["jobs"][1]["status"], "failed");
    assert_eq!(
        json["jobs"][2],
        serde_json::json!({"job": "idle", "status": "skipped", "reason": "no health_check config or commands"})
    );
}

#[test]
fn wait_uses_the_manifest_attempts_and_verbose_off_streams_nothing() {
    let dir = bucket(ssh_server());
    let bucket = Bucket::open(dir.path()).unwrap();
    let lines = Lines::default();
    let exec = RecordingExecutor::with_responder(|_| Ok(Reply::ok().with_line(Stream::Stdout, "active")));
    let summary = run_health_check(&bucket, &opts(&["db", "sshjob"], true, false), &exec, &|l| lines.push(l)).unwrap();
    assert_eq!(
        summary.jobs.iter().map(|j| j.status).collect::<Vec<_>>(),
        [JobHealthStatus::Failed, JobHealthStatus::Passed]
    );
    let lines = lines.all();
    assert!(lines.contains(&"health check failed: db (attempt 1/2), retrying...".to_string()), "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains(" | ")), "{lines:?}");
}

#[test]
fn the_command_selects_jobs_and_errors_on_failures_and_unknown_names() {
    let dir = bucket(ssh_server());
    let lines = Lines::default();
    let summary =
        health_check_command(dir.path(), &opts(&["api", " idle "], false, false), &|l| lines.push(l)).unwrap();
    assert_eq!(summary.jobs.iter().map(|j| j.job.as_str()).collect::<Vec<_>>(), ["api", "idle"]);
    assert_eq!(summary.failure(), None);

    let e = health_check_command(dir.path(), &opts(&["db"], false, false), &|_| {}).unwrap_err();
    assert_eq!(e.kind, ErrorKind::HealthCheckFailed);
    assert!(e.to_string().starts_with("health check failed: job db: 127.0.0.1 tcp db_port "), "{e}");

    let e = health_check_command(dir.path(), &opts(&["zzz", "api", "nope"], false, false), &|_| {}).unwrap_err();
    assert_eq!(e.to_string(), "jobs not in this bucket: [nope zzz]");
}

#[test]
fn an_unreachable_worker_stops_before_any_job() {
    let down = free_port();
    let dir = bucket(down);
    let lines = Lines::default();
    let e = health_check_command(dir.path(), &opts(&[], false, false), &|l| lines.push(l)).unwrap_err();
    assert_eq!(e.to_string(), format!("health check failed: worker 127.0.0.1 ssh port {down}: connection refused"));
    assert_eq!(lines.all(), vec!["worker health check failed"]);
}

#[test]
fn an_uninitialized_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = health_check_command(dir.path(), &opts(&[], false, false), &|_| {}).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotInitialized);
}

#[test]
fn the_catalog_json_reads_back_as_the_manifest_spec() {
    let dir = bucket(ssh_server());
    let conn = Bucket::open(dir.path()).unwrap().connect().unwrap();
    let rows = maand_store::catalog::load_jobs(&conn).unwrap();
    for name in ["api", "db", "sshjob"] {
        let manifest_text =
            std::fs::read_to_string(dir.path().join(format!("workspace/jobs/{name}/manifest.json"))).unwrap();
        let manifest = parse_manifest(name, &manifest_text, &mut Vec::new()).unwrap();
        let stored = rows.iter().find(|r| r.name == name).unwrap().health_check.clone().unwrap();
        assert_eq!(Some(parse_health_spec(&stored).unwrap()), manifest.health_check, "job {name}: {stored}");
    }
    assert_eq!(rows.iter().find(|r| r.name == "idle").unwrap().health_check, None);
}

fn bucket_port(bucket: &Bucket, job: &str, name: &str) -> i64 {
    let conn = bucket.connect().unwrap();
    maand_store::catalog::load_job_ports(&conn)
        .unwrap()
        .into_iter()
        .find(|p| p.job == job && p.name == name)
        .unwrap()
        .port
}

/// `maand health_check` as the CLI runs it: a failed job makes it an error.
fn health_check_command(
    root: &std::path::Path,
    opts: &HealthCheckOptions,
    report: &(dyn Fn(&str) + Sync),
) -> maand_core::Result<HealthSummary> {
    let summary = health_check_summary(root, opts, report)?;
    match summary.failure() {
        Some(failure) => Err(failure),
        None => Ok(summary),
    }
}
