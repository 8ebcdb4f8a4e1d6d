//! End-to-end: the example job `examples/etcd` (real etcd 3.4 from Debian's `etcd-server`) on
//! three sandbox workers with the real `maand` binary: one deploy bootstraps the cluster; a config
//! change rolls the members one at a time, the leader last, while a client keeps writing and
//! reading through every member; and (once per-allocation resume lands) a member killed in the
//! middle of a rollout is recovered by a plain re-run without taking a second member down.
#![allow(clippy::unwrap_used)]

mod common;
use common::cluster::Cluster;
use common::etcd::{
    assert_healthy_cluster, cluster, describe, endpoint_health, endpoints, event_files, events_since, failures_outside,
    first, installed, longest_write_gap, now, read_events, restart_windows, set_var, wait_until, ClientLoop,
    LeaderPoll, Window, JOB,
};
use std::time::{Duration, Instant};

/// Client requests every 50 ms per member, each bounded by 2 s; leader polled every 100 ms.
const CLIENT_PERIOD: Duration = Duration::from_millis(50);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
const POLL_PERIOD: Duration = Duration::from_millis(100);
/// Slack around a member's own restart window for requests in flight when it stopped or that it
/// answered right after reporting healthy.
const MARGIN: f64 = 0.3;

/// Three members bootstrapped by one `maand deploy -b`; returns the cluster and its leader's ip.
fn bootstrapped() -> (Cluster, String) {
    let c = cluster(3);
    let started = Instant::now();
    let out = c.deploy(&["-b"]);
    assert_eq!(out.code, 0, "bootstrap deploy failed\nstdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    let leader = assert_healthy_cluster(&c, 3);
    eprintln!("bootstrap took {:?}; leader {leader}", started.elapsed());
    (c, leader)
}

/// A bootstrapped cluster with a built config change every member must restart for, and a client
/// loop running against every member: (cluster, leader ip, endpoints, clients).
fn changed_with_clients() -> (Cluster, String, Vec<(String, String)>, ClientLoop) {
    let (c, leader) = bootstrapped();
    let eps = endpoints(&c);
    // An operator setting changes: every member's rendered config changes.
    set_var(&c, "snapshot_count", "20000");
    c.bucket.build().ok();
    let clients = ClientLoop::start(&eps, CLIENT_PERIOD, CLIENT_TIMEOUT);
    (c, leader, eps, clients)
}

/// Each member's restart windows since `since`, by worker ip.
fn windows(c: &Cluster, since: f64, until: f64) -> Vec<(String, Vec<Window>)> {
    (0..3).map(|i| (c.ip(i), restart_windows(c, i, since, until))).collect()
}

fn events_dump(c: &Cluster, since: f64) -> String {
    (0..3)
        .map(|i| {
            let lines: Vec<String> =
                events_since(c, i, since).iter().map(|e| format!("{} {:.3}", e.kind, e.at - since)).collect();
            format!("  {}: {}", c.ip(i), lines.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn bootstrap_and_leader_last_rolling_change() {
    if !installed() {
        return;
    }
    let (c, leader, eps, clients) = changed_with_clients();
    let poll = LeaderPoll::start(&eps, POLL_PERIOD);
    std::thread::sleep(Duration::from_millis(500));
    let t0 = now();
    let started = Instant::now();
    let out = c.deploy(&[]);
    let took = started.elapsed();
    let t1 = now();
    std::thread::sleep(Duration::from_millis(500));
    let records = clients.stop();
    let leaders = poll.stop();
    eprintln!("rolling deploy took {took:?}\n{}", describe(&records));
    assert_eq!(out.code, 0, "rolling deploy failed\nstdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);

    // Each member restarted once, followers first, the leader of before the deploy last.
    let events = events_dump(&c, t0);
    let all = windows(&c, t0, t1);
    eprintln!("events (s after deploy start):\n{events}\nleaders (term, ip): {:?}", leaders.terms);
    for (ip, w) in &all {
        assert_eq!(w.len(), 1, "member {ip} restarted {} times, expected once:\n{events}", w.len());
        assert!(w[0].started < t1, "member {ip} did not report healthy during the deploy:\n{events}");
    }
    let mut order: Vec<&Window> = all.iter().map(|(_, w)| &w[0]).collect();
    order.sort_by(|a, b| a.stop.total_cmp(&b.stop));
    let order_ips: Vec<&str> = order.iter().map(|w| w.ip.as_str()).collect();
    assert_eq!(order_ips[2], leader, "the leader restarts last: order {order_ips:?}, leader {leader}\n{events}");
    for pair in order.windows(2) {
        assert!(
            pair[1].stop > pair[0].started,
            "{} stopped before {} was healthy again:\n{events}",
            pair[1].ip,
            pair[0].ip
        );
    }

    // No failed request against a member outside its own restart window (the client retries
    // what etcd answers Unavailable while leadership moves, as clientv3 does for reads).
    for (ip, w) in &all {
        let bad = failures_outside(&records[ip], w, MARGIN);
        assert!(
            bad.is_empty(),
            "failed requests through {ip} outside its restart window {:.3}..{:.3}: {:#?}\n\
             events (s after deploy start):\n{events}\nall requests:\n{}",
            w[0].stop - t0,
            w[0].started - t0,
            bad,
            describe(&records)
        );
        let ok_after = records[ip].iter().filter(|r| r.ok() && r.at > w[0].started).count();
        assert!(ok_after > 0, "no successful request through {ip} after it restarted:\n{}", describe(&records));
    }

    // Exactly one leader change: from the old leader to another member.
    assert_eq!(
        leaders.changes(),
        1,
        "expected one leader change, saw (term, leader) {:?} (old leader {leader})",
        leaders.terms
    );
    assert_eq!(leaders.sequence()[0], leader, "leaders seen: {:?}", leaders.terms);
    let new_leader = assert_healthy_cluster(&c, 3);
    assert_ne!(new_leader, leader);
    assert_eq!(leaders.sequence()[1], new_leader, "leaders seen: {:?}", leaders.terms);
}

#[test]
fn kill_and_resume() {
    if !installed() {
        return;
    }
    let (c, leader, eps, clients) = changed_with_clients();
    std::thread::sleep(Duration::from_millis(500));
    let t0 = now();
    let deploy = {
        let root = c.bucket.root().to_path_buf();
        std::thread::spawn(move || {
            let out = common::maand_in(&root, &["deploy"]);
            (out, now())
        })
    };

    // Batch 2: the second member to begin a restart is killed with its worker.
    let files = event_files(&c);
    let mut victim = None;
    let found = wait_until(Duration::from_secs(60), || {
        let mut restarting: Vec<(f64, usize)> =
            (0..3).filter_map(|i| first(&read_events(&files[i], t0), "restart").map(|t| (t, i))).collect();
        restarting.sort_by(|a, b| a.0.total_cmp(&b.0));
        victim = restarting.get(1).map(|(_, i)| *i);
        victim.is_some()
    });
    assert!(found, "no second member began a restart:\n{}", events_dump(&c, t0));
    let victim = victim.unwrap();
    let victim_ip = c.ip(victim);
    let killed_at = now();
    c.sandbox().kill_worker(&victim_ip).unwrap();
    let promoted_first: Vec<usize> =
        (0..3).filter(|i| *i != victim && first(&events_since(&c, *i, t0), "started").is_some()).collect();
    assert_eq!(promoted_first.len(), 1, "one member restarted before the victim:\n{}", events_dump(&c, t0));
    let first_member = promoted_first[0];
    assert_ne!(c.ip(first_member), leader, "a follower goes first");

    let (out, ended) = deploy.join().unwrap();
    assert_eq!(out.code, 1, "the deploy fails when a member's worker dies\nstderr:\n{}", out.stderr);
    assert!(out.stderr.contains(&victim_ip), "the dead worker is named:\n{}", out.stderr);
    assert!(ended - killed_at < 10.0, "the deploy took {:.1}s after the kill to fail", ended - killed_at);

    // The two others keep quorum.
    let health = endpoint_health(&c);
    for i in (0..3).filter(|i| *i != victim) {
        let url = format!("http://{}", eps[i].1);
        assert_eq!(health.get(&url), Some(&true), "member {} after the kill: {health:?}", c.ip(i));
    }

    // The worker comes back (sshd only: etcd is not running there); a plain deploy resumes.
    c.sandbox().restart_worker(&victim_ip).unwrap();
    let t2 = now();
    let out = c.deploy(&[]);
    let t3 = now();
    std::thread::sleep(Duration::from_millis(500));
    let records = clients.stop();
    assert_eq!(out.code, 0, "the resumed deploy failed\nstdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    let events = events_dump(&c, t0);

    // The down member first; no healthy member before it is healthy; the member promoted in the
    // first run is left alone.
    let victim_events = events_since(&c, victim, t2);
    let victim_started = first(&victim_events, "started").unwrap_or_else(|| panic!("victim not restarted:\n{events}"));
    for i in (0..3).filter(|i| *i != victim) {
        let later = events_since(&c, i, t2);
        if i == first_member {
            assert!(later.is_empty(), "the member promoted in the first run was touched again:\n{events}");
        } else if let Some(stop) = first(&later, "stop") {
            assert!(stop > victim_started, "{} stopped before the down member was healthy:\n{events}", c.ip(i));
        }
    }
    let leader_idx = (0..3).find(|i| c.ip(*i) == leader).unwrap();
    if leader_idx != victim {
        assert!(first(&events_since(&c, leader_idx, t2), "started").is_some(), "the leader was rolled:\n{events}");
    }

    // Writes through both other members succeeded between the failed run and the re-run.
    for i in (0..3).filter(|i| *i != victim) {
        let ok = records[&c.ip(i)].iter().filter(|r| r.op == "put" && r.ok() && r.at > ended && r.end() < t2).count();
        assert!(ok > 0, "no write through {} while {victim_ip} was down:\n{}", c.ip(i), describe(&records));
    }

    // Writes never stopped for more than a second on the cluster as a whole, and no member failed
    // a request outside its own restart windows (the victim's lasts from the kill to its return).
    let (gap, at) = longest_write_gap(&records, t0, t3);
    assert!(gap < 1.0, "{gap:.2}s without a successful write from {:.2}s:\n{}", at - t0, describe(&records));
    for i in 0..3 {
        let ip = c.ip(i);
        let mut w = restart_windows(&c, i, t0, t3);
        if i == victim {
            w.push(Window { ip: ip.clone(), stop: killed_at, stopped: killed_at, started: victim_started });
        }
        let bad = failures_outside(&records[&ip], &w, MARGIN);
        assert!(
            bad.is_empty(),
            "failed requests through {ip} outside {w:?}: {bad:#?}\n{events}\n{}",
            describe(&records)
        );
    }

    // Everything promoted: nothing left to deploy.
    for d in c.bucket.cat(&["deployments", "--jobs", JOB]) {
        assert_eq!(d["rollout"], "promoted", "{d}");
    }
    let plan = c.deploy(&["--dry-run"]).ok().stdout;
    assert!(plan.starts_with("deploy dry-run: no deployment required"), "{plan}");
    assert_healthy_cluster(&c, 3);
}
