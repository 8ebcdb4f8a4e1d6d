//! End-to-end deploy flags and dependency gating: --jobs, --force, --sync-only, blocked jobs,
//! and workers leaving the catalog.
#![allow(clippy::unwrap_used)]

mod common;
use common::cluster::{Cluster, COUNTING_MAKEFILE};
use serde_json::json;

fn job(c: &Cluster, name: &str, manifest: serde_json::Value) {
    c.bucket.write(&format!("workspace/jobs/{name}/manifest.json"), &manifest.to_string());
    c.bucket.write(&format!("workspace/jobs/{name}/Makefile"), COUNTING_MAKEFILE);
}

#[test]
fn jobs_filter_force_and_sync_only() {
    let c = Cluster::up(2);
    job(&c, "a", json!({"version": "1", "selectors": ["app"]}));
    job(&c, "b", json!({"version": "1", "selectors": ["app"]}));
    c.bucket.build().ok();
    c.deploy(&["--jobs", "a"]).ok();
    assert_eq!(c.kinds(0, "a"), ["start"]);
    assert!(c.kinds(0, "b").is_empty(), "--jobs a deployed b");
    // --sync-only refuses to start new allocations, naming them
    let out = c.deploy(&["--sync-only"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("sync-only deploy cannot start new allocations on job \"b\""), "{}", out.stderr);
    c.deploy(&[]).ok();
    // --sync-only ships a change and promotes without restarting
    c.bucket.write("workspace/jobs/a/conf.txt", "2\n");
    c.deploy(&["-b", "--sync-only"]).ok();
    assert_eq!(c.kinds(0, "a"), ["start"]);
    assert_eq!(c.worker_file(0, "jobs/a/conf.txt").unwrap(), "2\n");
    assert!(c.deploy(&["--dry-run"]).ok().stdout.starts_with("deploy dry-run: no deployment required"));
    // --force restarts promoted jobs
    c.deploy(&["--force", "--jobs", "b"]).ok();
    assert_eq!(c.kinds(1, "b"), ["start", "restart"]);
    assert_eq!(c.kinds(1, "a"), ["start"]);
}

#[test]
fn a_job_whose_upstream_failed_is_blocked() {
    let c = Cluster::up(1);
    let cmd = |demand: Option<&str>| {
        let mut v = json!({"executed_on": ["cli"]});
        if let Some(up) = demand {
            v["demands"] = json!({"job": up, "command": "command_up"});
        }
        v
    };
    job(&c, "up", json!({"version": "1", "selectors": ["app"], "commands": {"command_up": cmd(None)}}));
    job(&c, "down", json!({"version": "1", "selectors": ["app"], "commands": {"command_down": cmd(Some("up"))}}));
    c.bucket.write("workspace/jobs/up/_modules/command_up.py", "print('up')\n");
    c.bucket.write("workspace/jobs/down/_modules/command_down.py", "print('down')\n");
    c.bucket.write("workspace/jobs/up/Makefile", "start:\n\texit 1\nstop:\n\ttrue\n");
    let out = c.deploy(&["-b"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("job down: blocked"), "{}", out.stderr);
    assert!(c.kinds(0, "down").is_empty(), "a blocked job was deployed");
    c.bucket.write("workspace/jobs/up/Makefile", COUNTING_MAKEFILE);
    c.deploy(&["-b"]).ok();
    assert_eq!(c.kinds(0, "down"), ["start"]);
}

#[test]
fn a_worker_leaving_the_catalog_loses_the_bucket_directory() {
    let c = Cluster::up(2);
    job(&c, "app", json!({"version": "1", "selectors": ["app"]}));
    c.deploy(&["-b"]).ok();
    assert!(c.worker_path(1, "worker.json").exists());
    let mut workers: serde_json::Value = serde_json::from_str(&c.bucket.read("workspace/workers.json")).unwrap();
    workers.as_array_mut().unwrap().remove(1);
    c.bucket.write("workspace/workers.json", &workers.to_string());
    c.deploy(&["-b"]).ok();
    assert_eq!(c.kinds(0, "app"), ["start"]);
    let bucket_dir = c.workers[1].opt_dir().join("worker").join(c.bucket_id());
    assert!(!bucket_dir.exists(), "the bucket directory is still on the removed worker");
}
