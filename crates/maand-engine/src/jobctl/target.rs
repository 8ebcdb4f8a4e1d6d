//! Job control target names (spec §3.5): the built-ins `start`, `stop`, `restart`, `status`
//! (any case) or a custom Makefile target such as `reload` or `migrate`.

use maand_core::{Error, Result};

pub const BUILT_IN_TARGETS: [&str; 4] = ["start", "stop", "restart", "status"];

/// The target to run: a built-in in lower case, or a custom name matching
/// `^[a-zA-Z0-9][a-zA-Z0-9_.-]*$` as given.
pub fn validate_target(target: &str) -> Result<String> {
    let lower = target.to_ascii_lowercase();
    if BUILT_IN_TARGETS.contains(&lower.as_str()) {
        return Ok(lower);
    }
    let mut chars = target.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(target.to_string())
    } else {
        Err(Error::msg(format!(
            "invalid job control target {target:?} (built-in: start, stop, restart, status; custom targets must match [a-zA-Z0-9][a-zA-Z0-9_.-]*)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_are_case_insensitive() {
        assert_eq!(validate_target("START").unwrap(), "start");
        assert_eq!(validate_target("Status").unwrap(), "status");
    }

    #[test]
    fn custom_targets_keep_their_name() {
        for t in ["migrate", "reload", "db.backup-1", "9_x", "Migrate"] {
            assert_eq!(validate_target(t).unwrap(), t);
        }
    }

    #[test]
    fn bad_targets_are_refused_with_the_spec_text() {
        for t in ["", "-x", "_x", ".x", "a b", "a;rm", "a/b", "ü"] {
            let e = validate_target(t).unwrap_err().to_string();
            assert!(e.starts_with(&format!("invalid job control target {t:?} (built-in: start, stop")), "{e}");
        }
    }
}
