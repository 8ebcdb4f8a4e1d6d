//! End-to-end rollback: `maand rollback` deploys a job's previous kept release again — its files
//! byte for byte, at its version, in rollout order with gates, `pre_deploy` hooks included — and
//! `deploy --rollback-on-failure` (or the manifest's `rollback_on_failure`) takes what a failed
//! deploy rolled back to what ran before, in reverse order, leaving the workers it did not reach
//! alone. The real `maand` binary against sandbox workers.
#![allow(clippy::unwrap_used)]

mod common;
use common::cluster::{Cluster, JobTree};
use common::jobcmd::{cluster, REPORT_PY};
use serde_json::{json, Value};

/// One version of job `svc` as the workspace holds it.
struct Release {
    version: &'static str,
    conf: &'static str,
    /// `vars.toml` greeting, rendered into `app.conf` by a template.
    greeting: &'static str,
    /// When this shell condition holds on a worker, the service does not come up there.
    down_when: &'static str,
    rollback_on_failure: bool,
}

const V1: Release =
    Release { version: "1.0.0", conf: "one\n", greeting: "hello", down_when: "false", rollback_on_failure: false };
const V2: Release =
    Release { version: "2.0.0", conf: "two\n", greeting: "bonjour", down_when: "false", rollback_on_failure: false };
/// v3 never comes up on a worker whose private `/opt/broken` exists.
const V3: Release = Release {
    version: "3.0.0",
    conf: "three\n",
    greeting: "hallo",
    down_when: "[ -f /opt/broken ]",
    rollback_on_failure: false,
};

/// The health check: `data/up` exists; each probe that passes records `gate <time>` in the events.
const GATE: &str = "cd /opt/worker/*/jobs/svc && test -f data/up && echo \"gate $(date +%s.%N)\" >> data/events";

/// Job `svc` on every worker: a Makefile recording its targets in `data/events`, a plain file, a
/// template rendering a KV value, and a `pre_deploy` command that stores `$SVC_ORDER` as the
/// rollout order and records that it ran.
fn svc(c: &Cluster, r: &Release) {
    let b = &c.bucket;
    b.write(
        "workspace/jobs/svc/manifest.json",
        &json!({
            "version": r.version, "selectors": ["app"], "max_concurrent_upgrades": 1,
            "rollback_on_failure": r.rollback_on_failure,
            "commands": {"command_order": {"executed_on": ["pre_deploy"]}},
            "health_check": {
                "checks": [{"type": "ssh", "command": GATE}],
                "timeout_seconds": 5, "wait": {"attempts": 3, "interval_seconds": 1}
            }
        })
        .to_string(),
    );
    let up = format!("\tif ! ({}); then touch data/up; fi\n", r.down_when);
    b.write(
        "workspace/jobs/svc/Makefile",
        &format!(
            "start:\n\tmkdir -p data\n\techo \"start $$(date +%s.%N)\" >> data/events\n{up}\
             stop:\n\tmkdir -p data\n\trm -f data/up\n\techo \"stop $$(date +%s.%N)\" >> data/events\n\
             restart:\n\tmkdir -p data\n\trm -f data/up\n\techo \"restart-begin $$(date +%s.%N)\" >> data/events\n\
             \techo \"restart $$(date +%s.%N)\" >> data/events\n{up}"
        ),
    );
    b.write("workspace/jobs/svc/conf.txt", r.conf);
    b.write("workspace/jobs/svc/vars.toml", &format!("greeting = \"{}\"\n", r.greeting));
    b.write("workspace/jobs/svc/app.conf.tpl", "greeting={{ get \"vars/job/svc\" \"greeting\" }} on {{ .WorkerIP }}\n");
    b.write(
        "workspace/jobs/svc/_modules/command_order.py",
        &format!("{REPORT_PY}\nmaand.put_rollout_order(os.environ[\"SVC_ORDER\"])\nrecord(\"pre_deploy\", 1)\n"),
    );
}

fn trees(c: &Cluster) -> Vec<JobTree> {
    (0..c.workers.len()).map(|i| c.job_tree(i, "svc")).collect()
}

/// Event kinds on worker i, without the gates' probes.
fn lifecycle(c: &Cluster, i: usize) -> Vec<String> {
    c.kinds(i, "svc").into_iter().filter(|k| k != "gate").collect()
}

/// Times `pre_deploy` ran so far (each run of the hook, on each allocation).
fn pre_deploy_runs(c: &Cluster) -> usize {
    std::fs::read_to_string(c.bucket.path("out/pre_deploy")).map(|t| t.lines().count()).unwrap_or(0)
}

/// The promoted version of each allocation of `svc`, by worker.
fn promoted_versions(c: &Cluster) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = c
        .bucket
        .cat(&["deployments", "--jobs", "svc"])
        .iter()
        .map(|r| (r["worker_ip"].as_str().unwrap().to_string(), r["current_version"].as_str().unwrap().to_string()))
        .collect();
    rows.sort();
    rows
}

/// Worker `i`'s last restart: when it began and when it ended.
fn last_restart(c: &Cluster, i: usize) -> (f64, f64) {
    let begin = *c.event_times(i, "svc", "restart-begin").last().unwrap();
    (begin, *c.event_times(i, "svc", "restart").last().unwrap())
}

/// The last restarts of workers `order` (indexes) ran one after another in that order, and
/// between each and the next a gate probed the one before.
fn restarted_in_order_with_gates(c: &Cluster, order: &[usize]) {
    for pair in order.windows(2) {
        let (_, done) = last_restart(c, pair[0]);
        let (next, _) = last_restart(c, pair[1]);
        assert!(done < next, "worker {} restarted before worker {} finished", pair[1], pair[0]);
        let gated = c.event_times(pair[0], "svc", "gate").into_iter().any(|t| done < t && t < next);
        assert!(gated, "no gate on worker {} between its restart and worker {}'s", pair[0], pair[1]);
    }
}

fn ips(c: &Cluster, order: &[usize]) -> Vec<String> {
    order.iter().map(|&i| c.ip(i)).collect()
}

#[test]
fn rollback_deploys_the_previous_release_byte_for_byte_in_rollout_order_with_gates() {
    let c = cluster(3);
    let order = [2, 0, 1];
    std::env::set_var("SVC_ORDER", ips(&c, &order).join(","));
    svc(&c, &V1);
    c.deploy(&["-b"]).ok();
    let v1 = trees(&c);
    assert!(v1[0].contains_key("app.conf") && !v1[0].contains_key("app.conf.tpl"), "{:?}", v1[0].keys());
    svc(&c, &V2);
    c.deploy(&["-b"]).ok();
    let v2 = trees(&c);
    for (i, v1) in v1.iter().enumerate() {
        assert_ne!(&v2[i], v1, "v2 differs from v1 on worker {i}");
    }

    // The kept releases, newest first.
    let list: Value =
        serde_json::from_str(&c.bucket.maand(&["rollback", "svc", "--list", "--json"]).ok().stdout).unwrap();
    assert_eq!(list.as_array().unwrap().iter().map(|r| r["release"].clone()).collect::<Vec<_>>(), [json!(2), json!(1)]);
    assert_eq!(list[1]["version"], json!(["1.0.0"]));
    assert_eq!(list[1]["workers"].as_array().unwrap().len(), 3);

    // The plan: every allocation back to release 1, file diffs, batches in rollout order; nothing runs.
    let events: Vec<Vec<String>> = (0..3).map(|i| lifecycle(&c, i)).collect();
    let plan = c.bucket.maand(&["rollback", "svc", "--dry-run", "--diff"]).ok().stdout;
    assert!(plan.starts_with("rollback dry-run: deployment required"), "{plan}");
    assert_eq!(plan.matches("restart version 2.0.0 -> 1.0.0 from release 1").count(), 3, "{plan}");
    assert!(plan.contains("-two\n") && plan.contains("+one\n"), "{plan}");
    assert!(plan.contains("-greeting=bonjour") && plan.contains("+greeting=hello"), "{plan}");
    assert!(plan.contains(&format!("1. update restart: {} -> gate: {}", c.ip(2), c.ip(2))), "{plan}");
    assert_eq!((0..3).map(|i| lifecycle(&c, i)).collect::<Vec<_>>(), events, "the dry-run ran a lifecycle step");
    assert_eq!(trees(&c), v2, "the dry-run changed files on a worker");

    let hooks = pre_deploy_runs(&c);
    let out = c.bucket.maand(&["rollback", "svc"]).ok();
    let back = format!("rollback: job \"svc\" back to release 1 (version 1.0.0) on {}", ips(&c, &[0, 1, 2]).join(", "));
    assert!(out.stderr.contains(&back), "{}", out.stderr);
    // Files exactly as release 1 rendered them (the KV now holds v2's greeting), modes included.
    assert_eq!(trees(&c), v1);
    for i in 0..3 {
        assert_eq!(lifecycle(&c, i), ["start", "restart-begin", "restart", "restart-begin", "restart"], "worker {i}");
        assert!(c.worker_path(i, "jobs/svc/data/up").exists(), "worker {i} left down");
    }
    restarted_in_order_with_gates(&c, &order);
    assert_eq!(c.logged_rollout(c.update_seq(), "svc", "restart"), ips(&c, &order), "the run log's restarts");
    assert!(pre_deploy_runs(&c) > hooks, "the rollback ran the pre_deploy hook");
    let versions = promoted_versions(&c);
    assert!(versions.iter().all(|(_, v)| v == "1.0.0"), "{versions:?}");
    assert_eq!(c.bucket.kv(&format!("maand/job/svc/worker/{}", c.ip(0)), "version").as_deref(), Some("1.0.0"));

    // The history: deploy v1, deploy v2, the rollback to v1 (newest first).
    let history: Value = serde_json::from_str(&c.bucket.maand(&["history", "--json"]).ok().stdout).unwrap();
    let runs = history.as_array().unwrap();
    let kinds: Vec<&str> = runs.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["rollback", "deploy", "deploy"], "{history:#}");
    let rollback = &runs[0]["jobs"][0];
    assert_eq!(
        (&rollback["job"], &rollback["version_from"], &rollback["version_to"]),
        (&json!("svc"), &json!("2.0.0"), &json!("1.0.0")),
        "{history:#}"
    );
    assert_eq!(rollback["promoted"].as_array().unwrap().len(), 3, "{history:#}");
    assert_eq!(runs[0]["result"], "ok");
    assert_eq!(runs[1]["jobs"][0]["version_to"], "2.0.0");

    // The workspace still says v2: the plan shows that it differs from what runs.
    let pending = c.deploy(&["--dry-run", "--exit-code"]);
    assert_eq!(pending.code, 2, "{}", pending.stdout);
    assert_eq!(pending.stdout.matches("version 1.0.0 -> 2.0.0").count(), 3, "{}", pending.stdout);
}

#[test]
fn rollback_refuses_what_it_cannot_do_and_names_it() {
    let c = cluster(1);
    std::env::set_var("SVC_ORDER", c.ip(0));
    svc(&c, &V1);
    c.deploy(&["-b"]).ok();
    let before = c.bucket.dump();
    let out = c.bucket.maand(&["rollback", "svc"]);
    out.fails_with(&format!("no kept release before the one it runs on {} (its releases: 1)", c.ip(0)));
    c.bucket.maand(&["rollback", "svc", "--to", "7"]).fails_with("job svc has no release 7 (its releases: 1)");
    c.bucket.maand(&["rollback", "nope"]).fails_with("cannot roll back job nope: it is not in the catalog");
    assert_eq!(c.bucket.dump(), before, "a refused rollback changed the catalog");
    assert_eq!(lifecycle(&c, 0), ["start"]);
}

#[test]
fn a_failed_batch_is_rolled_back_in_reverse_order_and_the_rest_is_never_touched() {
    let c = cluster(3);
    std::env::set_var("SVC_ORDER", ips(&c, &[0, 1, 2]).join(","));
    svc(&c, &V2);
    c.deploy(&["-b"]).ok();
    let v2 = trees(&c);

    // v3 fails its health check on the first batch's worker.
    std::fs::write(c.workers[0].opt_dir().join("broken"), "").unwrap();
    svc(&c, &V3);
    let out = c.deploy(&["-b", "--rollback-on-failure"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let rolled = format!("automatic rollback of {} to release 1 (2.0.0): succeeded", c.ip(0));
    assert!(out.stderr.contains(&rolled), "{}", out.stderr);
    assert!(out.stderr.contains("deploy failed: job svc:") && out.stderr.contains("health check"), "{}", out.stderr);
    assert_eq!(c.job_tree(0, "svc"), v2[0], "the first worker runs v2's files again");
    assert_eq!(lifecycle(&c, 0), ["start", "restart-begin", "restart", "restart-begin", "restart"]);
    assert!(c.worker_path(0, "jobs/svc/data/up").exists(), "v2 came back up");
    for (i, files) in v2.iter().enumerate().skip(1) {
        assert_eq!(lifecycle(&c, i), ["start"], "worker {i} was touched");
        assert_eq!(&c.job_tree(i, "svc"), files, "worker {i}");
    }
    let versions = promoted_versions(&c);
    assert!(versions.iter().all(|(_, v)| v == "2.0.0"), "{versions:?}");
    let pending = c.deploy(&["--dry-run", "--exit-code"]);
    assert_eq!(pending.code, 2, "the change is still pending:\n{}", pending.stdout);

    // The same change again, now failing in the second batch, rolled back by the manifest's option:
    // the failed worker first, then the one this run had promoted; the third is never reached.
    std::fs::remove_file(c.workers[0].opt_dir().join("broken")).unwrap();
    std::fs::write(c.workers[1].opt_dir().join("broken"), "").unwrap();
    svc(&c, &Release { rollback_on_failure: true, ..V3 });
    let out = c.deploy(&["-b"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let rolled =
        format!("automatic rollback of {} to release 1 (2.0.0), {} to release 2 (2.0.0): succeeded", c.ip(1), c.ip(0));
    assert!(out.stderr.contains(&rolled), "{}", out.stderr);
    for (i, files) in v2.iter().enumerate().take(2) {
        assert_eq!(&c.job_tree(i, "svc"), files, "worker {i} runs v2's files again");
        assert!(c.worker_path(i, "jobs/svc/data/up").exists(), "worker {i} left down");
    }
    restarted_in_order_with_gates(&c, &[1, 0]);
    assert_eq!(lifecycle(&c, 2), ["start"], "the worker the run did not reach was touched");
    assert_eq!(c.job_tree(2, "svc"), v2[2]);
    let versions = promoted_versions(&c);
    assert!(versions.iter().all(|(_, v)| v == "2.0.0"), "{versions:?}");
}
