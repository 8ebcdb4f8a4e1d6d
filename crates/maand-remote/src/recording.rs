//! A fake executor for engine tests: records every call (worker, rendered script, rsync arguments)
//! and answers each with whatever the test's responder decides (default: success, no output).
//! Every worker's SSH server answers unless the test marks it unresponsive (a frozen worker).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use maand_core::{Error, ErrorKind, Result};

use crate::executor::{Executor, RemoteScript, RsyncArgs, RunOutcome, Stream, WorkerAddr};

/// One recorded call, in the order calls were made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Script { worker: WorkerAddr, script: String, timeout_secs: Option<u64> },
    Rsync { worker: WorkerAddr, local_dir: PathBuf, remote_dir: String, args: RsyncArgs },
}

impl Call {
    pub fn worker(&self) -> &WorkerAddr {
        match self {
            Call::Script { worker, .. } | Call::Rsync { worker, .. } => worker,
        }
    }

    /// The rendered script text of a script call.
    pub fn script(&self) -> Option<&str> {
        match self {
            Call::Script { script, .. } => Some(script),
            Call::Rsync { .. } => None,
        }
    }
}

/// The scripted answer to one call: output lines delivered to the caller, then the exit code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    pub exit_code: i32,
    pub output: Vec<(Stream, String)>,
}

impl Reply {
    pub fn ok() -> Self {
        Reply::default()
    }

    pub fn exit(code: i32) -> Self {
        Reply { exit_code: code, output: Vec::new() }
    }

    /// Adds an output line (builder style).
    pub fn with_line(mut self, stream: Stream, line: impl Into<String>) -> Self {
        self.output.push((stream, line.into()));
        self
    }
}

type Responder = dyn Fn(&Call) -> Result<Reply> + Send + Sync;

/// Records calls and answers them through a responder; never touches the network.
pub struct RecordingExecutor {
    calls: Mutex<Vec<Call>>,
    responder: Box<Responder>,
    closes: AtomicUsize,
    /// Hosts whose SSH server does not answer `check_alive`.
    unresponsive: Mutex<BTreeSet<String>>,
}

impl Default for RecordingExecutor {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordingExecutor {
    /// Every call succeeds with exit code 0 and no output.
    pub fn new() -> Self {
        Self::with_responder(|_| Ok(Reply::ok()))
    }

    /// Every call is answered by `responder` (an `Err` is returned to the caller as is).
    pub fn with_responder(responder: impl Fn(&Call) -> Result<Reply> + Send + Sync + 'static) -> Self {
        RecordingExecutor {
            calls: Mutex::new(Vec::new()),
            responder: Box::new(responder),
            closes: AtomicUsize::new(0),
            unresponsive: Mutex::default(),
        }
    }

    /// Every call made so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Makes `host`'s SSH server stop answering `check_alive` (`false`: answer again).
    pub fn set_unresponsive(&self, host: &str, unresponsive: bool) {
        let mut hosts = self.unresponsive.lock().unwrap_or_else(|p| p.into_inner());
        if unresponsive {
            hosts.insert(host.to_string());
        } else {
            hosts.remove(host);
        }
    }

    /// How many times `close()` was called.
    pub fn close_count(&self) -> usize {
        self.closes.load(Ordering::SeqCst)
    }

    fn answer(&self, call: Call, on_line: &mut dyn FnMut(Stream, &str)) -> Result<RunOutcome> {
        let reply = (self.responder)(&call);
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).push(call);
        let reply = reply?;
        for (stream, line) in &reply.output {
            on_line(*stream, line);
        }
        Ok(RunOutcome { exit_code: reply.exit_code, duration: Duration::ZERO })
    }
}

impl Executor for RecordingExecutor {
    fn run_script(
        &self,
        worker: &WorkerAddr,
        script: &RemoteScript,
        timeout_secs: Option<u64>,
        on_line: &mut dyn FnMut(Stream, &str),
    ) -> Result<RunOutcome> {
        let script = script.render()?;
        self.answer(Call::Script { worker: worker.clone(), script, timeout_secs }, on_line)
    }

    fn rsync(
        &self,
        worker: &WorkerAddr,
        local_dir: &Path,
        remote_dir: &str,
        args: &RsyncArgs,
        on_line: &mut dyn FnMut(Stream, &str),
    ) -> Result<RunOutcome> {
        let call = Call::Rsync {
            worker: worker.clone(),
            local_dir: local_dir.to_path_buf(),
            remote_dir: remote_dir.to_string(),
            args: args.clone(),
        };
        self.answer(call, on_line)
    }

    fn check_alive(&self, worker: &WorkerAddr, _timeout: Option<Duration>) -> Result<()> {
        if self.unresponsive.lock().unwrap_or_else(|p| p.into_inner()).contains(&worker.host) {
            let port = worker.port.unwrap_or(22);
            return Err(Error::new(
                ErrorKind::WorkerUnreachable,
                format!("worker {} ssh port {port}: connected, but no SSH banner", worker.host),
            ));
        }
        Ok(())
    }

    fn close(&self) {
        self.closes.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_calls_and_replays_scripted_answers() {
        let exec = RecordingExecutor::with_responder(|call| match call {
            Call::Script { worker, .. } if worker.host == "10.0.0.2" => Err(Error::msg("worker 10.0.0.2: down")),
            Call::Script { .. } => Ok(Reply::exit(3).with_line(Stream::Stderr, "boom")),
            Call::Rsync { .. } => Ok(Reply::ok()),
        });
        let w1 = WorkerAddr::new("10.0.0.1", None);
        let mut lines = Vec::new();
        let outcome = exec
            .run_script(&w1, &RemoteScript::from_lines(["make start"]), Some(9), &mut |s, l| {
                lines.push((s, l.to_string()))
            })
            .unwrap();
        assert_eq!(outcome.exit_code, 3);
        assert_eq!(lines, vec![(Stream::Stderr, "boom".to_string())]);

        let err = exec
            .run_script(&WorkerAddr::new("10.0.0.2", Some(2222)), &RemoteScript::default(), None, &mut |_, _| {})
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Message);

        let args = RsyncArgs::worker_tree("/f.rsync");
        assert!(exec.rsync(&w1, Path::new("/src"), "/opt/worker/b", &args, &mut |_, _| {}).unwrap().success());
        exec.close();

        let calls = exec.calls();
        assert_eq!(calls.len(), 3);
        assert_eq!(calls[0].script(), Some("#!/bin/bash\nset -e\nset -u\nmake start\n"));
        assert!(matches!(&calls[0], Call::Script { timeout_secs: Some(9), .. }));
        assert_eq!(calls[1].worker().port, Some(2222));
        assert_eq!(
            calls[2],
            Call::Rsync { worker: w1, local_dir: "/src".into(), remote_dir: "/opt/worker/b".into(), args }
        );
        assert_eq!(exec.close_count(), 1);
    }

    #[test]
    fn workers_answer_unless_marked_unresponsive() {
        let exec = RecordingExecutor::new();
        let worker = WorkerAddr::new("10.0.0.3", Some(2222));
        exec.check_alive(&worker, None).unwrap();
        exec.set_unresponsive("10.0.0.3", true);
        let err = exec.check_alive(&worker, None).unwrap_err();
        assert_eq!(err.kind, ErrorKind::WorkerUnreachable);
        assert_eq!(err.to_string(), "worker 10.0.0.3 ssh port 2222: connected, but no SSH banner");
        exec.check_alive(&WorkerAddr::new("10.0.0.4", None), None).unwrap();
        exec.set_unresponsive("10.0.0.3", false);
        exec.check_alive(&worker, None).unwrap();
        assert!(exec.calls().is_empty(), "liveness checks are not calls");
    }
}
