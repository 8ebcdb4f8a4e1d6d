//! [`JobCommands`]: the job commands of one maand run. Holds the catalog read, the shared KV
//! session and the runtime API (started when the bucket has any command), and runs the commands
//! of one job and event on the CLI host — one process per allocation, commands in name order, up
//! to `concurrency` allocations at once — streaming output as `job@worker | line` and logging it.

use super::api::{ApiState, Invocation, Invocations, RuntimeApi, Semaphores};
use super::catalog::{CommandAllocation, CommandCatalog};
use super::environment::{bucket_env, invocation_env, Env, InvocationEnv};
use super::interpreter::interpreter_for;
use super::stage::{stage_command, StageRequest};
use super::{lock_kv, SharedKv};
use crate::bucket::Bucket;
use crate::health::bounded_map;
use crate::output::Reporter;
use crate::runlog::{LogCtx, RunLog};
use maand_core::manifest::Event;
use maand_core::{Error, ErrorKind, Result};
use maand_remote::process::LocalProcess;
use maand_store::secrets::SecretKey;
use rusqlite::Connection;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Bound on one job-command process (catalog commands wait for clusters for up to 15 minutes).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(3600);

/// One event's commands of one job, on some of its allocations.
pub struct EventRun<'r> {
    pub job: &'r str,
    pub event: Event,
    /// Worker IPs of the allocations to run on (duplicates run once).
    pub workers: &'r [String],
    /// Allocations running at once (at least 1).
    pub concurrency: usize,
    /// Extra environment (`TARGET`, `BATCH_*`, `NEW_ALLOCATIONS`, …).
    pub env: &'r [(String, String)],
}

pub struct JobCommands<'a> {
    catalog: CommandCatalog,
    kv: SharedKv,
    /// The bucket's key: the runtime API's secrets and the staged certificate keys.
    key: Option<SecretKey>,
    api: Option<RuntimeApi>,
    staging_root: PathBuf,
    workspace_jobs: PathBuf,
    base_env: Env,
    path_var: Option<String>,
    out: &'a dyn Reporter,
    log: &'a RunLog,
    staged: Mutex<BTreeSet<PathBuf>>,
}

impl<'a> JobCommands<'a> {
    /// Read the catalog through `conn` and, when the bucket has job commands, start the runtime
    /// API over `kv` (a bind failure is an error).
    pub fn start(
        bucket: &Bucket,
        conn: &Connection,
        kv: SharedKv,
        out: &'a dyn Reporter,
        log: &'a RunLog,
    ) -> Result<JobCommands<'a>> {
        let catalog = CommandCatalog::load(conn)?;
        let root = absolute(&bucket.paths.root);
        let key = SecretKey::load(&bucket.paths).ok();
        let api = if catalog.commands.is_empty() {
            None
        } else {
            Some(RuntimeApi::start(ApiState {
                kv: kv.clone(),
                key: key.clone(),
                commands: catalog.commands.clone(),
                invocations: Invocations::default(),
                semaphores: Semaphores::default(),
            })?)
        };
        let base_env = bucket_env(bucket, &root, &catalog.bucket_id, &catalog.worker_ports);
        let paths = maand_store::BucketPaths::new(&root);
        Ok(JobCommands {
            catalog,
            kv,
            key,
            api,
            staging_root: paths.tmp(),
            workspace_jobs: paths.jobs_dir(),
            base_env,
            path_var: std::env::var("PATH").ok(),
            out,
            log,
            staged: Mutex::new(BTreeSet::new()),
        })
    }

    /// The KV session the runtime API reads and writes.
    pub fn kv(&self) -> &SharedKv {
        &self.kv
    }

    pub fn catalog(&self) -> &CommandCatalog {
        &self.catalog
    }

    /// `job`'s commands registered for `event`, sorted by name.
    pub fn commands(&self, job: &str, event: Event) -> Vec<String> {
        self.catalog.commands_for(job, event)
    }

    pub fn has(&self, job: &str, event: Event) -> bool {
        !self.commands(job, event).is_empty()
    }

    /// Active allocations' worker IPs of `job`, in catalog order.
    pub fn active_workers(&self, job: &str) -> Vec<String> {
        self.catalog.active_workers(job)
    }

    /// Run every command `run.job` registers for `run.event`, in name order, stopping at the first
    /// that fails on any allocation: `job <j> command <c> failed: <ip>: <reason>; …`.
    pub fn run_event(&self, run: &EventRun<'_>) -> Result<()> {
        for command in self.commands(run.job, run.event) {
            self.run_command(run, &command)?;
        }
        Ok(())
    }

    /// Run one registered command of the event on the allocations.
    pub fn run_command(&self, run: &EventRun<'_>, command: &str) -> Result<()> {
        let job = run.job;
        let failed = |detail: String| {
            Error::new(ErrorKind::JobCommandFailed, format!("job {job} command {command} failed: {detail}"))
        };
        let script = self.catalog.script(job, command).ok_or_else(|| {
            Error::new(
                ErrorKind::JobCommandFileNotFound,
                format!("job {job}: expected _modules/{command}.py, .ts or .js in the catalog (run maand build)"),
            )
        })?;
        let script_name = script.path.trim_start_matches("_modules/").to_string();
        let modules_dir = self.workspace_jobs.join(job).join("_modules");
        let interpreter = interpreter_for(&script_name, &modules_dir, self.path_var.as_deref())?;
        let mut workers: Vec<&String> = Vec::new();
        for ip in run.workers {
            if !workers.contains(&ip) {
                workers.push(ip);
            }
        }
        let results = bounded_map(&workers, run.concurrency.max(1), |ip| {
            self.invoke(run, command, ip, script, &interpreter).map_err(|reason| format!("{ip}: {reason}"))
        });
        let errors: Vec<String> = results.into_iter().filter_map(|r| r.err()).collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(failed(errors.join("; ")))
        }
    }

    /// One process for one allocation. Errors are the reason only (the caller names the worker).
    fn invoke(
        &self,
        run: &EventRun<'_>,
        command: &str,
        worker_ip: &str,
        script: &maand_store::catalog::JobFile,
        interpreter: &super::interpreter::Interpreter,
    ) -> std::result::Result<(), String> {
        let job = run.job;
        let api = self.api.as_ref().ok_or("the runtime API is not running")?;
        let allocation = self
            .catalog
            .allocation(job, worker_ip)
            .ok_or_else(|| format!("job {job} has no allocation on this worker"))?;
        let files = self.catalog.files.get(job).map(Vec::as_slice).unwrap_or_default();
        let (modules, index) = {
            let kv = lock_kv(&self.kv);
            let req = StageRequest {
                staging_root: &self.staging_root,
                job,
                worker_ip,
                files,
                script,
                script_only: run.event == Event::HealthCheck,
                key: self.key.as_ref(),
            };
            (stage_command(&req, &kv).map_err(|e| e.to_string())?, self.allocation_index(&kv, allocation))
        };
        self.staged.lock().unwrap_or_else(PoisonError::into_inner).insert(modules.clone());
        let token = api.state().invocations.register(Invocation {
            alloc_id: allocation.alloc_id.clone(),
            job: job.to_string(),
            worker_ip: worker_ip.to_string(),
            event: run.event,
            command: command.to_string(),
            upstream: self.catalog.upstream(job),
        });
        self.log.add_secret(&token);
        let mut env = self.base_env.clone();
        env.extend(invocation_env(&InvocationEnv {
            allocation,
            allocation_index: &index,
            event: run.event,
            command,
            api_port: api.port(),
            token: &token,
        }));
        env.extend(run.env.iter().cloned());
        let cmd = LocalProcess {
            cwd: Some(modules),
            env,
            deadline: Some(COMMAND_TIMEOUT),
            own_process_group: true,
            ..LocalProcess::new(interpreter.program.clone(), &interpreter.args)
        };
        let ctx = LogCtx {
            worker: Some(worker_ip.to_string()),
            job: Some(job.to_string()),
            phase: "job_command".into(),
            action: command.to_string(),
        };
        let source = format!("{job}@{worker_ip}");
        self.log.command_begin(&ctx, &cmd.display());
        let started = Instant::now();
        let finished = cmd.run(&mut |stream, line| {
            self.out.line(&source, stream, line);
            self.log.output_line(&ctx, stream, line);
        });
        api.state().invocations.end(&token);
        api.state().semaphores.release_owner(&token);
        let finished = finished.map_err(|e| format!("cannot run {}: {e}", cmd.display()))?;
        self.log.command_end(&ctx, finished.exit_code, started.elapsed());
        if finished.killed_at_deadline {
            Err(format!("{} timed out after {} s", script.path, COMMAND_TIMEOUT.as_secs()))
        } else if finished.exit_code != 0 {
            Err(format!("command execution failed (exit {})", finished.exit_code))
        } else {
            Ok(())
        }
    }

    /// `<job>_allocation_index` from the allocation's KV, else its position among the job's
    /// non-removed allocations.
    fn allocation_index(&self, kv: &maand_store::kv::KvStore, a: &CommandAllocation) -> String {
        let ns = crate::build::allocation_ns(&a.job, &a.worker_ip);
        kv.get(&ns, &format!("{}_allocation_index", a.job))
            .map(str::to_string)
            .or_else(|| self.catalog.position_index(&a.job, &a.worker_ip).map(|i| i.to_string()))
            .unwrap_or_else(|| "0".into())
    }
}

impl Drop for JobCommands<'_> {
    /// Staged `_modules` hold private keys: remove what this run staged.
    fn drop(&mut self) {
        let staged = std::mem::take(&mut *self.staged.lock().unwrap_or_else(PoisonError::into_inner));
        for dir in staged {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}
