//! [`RunLog`]: the per-invocation writer that appends structured lines to `logs/<worker>.log` (or
//! `logs/maand.log`) and to the run's copy under `logs/runs/<run_id>/` (directories 0700, files
//! 0600: output of remote commands can hold anything). Cheap to clone and safe to share between
//! worker threads; each line is written whole with one `write` per file. I/O errors never stop
//! the command: the first one is reported on stderr, the rest are dropped.

use super::event::{build_record, LogCtx, LogEvent, RunFields};
use super::record::{EVENT_COMMAND_BEGIN, EVENT_COMMAND_END, EVENT_COMMAND_OUTPUT};
use super::render::render_line;
use super::timestamp::utc_timestamp;
use maand_core::{Error, ErrorKind, Result};
use maand_remote::Stream;
use maand_store::file_modes::{create_dir_all_with_mode, open_append_with_mode};
use maand_store::private_files::{PRIVATE_DIR_MODE, PRIVATE_FILE_MODE};
use maand_store::{BucketPaths, LogFormat};
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

/// File name (without `.log`) of bucket-local lines (`worker=-`).
pub const BUCKET_LOG_NAME: &str = "maand";

/// The structured log of one maand invocation. Clones share files, run id and `update_seq`.
#[derive(Clone)]
pub struct RunLog {
    shared: Arc<Shared>,
}

struct Shared {
    run_id: String,
    command: String,
    format: LogFormat,
    update_seq: AtomicI64,
    secrets: RwLock<Vec<String>>,
    /// `None` for [`RunLog::disabled`].
    sink: Option<Sink>,
}

struct Sink {
    logs_dir: PathBuf,
    run_dir: PathBuf,
    /// Open files per log name; each entry has its own lock so workers do not wait on each other.
    files: Mutex<HashMap<String, Arc<Mutex<LogFiles>>>>,
    error_reported: AtomicBool,
}

/// The aggregate file and the per-run copy of one worker (either may have failed to open).
struct LogFiles {
    aggregate: Option<File>,
    run_copy: Option<File>,
}

impl RunLog {
    /// Start the log of a new run (fresh UUID v4 run id) for the maand command `command`
    /// (`deploy`, `build`, `jobcommand`, `healthcheck`, `job`, `run_command`, `gc`). Creates
    /// `logs/` and `logs/runs/<run_id>/`; files are opened on first use.
    pub fn open(paths: &BucketPaths, format: LogFormat, command: &str, update_seq: i64) -> Result<RunLog> {
        let run_id = uuid::Uuid::new_v4().to_string();
        let run_dir = paths.run_logs(&run_id);
        create_dir_all_with_mode(&run_dir, PRIVATE_DIR_MODE).map_err(|e| {
            Error::new(
                ErrorKind::Unexpected,
                format!("cannot create log directory {}: {e}; check that the bucket is writable", run_dir.display()),
            )
        })?;
        let sink = Sink {
            logs_dir: paths.logs(),
            run_dir,
            files: Mutex::new(HashMap::new()),
            error_reported: AtomicBool::new(false),
        };
        Ok(RunLog::with_sink(run_id, format, command, update_seq, Some(sink)))
    }

    /// A log that writes nothing (tests, read-only commands). It still has a run id.
    pub fn disabled() -> RunLog {
        RunLog::with_sink(uuid::Uuid::new_v4().to_string(), LogFormat::Kv, "", 0, None)
    }

    fn with_sink(run_id: String, format: LogFormat, command: &str, update_seq: i64, sink: Option<Sink>) -> RunLog {
        RunLog {
            shared: Arc::new(Shared {
                run_id,
                command: command.to_string(),
                format,
                update_seq: AtomicI64::new(update_seq),
                secrets: RwLock::new(Vec::new()),
                sink,
            }),
        }
    }

    pub fn run_id(&self) -> &str {
        &self.shared.run_id
    }

    /// The `update_seq` stamped as `seq` on later lines (omitted while it is 0).
    pub fn set_update_seq(&self, seq: i64) {
        self.shared.update_seq.store(seq, Ordering::Relaxed);
    }

    /// Mask `secret` as `[redacted]` in every later line (DESIGN §6). Empty strings are ignored.
    pub fn add_secret(&self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let mut secrets = self.shared.secrets.write().unwrap_or_else(PoisonError::into_inner);
        if !secrets.iter().any(|s| s == secret) {
            secrets.push(secret.to_string());
            // Longest first, so a secret containing another is masked whole.
            secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// Write any event.
    pub fn event(&self, event: &LogEvent) {
        let Some(sink) = &self.shared.sink else {
            return;
        };
        let ts = utc_timestamp(SystemTime::now());
        let run = RunFields {
            ts: &ts,
            run: &self.shared.run_id,
            maand: &self.shared.command,
            seq: self.shared.update_seq.load(Ordering::Relaxed),
        };
        let record = {
            let secrets = self.shared.secrets.read().unwrap_or_else(PoisonError::into_inner);
            build_record(event, &run, &secrets)
        };
        let mut line = render_line(&record, self.shared.format);
        line.push('\n');
        sink.append(log_name(event.ctx.worker_field()), &line);
    }

    /// `event=command_begin` with the (summarised) command line.
    pub fn command_begin(&self, ctx: &LogCtx, cmd: &str) {
        self.event(&LogEvent::new(EVENT_COMMAND_BEGIN, ctx.clone()).with_extra("cmd", cmd));
    }

    /// One output line of a running command (`event=command_output stream=stdout|stderr msg=…`).
    pub fn output_line(&self, ctx: &LogCtx, stream: Stream, msg: &str) {
        let stream = match stream {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        };
        let event = LogEvent::new(EVENT_COMMAND_OUTPUT, ctx.clone()).with_extra("stream", stream).with_msg(msg);
        self.event(&event);
    }

    /// `event=command_end` with `exit` and `duration_ms`.
    pub fn command_end(&self, ctx: &LogCtx, exit: i32, duration: Duration) {
        let event = LogEvent::new(EVENT_COMMAND_END, ctx.clone())
            .with_extra("exit", exit.to_string())
            .with_extra("duration_ms", duration.as_millis().to_string());
        self.event(&event);
    }
}

impl std::fmt::Debug for RunLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunLog")
            .field("run_id", &self.shared.run_id)
            .field("command", &self.shared.command)
            .field("enabled", &self.shared.sink.is_some())
            .finish()
    }
}

/// The file name (without `.log`) for a `worker` field: `maand` for `-`, else the worker with
/// path separators replaced so it always names a file directly under `logs/`.
pub fn log_name(worker: &str) -> String {
    match worker {
        "" | "-" => BUCKET_LOG_NAME.to_string(),
        ".." | "." => worker.replace('.', "_"),
        worker => worker.replace(['/', '\\'], "_"),
    }
}

impl Sink {
    fn append(&self, name: String, line: &str) {
        let files = {
            let mut map = self.files.lock().unwrap_or_else(PoisonError::into_inner);
            let entry = map.entry(name).or_insert_with_key(|name| {
                let file_name = format!("{name}.log");
                Arc::new(Mutex::new(LogFiles {
                    aggregate: self.open_file(&self.logs_dir.join(&file_name)),
                    run_copy: self.open_file(&self.run_dir.join(&file_name)),
                }))
            });
            Arc::clone(entry)
        };
        let mut files = files.lock().unwrap_or_else(PoisonError::into_inner);
        let LogFiles { aggregate, run_copy } = &mut *files;
        for file in [aggregate, run_copy].into_iter().flatten() {
            if let Err(e) = file.write_all(line.as_bytes()).and_then(|()| file.flush()) {
                self.report(&format!("cannot write log line: {e}"));
            }
        }
    }

    fn open_file(&self, path: &Path) -> Option<File> {
        match open_append_with_mode(path, PRIVATE_FILE_MODE) {
            Ok(file) => Some(file),
            Err(e) => {
                self.report(&format!("cannot open log file {}: {e}", path.display()));
                None
            }
        }
    }

    /// Tell the operator about the first logging failure only.
    fn report(&self, problem: &str) {
        if !self.error_reported.swap(true, Ordering::Relaxed) {
            eprintln!("maand: {problem}; further log write errors are not reported");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_names_stay_inside_the_logs_directory() {
        assert_eq!(log_name("-"), "maand");
        assert_eq!(log_name(""), "maand");
        assert_eq!(log_name("10.0.0.1"), "10.0.0.1");
        assert_eq!(log_name("fe80::1"), "fe80::1");
        assert_eq!(log_name("../etc/x"), ".._etc_x");
        assert_eq!(log_name(".."), "__");
    }

    #[test]
    fn disabled_log_has_a_run_id_and_writes_nothing() {
        let log = RunLog::disabled();
        assert_eq!(log.run_id().len(), 36);
        log.command_begin(&LogCtx::new("rollout", "start"), "true");
        assert!(log.shared.sink.is_none());
    }
}
