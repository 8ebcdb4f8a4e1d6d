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
