//! End-to-end: `maand` killed with SIGKILL leaves nothing of its own running on the CLI host — its
//! ssh sessions, its ControlMaster and its job commands die with it — and a re-run started at once
//! waits on the worker for the killed run's `make restart` (the job's lock there) instead of
//! running a second one beside it; the killed run's control socket is removed by the re-run.
#![allow(clippy::unwrap_used)]

mod common;
use common::cluster::Cluster;
use common::jobcmd::{cluster, command_job, event_time};
use common::procs::{alive, descendants, ssh_processes_naming, wait_until};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `restart` notes when it begins and ends, five seconds apart.
const SLOW_RESTART_MAKEFILE: &str = "\
start:
\tmkdir -p data
\techo \"start $$(date +%s.%N)\" >> data/events
restart:
\techo \"restart-begin $$(date +%s.%N)\" >> data/events
\tsleep 5
\techo \"restart-end $$(date +%s.%N)\" >> data/events
stop:
\ttrue
";

/// `maand args…` in the bucket, in the background, its output discarded.
fn spawn_maand(c: &Cluster, args: &[&str]) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("maand"))
        .current_dir(c.bucket.root())
        .env("MAAND_TEST", "1")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Kills `maand` with SIGKILL and reaps it; returns what it had running just before and when it
/// was killed.
fn kill9(maand: &mut Child) -> (Vec<(u32, String)>, Instant) {
    let running = descendants(maand.id());
    maand.kill().unwrap();
    let killed_at = Instant::now();
    maand.wait().unwrap();
    (running, killed_at)
}

/// Asserts that none of `processes` runs any more once 2 s have passed since `killed_at`.
fn assert_all_gone_2s_after(processes: &[(u32, String)], killed_at: Instant) {
    let until = killed_at + Duration::from_secs(2);
    while processes.iter().any(|(pid, _)| alive(*pid)) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<&(u32, String)> = processes.iter().filter(|(pid, _)| alive(*pid)).collect();
    assert!(left.is_empty(), "still running 2 s after maand was killed: {left:?}");
}

#[test]
fn kill9_during_a_slow_restart_leaves_nothing_running_and_the_rerun_waits_for_it() {
    let c = Cluster::up(1);
    let manifest = |version: &str| json!({"version": version, "selectors": ["app"]}).to_string();
    c.bucket.write("workspace/jobs/app/manifest.json", &manifest("1"));
    c.bucket.write("workspace/jobs/app/Makefile", SLOW_RESTART_MAKEFILE);
    c.deploy(&["-b"]).ok();
    c.bucket.write("workspace/jobs/app/manifest.json", &manifest("2"));
    c.bucket.build().ok();

    let mut killed = spawn_maand(&c, &["deploy"]);
    let killed_pid = killed.id();
    wait_until("make restart to begin", Duration::from_secs(60), || {
        c.kinds(0, "app").contains(&"restart-begin".into())
    });
    let (running, killed_at) = kill9(&mut killed);
    let ssh: Vec<&String> = running.iter().map(|(_, line)| line).filter(|l| l.starts_with("ssh ")).collect();
    assert!(ssh.iter().any(|l| l.contains("ControlMaster=yes")), "the master was maand's: {running:?}");
    assert!(ssh.iter().any(|l| l.contains("ControlMaster=no")), "a session ran the restart: {running:?}");

    // Gone by themselves (no other maand runs yet to clean up after the killed one).
    assert_all_gone_2s_after(&running, killed_at);
    let sockets_of_killed_run = format!("{}/tmp/ssh/{killed_pid}-", c.bucket.root().display());
    assert_eq!(ssh_processes_naming(&sockets_of_killed_run), Vec::<u32>::new());

    // The re-run starts at once, while the killed run's restart still sleeps on the worker.
    let out = c.deploy(&[]).ok();
    assert!(out.stderr.contains("job app is busy with another lifecycle step; waiting"), "{}", out.stderr);
    assert_eq!(c.kinds(0, "app"), ["start", "restart-begin", "restart-end", "restart-begin", "restart-end"]);
    let events = c.events(0, "app");
    assert!(event_time(&events[3]) >= event_time(&events[2]), "the restarts overlapped: {events:?}");
    let left: Vec<String> = std::fs::read_dir(c.bucket.path("tmp/ssh"))
        .map(|entries| entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    assert!(!left.iter().any(|name| name.starts_with(&format!("{killed_pid}-"))), "{left:?}");
}

/// A `cli` job command that records its pid, then sleeps.
const SLOW_COMMAND: &str = r#"
out("slow.pid", os.getpid())
time.sleep(30)
"#;

#[test]
fn kill9_during_a_job_command_kills_the_job_command() {
    let c = cluster(1);
    command_job(&c, "app", &[("command_slow", &["cli"], SLOW_COMMAND)]);
    c.bucket.build().ok();
    let pid_file = c.bucket.path("out/slow.pid");
    let mut maand = spawn_maand(&c, &["job_command", "command_slow", "app"]);
    wait_until("the job command to start", Duration::from_secs(30), || pid_file.exists());
    let command: u32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    let (running, killed_at) = kill9(&mut maand);
    assert!(running.iter().any(|(pid, _)| *pid == command), "the job command was maand's: {running:?}");
    assert_all_gone_2s_after(&running, killed_at);
}
