//! text/template's builtin functions (funcs.go): `and or not len index slice call print printf
//! println html js urlquery eq ne lt le gt ge`, with Go's comparison rules. Error messages name
//! types, never values (a value may be a secret).

use super::functions::{FuncResult, FuncTable, ParamType};
use super::go_fmt::{sprint, sprintf, sprintln};
use super::go_strconv::is_print;
use super::value::{Kind, Value};

use ParamType::{Any, String as Str};

pub(crate) fn register_builtins(table: &mut FuncTable<'_>) {
    let mut add = |name: &'static str,
                   params: &'static [ParamType],
                   variadic: Option<ParamType>,
                   call: fn(&[Value]) -> FuncResult| {
        table.add(name, params, variadic, true, Box::new(call));
    };
    // `and`/`or` short-circuit in the executor; these bodies apply to already evaluated arguments.
    add("and", &[Any], Some(Any), |args| {
        Ok(args.iter().find(|a| !a.is_true()).or(args.last()).cloned().unwrap_or(Value::Nil))
    });
    add("or", &[Any], Some(Any), |args| {
        Ok(args.iter().find(|a| a.is_true()).or(args.last()).cloned().unwrap_or(Value::Nil))
    });
    add("not", &[Any], None, |args| Ok(Value::Bool(!first(args).is_true())));
    add("len", &[Any], None, length);
    add("index", &[Any], Some(Any), index);
    add("slice", &[Any], Some(Any), slice);
    add("call", &[Any], Some(Any), call);
    add("print", &[], Some(Any), |args| Ok(Value::string(sprint(args))));
    add("println", &[], Some(Any), |args| Ok(Value::string(sprintln(args))));
    add("printf", &[Str], Some(Any), |args| match args.split_first() {
        Some((Value::Str(format), rest)) => Ok(Value::string(sprintf(format, rest))),
        _ => Err("printf requires a format string".to_string()),
    });
    add("html", &[], Some(Any), |args| Ok(Value::string(html_escape(&eval_args(args)))));
    add("js", &[], Some(Any), |args| Ok(Value::string(js_escape(&eval_args(args)))));
    add("urlquery", &[], Some(Any), |args| Ok(Value::string(query_escape(&eval_args(args)))));
    add("eq", &[Any], Some(Any), |args| eq(first(args), args.get(1..).unwrap_or(&[])).map(Value::Bool));
    add("ne", &[Any, Any], None, |args| eq(first(args), args.get(1..).unwrap_or(&[])).map(|b| Value::Bool(!b)));
    add("lt", &[Any, Any], None, |args| less(first(args), second(args)).map(Value::Bool));
    add("le", &[Any, Any], None, |args| less_or_equal(first(args), second(args)).map(Value::Bool));
    add("gt", &[Any, Any], None, |args| less_or_equal(first(args), second(args)).map(|b| Value::Bool(!b)));
    add("ge", &[Any, Any], None, |args| less(first(args), second(args)).map(|b| Value::Bool(!b)));
}

const NIL: &Value = &Value::Nil;

fn first(args: &[Value]) -> &Value {
    args.first().unwrap_or(NIL)
}

fn second(args: &[Value]) -> &Value {
    args.get(1).unwrap_or(NIL)
}

fn length(args: &[Value]) -> FuncResult {
    match first(args) {
        Value::Str(s) => Ok(Value::Int(s.len() as i64)),
        Value::Strings(items) => Ok(Value::Int(items.len() as i64)),
        Value::Nil => Err("len of nil".to_string()),
        other => Err(format!("len of type {}", other.type_name())),
    }
}

/// Go `indexArg`: an int index within `0..=cap`.
fn index_arg(index: &Value, cap: usize) -> Result<usize, String> {
    let x = match index {
        Value::Int(_) | Value::Byte(_) => index.as_integer().unwrap_or(0),
        Value::Nil => return Err("cannot index slice/array with nil".to_string()),
        other => return Err(format!("cannot index slice/array with type {}", other.type_name())),
    };
    match usize::try_from(x) {
        Ok(i) if i <= cap => Ok(i),
        _ => Err(format!("index out of range: {x}")),
    }
}

fn index(args: &[Value]) -> FuncResult {
    let (item, indexes) = args.split_first().ok_or("index of untyped nil")?;
    if let Value::Nil = item {
        return Err("index of untyped nil".to_string());
    }
    let mut item = item.clone();
    for index in indexes {
        item = match &item {
            Value::Strings(items) => {
                let i = index_arg(index, items.len())?;
                Value::string(items.get(i).ok_or("reflect: slice index out of range")?.as_str())
            }
            Value::Str(s) => {
                let i = index_arg(index, s.len())?;
                Value::Byte(*s.as_bytes().get(i).ok_or("reflect: string index out of range")?)
            }
            other => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

fn slice(args: &[Value]) -> FuncResult {
    let (item, indexes) = args.split_first().ok_or("slice of untyped nil")?;
    if indexes.len() > 3 {
        return Err(format!("too many slice indexes: {}", indexes.len()));
    }
    let len = match item {
        Value::Nil => return Err("slice of untyped nil".to_string()),
        Value::Str(_) if indexes.len() == 3 => return Err("cannot 3-index slice a string".to_string()),
        Value::Str(s) => s.len(),
        Value::Strings(items) => items.len(),
        other => return Err(format!("can't slice item of type {}", other.type_name())),
    };
    let mut idx = [0, len, len];
    for (slot, index) in idx.iter_mut().zip(indexes) {
        *slot = index_arg(index, len)?;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    if indexes.len() == 3 && idx[1] > idx[2] {
        return Err(format!("invalid slice index: {} > {}", idx[1], idx[2]));
    }
    match item {
        Value::Str(s) => s
            .get(idx[0]..idx[1])
            .map(Value::string)
            .ok_or_else(|| format!("slice [{}:{}] splits a UTF-8 character", idx[0], idx[1])),
        Value::Strings(items) => Ok(Value::strings(items[idx[0]..idx[1]].to_vec())),
        _ => Err("can't slice".to_string()),
    }
}

fn call(args: &[Value]) -> FuncResult {
    match first(args) {
        Value::Nil => Err("call of nil".to_string()),
        other => Err(format!("non-function of type {}", other.type_name())),
    }
}

/// Go `eq arg1 arg2...`: true if arg1 equals any of the others.
pub(crate) fn eq(arg1: &Value, others: &[Value]) -> Result<bool, String> {
    if others.is_empty() {
        return Err("missing argument for comparison".to_string());
    }
    let k1 = arg1.kind();
    for arg in others {
        let k2 = arg.kind();
        let truth = if k1 != k2 {
            match (k1, k2) {
                (Kind::Int, Kind::Uint) | (Kind::Uint, Kind::Int) => arg1.as_integer() == arg.as_integer(),
                _ if !matches!(arg1, Value::Nil) && !matches!(arg, Value::Nil) => {
                    return Err("incompatible types for comparison".to_string());
                }
                _ => false,
            }
        } else {
            match (arg1, arg) {
                (Value::Bool(a), Value::Bool(b)) => a == b,
                (Value::Float(a), Value::Float(b)) => a == b,
                (Value::Str(a), Value::Str(b)) => a == b,
                (Value::Int(_) | Value::Byte(_), _) => arg1.as_integer() == arg.as_integer(),
                (Value::Nil, _) | (_, Value::Nil) => matches!(arg1, Value::Nil) == matches!(arg, Value::Nil),
                (Value::Strings(_), Value::Strings(_)) | (Value::Struct(_), Value::Struct(_)) => {
                    return Err(format!("non-comparable type {}", arg.type_name()));
                }
                _ => return Err(format!("non-comparable types {} and {}", arg1.type_name(), arg.type_name())),
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Go `lt`: ordered comparison of two basic values of compatible kinds.
fn less(a: &Value, b: &Value) -> Result<bool, String> {
    let (k1, k2) = (a.kind(), b.kind());
    if k1 == Kind::Invalid || k2 == Kind::Invalid {
        return Err("invalid type for comparison".to_string());
    }
    if k1 != k2 {
        return match (k1, k2) {
            (Kind::Int, Kind::Uint) | (Kind::Uint, Kind::Int) => Ok(a.as_integer() < b.as_integer()),
            _ => Err("incompatible types for comparison".to_string()),
        };
    }
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => Ok(x < y),
        (Value::Str(x), Value::Str(y)) => Ok(x < y),
        (Value::Int(_) | Value::Byte(_), _) => Ok(a.as_integer() < b.as_integer()),
        _ => Err("invalid type for comparison".to_string()),
    }
}

fn less_or_equal(a: &Value, b: &Value) -> Result<bool, String> {
    if less(a, b)? {
        return Ok(true);
    }
    eq(a, std::slice::from_ref(b))
}

/// Go `evalArgs`: the arguments as one string, invalid values printed as `<no value>`.
fn eval_args(args: &[Value]) -> String {
    if let [Value::Str(s)] = args {
        return s.to_string();
    }
    let printable: Vec<Value> =
        args.iter().map(|a| if let Value::Nil = a { Value::string("<no value>") } else { a.clone() }).collect();
    sprint(&printable)
}

/// Go `template.HTMLEscapeString`.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' => out.push('\u{FFFD}'),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

/// Go `template.JSEscapeString`.
pub(crate) fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            _ if c < ' ' => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            _ if c.is_ascii() || is_print(c) => out.push(c),
            _ => out.push_str(&format!("\\u{:04X}", u32::from(c))),
        }
    }
    out
}

/// Go `url.QueryEscape`.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::string(v)
    }

    #[test]
    fn eq_follows_go_kinds() {
        assert_eq!(eq(&s("a"), &[s("b"), s("a")]), Ok(true));
        assert_eq!(eq(&Value::Int(97), &[Value::Byte(97)]), Ok(true));
        assert!(eq(&Value::Int(1), &[s("1")]).is_err());
        assert_eq!(eq(&Value::Nil, &[Value::Int(1)]), Ok(false));
        assert_eq!(eq(&Value::Nil, &[Value::Nil]), Ok(true));
        assert!(eq(&Value::strings(vec![]), &[Value::strings(vec![])]).is_err());
        assert!(eq(&Value::Int(1), &[]).is_err());
        // A match stops before a later incomparable argument, as in Go.
        assert_eq!(eq(&Value::Int(1), &[Value::Int(1), s("x")]), Ok(true));
    }

    #[test]
    fn ordering() {
        assert_eq!(less(&Value::Int(1), &Value::Int(2)), Ok(true));
        assert_eq!(less(&s("b"), &s("a")), Ok(false));
        assert!(less(&Value::Bool(true), &Value::Bool(false)).is_err());
        assert!(less(&Value::Int(1), &Value::Float(2.0)).is_err());
        assert_eq!(less_or_equal(&Value::Int(2), &Value::Int(2)), Ok(true));
    }

    #[test]
    fn index_and_slice() {
        let list = Value::strings(vec!["a".into(), "b".into()]);
        assert!(matches!(index(&[list.clone(), Value::Int(1)]), Ok(Value::Str(v)) if &*v == "b"));
        assert!(index(&[list.clone(), Value::Int(2)]).is_err());
        assert!(matches!(index(&[s("abc"), Value::Int(1)]), Ok(Value::Byte(98))));
        assert!(matches!(slice(&[list.clone(), Value::Int(1)]), Ok(Value::Strings(v)) if v.len() == 1));
        assert!(matches!(slice(&[s("hello"), Value::Int(1), Value::Int(3)]), Ok(Value::Str(v)) if &*v == "el"));
        assert!(slice(&[s("é"), Value::Int(1)]).is_err());
        assert!(slice(&[list, Value::Int(2), Value::Int(1)]).is_err());
    }

    #[test]
    fn escapers_match_go() {
        assert_eq!(html_escape("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&#34;&lt;/a&gt;");
        assert_eq!(js_escape("a'b\"c<d>=&\\\n é"), "a\\'b\\\"c\\u003Cd\\u003E\\u003D\\u0026\\\\\\u000A é");
        assert_eq!(query_escape("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
        assert_eq!(eval_args(&[Value::Nil]), "<no value>");
    }
}
