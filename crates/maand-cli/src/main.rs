//! The `maand` binary: argument parsing, output (tables, --json), exit codes. All logic lives in
//! maand-engine; this file maps each command to an engine call and prints the result.

mod args;
mod bucket_dir;
mod output;
mod progress;

use args::{CatCommand, Cli, Command, JobCommand, KvCommand, LogsCommand, PrometheusCommand, SandboxCommand};
use clap::Parser;
use maand_engine::bucket::Bucket;
use maand_engine::deploy::{DeployOptions, RollbackRequest};
use maand_engine::health::HealthCheckOptions;
use maand_engine::inspect::{self, Filter, KvListOptions};
use maand_engine::output::StderrReporter;
use maand_engine::runlog::ShowOptions;
use maand_remote::interrupt::{self, Interrupt};
use output::{print_json, print_table, Printer};
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Usage errors exit 1 like every other failure (the Go maand's status); help and
            // --version print and exit 0.
            let _ = e.print();
            return if e.use_stderr() { ExitCode::FAILURE } else { ExitCode::SUCCESS };
        }
    };
    let root = &bucket_dir::bucket_dir(cli.bucket.as_deref());
    if matches!(cli.command, Command::Cat { .. } | Command::Info { .. } | Command::History { .. }) {
        maand_remote::quiet_pipe::end_quietly_when_the_reader_leaves();
    }
    let failure_prefix = match cli.command {
        Command::Build { .. } => "maand build failed: ",
        _ => "",
    };
    let result = match run(cli, root).map_err(anyhow::Error::downcast::<ChangesPending>) {
        Err(Ok(ChangesPending)) => return ExitCode::from(ChangesPending::EXIT_CODE),
        Err(Err(e)) => Err(e),
        Ok(()) => Ok(()),
    };
    match result.map_err(anyhow::Error::downcast::<Interrupted>) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Ok(Interrupted { error, what })) => {
            if let Some(e) = error {
                eprintln!("{failure_prefix}{e}");
            }
            eprintln!("{}", what.as_deref().unwrap_or(GENERIC_INTERRUPTED));
            ExitCode::from(interrupt::EXIT_CODE)
        }
        Err(Err(e)) => {
            eprintln!("{failure_prefix}{e}");
            ExitCode::FAILURE
        }
    }
}

/// `--exit-code` of a plan with changes pending: exit 2 (as `git diff --exit-code`), nothing more
/// to print.
#[derive(Debug)]
struct ChangesPending;

impl ChangesPending {
    const EXIT_CODE: u8 = 2;
}

impl std::fmt::Display for ChangesPending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("changes pending")
    }
}

impl std::error::Error for ChangesPending {}

/// What an interrupted command says when the engine gave no account of its own.
const GENERIC_INTERRUPTED: &str = "interrupted: what finished is kept; run the same command again to do the rest";

/// A command stopped by SIGINT/SIGTERM (exit 130): the error it ended with, if any, and the
/// engine's account of what was done and what remains, if it gave one.
#[derive(Debug)]
struct Interrupted {
    error: Option<anyhow::Error>,
    what: Option<String>,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.what.as_deref().unwrap_or(GENERIC_INTERRUPTED))
    }
}

impl std::error::Error for Interrupted {}

/// The command's result, or [`Interrupted`] (holding it) when a signal asked it to stop.
fn unless_interrupted(interrupt: &Interrupt, result: anyhow::Result<()>) -> anyhow::Result<()> {
    match result {
        Err(e) if e.is::<Interrupted>() => Err(e),
        result if interrupt.requested() => Err(Interrupted { error: result.err(), what: None }.into()),
        result => result,
    }
}

fn run(cli: Cli, root: &Path) -> anyhow::Result<()> {
    let printer = Printer::from_env();
    match cli.command {
        Command::Init => {
            let outcome = maand_engine::init::init(root)?;
            printer.message(&outcome.to_string());
        }
        Command::Build { purge_job_kv } => {
            let report = maand_engine::build::build(
                root,
                &maand_engine::build::BuildOptions { purge_job_kv, ..Default::default() },
            )?;
            let counts = [
                (report.workers, "worker"),
                (report.jobs, "job"),
                (report.allocations, "allocation"),
                (report.kv_rows_written, "KV change"),
            ];
            let mut parts: Vec<String> = counts.iter().map(|(n, what)| plural(*n, what)).collect();
            parts.push(format!("{} issued", plural(report.certs_issued, "certificate")));
            printer.message(&format!("build: {}", parts.join(", ")));
        }
        Command::Deploy { build, jobs, dry_run, force, sync_only, rollback_on_failure, json, plan } => {
            let interrupt = interrupt::install();
            let opts = DeployOptions {
                jobs: args::split_list(&jobs),
                build,
                dry_run,
                force,
                sync_only,
                diff: plan.diff,
                no_hooks: plan.no_hooks,
                rollback_on_failure,
                interrupt: interrupt.clone(),
                ..Default::default()
            };
            // The engine says whether the interrupt cut the deploy short (not after its last batch).
            deploy(root, &opts, json, plan.exit_code, &printer)?;
        }
        Command::Plan { jobs, force, sync_only, json, plan } => {
            let opts = DeployOptions {
                jobs: args::split_list(&jobs),
                dry_run: true,
                force,
                sync_only,
                diff: plan.diff,
                no_hooks: plan.no_hooks,
                interrupt: interrupt::install(),
                ..Default::default()
            };
            deploy(root, &opts, json, plan.exit_code, &printer)?;
        }
        Command::Rollback { job, list: true, json, .. } => {
            let table = inspect::releases(&Bucket::open(root)?, &job)?;
            if json {
                print_json(&table.to_json());
            } else if !printer.quiet {
                print_table(&table);
            }
        }
        Command::Rollback { job, to, dry_run, diff, json, list: false } => {
            let opts = DeployOptions {
                rollback: Some(RollbackRequest { job, to }),
                dry_run,
                diff,
                interrupt: interrupt::install(),
                ..Default::default()
            };
            deploy(root, &opts, json, false, &printer)?;
        }
        Command::HealthCheck { jobs, wait, verbose, json } => {
            let opts = HealthCheckOptions { jobs: args::split_list(&jobs), wait, verbose };
            let report = |line: &str| eprintln!("{line}");
            let summary = maand_engine::health::health_check_summary(root, &opts, &report)?;
            if json {
                print_json(&serde_json::to_value(&summary)?);
            }
            if let Some(failure) = summary.failure() {
                return Err(failure.into());
            }
        }
        Command::RunCommand { command, workers, labels, concurrency, health_check } => {
            // TODO(engine): pass to run_command options
            let interrupt = interrupt::install();
            let opts = maand_engine::run_command::RunCommandOptions {
                command,
                workers: args::split_list(&workers),
                labels: args::split_list(&labels),
                concurrency,
                health_check,
                ..Default::default()
            };
            unless_interrupted(&interrupt, run_command(root, &opts))?;
        }
        Command::WorkerFacts { workers, labels, concurrency, dry_run, build } => {
            let opts = maand_engine::worker_facts::WorkerFactsOptions {
                workers: args::split_list(&workers),
                labels: args::split_list(&labels),
                concurrency,
                dry_run,
                build,
            };
            let report = maand_engine::worker_facts::worker_facts(root, &opts, &StderrReporter)?;
            print_worker_facts(&report, dry_run, &printer);
        }
        Command::Gc { retain_days } => {
            let opts = maand_engine::gc::GcOptions { retain_days };
            let report = maand_engine::gc::gc(root, &opts, &StderrReporter)?;
            print_gc(&report, &printer);
        }
        Command::Logs { command: LogsCommand::Show { format, worker, run, run_dir, job, phase, event, tail } } => {
            let opts = ShowOptions { format: format.parse()?, worker, run, run_dir, job, phase, event, tail };
            print!("{}", maand_engine::runlog::show(root, &opts)?);
        }
        Command::Status { jobs, json } => {
            let opts = maand_engine::status::StatusOptions { jobs: args::split_list(&jobs) };
            let report = |line: &str| eprintln!("{line}");
            let status = maand_engine::status::status(root, &opts, &report)?;
            if json {
                print_json(&serde_json::to_value(&status)?);
            } else if !printer.quiet {
                print_table(&status.to_table());
                for note in &status.notes {
                    println!("{note}");
                }
                println!("{}", status.summary_line());
            }
            if let Some(failure) = status.failure() {
                return Err(failure.into());
            }
        }
        Command::History { jobs, json } => {
            let opts = maand_engine::history::HistoryOptions { jobs: args::split_list(&jobs) };
            let runs = maand_engine::history::history(root, &opts)?;
            if json {
                print_json(&serde_json::to_value(&runs)?);
            } else if runs.is_empty() {
                printer.message("history: no runs recorded");
            } else {
                print_table(&maand_engine::history::history_table(&runs));
            }
        }
        Command::Info { json } => {
            let info = inspect::info(&Bucket::open(root)?)?;
            if json {
                print_json(&serde_json::to_value(&info)?);
            } else {
                print_table(&info.to_table());
            }
        }
        Command::Cat { command: CatCommand::Prometheus { command, jobs }, json } => {
            cat_prometheus(root, command, &jobs, json, &printer)?
        }
        Command::Cat { command, json } => cat(root, command, json, &printer)?,
        Command::JobCommand { first, second, concurrency, verbose } => {
            let (command, job) = maand_engine::jobcmd::resolve_command_args(&first, second.as_deref());
            let opts = maand_engine::jobcmd::JobCommandOptions { command, job, concurrency, verbose };
            let report = maand_engine::jobcmd::job_command(root, &opts, &StderrReporter)?;
            if let Some(failure) = report.failure() {
                return Err(failure.into());
            }
        }
        Command::Job { command } => match command {
            JobCommand::Create { job, selectors } => {
                Bucket::open(root)?;
                let dir = maand_engine::job_create::create_job(root, &job, &args::split_list(&selectors))?;
                printer.message(&format!("created {}", dir.display()));
            }
            JobCommand::Start(a) => job_target(root, a, "start")?,
            JobCommand::Stop(a) => job_target(root, a, "stop")?,
            JobCommand::Restart(a) => job_target(root, a, "restart")?,
            JobCommand::Status(a) => job_target(root, a, "status")?,
            JobCommand::Run { args, target } => job_target(root, args, &target)?,
        },
        Command::Sandbox { command } => match command {
            SandboxCommand::Up { workers, labels } => {
                Bucket::open(root)?;
                let up = maand_engine::sandbox::up(root, workers, &args::split_list(&labels))?;
                for w in up {
                    println!("sandbox worker {}:{} running", w.ip, w.port);
                }
            }
            SandboxCommand::Down => {
                maand_engine::sandbox::down(root)?;
                println!("sandbox workers stopped");
            }
            SandboxCommand::Status => {
                for (w, running) in maand_engine::sandbox::status(root)? {
                    println!("{}:{} {}", w.ip, w.port, if running { "running" } else { "stopped" });
                }
            }
        },
    }
    Ok(())
}

/// `1 job`, `2 jobs`.
fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn cat(root: &Path, command: CatCommand, json: bool, printer: &Printer) -> anyhow::Result<()> {
    let bucket = Bucket::open(root)?;
    let filter =
        |jobs: &str, workers: &str| Filter { jobs: args::split_list(jobs), workers: args::split_list(workers) };
    let table = match command {
        CatCommand::Workers => inspect::workers(&bucket)?,
        CatCommand::Jobs => inspect::jobs(&bucket)?,
        CatCommand::Allocations { jobs, workers } => inspect::allocations(&bucket, &filter(&jobs, &workers))?,
        CatCommand::Deployments { jobs, workers, active } => {
            inspect::deployments(&bucket, &filter(&jobs, &workers), active)?
        }
        CatCommand::JobCommands => inspect::job_commands(&bucket)?,
        CatCommand::JobPorts { jobs } => inspect::job_ports(&bucket, &args::split_list(&jobs))?,
        CatCommand::Certs { jobs, workers } => inspect::certs(&bucket, &filter(&jobs, &workers))?,
        CatCommand::Prometheus { command, jobs } => return cat_prometheus(root, command, &jobs, json, printer),
        CatCommand::Kv { command, jobs, active, deleted } => match command {
            None | Some(KvCommand::List) => {
                let opts = KvListOptions { jobs: args::split_list(&jobs), active, deleted, whole_values: json };
                inspect::kv_list(&bucket, &opts)?
            }
            Some(KvCommand::Get { namespace, key, reveal }) => {
                let got = inspect::kv_get(&bucket, &namespace, &key, reveal)?;
                if json {
                    print_json(&serde_json::to_value(&got)?);
                } else {
                    print!("{}", got.to_lines());
                }
                return Ok(());
            }
        },
    };
    if json {
        print_json(&table.to_json());
    } else if !printer.quiet {
        print_table(&table);
    }
    Ok(())
}

/// `maand cat prometheus [get <job> <path> | scrape] [--jobs]`, from the nearest bucket directory.
fn cat_prometheus(
    root: &Path,
    command: Option<PrometheusCommand>,
    jobs: &str,
    json: bool,
    printer: &Printer,
) -> anyhow::Result<()> {
    let bucket = Bucket::open(&maand_engine::prometheus::find_bucket_root(root))?;
    let jobs = args::split_list(jobs);
    match command {
        None => {
            let table = maand_engine::prometheus::prometheus_jobs(&bucket, &jobs)?;
            if json {
                print_json(&table.to_json());
            } else if !printer.quiet {
                print_table(&table);
            }
        }
        Some(PrometheusCommand::Get { job, path }) => {
            let content = maand_engine::prometheus::prometheus_file(&bucket, &job, &path)?;
            if json {
                print_json(&serde_json::json!({"job": job, "path": path, "content": content}));
            } else {
                print!("{content}");
            }
        }
        Some(PrometheusCommand::Scrape) => {
            let view = maand_engine::prometheus::prometheus_scrape(&bucket, &jobs)?;
            if json {
                print_json(&serde_json::Value::Array(view.configs));
            } else {
                println!("{}", view.fragment.trim_start_matches('\n'));
            }
        }
    }
    Ok(())
}

/// `maand deploy` (and `maand rollback`): the summary on stderr, the plan (text or JSON) on stdout
/// for a dry run.
fn deploy(root: &Path, opts: &DeployOptions, json: bool, exit_code: bool, printer: &Printer) -> anyhow::Result<()> {
    let reporter = progress::reporter();
    let report = maand_engine::deploy::deploy(root, opts, reporter.as_ref())?;
    drop(reporter);
    if !opts.dry_run && !printer.quiet {
        eprintln!("{}", report.summary());
    }
    if opts.dry_run {
        if json {
            print_json(&serde_json::to_value(&report.plan)?);
        } else {
            print!("{}", report.plan.to_text());
        }
        if exit_code && report.plan.required() && report.failure().is_none() {
            return Err(ChangesPending.into());
        }
    }
    if let Some(what) = report.interruption() {
        return Err(Interrupted { error: report.failure().map(anyhow::Error::from), what: Some(what) }.into());
    }
    match report.failure() {
        Some(failure) => Err(failure.into()),
        None => Ok(()),
    }
}

/// `maand run_command`: a shell command on the selected workers.
fn run_command(root: &Path, opts: &maand_engine::run_command::RunCommandOptions) -> anyhow::Result<()> {
    let report = maand_engine::run_command::run_command(root, opts, &maand_engine::output::ResultReporter)?;
    match report.failure() {
        Some(failure) => Err(failure.into()),
        None => Ok(()),
    }
}

/// `maand job start|stop|restart|status|run`: Makefile targets in health-gated batches.
fn job_target(root: &Path, a: args::JobTargetArgs, target: &str) -> anyhow::Result<()> {
    let opts = maand_engine::jobctl::JobControlOptions {
        jobs: args::split_list(&a.jobs),
        target: target.to_string(),
        allocations: args::split_list(&a.allocations),
        health_check: a.health_check,
        interrupt: interrupt::install(),
    };
    // The engine says whether the interrupt cut the run short.
    job_control(root, &opts)
}

fn job_control(root: &Path, opts: &maand_engine::jobctl::JobControlOptions) -> anyhow::Result<()> {
    let reporter = progress::reporter();
    let report = maand_engine::jobctl::job_control(root, opts, reporter.as_ref())?;
    drop(reporter);
    if let Some(what) = report.interruption() {
        return Err(Interrupted { error: report.failure().map(anyhow::Error::from), what: Some(what) }.into());
    }
    match report.failure() {
        Some(failure) => Err(failure.into()),
        None => Ok(()),
    }
}

fn print_worker_facts(report: &maand_engine::worker_facts::WorkerFactsReport, dry_run: bool, printer: &Printer) {
    if report.changes.is_empty() {
        printer.message("workers.json already up to date");
        return;
    }
    for line in &report.changes {
        println!("{line}");
    }
    if dry_run {
        printer.message("worker_facts dry-run: workers.json not written");
    } else if report.built {
        printer.message("workers.json updated; build done");
    }
}

fn print_gc(report: &maand_engine::gc::GcReport, printer: &Printer) {
    for a in &report.collected {
        printer.message(&format!("gc: collected {} on {}", a.job, a.worker_ip));
    }
    if !report.purged_namespaces.is_empty() {
        printer.message(&format!("gc: purged KV namespaces: {}", report.purged_namespaces.join(", ")));
    }
    if report.collected.is_empty() && report.still_deployed.is_empty() {
        printer.message("gc: no removed allocations");
    }
    printer.message(&format!("gc: {} KV history rows purged", report.kv_rows_purged));
    if report.release_rows_pruned > 0 {
        printer.message(&format!(
            "gc: {} kept release rows and {} release contents pruned (maand.conf releases_kept)",
            report.release_rows_pruned, report.release_contents_pruned
        ));
    }
}
