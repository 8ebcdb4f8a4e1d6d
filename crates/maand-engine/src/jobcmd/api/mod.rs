//! The runtime API job commands talk to (spec §8.4, §8.5, DESIGN §3.9): per-invocation tokens,
//! the KV/secret/demand/semaphore routes, and the loopback HTTP server that serves them.

mod handlers;
mod invocations;
mod semaphores;
mod server;

pub use handlers::{handle, ApiRequest, ApiResponse, ApiState};
pub use invocations::{Invocation, Invocations};
pub use semaphores::{AcquireError, SemaphoreStatus, Semaphores};
pub use server::RuntimeApi;
