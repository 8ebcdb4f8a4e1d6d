//! Job commands (spec §8, internals §5, DESIGN §3.8–3.10): Python/JS hooks staged and run on the
//! CLI host, one process per allocation, for the events of build, deploy, health checks, `maand
//! job` and `maand job_command`; the loopback runtime API they use for KV, secrets, demands and
//! semaphores; the embedded helper libraries; and the `maand job_command` pipeline.

pub mod api;
mod catalog;
mod cli;
mod environment;
mod health_checks;
mod helpers;
mod interpreter;
mod job_control;
mod runner;
mod stage;

pub use catalog::{CommandAllocation, CommandCatalog};
pub use cli::{job_command, resolve_command_args, JobCommandOptions, JobCommandReport};
pub use health_checks::{HealthCheckCommands, HEALTH_CHECK_CONCURRENCY};
pub use helpers::{write_helpers, MAAND_JS, MAAND_PY, MAAND_TS};
pub use interpreter::{interpreter_for, Interpreter};
pub use runner::{EventRun, JobCommands, COMMAND_TIMEOUT};

use maand_core::{Error, ErrorKind, Result};
use maand_store::kv::KvStore;
use rusqlite::Connection;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The KV session of a run, shared with the runtime API's request threads: what a command writes
/// is visible at once to later commands and to the pipeline.
pub type SharedKv = Arc<Mutex<KvStore>>;

pub fn shared_kv(kv: KvStore) -> SharedKv {
    Arc::new(Mutex::new(kv))
}

/// Lock the session (a panicked holder does not make the KV unusable).
pub fn lock_kv(kv: &SharedKv) -> MutexGuard<'_, KvStore> {
    kv.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Commit what the session changed in one transaction on `conn` (`what` names the run in errors).
/// Returns the rows written.
pub fn persist_kv(conn: &Connection, kv: &SharedKv, what: &str) -> Result<usize> {
    let db_err = |e: rusqlite::Error| Error::new(ErrorKind::Database, format!("commit {what} kv: {e}"));
    let tx = conn.unchecked_transaction().map_err(db_err)?;
    let written = lock_kv(kv).persist(&tx, crate::bucket::now_unix())?;
    tx.commit().map_err(db_err)?;
    Ok(written)
}
