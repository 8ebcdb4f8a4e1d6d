//! The OpenSSH executor: per worker exactly one ControlMaster, opened on first use and shared by
//! every script and rsync to that worker (also across threads), ended by `close()` or drop.
//! Sockets left behind by killed runs are cleaned when an executor is made.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use maand_core::{Error, ErrorKind, Result};

use super::master::{unreachable_error, worker_error, Master, Target};
use super::settings::SshSettings;
use super::stale;
use super::{argv, banner};
use crate::executor::{Executor, RemoteScript, RsyncArgs, RunOutcome, Stream, WorkerAddr};
use crate::process::{self, Finished};

/// Time past the remote `timeout` after which the local ssh is killed.
pub const LOCAL_GRACE: Duration = Duration::from_secs(5);
/// Sessions open at once on one master; sshd refuses more than `MaxSessions` (default 10).
const MAX_SESSIONS_PER_WORKER: usize = 8;

static NEXT_EXECUTOR: AtomicU64 = AtomicU64::new(1);

/// Runs scripts and rsync on workers with the system `ssh` and `rsync`.
pub struct OpenSsh {
    settings: SshSettings,
    /// `<pid>-<n>`: makes socket names unique per executor, also across processes.
    id: String,
    links: Mutex<HashMap<(String, u16), Arc<WorkerLink>>>,
}

/// Everything about one worker: its master (guarded so only one is ever started) and the
/// session limit.
struct WorkerLink {
    host: String,
    port: u16,
    control_path: PathBuf,
    master: Mutex<MasterSlot>,
    sessions: SessionLimit,
}

#[derive(Default)]
struct MasterSlot {
    master: Option<Master>,
    /// The last failed start, so callers queued behind it fail with it instead of retrying again.
    last_failure: Option<(Instant, Error)>,
}

impl OpenSsh {
    /// An executor with no connection open yet. Control sockets left in its control directory by
    /// maand runs that were killed are cleaned first (their masters told to exit).
    pub fn new(settings: SshSettings) -> Self {
        stale::clean_dead_runs(&settings.control_dir);
        let id = format!("{}-{}", std::process::id(), NEXT_EXECUTOR.fetch_add(1, Ordering::Relaxed));
        OpenSsh { settings, id, links: Mutex::new(HashMap::new()) }
    }

    pub fn settings(&self) -> &SshSettings {
        &self.settings
    }

    /// Number of ControlMasters this executor currently holds open.
    pub fn open_connections(&self) -> usize {
        self.all_links().iter().filter(|link| lock(&link.master).master.as_ref().is_some_and(Master::is_alive)).count()
    }

    fn link(&self, worker: &WorkerAddr) -> Arc<WorkerLink> {
        let port = worker.port.unwrap_or(self.settings.default_port);
        let mut links = lock(&self.links);
        links
            .entry((worker.host.clone(), port))
            .or_insert_with(|| {
                Arc::new(WorkerLink {
                    host: worker.host.clone(),
                    port,
                    control_path: argv::control_path(&self.settings.control_dir, &self.id, &worker.host, port),
                    master: Mutex::new(MasterSlot::default()),
                    sessions: SessionLimit::new(MAX_SESSIONS_PER_WORKER),
                })
            })
            .clone()
    }

    fn all_links(&self) -> Vec<Arc<WorkerLink>> {
        lock(&self.links).values().cloned().collect()
    }

    fn target<'a>(&'a self, link: &'a WorkerLink) -> Target<'a> {
        Target { settings: &self.settings, host: &link.host, port: link.port, control_path: &link.control_path }
    }

    /// Makes sure the worker's master is running, starting it if needed. Only one caller at a time
    /// may start it; callers that waited while a start failed get that failure.
    fn ensure_master(&self, link: &WorkerLink) -> Result<()> {
        let arrived = Instant::now();
        let mut slot = lock(&link.master);
        if slot.master.as_ref().is_some_and(Master::is_alive) {
            return Ok(());
        }
        if let Some((failed_at, error)) = &slot.last_failure {
            if *failed_at >= arrived {
                return Err(error.clone());
            }
        }
        if let Some(dead) = slot.master.take() {
            dead.stop(&self.target(link));
        }
        match Master::start(&self.target(link)) {
            Ok(master) => {
                slot.master = Some(master);
                slot.last_failure = None;
                Ok(())
            }
            Err(error) => {
                slot.last_failure = Some((Instant::now(), error.clone()));
                Err(error)
            }
        }
    }

    /// Turns a finished session into an outcome, or an error when the connection broke or the
    /// local deadline passed.
    fn outcome(&self, link: &WorkerLink, finished: Finished, what: &str, limit_secs: u64) -> Result<RunOutcome> {
        if finished.killed_at_deadline {
            return Err(unreachable_error(
                &link.host,
                format!(
                    "{what} gave no result within its {limit_secs} s time limit (+{} s grace) and was stopped; \
                     the worker may be hung or overloaded",
                    LOCAL_GRACE.as_secs()
                ),
            ));
        }
        if finished.exit_code == 255 {
            let slot = lock(&link.master);
            if let Some(master) = slot.master.as_ref().filter(|m| !m.is_alive()) {
                let why = master.last_message().map(|m| format!(": {m}")).unwrap_or_default();
                return Err(unreachable_error(&link.host, format!("SSH connection lost during {what}{why}")));
            }
        }
        Ok(RunOutcome { exit_code: finished.exit_code, duration: finished.duration })
    }
}

impl Executor for OpenSsh {
    fn run_script(
        &self,
        worker: &WorkerAddr,
        script: &RemoteScript,
        timeout_secs: Option<u64>,
        on_line: &mut dyn FnMut(Stream, &str),
    ) -> Result<RunOutcome> {
        let text = script.render().map_err(|e| e.context(format!("worker {}", worker.host)))?;
        let secs = timeout_secs.unwrap_or(self.settings.command_timeout_secs).max(1);
        let link = self.link(worker);
        let _session = link.sessions.acquire();
        self.ensure_master(&link)?;
        let remote = argv::remote_command(secs, self.settings.use_sudo);
        let args = argv::session_args(&self.settings, &link.host, link.port, &link.control_path, &remote);
        let deadline = Duration::from_secs(secs) + LOCAL_GRACE;
        let finished = process::run_streaming("ssh", &args, Some(text.into_bytes()), Some(deadline), on_line)
            .map_err(|e| worker_error(&link.host, format!("cannot run ssh: {e} (install openssh-client)")))?;
        self.outcome(&link, finished, "the script", secs)
    }

    fn rsync(
        &self,
        worker: &WorkerAddr,
        local_dir: &Path,
        remote_dir: &str,
        args: &RsyncArgs,
        on_line: &mut dyn FnMut(Stream, &str),
    ) -> Result<RunOutcome> {
        let link = self.link(worker);
        let rsync_args =
            argv::rsync_args(&self.settings, &link.host, link.port, &link.control_path, local_dir, remote_dir, args)
                .map_err(|e| e.context(format!("worker {}", link.host)))?;
        let _session = link.sessions.acquire();
        self.ensure_master(&link)?;
        // rsync's own --timeout bounds a stalled transfer; a dead worker ends the master (keepalive).
        let finished = process::run_streaming("rsync", &rsync_args, None, None, on_line)
            .map_err(|e| worker_error(&link.host, format!("cannot run rsync: {e} (install rsync)")))?;
        self.outcome(&link, finished, "rsync", self.settings.command_timeout_secs)
    }

    fn check_alive(&self, worker: &WorkerAddr, timeout: Option<Duration>) -> Result<()> {
        let port = worker.port.unwrap_or(self.settings.default_port);
        let timeout = timeout.unwrap_or(Duration::from_secs(self.settings.connect_timeout_secs.max(1)));
        banner::read_banner(&worker.host, port, timeout).map(|_| ()).map_err(|why| {
            Error::new(ErrorKind::WorkerUnreachable, format!("worker {} ssh port {port}: {why}", worker.host))
        })
    }

    fn close(&self) {
        for link in self.all_links() {
            let mut slot = lock(&link.master);
            if let Some(master) = slot.master.take() {
                master.stop(&self.target(&link));
            }
            slot.last_failure = None;
        }
    }
}

impl Drop for OpenSsh {
    fn drop(&mut self) {
        self.close();
    }
}

/// Locks a mutex, recovering the data if another thread panicked while holding it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A counting semaphore bounding the sessions open at once on one worker.
struct SessionLimit {
    in_use: Mutex<usize>,
    freed: Condvar,
    max: usize,
}

struct SessionPermit<'a>(&'a SessionLimit);

impl SessionLimit {
    fn new(max: usize) -> Self {
        SessionLimit { in_use: Mutex::new(0), freed: Condvar::new(), max }
    }

    fn acquire(&self) -> SessionPermit<'_> {
        let mut in_use = lock(&self.in_use);
        while *in_use >= self.max {
            in_use = self.freed.wait(in_use).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        *in_use += 1;
        SessionPermit(self)
    }
}

impl Drop for SessionPermit<'_> {
    fn drop(&mut self) {
        *lock(&self.0.in_use) -= 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::HostKeyPolicy;
    use std::sync::atomic::AtomicUsize;

    fn settings(dir: &Path) -> SshSettings {
        SshSettings {
            user: "root".into(),
            key_path: dir.join("key"),
            default_port: 2200,
            use_sudo: false,
            host_key_checking: HostKeyPolicy::AcceptNew,
            known_hosts: dir.join("known_hosts"),
            control_dir: dir.join("ssh"),
            connect_timeout_secs: 1,
            command_timeout_secs: 5,
            connect_retries: 0,
        }
    }

    #[test]
    fn executors_get_distinct_socket_names_and_worker_port_wins() {
        let dir = tempfile::tempdir().unwrap();
        let a = OpenSsh::new(settings(dir.path()));
        let b = OpenSsh::new(settings(dir.path()));
        let la = a.link(&WorkerAddr::new("127.0.0.2", None));
        let lb = b.link(&WorkerAddr::new("127.0.0.2", None));
        assert_ne!(la.control_path, lb.control_path);
        assert_eq!(la.port, 2200);
        assert_eq!(a.link(&WorkerAddr::new("127.0.0.2", Some(2222))).port, 2222);
        assert!(Arc::ptr_eq(&la, &a.link(&WorkerAddr::new("127.0.0.2", None))), "one link per worker");
    }

    #[test]
    fn unused_executor_opens_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let ssh = OpenSsh::new(settings(dir.path()));
        ssh.close();
        assert_eq!(ssh.open_connections(), 0);
        assert!(!dir.path().join("ssh").exists(), "no socket directory until a worker is used");
    }

    #[test]
    fn invalid_env_name_is_reported_with_worker_before_connecting() {
        let dir = tempfile::tempdir().unwrap();
        let ssh = OpenSsh::new(settings(dir.path()));
        let script = RemoteScript::default().with_env("BAD-NAME", "x");
        let err = ssh.run_script(&WorkerAddr::new("127.0.0.2", None), &script, None, &mut |_, _| {}).unwrap_err();
        assert!(err.to_string().contains("worker 127.0.0.2: invalid environment variable name"), "{err}");
        assert!(!dir.path().join("ssh").exists());
    }

    #[test]
    fn session_limit_bounds_concurrency() {
        let limit = Arc::new(SessionLimit::new(2));
        let active = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let (limit, active, peak) = (limit.clone(), active.clone(), peak.clone());
                std::thread::spawn(move || {
                    let _permit = limit.acquire();
                    let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(30));
                    active.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }
}
