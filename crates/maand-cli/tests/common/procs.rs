//! Processes on the CLI host, read from /proc: whether one is running (zombies count as gone),
//! a process's descendants, ssh processes by parent or by command line, and a bounded wait.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::{Duration, Instant};

/// One process: pid, parent pid, command name, state letter.
struct Stat {
    pid: u32,
    ppid: u32,
    comm: String,
    state: String,
}

fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (open, close) = (text.find('(')?, text.rfind(')')?);
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    Some(Stat {
        pid,
        ppid: fields.get(1)?.parse().ok()?,
        comm: text[open + 1..close].to_string(),
        state: fields[0].into(),
    })
}

fn all() -> Vec<Stat> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(stat)
        .collect()
}

fn running(s: &Stat) -> bool {
    s.state != "Z" && s.state != "X"
}

/// The process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|s| running(&s))
}

/// The command line of `pid`, arguments joined by spaces.
pub fn cmdline(pid: u32) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()).replace('\0', " ")
}

/// Running descendants of `root` (children, their children, …) with their command lines.
pub fn descendants(root: u32) -> Vec<(u32, String)> {
    let procs = all();
    let mut found: Vec<u32> = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for child in procs.iter().filter(|p| p.ppid == parent && running(p)) {
            found.push(child.pid);
            frontier.push(child.pid);
        }
    }
    found.into_iter().map(|pid| (pid, cmdline(pid))).collect()
}

/// Running processes whose parent is `parent` and whose command is `ssh`.
pub fn ssh_children(parent: u32) -> Vec<u32> {
    all().iter().filter(|p| p.ppid == parent && p.comm == "ssh" && running(p)).map(|p| p.pid).collect()
}

/// Running ssh processes whose command line names `text` (say, a bucket's control socket directory).
pub fn ssh_processes_naming(text: &str) -> Vec<u32> {
    all()
        .iter()
        .filter(|p| running(p))
        .map(|p| (p.pid, cmdline(p.pid)))
        .filter(|(_, line)| line.starts_with("ssh ") && line.contains(text))
        .map(|(pid, _)| pid)
        .collect()
}

/// Polls `done` every 20 ms; panics naming `what` when `timeout` passes first.
pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
