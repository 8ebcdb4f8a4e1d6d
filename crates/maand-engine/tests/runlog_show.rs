//! `maand logs show`: file selection (aggregates, one worker, one run), ordering across files, the
//! field filters and `--tail` in raw and human format, round trips from the writer, and legacy lines.
#![allow(clippy::unwrap_used)]

use maand_engine::runlog::{parse_line, show, LogCtx, LogEvent, RunLog, ShowFormat, ShowOptions};
use maand_remote::Stream;
use maand_store::{BucketPaths, LogFormat};
use std::path::Path;
use std::time::Duration;

fn write(root: &Path, rel: &str, lines: &[&str]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
}

fn raw(root: &Path, opts: ShowOptions) -> Vec<String> {
    show(root, &opts).unwrap().lines().map(str::to_string).collect()
}

fn human(root: &Path, opts: ShowOptions) -> String {
    show(root, &ShowOptions { format: ShowFormat::Human, ..opts }).unwrap()
}

fn field(line: &str, key: &str) -> String {
    parse_line(line).get(key).unwrap_or("").to_string()
}

/// Two runs in aggregates and per-run directories, written by hand so timestamps are fixed.
fn hand_written_bucket(root: &Path) {
    let a1 = [
        "ts=2026-06-02T22:07:01.000Z level=INFO event=command_begin run=runA maand=deploy seq=17 worker=10.0.0.1 job=postgres phase=reconcile action=stop cmd=\"runner.py stop\"",
        "ts=2026-06-02T22:07:01.200Z level=INFO event=command_output run=runA maand=deploy seq=17 worker=10.0.0.1 job=postgres phase=reconcile action=stop stream=stdout msg=stopping",
        "ts=2026-06-02T22:07:02.300Z level=INFO event=command_end run=runA maand=deploy seq=17 worker=10.0.0.1 job=postgres phase=reconcile action=stop exit=0 duration_ms=1300",
    ];
    let a2 = [
        "ts=2026-06-02T22:07:01.100Z level=INFO event=command_begin run=runA maand=deploy seq=17 worker=10.0.0.2 job=api phase=rollout action=start cmd=\"make start\"",
        "ts=2026-06-02T22:07:01.150Z level=INFO event=command_end run=runA maand=deploy seq=17 worker=10.0.0.2 job=api phase=rollout action=start exit=2 duration_ms=50",
    ];
    let bm = [
        "ts=2026-06-03T08:00:00.000Z level=INFO event=deploy_skip run=runB maand=deploy seq=18 worker=- job=postgres phase=rollout action=skip reason=already_promoted",
        "ts=2026-06-03T08:00:01.000Z level=INFO event=command_begin run=runB maand=deploy seq=18 worker=- job=api phase=job_command action=command_check cmd=\"python3 check.py\"",
        "ts=2026-06-03T08:00:02.000Z level=INFO event=command_end run=runB maand=deploy seq=18 worker=- job=api phase=job_command action=command_check exit=0 duration_ms=900",
    ];
    write(root, "logs/10.0.0.1.log", &a1);
    write(root, "logs/10.0.0.2.log", &a2);
    write(root, "logs/maand.log", &bm);
    write(root, "logs/runs/runA/10.0.0.1.log", &a1);
    write(root, "logs/runs/runA/10.0.0.2.log", &a2);
    write(root, "logs/runs/runB/maand.log", &bm);
}

#[test]
fn raw_merges_all_aggregates_by_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    hand_written_bucket(dir.path());
    let lines = raw(dir.path(), ShowOptions::default());
    let order: Vec<String> = lines.iter().map(|l| format!("{}/{}", field(l, "worker"), field(l, "event"))).collect();
    assert_eq!(
        order,
        [
            "10.0.0.1/command_begin",
            "10.0.0.2/command_begin",
            "10.0.0.2/command_end",
            "10.0.0.1/command_output",
            "10.0.0.1/command_end",
            "-/deploy_skip",
            "-/command_begin",
            "-/command_end"
        ]
    );
    // Lines are printed exactly as stored.
    assert!(lines[0].starts_with("ts=2026-06-02T22:07:01.000Z level=INFO event=command_begin"));
}

#[test]
fn raw_filters_by_job_phase_and_event_and_tails_matching_lines() {
    let dir = tempfile::tempdir().unwrap();
    hand_written_bucket(dir.path());
    let by_job = raw(dir.path(), ShowOptions { job: Some("postgres".into()), ..Default::default() });
    assert_eq!(by_job.len(), 4);
    assert!(by_job.iter().all(|l| field(l, "job") == "postgres"));

    let by_phase_event = raw(
        dir.path(),
        ShowOptions { phase: Some("rollout".into()), event: Some("command_end".into()), ..Default::default() },
    );
    assert_eq!(by_phase_event.len(), 1);
    assert_eq!(field(&by_phase_event[0], "job"), "api");

    let tail = raw(dir.path(), ShowOptions { event: Some("command_end".into()), tail: 2, ..Default::default() });
    let tail_jobs: Vec<String> = tail.iter().map(|l| field(l, "job")).collect();
    assert_eq!(tail_jobs, ["postgres", "api"]);
    assert_eq!(field(&tail[1], "run"), "runB");

    assert!(raw(dir.path(), ShowOptions { job: Some("nope".into()), ..Default::default() }).is_empty());
}

#[test]
fn worker_selects_one_file() {
    let dir = tempfile::tempdir().unwrap();
    hand_written_bucket(dir.path());
    let one = raw(dir.path(), ShowOptions { worker: Some("10.0.0.2".into()), ..Default::default() });
    assert_eq!(one.len(), 2);
    assert!(one.iter().all(|l| field(l, "worker") == "10.0.0.2"));
    let local = raw(dir.path(), ShowOptions { worker: Some("-".into()), ..Default::default() });
    assert_eq!(local.len(), 3);
    let e = show(dir.path(), &ShowOptions { worker: Some("10.9.9.9".into()), ..Default::default() }).unwrap_err();
    assert!(e.to_string().contains("no logs for worker 10.9.9.9"), "{e}");
}

#[test]
fn run_reads_the_run_directory_and_falls_back_to_filtered_aggregates() {
    let dir = tempfile::tempdir().unwrap();
    hand_written_bucket(dir.path());
    // Make the aggregate differ from the run copy, to see which one is read.
    let mut extra = std::fs::read_to_string(dir.path().join("logs/maand.log")).unwrap();
    extra.push_str("ts=2026-06-03T09:00:00.000Z event=late run=runB worker=-\n");
    std::fs::write(dir.path().join("logs/maand.log"), extra).unwrap();

    let from_run_dir = raw(dir.path(), ShowOptions { run: Some("runB".into()), ..Default::default() });
    assert_eq!(from_run_dir.len(), 3);
    let with_flag = raw(dir.path(), ShowOptions { run: Some("runB".into()), run_dir: true, ..Default::default() });
    assert_eq!(with_flag, from_run_dir);

    std::fs::remove_dir_all(dir.path().join("logs/runs/runB")).unwrap();
    let from_aggregates = raw(dir.path(), ShowOptions { run: Some("runB".into()), ..Default::default() });
    assert_eq!(from_aggregates.len(), 4);
    assert!(from_aggregates.iter().all(|l| field(l, "run") == "runB"));

    let run_a_worker = raw(
        dir.path(),
        ShowOptions { run: Some("runA".into()), worker: Some("10.0.0.1".into()), ..Default::default() },
    );
    assert_eq!(run_a_worker.len(), 3);
}

#[test]
fn run_dir_needs_an_existing_run() {
    let dir = tempfile::tempdir().unwrap();
    hand_written_bucket(dir.path());
    let e = show(dir.path(), &ShowOptions { run_dir: true, ..Default::default() }).unwrap_err();
    assert!(e.to_string().contains("--run-dir needs --run"), "{e}");
    let e =
        show(dir.path(), &ShowOptions { run: Some("runZ".into()), run_dir: true, ..Default::default() }).unwrap_err();
    assert!(e.to_string().contains("no per-run logs for run runZ"), "{e}");
    let e = show(dir.path(), &ShowOptions { run: Some("../x".into()), ..Default::default() }).unwrap_err();
    assert!(e.to_string().contains("invalid --run"), "{e}");
}

#[test]
fn human_groups_blocks_with_one_header_per_run() {
    let dir = tempfile::tempdir().unwrap();
    hand_written_bucket(dir.path());
    assert_eq!(
        human(dir.path(), ShowOptions::default()),
        "2026-06-02 22:07:01  deploy  seq=17  run=runA\n\
         \x20 reconcile  stop  postgres@10.0.0.1\n\
         \x20 $ runner.py stop\n\
         \x20 postgres@10.0.0.1 | stopping\n\
         \x20 ok  exit=0  1.3s\n\
         \x20 rollout  start  api@10.0.0.2\n\
         \x20 $ make start\n\
         \x20 failed  exit=2  50ms\n\
         \n\
         2026-06-03 08:00:00  deploy  seq=18  run=runB\n\
         \x20 deploy_skip  rollout  skip  postgres  reason=already_promoted\n\
         \x20 job_command  command_check  api\n\
         \x20 $ python3 check.py\n\
         \x20 ok  exit=0  900ms\n"
    );
}

#[test]
fn human_tail_counts_blocks_and_filters_apply_first() {
    let dir = tempfile::tempdir().unwrap();
    hand_written_bucket(dir.path());
    assert_eq!(
        human(dir.path(), ShowOptions { tail: 1, ..Default::default() }),
        "2026-06-03 08:00:01  deploy  seq=18  run=runB\n  job_command  command_check  api\n  $ python3 check.py\n  ok  exit=0  900ms\n"
    );
    let postgres = human(dir.path(), ShowOptions { job: Some("postgres".into()), tail: 2, ..Default::default() });
    assert!(postgres.contains("postgres@10.0.0.1 | stopping"));
    assert!(postgres.contains("deploy_skip"));
    assert!(!postgres.contains("api"));
}

/// Write a small deploy through [`RunLog`] in `format` and return (bucket, run id).
fn written_run(format: LogFormat) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let log = RunLog::open(&BucketPaths::new(dir.path()), format, "deploy", 17).unwrap();
    let pause = || std::thread::sleep(Duration::from_millis(3));
    let ctx = LogCtx::new("reconcile", "stop").with_worker("10.48.200.3").with_job("postgres");
    log.command_begin(&ctx, "python3 .../runner.py stop postgres");
    pause();
    log.output_line(&ctx, Stream::Stdout, "Container postgres  Stopping");
    pause();
    log.output_line(&ctx, Stream::Stderr, "warning: slow");
    pause();
    log.command_end(&ctx, 0, Duration::from_millis(1300));
    pause();
    log.event(
        &LogEvent::new("deploy_skip", LogCtx::new("rollout", "skip").with_job("api")).with_reason("already_promoted"),
    );
    (dir, log.run_id().to_string())
}

#[test]
fn writer_to_reader_round_trip_in_both_formats() {
    for format in [LogFormat::Kv, LogFormat::Json] {
        let (dir, run) = written_run(format);
        let text = human(dir.path(), ShowOptions::default());
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        assert!(header.ends_with(&format!("  deploy  seq=17  run={}", &run[..8])), "{header}");
        assert_eq!(
            lines.collect::<Vec<_>>(),
            [
                "  reconcile  stop  postgres@10.48.200.3",
                "  $ python3 .../runner.py stop postgres",
                "  postgres@10.48.200.3 | Container postgres  Stopping",
                "  postgres@10.48.200.3 ! warning: slow",
                "  ok  exit=0  1.3s",
                "  deploy_skip  rollout  skip  api  reason=already_promoted",
            ],
            "{format:?}"
        );
        let per_run = raw(dir.path(), ShowOptions { run: Some(run.clone()), run_dir: true, ..Default::default() });
        assert_eq!(per_run.len(), 5);
        let stderr =
            raw(dir.path(), ShowOptions { event: Some("command_output".into()), tail: 1, ..Default::default() });
        assert_eq!(field(&stderr[0], "msg"), "warning: slow");
        assert_eq!(field(&stderr[0], "stream"), "stderr");
    }
}

#[test]
fn legacy_and_mixed_lines_are_read() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "logs/10.0.0.5.log",
        &[
            r#"{"ts":"2026-01-01T00:00:00.000Z","event":"command_begin","run":"old1","maand":"deploy","worker":"10.0.0.5","job":"kafka","phase":"rollout","action":"restart","cmd":"make restart"}"#,
            "kafka@10.0.0.5 | restarting broker",
            "kafka@10.0.0.5 ! slow disk",
            "ts=2026-01-01T00:00:05.000Z event=command_end run=old1 maand=deploy worker=10.0.0.5 job=kafka phase=rollout action=restart exit=1 duration_ms=5000",
            "| bare payload",
            "",
            "something unstructured",
        ],
    );
    let all = raw(dir.path(), ShowOptions::default());
    assert_eq!(all.len(), 6, "blank lines are skipped, everything else kept as stored");
    assert_eq!(all[1], "kafka@10.0.0.5 | restarting broker");

    let kafka = raw(dir.path(), ShowOptions { job: Some("kafka".into()), ..Default::default() });
    assert_eq!(kafka.len(), 4, "legacy job@worker lines carry the job");

    assert_eq!(
        human(dir.path(), ShowOptions::default()),
        "2026-01-01 00:00:00  deploy  run=old1\n\
         \x20 rollout  restart  kafka@10.0.0.5\n\
         \x20 $ make restart\n\
         \x20 kafka@10.0.0.5 | restarting broker\n\
         \x20 kafka@10.0.0.5 ! slow disk\n\
         \x20 failed  exit=1  5.0s\n\
         \x20 | bare payload\n\
         \x20 something unstructured\n"
    );
}

#[test]
fn empty_or_missing_logs_show_nothing() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(show(dir.path(), &ShowOptions::default()).unwrap(), "");
    std::fs::create_dir_all(dir.path().join("logs/runs")).unwrap();
    assert_eq!(show(dir.path(), &ShowOptions { format: ShowFormat::Human, ..Default::default() }).unwrap(), "");
}

#[test]
fn format_flag_parses() {
    assert_eq!("raw".parse::<ShowFormat>().unwrap(), ShowFormat::Raw);
    assert_eq!("human".parse::<ShowFormat>().unwrap(), ShowFormat::Human);
    let e = "table".parse::<ShowFormat>().unwrap_err();
    assert_eq!(e.to_string(), "invalid --format \"table\": use raw or human");
}
