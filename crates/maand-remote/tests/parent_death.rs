//! Children die with the process that started them: this test binary, run again as a helper,
//! starts a program through `LocalProcess` (as every ssh, rsync and job command is started) and
//! one through `parent_death::spawn` on a thread that then ends; both run in process groups of
//! their own, so nothing but the kernel's parent-death signal can reach them once the helper is
//! killed with SIGKILL.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use maand_remote::parent_death;
use maand_remote::process::LocalProcess;

const HELPER_ENV: &str = "MAAND_PARENT_DEATH_TEST_HELPER";

/// Running and not a zombie.
fn alive(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    !matches!(stat[stat.rfind(')').unwrap() + 1..].split_whitespace().next(), Some("Z" | "X"))
}

fn gone_within(pid: u32, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while alive(pid) {
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Kills the given processes when the test ends, passed or failed.
struct KillOnDrop(Vec<u32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = Command::new("kill").args(["-s", "KILL", &pid.to_string()]).stderr(Stdio::null()).status();
        }
    }
}

/// The helper: a streamed program running on a pool thread, and a program started on a thread
/// that has ended; prints both pids, then waits to be killed.
#[test]
#[ignore = "helper process of children_die_with_a_process_killed_by_sigkill; run by that test"]
fn parent_death_helper_process() {
    if std::env::var_os(HELPER_ENV).is_none() {
        return;
    }
    std::thread::spawn(|| {
        let step = LocalProcess::new("sh", &["-c".to_string(), "echo $$; exec sleep 30".to_string()]);
        step.run(&mut |_, line| println!("\nhelper-streamed {line}")).unwrap();
    });
    // Never waited for: this helper is killed, and its child with it.
    #[allow(clippy::zombie_processes)]
    let started = std::thread::spawn(|| {
        let mut command = Command::new("sleep");
        command.arg("30").process_group(0);
        parent_death::spawn(&mut command).unwrap()
    })
    .join()
    .unwrap();
    println!("\nhelper-started {}", started.id());
    std::thread::sleep(Duration::from_secs(30));
}

#[test]
fn children_die_with_a_process_killed_by_sigkill() {
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "parent_death_helper_process", "--nocapture", "--test-threads=1"])
        .env(HELPER_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut cleanup = KillOnDrop(vec![helper.id()]);
    let (tx, rx) = mpsc::channel();
    let stdout = BufReader::new(helper.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (mut streamed, mut started) = (None, None);
    while streamed.is_none() || started.is_none() {
        let line = rx.recv_timeout(Duration::from_secs(20)).expect("the helper reports its children");
        let pid = |prefix: &str| line.strip_prefix(prefix).map(|p| p.trim().parse::<u32>().unwrap());
        streamed = streamed.or(pid("helper-streamed "));
        started = started.or(pid("helper-started "));
    }
    let children = [streamed.unwrap(), started.unwrap()];
    cleanup.0.extend(children);

    std::thread::sleep(Duration::from_millis(300));
    assert!(children.iter().all(|pid| alive(*pid)), "both children run, also the one whose thread ended");

    helper.kill().unwrap();
    helper.wait().unwrap();
    for pid in children {
        assert!(gone_within(pid, Duration::from_secs(2)), "child {pid} outlived its killed parent");
    }
}
