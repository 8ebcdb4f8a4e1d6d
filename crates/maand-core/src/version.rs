//! Job versions (spec §2.10): loose parsing (`"v2.1"` → 2.1.0, `"3"` → 3.0.0, `"2.0.0-rc1"`),
//! ordering (a prerelease sorts before its release; prereleases compare as plain strings) and the
//! `min_version`/`max_version` constraints of demands (string, or an integer major).

use serde_json::Value;
use std::cmp::Ordering;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    /// Text after the first `-`; never empty when present.
    pub pre: Option<String>,
}

impl Version {
    pub fn new(major: u64, minor: u64, patch: u64) -> Self {
        Version { major, minor, patch, pre: None }
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch).cmp(&(other.major, other.minor, other.patch)).then_with(|| {
            match (&self.pre, &other.pre) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => a.cmp(b),
            }
        })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(pre) = &self.pre {
            write!(f, "-{pre}")?;
        }
        Ok(())
    }
}

/// Parse a manifest version: trimmed; empty and `unknown` rejected; leading `v`/`V` dropped;
/// optional non-empty `-prerelease`; 1–3 dot-separated non-negative integers (missing = 0).
pub fn parse_version(s: &str) -> Result<Version, String> {
    let text = s.trim();
    let bad = |why: &str| Err(format!("version {s:?} {why} (expected e.g. \"1.2.0\", \"v2.1\" or \"2.0.0-rc1\")"));
    if text.is_empty() {
        return bad("is empty");
    }
    if text.eq_ignore_ascii_case("unknown") {
        return bad("is \"unknown\"");
    }
    let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
    let (core, pre) = match text.split_once('-') {
        Some((core, "")) => return bad(&format!("has an empty prerelease after {core:?}")),
        Some((core, pre)) => (core, Some(pre.to_string())),
        None => (text, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() > 3 {
        return bad("has more than 3 numeric parts");
    }
    let mut numbers = [0u64; 3];
    for (slot, part) in numbers.iter_mut().zip(&parts) {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return bad(&format!("has a non-numeric part {part:?}"));
        }
        *slot = match part.parse() {
            Ok(n) => n,
            Err(_) => return bad(&format!("has a part too large: {part}")),
        };
    }
    Ok(Version { major: numbers[0], minor: numbers[1], patch: numbers[2], pre })
}

/// A demand's `min_version` / `max_version`: a version string, or an integer major (`2` → 2.0.0).
/// Numbers with a fraction, negative numbers and other JSON types are rejected.
pub fn parse_version_constraint(v: &Value) -> Result<Version, String> {
    match v {
        Value::String(s) => parse_version(s),
        Value::Number(n) => {
            if let Some(major) = n.as_u64() {
                return Ok(Version::new(major, 0, 0));
            }
            match n.as_f64() {
                Some(f) if f >= 0.0 && f.fract() == 0.0 && f <= u64::MAX as f64 => Ok(Version::new(f as u64, 0, 0)),
                _ => Err(format!("version constraint {n} must be a version string such as \"2.1.0\" or a whole major number such as 2")),
            }
        }
        other => Err(format!(
            "version constraint must be a version string such as \"2.1.0\" or a whole major number such as 2, not {}",
            crate::json_fields::describe(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(s: &str) -> Version {
        parse_version(s).unwrap()
    }

    #[test]
    fn parses_loose_versions() {
        assert_eq!(v("1.0.0"), Version::new(1, 0, 0));
        assert_eq!(v("v2.1"), Version::new(2, 1, 0));
        assert_eq!(v("V2.1"), Version::new(2, 1, 0));
        assert_eq!(v("3"), Version::new(3, 0, 0));
        assert_eq!(v("  1.2.3 "), Version::new(1, 2, 3));
        assert_eq!(v("2.0.0-rc1"), Version { major: 2, minor: 0, patch: 0, pre: Some("rc1".into()) });
        assert_eq!(v("2-beta-2").pre.as_deref(), Some("beta-2"));
    }

    #[test]
    fn rejects_bad_versions() {
        assert_eq!(
            parse_version("1.2.3.4"),
            Err("version \"1.2.3.4\" has more than 3 numeric parts (expected e.g. \"1.2.0\", \"v2.1\" or \"2.0.0-rc1\")".into())
        );
        for bad in ["", "  ", "unknown", "UNKNOWN", "1.x", "1..2", "1.", "-rc1", "1.0-", "v", "a.b", "1.+2", "1.-2"] {
            assert!(parse_version(bad).is_err(), "{bad:?} must be rejected");
        }
        assert!(parse_version("99999999999999999999999").unwrap_err().contains("too large"));
    }

    #[test]
    fn ordering_rules() {
        assert!(v("1.2.0") < v("1.10.0"));
        assert!(v("2.0.0-rc1") < v("2.0.0"));
        assert!(v("2.0.0-rc1") < v("2.0.0-rc2"));
        assert!(v("2.0.0-rc10") < v("2.0.0-rc2"), "prereleases compare as plain strings");
        assert!(v("1.9.9") < v("2.0.0-alpha"));
        assert_eq!(v("v2.1").cmp(&v("2.1.0")), Ordering::Equal);
    }

    #[test]
    fn display_round_trips() {
        assert_eq!(v("v2.1").to_string(), "2.1.0");
        assert_eq!(v("2.0.0-rc1").to_string(), "2.0.0-rc1");
        assert_eq!(v(&v("3-x").to_string()), v("3-x"));
    }

    #[test]
    fn constraints() {
        assert_eq!(parse_version_constraint(&json!("2.1.0")), Ok(Version::new(2, 1, 0)));
        assert_eq!(parse_version_constraint(&json!(2)), Ok(Version::new(2, 0, 0)));
        assert_eq!(parse_version_constraint(&json!(2.0)), Ok(Version::new(2, 0, 0)));
        assert_eq!(
            parse_version_constraint(&json!(2.5)),
            Err("version constraint 2.5 must be a version string such as \"2.1.0\" or a whole major number such as 2"
                .into())
        );
        assert!(parse_version_constraint(&json!(-1)).is_err());
        assert!(parse_version_constraint(&json!(true)).unwrap_err().contains("not true"));
        assert!(parse_version_constraint(&json!("x")).is_err());
    }
}
