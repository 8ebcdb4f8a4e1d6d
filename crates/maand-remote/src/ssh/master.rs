//! One ControlMaster connection to one worker: starting it (retrying with backoff only when the
//! connection itself fails), telling whether it is still alive, explaining why it failed, ending it.
//! The master is a foreground `ssh -N` child of maand (never `-f`, which would detach it): it is
//! registered with [`crate::interrupt`], so aborting maand kills it, and like every child it dies
//! with maand (see [`crate::parent_death`]).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::thread;
use std::time::{Duration, Instant};

use maand_core::{Error, ErrorKind, Result};

use super::argv;
use super::settings::{HostKeyPolicy, SshSettings};
use crate::procfs::pid_is_alive;
use crate::{interrupt, process};

/// Time for authentication and a slow key exchange beyond ConnectTimeout.
const MASTER_START_SLACK: Duration = Duration::from_secs(10);
/// Bound on `ssh -O exit`, which only talks to the local socket.
pub(crate) const CONTROL_COMMAND_DEADLINE: Duration = Duration::from_secs(5);
/// How long a master told to exit may take before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// How often a starting master is checked.
const START_POLL: Duration = Duration::from_millis(10);
/// Longest pause between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// Which worker a master belongs to and how to reach it.
pub(crate) struct Target<'a> {
    pub settings: &'a SshSettings,
    pub host: &'a str,
    pub port: u16,
    pub control_path: &'a Path,
}

/// A running ControlMaster.
#[derive(Debug)]
pub(crate) struct Master {
    control_path: PathBuf,
    log_path: PathBuf,
    /// The `ssh -N` holding the connection.
    process: Child,
    /// Keeps the master in the interrupt registry until it is stopped and reaped.
    _registered: interrupt::Guard,
}

/// How a master's start ended.
enum Startup {
    /// Authenticated: its socket accepts sessions.
    Ready,
    /// It exited (its log says why).
    Exited,
    /// Neither within the deadline.
    TimedOut,
}

/// An error about a worker: `worker <host>: <detail>`.
pub(crate) fn worker_error(host: &str, detail: impl std::fmt::Display) -> Error {
    Error::msg(format!("worker {host}: {detail}"))
}

/// The worker could not be reached, or its connection broke or hung: `worker <host>: <detail>`.
pub(crate) fn unreachable_error(host: &str, detail: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::WorkerUnreachable, format!("worker {host}: {detail}"))
}

impl Master {
    /// Opens the master connection, retrying transient connection failures
    /// (`connect_retries` extra attempts, backoff 1 s, 2 s, 4 s …).
    pub(crate) fn start(target: &Target) -> Result<Master> {
        prepare_files(target)?;
        let log_path = log_path(target.control_path);
        let attempts = target.settings.connect_retries.saturating_add(1);
        let args = argv::master_args(target.settings, target.host, target.port, target.control_path);
        let deadline = Duration::from_secs(target.settings.connect_timeout_secs.max(1)) + MASTER_START_SLACK;
        let mut last_reason = String::new();
        for attempt in 0..attempts {
            if attempt > 0 {
                thread::sleep(backoff(attempt));
            }
            let _ = fs::remove_file(target.control_path);
            fs::write(&log_path, b"")
                .map_err(|e| worker_error(target.host, format!("cannot write {}: {e}", log_path.display())))?;
            let (mut master, registered) = process::spawn_background("ssh", &args, &log_path)
                .map_err(|e| worker_error(target.host, format!("cannot run ssh: {e} (install openssh-client)")))?;
            let startup = wait_ready(&mut master, target.control_path, deadline);
            if let Startup::Ready = startup {
                return Ok(Master {
                    control_path: target.control_path.to_path_buf(),
                    log_path,
                    process: master,
                    _registered: registered,
                });
            }
            process::reap_within(&mut master, Duration::ZERO);
            let stderr = fs::read_to_string(&log_path).unwrap_or_default();
            last_reason = if let Startup::TimedOut = startup {
                format!("no answer within {} s", deadline.as_secs())
            } else {
                match classify_failure(target, &stderr) {
                    Failure::Permanent(message) => return Err(unreachable_error(target.host, message)),
                    Failure::Transient(reason) => reason,
                }
            };
        }
        Err(unreachable_error(
            target.host,
            format!(
                "cannot connect over SSH as {} to {} port {} ({} attempt{}): {last_reason}",
                target.settings.user,
                target.host,
                target.port,
                attempts,
                if attempts == 1 { "" } else { "s" }
            ),
        ))
    }

    /// The socket still exists and the master process is still running.
    pub(crate) fn is_alive(&self) -> bool {
        self.control_path.exists() && pid_is_alive(self.process.id())
    }

    /// The last thing the master logged (why it went away), if anything.
    pub(crate) fn last_message(&self) -> Option<String> {
        last_line(&fs::read_to_string(&self.log_path).unwrap_or_default())
    }

    /// Ends the master (`ssh -O exit`, killed if it does not exit at once), reaps it and removes
    /// its files.
    pub(crate) fn stop(mut self, target: &Target) {
        if self.is_alive() {
            let args = argv::control_args(target.settings, target.host, target.port, &self.control_path, "exit");
            let _ = process::run_streaming("ssh", &args, None, Some(CONTROL_COMMAND_DEADLINE), &mut |_, _| {});
        }
        process::reap_within(&mut self.process, EXIT_GRACE);
        let _ = fs::remove_file(&self.control_path);
        let _ = fs::remove_file(&self.log_path);
    }
}

/// Waits until the master's socket appears (ssh creates it once authenticated), the master exits,
/// or `deadline` passes.
fn wait_ready(master: &mut Child, control_path: &Path, deadline: Duration) -> Startup {
    let until = Instant::now() + deadline;
    loop {
        if control_path.exists() {
            return Startup::Ready;
        }
        if !matches!(master.try_wait(), Ok(None)) {
            return Startup::Exited;
        }
        if Instant::now() >= until {
            return Startup::TimedOut;
        }
        thread::sleep(START_POLL);
    }
}

fn log_path(control_path: &Path) -> PathBuf {
    let mut name = control_path.as_os_str().to_os_string();
    name.push(".log");
    PathBuf::from(name)
}

/// The pause before attempt number `attempt` (1-based retries): 1 s, 2 s, 4 s, … capped.
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.saturating_sub(1).min(10)).min(MAX_BACKOFF)
}

/// Creates the socket directory (0700 when we create it) and, unless host keys are not checked,
/// the known_hosts file (0600) so ssh records keys in a private file.
fn prepare_files(target: &Target) -> Result<()> {
    let describe =
        |path: &Path, e: std::io::Error| worker_error(target.host, format!("cannot create {}: {e}", path.display()));
    if let Some(dir) = target.control_path.parent() {
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(|e| describe(dir, e))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| describe(dir, e))?;
        }
    }
    let known_hosts = &target.settings.known_hosts;
    if target.settings.host_key_checking != HostKeyPolicy::Off && !known_hosts.exists() {
        if let Some(dir) = known_hosts.parent() {
            fs::create_dir_all(dir).map_err(|e| describe(dir, e))?;
        }
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(known_hosts)
            .map_err(|e| describe(known_hosts, e))?;
        file.flush().map_err(|e| describe(known_hosts, e))?;
    }
    Ok(())
}

enum Failure {
    /// Retrying cannot help (host key, authentication, unknown host name).
    Permanent(String),
    /// The connection could not be established; another attempt may succeed.
    Transient(String),
}

fn classify_failure(target: &Target, stderr: &str) -> Failure {
    let known_hosts = target.settings.known_hosts.display();
    let pattern = known_hosts_pattern(target.host, target.port);
    if stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || stderr.contains("has changed and you have requested strict checking")
    {
        return Failure::Permanent(format!(
            "host key verification failed: the SSH host key of {} port {} differs from the one recorded in {known_hosts}; \
             refusing to connect. If the change is expected (worker reinstalled or its host key rotated), remove the \
             stale line from {known_hosts} (ssh-keygen -R '{pattern}' -f {known_hosts}) and retry",
            target.host, target.port
        ));
    }
    if stderr.contains("Host key verification failed") {
        return Failure::Permanent(format!(
            "host key verification failed: no host key of {} port {} is recorded in {known_hosts} and host_key_checking \
             is \"strict\": add the worker's verified key to {known_hosts} (ssh-keyscan -p {} {} >> {known_hosts}) or \
             use host_key_checking = \"accept-new\"",
            target.host, target.port, target.port, target.host
        ));
    }
    if stderr.contains("Permission denied") {
        return Failure::Permanent(format!(
            "SSH authentication failed as {} with key {}: check ssh_user and ssh_key in maand.conf and the worker's \
             authorized_keys ({})",
            target.settings.user,
            target.settings.key_path.display(),
            last_line(stderr).unwrap_or_default()
        ));
    }
    if stderr.contains("Could not resolve hostname") {
        return Failure::Permanent(last_line(stderr).unwrap_or_else(|| "unknown host name".to_string()));
    }
    Failure::Transient(last_line(stderr).unwrap_or_else(|| "ssh exited without a message".to_string()))
}

/// How known_hosts names this worker: `host`, or `[host]:port` off port 22.
fn known_hosts_pattern(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

fn last_line(text: &str) -> Option<String> {
    text.lines().map(str::trim).rfind(|l| !l.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SshSettings {
        SshSettings {
            user: "root".into(),
            key_path: "/b/secrets/k".into(),
            default_port: 22,
            use_sudo: false,
            host_key_checking: HostKeyPolicy::AcceptNew,
            known_hosts: "/b/secrets/known_hosts".into(),
            control_dir: "/b/tmp/ssh".into(),
            connect_timeout_secs: 5,
            command_timeout_secs: 30,
            connect_retries: 2,
        }
    }

    fn classify(stderr: &str) -> (bool, String) {
        let s = settings();
        let target = Target { settings: &s, host: "10.0.0.1", port: 2222, control_path: Path::new("/c") };
        match classify_failure(&target, stderr) {
            Failure::Permanent(m) => (true, m),
            Failure::Transient(m) => (false, m),
        }
    }

    #[test]
    fn changed_host_key_is_permanent_and_says_how_to_fix() {
        let (permanent, message) =
            classify("@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\nHost key verification failed.\n");
        assert!(permanent);
        assert!(message.contains("differs from the one recorded in /b/secrets/known_hosts"), "{message}");
        assert!(message.contains("ssh-keygen -R '[10.0.0.1]:2222' -f /b/secrets/known_hosts"), "{message}");
    }

    #[test]
    fn unknown_host_key_under_strict_is_permanent() {
        let (permanent, message) = classify(
            "No ED25519 host key is known for [10.0.0.1]:2222 and you have requested strict checking.\nHost key verification failed.\n",
        );
        assert!(permanent);
        assert!(message.contains("\"strict\""), "{message}");
    }

    #[test]
    fn auth_failure_is_permanent_and_refused_connection_transient() {
        assert!(classify("root@10.0.0.1: Permission denied (publickey).\n").0);
        let (permanent, reason) = classify("ssh: connect to host 10.0.0.1 port 2222: Connection refused\n");
        assert!(!permanent);
        assert_eq!(reason, "ssh: connect to host 10.0.0.1 port 2222: Connection refused");
        assert!(!classify("Connection timed out during banner exchange\n").0);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(4));
        assert_eq!(backoff(9), MAX_BACKOFF);
    }

    #[test]
    fn known_hosts_pattern_brackets_non_default_ports() {
        assert_eq!(known_hosts_pattern("10.0.0.1", 22), "10.0.0.1");
        assert_eq!(known_hosts_pattern("10.0.0.1", 2222), "[10.0.0.1]:2222");
    }
}
