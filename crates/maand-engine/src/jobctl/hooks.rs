//! The seam where a job's `job_control` commands replace its Makefile target (spec §3.5, §12.2):
//! the job-commands pipeline (`crate::jobcmd::JobCommands`) implements [`JobControlHooks`]; a
//! job without `job_control` commands runs its target through runner.py.

use maand_core::Result;

/// What `maand job …` asks of the job-commands pipeline.
pub trait JobControlHooks: Sync {
    /// True when `job` registers commands for the `job_control` event: they then run instead of
    /// the runner.py batches.
    fn has_job_control(&self, job: &str) -> bool;

    /// Run `job`'s `job_control` commands with `TARGET=<target>` for `workers` (the selected
    /// active allocations, in rollout order). Called once per job; the health gate (with
    /// `--health_check`) runs after it returns Ok.
    fn run_job_control(&self, job: &str, target: &str, workers: &[String]) -> Result<()>;
}
