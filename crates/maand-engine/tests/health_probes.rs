//! Manifest probes through `check_job`: tcp and http against local listeners, ssh through the
//! recording executor, bounded timeouts, retries while waiting, skips, extra checks and messages.
#![allow(clippy::unwrap_used)]

mod health_support;

use health_support::*;
use maand_core::{ErrorKind, HealthCheckSpec};
use maand_engine::health::{
    check_job, check_job_streaming, ExtraCheck, HealthOutcome, HealthTarget, NoExtraChecks, ProbeAllocation,
};
use maand_remote::recording::Reply;
use maand_remote::{Call, RecordingExecutor, Stream, WorkerAddr};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

fn local() -> Vec<ProbeAllocation> {
    vec![ProbeAllocation { worker: WorkerAddr::new("127.0.0.1", None) }]
}

fn ports(list: &[(&str, u16)]) -> BTreeMap<String, u16> {
    list.iter().map(|(n, p)| (n.to_string(), *p)).collect()
}

/// Runs `check_job` for job `api` and returns its result with the reported lines.
fn run(
    spec: Option<&HealthCheckSpec>,
    allocations: &[ProbeAllocation],
    ports: &BTreeMap<String, u16>,
    wait: bool,
) -> (maand_core::Result<HealthOutcome>, Vec<String>) {
    run_with(spec, allocations, ports, wait, &RecordingExecutor::new(), &NoExtraChecks)
}

fn run_with(
    spec: Option<&HealthCheckSpec>,
    allocations: &[ProbeAllocation],
    ports: &BTreeMap<String, u16>,
    wait: bool,
    executor: &RecordingExecutor,
    extra: &dyn ExtraCheck,
) -> (maand_core::Result<HealthOutcome>, Vec<String>) {
    let lines = Lines::default();
    let target = HealthTarget { job: "api", spec, allocations, ports, use_sudo: false, require_live_workers: false };
    let result = check_job(&target, executor, extra, wait, &|l| lines.push(l));
    (result, lines.all())
}

#[test]
fn tcp_probe_passes_on_a_listener_and_names_worker_port_and_reason_when_refused() {
    let up = silent_server();
    let down = free_port();
    let s = spec(vec![tcp("api_port")], 1, 3, 0);

    let (result, lines) = run(Some(&s), &local(), &ports(&[("api_port", up)]), false);
    assert_eq!(result.unwrap(), HealthOutcome::Passed);
    assert_eq!(lines, vec!["health check passed: api"]);

    let (result, lines) = run(Some(&s), &local(), &ports(&[("api_port", down)]), false);
    let e = result.unwrap_err();
    assert_eq!(e.kind, ErrorKind::HealthCheckFailed);
    assert_eq!(
        e.to_string(),
        format!("health check failed: job api: 127.0.0.1 tcp api_port {down}: connection refused")
    );
    assert_eq!(lines, vec!["health check failed: api"], "no retries without wait");
}

#[test]
fn tcp_probe_connect_timeout_is_bounded() {
    let (_listener, _held, port) = saturated_listener();
    let s = spec(vec![tcp("api_port")], 1, 1, 0);
    let started = Instant::now();
    let (result, _) = run(Some(&s), &local(), &ports(&[("api_port", port)]), false);
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert_eq!(
        result.unwrap_err().to_string(),
        format!("health check failed: job api: 127.0.0.1 tcp api_port {port}: timed out after 1 s")
    );
}

#[test]
fn http_probe_checks_the_exact_status_without_following_redirects() {
    let ok = http_server(200);
    let unavailable = http_server(503);
    let redirect = http_server(302);
    let pass = |port: u16, expect: u16| {
        let s = spec(vec![http("web", "/health", expect)], 1, 1, 0);
        run(Some(&s), &local(), &ports(&[("web", port)]), false).0
    };
    assert_eq!(pass(ok, 200).unwrap(), HealthOutcome::Passed);
    assert_eq!(pass(redirect, 302).unwrap(), HealthOutcome::Passed);
    assert_eq!(
        pass(unavailable, 200).unwrap_err().to_string(),
        format!(
            "health check failed: job api: 127.0.0.1 http web GET http://127.0.0.1:{unavailable}/health: HTTP 503 (expected 200)"
        )
    );
    assert!(pass(redirect, 200).unwrap_err().to_string().ends_with("HTTP 302 (expected 200)"));
    assert!(pass(ok, 204).unwrap_err().to_string().ends_with("HTTP 200 (expected 204)"));
    let refused = free_port();
    assert!(pass(refused, 200).unwrap_err().to_string().ends_with(": connection refused"));
}

#[test]
fn http_probe_timeout_is_bounded() {
    let port = silent_server();
    let s = spec(vec![http("web", "/", 200)], 1, 1, 0);
    let started = Instant::now();
    let (result, _) = run(Some(&s), &local(), &ports(&[("web", port)]), false);
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert_eq!(
        result.unwrap_err().to_string(),
        format!("health check failed: job api: 127.0.0.1 http web GET http://127.0.0.1:{port}/: timed out after 1 s")
    );
}

#[test]
fn a_port_without_a_number_fails_with_advice() {
    let s = spec(vec![tcp("api_port")], 1, 1, 0);
    let (result, _) = run(Some(&s), &local(), &ports(&[]), false);
    assert_eq!(
        result.unwrap_err().to_string(),
        "health check failed: job api: 127.0.0.1 tcp api_port: port api_port has no number in the catalog (run maand build)"
    );
}

#[test]
fn waiting_retries_until_the_listener_appears() {
    let port = free_port();
    let opener = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        std::net::TcpListener::bind(("127.0.0.1", port)).unwrap()
    });
    let s = spec(vec![tcp("api_port")], 1, 10, 1);
    let (result, lines) = run(Some(&s), &local(), &ports(&[("api_port", port)]), true);
    let _listener = opener.join().unwrap();
    assert_eq!(result.unwrap(), HealthOutcome::Passed);
    assert_eq!(lines.first().unwrap(), "health check failed: api (attempt 1/10), retrying...");
    assert_eq!(lines.last().unwrap(), "health check passed: api");
    assert!(lines.len() >= 3 && lines.len() <= 5, "{lines:?}");
}

#[test]
fn waiting_gives_up_after_the_manifest_attempts() {
    let port = free_port();
    let s = spec(vec![tcp("api_port")], 1, 3, 0);
    let (result, lines) = run(Some(&s), &local(), &ports(&[("api_port", port)]), true);
    assert!(result.unwrap_err().to_string().ends_with(&format!("tcp api_port {port}: connection refused")));
    assert_eq!(
        lines,
        vec![
            "health check failed: api (attempt 1/3), retrying...",
            "health check failed: api (attempt 2/3), retrying...",
            "health check failed: api",
        ]
    );
}

#[test]
fn every_probe_runs_on_every_allocation_and_each_failure_is_named() {
    let up = silent_server();
    let down = free_port();
    let allocations = vec![
        ProbeAllocation { worker: WorkerAddr::new("127.0.0.1", None) },
        ProbeAllocation { worker: WorkerAddr::new("127.0.0.2", None) },
    ];
    let s = spec(vec![tcp("up"), tcp("down"), ssh("true")], 1, 1, 0);
    let exec = RecordingExecutor::new();
    let (result, _) =
        run_with(Some(&s), &allocations, &ports(&[("up", up), ("down", down)]), false, &exec, &NoExtraChecks);
    let text = result.unwrap_err().to_string();
    assert!(text.contains(&format!("127.0.0.1 tcp down {down}: connection refused")), "{text}");
    assert!(text.contains(&format!("127.0.0.2 tcp down {down}: connection refused")), "{text}");
    // The listener is bound to 127.0.0.1 only: each allocation is probed at its own address.
    assert!(text.contains(&format!("127.0.0.2 tcp up {up}: connection refused")), "{text}");
    assert!(!text.contains("127.0.0.1 tcp up"), "{text}");
    let workers: Vec<String> = exec.calls().iter().map(|c| c.worker().host.clone()).collect();
    assert_eq!(workers.len(), 2, "one ssh probe per allocation");
    assert!(workers.contains(&"127.0.0.1".to_string()) && workers.contains(&"127.0.0.2".to_string()));
}

#[test]
fn ssh_probe_runs_the_command_bounded_by_the_timeout() {
    let allocations = vec![ProbeAllocation { worker: WorkerAddr::new("10.0.0.1", Some(2222)) }];
    let s = spec(vec![ssh("systemctl is-active 'api'")], 7, 1, 0);
    let exec = RecordingExecutor::new();
    let (result, _) = run_with(Some(&s), &allocations, &ports(&[]), false, &exec, &NoExtraChecks);
    assert_eq!(result.unwrap(), HealthOutcome::Passed);
    let calls = exec.calls();
    assert_eq!(calls.len(), 1);
    let Call::Script { worker, script, timeout_secs } = &calls[0] else { panic!("expected a script call") };
    assert_eq!(worker, &WorkerAddr::new("10.0.0.1", Some(2222)));
    assert_eq!(*timeout_secs, Some(7));
    assert!(script.ends_with("\nbash -c 'systemctl is-active '\\''api'\\'''\n"), "{script}");

    // Under use_sudo the command gets a login shell, as `sudo -E bash -lc` did in the Go maand.
    let exec = RecordingExecutor::new();
    let lines = Lines::default();
    let target = HealthTarget {
        job: "api",
        spec: Some(&s),
        allocations: &allocations,
        ports: &ports(&[]),
        use_sudo: true,
        require_live_workers: false,
    };
    check_job(&target, &exec, &NoExtraChecks, false, &|l| lines.push(l)).unwrap();
    assert!(exec.calls()[0].script().unwrap().contains("\nbash -lc 'systemctl"), "{:?}", exec.calls());
}

#[test]
fn ssh_probe_failures_say_exit_code_output_timeout_or_connection_error() {
    let allocations = vec![ProbeAllocation { worker: WorkerAddr::new("10.0.0.1", None) }];
    let s = spec(vec![ssh("check-api")], 2, 1, 0);
    let failure = |reply: maand_core::Result<Reply>| {
        let reply = Mutex::new(Some(reply));
        let exec = RecordingExecutor::with_responder(move |_| reply.lock().unwrap().take().unwrap());
        run_with(Some(&s), &allocations, &ports(&[]), false, &exec, &NoExtraChecks).0.unwrap_err().to_string()
    };
    let prefix = "health check failed: job api: 10.0.0.1 ssh \"check-api\"";
    assert_eq!(failure(Ok(Reply::exit(1))), format!("{prefix}: exit 1"));
    assert_eq!(
        failure(Ok(Reply::exit(3).with_line(Stream::Stdout, "checking").with_line(Stream::Stderr, "inactive"))),
        format!("{prefix}: exit 3 (inactive)")
    );
    assert_eq!(failure(Ok(Reply::exit(124))), format!("{prefix}: timed out after 2 s"));
    assert_eq!(
        failure(Err(maand_core::Error::msg("worker 10.0.0.1: ssh connection failed: Connection refused"))),
        format!("{prefix}: ssh connection failed: Connection refused")
    );
}

#[test]
fn ssh_probe_output_streams_with_its_source() {
    let allocations = local();
    let s = spec(vec![ssh("status")], 1, 1, 0);
    let exec = RecordingExecutor::with_responder(|_| Ok(Reply::ok().with_line(Stream::Stdout, "active")));
    let streamed = Lines::default();
    let target = HealthTarget {
        job: "api",
        spec: Some(&s),
        allocations: &allocations,
        ports: &ports(&[]),
        use_sudo: false,
        require_live_workers: false,
    };
    let outcome = check_job_streaming(&target, &exec, &NoExtraChecks, false, &|_| {}, &|source, stream, line| {
        streamed.push(&format!("{source} {stream:?} {line}"))
    })
    .unwrap();
    assert_eq!(outcome, HealthOutcome::Passed);
    assert_eq!(streamed.all(), vec!["api@127.0.0.1 Stdout active"]);
}

#[test]
fn skips_without_allocations_or_anything_to_check() {
    let s = spec(vec![tcp("p")], 1, 1, 0);
    let (result, lines) = run(Some(&s), &[], &ports(&[("p", 1)]), true);
    assert_eq!(result.unwrap(), HealthOutcome::Skipped("no active allocations".into()));
    assert_eq!(lines, vec!["health check skipped: api (no active allocations)"]);

    for spec in [None, Some(spec(vec![], 5, 60, 2))] {
        let (result, lines) = run(spec.as_ref(), &local(), &ports(&[]), true);
        assert_eq!(result.unwrap(), HealthOutcome::Skipped("no health_check config or commands".into()));
        assert_eq!(lines, vec!["health check skipped: api (no health_check config or commands)"]);
    }
}

/// Extra checks that fail `fail_first` times, counting calls.
struct CountingExtra {
    calls: AtomicUsize,
    fail_first: usize,
}

impl ExtraCheck for CountingExtra {
    fn has_checks(&self, job: &str) -> bool {
        job == "api"
    }
    fn run(&self, _job: &str, _allocations: &[String]) -> Result<(), String> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n < self.fail_first {
            Err(format!("command_health_check failed on 127.0.0.1 (call {})", n + 1))
        } else {
            Ok(())
        }
    }
}

#[test]
fn extra_checks_count_without_probes_and_run_only_after_probes_pass() {
    // Only extra checks: not skipped, retried with the manifest's wait settings.
    let extra = CountingExtra { calls: AtomicUsize::new(0), fail_first: 1 };
    let s = spec(vec![], 1, 2, 0);
    let (result, lines) = run_with(Some(&s), &local(), &ports(&[]), true, &RecordingExecutor::new(), &extra);
    assert_eq!(result.unwrap(), HealthOutcome::Passed);
    assert_eq!(extra.calls.load(Ordering::SeqCst), 2);
    assert_eq!(lines, vec!["health check failed: api (attempt 1/2), retrying...", "health check passed: api"]);

    // A failing extra check is the job's failure.
    let extra = CountingExtra { calls: AtomicUsize::new(0), fail_first: 5 };
    let (result, _) = run_with(None, &local(), &ports(&[]), false, &RecordingExecutor::new(), &extra);
    assert_eq!(
        result.unwrap_err().to_string(),
        "health check failed: job api: command_health_check failed on 127.0.0.1 (call 1)"
    );

    // A failing probe stops the try before the extra checks.
    let extra = CountingExtra { calls: AtomicUsize::new(0), fail_first: 0 };
    let s = spec(vec![tcp("p")], 1, 1, 0);
    let (result, _) =
        run_with(Some(&s), &local(), &ports(&[("p", free_port())]), false, &RecordingExecutor::new(), &extra);
    assert!(result.is_err());
    assert_eq!(extra.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn https_probes_speak_tls() {
    // A server answering plain HTTP to the TLS hello: the probe fails with a TLS reason (https is
    // supported, not refused as unknown).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut stream, _) = listener.accept().unwrap();
        let _ = stream.read(&mut [0u8; 1024]);
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        std::thread::sleep(Duration::from_millis(200));
    });
    let s = HealthCheckSpec {
        checks: vec![maand_core::ProbeKind::Http {
            port: "web".into(),
            path: "/".into(),
            expect_status: 200,
            scheme: "https".into(),
        }],
        ..spec(vec![], 1, 1, 0)
    };
    let (result, _) = run(Some(&s), &local(), &ports(&[("web", port)]), false);
    let text = result.unwrap_err().to_string();
    assert!(
        text.starts_with(&format!("health check failed: job api: 127.0.0.1 http web GET https://127.0.0.1:{port}/: ")),
        "{text}"
    );
    assert!(!text.ends_with("timed out after 1 s"), "{text}");
}

#[test]
fn a_gate_requiring_live_workers_fails_on_a_worker_that_does_not_answer_ssh() {
    // The service port still accepts connections (a frozen host's kernel completes them).
    let up = silent_server();
    let s = spec(vec![tcp("api_port")], 1, 2, 0);
    let allocations = local();
    let exec = RecordingExecutor::new();
    exec.set_unresponsive("127.0.0.1", true);
    let ports = ports(&[("api_port", up)]);
    let target = |require_live_workers| HealthTarget {
        job: "api",
        spec: Some(&s),
        allocations: &allocations,
        ports: &ports,
        use_sudo: false,
        require_live_workers,
    };
    let lines = Lines::default();
    assert_eq!(check_job(&target(false), &exec, &NoExtraChecks, true, &|_| {}).unwrap(), HealthOutcome::Passed);
    let e = check_job(&target(true), &exec, &NoExtraChecks, true, &|l| lines.push(l)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::HealthCheckFailed);
    assert_eq!(
        e.to_string(),
        "health check failed: job api: worker 127.0.0.1 ssh port 22: connected, but no SSH banner"
    );
    assert_eq!(lines.all(), ["health check failed: api (attempt 1/2), retrying...", "health check failed: api"]);

    exec.set_unresponsive("127.0.0.1", false);
    assert_eq!(check_job(&target(true), &exec, &NoExtraChecks, false, &|_| {}).unwrap(), HealthOutcome::Passed);
}
