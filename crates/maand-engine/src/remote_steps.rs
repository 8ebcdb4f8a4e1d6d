//! Running worker-side steps on many workers at once (deploy, job control, run_command, gc,
//! worker_facts): each step is a script through the executor, its output streamed to the reporter
//! and the run log, its failure named by worker.

use crate::output::Reporter;
use crate::runlog::{LogCtx, RunLog};
use maand_core::{Error, ErrorKind, Result};
use maand_remote::{Executor, RemoteScript, Stream, WorkerAddr};
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

/// One Makefile target of one job, run through runner.py on a batch of workers at once.
pub struct TargetBatch<'a> {
    pub job: &'a str,
    pub phase: &'a str,
    pub target: &'a str,
    pub timeout_secs: Option<u64>,
    /// Swap the deploy's shipped files into place right before the target (runner.py `--swap`).
    pub swap: bool,
}

/// What a step printed and how it exited (connection failures are errors, not outputs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepOutput {
    pub exit_code: i32,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

impl Remote<'_> {
    /// Run one step, streaming output; error when it fails or exits non-zero.
    pub fn run(&self, step: &Step<'_>) -> Result<()> {
        let output = self.run_captured(step)?;
        if output.exit_code == 0 {
            Ok(())
        } else if output.exit_code == maand_remote::executor::REMOTE_TIMEOUT_EXIT_CODE {
            let limit = match step.timeout_secs {
                Some(secs) => format!("{secs} s"),
                None => "the remote time limit (remote_timeout_seconds in maand.conf)".to_string(),
            };
            Err(Error::new(
                ErrorKind::RunCommand,
                format!(
                    "worker {}: {} {} timed out after {limit}",
                    step.worker.host,
                    step.action,
                    step.job.unwrap_or("")
                ),
            ))
        } else {
            Err(Error::new(
                ErrorKind::RunCommand,
                format!("worker {}: {} exited with status {}", step.worker.host, step.action, output.exit_code),
            ))
        }
    }

    /// Run one step, streaming and logging output like `run`, and also return what it printed
    /// and its exit status (a non-zero exit is not an error here).
    pub fn run_captured(&self, step: &Step<'_>) -> Result<StepOutput> {
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
        let mut output = StepOutput::default();
        let result = self.executor.run_script(&step.worker, &step.script, step.timeout_secs, &mut |stream, line| {
            self.out.line(&source, stream, line);
            self.log.output_line(&ctx, stream, line);
            match stream {
                Stream::Stdout => output.stdout.push(line.to_string()),
                Stream::Stderr => output.stderr.push(line.to_string()),
            }
        });
        match result {
            Ok(outcome) => {
                self.log.command_end(&ctx, outcome.exit_code, started.elapsed());
                output.exit_code = outcome.exit_code;
                Ok(output)
            }
            Err(e) => {
                self.log.command_end(&ctx, 255, started.elapsed());
                Err(e)
            }
        }
    }

    /// Run steps in parallel (one thread each); results in input order.
    pub fn run_all(&self, steps: &[Step<'_>]) -> Vec<Result<()>> {
        in_parallel(steps, steps.len(), |step| self.run(step))
    }

    /// `run` on every step, at most `limit` at once; results in input order.
    pub fn run_all_limited(&self, steps: &[Step<'_>], limit: usize) -> Vec<Result<()>> {
        in_parallel(steps, limit, |step| self.run(step))
    }

    /// `run_captured` on every step, at most `limit` at once; results in input order.
    pub fn run_all_captured(&self, steps: &[Step<'_>], limit: usize) -> Vec<Result<StepOutput>> {
        in_parallel(steps, limit, |step| self.run_captured(step))
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

    /// `batch.target` on every worker (address, extra lifecycle variables) at once; the failures,
    /// each naming its worker, joined by "; ".
    pub fn run_target_batch(
        &self,
        batch: &TargetBatch<'_>,
        workers: Vec<(WorkerAddr, Vec<(&str, &str)>)>,
    ) -> std::result::Result<(), String> {
        let steps: Vec<Step<'_>> = workers
            .into_iter()
            .map(|(worker, env)| {
                let mut script = self.runner_script(batch.target, batch.job, &env);
                if batch.swap {
                    // Swap the files the deploy shipped into place first (DESIGN §3.16).
                    for line in &mut script.lines {
                        line.push_str(" --swap");
                    }
                }
                Step {
                    job: Some(batch.job),
                    phase: batch.phase,
                    action: batch.target,
                    worker,
                    script,
                    timeout_secs: batch.timeout_secs,
                }
            })
            .collect();
        let errors: Vec<String> =
            self.run_all(&steps).into_iter().filter_map(|r| r.err()).map(|e| e.to_string()).collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

/// `f` on every step with at most `limit` threads at once (chunks run one after another);
/// results in input order.
fn in_parallel<T: Send>(steps: &[Step<'_>], limit: usize, f: impl Fn(&Step<'_>) -> Result<T> + Sync) -> Vec<Result<T>> {
    if steps.len() == 1 {
        return vec![f(&steps[0])];
    }
    let mut results = Vec::with_capacity(steps.len());
    for chunk in steps.chunks(limit.max(1)) {
        std::thread::scope(|s| {
            let handles: Vec<_> = chunk.iter().map(|step| s.spawn(|| f(step))).collect();
            results.extend(handles.into_iter().map(|h| {
                h.join().unwrap_or_else(|_| Err(Error::new(ErrorKind::Unexpected, "worker thread panicked")))
            }));
        });
    }
    results
}
