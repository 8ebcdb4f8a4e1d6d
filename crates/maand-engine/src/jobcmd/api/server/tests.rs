//! The runtime API over real sockets: auth and routes as before, and the bounds — threads,
//! open connections, silent connections closed, semaphore waits without threads. Thread counts
//! read `/proc/self/task` (nextest runs each test in its own process).

use super::*;
use crate::jobcmd::api::{Invocation, Invocations, Semaphores};
use crate::jobcmd::shared_kv;
use maand_core::manifest::Event;
use maand_store::kv::KvStore;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Limits small enough for tests to reach in well under a second.
const SMALL: ApiLimits = ApiLimits {
    workers: 2,
    listen_backlog: 16,
    max_connections: 8,
    request_timeout: Duration::from_millis(400),
    idle_timeout: Duration::from_millis(700),
    write_timeout: Duration::from_secs(2),
    max_header_bytes: 4096,
    max_body_bytes: 1024,
};

struct Api {
    api: RuntimeApi,
}

impl Api {
    fn start(limits: ApiLimits) -> Api {
        let mut kv = KvStore::default();
        kv.put("vars/job/api", "k", "v");
        let state = ApiState {
            kv: shared_kv(kv),
            key: None,
            commands: vec![],
            invocations: Invocations::default(),
            semaphores: Semaphores::default(),
        };
        Api { api: RuntimeApi::start_with(state, limits).unwrap() }
    }

    /// A live token of allocation `alloc` of job `api`.
    fn token(&self, alloc: &str) -> String {
        self.api.state().invocations.register(Invocation {
            alloc_id: alloc.into(),
            job: "api".into(),
            worker_ip: "10.0.0.1".into(),
            event: Event::Cli,
            command: "command_x".into(),
            upstream: vec![],
        })
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.api.port())).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }
}

/// A request of allocation `alloc` with `token`, and extra header lines.
fn request(method: &str, path: &str, token: &str, alloc: &str, extra: &str, body: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nX-ALLOCATION-ID: {alloc}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// One response off `s`: status and body (by `Content-Length`).
fn read_response(s: &mut TcpStream) -> (u16, String) {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "connection closed mid-response: {}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let status = head[9..12].parse().unwrap();
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).map(|v| v.trim().parse().unwrap()).unwrap_or(0);
    let mut body = vec![0u8; length];
    s.read_exact(&mut body).unwrap();
    (status, String::from_utf8(body).unwrap())
}

/// Whether the server closed `s` (EOF or reset) within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    }
}

/// Threads of this process, and those of the runtime API, once both held still for 50 ms (a new
/// thread names itself when it starts).
fn threads() -> (usize, usize) {
    let mut last = count_threads();
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(50));
        let now = count_threads();
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

fn count_threads() -> (usize, usize) {
    let mut all = 0;
    let mut api = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        all += 1;
        let comm = std::fs::read_to_string(task.unwrap().path().join("comm")).unwrap_or_default();
        if comm.starts_with("maand-api") {
            api += 1;
        }
    }
    (all, api)
}

fn get_k(api: &Api, token: &str) -> (u16, String) {
    let mut s = api.connect();
    let body = r#"{"namespace":"vars/job/api","key":"k"}"#;
    s.write_all(request("GET", "/kv", token, "a1", "Connection: close\r\n", body).as_bytes()).unwrap();
    read_response(&mut s)
}

#[test]
fn serves_on_loopback_and_requires_the_token() {
    let api = Api::start(ApiLimits::DEFAULT);
    assert_ne!(api.api.port(), 8080);
    let token = api.token("a1");
    let mut s = api.connect();
    let body = r#"{"namespace":"vars/job/api","key":"k"}"#;
    s.write_all(request("GET", "/kv", "nope", "a1", "", body).as_bytes()).unwrap();
    assert_eq!(read_response(&mut s).0, 401);
    let (status, body) = get_k(&api, &token);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""value":"v""#), "{body}");
    let mut s = api.connect();
    s.write_all(
        request("GET", "/kv", &token, "a1", "Connection: close\r\n", r#"{"namespace":"vars/job/api","key":"k"}"#)
            .as_bytes(),
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200 OK\r\n") && raw.contains("Content-Type: application/json\r\n"), "{raw}");
}

#[test]
fn idle_connections_cost_no_thread_and_requests_are_still_answered() {
    let limits = ApiLimits { max_connections: 64, request_timeout: Duration::from_secs(5), ..ApiLimits::DEFAULT };
    let api = Api::start(limits);
    let token = api.token("a1");
    let (before, api_threads) = threads();
    assert_eq!(api_threads, limits.workers + 2, "the pool, the event loop and the semaphore waits");

    let started = Instant::now();
    let mut idle: Vec<TcpStream> = (0..500).map(|_| api.connect()).collect();
    // A burst beyond the listen backlog would wait for SYN retries (a second each).
    assert!(started.elapsed() < Duration::from_secs(1), "500 connects took {:?}", started.elapsed());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(threads(), (before, api_threads), "500 idle connections made threads");
    for _ in 0..20 {
        let started = Instant::now();
        assert_eq!(get_k(&api, &token).0, 200);
        assert!(started.elapsed() < Duration::from_secs(1), "slow answer with 500 idle connections");
    }
    assert_eq!(threads(), (before, api_threads));
    // Only `max_connections` of them are still open: the others made room for newer ones.
    let closed = idle.iter_mut().map(|s| closed_within(s, Duration::from_millis(5))).filter(|c| *c).count();
    assert!(closed >= 500 - 64, "{closed} of 500 idle connections closed");
}

#[test]
fn silent_connections_are_closed_after_the_request_timeout() {
    let api = Api::start(SMALL);
    let token = api.token("a1");
    let started = Instant::now();
    let mut silent = api.connect();
    let mut partial = api.connect();
    partial.write_all(b"GET /kv HTTP/1.1\r\nHost: x\r\n").unwrap();
    assert!(!closed_within(&mut silent, Duration::from_millis(250)), "closed before the timeout");
    assert!(closed_within(&mut silent, Duration::from_secs(2)));
    assert!(closed_within(&mut partial, Duration::from_secs(2)));
    let elapsed = started.elapsed();
    assert!(elapsed >= SMALL.request_timeout && elapsed < Duration::from_secs(2), "{elapsed:?}");

    // A kept-alive connection serves several requests, then closes after the idle timeout.
    let mut kept = api.connect();
    let body = r#"{"namespace":"vars/job/api","key":"k"}"#;
    for _ in 0..3 {
        kept.write_all(request("GET", "/kv", &token, "a1", "", body).as_bytes()).unwrap();
        assert_eq!(read_response(&mut kept).0, 200);
        std::thread::sleep(SMALL.request_timeout / 2);
    }
    let answered = Instant::now();
    assert!(closed_within(&mut kept, Duration::from_secs(3)));
    assert!(answered.elapsed() >= SMALL.idle_timeout - SMALL.request_timeout / 2, "{:?}", answered.elapsed());
}

#[test]
fn over_the_cap_a_new_connection_closes_the_one_waiting_longest() {
    let api = Api::start(SMALL);
    let token = api.token("a1");
    let mut idle: Vec<TcpStream> = (0..SMALL.max_connections).map(|_| api.connect()).collect();
    std::thread::sleep(Duration::from_millis(50));
    let (status, _) = get_k(&api, &token);
    assert_eq!(status, 200, "a request on a new connection is answered at the cap");
    assert!(closed_within(&mut idle[0], Duration::from_millis(100)), "the oldest idle connection made room");
    for s in &mut idle[1..] {
        assert!(!closed_within(s, Duration::from_millis(5)));
    }
}

#[test]
fn semaphore_waits_hold_no_thread_and_at_the_cap_new_connections_are_refused() {
    let limits = ApiLimits { workers: 1, max_connections: 4, request_timeout: Duration::from_secs(5), ..SMALL };
    let api = Api::start(limits);
    let acquire = |token: &str, alloc: &str| {
        request("POST", "/semaphore/acquire", token, alloc, "", r#"{"name":"s","timeout_seconds":30}"#)
    };
    let holder = api.token("holder");
    let mut s = api.connect();
    s.write_all(acquire(&holder, "holder").as_bytes()).unwrap();
    assert_eq!(read_response(&mut s).0, 200);
    drop(s);
    let park = |alloc: &str| {
        let token = api.token(alloc);
        let mut w = api.connect();
        let waiting = api.api.state().semaphores.status("api/cli/s").waiting;
        w.write_all(acquire(&token, alloc).as_bytes()).unwrap();
        while api.api.state().semaphores.status("api/cli/s").waiting == waiting {
            std::thread::sleep(Duration::from_millis(5));
        }
        w
    };

    // Three waiters with one worker: the worker stays free for other requests.
    let mut waiters: Vec<TcpStream> = ["w0", "w1", "w2"].iter().map(|a| park(a)).collect();
    assert_eq!(threads().1, limits.workers + 2, "waits made threads");
    let mut s = api.connect();
    let status = request("GET", "/semaphore/status?name=s", &holder, "holder", "Connection: close\r\n", "");
    s.write_all(status.as_bytes()).unwrap();
    let (code, body) = read_response(&mut s);
    assert_eq!(code, 200);
    assert!(body.contains(r#""waiting":3"#), "{body}");
    drop(s);

    // Four connections open, every one being answered: a fifth is refused at once.
    waiters.push(park("w3"));
    let mut refused = api.connect();
    assert_eq!(read_response(&mut refused).0, 503);
    assert!(closed_within(&mut refused, Duration::from_secs(1)));

    // The holder's process ends: the first waiter in line gets it.
    api.api.state().semaphores.release_owner(&holder);
    let (code, body) = read_response(&mut waiters[0]);
    assert_eq!(code, 200);
    assert!(body.contains(r#""allocation_id":"w0""#), "{body}");

    // Dropping the API answers the other waits and stops every thread.
    drop(api);
    for w in &mut waiters[1..] {
        assert_eq!(read_response(w).0, 409);
    }
    let stopped = Instant::now();
    while threads().1 > 0 && stopped.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(threads().1, 0);
}

#[test]
fn http_details_are_kept_pipelining_chunks_continue_and_size_limits() {
    let api = Api::start(SMALL);
    let token = api.token("a1");
    let body = r#"{"namespace":"vars/job/api","key":"k"}"#;
    let get = request("GET", "/kv", &token, "a1", "", body);

    // Two requests in one write are answered in order on the same connection.
    let mut s = api.connect();
    s.write_all(format!("{get}{}", request("GET", "/nope", &token, "a1", "", "")).as_bytes()).unwrap();
    assert_eq!(read_response(&mut s).0, 200);
    assert_eq!(read_response(&mut s), (404, "Not found\n".to_string()));

    // A chunked body, after an interim 100 Continue.
    let mut s = api.connect();
    let head = format!(
        "PUT /kv HTTP/1.1\r\nAuthorization: Bearer {token}\r\nX-ALLOCATION-ID: a1\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    assert_eq!(read_response(&mut s).0, 100);
    let put = r#"{"namespace":"vars/job/api","key":"k","value":"chunked"}"#;
    s.write_all(format!("{:x}\r\n{put}\r\n0\r\n\r\n", put.len()).as_bytes()).unwrap();
    assert_eq!(read_response(&mut s).0, 200);
    s.write_all(get.as_bytes()).unwrap();
    assert!(read_response(&mut s).1.contains(r#""value":"chunked""#));

    // A body over the limit reaches the routes empty (400) and the connection closes.
    let mut s = api.connect();
    let big = "x".repeat(SMALL.max_body_bytes + 1);
    s.write_all(request("PUT", "/kv", &token, "a1", "", &big).as_bytes()).unwrap();
    assert_eq!(read_response(&mut s), (400, "Failed to read request body\n".to_string()));
    assert!(closed_within(&mut s, Duration::from_secs(1)));

    // Headers over the limit, and garbage, are refused and closed.
    let mut s = api.connect();
    s.write_all(format!("GET /kv HTTP/1.1\r\nX: {}\r\n\r\n", "y".repeat(SMALL.max_header_bytes)).as_bytes()).unwrap();
    assert_eq!(read_response(&mut s).0, 431);
    let mut s = api.connect();
    s.write_all(b"hello\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut s).0, 400);
    assert!(closed_within(&mut s, Duration::from_secs(1)));
}
