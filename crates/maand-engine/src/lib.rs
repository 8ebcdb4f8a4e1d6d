//! maand-engine: the pipelines (init, build, inspection, and later deploy and day-2 operations),
//! built from maand-core decisions, maand-store persistence and maand-remote transport.

pub mod batch_executor;
pub mod bucket;
pub mod build;
pub mod calendar;
pub mod deploy;
pub mod gc;
pub mod health;
pub mod history;
pub mod init;
pub mod inspect;
pub mod job_create;
pub mod jobcmd;
pub mod jobctl;
pub mod output;
pub mod prometheus;
pub(crate) mod remote_steps;
pub mod run_command;
pub mod runlog;
pub mod sandbox;
pub mod status;
pub mod template;
pub mod transport;
pub mod worker_facts;
