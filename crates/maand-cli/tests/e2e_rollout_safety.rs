//! End-to-end rollout safety (DESIGN §3.14–3.17): per-allocation resume, gates scoped to what was
//! rolled, unhealthy allocations first, files swapped per batch, disabled allocations on dead
//! workers, the dry-run's batches being the deploy's, and a clean SIGINT — the real `maand` binary
//! against sandbox workers.
#![allow(clippy::unwrap_used)]

mod common;
use common::cluster::Cluster;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A service whose `data/up` marks it healthy; a worker whose private `/opt/broken` exists never
/// comes up. Every target records itself in `data/events`; `restart` takes `sleep` seconds.
const SERVICE_MAKEFILE: &str = "\
start:
\tmkdir -p data
\techo \"start $$(date +%s.%N)\" >> data/events
\tif [ ! -f /opt/broken ]; then touch data/up; fi
stop:
\tmkdir -p data
\trm -f data/up
\techo \"stop $$(date +%s.%N)\" >> data/events
restart:
\tmkdir -p data
\trm -f data/up
\techo \"restart-begin $$(date +%s.%N)\" >> data/events
\tsleep $$(cat sleep 2>/dev/null || echo 0)
\techo \"restart $$(date +%s.%N)\" >> data/events
\tif [ ! -f /opt/broken ]; then touch data/up; fi
slow:
\techo \"slow-begin $$(date +%s.%N)\" >> data/events
\tsleep 1
\techo \"slow-end $$(date +%s.%N)\" >> data/events
";

fn service(c: &Cluster, conf: &str) {
    c.bucket.write(
        "workspace/jobs/svc/manifest.json",
        &json!({
            "version": "1.0.0", "selectors": ["app"], "max_concurrent_upgrades": 1,
            "health_check": {
                "checks": [{"type": "ssh", "command": "test -f /opt/worker/*/jobs/svc/data/up"}],
                "timeout_seconds": 5, "wait": {"attempts": 3, "interval_seconds": 1}
            }
        })
        .to_string(),
    );
    c.bucket.write("workspace/jobs/svc/Makefile", SERVICE_MAKEFILE);
    c.bucket.write("workspace/jobs/svc/conf.txt", conf);
}

/// Every file of the live job directory on worker `i` (not its `data/`), path -> bytes.
fn live_files(c: &Cluster, i: usize) -> BTreeMap<String, Vec<u8>> {
    c.job_tree(i, "svc").into_iter().map(|(path, (_, bytes))| (path, bytes)).collect()
}

fn kinds(c: &Cluster, i: usize) -> Vec<String> {
    c.kinds(i, "svc")
}

fn event_time(c: &Cluster, i: usize, kind: &str) -> Vec<f64> {
    c.event_times(i, "svc", kind)
}

/// The dry-run's batches of job `svc` (each a list of worker IPs).
fn planned_batches(c: &Cluster) -> (Vec<Vec<String>>, Value) {
    let out = c.deploy(&["--dry-run", "--json"]).ok();
    let plan: Value = serde_json::from_str(&out.stdout).unwrap();
    let job = plan["waves"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["jobs"].as_array().unwrap().clone())
        .find(|j| j["job"] == "svc")
        .unwrap();
    let batches = job["rollout"]["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["allocations"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect())
        .collect();
    (batches, job)
}

#[test]
fn a_failed_gate_leaves_unrolled_files_alone_and_the_rerun_resumes_unhealthy_first() {
    let c = Cluster::up(3);
    service(&c, "one\n");
    c.deploy(&["-b"]).ok();
    let before = live_files(&c, 2);
    assert_eq!(before.get("conf.txt").map(Vec::as_slice), Some(&b"one\n"[..]));

    // The second worker's service will not come back: the gate after batch 2 fails.
    std::fs::write(c.workers[1].opt_dir().join("broken"), "").unwrap();
    service(&c, "two\n");
    c.bucket.build().ok();
    let out = c.deploy(&[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains(&c.ip(1)) && out.stderr.contains("health check"), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("promoted in this run: {}", c.ip(0))), "{}", out.stderr);
    assert_eq!(c.worker_file(0, "jobs/svc/conf.txt").as_deref(), Some("two\n"));
    assert_eq!(live_files(&c, 2), before, "the worker not rolled keeps exactly its previous files");
    assert_eq!(kinds(&c, 2), ["start"], "the third worker was not touched");
    assert_eq!(
        c.worker_file(2, "jobs/.svc.next/conf.txt").as_deref(),
        Some("two\n"),
        "the new files wait in the side directory"
    );

    // The plan of the re-run: the promoted first worker is skipped, the broken one goes first.
    let (batches, job) = planned_batches(&c);
    assert_eq!(batches, vec![vec![c.ip(1)], vec![c.ip(2)]], "{job:#}");
    assert_eq!(job["rollout"]["batches"][0]["repair"], true, "{job:#}");
    assert_eq!(job["rollout"]["unhealthy"], json!([c.ip(1)]), "{job:#}");
    let text = c.deploy(&["--dry-run"]).ok().stdout;
    assert!(text.contains(&format!("{} fails its health check now", c.ip(1))), "{text}");
    assert!(text.contains(&format!("1. update restart (repair): {} -> gate: {}", c.ip(1), c.ip(1))), "{text}");

    // Repaired: the re-run restarts the broken worker first, then the third; never the first.
    std::fs::remove_file(c.workers[1].opt_dir().join("broken")).unwrap();
    let out = c.deploy(&[]).ok();
    assert!(out.stderr.contains("fails its health check before the rollout"), "{}", out.stderr);
    assert_eq!(kinds(&c, 0), ["start", "restart-begin", "restart"], "the promoted worker is not restarted again");
    assert_eq!(event_time(&c, 1, "restart").len(), 2);
    let repaired = event_time(&c, 1, "restart")[1];
    let third = event_time(&c, 2, "restart-begin")[0];
    assert!(repaired < third, "the unhealthy worker is repaired before a healthy one is restarted");
    // Plan = execution: the batches the dry-run printed are the restarts the run log shows.
    assert_eq!(c.logged_rollout(c.update_seq(), "svc", "restart"), batches.concat());
    assert_eq!(live_files(&c, 2).get("conf.txt").map(Vec::as_slice), Some(&b"two\n"[..]));
    let out = c.deploy(&[]).ok();
    assert!(out.stderr.contains("deploy: skip job \"svc\""), "{}", out.stderr);
}

#[test]
fn a_disabled_allocation_on_a_dead_worker_is_a_pending_stop_not_a_failure() {
    let c = Cluster::up(3);
    service(&c, "one\n");
    c.deploy(&["-b"]).ok();
    c.sandbox().kill_worker(&c.ip(2)).unwrap();
    c.bucket.write("workspace/disabled.json", &json!({"jobs": {"svc": {"allocations": [c.ip(2)]}}}).to_string());
    service(&c, "two\n");
    c.bucket.build().ok();
    let started = Instant::now();
    let out = c.deploy(&[]).ok();
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
    assert!(out.stderr.contains(&format!("svc\" on {}: stop pending (worker unreachable", c.ip(2))), "{}", out.stderr);
    let named = format!("deploy: worker {} unreachable; no job fails (nothing changed there)", c.ip(2));
    assert!(out.stderr.contains(&named), "{}", out.stderr);
    assert!(out.stderr.contains("stop pending (worker unreachable)"), "the summary says so: {}", out.stderr);
    for i in 0..2 {
        assert_eq!(c.worker_file(i, "jobs/svc/conf.txt").as_deref(), Some("two\n"), "worker {i}");
    }

    // Back (sshd only): the next deploy stops the disabled allocation, once.
    c.sandbox().restart_worker(&c.ip(2)).unwrap();
    c.deploy(&[]).ok();
    assert_eq!(kinds(&c, 2), ["start", "stop"]);
    c.deploy(&[]).ok();
    assert_eq!(kinds(&c, 2), ["start", "stop"], "stopped once");
}

/// Runs `maand args…` and sends it SIGINT once `ready` holds: its exit status and stderr.
fn interrupted_when(c: &Cluster, args: &[&str], ready: &dyn Fn() -> bool) -> (Option<i32>, String) {
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("maand"))
        .current_dir(c.bucket.root())
        .env("MAAND_TEST", "1")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "maand {args:?} never got there");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn sigint_during_batch_two_finishes_it_and_the_rerun_rolls_only_the_rest() {
    let c = Cluster::up(3);
    service(&c, "one\n");
    c.deploy(&["-b"]).ok();
    service(&c, "two\n");
    c.bucket.write("workspace/jobs/svc/sleep", "2\n");
    c.bucket.build().ok();
    let (code, stderr) = interrupted_when(&c, &["deploy"], &|| kinds(&c, 1).contains(&"restart-begin".to_string()));
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("deploy interrupted"), "{stderr}");
    assert!(stderr.contains(&format!("done (promoted) on {}, {}", c.ip(0), c.ip(1))), "{stderr}");
    assert!(stderr.contains(&format!("remaining on {}", c.ip(2))), "{stderr}");
    assert!(stderr.contains("re-run maand deploy to resume"), "{stderr}");
    assert_eq!(kinds(&c, 1), ["start", "restart-begin", "restart"], "the batch in flight finished");
    for i in 0..2 {
        assert!(c.worker_path(i, "jobs/svc/data/up").exists(), "worker {i} left stopped");
    }
    assert_eq!(kinds(&c, 2), ["start"]);

    c.deploy(&[]).ok();
    assert_eq!(kinds(&c, 0), ["start", "restart-begin", "restart"]);
    assert_eq!(kinds(&c, 1), ["start", "restart-begin", "restart"]);
    assert_eq!(kinds(&c, 2), ["start", "restart-begin", "restart"], "only the remaining worker was restarted");
}

#[test]
fn reverting_a_change_whose_batch_failed_rolls_that_allocation_back() {
    let c = Cluster::up(3);
    service(&c, "one\n");
    c.deploy(&["-b"]).ok();
    std::fs::write(c.workers[0].opt_dir().join("broken"), "").unwrap();
    service(&c, "two\n");
    c.bucket.build().ok();
    let out = c.deploy(&[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(c.worker_file(0, "jobs/svc/conf.txt").as_deref(), Some("two\n"), "swapped in, never proven");

    // The operator reverts: the first worker runs files that never passed a gate, so it is rolled
    // back although what is staged now equals what was last promoted; the others are untouched.
    std::fs::remove_file(c.workers[0].opt_dir().join("broken")).unwrap();
    service(&c, "one\n");
    c.bucket.build().ok();
    c.deploy(&[]).ok();
    assert_eq!(c.worker_file(0, "jobs/svc/conf.txt").as_deref(), Some("one\n"));
    assert_eq!(event_time(&c, 0, "restart").len(), 2, "{:?}", kinds(&c, 0));
    for i in 1..3 {
        assert_eq!(kinds(&c, i), ["start"], "worker {i}");
    }
    let out = c.deploy(&[]).ok();
    assert!(out.stderr.contains("deploy: skip job \"svc\""), "{}", out.stderr);
}

#[test]
fn two_lifecycle_steps_never_overlap_on_one_allocation() {
    let c = Cluster::up(1);
    service(&c, "one\n");
    c.deploy(&["-b"]).ok();
    // Two runners at once on the worker (as two maand runs would start them): the second waits.
    let both = "python3 bin/runner.py \"$BUCKET_ID\" slow --jobs svc & python3 bin/runner.py \"$BUCKET_ID\" slow --jobs svc; wait";
    let out = c.bucket.maand(&["run_command", both]).ok();
    assert!(out.stderr.contains("job svc is busy with another lifecycle step; waiting"), "{}", out.stderr);
    let steps: Vec<String> = kinds(&c, 0).into_iter().filter(|k| k.starts_with("slow")).collect();
    assert_eq!(steps, ["slow-begin", "slow-end", "slow-begin", "slow-end"], "the steps overlapped");
}

#[test]
fn sigint_during_a_maand_job_restart_stops_between_batches() {
    let c = Cluster::up(3);
    service(&c, "one\n");
    c.bucket.write("workspace/jobs/svc/sleep", "2\n");
    c.deploy(&["-b"]).ok();
    let (code, stderr) = interrupted_when(&c, &["job", "restart", "svc", "--health_check"], &|| {
        kinds(&c, 0).contains(&"restart-begin".to_string())
    });
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("job restart interrupted: no new batch was started"), "{stderr}");
    assert!(stderr.contains(&format!("ran on {}", c.ip(0))), "{stderr}");
    assert_eq!(kinds(&c, 0), ["start", "restart-begin", "restart"], "the batch in flight finished");
    assert!(c.worker_path(0, "jobs/svc/data/up").exists(), "left stopped");
    for i in 1..3 {
        assert_eq!(kinds(&c, i), ["start"], "worker {i} was restarted after the interrupt");
    }
}

#[test]
fn a_step_waiting_for_the_allocations_lock_is_bounded_by_its_time_limit() {
    let c = Cluster::up(1);
    service(&c, "one\n");
    c.deploy(&["-b"]).ok();
    // Something else holds the job's lock on the worker for 20 s (as a step of another run would);
    // the sandbox's teardown kills it with the worker's other processes.
    let hold = "setsid flock jobs/.svc.lock sleep 20 </dev/null >/dev/null 2>&1 & sleep 0.5";
    c.bucket.maand(&["run_command", hold]).ok();
    c.bucket.write("maand.conf", &format!("{}\nremote_timeout_seconds = 2\n", c.bucket.read("maand.conf")));
    let started = Instant::now();
    let out = c.bucket.maand(&["job", "restart", "svc"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("job svc is busy with another lifecycle step; waiting"), "{}", out.stderr);
    assert!(
        out.stderr.contains("restart svc timed out after the remote time limit (remote_timeout_seconds"),
        "{}",
        out.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());
    assert_eq!(kinds(&c, 0), ["start"], "the restart never ran beside the holder");
}
