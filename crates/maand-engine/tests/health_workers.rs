//! The `maand health_check` worker gate: TCP connect to each worker's SSH port.
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
    check_workers(&[], 22, true, &|l| lines.push(l)).unwrap();
    assert_eq!(lines.all(), vec!["worker health check skipped: no workers"]);
}

#[test]
fn uses_each_workers_own_port_else_the_default() {
    let own = silent_server();
    let default = silent_server();
    let workers = vec![WorkerAddr::new("127.0.0.1", Some(own)), WorkerAddr::new("127.0.0.1", None)];
    let lines = Lines::default();
    check_workers(&workers, default, false, &|l| lines.push(l)).unwrap();
    assert_eq!(lines.all(), vec!["worker health check passed"]);

    let down = free_port();
    let e = check_workers(&workers, down, false, &|_| {}).unwrap_err();
    assert_eq!(e.to_string(), format!("health check failed: worker 127.0.0.1 ssh port {down}: connection refused"));
}

#[test]
fn every_unreachable_worker_is_named() {
    let up = silent_server();
    let (a, b) = (free_port(), free_port());
    let workers = vec![
        WorkerAddr::new("127.0.0.1", Some(a)),
        WorkerAddr::new("127.0.0.1", Some(up)),
        WorkerAddr::new("127.0.0.1", Some(b)),
    ];
    let lines = Lines::default();
    let e = check_workers(&workers, 22, false, &|l| lines.push(l)).unwrap_err();
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
        std::net::TcpListener::bind(("127.0.0.1", port)).unwrap()
    });
    let lines = Lines::default();
    check_workers(&[WorkerAddr::new("127.0.0.1", Some(port))], 22, true, &|l| lines.push(l)).unwrap();
    let _listener = opener.join().unwrap();
    let lines = lines.all();
    assert_eq!(lines.first().unwrap(), "worker health check failed (attempt 1/30), retrying...");
    assert_eq!(lines.last().unwrap(), "worker health check passed");
    assert!(lines.len() <= 5, "{lines:?}");
}

#[test]
fn a_hanging_worker_times_out_after_5_seconds() {
    let (_listener, _held, port) = saturated_listener();
    let started = Instant::now();
    let e = check_workers(&[WorkerAddr::new("127.0.0.1", Some(port))], 22, false, &|_| {}).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
    assert_eq!(e.detail, format!("worker 127.0.0.1 ssh port {port}: timed out after 5 s"));
}
