//! End-to-end: the OpenSSH executor against real sandbox workers (sshd per loopback address, each in
//! its own mount namespace). Needs root, openssh-server and rsync: with CI set a missing
//! prerequisite fails the test, otherwise the test is skipped with the reason printed.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use maand_remote::sandbox::{ensure_client_key, marker_path, Sandbox, SandboxWorker};
use maand_remote::{Executor, HostKeyPolicy, OpenSsh, RemoteScript, RsyncArgs, SshSettings, Stream, WorkerAddr};
use tempfile::TempDir;

/// A running sandbox of three workers, torn down (every process killed) when dropped.
struct Fixture {
    dir: TempDir,
    sandbox: Sandbox,
    workers: Vec<SandboxWorker>,
    key: PathBuf,
}

impl Fixture {
    fn up() -> Option<Fixture> {
        if let Err(reason) = Sandbox::check_prerequisites() {
            if std::env::var_os("CI").is_some() {
                panic!("sandbox prerequisites missing on CI: {reason}");
            }
            eprintln!("skipping sandbox test: {reason}");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("secrets/sandbox.key");
        let pubkey = ensure_client_key(&key).unwrap();
        let sandbox = Sandbox::new(dir.path().join("sandbox"));
        let mut fixture = Fixture { dir, sandbox, workers: Vec::new(), key };
        fixture.workers = fixture.sandbox.up(3, &pubkey).unwrap();
        Some(fixture)
    }

    fn settings(&self) -> SshSettings {
        SshSettings {
            user: "root".into(),
            key_path: self.key.clone(),
            default_port: 22,
            use_sudo: false,
            host_key_checking: HostKeyPolicy::AcceptNew,
            known_hosts: self.dir.path().join("secrets/known_hosts"),
            control_dir: self.dir.path().join("ssh"),
            connect_timeout_secs: 2,
            command_timeout_secs: 20,
            connect_retries: 0,
        }
    }

    fn ssh(&self) -> OpenSsh {
        OpenSsh::new(self.settings())
    }

    fn addr(&self, i: usize) -> WorkerAddr {
        self.workers[i].addr()
    }

    fn accepted(&self, i: usize) -> usize {
        self.sandbox.accepted_connections(&self.workers[i].ip).unwrap()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Err(e) = self.sandbox.down() {
            eprintln!("sandbox down failed: {e}");
        }
    }
}

/// Runs `lines` and returns the exit code and every output line with its stream.
fn run(ssh: &dyn Executor, worker: &WorkerAddr, lines: &[&str]) -> (i32, Vec<(Stream, String)>) {
    let mut output = Vec::new();
    let outcome = ssh
        .run_script(worker, &RemoteScript::from_lines(lines.iter().copied()), None, &mut |s, l| {
            output.push((s, l.to_string()))
        })
        .unwrap_or_else(|e| panic!("run on {worker} failed: {e}"));
    (outcome.exit_code, output)
}

fn stdout(output: &[(Stream, String)]) -> Vec<String> {
    output.iter().filter(|(s, _)| *s == Stream::Stdout).map(|(_, l)| l.clone()).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn private_opt_streaming_exit_codes_and_env_quoting() {
    let Some(fx) = Fixture::up() else { return };
    let ssh = fx.ssh();
    for (i, worker) in fx.workers.iter().enumerate() {
        let (code, _) = run(&ssh, &fx.addr(i), &[&format!("echo {} > /opt/marker", worker.ip)]);
        assert_eq!(code, 0);
    }
    for (i, worker) in fx.workers.iter().enumerate() {
        let (_, out) = run(&ssh, &fx.addr(i), &["cat /opt/marker", "ls /opt"]);
        assert_eq!(stdout(&out), [worker.ip.clone(), "marker".to_string()], "worker sees only its own /opt");
        assert_eq!(fs::read_to_string(worker.opt_dir().join("marker")).unwrap().trim(), worker.ip);
    }
    assert!(!Path::new("/opt/marker").exists(), "the host's /opt is untouched");
    let (_, out) = run(&ssh, &fx.addr(0), &["ls -A ~ | wc -l"]);
    assert_eq!(stdout(&out), ["0"], "the worker's home is its own, empty");

    // Lines stream with their stream; the exit code comes back; set -e stops at the first failure.
    let (code, out) = run(&ssh, &fx.addr(0), &["echo one", "echo two >&2", "exit 3"]);
    assert_eq!(code, 3);
    // The two streams are separate pipes: their relative order is not kept, each one's order is.
    let mut sorted = out.clone();
    sorted.sort_by_key(|(stream, _)| *stream == Stream::Stderr);
    assert_eq!(sorted, [(Stream::Stdout, "one".to_string()), (Stream::Stderr, "two".to_string())]);
    let (code, out) = run(&ssh, &fx.addr(0), &["false", "echo unreachable"]);
    assert_eq!(code, 1);
    assert!(out.is_empty(), "{out:?}");

    // Environment values reach the worker byte for byte.
    let values = ["two words", "it's \"quoted\"", "$HOME `id` $(id)", "line1\nline2\n", "back\\slash *"];
    let mut script = RemoteScript::default();
    for (i, value) in values.iter().enumerate() {
        script = script
            .with_env(format!("V{i}"), *value)
            .with_line(format!("printf '%s' \"$V{i}\" | od -An -tx1 | tr -d ' \\n'; echo"));
    }
    let mut lines = Vec::new();
    let outcome = ssh.run_script(&fx.addr(1), &script, None, &mut |_, l| lines.push(l.to_string())).unwrap();
    assert!(outcome.success());
    let expected: Vec<String> = values.iter().map(|v| hex(v.as_bytes())).collect();
    assert_eq!(lines, expected);

    // The remote time limit stops a long command with timeout's exit code.
    let started = Instant::now();
    let outcome =
        ssh.run_script(&fx.addr(2), &RemoteScript::from_lines(["sleep 30"]), Some(1), &mut |_, _| {}).unwrap();
    assert!(outcome.timed_out(), "exit {}", outcome.exit_code);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn one_connection_per_worker_shared_by_scripts_and_rsync() {
    let Some(fx) = Fixture::up() else { return };
    {
        let unused = fx.ssh();
        unused.close();
    }
    for i in 0..3 {
        assert_eq!(fx.accepted(i), 0, "an executor that is never used opens no connection");
    }

    // The tree to sync: job a goes, job b is filtered out, templates never leave.
    let src = fx.dir.path().join("stage");
    for (path, content) in [
        ("worker.json", "{}"),
        ("jobs/a/Makefile", "start:\n"),
        ("jobs/a/conf.tpl", "{{x}}"),
        ("jobs/a/conf", "x"),
        ("jobs/b/file", "b"),
    ] {
        fs::create_dir_all(src.join(path).parent().unwrap()).unwrap();
        fs::write(src.join(path), content).unwrap();
    }
    let filter = fx.dir.path().join("filter.rsync");
    fs::write(&filter, "+ jobs/a/\n- jobs/*\n- jobs/**/*.tpl\n").unwrap();
    let args = RsyncArgs::worker_tree(&filter);

    let ssh = fx.ssh();
    std::thread::scope(|scope| {
        for i in 0..3 {
            let (ssh, fx, src, args) = (&ssh, &fx, &src, &args);
            scope.spawn(move || {
                run(
                    ssh,
                    &fx.addr(i),
                    &[
                        "mkdir -p /opt/worker/b1/jobs/a/data /opt/worker/b1/jobs/c",
                        "echo keep > /opt/worker/b1/jobs/a/data/state",
                        "echo keep > /opt/worker/b1/jobs/c/keep",
                        "echo stale > /opt/worker/b1/jobs/a/old",
                    ],
                );
                for _ in 0..2 {
                    let mut lines = Vec::new();
                    let outcome = ssh
                        .rsync(&fx.addr(i), src, "/opt/worker/b1", args, &mut |_, l| lines.push(l.to_string()))
                        .unwrap();
                    assert_eq!(outcome.exit_code, 0, "{lines:?}");
                }
            });
            for _ in 0..3 {
                scope.spawn(move || {
                    for _ in 0..3 {
                        assert_eq!(run(ssh, &fx.addr(i), &["true"]).0, 0);
                    }
                });
            }
        }
    });
    for (i, worker) in fx.workers.iter().enumerate() {
        let tree = worker.opt_dir().join("worker/b1");
        assert!(tree.join("worker.json").exists());
        assert_eq!(fs::read_to_string(tree.join("jobs/a/conf")).unwrap(), "x");
        assert!(!tree.join("jobs/a/conf.tpl").exists(), "templates are filtered out");
        assert!(!tree.join("jobs/a/old").exists(), "stale files of a synced job are deleted");
        assert!(!tree.join("jobs/b").exists(), "jobs outside the filter are not sent");
        assert!(tree.join("jobs/a/data/state").exists(), "data/ is never touched");
        assert!(tree.join("jobs/c/keep").exists(), "other jobs' trees are untouched");
        assert_eq!(fx.accepted(i), 1, "worker {}: one connection for 10 scripts and 2 rsyncs", worker.ip);
    }
    assert_eq!(ssh.open_connections(), 3);
    ssh.close();
    assert_eq!(ssh.open_connections(), 0);
    let leftovers: Vec<_> = fs::read_dir(fx.dir.path().join("ssh")).unwrap().collect();
    assert!(leftovers.is_empty(), "control sockets removed: {leftovers:?}");
}

#[test]
fn killed_worker_is_reported_then_restart_recovers() {
    let Some(fx) = Fixture::up() else { return };
    let mut settings = fx.settings();
    settings.connect_retries = 1;
    let ssh = OpenSsh::new(settings);
    let victim = &fx.workers[0];
    assert_eq!(run(&ssh, &fx.addr(0), &["echo before > /opt/before"]).0, 0);

    fx.sandbox.kill_worker(&victim.ip).unwrap();
    assert!(fx.sandbox.processes(&victim.ip).unwrap().is_empty());
    assert!(!fx.sandbox.workers().unwrap()[0].is_running());

    for _ in 0..2 {
        let started = Instant::now();
        let err = ssh.run_script(&fx.addr(0), &RemoteScript::from_lines(["true"]), None, &mut |_, _| {}).unwrap_err();
        assert!(err.to_string().starts_with(&format!("worker {}: ", victim.ip)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    }
    assert_eq!(run(&ssh, &fx.addr(1), &["true"]).0, 0, "other workers are unaffected");

    fx.sandbox.restart_worker(&victim.ip).unwrap();
    assert!(fx.sandbox.workers().unwrap()[0].is_running());
    // Same host key (accept-new would refuse a new one), same /opt.
    let (code, out) = run(&ssh, &fx.addr(0), &["cat /opt/before"]);
    assert_eq!((code, stdout(&out)), (0, vec!["before".to_string()]));
}

#[test]
fn frozen_worker_is_bounded_by_timeouts() {
    let Some(fx) = Fixture::up() else { return };
    let connected = fx.ssh();
    assert_eq!(run(&connected, &fx.addr(0), &["true"]).0, 0);
    fx.sandbox.freeze_worker(&fx.workers[0].ip).unwrap();

    std::thread::scope(|scope| {
        // An open master: the session hangs until the local deadline (timeout + grace) kills it.
        let through_master = scope.spawn(|| {
            let started = Instant::now();
            let result =
                connected.run_script(&fx.addr(0), &RemoteScript::from_lines(["true"]), Some(1), &mut |_, _| {});
            (result, started.elapsed())
        });
        // A new connection: the banner exchange times out after ConnectTimeout.
        let fresh = fx.ssh();
        let started = Instant::now();
        let err =
            fresh.run_script(&fx.addr(0), &RemoteScript::from_lines(["true"]), Some(1), &mut |_, _| {}).unwrap_err();
        assert!(err.to_string().starts_with(&format!("worker {}: cannot connect", fx.workers[0].ip)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());

        let (result, elapsed) = through_master.join().unwrap();
        let err = result.unwrap_err();
        assert!(err.to_string().starts_with(&format!("worker {}: ", fx.workers[0].ip)), "{err}");
        assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    });

    // Its kernel still accepts the connection; the banner never comes. Another worker answers.
    let started = Instant::now();
    let err = connected.check_alive(&fx.addr(0), Some(Duration::from_secs(1))).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert_eq!(err.kind, maand_core::ErrorKind::WorkerUnreachable);
    let port = fx.addr(0).port.unwrap_or(22);
    assert_eq!(
        err.to_string(),
        format!(
            "worker {} ssh port {port}: connected, but no SSH banner within 1 s (the worker or its sshd is frozen or \
             overloaded)",
            fx.workers[0].ip
        )
    );
    connected.check_alive(&fx.addr(1), Some(Duration::from_secs(1))).unwrap();

    fx.sandbox.thaw_worker(&fx.workers[0].ip).unwrap();
    assert_eq!(run(&fx.ssh(), &fx.addr(0), &["true"]).0, 0);
    connected.check_alive(&fx.addr(0), None).unwrap();
}

#[test]
fn changed_or_unknown_host_key_is_refused() {
    let Some(fx) = Fixture::up() else { return };
    let ip = fx.workers[0].ip.clone();
    assert_eq!(run(&fx.ssh(), &fx.addr(0), &["true"]).0, 0, "first contact records the key");
    let known_hosts = fx.settings().known_hosts;
    assert!(!fs::read_to_string(&known_hosts).unwrap().is_empty());

    fx.sandbox.kill_worker(&ip).unwrap();
    fs::remove_file(fx.workers[0].dir.join("host_key")).unwrap();
    fs::remove_file(fx.workers[0].dir.join("host_key.pub")).unwrap();
    fx.sandbox.restart_worker(&ip).unwrap();
    let accepted_before = fx.accepted(0);

    for policy in [HostKeyPolicy::AcceptNew, HostKeyPolicy::Strict] {
        let mut settings = fx.settings();
        settings.host_key_checking = policy;
        let err = OpenSsh::new(settings)
            .run_script(&fx.addr(0), &RemoteScript::from_lines(["true"]), None, &mut |_, _| {})
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(&format!("worker {ip}: host key verification failed")), "{policy:?}: {err}");
        assert!(err.contains(&format!("remove the stale line from {}", known_hosts.display())), "{err}");
    }
    assert_eq!(fx.accepted(0), accepted_before, "no session was opened");

    // strict refuses a host it has never seen; off connects anyway.
    let mut strict = fx.settings();
    strict.host_key_checking = HostKeyPolicy::Strict;
    strict.known_hosts = fx.dir.path().join("empty_known_hosts");
    let err = OpenSsh::new(strict)
        .run_script(&fx.addr(1), &RemoteScript::from_lines(["true"]), None, &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("host_key_checking is \"strict\""), "{err}");
    let mut off = fx.settings();
    off.host_key_checking = HostKeyPolicy::Off;
    assert_eq!(run(&OpenSsh::new(off), &fx.addr(0), &["true"]).0, 0);
}

#[test]
fn down_leaves_no_process_behind() {
    let Some(fx) = Fixture::up() else { return };
    let ssh = fx.ssh();
    let mut seen = Vec::new();
    for (i, worker) in fx.workers.iter().enumerate() {
        run(
            &ssh,
            &fx.addr(i),
            &["nohup sleep 1000 >/dev/null 2>&1 &", "setsid sleep 1001 >/dev/null 2>&1 < /dev/null &"],
        );
        // The background jobs exec `sleep` a moment after the script returns.
        let deadline = Instant::now() + Duration::from_secs(5);
        let (pids, sleeps) = loop {
            let pids = fx.sandbox.processes(&worker.ip).unwrap();
            let sleeps = pids
                .iter()
                .filter(|pid| fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim() == "sleep")
                .count();
            if sleeps >= 2 || Instant::now() > deadline {
                break (pids, sleeps);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(sleeps, 2, "worker {}: both background sleeps run in its namespace", worker.ip);
        assert!(pids.contains(&worker.pid), "sshd is in its own namespace");
        seen.extend(pids);
    }
    ssh.close();
    fx.sandbox.down().unwrap();
    let survivors: Vec<u32> = seen.into_iter().filter(|pid| is_live(*pid)).collect();
    assert!(survivors.is_empty(), "processes survived down(): {survivors:?}");
    let state_dir = fx.dir.path().join("sandbox").display().to_string();
    for worker in &fx.workers {
        // Another test may reserve the address again at once, but not for this sandbox.
        let marker = fs::read_to_string(marker_path(&worker.ip)).unwrap_or_default();
        assert!(!marker.contains(&state_dir), "address {} released: {marker}", worker.ip);
    }
    assert!(!fx.sandbox.state_dir.exists());
}

#[test]
fn ssh_master_and_sessions_run_outside_our_process_group() {
    let Some(fx) = Fixture::up() else { return };
    let ssh = fx.ssh();
    let control_dir = fx.dir.path().join("ssh").display().to_string();
    let ours = process_group(std::process::id()).unwrap();
    // (pid, process group) of the master and of the session, seen while the script runs.
    let (masters, sessions) = std::thread::scope(|scope| {
        let running = scope.spawn(|| run(&ssh, &fx.addr(0), &["sleep 2"]));
        // Every local ssh of this executor names a control socket in its directory.
        let deadline = Instant::now() + Duration::from_secs(10);
        let found = loop {
            let ssh_pids: Vec<(u32, Option<u32>, String)> = fs::read_dir("/proc")
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .filter_map(|pid| {
                    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                    (cmdline.starts_with("ssh ") && cmdline.contains(&control_dir))
                        .then(|| (pid, process_group(pid), cmdline))
                })
                .collect();
            let pick = |mode: &str| -> Vec<(u32, Option<u32>)> {
                ssh_pids.iter().filter(|(_, _, c)| c.contains(mode)).map(|(p, g, _)| (*p, *g)).collect()
            };
            let (masters, sessions) = (pick("ControlMaster=yes"), pick("ControlMaster=no"));
            if (!masters.is_empty() && !sessions.is_empty()) || Instant::now() > deadline {
                break (masters, sessions);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(running.join().unwrap().0, 0);
        found
    });
    assert_eq!(masters.len(), 1, "one master: {masters:?}");
    assert_eq!(sessions.len(), 1, "one session in flight: {sessions:?}");
    for (what, (pid, group)) in [("master", masters[0]), ("session", sessions[0])] {
        assert_eq!(group, Some(pid), "the {what} leads a process group of its own");
        assert_ne!(ours, pid, "the {what} is outside our process group");
    }
    ssh.close();
}

/// Field 5 (process group) of `/proc/<pid>/stat`.
fn process_group(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.split_whitespace().nth(2)?.parse().ok()
}

/// Alive and not a zombie (orphans are not always reaped).
fn is_live(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            !matches!(stat.rsplit(')').next().and_then(|rest| rest.trim_start().chars().next()), Some('Z' | 'X'))
        })
        .unwrap_or(false)
}

#[test]
fn a_master_left_by_a_killed_run_is_ended_by_the_next_executor() {
    let Some(fx) = Fixture::up() else { return };
    let settings = fx.settings();
    fs::create_dir_all(&settings.control_dir).unwrap();
    // A detached master (as a maand older than parent-death signals left one) of a process that
    // no longer exists: its socket is named after that process.
    let dead = 4_190_000 + std::process::id() % 4_000;
    assert!(!is_live(dead));
    let port = fx.addr(0).port.unwrap_or(22).to_string();
    let socket = settings.control_dir.join(format!("{dead}-1-{}-{port}", fx.workers[0].ip.replace('.', "_")));
    let control = format!("ControlPath={}", socket.display());
    let key = fx.key.display().to_string();
    let options = [
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-i",
        &key,
        "-p",
        &port,
    ];
    let started = std::process::Command::new("ssh")
        .args(options)
        .args(["-o", &control, "-o", "ControlMaster=yes", "-o", "ControlPersist=300", "-N", "-f", "-l", "root"])
        .arg(&fx.workers[0].ip)
        .status()
        .unwrap();
    assert!(started.success());
    let check = std::process::Command::new("ssh").args(["-o", &control, "-O", "check", "x"]).output().unwrap();
    let answer = String::from_utf8_lossy(&check.stderr).to_string();
    let pid: u32 = answer.split("pid=").nth(1).unwrap().split(')').next().unwrap().parse().unwrap();
    assert!(is_live(pid), "{answer}");

    let ssh = fx.ssh();
    assert!(!socket.exists(), "the dead run's socket is removed");
    let until = Instant::now() + Duration::from_secs(2);
    while is_live(pid) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!is_live(pid), "the dead run's master was told to exit");
    // The new executor works as usual.
    assert_eq!(run(&ssh, &fx.addr(0), &["true"]).0, 0);
    ssh.close();
}
