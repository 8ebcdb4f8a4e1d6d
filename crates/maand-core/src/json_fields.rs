//! Reading typed fields out of parsed JSON, with error texts that name the field and say what
//! was found instead (`selectors[1] must be a string, not number 3`). Shared by the JSON parsers
//! of workers.json, manifest.json and disabled.json; callers add the file/job context and kind.

use serde_json::{Map, Value};

/// Short human description of a JSON value for error messages: `string "x"`, `number 1.5`, ...
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => {
            let short: String = s.chars().take(60).collect();
            let ellipsis = if short.len() < s.len() { "..." } else { "" };
            format!("string {short:?}{ellipsis}")
        }
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// A field of an object, treating an explicit `null` as absent.
pub(crate) fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

pub(crate) fn as_object<'a>(v: &'a Value, name: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object().ok_or_else(|| format!("{name} must be an object, not {}", describe(v)))
}

pub(crate) fn as_str<'a>(v: &'a Value, name: &str) -> Result<&'a str, String> {
    v.as_str().ok_or_else(|| format!("{name} must be a string, not {}", describe(v)))
}

pub(crate) fn as_bool(v: &Value, name: &str) -> Result<bool, String> {
    v.as_bool().ok_or_else(|| format!("{name} must be true or false, not {}", describe(v)))
}

/// A whole number written without a fraction or exponent (as Go's `int` decoding requires).
pub(crate) fn as_i64(v: &Value, name: &str) -> Result<i64, String> {
    v.as_i64().ok_or_else(|| format!("{name} must be a whole number, not {}", describe(v)))
}

/// A whole number that is at least `min`.
pub(crate) fn as_i64_at_least(v: &Value, name: &str, min: i64) -> Result<i64, String> {
    let n = as_i64(v, name)?;
    if n < min {
        return Err(format!("{name} must be at least {min} (got {n})"));
    }
    Ok(n)
}

/// An array of strings; errors name the offending element (`labels[2]`).
pub(crate) fn as_string_list<'a>(v: &'a Value, name: &str) -> Result<Vec<&'a str>, String> {
    let items = v.as_array().ok_or_else(|| format!("{name} must be an array of strings, not {}", describe(v)))?;
    items.iter().enumerate().map(|(i, item)| as_str(item, &format!("{name}[{i}]"))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn describes_values() {
        assert_eq!(describe(&json!(null)), "null");
        assert_eq!(describe(&json!("x")), "string \"x\"");
        assert_eq!(describe(&json!(1.5)), "number 1.5");
        assert_eq!(describe(&json!([1])), "an array");
        assert_eq!(describe(&json!({})), "an object");
        assert!(describe(&json!("y".repeat(100))).ends_with("\"..."));
    }

    #[test]
    fn typed_getters_name_the_field() {
        assert_eq!(as_str(&json!(3), "host"), Err("host must be a string, not number 3".into()));
        assert_eq!(as_i64(&json!(1.0), "position"), Err("position must be a whole number, not number 1.0".into()));
        assert_eq!(as_i64_at_least(&json!(-1), "x", 0), Err("x must be at least 0 (got -1)".into()));
        assert_eq!(as_string_list(&json!(["a", 2]), "labels"), Err("labels[1] must be a string, not number 2".into()));
        assert_eq!(as_string_list(&json!(["a"]), "labels"), Ok(vec!["a"]));
        assert!(as_bool(&json!("true"), "pkcs8").is_err());
        assert!(as_object(&json!([]), "resources").is_err());
        let obj = json!({"a": null, "b": 1});
        let map = obj.as_object().unwrap();
        assert!(field(map, "a").is_none());
        assert!(field(map, "b").is_some());
    }
}
