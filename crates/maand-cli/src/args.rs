//! Command-line definitions (clap). Names, sub-commands and flags follow spec/features.md §3.

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "maand",
    version,
    about = "Agentless orchestrator for stateful clusters over SSH",
    propagate_version = true
)]
pub struct Cli {
    /// The bucket to work on (default: the nearest directory at or above the current one that
    /// holds a bucket, else the current directory).
    #[arg(short = 'C', long = "bucket", global = true, env = "MAAND_BUCKET", value_name = "DIR")]
    pub bucket: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
// Variants are the command names operators type (`run_command`, `job_command`).
#[allow(clippy::enum_variant_names)]
pub enum Command {
    /// Create a bucket in the current directory, or upgrade an existing one.
    Init,
    /// Turn the workspace into the catalog: placement, ports, certificates, KV, deployment waves.
    Build {
        /// Also purge vars/job/<job> and secrets/job/<job> of jobs left without allocations.
        #[arg(long = "purge-job-kv")]
        purge_job_kv: bool,
    },
    /// Roll out the catalog to the workers: stage, sync, start/restart in health-gated batches.
    Deploy {
        /// Run a full build first.
        #[arg(short = 'b', long)]
        build: bool,
        /// Only these jobs (comma-separated), still in deployment_seq order.
        #[arg(long, default_value = "")]
        jobs: String,
        /// Print the plan without changing anything.
        #[arg(short = 'n', long = "dry-run")]
        dry_run: bool,
        /// Roll out jobs even when fully promoted.
        #[arg(long)]
        force: bool,
        /// Sync files and promote without start/restart/reload.
        #[arg(long = "sync-only")]
        sync_only: bool,
        /// When a batch fails, take the allocations this run rolled of that job back to their
        /// previous release, in reverse order, each batch gated (manifest: "rollback_on_failure").
        #[arg(long = "rollback-on-failure")]
        rollback_on_failure: bool,
        /// With --dry-run: print the plan as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        plan: PlanFlags,
    },
    /// Deploy a job's previous kept release again (files exactly as they were rendered, at its
    /// version) through the same ordered, gated rollout as a deploy.
    Rollback {
        /// The job.
        job: String,
        /// Go back to this release (each allocation: its latest release at or before it);
        /// default: each allocation's release before the one it runs.
        #[arg(long, allow_negative_numbers = true)]
        to: Option<i64>,
        /// Print the plan without changing anything.
        #[arg(short = 'n', long = "dry-run")]
        dry_run: bool,
        /// With --dry-run: unified diffs of the files going back (secret values masked).
        #[arg(long, requires = "dry_run")]
        diff: bool,
        /// List the job's kept releases (number, date, version, workers) instead.
        #[arg(long, conflicts_with_all = ["to", "dry_run"])]
        list: bool,
        /// With --dry-run or --list: print JSON.
        #[arg(long)]
        json: bool,
    },
    /// What `deploy -b` would do now (the workspace built into a scratch copy of the catalog;
    /// nothing changes): the same as `deploy --dry-run`.
    Plan {
        /// Only these jobs (comma-separated), still in deployment_seq order.
        #[arg(long, default_value = "")]
        jobs: String,
        /// Plan jobs even when fully promoted.
        #[arg(long)]
        force: bool,
        /// Plan a sync without start/restart/reload.
        #[arg(long = "sync-only")]
        sync_only: bool,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        plan: PlanFlags,
    },
    /// Check workers' SSH ports, then each job's health probes on its active allocations.
    #[command(name = "health_check")]
    HealthCheck {
        /// Only these jobs (comma-separated).
        #[arg(long, default_value = "")]
        jobs: String,
        /// Retry each job until it passes (manifest wait.attempts x wait.interval_seconds; default 30 x 1 s).
        #[arg(long)]
        wait: bool,
        /// Stream probe and command output.
        #[arg(long)]
        verbose: bool,
        /// Print a JSON summary on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Run a shell command (default: workspace/command.sh) on workers, in batches of -c.
    #[command(name = "run_command")]
    RunCommand {
        /// The shell command.
        command: Option<String>,
        /// Only these worker IPs (comma-separated).
        #[arg(short = 'w', long, default_value = "")]
        workers: String,
        /// Only workers with any of these labels (comma-separated).
        #[arg(short = 'l', long, default_value = "")]
        labels: String,
        /// Batch size: workers of a batch in parallel, batches one after another (-c 3 on 10: 3,3,3,1).
        #[arg(short = 'c', long, default_value_t = 1, allow_negative_numbers = true)]
        concurrency: i64,
        /// After every batch: wait 10 s, then the worker gate and every job's health check.
        #[arg(long = "health_check")]
        health_check: bool,
    },
    /// Probe workers' memory and CPU over SSH and write them into workspace/workers.json.
    #[command(name = "worker_facts")]
    WorkerFacts {
        /// Only these hosts (comma-separated).
        #[arg(short = 'w', long, default_value = "")]
        workers: String,
        /// Only workers with any of these labels (comma-separated).
        #[arg(short = 'l', long, default_value = "")]
        labels: String,
        /// Probes at once.
        #[arg(short = 'c', long, default_value_t = 1, allow_negative_numbers = true)]
        concurrency: i64,
        /// Print the changes without writing workers.json.
        #[arg(long = "dry-run")]
        dry_run: bool,
        /// Run maand build after updating workers.json.
        #[arg(long)]
        build: bool,
    },
    /// Delete what removed allocations left on workers, their catalog rows and KV, and old KV history.
    Gc {
        /// Keep deleted KV history newer than N days.
        #[arg(long = "retain-days", default_value_t = 0, allow_negative_numbers = true)]
        retain_days: i64,
    },
    /// Read the structured logs under logs/.
    Logs {
        #[command(subcommand)]
        command: LogsCommand,
    },
    /// One screen of the cluster: per allocation the promoted version, pending change, live
    /// health, drift and last deploy. Exit 1 when anything is unhealthy or drifted.
    Status {
        /// Only these jobs (comma-separated).
        #[arg(long, default_value = "")]
        jobs: String,
        /// Print JSON (one object) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Runs that changed something (deploy, job targets, gc, rollback), newest first.
    History {
        /// Only runs that acted on these jobs (comma-separated).
        #[arg(long, default_value = "")]
        jobs: String,
        /// Print JSON (an array of runs) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Bucket summary.
    Info {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Inspect the catalog.
    Cat {
        #[command(subcommand)]
        command: CatCommand,
        /// Print JSON (an array of objects) instead of a table.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Run a job command registered for the `cli` event: `<command> [job]` (legacy `<job> <command>`).
    #[command(name = "job_command", alias = "jobcommand")]
    JobCommand {
        /// The command (`command_…`), or the job in the legacy order.
        first: String,
        /// The job (every job registering the command when omitted), or the command in the legacy order.
        second: Option<String>,
        /// Allocations run at once.
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        /// Also report each job's start and end.
        #[arg(long)]
        verbose: bool,
    },
    /// Job lifecycle (start, stop, restart, status, run a Makefile target) and scaffolding (create).
    Job {
        #[command(subcommand)]
        command: JobCommand,
    },
    /// Local sandbox workers (sshd per loopback address) for demos and tests. Needs root.
    Sandbox {
        #[command(subcommand)]
        command: SandboxCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum LogsCommand {
    /// Print log lines, filtered.
    Show {
        /// raw (lines as stored) or human (grouped command blocks).
        #[arg(long, default_value = "raw")]
        format: String,
        /// Only this worker's log (`-` for bucket-level lines).
        #[arg(long)]
        worker: Option<String>,
        /// Only this run id.
        #[arg(long)]
        run: Option<String>,
        /// Read the per-run files (needs --run).
        #[arg(long = "run-dir")]
        run_dir: bool,
        #[arg(long)]
        job: Option<String>,
        #[arg(long)]
        phase: Option<String>,
        #[arg(long)]
        event: Option<String>,
        /// Last N lines (raw) or command blocks (human); 0 = all.
        #[arg(long, default_value_t = 0)]
        tail: usize,
    },
}

#[derive(Subcommand, Debug)]
pub enum CatCommand {
    /// Workers in position order.
    Workers,
    /// Jobs in deployment order.
    Jobs,
    /// Allocations (job x worker).
    Allocations {
        #[arg(long, default_value = "")]
        jobs: String,
        #[arg(long, default_value = "")]
        workers: String,
    },
    /// Rollout state per allocation.
    Deployments {
        #[arg(long, default_value = "")]
        jobs: String,
        #[arg(long, default_value = "")]
        workers: String,
        /// Only active allocations.
        #[arg(long)]
        active: bool,
    },
    /// Registered job commands.
    #[command(name = "job_commands")]
    JobCommands,
    /// Assigned ports.
    #[command(name = "job_ports")]
    JobPorts {
        #[arg(long, default_value = "")]
        jobs: String,
    },
    /// The bucket CA and leaf certificates with expiry.
    Certs {
        #[arg(long, default_value = "")]
        jobs: String,
        #[arg(long, default_value = "")]
        workers: String,
    },
    /// Prometheus files per job; `get <job> <path>` prints one, `scrape` the expanded scrape configs.
    Prometheus {
        #[command(subcommand)]
        command: Option<PrometheusCommand>,
        /// Only these jobs (comma-separated).
        #[arg(long, default_value = "", global = true)]
        jobs: String,
    },
    /// The KV store (latest version of each key).
    Kv {
        #[command(subcommand)]
        command: Option<KvCommand>,
        /// Only namespaces readable by these jobs.
        #[arg(long, default_value = "", global = true)]
        jobs: String,
        /// Only live keys.
        #[arg(long, global = true)]
        active: bool,
        /// Only deleted keys.
        #[arg(long, global = true, conflicts_with = "active")]
        deleted: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum PrometheusCommand {
    /// Print one file under a job's `_prometheus/` (`scrape` = its scrape file).
    Get { job: String, path: String },
    /// The scrape configs exactly as the server job's `{{ scrapeConfigs }}` expands them.
    Scrape,
}

#[derive(Subcommand, Debug)]
pub enum KvCommand {
    /// List keys (same as `maand cat kv`).
    List,
    /// Show one key.
    Get {
        namespace: String,
        key: String,
        /// Decrypt secrets/job/* values.
        #[arg(long)]
        reveal: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum JobCommand {
    /// Scaffold workspace/jobs/<job> with a manifest and a Makefile.
    Create {
        job: String,
        /// Comma-separated selectors (worker labels).
        #[arg(short = 's', long = "selectors", default_value = "")]
        selectors: String,
    },
    /// Run the Makefile `start` target on the jobs' active allocations.
    Start(JobTargetArgs),
    /// Run the Makefile `stop` target on the jobs' active allocations.
    Stop(JobTargetArgs),
    /// Run the Makefile `restart` target on the jobs' active allocations.
    Restart(JobTargetArgs),
    /// Run the Makefile `status` target on the jobs' active allocations.
    Status(JobTargetArgs),
    /// Run any Makefile target (`--target migrate`) on the jobs' active allocations.
    Run {
        #[command(flatten)]
        args: JobTargetArgs,
        /// start, stop, restart, status or a custom target matching [a-zA-Z0-9][a-zA-Z0-9_.-]*.
        #[arg(long)]
        target: String,
    },
}

/// Jobs and allocations of `maand job start|stop|restart|status|run`: workers must be in sync with
/// the last deploy; jobs run in deployment_seq order, each in batches of max_concurrent_upgrades.
#[derive(clap::Args, Debug)]
pub struct JobTargetArgs {
    /// Comma-separated jobs.
    pub jobs: String,
    /// Only these worker IPs (comma-separated); default every active allocation.
    #[arg(long, default_value = "")]
    pub allocations: String,
    /// Wait for the job's health check after every batch.
    #[arg(long = "health_check")]
    pub health_check: bool,
}

#[derive(Subcommand, Debug)]
pub enum SandboxCommand {
    /// Start N sandbox workers and add them to workspace/workers.json.
    Up {
        #[arg(long, default_value_t = 3)]
        workers: usize,
        /// Comma-separated labels for the sandbox workers.
        #[arg(long, default_value = "")]
        labels: String,
    },
    /// Stop every sandbox worker and every process started inside them.
    Down,
    /// List sandbox workers.
    Status,
}

/// Split a comma-separated flag value, trimming items and dropping empties.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(String::from).collect()
}

/// How a plan (`plan`, `deploy --dry-run`) is made and reported.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct PlanFlags {
    /// Show unified diffs of the changed files against the last promoted release (secret values
    /// masked).
    #[arg(long)]
    pub diff: bool,
    /// Exit 2 when changes are pending, 0 when there is nothing to do (1: an error).
    #[arg(long = "exit-code")]
    pub exit_code: bool,
    /// Run no hook (post_build, pre_deploy); the rollout order is the default one.
    #[arg(long = "no-hooks")]
    pub no_hooks: bool,
}
