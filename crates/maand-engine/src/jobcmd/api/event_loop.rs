//! The runtime API's event loop: one thread that accepts connections, reads and parses requests,
//! sends answers and closes connections that stay silent too long — over at most
//! `max_connections` sockets and without a thread per connection. Complete requests go to the
//! workers as [`Job`]s; answers come back through [`Replies`].

use super::connection::{Connection, Step};
use super::handlers::ApiResponse;
use super::http::{self, Request};
use super::limits::ApiLimits;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use std::collections::HashMap;
use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const FIRST_CONNECTION: usize = 2;
/// When accepting fails (out of file descriptors), try again after this.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// A request read off connection `conn`, for a worker.
pub struct Job {
    pub conn: usize,
    pub request: Request,
}

/// The way answers reach the event loop (from the workers and the semaphore waits).
#[derive(Clone)]
pub struct Replies {
    tx: Sender<(usize, ApiResponse)>,
    waker: Arc<Waker>,
}

impl Replies {
    /// Answer the request of connection `conn` (ignored once the loop has stopped).
    pub fn send(&self, conn: usize, response: ApiResponse) {
        if self.tx.send((conn, response)).is_ok() {
            let _ = self.waker.wake();
        }
    }
}

/// Stops the loop from another thread.
pub struct Stopper {
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl Stopper {
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }
}

pub struct EventLoop {
    poll: Poll,
    listener: TcpListener,
    limits: ApiLimits,
    conns: HashMap<usize, Connection>,
    next_id: usize,
    jobs: Sender<Job>,
    replies: Receiver<(usize, ApiResponse)>,
    stop: Arc<AtomicBool>,
    accept_retry: Option<Instant>,
}

impl EventLoop {
    /// A loop over `listener` (non-blocking) that hands requests to `jobs`.
    pub fn new(
        listener: std::net::TcpListener,
        limits: ApiLimits,
        jobs: Sender<Job>,
    ) -> std::io::Result<(EventLoop, Replies, Stopper)> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::from_std(listener);
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (tx, replies) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let event_loop = EventLoop {
            poll,
            listener,
            limits,
            conns: HashMap::new(),
            next_id: FIRST_CONNECTION,
            jobs,
            replies,
            stop: Arc::clone(&stop),
            accept_retry: None,
        };
        Ok((event_loop, Replies { tx, waker: Arc::clone(&waker) }, Stopper { stop, waker }))
    }

    /// Serve until stopped; every connection closes when it returns.
    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        while !self.stop.load(Ordering::SeqCst) {
            let timeout = self.next_wakeup().map(|at| at.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return;
            }
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(now),
                    WAKER => {}
                    Token(id) => self.progress(id, now),
                }
            }
            self.deliver_replies(now);
            if self.accept_retry.is_some_and(|at| at <= now) {
                self.accept(now);
            }
            self.expire(now);
        }
        // Answers given before the stop (cancelled semaphore waits) still go out, as far as the
        // sockets take them without waiting.
        self.deliver_replies(Instant::now());
    }

    fn next_wakeup(&self) -> Option<Instant> {
        self.conns.values().filter_map(|c| c.deadline(&self.limits)).chain(self.accept_retry).min()
    }

    fn accept(&mut self, now: Instant) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => self.admit(stream, now),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.accept_retry = None;
                    return;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.accept_retry = Some(now + ACCEPT_RETRY);
                    return;
                }
            }
        }
    }

    /// Take a new connection; at the cap, the one that waited longest for a request makes room,
    /// and when every connection is being answered the new one is refused (503) and closed.
    fn admit(&mut self, mut stream: TcpStream, now: Instant) {
        if self.conns.len() >= self.limits.max_connections && !self.evict_longest_waiting() {
            let _ = stream.write(&http::refusal(503));
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        // Registering reports what already arrived: the connection's first step comes as an event.
        if self.poll.registry().register(&mut stream, Token(id), Interest::READABLE | Interest::WRITABLE).is_ok() {
            self.conns.insert(id, Connection::new(stream, now));
        }
    }

    fn evict_longest_waiting(&mut self) -> bool {
        let oldest = self.conns.iter().filter_map(|(id, c)| Some((c.waiting_since()?, *id))).min();
        match oldest {
            Some((_, id)) => {
                self.close(id);
                true
            }
            None => false,
        }
    }

    fn progress(&mut self, id: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        match conn.progress(&self.limits, now) {
            Step::Keep => {}
            Step::Close => self.close(id),
            Step::Dispatch(request) => {
                if self.jobs.send(Job { conn: id, request }).is_err() {
                    self.close(id);
                }
            }
        }
    }

    fn deliver_replies(&mut self, now: Instant) {
        while let Ok((id, response)) = self.replies.try_recv() {
            let Some(conn) = self.conns.get_mut(&id) else { continue };
            let content_type = if response.json { "application/json" } else { "text/plain; charset=utf-8" };
            conn.respond(response.status, content_type, response.body.as_bytes(), now);
            self.progress(id, now);
        }
    }

    fn expire(&mut self, now: Instant) {
        let expired: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline(&self.limits).is_some_and(|at| at <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.close(id);
        }
    }

    fn close(&mut self, id: usize) {
        if let Some(mut conn) = self.conns.remove(&id) {
            let _ = self.poll.registry().deregister(conn.stream_mut());
        }
    }
}
