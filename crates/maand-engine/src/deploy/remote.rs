//! Running worker-side steps of a deploy on many workers at once: each step is a script through
//! the executor, its output streamed to the reporter and the run log, its failure named by worker.

use crate::output::Reporter;
use crate::runlog::{LogCtx, RunLog};
use maand_core::{Error, ErrorKind, Result};
use maand_remote::{Executor, RemoteScript, WorkerAddr};
use std::time::Instant;

/// The context shared by every remote step of one run.
pub struct Remote<'a> {
    pub executor: &'a dyn Executor,
    pub out: &'a dyn Reporter,
    pub log: &'a RunLog,
    pub bucket_id: &'a str,
}

/// One step on one worker.
pub struct Step<'a> {
    pub job: Option<&'a str>,
    pub phase: &'a str,
    pub action: &'a str,
    pub worker: WorkerAddr,
    pub script: RemoteScript,
    pub timeout_secs: Option<u64>,
}

impl Remote<'_> {
    /// Run one step, streaming output; error when it fails or exits non-zero.
    pub fn run(&self, step: &Step<'_>) -> Result<()> {
        let source = match step.job {
            Some(job) => format!("{job}@{}", step.worker.host),
            None => step.worker.host.clone(),
        };
        let ctx = LogCtx {
            worker: Some(step.worker.host.clone()),
            job: step.job.map(str::to_string),
            phase: step.phase.to_string(),
            action: step.action.to_string(),
        };
        let summary = step.script.lines.join("; ");
        self.log.command_begin(&ctx, &summary);
        let started = Instant::now();
        let result = self.executor.run_script(&step.worker, &step.script, step.timeout_secs, &mut |stream, line| {
            self.out.line(&source, stream, line);
            self.log.output_line(&ctx, stream, line);
        });
        match result {
            Ok(outcome) => {
                self.log.command_end(&ctx, outcome.exit_code, started.elapsed());
                if outcome.success() {
                    Ok(())
                } else if outcome.timed_out() {
                    Err(Error::new(
                        ErrorKind::RunCommand,
                        format!(
                            "worker {}: {} {} timed out after {} s",
                            step.worker.host,
                            step.action,
                            step.job.unwrap_or(""),
                            step.timeout_secs.map(|t| t.to_string()).unwrap_or_else(|| "the remote time limit".into())
                        ),
                    ))
                } else {
                    Err(Error::new(
                        ErrorKind::RunCommand,
                        format!(
                            "worker {}: {} exited with status {}",
                            step.worker.host, step.action, outcome.exit_code
                        ),
                    ))
                }
            }
            Err(e) => {
                self.log.command_end(&ctx, 255, started.elapsed());
                Err(e)
            }
        }
    }

    /// Run steps in parallel (one thread each); results in input order.
    pub fn run_all(&self, steps: &[Step<'_>]) -> Vec<Result<()>> {
        if steps.len() == 1 {
            return vec![self.run(&steps[0])];
        }
        std::thread::scope(|s| {
            let handles: Vec<_> = steps.iter().map(|step| s.spawn(move || self.run(step))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(Error::new(ErrorKind::Unexpected, "worker thread panicked"))))
                .collect()
        })
    }

    /// The runner.py invocation for a Makefile target of one job (spec §5.13).
    pub fn runner_script(&self, target: &str, job: &str, env: &[(&str, &str)]) -> RemoteScript {
        let mut script = RemoteScript::from_lines([format!(
            "python3 /opt/worker/{b}/bin/runner.py {b} {target} --jobs {job}",
            job = maand_remote::script::shell_quote(job),
            b = self.bucket_id,
        )]);
        for (k, v) in env {
            script = script.with_env(*k, *v);
        }
        script
    }
}
