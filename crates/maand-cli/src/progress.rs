//! The live progress view on a terminal: one spinner line per job showing its current state
//! (staging, syncing, batch and workers, health gate, promoted/failed), with streamed output and
//! messages scrolling above. Off a terminal, line output is used instead (spec §10.3).

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use maand_engine::output::{Reporter, StderrReporter};
use maand_remote::Stream;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

pub struct TerminalProgress {
    multi: MultiProgress,
    jobs: Mutex<BTreeMap<String, ProgressBar>>,
}

impl TerminalProgress {
    fn new() -> TerminalProgress {
        TerminalProgress {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            jobs: Mutex::default(),
        }
    }

    fn bar(&self, job: &str) -> Option<ProgressBar> {
        let mut jobs = self.jobs.lock().ok()?;
        let bar = jobs.entry(job.to_string()).or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new_spinner());
            let style = ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.set_prefix(job.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Some(bar.clone())
    }

    fn println(&self, text: &str) {
        if self.multi.println(text).is_err() {
            eprintln!("{text}");
        }
    }
}

impl Reporter for TerminalProgress {
    fn line(&self, source: &str, stream: Stream, text: &str) {
        let sep = if stream == Stream::Stderr { '!' } else { '|' };
        self.println(&format!("{source} {sep} {text}"));
    }

    fn message(&self, text: &str) {
        self.println(text);
    }

    fn job_status(&self, job: &str, status: &str) {
        let Some(bar) = self.bar(job) else { return };
        let done = ["promoted", "skipped", "failed", "blocked"].iter().any(|s| status.starts_with(s));
        if done {
            bar.finish_with_message(status.to_string());
        } else {
            bar.set_message(status.to_string());
        }
    }
}

impl Drop for TerminalProgress {
    fn drop(&mut self) {
        if let Ok(jobs) = self.jobs.lock() {
            for bar in jobs.values() {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
        }
    }
}

/// The reporter for this process: the live view when stderr is a terminal (and not MAAND_QUIET),
/// line output otherwise.
pub fn reporter() -> Box<dyn Reporter> {
    if std::io::stderr().is_terminal() && std::env::var("MAAND_QUIET").map_or(true, |v| v != "1") {
        Box::new(TerminalProgress::new())
    } else {
        Box::new(StderrReporter)
    }
}
