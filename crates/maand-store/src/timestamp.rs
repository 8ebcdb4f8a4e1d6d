//! Times as maand prints them: UTC, RFC 3339, to the second (`2025-01-31T09:05:00Z`).

/// `unix` seconds as `YYYY-MM-DDThh:mm:ssZ`; a time out of range prints as the epoch.
pub fn rfc3339_utc(unix: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_to_the_second() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(1_738_314_300), "2025-01-31T09:05:00Z");
    }
}
