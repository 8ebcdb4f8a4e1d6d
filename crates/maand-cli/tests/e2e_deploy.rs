//! End-to-end deploys: the real `maand` binary against sandbox SSH workers.
#![allow(clippy::unwrap_used)]

mod common;
use common::cluster::{Cluster, COUNTING_MAKEFILE};
use serde_json::json;

fn counting_job(c: &Cluster, name: &str, manifest: serde_json::Value) {
    let b = &c.bucket;
    b.write(&format!("workspace/jobs/{name}/manifest.json"), &manifest.to_string());
    b.write(&format!("workspace/jobs/{name}/Makefile"), COUNTING_MAKEFILE);
}

#[test]
fn deploy_starts_skips_restarts_and_renders() {
    let c = Cluster::up(3);
    counting_job(&c, "app", json!({"version": "1.0.0", "selectors": ["app"]}));
    c.bucket.write(
        "workspace/jobs/app/app.conf.tpl",
        "ip={{ .WorkerIP }} job={{ .Job }} n={{ get \"maand/job/app\" \"workers_length\" }}\n",
    );
    c.bucket.build().ok();
    let out = c.deploy(&[]).ok();
    assert!(out.stderr.contains("deploy: job \"app\" promoted"), "{}", out.stderr);
    assert!(out.stderr.ends_with("deploy: 1 job deployed (app)\n"), "{}", out.stderr);
    for i in 0..3 {
        assert_eq!(c.kinds(i, "app"), ["start"], "worker {i}");
        assert!(c.events(i, "app")[0].ends_with(" 0.0.0 1.0.0"), "{:?}", c.events(i, "app"));
        assert_eq!(c.worker_file(i, "jobs/app/app.conf").unwrap(), format!("ip={} job=app n=3\n", c.ip(i)));
        assert!(c.worker_file(i, "jobs/app/app.conf.tpl").is_none(), ".tpl must not reach workers");
        assert!(c.worker_file(i, "bin/runner.py").is_some());
        let wj: serde_json::Value = serde_json::from_str(&c.worker_file(i, "worker.json").unwrap()).unwrap();
        assert_eq!(wj["update_seq"], 1);
    }
    std::fs::write(c.worker_path(0, "jobs/app/data/keep"), "precious").unwrap();

    // Unchanged: skipped, and not a single SSH connection.
    let before = c.connections();
    let out = c.deploy(&[]).ok();
    assert!(out.stderr.contains("deploy: skip job \"app\" (already promoted on all allocations)"), "{}", out.stderr);
    assert!(out.stderr.ends_with("deploy: 1 unchanged\n"), "{}", out.stderr);
    assert_eq!(c.connections(), before, "an unchanged deploy opened SSH connections");
    let info: serde_json::Value = serde_json::from_str(&c.bucket.maand(&["info", "--json"]).ok().stdout).unwrap();
    assert_eq!(info["update_seq"], 1, "update_seq moves only when workers are synced");

    // A changed file restarts each worker once.
    c.bucket.write("workspace/jobs/app/extra.txt", "x\n");
    c.bucket.build().ok();
    c.deploy(&[]).ok();
    for i in 0..3 {
        assert_eq!(c.kinds(i, "app"), ["start", "restart"], "worker {i}");
    }
    // A version bump passes both versions.
    counting_job(&c, "app", json!({"version": "2.0.0", "selectors": ["app"]}));
    c.deploy(&["-b"]).ok();
    for i in 0..3 {
        assert!(c.events(i, "app").last().unwrap().ends_with(" 1.0.0 2.0.0"), "{:?}", c.events(i, "app"));
    }
    assert_eq!(std::fs::read_to_string(c.worker_path(0, "jobs/app/data/keep")).unwrap(), "precious");
    let deployments = c.bucket.cat(&["deployments"]);
    assert!(
        deployments.iter().all(|d| d["rollout"] == "promoted" && d["current_version"] == "2.0.0"),
        "{deployments:?}"
    );
}

#[test]
fn restart_policy_reload_globs_and_never() {
    let c = Cluster::up(2);
    counting_job(
        &c,
        "app",
        json!({"version": "1", "selectors": ["app"], "restart_policy": "reload", "restart_globs": ["*.conf"]}),
    );
    c.bucket.write("workspace/jobs/app/a.txt", "1\n");
    c.bucket.write("workspace/jobs/app/b.conf", "1\n");
    c.deploy(&["-b"]).ok();
    c.bucket.write("workspace/jobs/app/a.txt", "2\n");
    c.deploy(&["-b"]).ok();
    assert_eq!(c.kinds(0, "app"), ["start", "reload"]);
    c.bucket.write("workspace/jobs/app/b.conf", "2\n");
    c.deploy(&["-b"]).ok();
    assert_eq!(c.kinds(1, "app"), ["start", "reload", "restart"]);
    counting_job(&c, "app", json!({"version": "1", "selectors": ["app"], "restart_policy": "never"}));
    c.bucket.write("workspace/jobs/app/a.txt", "3\n");
    c.deploy(&["-b"]).ok();
    assert_eq!(c.kinds(0, "app"), ["start", "reload", "restart"], "never only syncs");
    assert_eq!(c.worker_file(0, "jobs/app/a.txt").unwrap(), "3\n");
}

/// Restart batches of one in position order with the health gate between them; a failing gate
/// stops the rollout and leaves the remaining workers untouched.
#[test]
fn rolling_restarts_are_ordered_and_gated() {
    let c = Cluster::up(3);
    let makefile = format!("{COUNTING_MAKEFILE}\nbreak:\n\ttouch data/broken\n").replace(
        "restart:\n\tmkdir -p data\n",
        "restart:\n\tmkdir -p data\n\tif [ \"$$NEW_VERSION\" = \"3.0.0\" ]; then touch data/broken; fi\n",
    );
    let manifest = |v: &str| {
        json!({
            "version": v, "selectors": ["app"], "max_concurrent_upgrades": 1,
            "health_check": {
                "checks": [{"type": "ssh", "command": "cd /opt/worker/*/jobs/app && echo \"gate $(date +%s.%N)\" >> data/events && test ! -f data/broken"}],
                "timeout_seconds": 5, "wait": {"attempts": 2, "interval_seconds": 1}
            }
        })
    };
    c.bucket.write("workspace/jobs/app/manifest.json", &manifest("1.0.0").to_string());
    c.bucket.write("workspace/jobs/app/Makefile", &makefile);
    c.deploy(&["-b"]).ok();
    c.bucket.write("workspace/jobs/app/manifest.json", &manifest("2.0.0").to_string());
    c.deploy(&["-b"]).ok();
    // Timestamps of each worker's restart, and of the gates seen on worker 0.
    let ts = |line: &str| line.split_whitespace().nth(1).unwrap().parse::<f64>().unwrap();
    let restart_at = |i: usize| ts(c.events(i, "app").iter().find(|l| l.starts_with("restart")).unwrap());
    let (r0, r1, r2) = (restart_at(0), restart_at(1), restart_at(2));
    assert!(r0 < r1 && r1 < r2, "restarts not in position order: {r0} {r1} {r2}");
    let gates: Vec<f64> = c.events(0, "app").iter().filter(|l| l.starts_with("gate")).map(|l| ts(l)).collect();
    assert!(gates.iter().any(|g| *g > r0 && *g < r1), "no health gate between batch 1 and 2: {gates:?}");
    assert!(gates.iter().any(|g| *g > r1 && *g < r2), "no health gate between batch 2 and 3: {gates:?}");

    // 3.0.0 breaks the first worker it restarts: the rollout stops there.
    c.bucket.write("workspace/jobs/app/manifest.json", &manifest("3.0.0").to_string());
    let out = c.deploy(&["-b"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("health check failed") && out.stderr.contains("app"), "{}", out.stderr);
    assert!(c.events(0, "app").iter().any(|l| l.starts_with("restart") && l.ends_with("3.0.0")));
    for i in 1..3 {
        assert!(!c.events(i, "app").iter().any(|l| l.ends_with("3.0.0")), "worker {i} was touched");
    }
}

#[test]
fn one_ssh_connection_per_worker_for_a_deploy_of_several_jobs() {
    let c = Cluster::up(3);
    for job in ["a", "b", "c"] {
        counting_job(&c, job, json!({"version": "1", "selectors": ["app"]}));
    }
    c.bucket.build().ok();
    let before = c.connections();
    c.deploy(&[]).ok();
    assert_eq!(c.connections() - before, 3, "expected exactly one connection per worker");
    for job in ["a", "b", "c"] {
        assert_eq!(c.kinds(2, job), ["start"]);
    }
}

#[test]
fn failed_job_is_named_others_promoted_and_rerun_resumes() {
    let c = Cluster::up(2);
    counting_job(&c, "good", json!({"version": "1", "selectors": ["app"]}));
    counting_job(&c, "bad", json!({"version": "1", "selectors": ["app"]}));
    c.bucket.write("workspace/jobs/bad/Makefile", "start:\n\t@echo cannot start; exit 3\nstop:\n\ttrue\n");
    let out = c.deploy(&["-b"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("deploy failed") && out.stderr.contains("job bad"), "{}", out.stderr);
    assert!(out.stderr.contains(&c.ip(0)), "the failing worker is named: {}", out.stderr);
    assert!(out.stderr.contains("bad@") && out.stderr.contains("cannot start"), "{}", out.stderr);
    let deployments = c.bucket.cat(&["deployments"]);
    for d in &deployments {
        let want = if d["job"] == "good" { "promoted" } else { "new" };
        assert_eq!(d["rollout"], want, "{d}");
    }
    c.bucket.write("workspace/jobs/bad/Makefile", COUNTING_MAKEFILE);
    let out = c.deploy(&["-b"]).ok();
    assert!(out.stderr.contains("deploy: skip job \"good\""), "{}", out.stderr);
    assert_eq!(c.kinds(0, "good"), ["start"]);
    assert_eq!(c.kinds(0, "bad"), ["start"]);
}

#[test]
fn disabled_allocation_is_stopped_once_and_removed_files_go_but_data_stays() {
    let c = Cluster::up(3);
    counting_job(&c, "app", json!({"version": "1", "selectors": ["app"]}));
    c.deploy(&["-b"]).ok();
    c.bucket.write("workspace/disabled.json", &json!({"jobs": {"app": {"allocations": [c.ip(1)]}}}).to_string());
    let out = c.deploy(&["-b"]).ok();
    assert!(out.stderr.contains(&format!("deploy: stop disabled allocation app on {}", c.ip(1))), "{}", out.stderr);
    assert_eq!(c.kinds(1, "app"), ["start", "stop"]);
    c.deploy(&["-b"]).ok();
    assert_eq!(c.kinds(1, "app"), ["start", "stop"], "a disabled allocation is stopped once");
    // Re-enable: started again.
    c.bucket.remove("workspace/disabled.json");
    c.deploy(&["-b"]).ok();
    assert_eq!(c.kinds(1, "app"), ["start", "stop", "start"]);
    // Remove worker 2 from the job's placement: stopped, files removed, data/ and logs/ kept.
    std::fs::create_dir_all(c.worker_path(2, "jobs/app/logs")).unwrap();
    let mut workers: serde_json::Value = serde_json::from_str(&c.bucket.read("workspace/workers.json")).unwrap();
    workers[2]["labels"] = json!([]);
    c.bucket.write("workspace/workers.json", &workers.to_string());
    c.deploy(&["-b"]).ok();
    assert_eq!(c.kinds(2, "app"), ["start", "stop"]);
    assert!(c.worker_path(2, "jobs/app/data/events").exists());
    assert!(c.worker_path(2, "jobs/app/logs").exists());
    assert!(!c.worker_path(2, "jobs/app/Makefile").exists());
    assert!(!c.worker_path(2, "jobs/app/manifest.json").exists());
}

#[test]
fn dry_run_prints_what_deploy_then_does() {
    let c = Cluster::up(2);
    counting_job(&c, "app", json!({"version": "1", "selectors": ["app"]}));
    counting_job(&c, "other", json!({"version": "1", "selectors": ["app"]}));
    c.deploy(&["-b"]).ok();
    c.bucket.write("workspace/jobs/app/x.txt", "1\n");
    c.bucket.build().ok();
    let before = c.connections();
    let plan = c.deploy(&["--dry-run"]).ok().stdout;
    assert_eq!(c.connections(), before, "dry-run contacted workers");
    assert!(plan.starts_with("deploy dry-run: deployment required"), "{plan}");
    assert!(plan.contains("job \"app\": deploy required"), "{plan}");
    assert!(plan.contains("job \"other\": skip (already promoted on all allocations)"), "{plan}");
    let restarts: Vec<&str> =
        plan.lines().filter(|l| l.trim_start().starts_with(&c.ip(0)) || l.trim_start().starts_with(&c.ip(1))).collect();
    assert_eq!(restarts.len(), 2, "{plan}");
    assert!(restarts.iter().all(|l| l.contains("restart")), "{plan}");
    let json: serde_json::Value = serde_json::from_str(&c.deploy(&["--dry-run", "--json"]).ok().stdout).unwrap();
    assert_eq!(json["waves"][0]["jobs"][0]["allocations"][0]["action"], "restart");
    c.deploy(&[]).ok();
    for i in 0..2 {
        assert_eq!(c.kinds(i, "app"), ["start", "restart"]);
        assert_eq!(c.kinds(i, "other"), ["start"]);
    }
    let plan = c.deploy(&["--dry-run"]).ok().stdout;
    assert!(plan.starts_with("deploy dry-run: no deployment required"), "{plan}");
}

#[test]
fn independent_jobs_of_one_wave_roll_out_concurrently_and_a_dependent_one_waits() {
    let c = Cluster::up(2);
    // `start` takes a second; `late` demands `a`'s command, so it is in the next wave.
    let slow = "start:\n\tmkdir -p data\n\techo \"start $$(date +%s.%N)\" >> data/events\n\tsleep 1\n\techo \"end $$(date +%s.%N)\" >> data/events\n";
    for job in ["a", "b", "late"] {
        c.bucket.write(
            &format!("workspace/jobs/{job}/manifest.json"),
            &json!({"version": "1", "selectors": ["app"]}).to_string(),
        );
        c.bucket.write(&format!("workspace/jobs/{job}/Makefile"), slow);
    }
    c.bucket.write(
        "workspace/jobs/a/manifest.json",
        &json!({"version": "1", "selectors": ["app"], "commands": {"command_ready": {"executed_on": ["cli"]}}})
            .to_string(),
    );
    c.bucket.write("workspace/jobs/a/_modules/command_ready.py", "print('ready')\n");
    c.bucket.write(
        "workspace/jobs/late/manifest.json",
        &json!({"version": "1", "selectors": ["app"],
                "commands": {"command_wait": {"executed_on": ["cli"], "demands": {"job": "a", "command": "command_ready"}}}})
        .to_string(),
    );
    c.bucket.write("workspace/jobs/late/_modules/command_wait.py", "print('waited')\n");
    c.deploy(&["-b"]).ok();

    let at = |job: &str, kind: &str| -> f64 {
        let line = c.events(0, job).into_iter().find(|l| l.starts_with(kind)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let (a, b) = ((at("a", "start"), at("a", "end")), (at("b", "start"), at("b", "end")));
    assert!(a.0 < b.1 && b.0 < a.1, "a {a:?} and b {b:?} did not overlap");
    assert!(at("late", "start") > a.1.max(b.1), "the dependent job started before its wave");
}
