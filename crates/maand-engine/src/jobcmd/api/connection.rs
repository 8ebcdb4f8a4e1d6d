//! One connection of the runtime API's event loop: the bytes received and still to send, where it
//! stands (waiting for a request, being answered, sending the answer) and until when it may stay
//! there. Non-blocking: each step reads or writes until the socket would block.

use super::http::{self, Parse, Request};
use super::limits::ApiLimits;
use mio::net::TcpStream;
use std::io::{ErrorKind, Read, Write};
use std::time::Instant;

enum Phase {
    /// Waiting for a request since `since` (the accept, or the previous answer when `kept_alive`);
    /// its first byte came at `first_byte`.
    Reading { since: Instant, first_byte: Option<Instant>, kept_alive: bool, continue_sent: bool },
    /// A worker or a semaphore wait has the request.
    Answering { head_request: bool, close: bool },
    /// The answer is being sent since `since`; then the connection closes or reads again.
    Sending { since: Instant, close: bool },
}

/// What the event loop does with a connection after a step.
pub enum Step {
    Keep,
    Close,
    /// Answer this request (the connection waits in [`Connection::respond`]).
    Dispatch(Request),
}

pub struct Connection {
    stream: TcpStream,
    phase: Phase,
    received: Vec<u8>,
    outgoing: Vec<u8>,
    sent: usize,
    /// The client sent EOF (it may still read the answer).
    peer_closed: bool,
    /// Reading or writing failed: nothing more can happen on it.
    broken: bool,
}

impl Connection {
    pub fn new(stream: TcpStream, now: Instant) -> Connection {
        Connection {
            stream,
            phase: Phase::Reading { since: now, first_byte: None, kept_alive: false, continue_sent: false },
            received: Vec::new(),
            outgoing: Vec::new(),
            sent: 0,
            peer_closed: false,
            broken: false,
        }
    }

    pub fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// When the connection is closed unless it gets further; none while its request is answered.
    pub fn deadline(&self, limits: &ApiLimits) -> Option<Instant> {
        match self.phase {
            Phase::Reading { first_byte: Some(first), .. } => Some(first + limits.request_timeout),
            Phase::Reading { since, kept_alive: true, .. } => Some(since + limits.idle_timeout),
            Phase::Reading { since, .. } => Some(since + limits.request_timeout),
            Phase::Answering { .. } => None,
            Phase::Sending { since, .. } => Some(since + limits.write_timeout),
        }
    }

    /// Since when it waits for a request; none unless it does (only such connections are evicted).
    pub fn waiting_since(&self) -> Option<Instant> {
        match self.phase {
            Phase::Reading { since, .. } => Some(since),
            _ => None,
        }
    }

    /// Send what is pending, then read and parse whatever arrived.
    pub fn progress(&mut self, limits: &ApiLimits, now: Instant) -> Step {
        self.flush();
        if self.broken {
            return Step::Close;
        }
        if let Phase::Sending { close, .. } = self.phase {
            if self.sent < self.outgoing.len() {
                return Step::Keep;
            }
            if close {
                return Step::Close;
            }
            self.outgoing.clear();
            self.sent = 0;
            let first_byte = (!self.received.is_empty()).then_some(now);
            self.phase = Phase::Reading { since: now, first_byte, kept_alive: true, continue_sent: false };
        }
        if !matches!(self.phase, Phase::Reading { .. }) {
            return Step::Keep;
        }
        self.receive(limits, now);
        if self.broken {
            return Step::Close;
        }
        self.parse(limits, now)
    }

    /// Queue the answer to the request being answered.
    pub fn respond(&mut self, status: u16, content_type: &str, body: &[u8], now: Instant) {
        if let Phase::Answering { head_request, close } = self.phase {
            self.send(http::response(status, content_type, body, head_request, close), close, now);
        }
    }

    fn send(&mut self, bytes: Vec<u8>, close: bool, now: Instant) {
        self.outgoing.extend_from_slice(&bytes);
        self.phase = Phase::Sending { since: now, close };
    }

    fn flush(&mut self) {
        while self.sent < self.outgoing.len() && !self.broken {
            match self.stream.write(&self.outgoing[self.sent..]) {
                Ok(0) => self.broken = true,
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.broken = true,
            }
        }
    }

    fn receive(&mut self, limits: &ApiLimits, now: Instant) {
        let mut chunk = [0u8; 16 << 10];
        while !self.peer_closed && self.received.len() < limits.max_request_bytes() {
            match self.stream.read(&mut chunk) {
                Ok(0) => self.peer_closed = true,
                Ok(n) => {
                    if let Phase::Reading { first_byte: first_byte @ None, .. } = &mut self.phase {
                        *first_byte = Some(now);
                    }
                    self.received.extend_from_slice(&chunk[..n]);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.broken = true;
                    return;
                }
            }
        }
    }

    fn parse(&mut self, limits: &ApiLimits, now: Instant) -> Step {
        if self.received.is_empty() {
            return if self.peer_closed { Step::Close } else { Step::Keep };
        }
        match http::parse(&self.received, limits.max_header_bytes, limits.max_body_bytes) {
            Parse::Complete { request, consumed } => {
                self.received.drain(..consumed.min(self.received.len()));
                let close = !request.keep_alive || self.peer_closed;
                self.phase = Phase::Answering { head_request: request.method == "HEAD", close };
                Step::Dispatch(request)
            }
            Parse::Invalid { status } => self.refuse(status, limits, now),
            Parse::Incomplete { .. } if self.received.len() >= limits.max_request_bytes() => {
                self.refuse(413, limits, now)
            }
            Parse::Incomplete { .. } if self.peer_closed => Step::Close,
            Parse::Incomplete { continue_wanted } => {
                if let Phase::Reading { continue_sent: sent @ false, .. } = &mut self.phase {
                    if continue_wanted {
                        *sent = true;
                        self.outgoing.extend_from_slice(http::CONTINUE);
                        self.flush();
                    }
                }
                if self.broken {
                    Step::Close
                } else {
                    Step::Keep
                }
            }
        }
    }

    fn refuse(&mut self, status: u16, limits: &ApiLimits, now: Instant) -> Step {
        self.send(http::refusal(status), true, now);
        self.progress(limits, now)
    }
}
