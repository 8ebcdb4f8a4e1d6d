//! The runtime API's HTTP server (DESIGN §3.9): bound to 127.0.0.1 on a free port (a bind failure
//! is an error, never ignored), served within [`ApiLimits`] by one event-loop thread (connections),
//! a fixed pool of workers (requests) and one thread for semaphore waits; stopped — waiters woken,
//! every connection closed, every thread joined — when dropped.

use super::event_loop::{EventLoop, Stopper};
use super::handlers::ApiState;
use super::limits::ApiLimits;
use super::{semaphore_waits, workers};
use maand_core::{Error, ErrorKind, Result};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::mpsc::channel;
use std::sync::Arc;
use std::thread::JoinHandle;

pub struct RuntimeApi {
    state: Arc<ApiState>,
    port: u16,
    stopper: Option<Stopper>,
    workers: Vec<JoinHandle<()>>,
    waits: Option<JoinHandle<()>>,
    event_loop: Option<JoinHandle<()>>,
}

impl RuntimeApi {
    /// Bind 127.0.0.1:0 and start serving within the default limits.
    pub fn start(state: ApiState) -> Result<RuntimeApi> {
        RuntimeApi::start_with(state, ApiLimits::DEFAULT)
    }

    /// Bind 127.0.0.1:0 and start serving within `limits`.
    pub fn start_with(state: ApiState, limits: ApiLimits) -> Result<RuntimeApi> {
        let failed = |e: std::io::Error| Error::new(ErrorKind::Unexpected, format!("job command runtime API: {e}"));
        let listener = listen(limits.listen_backlog).map_err(|e| {
            Error::new(ErrorKind::Unexpected, format!("job command runtime API: cannot listen on 127.0.0.1: {e}"))
        })?;
        let port = listener.local_addr().map_err(failed)?.port();
        let (jobs_tx, jobs) = channel();
        let (waits_tx, waits) = channel();
        let (event_loop, replies, stopper) = EventLoop::new(listener, limits, jobs_tx).map_err(failed)?;
        // From here on, dropping `api` stops whatever already runs.
        let mut api = RuntimeApi {
            state: Arc::new(state),
            port,
            stopper: Some(stopper),
            workers: Vec::new(),
            waits: None,
            event_loop: None,
        };
        api.workers = workers::start(limits.workers, &api.state, jobs, &replies, &waits_tx).map_err(failed)?;
        api.waits = Some(semaphore_waits::start(&api.state, waits, &replies).map_err(failed)?);
        let event_loop = std::thread::Builder::new()
            .name("maand-api-loop".into())
            .spawn(move || event_loop.run())
            .map_err(failed)?;
        api.event_loop = Some(event_loop);
        Ok(api)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &ApiState {
        &self.state
    }
}

/// A non-blocking listener on a free port of 127.0.0.1 with `backlog`.
fn listen(backlog: i32) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())?;
    socket.listen(backlog)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

impl Drop for RuntimeApi {
    /// Waits are answered (cancelled) before the loop stops, so their clients get the answer; the
    /// workers end once the loop, which feeds them, is gone.
    fn drop(&mut self) {
        self.state.semaphores.close();
        if let Some(waits) = self.waits.take() {
            let _ = waits.join();
        }
        if let Some(stopper) = self.stopper.take() {
            stopper.stop();
        }
        if let Some(event_loop) = self.event_loop.take() {
            let _ = event_loop.join();
        }
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests;
