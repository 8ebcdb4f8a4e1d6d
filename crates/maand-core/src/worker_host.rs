//! A worker's `host` in workers.json: an IP address or a DNS name, nothing else. The host becomes
//! a path component under the bucket (`tmp/workers/<host>/`, `logs/<host>.log`) and an argument
//! of ssh and rsync, so this check is what keeps every input inside the bucket and out of the
//! command lines' option and shell syntax. It runs once, where workers.json is parsed.
//!
//! Rules: an IPv4 or IPv6 address as Rust's standard library parses it; otherwise a DNS name of
//! dot-separated labels of ASCII letters, digits, `-` and `_` (1–63 characters, not starting or
//! ending with `-`), at most 253 characters, an optional trailing dot, and a last label that is
//! not all digits (so `999.1.1.1` is an invalid IPv4 address, not a name).

use std::net::IpAddr;

const MAX_NAME_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

/// Why `host` is neither an IP address nor a DNS name (the message names the host).
pub fn validate_host(host: &str) -> Result<(), String> {
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let bad = |why: String| Err(format!("host {host:?} must be an IP address or a DNS name: {why}"));
    if let Some(c) = host.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))) {
        return bad(match c {
            ':' => "it is not a valid IPv6 address".to_string(),
            _ => format!("{c:?} is not allowed (letters, digits, '-', '_' and '.' only)"),
        });
    }
    if host.starts_with('-') {
        return bad("it must not start with '-'".into());
    }
    if host.len() > MAX_NAME_LEN {
        return bad(format!("it is longer than {MAX_NAME_LEN} characters"));
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    let labels: Vec<&str> = name.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return bad("it has an empty label (two dots in a row, or a leading dot)".into());
        }
        if label.len() > MAX_LABEL_LEN {
            return bad(format!("the label {label:?} is longer than {MAX_LABEL_LEN} characters"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad(format!("the label {label:?} starts or ends with '-'"));
        }
    }
    if labels.last().is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit())) {
        return bad("it is not a valid IPv4 address".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_addresses_and_names() {
        for host in [
            "10.0.0.1",
            "127.0.0.2",
            "::1",
            "fe80::1",
            "2001:db8::8a2e:370:7334",
            "localhost",
            "db1",
            "db-1.eu-west.example.com",
            "node_3.internal",
            "db1.example.com.",
            "3com.net",
            "a",
        ] {
            assert_eq!(validate_host(host), Ok(()), "{host}");
        }
        assert_eq!(validate_host(&format!("{}.com", "a".repeat(63))), Ok(()));
    }

    #[test]
    fn refuses_paths_options_shell_syntax_and_bad_addresses() {
        let cases = [
            ("../x", "'/' is not allowed"),
            ("..", "empty label"),
            ("a/b", "'/' is not allowed"),
            ("-oProxyCommand=touch /tmp/p", "'='"),
            ("-db1", "must not start with '-'"),
            ("a;b", "';' is not allowed"),
            ("$(id)", "'$' is not allowed"),
            ("`id`", "'`' is not allowed"),
            ("a b", "' ' is not allowed"),
            ("'a'", "'\\'' is not allowed"),
            ("\"a\"", "'\"' is not allowed"),
            ("a|b", "'|'"),
            ("a&b", "'&'"),
            ("a\nb", "'\\n'"),
            ("999.1.1.1", "not a valid IPv4 address"),
            ("1.2.3", "not a valid IPv4 address"),
            ("10.0.0.1.5", "not a valid IPv4 address"),
            ("256.0.0.1", "not a valid IPv4 address"),
            ("fe80::zz", "not a valid IPv6 address"),
            ("a..b", "empty label"),
            (".a", "empty label"),
            ("a-.b", "starts or ends with '-'"),
            ("dé.com", "'é' is not allowed"),
        ];
        for (host, want) in cases {
            let e = validate_host(host).unwrap_err();
            assert!(e.starts_with(&format!("host {host:?} must be an IP address or a DNS name: ")), "{e}");
            assert!(e.contains(want), "{host}: {e}");
        }
        assert!(validate_host(&"a".repeat(64)).unwrap_err().contains("longer than 63"));
        assert!(validate_host(&["ab"; 100].join(".")).unwrap_err().contains("longer than 253"));
    }
}
