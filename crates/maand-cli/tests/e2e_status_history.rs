//! End-to-end `maand status` and `maand history` with the real binary on sandbox workers: drift
//! (a hand-edited file, named) and a stopped service (unhealthy) make status exit 1, a deploy
//! repairs both (exit 0); pending changes follow the workspace and the build; the history records
//! deploy v1, deploy v2 and a job restart newest first with kinds, versions, allocations and
//! results — and a run killed on the way as aborted.
#![allow(clippy::unwrap_used)]

mod common;
use common::cluster::Cluster;
use common::Output;
use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

/// A service whose `data/up` marks it healthy; `restart` takes `sleep` seconds when that file exists.
const SERVICE_MAKEFILE: &str = "\
start:
\tmkdir -p data
\ttouch data/up
stop:
\trm -f data/up
restart:
\tsleep $$(cat sleep 2>/dev/null || echo 0)
\tmkdir -p data
\ttouch data/up
status:
\ttest -f data/up
";

fn service(c: &Cluster, version: &str, conf: &str) {
    c.bucket.write(
        "workspace/jobs/svc/manifest.json",
        &json!({
            "version": version, "selectors": ["app"],
            "health_check": {
                "checks": [{"type": "ssh", "command": "test -f /opt/worker/*/jobs/svc/data/up"}],
                "timeout_seconds": 5, "wait": {"attempts": 5, "interval_seconds": 1}
            }
        })
        .to_string(),
    );
    c.bucket.write("workspace/jobs/svc/Makefile", SERVICE_MAKEFILE);
    c.bucket.write("workspace/jobs/svc/conf.txt", conf);
}

fn status_json(c: &Cluster) -> (i32, Value) {
    let out = c.bucket.maand(&["status", "--json"]);
    (out.code, serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", out.stdout, out.stderr)))
}

/// The status of allocation `ip` of job `svc`.
fn allocation<'a>(status: &'a Value, ip: &str) -> &'a Value {
    let job = status["jobs"].as_array().unwrap().iter().find(|j| j["job"] == "svc").unwrap();
    job["allocations"].as_array().unwrap().iter().find(|a| a["worker_ip"] == ip).unwrap()
}

/// The text table row of `ip`.
fn row<'a>(out: &'a Output, ip: &str) -> &'a str {
    out.stdout
        .lines()
        .find(|l| l.contains(&format!(" {ip} ")))
        .unwrap_or_else(|| panic!("no row for {ip}:\n{}", out.stdout))
}

#[test]
fn status_names_drift_and_unhealthy_allocations_and_a_deploy_clears_them() {
    let c = Cluster::up(3);
    service(&c, "1.0.0", "one\n");
    c.deploy(&["-b"]).ok();

    let out = c.bucket.maand(&["status"]).ok();
    assert!(
        out.stdout.contains("status: 1 job, 3 allocations: 3 healthy; no drift; no pending change"),
        "{}",
        out.stdout
    );
    let (code, status) = status_json(&c);
    assert_eq!(code, 0);
    assert_eq!(status["summary"]["ok"], true);
    for i in 0..3 {
        let a = allocation(&status, &c.ip(i));
        assert_eq!(
            (&a["version"], &a["health"], &a["drift"], &a["pending"]),
            (&json!("1.0.0"), &json!("healthy"), &json!("none"), &Value::Null)
        );
        assert!(a["last_deploy_at"].as_i64().unwrap() > 0, "{a}");
    }

    // A hand edit on worker 1 (plus runtime files that do not count), a stopped service on worker 2.
    std::fs::write(c.worker_path(1, "jobs/svc/conf.txt"), "edited by hand\n").unwrap();
    std::fs::write(c.worker_path(1, "jobs/svc/data/state"), "runtime\n").unwrap();
    std::fs::create_dir_all(c.worker_path(1, "jobs/svc/logs")).unwrap();
    std::fs::write(c.worker_path(1, "jobs/svc/logs/out.log"), "log\n").unwrap();
    c.bucket.maand(&["job", "stop", "svc", "--allocations", &c.ip(2)]).ok();

    let out = c.bucket.maand(&["status"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(row(&out, &c.ip(1)).contains("changed conf.txt"), "{}", out.stdout);
    assert!(row(&out, &c.ip(2)).contains("unhealthy"), "{}", out.stdout);
    assert!(row(&out, &c.ip(0)).contains("healthy") && row(&out, &c.ip(0)).contains("none"), "{}", out.stdout);
    assert!(out.stdout.contains("2 healthy, 1 unhealthy; 1 drifted"), "{}", out.stdout);
    assert!(out.stderr.contains(&format!("job svc on {}: drifted (changed conf.txt)", c.ip(1))), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("job svc on {}: unhealthy", c.ip(2))), "{}", out.stderr);
    let (code, status) = status_json(&c);
    assert_eq!(code, 1);
    assert_eq!(status["summary"]["ok"], false);
    let drifted = allocation(&status, &c.ip(1));
    assert_eq!(drifted["drift"], "drifted");
    assert_eq!(drifted["files"], json!({"added": [], "changed": ["conf.txt"], "missing": []}));
    assert_eq!(drifted["health"], "healthy");
    assert_eq!(allocation(&status, &c.ip(2))["health"], "unhealthy");
    assert_eq!(allocation(&status, &c.ip(2))["drift"], "none");

    // A forced deploy ships the release again (the edit is undone) and restarts the stopped service.
    c.deploy(&["--force"]).ok();
    let out = c.bucket.maand(&["status"]).ok();
    assert!(out.stdout.contains("3 healthy; no drift"), "{}", out.stdout);
    assert_eq!(c.worker_file(1, "jobs/svc/conf.txt").as_deref(), Some("one\n"));

    // A workspace edit is noticed before the build; after it, each allocation has a pending restart.
    service(&c, "1.0.0", "two\n");
    let (code, status) = status_json(&c);
    assert_eq!(code, 0, "pending changes are not failures");
    assert_eq!(status["jobs"][0]["workspace_changed"], true);
    assert!(status["notes"][0].as_str().unwrap().contains("run maand build"), "{status}");
    assert_eq!(allocation(&status, &c.ip(0))["pending"], Value::Null, "the catalog has no change yet");
    c.bucket.build().ok();
    let (_, status) = status_json(&c);
    assert_eq!(status["jobs"][0]["workspace_changed"], false);
    for i in 0..3 {
        assert_eq!(allocation(&status, &c.ip(i))["pending"], "restart");
    }
    assert_eq!(status["summary"]["pending"], 3);
}

/// `maand history --json` parsed.
fn history(c: &Cluster, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["history", "--json"];
    args.extend_from_slice(extra);
    serde_json::from_str::<Vec<Value>>(&c.bucket.maand(&args).ok().stdout).unwrap()
}

#[test]
fn history_shows_deploys_and_a_restart_newest_first() {
    let c = Cluster::up(2);
    let ips = json!([c.ip(0), c.ip(1)]);
    service(&c, "1.0.0", "one\n");
    c.deploy(&["-b"]).ok();
    service(&c, "2.0.0", "one\n");
    c.deploy(&["-b"]).ok();
    c.deploy(&[]).ok();
    c.deploy(&["--dry-run"]).ok();
    c.bucket.maand(&["job", "restart", "svc"]).ok();
    c.bucket.maand(&["job", "status", "svc"]).ok();

    let runs = history(&c, &[]);
    assert_eq!(runs.len(), 3, "no-op deploys, dry-runs and job status are not recorded: {runs:#?}");
    let kinds: Vec<(&Value, &Value)> = runs.iter().map(|r| (&r["kind"], &r["target"])).collect();
    assert_eq!(
        kinds,
        [(&json!("job"), &json!("restart")), (&json!("deploy"), &Value::Null), (&json!("deploy"), &Value::Null)]
    );
    let argv: Vec<Vec<&str>> =
        runs.iter().map(|r| r["argv"].as_array().unwrap()[1..].iter().map(|a| a.as_str().unwrap()).collect()).collect();
    assert_eq!(argv, [vec!["job", "restart", "svc"], vec!["deploy", "-b"], vec!["deploy", "-b"]]);
    let ids: Vec<i64> = runs.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert!(ids[0] > ids[1] && ids[1] > ids[2], "{ids:?}");
    for r in &runs {
        assert_eq!(r["result"], "ok", "{r}");
        assert!(r["who"].as_str().unwrap().contains('@'), "{r}");
        assert!(r["duration_ms"].as_i64().unwrap() >= 0, "{r}");
        assert!(r["started"].as_str().unwrap().ends_with('Z'), "{r}");
    }
    let job = |i: usize| &runs[i]["jobs"][0];
    assert_eq!(runs[0]["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(
        (&job(0)["job"], &job(0)["version_from"], &job(0)["version_to"], &job(0)["allocations"], &job(0)["result"]),
        (&json!("svc"), &json!("2.0.0"), &json!("2.0.0"), &ips, &json!("ok"))
    );
    assert_eq!((&job(1)["version_from"], &job(1)["version_to"]), (&json!("1.0.0"), &json!("2.0.0")));
    assert_eq!((&job(1)["allocations"], &job(1)["promoted"]), (&ips, &ips));
    assert_eq!((&job(2)["version_from"], &job(2)["version_to"]), (&Value::Null, &json!("1.0.0")));
    assert_eq!((&job(2)["allocations"], &job(2)["result"]), (&ips, &json!("ok")));

    let text = c.bucket.maand(&["history"]).ok().stdout;
    let restart = text.find("job restart").unwrap();
    let v2 = text.find("1.0.0 → 2.0.0").unwrap();
    let v1 = text.find("- → 1.0.0").unwrap();
    assert!(restart < v2 && v2 < v1, "newest first:\n{text}");
    assert!(text.contains("2.0.0 → 2.0.0") && text.contains("maand job restart svc"), "{text}");
    assert!(text.contains(&format!("{},{}", c.ip(0), c.ip(1))), "{text}");

    assert_eq!(history(&c, &["--jobs", "svc"]).len(), 3);
    assert!(history(&c, &["--jobs", "other"]).is_empty());
    // Status says when each allocation was last deployed: the v2 deploy.
    let (_, status) = status_json(&c);
    assert_eq!(allocation(&status, &c.ip(0))["last_deploy_at"], runs[1]["started_at"]);
}

#[test]
fn a_run_killed_on_the_way_reads_as_aborted() {
    let c = Cluster::up(1);
    service(&c, "1.0.0", "one\n");
    c.deploy(&["-b"]).ok();
    c.bucket.write("workspace/jobs/svc/sleep", "3\n");
    c.deploy(&["-b"]).ok();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("maand"))
        .current_dir(c.bucket.root())
        .env("MAAND_TEST", "1")
        .args(["job", "restart", "svc"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while history(&c, &[]).first().is_none_or(|r| r["result"] != "running") {
        assert!(Instant::now() < deadline, "the run was never recorded as running");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::process::Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status().unwrap();
    child.wait().unwrap();
    let runs = history(&c, &[]);
    assert_eq!((&runs[0]["kind"], &runs[0]["result"]), (&json!("job"), &json!("aborted")), "{runs:#?}");
    assert!(runs[0]["reason"].as_str().unwrap().contains("ended before the run finished"), "{}", runs[0]);
    assert_eq!(runs[0]["duration_ms"], Value::Null);
    assert!(c.bucket.maand(&["history"]).ok().stdout.contains("aborted"));
}
