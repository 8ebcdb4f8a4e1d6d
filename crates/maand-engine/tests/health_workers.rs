//! The `maand health_check` worker gate: each worker's SSH port must accept a connection and send
//! the SSH banner, within 5 s.
#![allow(clippy::unwrap_used)]

mod health_support;

use health_support::*;
use maand_core::ErrorKind;
use maand_engine::health::check_workers;
use maand_remote::WorkerAddr;
use std::time::{Duration, Instant};

#[test]
fn no_workers_is_a_skip() {
    let lines = Lines::default();
    check_workers(&ssh_executor(22), &[], 4, true, &|l| lines.push(l)).unwrap();
    assert_eq!(lines.all(), vec!["worker health check skipped: no workers"]);
}

#[test]
fn uses_each_workers_own_port_else_the_default() {
    let own = ssh_server();
    let default = ssh_server();
    let workers = vec![WorkerAddr::new("127.0.0.1", Some(own)), WorkerAddr::new("127.0.0.1", None)];
    let lines = Lines::default();
    check_workers(&ssh_executor(default), &workers, 4, false, &|l| lines.push(l)).unwrap();
    assert_eq!(lines.all(), vec!["worker health check passed"]);

    let down = free_port();
    let e = check_workers(&ssh_executor(down), &workers, 4, false, &|_| {}).unwrap_err();
    assert_eq!(e.to_string(), format!("health check failed: worker 127.0.0.1 ssh port {down}: connection refused"));
}

#[test]
fn every_worker_that_does_not_answer_is_named_in_order() {
    let up = ssh_server();
    let (a, b) = (free_port(), free_port());
    let workers = vec![
        WorkerAddr::new("127.0.0.1", Some(a)),
        WorkerAddr::new("127.0.0.1", Some(up)),
        WorkerAddr::new("127.0.0.1", Some(b)),
    ];
    let lines = Lines::default();
    let e = check_workers(&ssh_executor(22), &workers, 4, false, &|l| lines.push(l)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::HealthCheckFailed);
    assert_eq!(
        e.detail,
        format!("worker 127.0.0.1 ssh port {a}: connection refused; worker 127.0.0.1 ssh port {b}: connection refused")
    );
    assert_eq!(lines.all(), vec!["worker health check failed"]);
}

#[test]
fn waiting_retries_until_the_port_opens() {
    let port = free_port();
    let opener = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let (mut stream, _) = listener.accept().unwrap();
        std::io::Write::write_all(&mut stream, b"SSH-2.0-late\r\n").unwrap();
        (listener, stream)
    });
    let lines = Lines::default();
    let exec = ssh_executor(22);
    check_workers(&exec, &[WorkerAddr::new("127.0.0.1", Some(port))], 4, true, &|l| lines.push(l)).unwrap();
    let _open = opener.join().unwrap();
    let lines = lines.all();
    assert_eq!(lines.first().unwrap(), "worker health check failed (attempt 1/30), retrying...");
    assert_eq!(lines.last().unwrap(), "worker health check passed");
    assert!(lines.len() <= 5, "{lines:?}");
}

#[test]
fn a_port_that_accepts_but_sends_no_banner_fails_after_5_seconds() {
    // A frozen host: its kernel completes the connection, nothing answers on it.
    let silent = silent_server();
    let up = ssh_server();
    let workers = vec![WorkerAddr::new("127.0.0.1", Some(up)), WorkerAddr::new("127.0.0.1", Some(silent))];
    let started = Instant::now();
    let e = check_workers(&ssh_executor(22), &workers, 4, false, &|_| {}).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
    assert_eq!(
        e.detail,
        format!(
            "worker 127.0.0.1 ssh port {silent}: connected, but no SSH banner within 5 s (the worker or its sshd is \
             frozen or overloaded)"
        )
    );
}

#[test]
fn hanging_workers_are_checked_in_parallel_and_time_out_after_5_seconds() {
    let (_listener, _held, port) = saturated_listener();
    let workers = vec![WorkerAddr::new("127.0.0.1", Some(port)); 3];
    let started = Instant::now();
    let e = check_workers(&ssh_executor(22), &workers, 4, false, &|_| {}).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
    let one = format!("worker 127.0.0.1 ssh port {port}: timed out after 5 s");
    assert_eq!(e.detail, [one.as_str(); 3].join("; "));
}
