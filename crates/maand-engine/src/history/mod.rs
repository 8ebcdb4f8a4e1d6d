//! The run history (`maand history`): every run that changed something — deploy, `maand job`
//! targets, gc, rollback — recorded in the catalog when it starts and completed when it ends (who,
//! the command line, per job the versions from → to, the allocations acted on and the result),
//! and read back newest first.

mod outcomes;
mod read;
mod record;
mod table;
mod who;

pub use outcomes::{deploy_outcome, gc_outcome, job_control_outcome};
pub use read::{history, HistoryJob, HistoryOptions, HistoryRun};
pub use record::{JobOutcome, RunKind, RunOutcome, RunRecorder, RunResult};
pub use table::history_table;
