//! End-to-end interrupts: `maand deploy` signalled the way a terminal's Ctrl-C is (SIGINT to its
//! whole process group) while a worker runs a slow `make` target. The first signal lets the step in
//! flight finish and the command exits 130; a second one kills the ssh session at once and exits 130.
#![allow(clippy::unwrap_used)]

mod common;
use common::cluster::Cluster;
use common::procs::{alive, ssh_children, ssh_processes_naming, wait_until};
use serde_json::json;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `start` and `restart` note when they begin, take a while, then note that they finished.
const SLOW_MAKEFILE: &str = "\
start:
\tmkdir -p data
\techo begin-start >> data/events
\tsleep 3
\techo start >> data/events
restart:
\techo begin-restart >> data/events
\tsleep 30
\techo restart >> data/events
stop:
\ttrue
";

/// Lines of the job's data/events on the worker.
fn events(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_string).collect()
}

/// `maand deploy` in the bucket, leading a process group of its own (as a shell's foreground job).
fn spawn_deploy(c: &Cluster) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("maand"))
        .current_dir(c.bucket.root())
        .env("MAAND_TEST", "1")
        .arg("deploy")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap()
}

fn interrupt_group(pgid: u32) {
    assert!(Command::new("kill").args(["-s", "INT", "--", &format!("-{pgid}")]).status().unwrap().success());
}

/// Waits for the exit status (bounded), then returns it with everything written to stderr.
fn finish(mut child: Child, timeout: Duration) -> (Option<i32>, String) {
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).unwrap();
        text
    });
    let until = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.code(), reader.join().unwrap())
}

#[test]
fn first_ctrl_c_lets_the_step_finish_and_a_second_aborts() {
    let c = Cluster::up(1);
    c.bucket.write("workspace/jobs/app/manifest.json", &json!({"version": "1", "selectors": ["app"]}).to_string());
    c.bucket.write("workspace/jobs/app/Makefile", SLOW_MAKEFILE);
    c.bucket.build().ok();
    let events_file = c.worker_path(0, "jobs/app/data/events");

    // First Ctrl-C while `make start` runs: the ssh session survives it and the start completes.
    let deploy = spawn_deploy(&c);
    let maand = deploy.id();
    wait_until("make start to begin", Duration::from_secs(30), || events(&events_file).contains(&"begin-start".into()));
    let sessions = ssh_children(maand);
    assert!(!sessions.is_empty(), "an ssh session runs the step");
    interrupt_group(maand);
    std::thread::sleep(Duration::from_millis(500));
    assert!(sessions.iter().all(|pid| alive(*pid)), "the ssh session survives the first Ctrl-C");
    let (code, stderr) = finish(deploy, Duration::from_secs(60));
    // The step in flight was the deploy's last: nothing was cut short, so the deploy succeeded.
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("interrupt: finishing the step in flight, then stopping"), "{stderr}");
    assert!(stderr.contains("deploy: 1 job deployed (app)"), "{stderr}");
    assert!(!stderr.contains("interrupt: aborting"), "{stderr}");
    assert_eq!(events(&events_file), ["begin-start", "start"], "the step in flight finished");

    // A new version restarts: two Ctrl-Cs end maand at once and kill the ssh session.
    c.bucket.write("workspace/jobs/app/manifest.json", &json!({"version": "2", "selectors": ["app"]}).to_string());
    c.bucket.build().ok();
    let deploy = spawn_deploy(&c);
    let maand = deploy.id();
    wait_until("make restart to begin", Duration::from_secs(30), || {
        events(&events_file).contains(&"begin-restart".into())
    });
    let sessions = ssh_children(maand);
    assert!(!sessions.is_empty(), "an ssh session runs the step");
    interrupt_group(maand);
    std::thread::sleep(Duration::from_millis(300));
    let aborted_at = Instant::now();
    interrupt_group(maand);
    let (code, stderr) = finish(deploy, Duration::from_secs(20));
    assert!(aborted_at.elapsed() < Duration::from_secs(5), "took {:?}", aborted_at.elapsed());
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("interrupt: aborting"), "{stderr}");
    wait_until("the ssh session to die", Duration::from_secs(5), || sessions.iter().all(|pid| !alive(*pid)));
    let bucket = c.bucket.root().display().to_string();
    assert_eq!(ssh_processes_naming(&bucket), Vec::<u32>::new(), "the ControlMaster was killed too");
}
