//! Finding and signalling every process of one sandbox worker: the processes whose `/opt` (seen
//! through `/proc/<pid>/root`) is that worker's private opt directory, i.e. its mount namespace.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use maand_core::{Error, Result};

use crate::procfs::{all_pids, pid_is_alive, send_signal, start_time};

/// How long killing a worker's processes may take before it is reported as failed.
const KILL_DEADLINE: Duration = Duration::from_secs(10);

/// Identity of a directory: device and inode (a bind mount shows the same pair).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DirIdentity {
    dev: u64,
    ino: u64,
}

fn identity(path: &Path) -> Option<DirIdentity> {
    fs::metadata(path).ok().map(|m| DirIdentity { dev: m.dev(), ino: m.ino() })
}

/// Pids of every live process whose `/opt` is `opt_dir`. Empty when `opt_dir` does not exist.
pub(crate) fn processes(opt_dir: &Path) -> Vec<u32> {
    let Some(target) = identity(opt_dir) else { return Vec::new() };
    let own_pid = std::process::id();
    let own_ns = fs::read_link("/proc/self/ns/mnt").ok();
    // One answer per mount namespace: every process in it sees the same /opt.
    let mut verdicts: HashMap<PathBuf, bool> = HashMap::new();
    let mut found = Vec::new();
    for pid in all_pids() {
        if pid == own_pid {
            continue;
        }
        let Ok(ns) = fs::read_link(format!("/proc/{pid}/ns/mnt")) else { continue };
        if Some(&ns) == own_ns.as_ref() {
            continue;
        }
        let matches = match verdicts.get(&ns) {
            Some(verdict) => *verdict,
            None => match identity(Path::new(&format!("/proc/{pid}/root/opt"))) {
                Some(seen) => *verdicts.entry(ns).or_insert(seen == target),
                None => false,
            },
        };
        if matches {
            found.push(pid);
        }
    }
    found
}

/// True when `pid` runs with `opt_dir` as its `/opt`.
pub(crate) fn pid_uses_opt(pid: u32, opt_dir: &Path) -> bool {
    match (identity(Path::new(&format!("/proc/{pid}/root/opt"))), identity(opt_dir)) {
        (Some(seen), Some(target)) => seen == target,
        _ => false,
    }
}

/// SIGKILLs every process of the worker until none is left and each one signalled has exited
/// (bounded: a signalled process leaves the namespace before it is fully gone).
pub(crate) fn kill_all(opt_dir: &Path, ip: &str) -> Result<()> {
    let until = Instant::now() + KILL_DEADLINE;
    // (pid, start time): a pid reused by another process is not waited for.
    let mut signalled: Vec<(u32, Option<u64>)> = Vec::new();
    loop {
        let pids = processes(opt_dir);
        if pids.is_empty() {
            signalled.retain(|(pid, started)| pid_is_alive(*pid) && start_time(*pid) == *started);
            if signalled.is_empty() {
                return Ok(());
            }
        }
        if Instant::now() >= until {
            let pids: Vec<u32> = if pids.is_empty() { signalled.iter().map(|(pid, _)| *pid).collect() } else { pids };
            return Err(Error::msg(format!(
                "sandbox worker {ip}: processes {pids:?} survived SIGKILL for {} s",
                KILL_DEADLINE.as_secs()
            )));
        }
        for pid in &pids {
            if !signalled.iter().any(|(known, _)| known == pid) {
                signalled.push((*pid, start_time(*pid)));
            }
        }
        send_signal("KILL", &pids);
        thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` to every process of the worker, twice so children forked meanwhile are caught.
/// Returns how many processes were signalled.
pub(crate) fn signal_all(opt_dir: &Path, signal: &str) -> usize {
    let first = processes(opt_dir);
    send_signal(signal, &first);
    let second = processes(opt_dir);
    send_signal(signal, &second);
    first.len().max(second.len())
}
