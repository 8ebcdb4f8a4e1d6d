//! Runtime values of template execution: the Go types maand templates can meet (`string`, `int`,
//! `uint8` from indexing a string, `float64` from literals, `bool`, `[]string`, the context
//! struct, and nil), with Go's type names, truthiness and struct field lookup.

use std::rc::Rc;

#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// An invalid `reflect.Value` or a nil interface (Go prints `<no value>` or `<nil>`).
    Nil,
    Bool(bool),
    Int(i64),
    Byte(u8),
    Float(f64),
    Str(Rc<str>),
    Strings(Rc<[String]>),
    Struct(Rc<StructValue>),
}

/// A Go struct value: its type name and fields in declaration order.
#[derive(Debug)]
pub(crate) struct StructValue {
    pub type_name: &'static str,
    pub fields: Vec<StructField>,
}

#[derive(Debug)]
pub(crate) struct StructField {
    pub name: &'static str,
    pub value: Value,
    /// An embedded struct: its fields are promoted to the outer struct.
    pub embedded: bool,
}

/// Go's comparison classes (`basicKind` in text/template's funcs.go).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Invalid,
    Bool,
    Int,
    Uint,
    Float,
    String,
}

impl Value {
    pub fn string(s: impl Into<Rc<str>>) -> Value {
        Value::Str(s.into())
    }

    pub fn strings(items: Vec<String>) -> Value {
        Value::Strings(items.into())
    }

    /// Bytes the value holds, for the size limit of a rendering (a list counts each item's
    /// `String` too).
    pub fn size(&self) -> usize {
        match self {
            Value::Str(s) => s.len(),
            Value::Strings(items) => items.iter().map(|s| s.len() + std::mem::size_of::<String>()).sum(),
            _ => 0,
        }
    }

    /// Go `reflect.Type.String()` of the value.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Byte(_) => "uint8",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Strings(_) => "[]string",
            Value::Struct(s) => s.type_name,
        }
    }

    /// Go template truth: false for nil, false, 0, "" and empty slices; structs are true.
    pub fn is_true(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Byte(b) => *b != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Strings(items) => !items.is_empty(),
            Value::Struct(_) => true,
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Value::Bool(_) => Kind::Bool,
            Value::Int(_) => Kind::Int,
            Value::Byte(_) => Kind::Uint,
            Value::Float(_) => Kind::Float,
            Value::Str(_) => Kind::String,
            Value::Nil | Value::Strings(_) | Value::Struct(_) => Kind::Invalid,
        }
    }

    /// Integer value of an `int` or `uint8`.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Byte(b) => Some(i64::from(*b)),
            _ => None,
        }
    }
}

impl StructValue {
    /// Go `FieldByName`: a direct field, else a field promoted from an embedded struct.
    pub fn field(&self, name: &str) -> Option<&Value> {
        if let Some(field) = self.fields.iter().find(|f| f.name == name) {
            return Some(&field.value);
        }
        self.fields.iter().filter(|f| f.embedded).find_map(|f| match &f.value {
            Value::Struct(inner) => inner.field(name),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truthiness_follows_go() {
        assert!(!Value::Nil.is_true());
        assert!(!Value::Int(0).is_true());
        assert!(Value::Int(-1).is_true());
        assert!(!Value::string("").is_true());
        assert!(!Value::strings(vec![]).is_true());
        assert!(Value::strings(vec![String::new()]).is_true());
        assert!(!Value::Float(0.0).is_true());
    }

    #[test]
    fn promoted_fields_are_found() {
        let inner = StructValue {
            type_name: "W",
            fields: vec![StructField { name: "IP", value: Value::string("1.2.3.4"), embedded: false }],
        };
        let outer = StructValue {
            type_name: "A",
            fields: vec![
                StructField { name: "Job", value: Value::string("api"), embedded: false },
                StructField { name: "W", value: Value::Struct(Rc::new(inner)), embedded: true },
            ],
        };
        assert!(matches!(outer.field("IP"), Some(Value::Str(s)) if &**s == "1.2.3.4"));
        assert!(matches!(outer.field("W"), Some(Value::Struct(_))));
        assert!(outer.field("Nope").is_none());
    }
}
