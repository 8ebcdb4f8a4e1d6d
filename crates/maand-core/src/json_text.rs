//! Parsing the text of a workspace JSON file. A key written twice in one object keeps its last
//! value, as Go's encoding/json does (a real bucket may rely on it), and becomes a warning
//! naming the file, the key and the object it is in — so an error that the surviving value
//! causes later is not a mystery.

use crate::warning::Warning;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::cell::RefCell;
use std::fmt;

/// Parse JSON text; the error carries serde's message with line and column. Duplicate keys are
/// added to `warnings` as problems of `file`.
pub(crate) fn parse_json(content: &str, file: &str, warnings: &mut Vec<Warning>) -> Result<Value, String> {
    let duplicates = RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_str(content);
    let value = Node { path: String::new(), duplicates: &duplicates }
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| format!("not valid JSON: {e}"))?;
    for (object, key) in duplicates.into_inner() {
        let place = if object.is_empty() { String::new() } else { format!(" in {object}") };
        warnings.push(Warning::new(file, format!("key {key:?} appears twice{place}; the last value is used")));
    }
    Ok(value)
}

/// One value being read, at `path` (`resources.memory`, `[0].tags`; empty at the top).
struct Node<'a> {
    path: String,
    /// (object path, key) of every key seen twice.
    duplicates: &'a RefCell<Vec<(String, String)>>,
}

impl<'a> Node<'a> {
    fn child(&self, path: String) -> Node<'a> {
        Node { path, duplicates: self.duplicates }
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.child(format!("{}[{}]", self.path, items.len())))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() { key.clone() } else { format!("{}.{key}", self.path) };
            let value = map.next_value_seed(self.child(path))?;
            if object.contains_key(&key) {
                self.duplicates.borrow_mut().push((self.path.clone(), key.clone()));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(content: &str) -> (Result<Value, String>, Vec<String>) {
        let mut warnings = Vec::new();
        let value = parse_json(content, "workspace/f.json", &mut warnings);
        (value, warnings.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn same_value_as_serde_json() {
        let text = r#"{"b": [1, -2, 3.5, 1e300, 18446744073709551615, "x", null, true, {"z": {}}], "a": {"k": []}}"#;
        let (value, warnings) = parse(text);
        assert_eq!(value.unwrap(), serde_json::from_str::<Value>(text).unwrap());
        assert!(warnings.is_empty());
    }

    #[test]
    fn duplicate_keys_keep_the_last_value_and_are_named_with_their_object() {
        let (value, warnings) = parse(
            r#"{"version": "1", "resources": {"memory": {"min": 1, "min": 2}}, "version": "2", "l": [{"h": 1, "h": 2}]}"#,
        );
        let value = value.unwrap();
        assert_eq!(value["version"], "2");
        assert_eq!(value["resources"]["memory"]["min"], 2);
        assert_eq!(value["l"][0]["h"], 2);
        assert_eq!(
            warnings,
            [
                "warning: workspace/f.json: key \"min\" appears twice in resources.memory; the last value is used",
                "warning: workspace/f.json: key \"version\" appears twice; the last value is used",
                "warning: workspace/f.json: key \"h\" appears twice in l[0]; the last value is used",
            ]
        );
    }

    #[test]
    fn errors_keep_serde_messages() {
        assert!(parse("[1,").0.unwrap_err().contains("line 1 column 3"));
        assert!(parse("{} x").0.unwrap_err().starts_with("not valid JSON: trailing characters"));
        assert!(parse("").0.unwrap_err().starts_with("not valid JSON: "));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse(&deep).0.unwrap_err().contains("recursion limit"));
    }
}
