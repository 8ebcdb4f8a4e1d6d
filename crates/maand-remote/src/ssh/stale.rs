//! Control sockets left behind by maand runs that ended without closing them (killed with SIGKILL,
//! crashed): found when the next executor starts by the process id at the front of their names
//! (`<pid>-<n>-…`, see [`super::argv::control_path`]). A master still answering on one (left by a
//! maand older than parent-death signals, which detached its masters) is told to exit; the socket
//! and its log are removed. Entries of running processes are left alone.

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use super::argv;
use super::master::CONTROL_COMMAND_DEADLINE;
use crate::process;
use crate::procfs::pid_is_alive;

/// Cleans the entries of dead runs in `control_dir` and in the shared directory of hashed socket
/// names; returns the paths removed.
pub(crate) fn clean_dead_runs(control_dir: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for dir in [control_dir.to_path_buf(), argv::hashed_control_dir()] {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(owner) = name.to_str().and_then(owner_pid) else { continue };
            if owner == std::process::id() || pid_is_alive(owner) {
                continue;
            }
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_socket()) && UnixStream::connect(&path).is_ok() {
                stop_master(&path);
            }
            if fs::remove_file(&path).is_ok() {
                removed.push(path);
            }
        }
    }
    removed
}

/// The process that named the entry: the digits before the first `-`.
fn owner_pid(name: &str) -> Option<u32> {
    let (pid, rest) = name.split_once('-')?;
    if rest.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// `ssh -O exit` on the socket: the master ends (and its sessions with it).
fn stop_master(socket: &Path) {
    let args: Vec<String> = vec![
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        format!("ControlPath={}", socket.display()),
        "-O".into(),
        "exit".into(),
        "--".into(),
        "maand-stale-master".into(),
    ];
    let _ = process::run_streaming("ssh", &args, None, Some(CONTROL_COMMAND_DEADLINE), &mut |_, _| {});
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn owner_is_the_leading_process_id() {
        assert_eq!(owner_pid("4242-1-127_0_0_2-22"), Some(4242));
        assert_eq!(owner_pid("4242-1-127_0_0_2-22.log"), Some(4242));
        assert_eq!(owner_pid("4242-3-00ff00ff00ff00ff"), Some(4242));
        assert_eq!(owner_pid("known_hosts"), None);
        assert_eq!(owner_pid("abc-1-x"), None);
        assert_eq!(owner_pid("4242-"), None);
        assert_eq!(owner_pid("4242"), None);
    }

    /// A pid no process has (above any pid handed out so far on a test machine).
    fn dead_pid() -> u32 {
        let pid = 4_190_000 + std::process::id() % 4_000;
        assert!(!pid_is_alive(pid));
        pid
    }

    #[test]
    fn entries_of_dead_processes_go_and_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dead_pid();
        let ours = std::process::id();
        let dead_socket = dir.path().join(format!("{dead}-1-127_0_0_2-22"));
        // Bound then dropped: the file stays, nothing listens (a master killed with SIGKILL).
        drop(UnixListener::bind(&dead_socket).unwrap());
        let dead_log = dir.path().join(format!("{dead}-1-127_0_0_2-22.log"));
        let live_socket = dir.path().join(format!("{ours}-1-127_0_0_2-22"));
        let _listening = UnixListener::bind(&live_socket).unwrap();
        let live_log = dir.path().join(format!("{ours}-1-127_0_0_2-22.log"));
        let unrelated = dir.path().join("notes.txt");
        for file in [&dead_log, &live_log, &unrelated] {
            fs::write(file, "x").unwrap();
        }

        let mut removed = clean_dead_runs(dir.path());
        removed.retain(|p| p.starts_with(dir.path()));
        removed.sort();
        assert_eq!(removed, vec![dead_socket.clone(), dead_log.clone()]);
        assert!(!dead_socket.exists() && !dead_log.exists());
        assert!(live_socket.exists() && live_log.exists() && unrelated.exists());
    }

    #[test]
    fn a_missing_directory_is_nothing_to_clean() {
        let dir = tempfile::tempdir().unwrap();
        let removed = clean_dead_runs(&dir.path().join("ssh"));
        assert!(removed.iter().all(|p| !p.starts_with(dir.path())));
    }
}
