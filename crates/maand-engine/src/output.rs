//! Where a run's human-facing output goes: streamed remote lines (`job@worker | line`, `!` for
//! stderr) and plain progress messages. The CLI chooses the implementation (line output on
//! stderr; a progress view on a terminal); tests capture it.

use maand_remote::Stream;
use std::sync::Mutex;

pub trait Reporter: Send + Sync {
    /// One output line of a command run for `source` (`job@worker`, `job` or a worker IP).
    fn line(&self, source: &str, stream: Stream, text: &str);
    /// A progress message (`deploy: skip job "x" (already promoted on all allocations)`).
    fn message(&self, text: &str);
    /// The current state of a job in a long run (`restart batch 2/3: 10.0.0.2`, `health gate`,
    /// `promoted`). Shown live by the terminal progress view; line output ignores it.
    fn job_status(&self, _job: &str, _status: &str) {}
}

/// Line output on stderr (spec §10.3).
pub struct StderrReporter;

impl Reporter for StderrReporter {
    fn line(&self, source: &str, stream: Stream, text: &str) {
        let sep = if stream == Stream::Stderr { '!' } else { '|' };
        eprintln!("{source} {sep} {text}");
    }

    fn message(&self, text: &str) {
        eprintln!("{text}");
    }
}

/// For a command whose remote output is its result (`maand run_command`): what the remote
/// command printed on its stdout goes to stdout (`worker | line`, so `> out` captures it); its
/// stderr and maand's own messages go to stderr.
pub struct ResultReporter;

impl Reporter for ResultReporter {
    fn line(&self, source: &str, stream: Stream, text: &str) {
        match stream {
            Stream::Stdout => println!("{source} | {text}"),
            Stream::Stderr => StderrReporter.line(source, stream, text),
        }
    }

    fn message(&self, text: &str) {
        StderrReporter.message(text);
    }
}

/// Keeps everything in memory (tests).
#[derive(Default)]
pub struct CapturingReporter {
    pub lines: Mutex<Vec<String>>,
}

impl CapturingReporter {
    pub fn text(&self) -> String {
        self.lines.lock().map(|l| l.join("\n")).unwrap_or_default()
    }
}

impl Reporter for CapturingReporter {
    fn line(&self, source: &str, stream: Stream, text: &str) {
        let sep = if stream == Stream::Stderr { '!' } else { '|' };
        if let Ok(mut l) = self.lines.lock() {
            l.push(format!("{source} {sep} {text}"));
        }
    }

    fn message(&self, text: &str) {
        if let Ok(mut l) = self.lines.lock() {
            l.push(text.to_string());
        }
    }
}
