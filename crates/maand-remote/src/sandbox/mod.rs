//! Sandbox workers: real SSH workers on one machine for the demo, end-to-end tests and benchmarks.
//! Each is an `sshd -D` on its own loopback address and port, inside its own mount namespace with
//! private directories bound on `/opt` and `/root` (an empty home: the CLI host's dotfiles do not
//! run on workers); processes started over SSH inherit that namespace. The
//! sandbox can kill, freeze, thaw and restart a worker to simulate failures, and `down` leaves no
//! process behind.

mod addresses;
mod keys;
mod namespace;
mod sshd;

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use maand_core::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};

pub use addresses::{marker_path, RESERVATION_DIR};
pub use keys::ensure_client_key;

use crate::executor::WorkerAddr;
use crate::procfs::{command_name, pid_is_alive};
use sshd::{file_error, sandbox_error, WorkerFiles};

/// One sandbox worker as recorded in the sandbox state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxWorker {
    pub ip: String,
    pub port: u16,
    /// Its state directory (config, keys, logs, `opt/`).
    pub dir: PathBuf,
    /// sshd's pid as last recorded (0 when never started).
    pub pid: u32,
}

impl SandboxWorker {
    /// True when its sshd is alive in the worker's own namespace.
    pub fn is_running(&self) -> bool {
        self.pid != 0
            && pid_is_alive(self.pid)
            && command_name(self.pid).as_deref() == Some("sshd")
            && namespace::pid_uses_opt(self.pid, &self.opt_dir())
    }

    /// The directory the worker sees as `/opt`.
    pub fn opt_dir(&self) -> PathBuf {
        self.dir.join("opt")
    }

    /// How the transport reaches it.
    pub fn addr(&self) -> WorkerAddr {
        WorkerAddr::new(self.ip.clone(), Some(self.port))
    }
}

/// The sandbox of one bucket (or test): its workers live under `state_dir/workers/<ip>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    pub state_dir: PathBuf,
}

/// What is persisted per worker (`worker.json`).
#[derive(Serialize, Deserialize)]
struct Record {
    ip: String,
    port: u16,
}

fn workers_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("workers")
}

pub(crate) fn record_path(state_dir: &Path, ip: &str) -> PathBuf {
    workers_dir(state_dir).join(ip).join("worker.json")
}

impl Sandbox {
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Sandbox { state_dir: state_dir.into() }
    }

    /// Root, `/usr/sbin/sshd`, `ssh`, `ssh-keygen`, `rsync`, `unshare`, `setsid` and `mount`, else
    /// an error saying what to install or how to run.
    pub fn check_prerequisites() -> Result<()> {
        if !running_as_root() {
            return Err(Error::new(
                ErrorKind::HostPrerequisites,
                "sandbox workers need root (each sshd bind-mounts a private /opt in its own mount namespace): run as root",
            ));
        }
        let mut missing_programs = Vec::new();
        let mut packages: Vec<&str> = Vec::new();
        let mut need = |present: bool, program: &'static str, package: &'static str| {
            if !present {
                missing_programs.push(program);
                if !packages.contains(&package) {
                    packages.push(package);
                }
            }
        };
        need(Path::new(sshd::SSHD).exists(), sshd::SSHD, "openssh-server");
        need(find_program("ssh").is_some(), "ssh", "openssh-client");
        need(find_program("ssh-keygen").is_some(), "ssh-keygen", "openssh-client");
        need(find_program("rsync").is_some(), "rsync", "rsync");
        need(find_program("unshare").is_some(), "unshare", "util-linux");
        need(find_program("setsid").is_some(), "setsid", "util-linux");
        need(find_program("mount").is_some(), "mount", "mount");
        if missing_programs.is_empty() {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::HostPrerequisites,
            format!(
                "sandbox workers need {}: install with `apt-get install -y {}`",
                missing_programs.join(", "),
                packages.join(" ")
            ),
        ))
    }

    /// Makes `count` workers run (keeping running ones, restarting recorded ones that died,
    /// starting new ones on free addresses) with `authorized_pubkey` as their only authorized key.
    /// Waits until each accepts connections. Returns every worker, ordered by address. On error,
    /// started workers stay up: call `down`.
    pub fn up(&self, count: usize, authorized_pubkey: &str) -> Result<Vec<SandboxWorker>> {
        Self::check_prerequisites()?;
        let state_dir = self.absolute_state_dir(true)?;
        let mut workers = self.workers()?;
        let mut to_wait = Vec::new();
        for worker in &workers {
            addresses::reclaim_own(&worker.ip, &state_dir)?;
            let files = WorkerFiles { dir: &worker.dir };
            files.prepare(&worker.ip, worker.port, authorized_pubkey)?;
            if !worker.is_running() {
                namespace::kill_all(&worker.opt_dir(), &worker.ip)?;
                files.launch(&worker.ip)?;
                to_wait.push(worker.ip.clone());
            }
        }
        while workers.len() < count {
            let worker = create_worker(&state_dir, authorized_pubkey)?;
            WorkerFiles { dir: &worker.dir }.launch(&worker.ip)?;
            to_wait.push(worker.ip.clone());
            workers.push(worker);
        }
        for worker in workers.iter_mut().filter(|w| to_wait.contains(&w.ip)) {
            worker.pid = WorkerFiles { dir: &worker.dir }.wait_ready(&worker.ip, worker.port)?;
        }
        sort_by_address(&mut workers);
        Ok(workers)
    }

    /// Stops every worker and every process in its namespace, releases the addresses and removes
    /// the state directory.
    pub fn down(&self) -> Result<()> {
        if !self.state_dir.exists() {
            return Ok(());
        }
        let state_dir = self.absolute_state_dir(false)?;
        for worker in self.workers()? {
            namespace::kill_all(&worker.opt_dir(), &worker.ip)?;
            addresses::release(&worker.ip, &state_dir);
        }
        fs::remove_dir_all(&state_dir).map_err(|e| file_error(&state_dir, e))
    }

    /// The recorded workers, ordered by address.
    pub fn workers(&self) -> Result<Vec<SandboxWorker>> {
        let dir = workers_dir(&self.state_dir);
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let entries = fs::read_dir(&dir).map_err(|e| file_error(&dir, e))?;
        let mut workers = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| file_error(&dir, e))?;
            let record_file = entry.path().join("worker.json");
            if !record_file.exists() {
                continue;
            }
            let text = fs::read_to_string(&record_file).map_err(|e| file_error(&record_file, e))?;
            let record: Record = serde_json::from_str(&text).map_err(|e| {
                Error::msg(format!("sandbox: {}: {e}: run `maand sandbox down` and up again", record_file.display()))
            })?;
            let worker_dir = absolute(&entry.path());
            let pid = WorkerFiles { dir: &worker_dir }.recorded_pid().unwrap_or(0);
            workers.push(SandboxWorker { ip: record.ip, port: record.port, dir: worker_dir, pid });
        }
        sort_by_address(&mut workers);
        Ok(workers)
    }

    /// Simulates a dead host: SIGKILL its sshd and every process in its namespace.
    pub fn kill_worker(&self, ip: &str) -> Result<()> {
        let worker = self.worker(ip)?;
        namespace::kill_all(&worker.opt_dir(), ip)
    }

    /// Brings a killed worker back with the same address, port, host key and opt directory.
    pub fn restart_worker(&self, ip: &str) -> Result<()> {
        let worker = self.worker(ip)?;
        if worker.is_running() {
            return Ok(());
        }
        namespace::kill_all(&worker.opt_dir(), ip)?;
        let files = WorkerFiles { dir: &worker.dir };
        let authorized = fs::read_to_string(worker.dir.join("authorized_keys")).unwrap_or_default();
        files.prepare(ip, worker.port, &authorized)?;
        files.launch(ip)?;
        files.wait_ready(ip, worker.port).map(|_| ())
    }

    /// Simulates a hung host: SIGSTOP its sshd and every process in its namespace.
    pub fn freeze_worker(&self, ip: &str) -> Result<()> {
        let worker = self.worker(ip)?;
        if namespace::signal_all(&worker.opt_dir(), "STOP") == 0 {
            return Err(sandbox_error(ip, "not running, nothing to freeze"));
        }
        Ok(())
    }

    /// Resumes a frozen worker (SIGCONT).
    pub fn thaw_worker(&self, ip: &str) -> Result<()> {
        let worker = self.worker(ip)?;
        namespace::signal_all(&worker.opt_dir(), "CONT");
        Ok(())
    }

    /// Number of SSH connections the worker's sshd accepted (its log's "Accepted publickey" lines).
    pub fn accepted_connections(&self, ip: &str) -> Result<usize> {
        let worker = self.worker(ip)?;
        let log = WorkerFiles { dir: &worker.dir }.log();
        let text = fs::read_to_string(&log).unwrap_or_default();
        Ok(text.lines().filter(|l| l.contains("Accepted publickey")).count())
    }

    /// Pids of every process running in the worker's namespace (sshd included).
    pub fn processes(&self, ip: &str) -> Result<Vec<u32>> {
        let worker = self.worker(ip)?;
        Ok(namespace::processes(&worker.opt_dir()))
    }

    fn worker(&self, ip: &str) -> Result<SandboxWorker> {
        self.workers()?.into_iter().find(|w| w.ip == ip).ok_or_else(|| {
            Error::msg(format!(
                "sandbox has no worker {ip} (state in {}; see `maand sandbox status`)",
                self.state_dir.display()
            ))
        })
    }

    /// The state directory as an absolute path (sshd needs absolute paths), created if asked.
    fn absolute_state_dir(&self, create: bool) -> Result<PathBuf> {
        if create {
            fs::create_dir_all(workers_dir(&self.state_dir)).map_err(|e| file_error(&self.state_dir, e))?;
        }
        fs::canonicalize(&self.state_dir).map_err(|e| file_error(&self.state_dir, e))
    }
}

/// Reserves an address and port and writes a new worker's files.
fn create_worker(state_dir: &Path, authorized_pubkey: &str) -> Result<SandboxWorker> {
    let ip = addresses::reserve(state_dir)?;
    let made = (|| {
        let port = addresses::free_port(&ip)?;
        let dir = workers_dir(state_dir).join(&ip);
        WorkerFiles { dir: &dir }.prepare(&ip, port, authorized_pubkey)?;
        let record = serde_json::to_string_pretty(&Record { ip: ip.clone(), port })
            .map_err(|e| sandbox_error(&ip, format!("cannot encode worker.json: {e}")))?;
        let record_file = dir.join("worker.json");
        fs::write(&record_file, record + "\n").map_err(|e| file_error(&record_file, e))?;
        Ok(SandboxWorker { ip: ip.clone(), port, dir, pid: 0 })
    })();
    if made.is_err() {
        addresses::release(&ip, state_dir);
    }
    made
}

/// Workers are always listed by address (concurrent sandboxes may hand out addresses out of order).
fn sort_by_address(workers: &mut [SandboxWorker]) {
    workers.sort_by_key(|w| w.ip.parse::<Ipv4Addr>().map(u32::from).unwrap_or(u32::MAX));
}

fn absolute(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Effective uid 0, read from /proc (no libc).
fn running_as_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("Uid:").and_then(|ids| ids.split_whitespace().nth(1)).map(|euid| euid == "0")
            })
        })
        .unwrap_or(false)
}

/// The program's path in `PATH` (or the sbin directories, often missing from non-root PATHs).
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_programs_and_reports_missing_ones() {
        assert!(find_program("sh").is_some());
        assert!(find_program("definitely-not-a-program-xyz").is_none());
    }

    #[test]
    fn workers_of_empty_or_missing_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Sandbox::new(dir.path().join("none")).workers().unwrap().is_empty());
        assert!(Sandbox::new(dir.path().join("none")).down().is_ok());
        let err = Sandbox::new(dir.path()).kill_worker("127.0.0.9").unwrap_err().to_string();
        assert!(err.contains("sandbox has no worker 127.0.0.9"), "{err}");
    }

    #[test]
    fn workers_are_read_from_records_in_address_order() {
        let dir = tempfile::tempdir().unwrap();
        for (ip, port) in [("127.0.0.10", 2223), ("127.0.0.9", 2222)] {
            let worker_dir = workers_dir(dir.path()).join(ip);
            fs::create_dir_all(&worker_dir).unwrap();
            fs::write(worker_dir.join("worker.json"), format!("{{\"ip\":\"{ip}\",\"port\":{port}}}")).unwrap();
        }
        let workers = Sandbox::new(dir.path()).workers().unwrap();
        let ips: Vec<&str> = workers.iter().map(|w| w.ip.as_str()).collect();
        assert_eq!(ips, ["127.0.0.9", "127.0.0.10"]);
        assert_eq!(workers[0].port, 2222);
        assert_eq!(workers[0].pid, 0);
        assert!(!workers[0].is_running());
    }
}
