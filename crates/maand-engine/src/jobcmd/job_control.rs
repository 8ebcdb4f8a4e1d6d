//! `maand job …` with a job that registers `job_control` commands (spec §3.5): the commands run
//! instead of the Makefile target, with `TARGET=<target>`, on the selected allocations (DESIGN
//! fixes the Go maand ignoring `--allocations` here), all at once.

use super::runner::{EventRun, JobCommands};
use crate::jobctl::JobControlHooks;
use maand_core::manifest::Event;
use maand_core::Result;

impl JobControlHooks for JobCommands<'_> {
    fn has_job_control(&self, job: &str) -> bool {
        self.has(job, Event::JobControl)
    }

    fn run_job_control(&self, job: &str, target: &str, workers: &[String]) -> Result<()> {
        self.run_event(&EventRun {
            job,
            event: Event::JobControl,
            workers,
            concurrency: workers.len().max(1),
            env: &[("TARGET".to_string(), target.to_string())],
        })
    }
}
