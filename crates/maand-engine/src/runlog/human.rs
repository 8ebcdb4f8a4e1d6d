//! `maand logs show --format human`: groups each command's begin, output and end lines (matched by
//! run, worker, job, phase and action) into one block, prints other events as one-line blocks, and
//! puts a header before the blocks of each run.

use super::record::{LogRecord, EVENT_COMMAND_BEGIN, EVENT_COMMAND_END, EVENT_COMMAND_OUTPUT, STANDARD_KEYS};
use super::render::kv_value;
use super::timestamp::human_timestamp;
use std::collections::HashMap;

/// Lines of a command block or a single event.
struct Block<'a> {
    records: Vec<&'a LogRecord>,
    kind: BlockKind,
    key: CommandKey<'a>,
    /// A command block whose `command_begin` was not seen (legacy or filtered lines).
    implicit: bool,
    closed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Command,
    Event,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    Begin,
    Output,
    End,
    Other,
}

/// What ties a command's lines together.
type CommandKey<'a> = [&'a str; 5];

/// The human rendering of `records` (already filtered and ordered), keeping the last `tail`
/// blocks when `tail > 0`.
pub fn render_human(records: &[&LogRecord], tail: usize) -> String {
    let blocks = group_blocks(records);
    let skip = if tail > 0 { blocks.len().saturating_sub(tail) } else { 0 };
    let mut lines: Vec<String> = Vec::new();
    let mut current_run = "";
    for block in &blocks[skip..] {
        let first = block.records[0];
        let run = field(first, "run");
        if !run.is_empty() && run != current_run {
            if !lines.is_empty() {
                lines.push(String::new());
            }
            lines.push(run_header(first));
            current_run = run;
        }
        render_block(block, &mut lines);
    }
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    text
}

fn group_blocks<'a>(records: &[&'a LogRecord]) -> Vec<Block<'a>> {
    let mut blocks: Vec<Block<'a>> = Vec::new();
    let mut open: HashMap<CommandKey<'a>, usize> = HashMap::new();
    for &record in records {
        let key = command_key(record);
        let kind = line_kind(record);
        if kind == LineKind::Other {
            blocks.push(Block { records: vec![record], kind: BlockKind::Event, key, implicit: false, closed: true });
            continue;
        }
        if kind == LineKind::Begin {
            open.insert(key, blocks.len());
            blocks.push(Block { records: vec![record], kind: BlockKind::Command, key, implicit: false, closed: false });
            continue;
        }
        let open_block = open_block_for(&open, key);
        if kind == LineKind::End {
            if let Some((open_key, _)) = open_block {
                open.remove(&open_key);
            }
        }
        let target = open_block.map(|(_, index)| index).or_else(|| continuing_implicit_block(&blocks, key));
        match target {
            Some(index) => {
                blocks[index].records.push(record);
                blocks[index].closed = kind == LineKind::End;
            }
            None => blocks.push(Block {
                records: vec![record],
                kind: BlockKind::Command,
                key,
                implicit: true,
                closed: kind == LineKind::End,
            }),
        }
    }
    blocks
}

/// The open command block a line belongs to: the same key, else the most recently begun block
/// whose key agrees on every part the line has (legacy `job@worker | msg` lines carry no run,
/// phase or action).
fn open_block_for<'a>(open: &HashMap<CommandKey<'a>, usize>, key: CommandKey<'a>) -> Option<(CommandKey<'a>, usize)> {
    if let Some(&index) = open.get(&key) {
        return Some((key, index));
    }
    open.iter()
        .filter(|(open_key, _)| {
            key.iter().zip(open_key.iter()).all(|(part, open_part)| part.is_empty() || part == open_part)
        })
        .max_by_key(|(_, &index)| index)
        .map(|(&open_key, &index)| (open_key, index))
}

/// Lines without a seen begin continue the previous block only when it is the last one, still
/// open, and for the same command.
fn continuing_implicit_block(blocks: &[Block<'_>], key: CommandKey<'_>) -> Option<usize> {
    let last = blocks.last()?;
    (last.implicit && !last.closed && last.key == key).then(|| blocks.len() - 1)
}

fn command_key(record: &LogRecord) -> CommandKey<'_> {
    ["run", "worker", "job", "phase", "action"].map(|key| field(record, key))
}

fn line_kind(record: &LogRecord) -> LineKind {
    match record.get("event") {
        Some(EVENT_COMMAND_BEGIN) => LineKind::Begin,
        Some(EVENT_COMMAND_END) => LineKind::End,
        Some(EVENT_COMMAND_OUTPUT) => LineKind::Output,
        _ if record.get("stream").is_some() => LineKind::Output,
        _ => LineKind::Other,
    }
}

fn field<'a>(record: &'a LogRecord, key: &str) -> &'a str {
    record.get(key).unwrap_or("")
}

/// `2026-06-02 22:07:01  deploy  seq=17  run=8f3a2c12`
fn run_header(record: &LogRecord) -> String {
    let run: String = field(record, "run").chars().take(8).collect();
    let seq = record.get("seq").map(|seq| format!("seq={seq}"));
    join_parts([
        Some(human_timestamp(field(record, "ts"))),
        Some(field(record, "maand").to_string()),
        seq,
        Some(format!("run={run}")),
    ])
}

fn render_block(block: &Block<'_>, lines: &mut Vec<String>) {
    let first = block.records[0];
    if block.kind == BlockKind::Event {
        lines.push(format!("  {}", event_line(first)));
        return;
    }
    let title = join_parts([field(first, "phase"), field(first, "action"), &label(first)].map(|s| Some(s.to_string())));
    if !title.is_empty() {
        lines.push(format!("  {title}"));
    }
    for record in &block.records {
        match line_kind(record) {
            LineKind::Begin => lines.push(format!("  $ {}", field(record, "cmd"))),
            LineKind::End => lines.push(format!("  {}", end_line(record))),
            _ => lines.push(output_line(record)),
        }
    }
}

/// `  job@worker | msg` (`!` for stderr), like the terminal.
fn output_line(record: &LogRecord) -> String {
    let mark = if record.get("stream") == Some("stderr") { "!" } else { "|" };
    let label = label(record);
    let prefix = if label.is_empty() { String::new() } else { format!("{label} ") };
    format!("  {prefix}{mark} {}", field(record, "msg"))
}

/// `ok  exit=0  1.3s` / `failed  exit=2  250ms`
fn end_line(record: &LogRecord) -> String {
    let exit = record.get("exit");
    let status = match exit {
        Some("0") => "ok",
        Some(_) => "failed",
        None => "ended",
    };
    join_parts([
        Some(status.to_string()),
        exit.map(|exit| format!("exit={exit}")),
        record.get("duration_ms").map(human_duration),
    ])
}

/// A non-command event on one line: `deploy_skip  cassandra  reason=already_promoted`.
fn event_line(record: &LogRecord) -> String {
    let mut parts: Vec<Option<String>> =
        ["event", "phase", "action"].iter().map(|key| Some(field(record, key).to_string())).collect();
    parts.push(Some(label(record)));
    parts.push(record.get("reason").map(|reason| format!("reason={}", kv_value(reason))));
    parts.push(record.get("msg").map(str::to_string));
    for (key, value) in record.fields() {
        if !STANDARD_KEYS.contains(&key.as_str()) {
            parts.push(Some(format!("{key}={}", kv_value(value))));
        }
    }
    join_parts(parts)
}

/// `job@worker`, `job` for bucket-local lines, `worker` when there is no job.
fn label(record: &LogRecord) -> String {
    let worker = match field(record, "worker") {
        "-" => "",
        worker => worker,
    };
    match (field(record, "job"), worker) {
        ("", worker) => worker.to_string(),
        (job, "") => job.to_string(),
        (job, worker) => format!("{job}@{worker}"),
    }
}

/// `250ms` below a second, else seconds with one decimal (`1.3s`).
fn human_duration(ms: &str) -> String {
    match ms.parse::<u64>() {
        Ok(ms) if ms < 1000 => format!("{ms}ms"),
        Ok(ms) => format!("{:.1}s", ms as f64 / 1000.0),
        Err(_) => format!("{ms}ms"),
    }
}

/// Non-empty parts separated by two spaces.
fn join_parts(parts: impl IntoIterator<Item = Option<String>>) -> String {
    parts.into_iter().flatten().filter(|p| !p.is_empty()).collect::<Vec<_>>().join("  ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runlog::parse::parse_line;

    fn render(lines: &[&str], tail: usize) -> String {
        let records: Vec<LogRecord> = lines.iter().map(|l| parse_line(l)).collect();
        let refs: Vec<&LogRecord> = records.iter().collect();
        render_human(&refs, tail)
    }

    const RUN: &str = "run=8f3a2c12-aaaa maand=deploy seq=17";

    #[test]
    fn spec_example_block() {
        let text = render(
            &[
                &format!("ts=2026-06-02T22:07:01.100Z event=command_begin {RUN} worker=10.48.200.3 job=postgres phase=reconcile action=stop cmd=\"python3 .../runner.py stop postgres\""),
                &format!("ts=2026-06-02T22:07:01.500Z event=command_output {RUN} worker=10.48.200.3 job=postgres phase=reconcile action=stop stream=stdout msg=\"Container postgres  Stopping\""),
                &format!("ts=2026-06-02T22:07:02.400Z event=command_end {RUN} worker=10.48.200.3 job=postgres phase=reconcile action=stop exit=0 duration_ms=1300"),
            ],
            0,
        );
        assert_eq!(
            text,
            "2026-06-02 22:07:01  deploy  seq=17  run=8f3a2c12\n\
             \x20 reconcile  stop  postgres@10.48.200.3\n\
             \x20 $ python3 .../runner.py stop postgres\n\
             \x20 postgres@10.48.200.3 | Container postgres  Stopping\n\
             \x20 ok  exit=0  1.3s\n"
        );
    }

    #[test]
    fn interleaved_commands_are_grouped_by_worker() {
        let text = render(
            &[
                "run=r1 maand=deploy event=command_begin worker=a job=j phase=rollout action=start cmd=x",
                "run=r1 maand=deploy event=command_begin worker=b job=j phase=rollout action=start cmd=x",
                "run=r1 maand=deploy event=command_output worker=a job=j phase=rollout action=start stream=stdout msg=from-a",
                "run=r1 maand=deploy event=command_output worker=b job=j phase=rollout action=start stream=stderr msg=from-b",
                "run=r1 maand=deploy event=command_end worker=b job=j phase=rollout action=start exit=2 duration_ms=20",
                "run=r1 maand=deploy event=command_end worker=a job=j phase=rollout action=start exit=0 duration_ms=10",
            ],
            0,
        );
        assert_eq!(
            text,
            "deploy  run=r1\n  rollout  start  j@a\n  $ x\n  j@a | from-a\n  ok  exit=0  10ms\n  \
             rollout  start  j@b\n  $ x\n  j@b ! from-b\n  failed  exit=2  20ms\n"
        );
    }

    #[test]
    fn tail_counts_blocks_and_keeps_their_run_header() {
        let text = render(
            &[
                "run=r1 maand=build event=command_begin action=a cmd=one",
                "run=r1 maand=build event=command_end action=a exit=0 duration_ms=1",
                "run=r2 maand=deploy event=deploy_skip job=pg reason=already_promoted",
                "run=r2 maand=deploy event=command_begin action=b cmd=two",
                "run=r2 maand=deploy event=command_end action=b exit=1 duration_ms=2500",
            ],
            2,
        );
        assert_eq!(
            text,
            "deploy  run=r2\n  deploy_skip  pg  reason=already_promoted\n  b\n  $ two\n  failed  exit=1  2.5s\n"
        );
    }

    #[test]
    fn legacy_lines_form_their_own_block() {
        let text = render(&["pg@10.0.0.1 | line one", "pg@10.0.0.1 ! line two", "free text"], 0);
        assert_eq!(text, "  pg@10.0.0.1\n  pg@10.0.0.1 | line one\n  pg@10.0.0.1 ! line two\n  free text\n");
    }

    #[test]
    fn one_header_per_run_with_blank_line_between_runs() {
        let text = render(&["run=r1 maand=gc event=a", "run=r1 maand=gc event=b", "run=r2 maand=gc event=c"], 0);
        assert_eq!(text, "gc  run=r1\n  a\n  b\n\ngc  run=r2\n  c\n");
    }
}
