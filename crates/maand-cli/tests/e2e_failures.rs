//! End-to-end failure handling: a worker killed or frozen in the middle of a rollout.
#![allow(clippy::unwrap_used)]

mod common;
use common::cluster::{Cluster, COUNTING_MAKEFILE};
use serde_json::json;
use std::time::{Duration, Instant};

fn slow_job(c: &Cluster) {
    c.bucket.write(
        "workspace/jobs/app/manifest.json",
        &json!({"version": "1", "selectors": ["app"], "max_concurrent_starts": 1}).to_string(),
    );
    c.bucket.write(
        "workspace/jobs/app/Makefile",
        &COUNTING_MAKEFILE.replace("start:\n\tmkdir -p data\n", "start:\n\tmkdir -p data\n\tsleep 2\n"),
    );
}

#[test]
fn killed_worker_fails_in_bounded_time_and_rerun_completes() {
    let c = Cluster::up(3);
    c.bucket.write("maand.conf", &format!("{}\nremote_timeout_seconds = 20\n", c.bucket.read("maand.conf")));
    slow_job(&c);
    c.bucket.build().ok();
    let victim = c.ip(2);
    let sandbox = c.sandbox();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(2500));
        sandbox.kill_worker(&victim).unwrap();
    });
    let started = Instant::now();
    let out = c.deploy(&[]);
    killer.join().unwrap();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains(&c.ip(2)), "the dead worker is named: {}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
    c.sandbox().restart_worker(&c.ip(2)).unwrap();
    c.deploy(&[]).ok();
    for i in 0..3 {
        assert!(c.kinds(i, "app").contains(&"start".to_string()), "worker {i}: {:?}", c.kinds(i, "app"));
    }
}

#[test]
fn frozen_worker_is_bounded_by_the_timeout() {
    let c = Cluster::up(2);
    c.bucket.write("maand.conf", &format!("{}\nremote_timeout_seconds = 5\n", c.bucket.read("maand.conf")));
    c.bucket.write("workspace/jobs/app/manifest.json", &json!({"version": "1", "selectors": ["app"]}).to_string());
    c.bucket.write("workspace/jobs/app/Makefile", COUNTING_MAKEFILE);
    c.deploy(&["-b"]).ok();
    c.bucket.write("workspace/jobs/app/x.txt", "1\n");
    c.bucket.build().ok();
    c.sandbox().freeze_worker(&c.ip(1)).unwrap();
    let started = Instant::now();
    let out = c.deploy(&[]);
    let took = started.elapsed();
    c.sandbox().thaw_worker(&c.ip(1)).unwrap();
    assert_eq!(out.code, 1, "{}", out.stderr);
    // Its SSH banner never comes: unreachable after one connect timeout (15 s), not one per attempt.
    assert!(out.stderr.contains(&format!("worker {} ssh port", c.ip(1))), "{}", out.stderr);
    assert!(out.stderr.contains("connected, but no SSH banner within 15 s"), "{}", out.stderr);
    assert!(took < Duration::from_secs(40), "a frozen worker hung the deploy for {took:?}");
}

/// A TCP service on the job's port, started in the background by `make start`.
const LISTENER_MAKEFILE: &str = r#"PORT := {{ get "maand/bucket" "svc_port" }}
IP := {{ .WorkerIP }}

start:
	mkdir -p data logs
	nohup python3 -m http.server $(PORT) --bind $(IP) > logs/http.log 2>&1 < /dev/null & echo $$! > data/pid

stop:
	-kill $$(cat data/pid) 2>/dev/null; rm -f data/pid

restart: stop start
"#;

#[test]
fn a_frozen_worker_fails_health_check_within_the_connect_timeout_naming_it() {
    let c = Cluster::up(2);
    c.bucket.write(
        "workspace/jobs/svc/manifest.json",
        &json!({
            "version": "1", "selectors": ["app"], "resources": {"ports": {"svc_port": {}}},
            "health_check": {"checks": [{"type": "tcp", "port": "svc_port"}], "wait": {"attempts": 20, "interval_seconds": 1}}
        })
        .to_string(),
    );
    c.bucket.write("workspace/jobs/svc/Makefile.tpl", LISTENER_MAKEFILE);
    c.deploy(&["-b"]).ok();
    c.bucket.maand(&["health_check"]).ok();
    let port: u16 = c.bucket.kv("maand/bucket", "svc_port").unwrap().parse().unwrap();
    let service = std::net::SocketAddr::new(c.ip(1).parse().unwrap(), port);

    // Every process of worker 1 stopped: its sshd and the job's service.
    c.sandbox().freeze_worker(&c.ip(1)).unwrap();
    let accepted = std::net::TcpStream::connect_timeout(&service, Duration::from_secs(2)).is_ok();
    let started = Instant::now();
    let out = c.bucket.maand(&["health_check"]);
    let took = started.elapsed();
    c.sandbox().thaw_worker(&c.ip(1)).unwrap();

    assert!(accepted, "the frozen worker's kernel still accepts connections to the service (a tcp probe passes)");
    assert_eq!(out.code, 1, "{}", out.stderr);
    let ssh_port = c.workers[1].addr().port.unwrap_or(22);
    let named =
        format!("health check failed: worker {} ssh port {ssh_port}: connected, but no SSH banner within 5 s", c.ip(1));
    assert!(out.stderr.contains(&named), "{}", out.stderr);
    assert!(!out.stderr.contains(&format!("worker {} ", c.ip(0))), "{}", out.stderr);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    c.bucket.maand(&["health_check"]).ok();
}
