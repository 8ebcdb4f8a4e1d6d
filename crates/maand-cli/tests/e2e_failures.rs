//! End-to-end failure handling: a worker killed or frozen in the middle of a rollout.
#![allow(clippy::unwrap_used)]

mod common;
use common::cluster::{Cluster, COUNTING_MAKEFILE};
use serde_json::json;
use std::time::{Duration, Instant};

fn slow_job(c: &Cluster) {
    c.bucket.write(
        "workspace/jobs/app/manifest.json",
        &json!({"version": "1", "selectors": ["app"], "max_concurrent_starts": 1}).to_string(),
    );
    c.bucket.write(
        "workspace/jobs/app/Makefile",
        &COUNTING_MAKEFILE.replace("start:\n\tmkdir -p data\n", "start:\n\tmkdir -p data\n\tsleep 2\n"),
    );
}

#[test]
fn killed_worker_fails_in_bounded_time_and_rerun_completes() {
    let c = Cluster::up(3);
    c.bucket.write("maand.conf", &format!("{}\nremote_timeout_seconds = 20\n", c.bucket.read("maand.conf")));
    slow_job(&c);
    c.bucket.build().ok();
    let victim = c.ip(2);
    let sandbox = c.sandbox();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(2500));
        sandbox.kill_worker(&victim).unwrap();
    });
    let started = Instant::now();
    let out = c.deploy(&[]);
    killer.join().unwrap();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains(&c.ip(2)), "the dead worker is named: {}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
    c.sandbox().restart_worker(&c.ip(2)).unwrap();
    c.deploy(&[]).ok();
    for i in 0..3 {
        assert!(c.kinds(i, "app").contains(&"start".to_string()), "worker {i}: {:?}", c.kinds(i, "app"));
    }
}

#[test]
fn frozen_worker_is_bounded_by_the_timeout() {
    let c = Cluster::up(2);
    c.bucket.write("maand.conf", &format!("{}\nremote_timeout_seconds = 5\n", c.bucket.read("maand.conf")));
    c.bucket.write("workspace/jobs/app/manifest.json", &json!({"version": "1", "selectors": ["app"]}).to_string());
    c.bucket.write("workspace/jobs/app/Makefile", COUNTING_MAKEFILE);
    c.deploy(&["-b"]).ok();
    c.bucket.write("workspace/jobs/app/x.txt", "1\n");
    c.bucket.build().ok();
    c.sandbox().freeze_worker(&c.ip(1)).unwrap();
    let started = Instant::now();
    let out = c.deploy(&[]);
    let took = started.elapsed();
    c.sandbox().thaw_worker(&c.ip(1)).unwrap();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains(&c.ip(1)), "{}", out.stderr);
    assert!(took < Duration::from_secs(90), "a frozen worker hung the deploy for {took:?}");
}
