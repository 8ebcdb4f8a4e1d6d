//! Turning a [`LogRecord`] into one line of text: `key=value` pairs (values quoted when they hold
//! space, tab, `=`, `"`, a backslash inside quotes or a line break) or one JSON object with `seq`,
//! `exit` and `duration_ms` as numbers.

use super::record::{LogRecord, NUMERIC_KEYS};
use maand_store::LogFormat;

/// The line for `record` in `format`, without the trailing newline.
pub fn render_line(record: &LogRecord, format: LogFormat) -> String {
    match format {
        LogFormat::Kv => render_kv(record),
        LogFormat::Json => render_json(record),
    }
}

fn render_kv(record: &LogRecord) -> String {
    let mut line = String::new();
    for (key, value) in record.fields() {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(key);
        line.push('=');
        line.push_str(&kv_value(value));
    }
    line
}

/// A value as written after `key=`: bare when safe, else double-quoted with escapes.
pub fn kv_value(value: &str) -> String {
    let needs_quotes = value.is_empty() || value.chars().any(|c| matches!(c, ' ' | '\t' | '=' | '"' | '\n' | '\r'));
    if !needs_quotes {
        return value.to_string();
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

fn render_json(record: &LogRecord) -> String {
    let mut object = serde_json::Map::new();
    for (key, value) in record.fields() {
        let json_value = match value.parse::<i64>() {
            Ok(n) if NUMERIC_KEYS.contains(&key.as_str()) => serde_json::Value::from(n),
            _ => serde_json::Value::from(value.as_str()),
        };
        object.insert(key.clone(), json_value);
    }
    serde_json::Value::Object(object).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pairs: &[(&str, &str)]) -> LogRecord {
        let mut r = LogRecord::default();
        for (k, v) in pairs {
            r.set(k, *v);
        }
        r
    }

    #[test]
    fn kv_quotes_only_when_needed() {
        assert_eq!(kv_value("10.0.0.1"), "10.0.0.1");
        assert_eq!(kv_value(r"C:\dir"), r"C:\dir");
        assert_eq!(kv_value("a b"), "\"a b\"");
        assert_eq!(kv_value("a\tb"), "\"a\\tb\"");
        assert_eq!(kv_value("k=v"), "\"k=v\"");
        assert_eq!(kv_value("say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(kv_value("two\nlines \\ here"), "\"two\\nlines \\\\ here\"");
    }

    #[test]
    fn kv_line_joins_pairs_in_order() {
        let r = record(&[("event", "command_end"), ("exit", "0"), ("msg", "all good")]);
        assert_eq!(render_line(&r, LogFormat::Kv), "event=command_end exit=0 msg=\"all good\"");
    }

    #[test]
    fn json_line_uses_numbers_for_numeric_keys_only() {
        let r =
            record(&[("event", "command_end"), ("seq", "17"), ("exit", "2"), ("duration_ms", "1300"), ("job", "42")]);
        assert_eq!(
            render_line(&r, LogFormat::Json),
            r#"{"event":"command_end","seq":17,"exit":2,"duration_ms":1300,"job":"42"}"#
        );
    }
}
