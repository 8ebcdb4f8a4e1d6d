//! Named counting semaphores of the runtime API (spec §8.5 with DESIGN §3.9): FIFO waiters, a
//! capacity fixed by the first acquirer (1..=64), bounded waits, and every hold or wait of an
//! invocation dropped when its process exits. An acquire either blocks ([`Semaphores::acquire`]) or
//! is queued and polled ([`Semaphores::enqueue`], [`Semaphores::poll`]), so the server's waits
//! hold no thread. Lifetime: one maand process.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub const MAX_CAPACITY: i64 = 64;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// Why an acquire did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcquireError {
    /// Capacity above 64, or different from the semaphore's fixed capacity (HTTP 409).
    Conflict,
    /// The wait ran out (HTTP 408).
    TimedOut,
    /// The waiting invocation ended, or the API is shutting down.
    Cancelled,
}

/// A semaphore's state for `GET /semaphore/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemaphoreStatus {
    pub capacity: usize,
    /// Allocation ids holding it, in grant order.
    pub holders: Vec<String>,
    pub waiting: usize,
    pub available: usize,
}

struct Holder {
    alloc_id: String,
    owner: String,
}

struct Waiter {
    ticket: u64,
    owner: String,
}

struct Semaphore {
    capacity: usize,
    holders: Vec<Holder>,
    queue: VecDeque<Waiter>,
}

#[derive(Default)]
struct State {
    semaphores: HashMap<String, Semaphore>,
    next_ticket: u64,
    /// Bumped on every change waiters may care about (see [`Semaphores::wait_for_change`]).
    generation: u64,
    closed: bool,
}

#[derive(Default)]
pub struct Semaphores {
    state: Mutex<State>,
    changed: Condvar,
}

/// A queued acquire: its place in the FIFO queue of one semaphore, and until when it waits.
#[derive(Debug, Clone)]
pub struct Ticket {
    key: String,
    number: u64,
    alloc_id: String,
    owner: String,
    capacity: usize,
    deadline: Instant,
}

impl Ticket {
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

/// What an acquire got at once.
#[derive(Debug)]
pub enum Enqueued {
    /// Held, with this capacity.
    Granted(usize),
    /// Waiting in the queue: [`Semaphores::poll`] the ticket until it is decided.
    Waiting(Ticket),
}

/// The capacity an acquire asks for: absent → 1, below 1 → 1, above 64 → conflict.
pub fn normalize_capacity(requested: Option<i64>) -> Result<usize, AcquireError> {
    match requested {
        Some(c) if c > MAX_CAPACITY => Err(AcquireError::Conflict),
        Some(c) if c >= 1 => usize::try_from(c).map_err(|_| AcquireError::Conflict),
        _ => Ok(1),
    }
}

/// The wait an acquire allows: absent or ≤ 0 → 600 s, at most 3600 s.
pub fn normalize_timeout(requested: Option<f64>) -> Duration {
    match requested {
        Some(s) if s > 0.0 && s.is_finite() => Duration::from_secs_f64(s).min(MAX_TIMEOUT),
        _ => DEFAULT_TIMEOUT,
    }
}

impl Semaphores {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wake everything waiting for a change.
    fn notify(&self, state: &mut State) {
        state.generation += 1;
        self.changed.notify_all();
    }

    /// Take one unit of `key` for `alloc_id` (on behalf of invocation `owner`), waiting in FIFO
    /// order up to `timeout`. A current holder gets it again at once. Returns the capacity.
    pub fn acquire(
        &self,
        key: &str,
        alloc_id: &str,
        owner: &str,
        capacity: Option<i64>,
        timeout: Duration,
    ) -> Result<usize, AcquireError> {
        match self.enqueue(key, alloc_id, owner, capacity, timeout)? {
            Enqueued::Granted(capacity) => Ok(capacity),
            Enqueued::Waiting(ticket) => self.wait(&ticket),
        }
    }

    /// Block until `ticket` is decided.
    pub fn wait(&self, ticket: &Ticket) -> Result<usize, AcquireError> {
        loop {
            let (decided, generation) = self.poll(ticket);
            if let Some(result) = decided {
                return result;
            }
            self.wait_for_change(generation, ticket.deadline);
        }
    }

    /// Start an acquire without blocking: granted at once, refused, or queued (FIFO) until the
    /// ticket's deadline `timeout` from now.
    pub fn enqueue(
        &self,
        key: &str,
        alloc_id: &str,
        owner: &str,
        capacity: Option<i64>,
        timeout: Duration,
    ) -> Result<Enqueued, AcquireError> {
        let capacity = normalize_capacity(capacity)?;
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        if state.closed {
            return Err(AcquireError::Cancelled);
        }
        state.next_ticket += 1;
        let number = state.next_ticket;
        let sem = state.semaphores.entry(key.to_string()).or_insert_with(|| Semaphore {
            capacity,
            holders: Vec::new(),
            queue: VecDeque::new(),
        });
        if sem.capacity != capacity {
            return Err(AcquireError::Conflict);
        }
        if sem.holders.iter().any(|h| h.alloc_id == alloc_id) {
            return Ok(Enqueued::Granted(capacity));
        }
        sem.queue.push_back(Waiter { ticket: number, owner: owner.to_string() });
        let ticket = Ticket {
            key: key.to_string(),
            number,
            alloc_id: alloc_id.to_string(),
            owner: owner.to_string(),
            capacity,
            deadline,
        };
        match self.decide(&mut state, &ticket) {
            Some(Ok(capacity)) => Ok(Enqueued::Granted(capacity)),
            Some(Err(e)) => Err(e),
            None => Ok(Enqueued::Waiting(ticket)),
        }
    }

    /// Whether `ticket` is decided now (granted when it is first in line and a unit is free;
    /// cancelled; timed out at its deadline), with the change generation it was checked at.
    pub fn poll(&self, ticket: &Ticket) -> (Option<Result<usize, AcquireError>>, u64) {
        let mut state = self.lock();
        let decided = self.decide(&mut state, ticket);
        (decided, state.generation)
    }

    fn decide(&self, state: &mut State, ticket: &Ticket) -> Option<Result<usize, AcquireError>> {
        if state.closed {
            return Some(Err(AcquireError::Cancelled));
        }
        let Some(sem) = state.semaphores.get_mut(&ticket.key) else { return Some(Err(AcquireError::Cancelled)) };
        if !sem.queue.iter().any(|w| w.ticket == ticket.number) {
            return Some(Err(AcquireError::Cancelled));
        }
        if sem.queue.front().is_some_and(|w| w.ticket == ticket.number) && sem.holders.len() < sem.capacity {
            sem.queue.pop_front();
            sem.holders.push(Holder { alloc_id: ticket.alloc_id.clone(), owner: ticket.owner.clone() });
            self.notify(state);
            return Some(Ok(ticket.capacity));
        }
        if Instant::now() >= ticket.deadline {
            sem.queue.retain(|w| w.ticket != ticket.number);
            self.notify(state);
            return Some(Err(AcquireError::TimedOut));
        }
        None
    }

    /// Block until something changed after `generation` (a grant, release, timeout, close or
    /// [`Semaphores::wake`]) or until `until`.
    pub fn wait_for_change(&self, generation: u64, until: Instant) {
        let mut state = self.lock();
        while state.generation == generation {
            let now = Instant::now();
            if now >= until {
                return;
            }
            state = self.changed.wait_timeout(state, until - now).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    /// The current change generation.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Wake every [`Semaphores::wait_for_change`] (a new ticket is to be watched).
    pub fn wake(&self) {
        let mut state = self.lock();
        self.notify(&mut state);
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Give back `alloc_id`'s unit of `key`. False when it does not hold it.
    pub fn release(&self, key: &str, alloc_id: &str) -> bool {
        let mut state = self.lock();
        let Some(sem) = state.semaphores.get_mut(key) else { return false };
        let before = sem.holders.len();
        sem.holders.retain(|h| h.alloc_id != alloc_id);
        let released = sem.holders.len() < before;
        if released {
            self.notify(&mut state);
        }
        released
    }

    /// Drop every hold and wait of invocation `owner` (its process exited).
    pub fn release_owner(&self, owner: &str) {
        let mut state = self.lock();
        for sem in state.semaphores.values_mut() {
            sem.holders.retain(|h| h.owner != owner);
            sem.queue.retain(|w| w.owner != owner);
        }
        self.notify(&mut state);
    }

    /// Wake and refuse every waiter (the API is shutting down).
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        self.notify(&mut state);
    }

    /// The state of `key`; an unknown semaphore reads as capacity 1, nothing held.
    pub fn status(&self, key: &str) -> SemaphoreStatus {
        let state = self.lock();
        match state.semaphores.get(key) {
            Some(sem) => SemaphoreStatus {
                capacity: sem.capacity,
                holders: sem.holders.iter().map(|h| h.alloc_id.clone()).collect(),
                waiting: sem.queue.len(),
                available: sem.capacity.saturating_sub(sem.holders.len()),
            },
            None => SemaphoreStatus { capacity: 1, holders: Vec::new(), waiting: 0, available: 1 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const SHORT: Duration = Duration::from_millis(200);

    #[test]
    fn capacity_and_timeout_normalisation() {
        assert_eq!(normalize_capacity(None), Ok(1));
        assert_eq!(normalize_capacity(Some(0)), Ok(1));
        assert_eq!(normalize_capacity(Some(-3)), Ok(1));
        assert_eq!(normalize_capacity(Some(64)), Ok(64));
        assert_eq!(normalize_capacity(Some(65)), Err(AcquireError::Conflict));
        assert_eq!(normalize_timeout(None), DEFAULT_TIMEOUT);
        assert_eq!(normalize_timeout(Some(0.0)), DEFAULT_TIMEOUT);
        assert_eq!(normalize_timeout(Some(-1.0)), DEFAULT_TIMEOUT);
        assert_eq!(normalize_timeout(Some(5.0)), Duration::from_secs(5));
        assert_eq!(normalize_timeout(Some(99_999.0)), MAX_TIMEOUT);
    }

    #[test]
    fn holders_reacquire_and_others_time_out() {
        let s = Semaphores::default();
        assert_eq!(s.acquire("j/cli/a", "alloc1", "t1", Some(1), SHORT), Ok(1));
        assert_eq!(s.acquire("j/cli/a", "alloc1", "t1", Some(1), SHORT), Ok(1), "re-acquire is immediate");
        assert_eq!(s.acquire("j/cli/a", "alloc2", "t2", Some(1), SHORT), Err(AcquireError::TimedOut));
        let st = s.status("j/cli/a");
        assert_eq!((st.capacity, st.holders, st.waiting, st.available), (1, vec!["alloc1".to_string()], 0, 0));
        // The same name under another event is another semaphore.
        assert_eq!(s.acquire("j/pre_deploy/a", "alloc2", "t2", Some(1), SHORT), Ok(1));
        assert!(s.release("j/cli/a", "alloc1"));
        assert!(!s.release("j/cli/a", "alloc1"), "releasing twice fails");
        assert_eq!(s.acquire("j/cli/a", "alloc2", "t2", Some(1), SHORT), Ok(1));
    }

    #[test]
    fn capacity_is_fixed_by_the_first_acquirer() {
        let s = Semaphores::default();
        assert_eq!(s.acquire("k", "a", "t", Some(2), SHORT), Ok(2));
        assert_eq!(s.acquire("k", "b", "t", Some(2), SHORT), Ok(2));
        assert_eq!(s.acquire("k", "c", "t", Some(3), SHORT), Err(AcquireError::Conflict));
        assert_eq!(s.acquire("k", "c", "t", Some(2), SHORT), Err(AcquireError::TimedOut));
        assert_eq!(s.acquire("other", "c", "t", Some(65), SHORT), Err(AcquireError::Conflict));
        assert_eq!(s.status("unknown"), SemaphoreStatus { capacity: 1, holders: vec![], waiting: 0, available: 1 });
    }

    #[test]
    fn waiters_are_granted_in_fifo_order() {
        let s = Arc::new(Semaphores::default());
        assert_eq!(s.acquire("k", "first", "t0", None, SHORT), Ok(1));
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        for i in 0..3 {
            let (sem, order) = (Arc::clone(&s), Arc::clone(&order));
            handles.push(std::thread::spawn(move || {
                let alloc = format!("w{i}");
                assert_eq!(sem.acquire("k", &alloc, &alloc, None, Duration::from_secs(10)), Ok(1));
                order.lock().unwrap().push(alloc.clone());
                std::thread::sleep(Duration::from_millis(20));
                assert!(sem.release("k", &alloc));
            }));
            // Queue them in a known order.
            while s.status("k").waiting < i + 1 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        assert!(s.release("k", "first"));
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec!["w0", "w1", "w2"]);
    }

    #[test]
    fn an_ended_invocation_frees_its_holds_and_waits() {
        let s = Arc::new(Semaphores::default());
        assert_eq!(s.acquire("k", "dead", "dead-token", None, SHORT), Ok(1));
        let waiter = {
            let s = Arc::clone(&s);
            std::thread::spawn(move || s.acquire("k", "alive", "alive-token", None, Duration::from_secs(10)))
        };
        while s.status("k").waiting == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        let started = Instant::now();
        s.release_owner("dead-token");
        assert_eq!(waiter.join().unwrap(), Ok(1));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(s.status("k").holders, vec!["alive".to_string()]);

        // A waiting invocation that ends is removed from the queue and its request cancelled.
        let queued = {
            let s = Arc::clone(&s);
            std::thread::spawn(move || s.acquire("k", "gone", "gone-token", None, Duration::from_secs(10)))
        };
        while s.status("k").waiting == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        s.release_owner("gone-token");
        assert_eq!(queued.join().unwrap(), Err(AcquireError::Cancelled));
        assert_eq!(s.status("k").waiting, 0);
    }

    #[test]
    fn a_queued_ticket_is_decided_by_polling() {
        let s = Semaphores::default();
        assert!(matches!(s.enqueue("k", "a", "ta", None, SHORT), Ok(Enqueued::Granted(1))));
        let Ok(Enqueued::Waiting(b)) = s.enqueue("k", "b", "tb", None, Duration::from_secs(10)) else { panic!() };
        let Ok(Enqueued::Waiting(c)) = s.enqueue("k", "c", "tc", None, SHORT) else { panic!() };
        let (decided, seen) = s.poll(&b);
        assert_eq!(decided, None);
        assert_eq!(s.status("k").waiting, 2);
        // A release is a change: a watcher of `seen` wakes, and the first in line gets it.
        assert!(s.release("k", "a"));
        let started = Instant::now();
        s.wait_for_change(seen, Instant::now() + Duration::from_secs(10));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(s.poll(&c).0, None, "c is behind b");
        assert_eq!(s.poll(&b).0, Some(Ok(1)));
        // c's deadline passes while b holds it.
        std::thread::sleep(SHORT);
        assert_eq!(s.poll(&c).0, Some(Err(AcquireError::TimedOut)));
        assert_eq!(s.status("k").waiting, 0);
        // wake() is a change too.
        let seen = s.generation();
        s.wake();
        assert_ne!(s.generation(), seen);
    }

    #[test]
    fn close_wakes_waiters() {
        let s = Arc::new(Semaphores::default());
        assert_eq!(s.acquire("k", "a", "t", None, SHORT), Ok(1));
        let waiter = {
            let s = Arc::clone(&s);
            std::thread::spawn(move || s.acquire("k", "b", "t2", None, Duration::from_secs(30)))
        };
        while s.status("k").waiting == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        s.close();
        assert_eq!(waiter.join().unwrap(), Err(AcquireError::Cancelled));
    }
}
