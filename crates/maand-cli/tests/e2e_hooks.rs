//! End-to-end deploy hooks and the demands endpoint: `post_deploy` once the job is complete (every
//! allocation passed its gate and was promoted), `after_allocation_stopped` once per stopped disabled allocation, and `GET /demands`
//! with the `deployment_seq` the demands give — the real `maand` binary against sandbox workers.
#![allow(clippy::unwrap_used)]

mod common;
use common::cluster::Cluster;
use common::jobcmd::{cluster, command_job, last_event, recorded, reported};
use serde_json::{json, Value};

/// Whether every allocation of `job` is promoted (its staged hash is the promoted one), per worker IP.
/// Worker ip -> whether the job's allocation there is promoted.
fn promoted(c: &Cluster, job: &str) -> std::collections::BTreeMap<String, bool> {
    c.bucket
        .db()
        .prepare(
            "SELECT worker_ip, current_hash IS NOT NULL AND current_hash = previous_hash FROM cat_deployments \
             WHERE job = ?1 ORDER BY worker_ip",
        )
        .unwrap()
        .query_map([job], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// `post_deploy`: records when it ran and whether its allocation was already promoted (read from
/// the catalog, which the deploy keeps in WAL mode); allocation 1 fails while
/// `<bucket>/fail_post_deploy` exists.
const POST_DEPLOY: &str = r#"
import sqlite3
root = maand.find_bucket_root()
db = sqlite3.connect(os.path.join(root, "data", "maand.db"), timeout=10)
row = db.execute("SELECT current_hash, previous_hash FROM hash WHERE namespace = ? AND key = ?",
                 (maand.job_name() + "_allocation", maand.allocation_id())).fetchone()
db.close()
record("post-" + maand.allocation_ip(), {"at": time.time(), "event": maand.command_event(),
                                         "promoted": row is not None and row[0] == row[1]})
if os.path.exists(os.path.join(root, "fail_post_deploy")) and maand.allocation_index() == "1":
    sys.exit(5)
"#;

const HEALTH: &str = r#"
record("health-" + maand.allocation_ip(), {"at": time.time()})
"#;

#[test]
fn post_deploy_runs_once_per_allocation_when_the_job_is_complete_and_a_failure_fails_the_deploy() {
    let c = cluster(2);
    command_job(
        &c,
        "p",
        &[("command_post", &["post_deploy"], POST_DEPLOY), ("command_health", &["health_check"], HEALTH)],
    );
    c.deploy(&["-b"]).ok();
    let posts = |i: usize| recorded(&c, &format!("post-{}", c.ip(i)));
    let health_times: Vec<f64> =
        (0..2).flat_map(|i| recorded(&c, &format!("health-{}", c.ip(i)))).map(|v| v["at"].as_f64().unwrap()).collect();
    assert!(!health_times.is_empty(), "the health gate ran the health_check command");
    for i in 0..2 {
        let post = posts(i);
        assert_eq!(post.len(), 1, "post_deploy ran once on worker {i}: {post:?}");
        assert_eq!(post[0]["event"], "post_deploy");
        assert_eq!(post[0]["promoted"], true, "post_deploy runs once every allocation is promoted");
        let at = post[0]["at"].as_f64().unwrap();
        for j in 0..2 {
            assert!(at > last_event(&c, j, "p", "start").unwrap(), "post_deploy on {i} after the start on {j}");
        }
        assert!(health_times.iter().all(|h| *h < at), "post_deploy on {i} after every health check: {health_times:?}");
    }
    assert_eq!(promoted(&c, "p"), [(c.ip(0), true), (c.ip(1), true)].into());

    // A failing post_deploy fails the deploy; the allocations passed their gates and stay
    // promoted, so the re-run restarts nothing again and runs only post_deploy.
    c.bucket.write("fail_post_deploy", "");
    c.bucket.write("workspace/jobs/p/extra.txt", "x\n");
    let out = c.deploy(&["-b"]);
    out.fails_with(&format!("job p command command_post failed: {}: command execution failed (exit 5)", c.ip(1)));
    for i in 0..2 {
        assert_eq!(c.kinds(i, "p"), ["start", "restart"], "worker {i}");
        assert_eq!(posts(i).len(), 2, "worker {i}");
    }
    assert_eq!(promoted(&c, "p"), [(c.ip(0), true), (c.ip(1), true)].into(), "promoted per allocation after its gate");
    std::fs::remove_file(c.bucket.path("fail_post_deploy")).unwrap();
    let out = c.deploy(&[]).ok();
    assert!(out.stderr.contains("running post_deploy again"), "{}", out.stderr);
    for i in 0..2 {
        assert_eq!(c.kinds(i, "p"), ["start", "restart"], "nothing restarted twice on worker {i}");
        assert_eq!(posts(i).len(), 3, "post_deploy ran again on worker {i}");
    }
    let out = c.deploy(&[]).ok();
    assert!(out.stderr.contains("deploy: skip job \"p\""), "{}", out.stderr);
    assert_eq!(posts(0).len(), 3, "a skipped job runs no post_deploy");
}

/// `after_allocation_stopped`: records its environment.
const STOPPED: &str = r#"
names = ["EVENT", "JOB", "DEPLOY_PHASE", "BATCH_ALLOCATIONS", "BATCH_INDEX", "BATCH_COUNT", "DISABLED"]
record("stopped-" + maand.allocation_ip(), {"at": time.time(), "env": {k: os.environ.get(k) for k in names}})
"#;

#[test]
fn after_allocation_stopped_runs_once_after_a_disabled_allocation_is_stopped() {
    let c = cluster(2);
    command_job(&c, "s", &[("command_stopped", &["after_allocation_stopped"], STOPPED)]);
    c.deploy(&["-b"]).ok();
    let stopped = |i: usize| recorded(&c, &format!("stopped-{}", c.ip(i)));
    assert!(stopped(0).is_empty() && stopped(1).is_empty(), "nothing was stopped yet");

    let w1 = c.ip(1);
    c.bucket.write("workspace/disabled.json", &json!({"jobs": {"s": {"allocations": [w1]}}}).to_string());
    c.deploy(&["-b"]).ok();
    assert_eq!(c.kinds(1, "s"), ["start", "stop"]);
    assert_eq!(c.kinds(0, "s"), ["start"]);
    let hooks = stopped(1);
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    let env = json!({
        "EVENT": "after_allocation_stopped", "JOB": "s", "DEPLOY_PHASE": "stop", "BATCH_ALLOCATIONS": w1,
        "BATCH_INDEX": "0", "BATCH_COUNT": "1", "DISABLED": "1",
    });
    assert_eq!(hooks[0]["env"], env);
    let stop = last_event(&c, 1, "s", "stop").unwrap();
    assert!(hooks[0]["at"].as_f64().unwrap() > stop, "the hook ran after the stop");
    assert!(stopped(0).is_empty(), "only the stopped allocation runs the hook");

    // Still disabled: neither stopped nor hooked again.
    c.deploy(&["-b"]).ok();
    assert_eq!(c.kinds(1, "s"), ["start", "stop"]);
    assert_eq!(stopped(1).len(), 1, "after_allocation_stopped ran again");

    // Re-enabled and disabled again: a new stop, a new hook.
    c.bucket.remove("workspace/disabled.json");
    c.deploy(&["-b"]).ok();
    c.bucket.write("workspace/disabled.json", &json!({"workers": [w1]}).to_string());
    c.deploy(&["-b"]).ok();
    assert_eq!(c.kinds(1, "s"), ["start", "stop", "start", "stop"]);
    assert_eq!(stopped(1).len(), 2);
    assert!(stopped(0).is_empty());
}

/// Adds `demands` to `command` of `job`'s manifest.
fn demand(c: &Cluster, job: &str, command: &str, upstream: (&str, &str), config: Value) {
    let path = format!("workspace/jobs/{job}/manifest.json");
    let mut manifest: Value = serde_json::from_str(&c.bucket.read(&path)).unwrap();
    manifest["commands"][command]["demands"] = json!({"job": upstream.0, "command": upstream.1, "config": config});
    c.bucket.write(&path, &manifest.to_string());
}

const LIST_DEMANDS: &str = r#"
r = maand.list_command_demands()
out("demands-%s-%s" % (maand.command_name(), maand.allocation_ip()), {"status": r.status_code, "body": r.json()})
"#;

/// A downstream `pre_deploy`: when it ran, and the upstream KV its demand lets it read.
const WAIT_UPSTREAM: &str = r#"
record("wait-" + maand.allocation_ip(), {"at": time.time(), "up_workers": maand.get_kv_value("maand/job/up", "workers")})
"#;

#[test]
fn demands_lists_the_downstream_commands_and_deploys_the_upstream_first() {
    let c = cluster(2);
    command_job(&c, "up", &[("command_service", &["cli"], LIST_DEMANDS), ("command_other", &["cli"], LIST_DEMANDS)]);
    command_job(&c, "down", &[("command_wait", &["pre_deploy"], WAIT_UPSTREAM)]);
    command_job(&c, "side", &[("command_peek", &["cli"], "")]);
    let config = json!({"min_version": "1.0.0", "purpose": "schema"});
    demand(&c, "down", "command_wait", ("up", "command_service"), config.clone());
    demand(&c, "side", "command_peek", ("up", "command_service"), json!({}));
    c.bucket.build().ok();

    let jobs = c.bucket.cat(&["jobs"]);
    let seq = |name: &str| jobs.iter().find(|j| j["job"] == name).unwrap()["deployment_seq"].as_i64().unwrap();
    assert_eq!((seq("up"), seq("down"), seq("side")), (0, 1, 1), "{jobs:?}");

    c.bucket.maand(&["job_command", "command_service", "up"]).ok();
    c.bucket.maand(&["job_command", "command_other", "up"]).ok();
    let expected = json!([
        {"job": "down", "command": "command_wait", "demand_config": config},
        {"job": "side", "command": "command_peek", "demand_config": {}},
    ]);
    for i in 0..2 {
        let listed = reported(&c, &format!("demands-command_service-{}", c.ip(i)));
        assert_eq!(listed, json!({"status": 200, "body": expected}), "worker {i}");
        let none = reported(&c, &format!("demands-command_other-{}", c.ip(i)));
        assert_eq!(none, json!({"status": 200, "body": []}), "nobody demands command_other");
    }

    // The deploy rolls out the upstream wave before the downstream job's pre_deploy runs.
    c.deploy(&[]).ok();
    let started = (0..2).map(|i| last_event(&c, i, "up", "start").unwrap()).fold(f64::MIN, f64::max);
    for i in 0..2 {
        let waits = recorded(&c, &format!("wait-{}", c.ip(i)));
        assert_eq!(waits.len(), 1, "{waits:?}");
        assert!(waits[0]["at"].as_f64().unwrap() > started, "down's pre_deploy ran after up started on every worker");
        assert_eq!(waits[0]["up_workers"], format!("{},{}", c.ip(0), c.ip(1)), "the demand grants reading up's KV");
    }
}
