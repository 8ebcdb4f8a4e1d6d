//! The `ts` field of log lines: UTC `2006-01-02T15:04:05.000Z` formatted from `SystemTime` without a
//! time crate, and its shortened `2006-01-02 15:04:05` form for human output.

use crate::calendar::civil_from_days;
use std::time::{SystemTime, UNIX_EPOCH};

const SECONDS_PER_DAY: i64 = 86_400;

/// `ts` for the given instant, millisecond precision, always UTC (`Z`).
pub fn utc_timestamp(at: SystemTime) -> String {
    let (secs, millis) = match at.duration_since(UNIX_EPOCH) {
        Ok(d) => (i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2), d.subsec_millis()),
        // Before 1970: whole seconds only, rounded down.
        Err(e) => (-i64::try_from(e.duration().as_secs()).unwrap_or(0) - 1, 0),
    };
    let days = secs.div_euclid(SECONDS_PER_DAY);
    let rem = secs.rem_euclid(SECONDS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `2026-06-02T22:07:01.123Z` → `2026-06-02 22:07:01`; anything else is returned unchanged.
pub fn human_timestamp(ts: &str) -> String {
    match ts.get(..19) {
        Some(head) if ts.as_bytes().get(10) == Some(&b'T') => head.replacen('T', " ", 1),
        _ => ts.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(millis)
    }

    #[test]
    fn formats_known_instants_with_millis() {
        assert_eq!(utc_timestamp(at(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc_timestamp(at(1_795_545_731_007)), "2026-11-24T18:42:11.007Z");
        assert_eq!(utc_timestamp(at(951_782_400_999)), "2000-02-29T00:00:00.999Z");
        assert_eq!(utc_timestamp(at(1_136_214_245_000)), "2006-01-02T15:04:05.000Z");
    }

    #[test]
    fn human_form_drops_millis_and_t() {
        assert_eq!(human_timestamp("2026-06-02T22:07:01.123Z"), "2026-06-02 22:07:01");
        assert_eq!(human_timestamp("yesterday"), "yesterday");
        assert_eq!(human_timestamp(""), "");
    }
}
