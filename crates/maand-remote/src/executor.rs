//! The transport contract the engine talks to: run a script on a worker or rsync a tree to it,
//! streaming output lines, bounded by timeouts, and tell whether a worker's SSH server answers.
//! Implemented by `ssh::OpenSsh` (real workers) and `recording::RecordingExecutor` (tests).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use maand_core::Result;

pub use crate::script::RemoteScript;

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How a remote command ended. `exit_code` is the command's own status (124 = stopped by the
/// remote `timeout`); connection failures are errors, not outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOutcome {
    pub exit_code: i32,
    pub duration: Duration,
}

/// Exit status of coreutils `timeout` when it stopped the command.
pub const REMOTE_TIMEOUT_EXIT_CODE: i32 = 124;

impl RunOutcome {
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }

    /// True when the remote `timeout` stopped the command.
    pub fn timed_out(&self) -> bool {
        self.exit_code == REMOTE_TIMEOUT_EXIT_CODE
    }
}

/// Where a worker is reached: its address and, when workers.json gives one, its own SSH port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkerAddr {
    pub host: String,
    pub port: Option<u16>,
}

impl WorkerAddr {
    pub fn new(host: impl Into<String>, port: Option<u16>) -> Self {
        WorkerAddr { host: host.into(), port }
    }
}

impl fmt::Display for WorkerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.host)
    }
}

/// What to transfer beyond the fixed flags: a filter merge file and exclude patterns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RsyncArgs {
    /// Passed as `--filter=merge <file>`.
    pub filter_file: Option<PathBuf>,
    /// Passed as `--exclude=<pattern>` each, before the filter.
    pub excludes: Vec<String>,
}

/// Runtime directories under a job on the worker that rsync never overwrites or deletes, and the
/// CLI-side-only directories that never reach workers (spec internals §2.7).
pub const WORKER_TREE_EXCLUDES: [&str; 5] =
    ["jobs/*/bin", "jobs/*/data", "jobs/*/logs", "jobs/*/_modules", "jobs/*/_prometheus"];

impl RsyncArgs {
    /// The arguments of a worker-tree sync (spec internals §2.7): the fixed excludes plus `filter_file`.
    pub fn worker_tree(filter_file: impl Into<PathBuf>) -> Self {
        RsyncArgs {
            filter_file: Some(filter_file.into()),
            excludes: WORKER_TREE_EXCLUDES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Runs scripts and rsyncs on workers. Errors name the worker (`worker 10.0.0.1: …`).
pub trait Executor: Send + Sync {
    /// Runs `script` on `worker` with `timeout_secs` (else the executor's default) as the remote
    /// time limit, calling `on_line` for each output line as it arrives.
    fn run_script(
        &self,
        worker: &WorkerAddr,
        script: &RemoteScript,
        timeout_secs: Option<u64>,
        on_line: &mut dyn FnMut(Stream, &str),
    ) -> Result<RunOutcome>;

    /// Copies the contents of `local_dir` into `remote_dir` on `worker`.
    fn rsync(
        &self,
        worker: &WorkerAddr,
        local_dir: &Path,
        remote_dir: &str,
        args: &RsyncArgs,
        on_line: &mut dyn FnMut(Stream, &str),
    ) -> Result<RunOutcome>;

    /// Checks that the worker's SSH server answers: its SSH port accepts a connection and sends
    /// the SSH banner, within `timeout` (the executor's connect timeout when `None`). A frozen
    /// host still accepts TCP connections, so this is what tells it from a live one. Fails with
    /// [`maand_core::ErrorKind::WorkerUnreachable`]: `worker <host> ssh port <port>: <why>`.
    fn check_alive(&self, worker: &WorkerAddr, timeout: Option<Duration>) -> Result<()>;

    /// Ends every connection this executor opened.
    fn close(&self);
}
