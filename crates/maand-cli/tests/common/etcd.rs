//! Fixtures of the etcd end-to-end tests: sandbox workers running the example job
//! `examples/etcd` (real `/usr/bin/etcd`), an etcd client loop that writes and reads through every
//! member separately and records each request, a poller of the members' leader, restart windows
//! read from the job's `data/events`, and `etcdctl` checks.
#![allow(dead_code, clippy::unwrap_used)]

use super::cluster::Cluster;
use super::grpc::{bytes_fields, put_bytes, varint_field, CallError, GrpcConn, UNAVAILABLE};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const JOB: &str = "etcd";

/// clientv3's wait between two attempts of a repeatable call.
const RETRY_BACKOFF: Duration = Duration::from_millis(25);

/// Whether Debian's `etcd-server` and `etcd-client` are installed; says what to install if not.
pub fn installed() -> bool {
    let missing: Vec<&str> =
        ["/usr/bin/etcd", "/usr/bin/etcdctl"].into_iter().filter(|p| !Path::new(p).exists()).collect();
    if !missing.is_empty() {
        println!("SKIPPED: {} not installed (apt-get install etcd-server etcd-client)", missing.join(", "));
    }
    missing.is_empty()
}

/// `examples/etcd` of this repository: the job under test, read as it is.
pub fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/etcd")
}

/// `n` sandbox workers labelled `etcd` (besides `app`) and the example job copied into the
/// bucket's `workspace/jobs/etcd`; nothing built yet. Job commands find the system's python3
/// first on PATH (see `jobcmd::cluster`).
pub fn cluster(n: usize) -> Cluster {
    let c = super::jobcmd::cluster(n);
    let path = c.bucket.path("workspace/workers.json");
    let mut workers: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for w in workers.as_array_mut().unwrap() {
        w["labels"].as_array_mut().unwrap().push("etcd".into());
    }
    c.bucket.workers(workers);
    copy_dir(&example_dir(), &c.bucket.path(&format!("workspace/jobs/{JOB}")));
    c
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "__pycache__" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// Replaces `key = "..."` in the bucket's `workspace/jobs/etcd/vars.toml`.
pub fn set_var(c: &Cluster, key: &str, value: &str) {
    let rel = format!("workspace/jobs/{JOB}/vars.toml");
    let text = c.bucket.read(&rel);
    let prefix = format!("{key} = ");
    assert!(text.lines().any(|l| l.starts_with(&prefix)), "vars.toml has no {key}:\n{text}");
    let edited: Vec<String> = text
        .lines()
        .map(|l| if l.starts_with(&prefix) { format!("{key} = \"{value}\"") } else { l.to_string() })
        .collect();
    c.bucket.write(&rel, &(edited.join("\n") + "\n"));
}

/// Seconds since the Unix epoch, the clock of `data/events` (`date +%s.%N` on the same host).
pub fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// Waits up to `timeout` for `cond`, polling every 20 ms.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The client endpoints, `(worker ip, "ip:port")`, in worker order.
pub fn endpoints(c: &Cluster) -> Vec<(String, String)> {
    let port = c.bucket.kv("maand/bucket", "etcd_client_port").expect("etcd_client_port is assigned");
    (0..c.workers.len()).map(|i| (c.ip(i), format!("{}:{port}", c.ip(i)))).collect()
}

// ---- etcdctl ------------------------------------------------------------------------------------------

/// `/usr/bin/etcdctl` against every member, with short timeouts.
pub fn etcdctl(c: &Cluster, args: &[&str]) -> super::Output {
    let urls: Vec<String> = endpoints(c).iter().map(|(_, a)| format!("http://{a}")).collect();
    let out = Command::new("/usr/bin/etcdctl")
        .arg(format!("--endpoints={}", urls.join(",")))
        .args(["--dial-timeout=2s", "--command-timeout=3s"])
        .args(args)
        .env("ETCDCTL_API", "3")
        .output()
        .unwrap();
    super::Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `etcdctl endpoint health`: endpoint URL → healthy, per member.
pub fn endpoint_health(c: &Cluster) -> BTreeMap<String, bool> {
    let out = etcdctl(c, &["endpoint", "health", "-w", "json"]);
    let rows: Vec<Value> = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("etcdctl endpoint health: {e}\n{}\n{}", out.stdout, out.stderr));
    rows.iter().map(|r| (r["endpoint"].as_str().unwrap().to_string(), r["health"].as_bool() == Some(true))).collect()
}

/// Asserts that every member is healthy, the cluster has `n` members and exactly one leader
/// that every member agrees on; returns the leader's worker ip.
pub fn assert_healthy_cluster(c: &Cluster, n: usize) -> String {
    let health = endpoint_health(c);
    assert!(health.len() == n && health.values().all(|h| *h), "endpoint health: {health:?}");
    let members = etcdctl(c, &["member", "list", "-w", "json"]).ok();
    let list: Value = serde_json::from_str(&members.stdout).unwrap();
    assert_eq!(list["members"].as_array().unwrap().len(), n, "member list: {}", members.stdout);
    let status = etcdctl(c, &["endpoint", "status", "-w", "json"]).ok();
    let rows: Vec<Value> = serde_json::from_str(&status.stdout).unwrap();
    let leaders: Vec<u64> = rows.iter().map(|r| r["Status"]["leader"].as_u64().unwrap()).collect();
    let own: Vec<u64> = rows.iter().map(|r| r["Status"]["header"]["member_id"].as_u64().unwrap()).collect();
    assert!(leaders.iter().all(|l| *l != 0 && *l == leaders[0]), "members disagree on the leader: {}", status.stdout);
    let at = own.iter().position(|id| *id == leaders[0]).unwrap_or_else(|| panic!("no leader: {}", status.stdout));
    let endpoint = rows[at]["Endpoint"].as_str().unwrap();
    endpoint.trim_start_matches("http://").split(':').next().unwrap().to_string()
}

// ---- a tiny etcd v3 client over gRPC ------------------------------------------------------------------

/// One member's client connection (reconnects after any error).
pub struct Etcd {
    pub addr: String,
    timeout: Duration,
    conn: Option<GrpcConn>,
}

/// What `Maintenance/Status` says about a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub member_id: u64,
    /// The member this one follows (0: none known).
    pub leader: u64,
    pub raft_term: u64,
}

impl Etcd {
    pub fn new(addr: &str, timeout: Duration) -> Etcd {
        Etcd { addr: addr.to_string(), timeout, conn: None }
    }

    fn call(&mut self, path: &str, msg: &[u8], timeout: Duration) -> Result<Vec<u8>, CallError> {
        if self.conn.is_none() {
            self.conn = Some(GrpcConn::connect(&self.addr, timeout).map_err(CallError::transport)?);
        }
        let result = self.conn.as_mut().unwrap().unary(path, msg, timeout);
        if matches!(result, Err(CallError { code: None, .. })) {
            self.conn = None;
        }
        result
    }

    /// A call repeated every 25 ms while the server answers Unavailable (leader changed, no
    /// leader yet, a proposal lost while leadership moved), each attempt bounded by the request
    /// timeout and all of them by `budget`. The answer and the number of retries.
    fn retrying_unavailable(&mut self, path: &str, msg: &[u8], budget: Duration) -> (Result<Vec<u8>, CallError>, u32) {
        let deadline = Instant::now() + budget;
        let mut retries = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let result = self.call(path, msg, left.min(self.timeout).max(Duration::from_millis(1)));
            match result {
                Err(CallError { code: Some(UNAVAILABLE), .. })
                    if deadline.saturating_duration_since(Instant::now()) > RETRY_BACKOFF * 2 =>
                {
                    retries += 1;
                    std::thread::sleep(RETRY_BACKOFF);
                }
                other => return (other, retries),
            }
        }
    }

    /// A write of `value` to `key`, and the number of retries. etcd (Raft) drops a write that a
    /// follower forwards while leadership moves and answers Unavailable when the request times
    /// out; clientv3 does not repeat writes (one may have been applied), but this write is
    /// idempotent (the same value again), so, as an application would, it is sent once more.
    pub fn put(&mut self, key: &str, value: &str) -> (Result<(), CallError>, u32) {
        let mut req = Vec::new();
        put_bytes(&mut req, 1, key.as_bytes());
        put_bytes(&mut req, 2, value.as_bytes());
        let (resp, retries) = self.retrying_unavailable("/etcdserverpb.KV/Put", &req, self.timeout * 2);
        (resp.map(|_| ()), retries)
    }

    /// A linearizable read: the value (None when the key does not exist) and how many times it
    /// was retried on Unavailable within the request timeout, as clientv3 does for reads.
    pub fn get(&mut self, key: &str) -> (Result<Option<String>, CallError>, u32) {
        let mut req = Vec::new();
        put_bytes(&mut req, 1, key.as_bytes());
        let (resp, retries) = self.retrying_unavailable("/etcdserverpb.KV/Range", &req, self.timeout);
        let value = resp.map(|resp| {
            bytes_fields(&resp, 2)
                .first()
                .and_then(|kv| bytes_fields(kv, 5).first().map(|v| String::from_utf8_lossy(v).into_owned()))
        });
        (value, retries)
    }

    pub fn status(&mut self) -> Result<Status, CallError> {
        let resp = self.call("/etcdserverpb.Maintenance/Status", &[], self.timeout)?;
        let header = bytes_fields(&resp, 1).first().map(|h| h.to_vec()).unwrap_or_default();
        Ok(Status {
            member_id: varint_field(&header, 2).ok_or_else(|| CallError::transport("status without member_id"))?,
            leader: varint_field(&resp, 4).unwrap_or(0),
            raft_term: varint_field(&resp, 6).unwrap_or(0),
        })
    }
}

// ---- the client loop ----------------------------------------------------------------------------------

/// One request of the client loop.
#[derive(Debug, Clone)]
pub struct Request {
    pub op: &'static str,
    /// When it was sent (Unix seconds) and how long it took.
    pub at: f64,
    pub took: f64,
    pub error: Option<String>,
    /// Answers "Unavailable" retried before this outcome (see `Etcd::get` and `Etcd::put`).
    pub retries: u32,
}

impl Request {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
    pub fn end(&self) -> f64 {
        self.at + self.took
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {:.3} took {:.3}s: {}", self.op, self.at, self.took, self.error.as_deref().unwrap_or("ok"))?;
        if self.retries > 0 {
            write!(f, " (after {} retries on Unavailable)", self.retries)?;
        }
        Ok(())
    }
}

/// Background threads, one per member: every `period`, write a fresh value of the member's own key
/// through that member, then read it back through the same member (a read that does not return
/// the value just written is an error). Each request is bounded by `timeout`.
pub struct ClientLoop {
    stop: Arc<AtomicBool>,
    threads: Vec<(String, JoinHandle<Vec<Request>>)>,
}

impl ClientLoop {
    pub fn start(endpoints: &[(String, String)], period: Duration, timeout: Duration) -> ClientLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = endpoints
            .iter()
            .map(|(ip, addr)| {
                let (stop, ip2, addr) = (stop.clone(), ip.clone(), addr.clone());
                let handle = std::thread::spawn(move || {
                    let mut etcd = Etcd::new(&addr, timeout);
                    let key = format!("/maand-e2e/{ip2}");
                    let mut records = Vec::new();
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let tick = Instant::now();
                        n += 1;
                        let value = n.to_string();
                        let (at, started) = (now(), Instant::now());
                        let (put, retries) = etcd.put(&key, &value);
                        let wrote = put.is_ok();
                        records.push(Request {
                            op: "put",
                            at,
                            took: started.elapsed().as_secs_f64(),
                            error: put.err().map(|e| e.to_string()),
                            retries,
                        });
                        if wrote {
                            let (at, started) = (now(), Instant::now());
                            let (read, retries) = etcd.get(&key);
                            let error = match read {
                                Ok(Some(v)) if v == value => None,
                                Ok(other) => Some(format!("read {other:?} after writing {value:?}")),
                                Err(e) => Some(e.to_string()),
                            };
                            let took = started.elapsed().as_secs_f64();
                            records.push(Request { op: "get", at, took, error, retries });
                        }
                        if let Some(rest) = period.checked_sub(tick.elapsed()) {
                            std::thread::sleep(rest);
                        }
                    }
                    records
                });
                (ip.clone(), handle)
            })
            .collect();
        ClientLoop { stop, threads }
    }

    /// Stops the threads; worker ip → its requests in order.
    pub fn stop(mut self) -> BTreeMap<String, Vec<Request>> {
        self.stop.store(true, Ordering::Relaxed);
        std::mem::take(&mut self.threads).into_iter().map(|(ip, h)| (ip, h.join().unwrap())).collect()
    }
}

impl Drop for ClientLoop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for (_, h) in std::mem::take(&mut self.threads) {
            let _ = h.join();
        }
    }
}

// ---- leader polling -----------------------------------------------------------------------------------

/// One status answer of the leader poller.
#[derive(Debug, Clone)]
pub struct LeaderSample {
    pub at: f64,
    pub ip: String,
    pub status: Option<Status>,
}

/// A background thread asking every member for its status every `period`.
pub struct LeaderPoll {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<LeaderSample>>>,
    thread: Option<JoinHandle<()>>,
}

impl LeaderPoll {
    pub fn start(endpoints: &[(String, String)], period: Duration) -> LeaderPoll {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (stop2, samples2) = (stop.clone(), samples.clone());
        let mut members: Vec<(String, Etcd)> =
            endpoints.iter().map(|(ip, a)| (ip.clone(), Etcd::new(a, Duration::from_millis(300)))).collect();
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let tick = Instant::now();
                for (ip, etcd) in &mut members {
                    let sample = LeaderSample { at: now(), ip: ip.clone(), status: etcd.status().ok() };
                    samples2.lock().unwrap().push(sample);
                }
                if let Some(rest) = period.checked_sub(tick.elapsed()) {
                    std::thread::sleep(rest);
                }
            }
        });
        LeaderPoll { stop, samples, thread: Some(thread) }
    }

    pub fn samples(&self) -> Vec<LeaderSample> {
        self.samples.lock().unwrap().clone()
    }

    pub fn stop(mut self) -> Leaders {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        Leaders::from_samples(self.samples())
    }
}

impl Drop for LeaderPoll {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The leaders the poller saw, in raft term order.
#[derive(Debug)]
pub struct Leaders {
    pub samples: Vec<LeaderSample>,
    /// member id → worker ip (from the members' own answers).
    pub ips: BTreeMap<u64, String>,
    /// `(term, leader ip)`: the distinct leaders, by the term they were seen in, consecutive
    /// repeats collapsed; a member that lags behind by a term cannot make a leader reappear.
    pub terms: Vec<(u64, String)>,
}

impl Leaders {
    fn from_samples(samples: Vec<LeaderSample>) -> Leaders {
        let ips: BTreeMap<u64, String> =
            samples.iter().filter_map(|s| s.status.map(|st| (st.member_id, s.ip.clone()))).collect();
        let mut seen: BTreeMap<u64, u64> = BTreeMap::new();
        for s in &samples {
            if let Some(st) = s.status.filter(|st| st.leader != 0) {
                seen.entry(st.raft_term).or_insert(st.leader);
            }
        }
        let mut terms: Vec<(u64, String)> = Vec::new();
        for (term, leader) in seen {
            let ip = ips.get(&leader).cloned().unwrap_or_else(|| format!("member {leader:x}"));
            if terms.last().map(|(_, last)| last != &ip).unwrap_or(true) {
                terms.push((term, ip));
            }
        }
        Leaders { samples, ips, terms }
    }

    /// The leader ips in the order they led.
    pub fn sequence(&self) -> Vec<String> {
        self.terms.iter().map(|(_, ip)| ip.clone()).collect()
    }

    pub fn changes(&self) -> usize {
        self.terms.len().saturating_sub(1)
    }
}

// ---- restart windows ----------------------------------------------------------------------------------

/// A `data/events` line of the etcd job: `<what> <unix time> <worker ip>`.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: String,
    pub at: f64,
}

/// The etcd job's `data/events` file of every worker, in worker order (host paths).
pub fn event_files(c: &Cluster) -> Vec<PathBuf> {
    let bucket = c.bucket_id();
    c.workers.iter().map(|w| w.opt_dir().join(format!("worker/{bucket}/jobs/{JOB}/data/events"))).collect()
}

/// The events of one `data/events` file at or after `since` (none when there is no file yet).
pub fn read_events(file: &Path, since: f64) -> Vec<Event> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let kind = parts.next()?.to_string();
            let at: f64 = parts.next()?.parse().ok()?;
            (at >= since).then_some(Event { kind, at })
        })
        .collect()
}

/// The etcd job's events on worker `i` at or after `since`.
pub fn events_since(c: &Cluster, i: usize, since: f64) -> Vec<Event> {
    read_events(&c.worker_path(i, &format!("jobs/{JOB}/data/events")), since)
}

/// The time of the first `kind` event in `events`.
pub fn first(events: &[Event], kind: &str) -> Option<f64> {
    events.iter().find(|e| e.kind == kind).map(|e| e.at)
}

/// When a member was down for a restart: from its `stop` (the target began) to its `started`
/// (it answered healthy again; the end of the recording when it never did). `stopped` is when its
/// process had exited: for a leader, the hand-over of leadership lies between `stop` and `stopped`.
#[derive(Debug, Clone)]
pub struct Window {
    pub ip: String,
    pub stop: f64,
    pub stopped: f64,
    pub started: f64,
}

impl Window {
    /// Whether a request overlaps the window widened by `margin` seconds on both sides.
    pub fn covers(&self, r: &Request, margin: f64) -> bool {
        r.end() >= self.stop - margin && r.at <= self.started + margin
    }
}

/// Every restart window of the etcd job on worker `i` since `since` (`until` closes a window
/// whose member never answered healthy).
pub fn restart_windows(c: &Cluster, i: usize, since: f64, until: f64) -> Vec<Window> {
    let events = events_since(c, i, since);
    let mut windows = Vec::new();
    for (k, e) in events.iter().enumerate() {
        if e.kind == "stop" {
            let after = |kind: &str| events[k..].iter().find(|s| s.kind == kind).map(|s| s.at).unwrap_or(until);
            windows.push(Window { ip: c.ip(i), stop: e.at, stopped: after("stopped"), started: after("started") });
        }
    }
    windows
}

/// Failed requests through one member that none of its own restart `windows` (widened by
/// `margin`) covers. The client retries what etcd answers Unavailable (see `Etcd::get` and
/// `Etcd::put`), so a member that is not restarting must fail nothing.
pub fn failures_outside<'a>(records: &'a [Request], windows: &[Window], margin: f64) -> Vec<&'a Request> {
    records.iter().filter(|r| !r.ok() && !windows.iter().any(|w| w.covers(r, margin))).collect()
}

/// The longest time (seconds) between two successful writes on any endpoint within
/// `[from, to]`, and when it began.
pub fn longest_write_gap(records: &BTreeMap<String, Vec<Request>>, from: f64, to: f64) -> (f64, f64) {
    let mut done: Vec<f64> = records.values().flatten().filter(|r| r.op == "put" && r.ok()).map(Request::end).collect();
    done.retain(|t| *t >= from && *t <= to);
    done.sort_by(f64::total_cmp);
    let mut points = vec![from];
    points.extend(done);
    points.push(to);
    points.windows(2).map(|w| (w[1] - w[0], w[0])).fold((0.0, from), |best, g| if g.0 > best.0 { g } else { best })
}

/// A readable dump of the recorded requests (failed ones, and counts), for assertion messages.
pub fn describe(records: &BTreeMap<String, Vec<Request>>) -> String {
    let mut out = String::new();
    for (ip, reqs) in records {
        let failed = reqs.iter().filter(|r| !r.ok()).count();
        let retried = reqs.iter().filter(|r| r.ok() && r.retries > 0).count();
        let notable: Vec<String> =
            reqs.iter().filter(|r| !r.ok() || r.retries > 0).map(|r| format!("    {r}")).collect();
        out.push_str(&format!(
            "  {ip}: {} requests, {failed} failed, {retried} succeeded after retries\n{}",
            reqs.len(),
            notable.join("\n")
        ));
        if !notable.is_empty() {
            out.push('\n');
        }
    }
    out
}
