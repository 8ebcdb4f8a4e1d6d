//! Reading one stored log line back into a [`LogRecord`]: JSON objects, `key=value` lines (quoted
//! values with escapes), legacy payload lines (`| msg`, `! msg`, `job@worker | msg`, or `key=value
//! … | msg`), and any other text kept whole as `msg`.

use super::record::LogRecord;
use std::net::IpAddr;

/// The record a stored line holds; blank lines give an empty record.
pub fn parse_line(line: &str) -> LogRecord {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return LogRecord::default();
    }
    if line.trim_start().starts_with('{') {
        if let Some(record) = parse_json(line) {
            return record;
        }
    }
    parse_kv(line).unwrap_or_else(|| {
        let mut free_text = LogRecord::default();
        free_text.set("msg", line.trim());
        free_text
    })
}

fn parse_json(line: &str) -> Option<LogRecord> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let mut record = LogRecord::default();
    for (key, value) in value.as_object()? {
        match value {
            serde_json::Value::Null => {}
            serde_json::Value::String(s) => record.set(key, s.as_str()),
            other => record.set(key, other.to_string()),
        }
    }
    Some(record)
}

/// `key=value …`, optionally ending in a `| msg` / `! msg` payload and optionally starting with a
/// `job@worker` label. `None` when the line is not of that shape.
fn parse_kv(line: &str) -> Option<LogRecord> {
    let mut record = LogRecord::default();
    let mut label: Option<&str> = None;
    let mut rest = line;
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        if rest.is_empty() {
            break;
        }
        if let Some((stream, payload)) = payload(rest) {
            record.set_if_absent("stream", stream);
            record.set_if_absent("msg", payload);
            if let Some(label) = label {
                apply_label(&mut record, label);
            }
            return Some(record);
        }
        let key_end = rest.find(['=', ' ', '\t']).unwrap_or(rest.len());
        let key = &rest[..key_end];
        if rest[key_end..].starts_with('=') && is_key(key) {
            let (value, after) = read_value(&rest[key_end + 1..]);
            record.set(key, value);
            rest = after;
            continue;
        }
        let token_end = rest.find([' ', '\t']).unwrap_or(rest.len());
        if record.is_empty() && label.is_none() {
            label = Some(&rest[..token_end]);
            rest = &rest[token_end..];
            continue;
        }
        // A bare word after fields: an unquoted value with spaces, written by hand.
        if label.is_some() || !record.append_to_last(&format!(" {rest}")) {
            return None;
        }
        break;
    }
    if label.is_some() || record.is_empty() {
        return None;
    }
    Some(record)
}

/// `| msg` (stdout) or `! msg` (stderr) at the start of `text`.
fn payload(text: &str) -> Option<(&'static str, &str)> {
    let stream = match text.as_bytes().first() {
        Some(b'|') => "stdout",
        Some(b'!') => "stderr",
        _ => return None,
    };
    match text.as_bytes().get(1) {
        None => Some((stream, "")),
        Some(b' ') => Some((stream, &text[2..])),
        Some(_) => None,
    }
}

fn is_key(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// A value after `key=`: a quoted string (escapes `\" \\ \n \r \t`) or a bare word. Returns the
/// value and the text after it.
fn read_value(text: &str) -> (String, &str) {
    let Some(quoted) = text.strip_prefix('"') else {
        let end = text.find([' ', '\t']).unwrap_or(text.len());
        return (text[..end].to_string(), &text[end..]);
    };
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (value, &quoted[i + 1..]),
            '\\' => match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, 'r')) => value.push('\r'),
                Some((_, 't')) => value.push('\t'),
                Some((_, c @ ('"' | '\\'))) => value.push(c),
                Some((_, other)) => {
                    value.push('\\');
                    value.push(other);
                }
                None => value.push('\\'),
            },
            c => value.push(c),
        }
    }
    (value, "")
}

/// `job@worker`, a bare worker address, or a bare job name in front of a legacy payload.
fn apply_label(record: &mut LogRecord, label: &str) {
    if let Some((job, worker)) = label.split_once('@') {
        record.set_if_absent("job", job);
        record.set_if_absent("worker", worker);
    } else if label.parse::<IpAddr>().is_ok() {
        record.set_if_absent("worker", label);
    } else {
        record.set_if_absent("job", label);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(r: &LogRecord) -> Vec<(&str, &str)> {
        r.fields().iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    #[test]
    fn kv_with_quotes_and_escapes() {
        let r = parse_line(r#"ts=2026-06-02T22:07:01.000Z event=command_begin cmd="make -s \"x\" a\\b" msg="l1\nl2""#);
        assert_eq!(
            pairs(&r),
            [
                ("ts", "2026-06-02T22:07:01.000Z"),
                ("event", "command_begin"),
                ("cmd", "make -s \"x\" a\\b"),
                ("msg", "l1\nl2")
            ]
        );
    }

    #[test]
    fn json_numbers_become_strings() {
        let r = parse_line(r#"{"event":"command_end","exit":3,"duration_ms":12,"ok":true,"n":null}"#);
        assert_eq!(pairs(&r), [("event", "command_end"), ("exit", "3"), ("duration_ms", "12"), ("ok", "true")]);
    }

    #[test]
    fn legacy_payload_lines() {
        assert_eq!(pairs(&parse_line("| hello  world")), [("stream", "stdout"), ("msg", "hello  world")]);
        assert_eq!(pairs(&parse_line("! oops")), [("stream", "stderr"), ("msg", "oops")]);
        assert_eq!(
            pairs(&parse_line("pg@10.0.0.3 ! disk full")),
            [("stream", "stderr"), ("msg", "disk full"), ("job", "pg"), ("worker", "10.0.0.3")]
        );
        assert_eq!(pairs(&parse_line("10.0.0.3 | up")), [("stream", "stdout"), ("msg", "up"), ("worker", "10.0.0.3")]);
        assert_eq!(pairs(&parse_line("vault | sealed")), [("stream", "stdout"), ("msg", "sealed"), ("job", "vault")]);
        assert_eq!(
            pairs(&parse_line("ts=t1 worker=10.0.0.3 job=pg | Container  Stopping")),
            [("ts", "t1"), ("worker", "10.0.0.3"), ("job", "pg"), ("stream", "stdout"), ("msg", "Container  Stopping")]
        );
    }

    #[test]
    fn other_text_is_kept_as_msg() {
        assert_eq!(pairs(&parse_line("deploy: skip job \"x\"")), [("msg", "deploy: skip job \"x\"")]);
        assert_eq!(pairs(&parse_line("{not json")), [("msg", "{not json")]);
        assert_eq!(pairs(&parse_line("a|b")), [("msg", "a|b")]);
        assert!(parse_line("   ").is_empty());
    }

    #[test]
    fn hand_written_unquoted_spaces_extend_the_last_value() {
        assert_eq!(pairs(&parse_line("event=note msg=hello there")), [("event", "note"), ("msg", "hello there")]);
    }

    #[test]
    fn unterminated_quote_takes_the_rest() {
        assert_eq!(pairs(&parse_line("msg=\"abc def")), [("msg", "abc def")]);
    }
}
