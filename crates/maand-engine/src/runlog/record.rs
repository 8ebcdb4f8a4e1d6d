//! One log line as ordered key/value pairs, the model shared by the writer (which renders it) and
//! the reader (which parses it back), plus the §10.3 key order and the keys JSON stores as numbers.

/// The standard keys in the order every line writes them; extra keys follow.
pub const STANDARD_KEYS: [&str; 16] = [
    "ts",
    "level",
    "event",
    "run",
    "maand",
    "seq",
    "worker",
    "job",
    "phase",
    "action",
    "cmd",
    "stream",
    "exit",
    "duration_ms",
    "reason",
    "msg",
];

/// Keys written as JSON numbers (when their value is an integer).
pub const NUMERIC_KEYS: [&str; 3] = ["seq", "exit", "duration_ms"];

/// Event names of a command's lifecycle.
pub const EVENT_COMMAND_BEGIN: &str = "command_begin";
pub const EVENT_COMMAND_OUTPUT: &str = "command_output";
pub const EVENT_COMMAND_END: &str = "command_end";

/// A parsed or about-to-be-written log line: keys in line order, no empty values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogRecord {
    fields: Vec<(String, String)>,
}

impl LogRecord {
    /// The value of `key`, if the line has it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// All fields in line order.
    pub fn fields(&self) -> &[(String, String)] {
        &self.fields
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Set `key` (replacing an earlier value in place); empty values are not stored.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        if value.is_empty() {
            return;
        }
        match self.fields.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((key.to_string(), value)),
        }
    }

    /// Set `key` only when the line does not have it yet.
    pub fn set_if_absent(&mut self, key: &str, value: impl Into<String>) {
        if self.get(key).is_none() {
            self.set(key, value);
        }
    }

    /// Append to the value of the last field (lenient parsing of unquoted values with spaces).
    pub(crate) fn append_to_last(&mut self, text: &str) -> bool {
        match self.fields.last_mut() {
            Some((_, value)) => {
                value.push_str(text);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_keeps_order_replaces_and_skips_empty() {
        let mut r = LogRecord::default();
        r.set("event", "a");
        r.set("job", "");
        r.set("worker", "1.2.3.4");
        r.set("event", "b");
        r.set_if_absent("worker", "9.9.9.9");
        let keys: Vec<&str> = r.fields().iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["event", "worker"]);
        assert_eq!(r.get("event"), Some("b"));
        assert_eq!(r.get("worker"), Some("1.2.3.4"));
        assert_eq!(r.get("job"), None);
    }
}
