//! End-to-end day-2 operations on sandbox workers with the real binary: `maand job …`,
//! `run_command`, `worker_facts`, `gc`, `health_check` and `logs show`.
#![allow(clippy::unwrap_used)]

mod common;
use common::cluster::{Cluster, COUNTING_MAKEFILE};
use serde_json::{json, Value};
use std::time::Duration;

/// The counting Makefile plus `status` and a custom `migrate` target.
fn job(c: &Cluster, name: &str, manifest: Value) {
    c.bucket.write(&format!("workspace/jobs/{name}/manifest.json"), &manifest.to_string());
    let makefile = format!("{COUNTING_MAKEFILE}status:\n\ttrue\nmigrate:\n\tmkdir -p data\n\techo \"migrate $$(date +%s.%N)\" >> data/events\n");
    c.bucket.write(&format!("workspace/jobs/{name}/Makefile"), &makefile);
}

fn ts(line: &str) -> f64 {
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Timestamp of the last `kind` event of `job` on worker `i`.
fn last(c: &Cluster, i: usize, job: &str, kind: &str) -> f64 {
    ts(c.events(i, job).iter().rev().find(|l| l.starts_with(&format!("{kind} "))).unwrap())
}

fn set_workers_json(c: &Cluster, edit: impl FnOnce(&mut Vec<Value>)) {
    let mut workers: Vec<Value> = serde_json::from_str(&c.bucket.read("workspace/workers.json")).unwrap();
    edit(&mut workers);
    c.bucket.write("workspace/workers.json", &serde_json::to_string_pretty(&workers).unwrap());
}

/// Edit `/opt/worker/<bucket>/worker.json` on worker `i` (restored from `original` afterwards).
fn set_worker_json(c: &Cluster, i: usize, key: &str, value: Value) -> String {
    let original = c.worker_file(i, "worker.json").unwrap();
    let mut doc: Value = serde_json::from_str(&original).unwrap();
    doc[key] = value;
    std::fs::write(c.worker_path(i, "worker.json"), doc.to_string()).unwrap();
    original
}

#[test]
fn job_targets_run_in_gated_batches_after_the_sync_check() {
    let c = Cluster::up(3);
    let gate = "cd /opt/worker/*/jobs/app && echo \"gate $(date +%s.%N)\" >> data/events";
    job(
        &c,
        "app",
        json!({"version": "1", "selectors": ["app"], "max_concurrent_upgrades": 2,
               "health_check": {"checks": [{"type": "ssh", "command": gate}], "wait": {"attempts": 2, "interval_seconds": 1}}}),
    );
    c.deploy(&["-b"]).ok();
    let (a, b, z) = (c.ip(0), c.ip(1), c.ip(2));

    // stop: every worker, batches of 2 in position order (no health gate after stop).
    let out = c.bucket.maand(&["job", "stop", "app", "--health_check"]).ok();
    assert!(out.stderr.contains(&format!("job: stop app batch 1/2 on {a}, {b}")), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("job: stop app batch 2/2 on {z}")), "{}", out.stderr);
    assert!(last(&c, 0, "app", "stop").max(last(&c, 1, "app", "stop")) < last(&c, 2, "app", "stop"));

    // start (built-in names are case-insensitive) and a health-gated restart in batches {a, b}, {z}.
    c.bucket.maand(&["job", "run", "app", "--target", "START"]).ok();
    c.bucket.maand(&["job", "restart", "app", "--health_check"]).ok();
    let (r0, r2) = (last(&c, 0, "app", "restart"), last(&c, 2, "app", "restart"));
    let gates: Vec<f64> = c.events(1, "app").iter().filter(|l| l.starts_with("gate")).map(|l| ts(l)).collect();
    assert!(gates.iter().any(|g| *g > r0 && *g < r2), "no health gate between the two batches: {r0} {gates:?} {r2}");
    assert!(gates.iter().any(|g| *g > r2), "no health gate after the last batch");

    // A custom target on two of the allocations.
    c.bucket.maand(&["job", "run", "app", "--target", "migrate", "--allocations", &format!("{a},{z}")]).ok();
    let counters = |i: usize| c.kinds(i, "app").into_iter().filter(|k| k != "gate").collect::<Vec<_>>();
    assert_eq!(counters(0), ["start", "stop", "start", "restart", "migrate"]);
    assert_eq!(counters(1), ["start", "stop", "start", "restart"]);
    assert_eq!(counters(2), ["start", "stop", "start", "restart", "migrate"]);

    // Bad input is refused before any worker is touched.
    let before: Vec<Vec<String>> = (0..3).map(counters).collect();
    c.bucket.maand(&["job", "run", "app", "--target", "re load"]).fails_with(
        "invalid job control target \"re load\" (built-in: start, stop, restart, status; custom targets must match [a-zA-Z0-9][a-zA-Z0-9_.-]*)",
    );
    c.bucket.maand(&["job", "run", "app"]).fails_with("--target");
    c.bucket.maand(&["job", "start", "app,nope"]).fails_with("invalid jobs filter: [nope]");
    c.bucket
        .maand(&["job", "stop", "app", "--allocations", "10.9.9.9"])
        .fails_with("invalid workers filter: [10.9.9.9]");

    // Workers out of sync with the bucket are refused with the real reason.
    let original = set_worker_json(&c, 1, "update_seq", json!(0));
    let out = c.bucket.maand(&["job", "restart", "app"]).fails_with("run maand deploy");
    assert!(out.stderr.contains(&format!("worker {b}: stale update_seq")), "{}", out.stderr);
    assert!(out.stderr.contains("worker is at update_seq 0, the bucket is at 1"), "{}", out.stderr);
    std::fs::write(c.worker_path(1, "worker.json"), &original).unwrap();
    set_worker_json(&c, 2, "bucket_id", json!("another-bucket"));
    let out = c.bucket.maand(&["job", "restart", "app"]).fails_with("run maand deploy");
    assert!(out.stderr.contains(&format!("worker {z}: deployed by another bucket")), "{}", out.stderr);
    assert!(out.stderr.contains("belongs to bucket another-bucket"), "{}", out.stderr);
    assert_eq!((0..3).map(counters).collect::<Vec<_>>(), before, "a refused command ran a target");

    // A deploy brings the worker back in sync.
    c.deploy(&["--force"]).ok();
    c.bucket.maand(&["job", "status", "app"]).ok();
}

#[test]
fn run_command_in_fixed_batches_names_failed_workers() {
    let c = Cluster::up(5);
    c.bucket.build().ok();
    let bucket_id = c.bucket_id();
    let out =
        c.bucket.maand(&["run_command", "-c", "2", "echo \"at $(date +%s.%N) $WORKER_IP $BUCKET_ID\"; sleep 0.3"]).ok();
    assert!(out.stderr.contains("run_command: batch 3/3"), "{}", out.stderr);
    let at = |i: usize| -> f64 {
        let prefix = format!("{} | at ", c.ip(i));
        // The remote output is the command's result: on stdout.
        let line = out.stdout.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("{}", out.stdout));
        assert!(line.ends_with(&format!(" {} {bucket_id}", c.ip(i))), "{line}");
        line[prefix.len()..].split_whitespace().next().unwrap().parse().unwrap()
    };
    let t: Vec<f64> = (0..5).map(at).collect();
    // Batches 2,2,1: a batch starts after the previous one ended (0.3 s of sleep).
    assert!(t[0].max(t[1]) + 0.3 <= t[2].min(t[3]), "{t:?}");
    assert!(t[2].max(t[3]) + 0.3 <= t[4], "{t:?}");
    assert!((t[0] - t[1]).abs() < 0.25 && (t[2] - t[3]).abs() < 0.25, "a batch runs in parallel: {t:?}");

    let failing = c.ip(3);
    let script = format!("if [ \"$WORKER_IP\" = \"{failing}\" ]; then echo boom >&2; exit 3; fi; echo fine");
    let out = c.bucket.maand(&["run_command", "-c", "2", &script]).fails_with("run command failed");
    assert!(out.stderr.contains(&format!("{failing} ! boom")), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("worker {failing}: ssh exited with status 3")), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("failed workers: {failing}")), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("not run (a batch failed): {}", c.ip(4))), "{}", out.stderr);

    c.bucket
        .maand(&["run_command", "-w", &c.ip(0), "-l", "app", "true"])
        .fails_with("specify either --workers or --labels, not both");
    c.bucket.maand(&["run_command", "-w", "10.9.9.9", "true"]).fails_with("workers not in this bucket: [10.9.9.9]");
    c.bucket.maand(&["run_command", "-c", "0", "true"]).fails_with("batch size (-c) must be at least 1");
    c.bucket.maand(&["run_command", "-l", "nope", "true"]).fails_with("no workers matched the selection");
    c.bucket.maand(&["run_command"]).fails_with("command argument or workspace/command.sh is required");
    c.bucket.write("workspace/command.sh", "echo \"from command.sh on $WORKER_IP\"\n");
    let out = c.bucket.maand(&["run_command", "-w", &c.ip(4)]).ok();
    assert_eq!(out.stdout, format!("{0} | from command.sh on {0}\n", c.ip(4)), "only the selected worker ran");
}

#[test]
fn worker_facts_fill_capacity_that_build_accepts() {
    let c = Cluster::up(2);
    set_workers_json(&c, |w| w[0]["tags"] = json!({"zone": "a"}));
    job(
        &c,
        "sized",
        json!({"selectors": ["app"], "resources": {"memory": {"min": "16 mb"}, "cpu": {"min": "10 mhz"}}}),
    );
    c.bucket.build().fails_with("insufficient resource");

    let before = c.bucket.read("workspace/workers.json");
    let out = c.bucket.maand(&["worker_facts", "--dry-run"]).ok();
    assert!(out.stdout.contains(&format!("{}: memory (none) -> \"", c.ip(0))), "{}", out.stdout);
    assert_eq!(c.bucket.read("workspace/workers.json"), before, "--dry-run wrote workers.json");

    c.bucket.maand(&["worker_facts", "--build", "-c", "2"]).ok();
    let kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let text = c.bucket.read("workspace/workers.json");
    assert!(text.ends_with("}\n]\n") && text.contains("\n  {\n    \"host\""), "2-space indent and a newline: {text}");
    let workers: Vec<Value> = serde_json::from_str(&text).unwrap();
    for w in &workers {
        let keys: Vec<&str> = w.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(&keys[..3], ["host", "port", "labels"], "existing fields keep their order: {keys:?}");
        assert_eq!(w["memory"], format!("{} mb", kb.div_ceil(1024)));
        assert!(w["cpu"].as_str().unwrap().ends_with(" mhz"), "{w}");
    }
    assert_eq!(workers[0]["tags"], json!({"zone": "a"}));
    let cat = c.bucket.cat(&["workers"]);
    assert_eq!(cat[0]["memory_mb"], json!(kb.div_ceil(1024)), "{cat:?}");
    assert_eq!(c.bucket.cat(&["allocations"]).len(), 2, "the build placed the sized job");
    let out = c.bucket.maand(&["worker_facts", "-l", "APP"]).ok();
    assert!(out.stdout.contains("workers.json already up to date"), "{}", out.stdout);
    c.bucket.maand(&["worker_facts", "-w", "10.9.9.9"]).fails_with("[10.9.9.9]");
}

/// Live value of a KV key read from the catalog (any value, secrets included).
fn kv_live(c: &Cluster, ns: &str, key: &str) -> bool {
    c.bucket
        .db()
        .query_row(
            "SELECT deleted FROM key_value WHERE namespace = ?1 AND key = ?2 ORDER BY version DESC LIMIT 1",
            [ns, key],
            |r| r.get::<_, i64>(0),
        )
        .is_ok_and(|d| d == 0)
}

fn rows_mentioning(c: &Cluster, sql: &str, ip: &str) -> i64 {
    c.bucket.db().query_row(sql, [format!("%{ip}%")], |r| r.get(0)).unwrap()
}

#[test]
fn gc_removes_every_trace_of_a_dropped_worker_but_keeps_disabled_jobs_secrets() {
    let c = Cluster::up(3);
    let gone = c.ip(2);
    set_workers_json(&c, |w| {
        w[0]["labels"] = json!(["app", "web"]);
        w[1]["labels"] = json!(["app", "web"]);
        w[2]["labels"] = json!(["app", "old"]);
    });
    job(&c, "web", json!({"version": "1", "selectors": ["web"]}));
    job(&c, "vault", json!({"version": "1", "selectors": ["app"]}));
    job(&c, "old", json!({"version": "1", "selectors": ["old"]}));
    for j in ["vault", "old"] {
        c.bucket.write(&format!("workspace/jobs/{j}/vars.toml"), "answer = \"42\"\n");
    }
    c.deploy(&["-b"]).ok();
    c.bucket
        .db()
        .execute(
            "INSERT INTO key_value(key, value, namespace, version, ttl, created_date, deleted)
             VALUES ('token', 'enc:v1:c2VjcmV0', 'secrets/job/vault', 1, '0', strftime('%s','now'), 0)",
            [],
        )
        .unwrap();

    // Drop worker 2, take `web` off worker 1, disable what is left of vault.
    set_workers_json(&c, |w| {
        w.pop();
        w[1]["labels"] = json!(["app"]);
    });
    c.bucket
        .write("workspace/disabled.json", &json!({"jobs": {"vault": {"allocations": [c.ip(0), c.ip(1)]}}}).to_string());
    c.deploy(&["-b"]).ok();
    assert!(c.worker_path(1, "jobs/web/data/events").exists(), "deploy keeps the data of a removed allocation");
    assert!(rows_mentioning(&c, "SELECT count(*) FROM allocations WHERE worker_ip LIKE ?1", &gone) > 0);

    let out = c.bucket.maand(&["gc"]).ok();
    assert!(out.stdout.contains(&format!("gc: collected web on {}", c.ip(1))), "{}", out.stdout);
    let runs: Vec<Value> = serde_json::from_str(&c.bucket.maand(&["history", "--json"]).ok().stdout).unwrap();
    assert_eq!((&runs[0]["kind"], &runs[0]["result"]), (&json!("gc"), &json!("ok")), "gc is in the history");
    let web = runs[0]["jobs"].as_array().unwrap().iter().find(|j| j["job"] == "web").unwrap();
    assert_eq!(web["allocations"], json!([c.ip(1)]));
    assert!(!c.worker_path(1, "jobs/web").exists(), "gc deletes the whole job tree");
    assert!(c.worker_path(1, "jobs/app").exists() || c.worker_path(1, "jobs/vault").exists());
    assert!(
        !c.workers[2].opt_dir().join("worker").join(c.bucket_id()).exists(),
        "the dropped worker keeps bucket files"
    );
    for table in ["worker", "allocations", "maand_worker_options"] {
        let n = rows_mentioning(&c, &format!("SELECT count(*) FROM {table} WHERE worker_ip LIKE ?1"), &gone);
        assert_eq!(n, 0, "{table} still mentions {gone}");
    }
    assert_eq!(rows_mentioning(&c, "SELECT count(*) FROM key_value WHERE namespace LIKE ?1", &gone), 0);
    let live_mentions: i64 = c
        .bucket
        .db()
        .query_row(
            "SELECT count(*) FROM key_value kv WHERE deleted = 0 AND value LIKE ?1
             AND version = (SELECT max(version) FROM key_value x WHERE x.namespace = kv.namespace AND x.key = kv.key)",
            [format!("%{gone}%")],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(live_mentions, 0, "a live KV value still names {gone}");
    assert_eq!(c.bucket.cat(&["allocations", "--jobs", "old"]).len(), 0);
    assert!(c.bucket.kv("vars/job/old", "answer").is_none(), "a fully removed job loses its vars");
    // vault: disabled allocations only (plus a removed one) keeps its vars and secrets.
    assert!(kv_live(&c, "vars/job/vault", "answer") && kv_live(&c, "secrets/job/vault", "token"));
    assert!(kv_live(&c, "maand/job/vault", "name"));
    let out = c.bucket.maand(&["gc"]).ok();
    assert!(out.stdout.contains("gc: no removed allocations"), "{}", out.stdout);
}

#[test]
fn health_check_passes_fails_and_waits_and_logs_show_the_last_deploy_block() {
    let c = Cluster::up(2);
    c.bucket.write(
        "workspace/jobs/svc/manifest.json",
        &json!({"version": "1", "selectors": ["app"],
                "health_check": {"checks": [{"type": "ssh", "command": "test -f /opt/worker/*/jobs/svc/data/up"}],
                                 "wait": {"attempts": 10, "interval_seconds": 1}}})
        .to_string(),
    );
    c.bucket.write(
        "workspace/jobs/svc/Makefile",
        "start:\n\tmkdir -p data && touch data/up && echo started\nstop:\n\trm -f data/up\nrestart:\n\ttouch data/up\n",
    );
    c.deploy(&["-b"]).ok();

    let logs = c.bucket.maand(&["logs", "show", "--format", "human", "--tail", "1"]).ok().stdout;
    let lines: Vec<&str> = logs.lines().collect();
    assert!(lines[0].contains("  deploy  seq=1  run="), "{logs}");
    assert!(lines[1].trim_start().starts_with("rollout  start  svc@"), "{logs}");
    assert!(lines[2].trim_start().starts_with("$ ") && lines[2].contains("runner.py"), "{logs}");
    assert!(logs.contains(" | started") && lines.last().unwrap().trim_start().starts_with("ok  exit=0"), "{logs}");

    let out = c.bucket.maand(&["health_check"]).ok();
    assert!(out.stderr.contains("worker health check passed") && out.stderr.contains("health check passed: svc"));

    c.bucket.maand(&["job", "stop", "svc", "--allocations", &c.ip(1)]).ok();
    let out = c.bucket.maand(&["health_check"]).fails_with("health check failed");
    assert!(out.stderr.contains("job svc") && out.stderr.contains(&c.ip(1)), "{}", out.stderr);
    assert!(!out.stderr.contains(&format!("{} ssh", c.ip(0))), "the healthy worker is not blamed: {}", out.stderr);

    let up = c.worker_path(1, "jobs/svc/data/up");
    let reviver = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(2500));
        std::fs::write(up, "").unwrap();
    });
    let out = c.bucket.maand(&["health_check", "--wait", "--jobs", "svc"]).ok();
    reviver.join().unwrap();
    assert!(out.stderr.contains("health check failed: svc (attempt 1/10), retrying..."), "{}", out.stderr);
    assert!(out.stderr.contains("health check passed: svc"), "{}", out.stderr);
}
