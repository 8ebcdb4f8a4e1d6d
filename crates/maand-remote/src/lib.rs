//! maand-remote: talking to workers (scripts and rsync over OpenSSH) and sandbox workers for demos
//! and end-to-end tests. Knows nothing about jobs or deploys.

pub mod executor;
pub mod interrupt;
pub mod parent_death;
pub mod process;
mod procfs;
pub mod quiet_pipe;
pub mod recording;
pub mod sandbox;
pub mod script;
pub mod ssh;

pub use executor::{Executor, RemoteScript, RsyncArgs, RunOutcome, Stream, WorkerAddr};
pub use recording::{Call, RecordingExecutor};
pub use ssh::{HostKeyPolicy, OpenSsh, SshSettings};
