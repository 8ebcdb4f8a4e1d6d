//! The structured log writer: line format in both formats, files per worker and per run, secrets
//! masked, concurrent writers, and I/O failures that must not stop the command.
#![allow(clippy::unwrap_used)]

use maand_engine::runlog::{parse_line, LogCtx, LogEvent, RunLog};
use maand_remote::Stream;
use maand_store::{BucketPaths, LogFormat};
use std::path::Path;
use std::time::Duration;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn keys(line: &str) -> Vec<String> {
    parse_line(line).fields().iter().map(|(k, _)| k.clone()).collect()
}

fn rollout_ctx(worker: &str) -> LogCtx {
    LogCtx::new("rollout", "start").with_worker(worker).with_job("postgres")
}

fn is_spec_timestamp(ts: &str) -> bool {
    let b = ts.as_bytes();
    b.len() == 24
        && ts.ends_with('Z')
        && [4, 7].iter().all(|&i| b[i] == b'-')
        && b[10] == b'T'
        && [13, 16].iter().all(|&i| b[i] == b':')
        && b[19] == b'.'
        && ts.chars().enumerate().all(|(i, c)| [4, 7, 10, 13, 16, 19, 23].contains(&i) || c.is_ascii_digit())
}

#[test]
fn log_directories_and_files_are_private() {
    use maand_store::file_modes::mode_of;
    let dir = tempfile::tempdir().unwrap();
    let paths = BucketPaths::new(dir.path());
    let log = RunLog::open(&paths, LogFormat::Kv, "deploy", 1).unwrap();
    log.command_begin(&rollout_ctx("10.0.0.1"), "true");
    log.command_begin(&LogCtx::new("build", "x"), "true");
    let run_dir = paths.run_logs(log.run_id());
    for d in [paths.logs(), paths.logs().join("runs"), run_dir.clone()] {
        assert_eq!(mode_of(&d).unwrap(), 0o700, "{}", d.display());
    }
    for f in [paths.logs().join("10.0.0.1.log"), paths.logs().join("maand.log"), run_dir.join("10.0.0.1.log")] {
        assert_eq!(mode_of(&f).unwrap(), 0o600, "{}", f.display());
    }
}

#[test]
fn kv_lines_follow_the_spec_order_and_quoting() {
    let dir = tempfile::tempdir().unwrap();
    let paths = BucketPaths::new(dir.path());
    let log = RunLog::open(&paths, LogFormat::Kv, "deploy", 17).unwrap();
    let ctx = rollout_ctx("10.0.0.1");
    log.command_begin(&ctx, "make   -s -C /opt/worker/b/jobs/postgres\n start");
    log.output_line(&ctx, Stream::Stderr, "said \"x=1\"");
    log.command_end(&ctx, 2, Duration::from_millis(1300));

    let text = read(&paths.logs().join("10.0.0.1.log"));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    let run = log.run_id();
    let ts = parse_line(lines[0]).get("ts").unwrap().to_string();
    assert!(is_spec_timestamp(&ts), "bad ts {ts}");
    assert_eq!(
        lines[0],
        format!(
            "ts={ts} level=INFO event=command_begin run={run} maand=deploy seq=17 worker=10.0.0.1 job=postgres \
             phase=rollout action=start cmd=\"make -s -C /opt/worker/b/jobs/postgres start\""
        )
    );
    assert_eq!(
        keys(lines[1]),
        ["ts", "level", "event", "run", "maand", "seq", "worker", "job", "phase", "action", "stream", "msg"]
    );
    assert!(lines[1].ends_with(r#"stream=stderr msg="said \"x=1\"""#), "{}", lines[1]);
    assert!(lines[2].ends_with("action=start exit=2 duration_ms=1300"), "{}", lines[2]);
}

#[test]
fn json_lines_use_numbers_and_the_same_keys() {
    let dir = tempfile::tempdir().unwrap();
    let paths = BucketPaths::new(dir.path());
    let log = RunLog::open(&paths, LogFormat::Json, "job", 5).unwrap();
    let ctx = rollout_ctx("10.0.0.2");
    log.command_end(&ctx, 0, Duration::from_millis(42));
    log.event(
        &LogEvent::new("deploy_skip", LogCtx::new("rollout", "skip").with_job("pg")).with_reason("already promoted"),
    );

    let text = read(&paths.logs().join("10.0.0.2.log"));
    let end: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(end["seq"], serde_json::json!(5));
    assert_eq!(end["exit"], serde_json::json!(0));
    assert_eq!(end["duration_ms"], serde_json::json!(42));
    assert_eq!(end["worker"], "10.0.0.2");
    assert_eq!(end["maand"], "job");
    let order: Vec<&str> = end.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        order,
        ["ts", "level", "event", "run", "maand", "seq", "worker", "job", "phase", "action", "exit", "duration_ms"]
    );

    let skip: serde_json::Value = serde_json::from_str(read(&paths.logs().join("maand.log")).trim_end()).unwrap();
    assert_eq!(skip["worker"], "-");
    assert_eq!(skip["reason"], "already promoted");
    assert!(skip.get("cmd").is_none() && skip.get("exit").is_none());
}

#[test]
fn bucket_local_lines_go_to_maand_log_and_seq_appears_once_set() {
    let dir = tempfile::tempdir().unwrap();
    let paths = BucketPaths::new(dir.path());
    let log = RunLog::open(&paths, LogFormat::Kv, "build", 0).unwrap();
    let ctx = LogCtx::new("post_build", "command_setup").with_job("vault");
    log.command_begin(&ctx, "python3 command_setup.py");
    log.set_update_seq(9);
    log.command_end(&ctx, 0, Duration::from_millis(5));

    let text = read(&paths.logs().join("maand.log"));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(parse_line(lines[0]).get("seq"), None);
    assert_eq!(parse_line(lines[0]).get("worker"), Some("-"));
    assert_eq!(parse_line(lines[1]).get("seq"), Some("9"));
    assert!(!paths.logs().join("-.log").exists());
}

#[test]
fn each_run_has_its_own_copy_while_aggregates_accumulate() {
    let dir = tempfile::tempdir().unwrap();
    let paths = BucketPaths::new(dir.path());
    let first = RunLog::open(&paths, LogFormat::Kv, "deploy", 1).unwrap();
    first.command_begin(&rollout_ctx("10.0.0.1"), "one");
    first.event(&LogEvent::new("note", LogCtx::new("init", "")));
    let second = RunLog::open(&paths, LogFormat::Kv, "deploy", 2).unwrap();
    second.command_begin(&rollout_ctx("10.0.0.1"), "two");
    assert_ne!(first.run_id(), second.run_id());

    let first_copy = read(&paths.run_logs(first.run_id()).join("10.0.0.1.log"));
    let second_copy = read(&paths.run_logs(second.run_id()).join("10.0.0.1.log"));
    let aggregate = read(&paths.logs().join("10.0.0.1.log"));
    assert_eq!(aggregate, format!("{first_copy}{second_copy}"));
    assert!(first_copy.contains("cmd=one") && !first_copy.contains("cmd=two"));
    assert!(paths.run_logs(first.run_id()).join("maand.log").is_file());
    assert!(!paths.run_logs(second.run_id()).join("maand.log").exists());
}

#[test]
fn concurrent_writers_produce_whole_lines_only() {
    let dir = tempfile::tempdir().unwrap();
    let paths = BucketPaths::new(dir.path());
    let log = RunLog::open(&paths, LogFormat::Kv, "deploy", 3).unwrap();
    let threads = 12;
    let per_thread = 150;
    let padding = "x".repeat(3000);
    std::thread::scope(|scope| {
        for t in 0..threads {
            let log = log.clone();
            let padding = &padding;
            scope.spawn(move || {
                let ctx = rollout_ctx(&format!("10.0.0.{}", t % 3));
                for i in 0..per_thread {
                    log.output_line(&ctx, Stream::Stdout, &format!("t{t} i{i} {padding}"));
                }
            });
        }
    });
    let mut seen = vec![0usize; threads];
    for worker in 0..3 {
        for path in [paths.logs(), paths.run_logs(log.run_id())] {
            let text = read(&path.join(format!("10.0.0.{worker}.log")));
            assert!(text.ends_with('\n'));
            for line in text.lines() {
                let record = parse_line(line);
                assert_eq!(record.get("event"), Some("command_output"), "torn line: {}", &line[..80.min(line.len())]);
                let msg = record.get("msg").unwrap();
                assert!(msg.ends_with(&padding), "torn message");
                let t: usize = msg[1..msg.find(' ').unwrap()].parse().unwrap();
                assert_eq!(t % 3, worker);
                seen[t] += 1;
            }
        }
    }
    assert_eq!(seen, vec![per_thread * 2; threads]);
}

#[test]
fn registered_secrets_never_reach_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let paths = BucketPaths::new(dir.path());
    let log = RunLog::open(&paths, LogFormat::Kv, "jobcommand", 0).unwrap();
    log.add_secret("tok-123456");
    let ctx = LogCtx::new("job_command", "command_backup").with_job("pg");
    log.command_begin(&ctx, "JOB_COMMAND_API_TOKEN=tok-123456 python3 x.py");
    log.output_line(&ctx, Stream::Stdout, "using tok-123456");
    let text = read(&paths.logs().join("maand.log"));
    assert!(!text.contains("tok-123456"), "{text}");
    assert_eq!(text.matches("[redacted]").count(), 2);
}

#[test]
fn unwritable_files_do_not_stop_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let paths = BucketPaths::new(dir.path());
    let log = RunLog::open(&paths, LogFormat::Kv, "deploy", 0).unwrap();
    // A directory where the aggregate file should be: opening it fails.
    std::fs::create_dir_all(paths.logs().join("10.0.0.9.log")).unwrap();
    let ctx = rollout_ctx("10.0.0.9");
    log.command_begin(&ctx, "a");
    log.command_end(&ctx, 0, Duration::ZERO);
    // The per-run copy is still written.
    assert_eq!(read(&paths.run_logs(log.run_id()).join("10.0.0.9.log")).lines().count(), 2);
}

#[test]
fn open_fails_clearly_when_logs_cannot_be_created() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("logs"), "not a directory").unwrap();
    let e = RunLog::open(&BucketPaths::new(dir.path()), LogFormat::Kv, "deploy", 0).unwrap_err();
    assert!(e.to_string().contains("cannot create log directory"), "{e}");
}
