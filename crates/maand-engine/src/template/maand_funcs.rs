//! The maand template functions of spec/features.md §7.2 (`get`, `getOptional`, `getSecret`,
//! `keys`, `split`, `trim`, `join`, `upper`, `lower`, `add`…`max`, `int`, `scrapeConfigs`,
//! `ruleFiles`) with the Go signatures of the original, reading KV through [`TemplateData`].
//! Error messages name namespaces and keys, never values.

use super::functions::{FuncResult, FuncTable, ParamType};
use super::value::Value;
use super::{TemplateContext, TemplateData};

use ParamType::{Any, Int, String as Str, Strings};

pub(crate) fn register_maand_functions<'a>(
    table: &mut FuncTable<'a>,
    ctx: &'a TemplateContext,
    data: &'a dyn TemplateData,
) {
    table.add(
        "get",
        &[Str, Str],
        None,
        false,
        Box::new(move |args| {
            let (ns, key) = (text(args, 0), text(args, 1));
            match data.get(ns, key)? {
                Some(value) => Ok(Value::string(value)),
                None => Err(format!("key \"{key}\" not found in namespace \"{ns}\"")),
            }
        }),
    );
    table.add(
        "getOptional",
        &[Str, Str],
        None,
        false,
        Box::new(move |args| Ok(Value::string(data.get(text(args, 0), text(args, 1))?.unwrap_or_default()))),
    );
    table.add(
        "getSecret",
        &[Str],
        None,
        false,
        Box::new(move |args| {
            let key = text(args, 0);
            match data.get_secret(key)? {
                Some(value) => Ok(Value::string(value)),
                None => Err(format!("secret \"{key}\" not found in namespace \"secrets/job/{}\"", ctx.job)),
            }
        }),
    );
    table.add("keys", &[Str], None, false, Box::new(move |args| Ok(Value::strings(data.keys(text(args, 0))?))));
    table.add("scrapeConfigs", &[], None, false, Box::new(move |_| Ok(Value::string(data.scrape_configs()?))));
    table.add("ruleFiles", &[], None, false, Box::new(move |_| Ok(Value::string(data.rule_files()?))));

    let mut pure = |name: &'static str, params: &'static [ParamType], call: fn(&[Value]) -> FuncResult| {
        table.add(name, params, None, false, Box::new(call));
    };
    pure("split", &[Str, Str], |args| Ok(Value::strings(go_split(text(args, 0), text(args, 1)))));
    pure("trim", &[Str], |args| Ok(Value::string(text(args, 0).trim())));
    pure("join", &[Strings, Str], |args| match args.first() {
        Some(Value::Strings(items)) => Ok(Value::string(items.join(text(args, 1)))),
        _ => Ok(Value::string("")),
    });
    pure("upper", &[Str], |args| Ok(Value::string(map_simple_case(text(args, 0), true))));
    pure("lower", &[Str], |args| Ok(Value::string(map_simple_case(text(args, 0), false))));
    pure("add", &[Int, Int], |args| Ok(Value::Int(int(args, 0).wrapping_add(int(args, 1)))));
    pure("sub", &[Int, Int], |args| Ok(Value::Int(int(args, 0).wrapping_sub(int(args, 1)))));
    pure("mul", &[Int, Int], |args| Ok(Value::Int(int(args, 0).wrapping_mul(int(args, 1)))));
    pure("div", &[Int, Int], |args| match int(args, 1) {
        0 => Err("integer divide by zero".to_string()),
        d => Ok(Value::Int(int(args, 0).wrapping_div(d))),
    });
    pure("min", &[Int, Int], |args| Ok(Value::Int(int(args, 0).min(int(args, 1)))));
    pure("max", &[Int, Int], |args| Ok(Value::Int(int(args, 0).max(int(args, 1)))));
    pure("int", &[Any], to_int);
}

/// The string argument at `i` (the executor has already checked the Go types).
fn text(args: &[Value], i: usize) -> &str {
    match args.get(i) {
        Some(Value::Str(s)) => s,
        _ => "",
    }
}

fn int(args: &[Value], i: usize) -> i64 {
    match args.get(i) {
        Some(Value::Int(n)) => *n,
        _ => 0,
    }
}

/// `int v`: an int passes through; a string is trimmed and parsed as a decimal (Go `Atoi`).
fn to_int(args: &[Value]) -> FuncResult {
    match args.first() {
        Some(Value::Int(n)) => Ok(Value::Int(*n)),
        Some(Value::Str(s)) => {
            let trimmed = s.trim();
            let digits = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err("int: string value is not a decimal integer".to_string());
            }
            trimmed.parse::<i64>().map(Value::Int).map_err(|_| "int: string value is out of range".to_string())
        }
        Some(other) => Err(format!("int: cannot convert value of type {} to int", other.type_name())),
        None => Err("int: missing argument".to_string()),
    }
}

/// Go `strings.Split`: an empty separator splits after each UTF-8 character (nothing for "");
/// otherwise an empty string gives `[""]`.
pub(crate) fn go_split(s: &str, sep: &str) -> Vec<String> {
    if sep.is_empty() {
        return s.chars().map(String::from).collect();
    }
    s.split(sep).map(str::to_string).collect()
}

/// Go `strings.ToUpper`/`ToLower`: per-character simple case mapping (a character whose full
/// mapping has several characters is kept, except `İ`, whose simple lower case is `i`).
fn map_simple_case(s: &str, upper: bool) -> String {
    s.chars()
        .map(|c| {
            if !upper && c == '\u{130}' {
                return 'i';
            }
            let mut mapped =
                if upper { c.to_uppercase().collect::<Vec<_>>() } else { c.to_lowercase().collect::<Vec<_>>() };
            match (mapped.pop(), mapped.is_empty()) {
                (Some(single), true) => single,
                _ => c,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_follows_go_strings_split() {
        assert_eq!(go_split("", ","), vec![""]);
        assert_eq!(go_split("a,b,", ","), vec!["a", "b", ""]);
        assert_eq!(go_split("héllo", ""), vec!["h", "é", "l", "l", "o"]);
        assert!(go_split("", "").is_empty());
        assert_eq!(go_split("a--b", "--"), vec!["a", "b"]);
    }

    #[test]
    fn int_parses_like_atoi() {
        assert!(matches!(to_int(&[Value::string(" 2048 ")]), Ok(Value::Int(2048))));
        assert!(matches!(to_int(&[Value::string("+7")]), Ok(Value::Int(7))));
        assert!(matches!(to_int(&[Value::Int(-3)]), Ok(Value::Int(-3))));
        assert!(to_int(&[Value::string("2048.0")]).is_err());
        assert!(to_int(&[Value::string("")]).is_err());
        assert!(to_int(&[Value::string("1_000")]).is_err());
        assert!(to_int(&[Value::string("99999999999999999999")]).is_err());
        assert!(to_int(&[Value::Bool(true)]).is_err());
        assert!(to_int(&[Value::Byte(1)]).is_err());
    }

    #[test]
    fn case_mapping_is_per_character() {
        assert_eq!(map_simple_case("straße", true), "STRAßE");
        assert_eq!(map_simple_case("ÀB", false), "àb");
        assert_eq!(map_simple_case("İ", false), "i");
    }
}
