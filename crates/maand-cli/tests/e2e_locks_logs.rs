//! End-to-end: the exclusive bucket lock and the structured logs of a deploy.
#![allow(clippy::unwrap_used)]

mod common;
use common::cluster::{Cluster, COUNTING_MAKEFILE};
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn a_second_run_fails_at_once_naming_the_lock_holder() {
    let c = Cluster::up(1);
    c.bucket.write("workspace/jobs/app/manifest.json", &json!({"version": "1", "selectors": ["app"]}).to_string());
    c.bucket.write(
        "workspace/jobs/app/Makefile",
        &COUNTING_MAKEFILE.replace("start:\n\tmkdir -p data\n", "start:\n\tmkdir -p data\n\tsleep 4\n"),
    );
    c.bucket.build().ok();
    let root = c.bucket.root().to_path_buf();
    let deploy = std::thread::spawn(move || common::maand_in(&root, &["deploy"]));
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    let out = c.bucket.maand(&["build"]);
    assert!(started.elapsed() < Duration::from_secs(3), "the second run waited for the lock");
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("deploy") && out.stderr.contains("pid"), "holder not named: {}", out.stderr);
    deploy.join().unwrap().ok();
    c.bucket.build().ok();
}

#[test]
fn deploy_writes_structured_logs_per_worker_and_per_run() {
    let c = Cluster::up(2);
    c.bucket.write("workspace/jobs/app/manifest.json", &json!({"version": "1", "selectors": ["app"]}).to_string());
    c.bucket.write(
        "workspace/jobs/app/Makefile",
        &format!("{COUNTING_MAKEFILE}\n").replace("start:\n", "start:\n\t@echo hello-from-start\n"),
    );
    c.deploy(&["-b"]).ok();
    let log = c.bucket.read(&format!("logs/{}.log", c.ip(1)));
    let start_begin = log
        .lines()
        .find(|l| l.contains("event=command_begin") && l.contains("phase=rollout") && l.contains("action=start"))
        .unwrap_or_else(|| panic!("no start command_begin in:\n{log}"));
    assert!(start_begin.contains("job=app") && start_begin.contains(&format!("worker={}", c.ip(1))), "{start_begin}");
    assert!(log.lines().any(|l| l.contains("stream=stdout") && l.contains("msg=hello-from-start")), "{log}");
    assert!(
        log.lines().any(|l| l.contains("event=command_end") && l.contains("exit=0") && l.contains("duration_ms=")),
        "{log}"
    );
    let runs: Vec<_> = std::fs::read_dir(c.bucket.path("logs/runs")).unwrap().collect();
    assert_eq!(runs.len(), 1, "one run directory per deploy");
    let run_dir = runs[0].as_ref().unwrap().path();
    assert!(run_dir.join(format!("{}.log", c.ip(0))).exists());
    let raw = c.bucket.maand(&["logs", "show", "--worker", &c.ip(0), "--event", "command_end"]).ok().stdout;
    assert!(raw.lines().count() >= 2 && raw.lines().all(|l| l.contains("event=command_end")), "{raw}");
}
