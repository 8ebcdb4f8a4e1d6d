//! End-to-end bounds of the runtime API (issue 14 point 9): the real `maand` binary runs a job
//! command that opens 1,000 idle TCP connections to the API. maand's thread count stays bounded
//! (read from `/proc/<maand>/task`), real requests through the helper are still answered at once,
//! and every idle connection is closed by maand — over the connection cap at once, the others
//! after the request timeout.
#![allow(clippy::unwrap_used)]

mod common;
use common::jobcmd::{cluster, command_job, reported};

/// The command's parent is maand. It reports thread counts, request latencies and when maand
/// closed the idle connections (seconds after they were opened).
const IDLE_FLOOD: &str = r#"
import resource, select, socket
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 4096), hard), hard))

maand_pid = os.getppid()
def threads():
    return len(os.listdir("/proc/%d/task" % maand_pid))

api = (os.environ["JOB_COMMAND_API_HOST"], int(os.environ["JOB_COMMAND_API_PORT"]))
before = threads()
opened_at = time.time()
idle = [socket.create_connection(api, timeout=5) for _ in range(1000)]
time.sleep(0.5)  # maand accepts them
with_idle = threads()

latencies = []
for i in range(20):
    t0 = time.time()
    maand.put_job_variable("k%d" % i, str(i)).raise_for_status()
    assert maand.get_kv_value("vars/job/flood", "k%d" % i) == str(i)
    latencies.append(time.time() - t0)
after_requests = threads()

def closed(s):
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True

by_fd, closed_at = {s.fileno(): s for s in idle}, []
poller = select.poll()
for fd in by_fd:
    poller.register(fd, select.POLLIN)
deadline = time.time() + 20
while by_fd and time.time() < deadline:
    for fd, _ in poller.poll(200):
        if closed(by_fd[fd]):
            closed_at.append(time.time() - opened_at)
            poller.unregister(fd)
            del by_fd[fd]
out("flood", {
    "maand": open("/proc/%d/comm" % maand_pid).read().strip(),
    "before": before, "with_idle": with_idle, "after_requests": after_requests,
    "latencies": latencies, "still_open": len(by_fd), "closed_at": sorted(closed_at),
})
"#;

#[test]
fn a_thousand_idle_connections_leave_threads_bounded_and_requests_answered() {
    let c = cluster(1);
    command_job(&c, "flood", &[("command_flood", &["cli"], IDLE_FLOOD)]);
    c.bucket.build().ok();
    let out = c.bucket.maand(&["job_command", "command_flood", "flood"]).ok();
    let r = reported(&c, "flood");
    assert_eq!(r["maand"], "maand", "the command's parent is maand: {r}");
    let count = |k: &str| r[k].as_u64().unwrap();
    // maand's own threads (main, output, the API's pool) plus at most a few: never one per connection.
    assert!(count("with_idle") <= count("before") + 2, "idle connections made threads: {r}");
    assert!(count("after_requests") <= count("before") + 2, "requests left threads behind: {r}");
    assert!(count("with_idle") < 40, "{r}");
    let latencies: Vec<f64> = r["latencies"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(latencies.len(), 20);
    assert!(latencies.iter().all(|l| *l < 1.0), "requests were slow with 1,000 idle connections: {r}");
    assert_eq!(c.bucket.kv("vars/job/flood", "k19").as_deref(), Some("19"), "{}", out.stderr);

    // Every idle connection was closed by maand: those over the cap at once, the rest after the
    // 10 s request timeout — not before it, and not much later.
    assert_eq!(r["still_open"], 0, "{r}");
    let closed_at: Vec<f64> = r["closed_at"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let late = closed_at.iter().filter(|t| **t >= 9.5).count();
    assert!(late > 0 && late <= 256, "at most 256 connections stay open until the timeout: {r}");
    assert!(closed_at.iter().all(|t| *t < 14.0), "{r}");
    assert!(closed_at.iter().filter(|t| **t < 5.0).count() >= 1000 - 256, "over the cap is closed at once: {r}");
}
