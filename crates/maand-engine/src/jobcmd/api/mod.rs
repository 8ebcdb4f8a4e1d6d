//! The runtime API job commands talk to (spec §8.4, §8.5, DESIGN §3.9): per-invocation tokens,
//! the KV/secret/demand/semaphore routes, and the loopback HTTP server that serves them within
//! fixed limits (threads, connections, timeouts, sizes).

mod connection;
mod event_loop;
mod handlers;
mod http;
mod invocations;
mod limits;
mod semaphore_waits;
mod semaphores;
mod server;
mod workers;

pub use handlers::{dispatch, handle, ApiRequest, ApiResponse, ApiState, Outcome, SemaphoreWait};
pub use invocations::{Invocation, Invocations};
pub use limits::ApiLimits;
pub use semaphores::{AcquireError, SemaphoreStatus, Semaphores};
pub use server::RuntimeApi;
