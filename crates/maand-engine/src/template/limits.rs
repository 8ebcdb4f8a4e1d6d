//! The bounds of one rendering (issue 14): source size, output size and time. A template bomb —
//! `{{ range 100000000 }}`, nested ranges, a 20 MB source — stops with an error naming the
//! template instead of running for minutes or filling memory. The time limit covers lexing,
//! parsing and execution; the output limit also bounds every string or list a template builds on
//! the way (`$x = printf "%s%s" $x $x` in a loop).

use std::cell::Cell;
use std::time::{Duration, Instant};

/// Largest template source (a larger one is refused before it is read into tokens).
pub const MAX_SOURCE_BYTES: usize = 16 << 20;
/// Largest rendered output, and largest value built during execution.
pub const MAX_OUTPUT_BYTES: usize = 64 << 20;
/// Time limit of one rendering unless maand.conf sets `template_timeout_seconds`.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(10);

/// The limits a rendering runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub time: Duration,
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { time: DEFAULT_TIME_LIMIT, max_output_bytes: MAX_OUTPUT_BYTES }
    }
}

impl Limits {
    /// The default limits with a time limit of `seconds`.
    pub fn with_time_limit_seconds(seconds: u64) -> Limits {
        Limits { time: Duration::from_secs(seconds), ..Limits::default() }
    }
}

/// Steps between two readings of the clock (reading it is cheap, but not free).
const STEPS_PER_CLOCK_READ: u32 = 256;

/// A rendering in progress: the lexer, the parser and the executor count their steps against its
/// deadline and measure what they build against its output limit. Errors are the message to
/// report where the rendering stopped.
pub(crate) struct Budget {
    deadline: Instant,
    limits: Limits,
    steps: Cell<u32>,
}

impl Budget {
    pub fn start(limits: Limits) -> Budget {
        let now = Instant::now();
        Budget { deadline: now.checked_add(limits.time).unwrap_or(now), limits, steps: Cell::new(0) }
    }

    /// No practical bound (tests of the lexer and parser).
    #[cfg(test)]
    pub fn unlimited() -> Budget {
        Budget::start(Limits { time: Duration::from_secs(86_400), max_output_bytes: usize::MAX })
    }

    /// One step of work; past the deadline, the error.
    pub fn step(&self) -> Result<(), String> {
        let steps = self.steps.get().wrapping_add(1);
        self.steps.set(steps);
        if !steps.is_multiple_of(STEPS_PER_CLOCK_READ) || Instant::now() < self.deadline {
            return Ok(());
        }
        Err(format!(
            "stopped after {} s, the time limit of a template (template_timeout_seconds in maand.conf)",
            self.limits.time.as_secs_f64()
        ))
    }

    /// `bytes` of output (or of one value); over the limit, the error.
    pub fn output(&self, bytes: usize) -> Result<(), String> {
        if bytes <= self.limits.max_output_bytes {
            return Ok(());
        }
        Err(format!("the output exceeds {}, the size limit of a rendered template", mib(self.limits.max_output_bytes)))
    }
}

/// A source over [`MAX_SOURCE_BYTES`]: the error.
pub(crate) fn check_source(source: &str) -> Result<(), String> {
    if source.len() <= MAX_SOURCE_BYTES {
        return Ok(());
    }
    Err(format!("the template is {}; a template may be at most {}", mib(source.len()), mib(MAX_SOURCE_BYTES)))
}

fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_is_read_every_256_steps() {
        let spent = Budget::start(Limits { time: Duration::ZERO, max_output_bytes: 10 });
        assert_eq!((1..=1000).find(|_| spent.step().is_err()), Some(STEPS_PER_CLOCK_READ));
        let fresh = Budget::start(Limits::default());
        assert!((0..1000).all(|_| fresh.step().is_ok()));
    }

    #[test]
    fn messages_say_which_limit() {
        let budget = Budget::start(Limits { time: Duration::from_millis(1500), max_output_bytes: 64 << 20 });
        std::thread::sleep(Duration::from_millis(1600));
        budget.steps.set(STEPS_PER_CLOCK_READ - 1);
        assert_eq!(
            budget.step(),
            Err("stopped after 1.5 s, the time limit of a template (template_timeout_seconds in maand.conf)".into())
        );
        assert_eq!(budget.output(64 << 20), Ok(()));
        assert_eq!(
            budget.output((64 << 20) + 1),
            Err("the output exceeds 64.0 MiB, the size limit of a rendered template".into())
        );
        assert_eq!(check_source(&"x".repeat(MAX_SOURCE_BYTES)), Ok(()));
        assert_eq!(
            check_source(&"x".repeat(20_000_000)),
            Err("the template is 19.1 MiB; a template may be at most 16.0 MiB".into())
        );
    }
}
