//! `maand logs show` (spec/features.md §3.12): which files to read (aggregates, one worker, or a
//! run's own directory), merging their lines by timestamp, the field filters, `--tail`, and the
//! `raw` / `human` output.

use super::human::render_human;
use super::parse::parse_line;
use super::record::LogRecord;
use super::writer::log_name;
use maand_core::{Error, ErrorKind, Result};
use maand_store::BucketPaths;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// `--format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ShowFormat {
    /// Lines as stored.
    #[default]
    Raw,
    /// Command blocks (begin, output, end) under one header per run.
    Human,
}

impl FromStr for ShowFormat {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "raw" => Ok(ShowFormat::Raw),
            "human" => Ok(ShowFormat::Human),
            other => Err(Error::msg(format!("invalid --format {other:?}: use raw or human"))),
        }
    }
}

/// The flags of `maand logs show`. `tail == 0` means everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShowOptions {
    pub format: ShowFormat,
    /// Read only `logs/<worker>.log` (`-` = `maand.log`).
    pub worker: Option<String>,
    /// Only this run; its files under `logs/runs/<run>/` are read when they exist.
    pub run: Option<String>,
    /// Insist on the per-run files (needs `run`).
    pub run_dir: bool,
    pub job: Option<String>,
    pub phase: Option<String>,
    pub event: Option<String>,
    /// Last N matching lines (raw) or N blocks (human).
    pub tail: usize,
}

/// One stored line with the timestamp it sorts by.
struct Entry {
    sort_ts: String,
    raw: String,
    record: LogRecord,
}

/// The text `maand logs show` prints for the bucket at `root`.
pub fn show(root: &Path, opts: &ShowOptions) -> Result<String> {
    let paths = BucketPaths::new(root);
    let (files, filter_run) = select_files(&paths, opts)?;
    let mut entries = Vec::new();
    for file in &files {
        read_entries(file, &mut entries)?;
    }
    // Stable: lines of one file with equal timestamps keep their order.
    entries.sort_by(|a, b| a.sort_ts.cmp(&b.sort_ts));
    let run_filter = if filter_run { opts.run.as_deref() } else { None };
    let matching: Vec<&Entry> = entries.iter().filter(|e| matches(&e.record, opts, run_filter)).collect();
    Ok(match opts.format {
        ShowFormat::Raw => {
            let skip = if opts.tail > 0 { matching.len().saturating_sub(opts.tail) } else { 0 };
            matching[skip..].iter().map(|e| format!("{}\n", e.raw)).collect()
        }
        ShowFormat::Human => {
            let records: Vec<&LogRecord> = matching.iter().map(|e| &e.record).collect();
            render_human(&records, opts.tail)
        }
    })
}

/// The files to read and whether lines still need the `run` filter (aggregates hold every run).
fn select_files(paths: &BucketPaths, opts: &ShowOptions) -> Result<(Vec<PathBuf>, bool)> {
    let (dir, filter_run) = match opts.run.as_deref() {
        None if opts.run_dir => {
            return Err(Error::msg("--run-dir needs --run <id>: per-run files live in logs/runs/<id>/"));
        }
        None => (paths.logs(), false),
        Some(run) => {
            if run.is_empty() || run.contains(['/', '\\']) || run == "." || run == ".." {
                return Err(Error::msg(format!("invalid --run {run:?}: give a run id as printed in the logs")));
            }
            let run_dir = paths.run_logs(run);
            if run_dir.is_dir() {
                (run_dir, false)
            } else if opts.run_dir {
                return Err(Error::msg(format!(
                    "no per-run logs for run {run}: {} does not exist (runs are listed in logs/runs/)",
                    run_dir.display()
                )));
            } else {
                (paths.logs(), true)
            }
        }
    };
    if let Some(worker) = opts.worker.as_deref() {
        let file = dir.join(format!("{}.log", log_name(worker)));
        if !file.is_file() {
            return Err(Error::msg(format!("no logs for worker {worker}: {} does not exist", file.display())));
        }
        return Ok((vec![file], filter_run));
    }
    Ok((log_files_in(&dir)?, filter_run))
}

/// `*.log` files directly in `dir`, sorted by name; none when `dir` does not exist yet.
fn log_files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_error(dir, &e)),
    };
    let mut files = Vec::new();
    for entry in listing {
        let path = entry.map_err(|e| read_error(dir, &e))?.path();
        if path.is_file() && path.extension().is_some_and(|ext| ext == "log") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Parse every line of `file`. Lines without `ts` (legacy payload lines) sort with the line before.
fn read_entries(file: &Path, entries: &mut Vec<Entry>) -> Result<()> {
    let bytes = std::fs::read(file).map_err(|e| read_error(file, &e))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut last_ts = String::new();
    for line in text.lines() {
        let record = parse_line(line);
        if record.is_empty() {
            continue;
        }
        if let Some(ts) = record.get("ts") {
            last_ts = ts.to_string();
        }
        entries.push(Entry { sort_ts: last_ts.clone(), raw: line.trim_end_matches('\r').to_string(), record });
    }
    Ok(())
}

fn matches(record: &LogRecord, opts: &ShowOptions, run: Option<&str>) -> bool {
    [("run", run), ("job", opts.job.as_deref()), ("phase", opts.phase.as_deref()), ("event", opts.event.as_deref())]
        .into_iter()
        .all(|(key, wanted)| wanted.is_none_or(|wanted| record.get(key) == Some(wanted)))
}

fn read_error(path: &Path, e: &std::io::Error) -> Error {
    Error::new(ErrorKind::Unexpected, format!("cannot read {}: {e}", path.display()))
}
