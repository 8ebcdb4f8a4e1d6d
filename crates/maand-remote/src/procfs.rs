//! Reading process state from /proc and sending signals (through the shell's `kill` builtin, which
//! keeps unsafe code to [`crate::parent_death`]): liveness that treats zombies as gone.

use std::fs;
use std::process::{Command, Stdio};

/// True when `pid` exists and is not a zombie (orphans may never be reaped on some hosts).
pub(crate) fn pid_is_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(process_state(&stat), Some('Z' | 'X') | None),
        Err(_) => false,
    }
}

/// The state letter of a `/proc/<pid>/stat` line (the field after the parenthesised command name).
fn process_state(stat: &str) -> Option<char> {
    stat_fields(stat)?.next()?.chars().next()
}

/// The fields of a `/proc/<pid>/stat` line after the command name, starting with the state.
fn stat_fields(stat: &str) -> Option<std::str::SplitWhitespace<'_>> {
    Some(stat[stat.rfind(')')? + 1..].split_whitespace())
}

/// When `pid` started (clock ticks since boot): tells a process from a later one reusing its pid.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 of stat; the state is field 3, the first after the command name.
    stat_fields(&stat)?.nth(22 - 3)?.parse().ok()
}

/// The command name of `pid` (`/proc/<pid>/comm`).
pub(crate) fn command_name(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm")).ok().map(|s| s.trim_end().to_string())
}

/// Every process id currently listed in /proc.
pub(crate) fn all_pids() -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect()
}

/// The process group of `pid` (field 5 of `/proc/<pid>/stat`).
#[cfg(test)]
pub(crate) fn process_group(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_fields(&stat)?.nth(5 - 3)?.parse().ok()
}

/// Sends `signal` (a name such as `KILL`, `STOP`, `CONT`, `TERM`) to each pid; pids that are already
/// gone are ignored.
pub(crate) fn send_signal(signal: &str, pids: &[u32]) {
    send_signal_to(signal, pids, &[]);
}

/// Sends `signal` to each pid and to every process of each process group (`kill -- -<pgid>`), all
/// from one shell; targets already gone are ignored.
pub(crate) fn send_signal_to(signal: &str, pids: &[u32], pgids: &[u32]) {
    let targets: Vec<String> =
        pgids.iter().map(|pgid| format!("-{pgid}")).chain(pids.iter().map(u32::to_string)).collect();
    if targets.is_empty() {
        return;
    }
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!("for p in \"$@\"; do kill -s {signal} -- \"$p\" 2>/dev/null; done; exit 0"))
        .arg("sh")
        .args(targets)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_state_after_command_name_with_parens() {
        assert_eq!(process_state("12 (a) b) S 1 2"), Some('S'));
        assert_eq!(process_state("12 (sleep) Z 1"), Some('Z'));
        assert_eq!(process_state("garbage"), None);
        let fields = "1 (x y) S 0 1 1 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 4242 1000 10";
        assert_eq!(stat_fields(fields).unwrap().nth(22 - 3), Some("4242"));
        assert_eq!(stat_fields(fields).unwrap().nth(5 - 3), Some("1"));
    }

    #[test]
    fn own_process_is_alive_and_killed_child_is_not() {
        assert!(pid_is_alive(std::process::id()));
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        assert!(pid_is_alive(pid));
        assert!(all_pids().contains(&pid));
        assert_eq!(command_name(pid).as_deref(), Some("sleep"));
        assert!(start_time(pid).unwrap() >= start_time(std::process::id()).unwrap());
        send_signal("KILL", &[pid]);
        child.wait().unwrap();
        assert!(!pid_is_alive(pid));
    }

    #[test]
    fn a_child_in_its_own_group_is_killed_with_its_group() {
        use std::os::unix::process::CommandExt;
        let ours = process_group(std::process::id()).unwrap();
        let mut child = Command::new("sleep").arg("30").process_group(0).spawn().unwrap();
        let pid = child.id();
        assert_eq!(process_group(pid), Some(pid));
        assert_ne!(ours, pid);
        send_signal_to("KILL", &[], &[pid]);
        child.wait().unwrap();
        assert!(!pid_is_alive(pid));
        assert_eq!(process_group(pid), None);
    }
}
