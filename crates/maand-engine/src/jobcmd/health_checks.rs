//! A job's `health_check` commands as an extra health check (spec §9.1): run on the job's active
//! allocations (10 at once) after its manifest probes passed, in every health gate and in
//! `maand health_check`. The runtime API refuses their KV writes.

use super::runner::{EventRun, JobCommands};
use crate::health::ExtraCheck;
use maand_core::manifest::Event;

/// Allocations checked at once (the Go maand's health-check command concurrency).
pub const HEALTH_CHECK_CONCURRENCY: usize = 10;

pub struct HealthCheckCommands<'c, 'a> {
    pub commands: &'c JobCommands<'a>,
}

impl ExtraCheck for HealthCheckCommands<'_, '_> {
    fn has_checks(&self, job: &str) -> bool {
        self.commands.has(job, Event::HealthCheck)
    }

    fn run(&self, job: &str) -> Result<(), String> {
        let workers = self.commands.active_workers(job);
        self.commands
            .run_event(&EventRun {
                job,
                event: Event::HealthCheck,
                workers: &workers,
                concurrency: HEALTH_CHECK_CONCURRENCY,
                env: &[],
            })
            .map_err(|e| e.detail)
    }
}
