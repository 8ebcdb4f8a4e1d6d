//! The bounded retry loop shared by the job and worker checks: a fixed number of tries, a fixed
//! pause after each failed try but the last, a callback before each retry.

use std::time::Duration;

/// How many tries and how far apart. Always at least one try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    pub attempts: u32,
    pub interval: Duration,
}

impl RetryPolicy {
    pub(crate) fn once() -> Self {
        RetryPolicy { attempts: 1, interval: Duration::ZERO }
    }

    /// `attempts` tries (at least one), `interval_secs` apart.
    pub(crate) fn waiting(attempts: u32, interval_secs: u64) -> Self {
        RetryPolicy { attempts: attempts.max(1), interval: Duration::from_secs(interval_secs) }
    }

    /// Runs `try_once` until it succeeds or the tries are used up; before each retry calls
    /// `on_retry(failed_attempt, attempts)` and sleeps `interval`. Returns the last failure.
    pub(crate) fn run<E>(
        self,
        mut try_once: impl FnMut() -> Result<(), E>,
        mut on_retry: impl FnMut(u32, u32),
    ) -> Result<(), E> {
        let mut attempt = 1;
        loop {
            match try_once() {
                Ok(()) => return Ok(()),
                Err(e) if attempt >= self.attempts => return Err(e),
                Err(_) => {
                    on_retry(attempt, self.attempts);
                    std::thread::sleep(self.interval);
                    attempt += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_at_the_first_success() {
        let mut tries = 0;
        let mut retries = Vec::new();
        let result: Result<(), String> = RetryPolicy::waiting(5, 0).run(
            || {
                tries += 1;
                if tries < 3 {
                    Err(format!("try {tries}"))
                } else {
                    Ok(())
                }
            },
            |i, n| retries.push((i, n)),
        );
        assert_eq!(result, Ok(()));
        assert_eq!(tries, 3);
        assert_eq!(retries, vec![(1, 5), (2, 5)]);
    }

    #[test]
    fn returns_the_last_failure_after_all_tries() {
        let mut tries = 0;
        let result: Result<(), String> = RetryPolicy::waiting(3, 0).run(
            || {
                tries += 1;
                Err(format!("try {tries}"))
            },
            |_, _| {},
        );
        assert_eq!(result, Err("try 3".to_string()));
        let once: Result<(), &str> = RetryPolicy::once().run(|| Err("no"), |_, _| panic!("no retry expected"));
        assert_eq!(once, Err("no"));
        assert_eq!(RetryPolicy::waiting(0, 1).attempts, 1);
    }
}
