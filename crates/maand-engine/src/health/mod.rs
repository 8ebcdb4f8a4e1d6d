//! Health checks (spec §2.7, §9): the manifest probes (tcp, http, ssh) of a job on its active
//! allocations plus pluggable extra checks, with bounded waits; the worker gate (each worker's SSH
//! server answers with its banner); and the `maand health_check` command built from both.

mod command;
mod job;
mod net;
mod parallel;
mod probe;
mod retry;
mod spec_json;
mod targets;
mod workers;

pub(crate) use command::{health_check_log, ReportLines};
pub use command::{
    health_check_summary, run_health_check, HealthCheckOptions, HealthSummary, JobHealth, JobHealthStatus,
    JOB_PARALLELISM,
};
pub use job::{check_job, check_job_streaming, SKIP_NOTHING_TO_CHECK, SKIP_NO_ALLOCATIONS};
pub(crate) use parallel::bounded_map;
pub use probe::OutputSink;
pub use spec_json::parse_health_spec;
pub use workers::{check_workers, WORKER_CONNECT_TIMEOUT};

use maand_core::HealthCheckSpec;
use maand_remote::WorkerAddr;
use std::collections::BTreeMap;

/// An allocation to probe: the worker reached at its IP (and its own SSH port, for ssh probes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeAllocation {
    pub worker: WorkerAddr,
}

/// Everything one job's gate needs.
#[derive(Debug, Clone, Copy)]
pub struct HealthTarget<'a> {
    pub job: &'a str,
    /// The manifest's health_check (`None`: no probes, default waits).
    pub spec: Option<&'a HealthCheckSpec>,
    /// The job's ACTIVE allocations.
    pub allocations: &'a [ProbeAllocation],
    /// The job's port name -> number.
    pub ports: &'a BTreeMap<String, u16>,
    /// maand.conf `use_sudo`: ssh probes then run in a login shell (`bash -lc`), as the Go maand's
    /// `sudo -E bash -lc` (the executor itself adds the sudo).
    pub use_sudo: bool,
    /// Also require, on every try, that each allocation's worker answers SSH with its banner
    /// (within the probe timeout): a frozen host still accepts TCP connections on its services'
    /// ports. Deploy and `maand job` gates set it; `maand health_check` checks every worker once
    /// before the jobs instead.
    pub require_live_workers: bool,
}

/// How a job's gate ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthOutcome {
    Passed,
    /// Why nothing was checked: `SKIP_NO_ALLOCATIONS` or `SKIP_NOTHING_TO_CHECK`.
    Skipped(String),
}

/// Checks beyond the manifest probes (the job's `health_check` commands plug in here). `run` is
/// called once per try, after every probe passed, with the worker IPs of the allocations checked.
pub trait ExtraCheck: Sync {
    fn has_checks(&self, job: &str) -> bool;
    fn run(&self, job: &str, allocations: &[String]) -> Result<(), String>;
}

/// No extra checks: only the manifest probes count.
pub struct NoExtraChecks;

impl ExtraCheck for NoExtraChecks {
    fn has_checks(&self, _job: &str) -> bool {
        false
    }

    fn run(&self, _job: &str, _allocations: &[String]) -> Result<(), String> {
        Ok(())
    }
}
