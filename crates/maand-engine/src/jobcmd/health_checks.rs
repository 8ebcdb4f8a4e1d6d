//! A job's `health_check` commands as an extra health check (spec §9.1): run on the allocations a
//! gate checks (10 at once; `GATED_ALLOCATIONS` names them all) after the manifest probes passed,
//! in every health gate and in `maand health_check`. The runtime API refuses their KV writes.

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

    fn run(&self, job: &str, allocations: &[String]) -> Result<(), String> {
        let env = [("GATED_ALLOCATIONS".to_string(), allocations.join(","))];
        self.commands
            .run_event(&EventRun {
                job,
                event: Event::HealthCheck,
                workers: allocations,
                concurrency: HEALTH_CHECK_CONCURRENCY,
                env: &env,
            })
            .map_err(|e| e.detail)
    }
}
