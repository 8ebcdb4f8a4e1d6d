//! A result table: typed cells, rendered by the CLI as text or JSON.

use serde_json::{Map, Value};

#[derive(Debug, Clone)]
pub struct Column {
    /// JSON key (stable, snake_case).
    pub key: &'static str,
    /// Header shown in the text table.
    pub header: &'static str,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    pub fn new(columns: &[(&'static str, &'static str)]) -> Table {
        Table { columns: columns.iter().map(|&(key, header)| Column { key, header }).collect(), rows: Vec::new() }
    }

    pub fn push(&mut self, row: Vec<Value>) {
        self.rows.push(row);
    }

    /// JSON shape: an array of objects, one per row, keyed by the column keys.
    pub fn to_json(&self) -> Value {
        Value::Array(
            self.rows
                .iter()
                .map(|row| {
                    let mut obj = Map::new();
                    for (col, cell) in self.columns.iter().zip(row) {
                        obj.insert(col.key.to_string(), cell.clone());
                    }
                    Value::Object(obj)
                })
                .collect(),
        )
    }

    /// `text` on one line, cut to `max` characters with `…` (long reasons in a text table).
    pub fn short(text: &str, max: usize) -> String {
        let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.chars().count() <= max {
            return line;
        }
        let mut cut: String = line.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }

    /// Cell text for the box table: strings as is, arrays comma-joined, null empty.
    pub fn cell_text(v: &Value) -> String {
        match v {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            Value::Array(items) => items.iter().map(Table::cell_text).collect::<Vec<_>>().join(","),
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_joins_lines_and_cuts() {
        assert_eq!(Table::short("a\n  b", 10), "a b");
        assert_eq!(Table::short("abcdefghij", 5), "abcd…");
        assert_eq!(Table::short("abcde", 5), "abcde");
    }
}
