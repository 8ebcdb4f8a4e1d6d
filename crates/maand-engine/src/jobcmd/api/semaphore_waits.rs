//! The runtime API's semaphore waits: one thread holds every queued acquire, answers each when it
//! is granted, times out or is cancelled, and otherwise sleeps until the semaphores change or the
//! nearest deadline — a job command waiting for a semaphore costs no thread of its own.

use super::event_loop::Replies;
use super::handlers::{ApiState, SemaphoreWait};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the thread sleeps with nothing to watch (it wakes on every change anyway).
const NOTHING_DUE: Duration = Duration::from_secs(3600);

/// Start the thread; it ends once the semaphores are closed.
pub fn start(
    state: &Arc<ApiState>,
    waits: Receiver<(usize, SemaphoreWait)>,
    replies: &Replies,
) -> std::io::Result<JoinHandle<()>> {
    let (state, replies) = (Arc::clone(state), replies.clone());
    std::thread::Builder::new().name("maand-api-wait".into()).spawn(move || watch(&state, &waits, &replies))
}

fn watch(state: &ApiState, waits: &Receiver<(usize, SemaphoreWait)>, replies: &Replies) {
    let semaphores = &state.semaphores;
    let mut parked: Vec<(usize, SemaphoreWait)> = Vec::new();
    loop {
        // Read the generation first: a wait parked or a change made after it wakes the sleep below.
        let seen = semaphores.generation();
        parked.extend(waits.try_iter());
        parked.retain(|(conn, wait)| match wait.poll(semaphores).0 {
            Some(answer) => {
                replies.send(*conn, answer);
                false
            }
            None => true,
        });
        if semaphores.is_closed() {
            return;
        }
        let until = parked.iter().map(|(_, w)| w.deadline()).min().unwrap_or_else(|| Instant::now() + NOTHING_DUE);
        semaphores.wait_for_change(seen, until);
    }
}
