//! What callers log: [`LogCtx`] (where: worker, job, phase, action) and [`LogEvent`] (what
//! happened), and how an event becomes a [`LogRecord`] in §10.3 key order with secrets masked and
//! `cmd` summarised.

use super::record::{LogRecord, STANDARD_KEYS};

/// Maximum length of the `cmd` summary before `...` is appended.
pub const CMD_SUMMARY_CHARS: usize = 200;

/// The placeholder that replaces a registered secret value in every logged field.
pub const REDACTED: &str = "[redacted]";

/// Where a line belongs. `worker: None` (or `-`) means bucket-local, written to `maand.log`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogCtx {
    pub worker: Option<String>,
    pub job: Option<String>,
    pub phase: String,
    pub action: String,
}

impl LogCtx {
    /// A bucket-local context (`worker=-`).
    pub fn new(phase: impl Into<String>, action: impl Into<String>) -> Self {
        LogCtx { worker: None, job: None, phase: phase.into(), action: action.into() }
    }

    pub fn with_worker(mut self, worker: impl Into<String>) -> Self {
        self.worker = Some(worker.into());
        self
    }

    pub fn with_job(mut self, job: impl Into<String>) -> Self {
        self.job = Some(job.into());
        self
    }

    /// The `worker` field: the worker's address, or `-` for bucket-local lines.
    pub fn worker_field(&self) -> &str {
        match self.worker.as_deref() {
            None | Some("") => "-",
            Some(worker) => worker,
        }
    }
}

/// One structured event. Extra keys `cmd`, `stream`, `exit`, `duration_ms`, `reason` and `msg`
/// are written in their standard position; other standard names (`ts`, `run`, `job`, …) come from
/// the run and the context and are ignored in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogEvent {
    pub event: String,
    pub ctx: LogCtx,
    pub reason: Option<String>,
    pub msg: Option<String>,
    pub extra: Vec<(String, String)>,
}

impl LogEvent {
    pub fn new(event: impl Into<String>, ctx: LogCtx) -> Self {
        LogEvent { event: event.into(), ctx, ..LogEvent::default() }
    }

    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    pub fn with_msg(mut self, msg: impl Into<String>) -> Self {
        self.msg = Some(msg.into());
        self
    }

    pub fn with_extra(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.push((key.into(), value.into()));
        self
    }
}

/// The run-wide fields stamped on every line.
pub struct RunFields<'a> {
    pub ts: &'a str,
    pub run: &'a str,
    pub maand: &'a str,
    pub seq: i64,
}

/// The record for `event` in §10.3 key order; every value has each of `secrets` masked.
pub fn build_record(event: &LogEvent, run: &RunFields<'_>, secrets: &[String]) -> LogRecord {
    let seq = if run.seq > 0 { run.seq.to_string() } else { String::new() };
    let ctx = &event.ctx;
    let mut record = LogRecord::default();
    for key in STANDARD_KEYS {
        let value = match key {
            "ts" => run.ts,
            "level" => "INFO",
            "event" => event.event.as_str(),
            "run" => run.run,
            "maand" => run.maand,
            "seq" => seq.as_str(),
            "worker" => ctx.worker_field(),
            "job" => ctx.job.as_deref().unwrap_or(""),
            "phase" => ctx.phase.as_str(),
            "action" => ctx.action.as_str(),
            "reason" => event.reason.as_deref().unwrap_or_else(|| extra_value(event, key)),
            "msg" => event.msg.as_deref().unwrap_or_else(|| extra_value(event, key)),
            _ => extra_value(event, key),
        };
        let value = mask_secrets(value, secrets);
        let value = if key == "cmd" { summarize_cmd(&value) } else { value };
        record.set(key, value);
    }
    for (key, value) in &event.extra {
        let key = sanitize_key(key);
        if !STANDARD_KEYS.contains(&key.as_str()) {
            record.set_if_absent(&key, mask_secrets(value, secrets));
        }
    }
    record
}

fn extra_value<'e>(event: &'e LogEvent, key: &str) -> &'e str {
    event.extra.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or("")
}

/// `cmd` as logged: whitespace runs collapsed to one space, cut at 200 characters plus `...`.
pub fn summarize_cmd(cmd: &str) -> String {
    let collapsed = cmd.split_whitespace().collect::<Vec<_>>().join(" ");
    match collapsed.char_indices().nth(CMD_SUMMARY_CHARS) {
        Some((cut, _)) => format!("{}...", &collapsed[..cut]),
        None => collapsed,
    }
}

fn mask_secrets(value: &str, secrets: &[String]) -> String {
    secrets.iter().filter(|s| !s.is_empty()).fold(value.to_string(), |v, secret| v.replace(secret.as_str(), REDACTED))
}

/// Keys are written bare, so anything but letters, digits, `_`, `-` and `.` becomes `_`.
fn sanitize_key(key: &str) -> String {
    key.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_fields(seq: i64) -> RunFields<'static> {
        RunFields { ts: "2026-06-02T22:07:01.000Z", run: "r1", maand: "deploy", seq }
    }

    fn keys(r: &LogRecord) -> Vec<&str> {
        r.fields().iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn standard_keys_come_first_in_spec_order_then_extras() {
        let ctx = LogCtx::new("rollout", "start").with_worker("10.0.0.1").with_job("pg");
        let e = LogEvent::new("command_end", ctx)
            .with_extra("attempt", "2")
            .with_extra("duration_ms", "1300")
            .with_extra("exit", "0")
            .with_msg("done");
        let r = build_record(&e, &run_fields(17), &[]);
        assert_eq!(
            keys(&r),
            [
                "ts",
                "level",
                "event",
                "run",
                "maand",
                "seq",
                "worker",
                "job",
                "phase",
                "action",
                "exit",
                "duration_ms",
                "msg",
                "attempt"
            ]
        );
        assert_eq!(r.get("level"), Some("INFO"));
        assert_eq!(r.get("seq"), Some("17"));
    }

    #[test]
    fn empty_fields_and_zero_seq_are_omitted_and_worker_defaults_to_dash() {
        let e = LogEvent::new("deploy_skip", LogCtx::new("", "")).with_reason("already_promoted");
        let r = build_record(&e, &run_fields(0), &[]);
        assert_eq!(keys(&r), ["ts", "level", "event", "run", "maand", "worker", "reason"]);
        assert_eq!(r.get("worker"), Some("-"));
    }

    #[test]
    fn cmd_is_collapsed_and_truncated_at_200_chars() {
        assert_eq!(summarize_cmd("  make\t -s\n  -C  /opt/x  start "), "make -s -C /opt/x start");
        let long = "x".repeat(250);
        let summary = summarize_cmd(&long);
        assert_eq!(summary, format!("{}...", "x".repeat(200)));
        assert_eq!(summarize_cmd(&"é".repeat(200)), "é".repeat(200));
    }

    #[test]
    fn secrets_are_masked_everywhere_before_truncation() {
        let ctx = LogCtx::new("job_command", "backup");
        let secret = "s3cr3t-token".to_string();
        let e = LogEvent::new("command_begin", ctx)
            .with_extra("cmd", format!("{} TOKEN={secret}", "a".repeat(195)))
            .with_msg(format!("token is {secret}"))
            .with_extra("note", secret.clone());
        let r = build_record(&e, &run_fields(1), std::slice::from_ref(&secret));
        for (_, value) in r.fields() {
            assert!(!value.contains("s3cr3t"), "secret leaked in {value}");
        }
        assert_eq!(r.get("msg"), Some("token is [redacted]"));
        assert_eq!(r.get("note"), Some(REDACTED));
    }

    #[test]
    fn extra_keys_are_sanitized_and_never_duplicate_standard_keys() {
        let e = LogEvent::new("x", LogCtx::new("p", "a")).with_extra("bad key=", "v").with_extra("job", "shadow");
        let r = build_record(&e, &run_fields(0), &[]);
        assert_eq!(r.get("bad_key_"), Some("v"));
        assert_eq!(r.get("job"), None);
    }
}
