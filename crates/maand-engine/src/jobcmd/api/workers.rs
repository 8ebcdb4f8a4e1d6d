//! The runtime API's worker pool: a fixed number of threads that turn a parsed request into an
//! [`ApiRequest`], route it and hand the answer back to the event loop — or a queued semaphore
//! acquire to the waits thread, so no worker ever blocks on a semaphore.

use super::event_loop::{Job, Replies};
use super::handlers::{dispatch, ApiRequest, ApiState, Outcome, SemaphoreWait};
use super::http::Request;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

/// Start `count` workers taking jobs from `jobs` until its sender is gone.
pub fn start(
    count: usize,
    state: &Arc<ApiState>,
    jobs: Receiver<Job>,
    replies: &Replies,
    waits: &Sender<(usize, SemaphoreWait)>,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    let jobs = Arc::new(Mutex::new(jobs));
    (0..count.max(1))
        .map(|_| {
            let (state, jobs, replies, waits) = (Arc::clone(state), Arc::clone(&jobs), replies.clone(), waits.clone());
            std::thread::Builder::new()
                .name("maand-api-work".into())
                .spawn(move || work(&state, &jobs, &replies, &waits))
        })
        .collect()
}

fn work(state: &ApiState, jobs: &Mutex<Receiver<Job>>, replies: &Replies, waits: &Sender<(usize, SemaphoreWait)>) {
    loop {
        let next = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(Job { conn, request }) = next else { return };
        match dispatch(state, &api_request(request)) {
            Outcome::Reply(response) => replies.send(conn, response),
            Outcome::Wait(wait) => match waits.send((conn, wait)) {
                Ok(()) => state.semaphores.wake(),
                // The waits thread is gone: the semaphores are closed and the wait ends at once.
                Err(returned) => {
                    let (conn, wait) = returned.0;
                    replies.send(conn, wait.answer(&state.semaphores));
                }
            },
        }
    }
}

/// What the routes read of a request: method, path, query, bearer token, allocation header, body.
fn api_request(request: Request) -> ApiRequest {
    let token = request
        .header("Authorization")
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")).map(|t| t.trim().to_string()));
    let allocation_id = request.header("X-ALLOCATION-ID").map(str::to_string);
    let (path, query) = match request.target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (request.target.clone(), String::new()),
    };
    ApiRequest { method: request.method, path, query, token, allocation_id, body: request.body }
}
