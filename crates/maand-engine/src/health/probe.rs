//! One manifest probe against one allocation (spec §9.2): tcp connect, http GET, or an ssh command
//! run through the executor. A failure reads `<worker> <probe>: <reason>`.

use super::net::{host_for_url, http_get, tcp_connect, timed_out};
use maand_core::ProbeKind;
use maand_remote::script::shell_quote;
use maand_remote::{Executor, RemoteScript, Stream, WorkerAddr};
use std::collections::BTreeMap;
use std::time::Duration;

/// Streams an ssh probe's output: (`job@worker`, stream, line).
pub type OutputSink<'a> = dyn Fn(&str, Stream, &str) + Sync + 'a;

/// What every probe of one job shares.
pub(crate) struct ProbeContext<'a> {
    pub job: &'a str,
    pub executor: &'a dyn Executor,
    pub ports: &'a BTreeMap<String, u16>,
    pub timeout: Duration,
    pub use_sudo: bool,
    pub output: &'a OutputSink<'a>,
}

impl ProbeContext<'_> {
    /// Runs `probe` against `worker`; the error names the worker, the probe and the reason.
    pub(crate) fn run(&self, worker: &WorkerAddr, probe: &ProbeKind) -> Result<(), String> {
        let fail = |what: String, reason: String| Err(format!("{worker} {what}: {reason}"));
        match probe {
            ProbeKind::Tcp { port } => match self.ports.get(port) {
                None => fail(format!("tcp {port}"), unassigned(port)),
                Some(&number) => {
                    tcp_connect(&worker.host, number, self.timeout).or_else(|r| fail(format!("tcp {port} {number}"), r))
                }
            },
            ProbeKind::Http { port, path, expect_status, scheme } => match self.ports.get(port) {
                None => fail(format!("http {port}"), unassigned(port)),
                Some(&number) => {
                    let url = format!("{scheme}://{}:{number}{path}", host_for_url(&worker.host));
                    http_get(&url, *expect_status, self.timeout).or_else(|r| fail(format!("http {port} GET {url}"), r))
                }
            },
            ProbeKind::Ssh { command } => self.ssh(worker, command).or_else(|r| fail(format!("ssh {command:?}"), r)),
        }
    }

    /// Runs `command` in its own bash (a login shell under sudo, as the Go maand's
    /// `sudo -E bash -lc`), bounded by the probe timeout; passes on exit 0.
    fn ssh(&self, worker: &WorkerAddr, command: &str) -> Result<(), String> {
        let flags = if self.use_sudo { "-lc" } else { "-c" };
        let script = RemoteScript::from_lines([format!("bash {flags} {}", shell_quote(command))]);
        let source = format!("{}@{worker}", self.job);
        let mut last_line = String::new();
        let outcome = self
            .executor
            .run_script(worker, &script, Some(self.timeout.as_secs().max(1)), &mut |stream, line| {
                if !line.trim().is_empty() {
                    last_line = line.trim().to_string();
                }
                (self.output)(&source, stream, line);
            })
            .map_err(|e| {
                let text = e.to_string();
                text.strip_prefix(&format!("worker {worker}: ")).map(str::to_string).unwrap_or(text)
            })?;
        if outcome.success() {
            Ok(())
        } else if outcome.timed_out() {
            Err(timed_out(self.timeout))
        } else if last_line.is_empty() {
            Err(format!("exit {}", outcome.exit_code))
        } else {
            Err(format!("exit {} ({last_line})", outcome.exit_code))
        }
    }
}

fn unassigned(port: &str) -> String {
    format!("port {port} has no number in the catalog (run maand build)")
}
