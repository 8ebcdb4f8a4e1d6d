//! Every bound of the runtime API in one place (DESIGN §3.9, issue 14): threads, open connections,
//! how long a connection may stay silent and how large a request may be. The README quotes these.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiLimits {
    /// Threads that answer requests. A semaphore wait holds none of them.
    pub workers: usize,
    /// Connections the kernel completes before maand accepts them (the `listen` backlog); a burst
    /// beyond it waits for the client's SYN retry (a second or more).
    pub listen_backlog: i32,
    /// Connections open at once. A new connection beyond it closes the connection that has waited
    /// longest for a request; when every open connection is being answered, it is closed at once.
    pub max_connections: usize,
    /// A new connection must deliver a complete request within this (Go's read timeout), and so must a
    /// kept-alive connection once the first byte of its next request came.
    pub request_timeout: Duration,
    /// A kept-alive connection may wait this long for its next request (Go's idle timeout).
    pub idle_timeout: Duration,
    /// The client must take a response within this.
    pub write_timeout: Duration,
    /// Request line and headers at most; more is answered 431.
    pub max_header_bytes: usize,
    /// Request body at most; a longer one reaches the routes as an empty body (400).
    pub max_body_bytes: usize,
}

impl ApiLimits {
    pub const DEFAULT: ApiLimits = ApiLimits {
        workers: 8,
        listen_backlog: 1024,
        max_connections: 256,
        request_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(30),
        write_timeout: Duration::from_secs(10),
        max_header_bytes: 64 << 10,
        max_body_bytes: 1 << 20,
    };

    /// Bytes of one request kept before it must be complete (chunk framing included).
    pub fn max_request_bytes(&self) -> usize {
        self.max_header_bytes + 2 * self.max_body_bytes
    }
}

impl Default for ApiLimits {
    fn default() -> ApiLimits {
        ApiLimits::DEFAULT
    }
}
