//! The deploy's job-command hooks (spec §5.3): a job's commands for one event on some of its
//! allocations, followed by a KV checkpoint — what the hooks wrote is committed at once, so a
//! cluster's bootstrap secrets survive a failure later in the deploy. Dry-runs never persist.

use crate::jobcmd::{persist_kv, EventRun, JobCommands};
use maand_core::manifest::Event;
use maand_core::Result;
use rusqlite::Connection;
use std::sync::{Mutex, PoisonError};

pub struct DeployHooks<'h, 'a> {
    pub commands: &'h JobCommands<'a>,
    /// The deploy's writer connection (shared by jobs rolling out concurrently).
    pub conn: &'h Mutex<Connection>,
    /// Persist the KV after every hook run (false in dry-run).
    pub checkpoint: bool,
}

impl DeployHooks<'_, '_> {
    pub fn has(&self, job: &str, event: Event) -> bool {
        self.commands.has(job, event)
    }

    /// Run `job`'s `event` commands on `workers` (`concurrency` at once) with `env`, then
    /// checkpoint the KV whatever the outcome. Nothing to run: Ok without touching anything.
    pub fn run(
        &self,
        job: &str,
        event: Event,
        workers: &[String],
        concurrency: usize,
        env: &[(String, String)],
    ) -> Result<()> {
        if !self.has(job, event) || workers.is_empty() {
            return Ok(());
        }
        let result = self.commands.run_event(&EventRun { job, event, workers, concurrency, env });
        if self.checkpoint {
            persist_kv(&self.conn.lock().unwrap_or_else(PoisonError::into_inner), self.commands.kv(), "deploy")?;
        }
        result
    }
}
