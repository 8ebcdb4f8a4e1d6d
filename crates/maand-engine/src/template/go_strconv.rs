//! Go `strconv` quoting rules used by the template engine: unquoting string and character
//! literals of the template language, and `Quote`/`QuoteRune` (with their ASCII variants) for
//! the `%q` verb.

/// Go `strconv.Unquote` for a string token of the template language (`"…"` or `` `…` ``).
/// Escapes that produce bytes which are not valid UTF-8 are rejected (Go would keep raw bytes;
/// rendered files here are UTF-8 text).
pub(crate) fn unquote(token: &str) -> Result<String, String> {
    let invalid = || format!("invalid syntax in string literal {token}");
    if let Some(body) = token.strip_prefix('`').and_then(|t| t.strip_suffix('`')) {
        // Raw strings: Go drops carriage returns.
        return Ok(body.chars().filter(|&c| c != '\r').collect());
    }
    let body = token.strip_prefix('"').and_then(|t| t.strip_suffix('"')).ok_or_else(invalid)?;
    let mut bytes: Vec<u8> = Vec::with_capacity(body.len());
    let mut rest = body;
    while !rest.is_empty() {
        let (piece, tail) = unquote_char(rest, '"').ok_or_else(invalid)?;
        match piece {
            Unquoted::Char(c) => {
                let mut buf = [0u8; 4];
                bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            Unquoted::Byte(b) => bytes.push(b),
        }
        rest = tail;
    }
    String::from_utf8(bytes).map_err(|_| format!("string literal {token} is not valid UTF-8"))
}

/// Go `strconv.UnquoteChar` applied to a character constant token (`'a'`, `'\n'`, `'\x41'`).
/// Returns the rune value.
pub(crate) fn unquote_char_constant(token: &str) -> Result<i64, String> {
    let body = token.strip_prefix('\'').ok_or_else(|| format!("malformed character constant: {token}"))?;
    let (piece, tail) = unquote_char(body, '\'').ok_or_else(|| "invalid syntax".to_string())?;
    if tail != "'" {
        return Err(format!("malformed character constant: {token}"));
    }
    Ok(match piece {
        Unquoted::Char(c) => i64::from(u32::from(c)),
        Unquoted::Byte(b) => i64::from(b),
    })
}

/// One decoded element of a quoted literal: a rune, or a raw byte from `\x`/octal escapes.
enum Unquoted {
    Char(char),
    Byte(u8),
}

/// Decodes the first character or escape of `s` quoted with `quote`; `None` is a syntax error.
fn unquote_char(s: &str, quote: char) -> Option<(Unquoted, &str)> {
    let mut chars = s.chars();
    let c = chars.next()?;
    if c == quote && (quote == '\'' || quote == '"') {
        return None;
    }
    if c != '\\' {
        return Some((Unquoted::Char(c), chars.as_str()));
    }
    let escape = chars.next()?;
    let rest = chars.as_str();
    let simple = |v: char| Some((Unquoted::Char(v), rest));
    match escape {
        'a' => simple('\u{7}'),
        'b' => simple('\u{8}'),
        'f' => simple('\u{c}'),
        'n' => simple('\n'),
        'r' => simple('\r'),
        't' => simple('\t'),
        'v' => simple('\u{b}'),
        '\\' => simple('\\'),
        '\'' | '"' if escape == quote => simple(escape),
        'x' | 'u' | 'U' => {
            let digits = match escape {
                'x' => 2,
                'u' => 4,
                _ => 8,
            };
            let hex = rest.get(..digits)?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            let value = u32::from_str_radix(hex, 16).ok()?;
            let tail = &rest[digits..];
            if escape == 'x' {
                return Some((Unquoted::Byte(u8::try_from(value).ok()?), tail));
            }
            Some((Unquoted::Char(char::from_u32(value)?), tail))
        }
        '0'..='7' => {
            let octal = s.get(1..4)?;
            if !octal.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                return None;
            }
            let value = u32::from_str_radix(octal, 8).ok()?;
            Some((Unquoted::Byte(u8::try_from(value).ok()?), &s[4..]))
        }
        _ => None,
    }
}

/// Go `unicode.IsPrint`, approximated without Unicode category tables: ASCII printable, and any
/// other character that is not a control, a space separator or a well-known format character.
/// Unassigned code points count as printable here (Go escapes them).
pub(crate) fn is_print(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c,
        '\u{ad}' | '\u{600}'..='\u{605}' | '\u{61c}' | '\u{6dd}' | '\u{70f}' | '\u{180e}'
        | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}'
        | '\u{e000}'..='\u{f8ff}' | '\u{f0000}'..='\u{10ffff}' | '\u{e0001}' | '\u{e0020}'..='\u{e007f}')
}

/// Go `strconv.Quote` (`ascii_only` = `QuoteToASCII`).
pub(crate) fn quote(s: &str, ascii_only: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        append_escaped_rune(&mut out, c, '"', ascii_only);
    }
    out.push('"');
    out
}

/// Go `strconv.QuoteRune` (`ascii_only` = `QuoteRuneToASCII`).
pub(crate) fn quote_rune(c: char, ascii_only: bool) -> String {
    let mut out = String::from("'");
    append_escaped_rune(&mut out, c, '\'', ascii_only);
    out.push('\'');
    out
}

/// Go `strconv.CanBackquote`.
pub(crate) fn can_backquote(s: &str) -> bool {
    s.chars().all(|c| {
        if c.len_utf8() > 1 {
            return c != '\u{feff}';
        }
        !((c < ' ' && c != '\t') || c == '`' || c == '\u{7f}')
    })
}

fn append_escaped_rune(out: &mut String, c: char, quote: char, ascii_only: bool) {
    if c == quote || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if if ascii_only { c.is_ascii() && is_print(c) } else { is_print(c) } {
        out.push(c);
        return;
    }
    match c {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        _ => {
            let code = u32::from(c);
            if code < u32::from(' ') || code == 0x7f {
                out.push_str(&format!("\\x{code:02x}"));
            } else if code < 0x10000 {
                out.push_str(&format!("\\u{code:04x}"));
            } else {
                out.push_str(&format!("\\U{code:08x}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquote_handles_escapes_raw_strings_and_bytes() {
        assert_eq!(unquote(r#""a\tb\"c\\""#).unwrap(), "a\tb\"c\\");
        assert_eq!(unquote(r#""\x41\101\u00e9\U0001F600""#).unwrap(), "AAé😀");
        assert_eq!(unquote(r#""\xc3\xa9""#).unwrap(), "é");
        assert_eq!(unquote("`a\\n\r\nb`").unwrap(), "a\\n\nb");
        assert!(unquote(r#""\q""#).is_err());
        assert!(unquote(r#""\'""#).is_err(), "\\' is only valid in character constants");
        assert!(unquote(r#""\xff""#).is_err(), "invalid UTF-8 is rejected");
    }

    #[test]
    fn char_constants_are_rune_values() {
        assert_eq!(unquote_char_constant("'a'").unwrap(), 97);
        assert_eq!(unquote_char_constant(r"'\n'").unwrap(), 10);
        assert_eq!(unquote_char_constant(r"'\''").unwrap(), 39);
        assert_eq!(unquote_char_constant(r"'\xff'").unwrap(), 255);
        assert_eq!(unquote_char_constant("'é'").unwrap(), 233);
        assert!(unquote_char_constant("'ab'").is_err());
        assert!(unquote_char_constant(r#"'\"'"#).is_err());
    }

    #[test]
    fn quote_matches_go() {
        assert_eq!(quote("a\"b\\c\n\u{1}é\u{a0}", false), r#""a\"b\\c\n\x01é\u00a0""#);
        assert_eq!(quote("é😀", true), r#""\u00e9\U0001f600""#);
        assert_eq!(quote_rune('\'', false), r"'\''");
        assert_eq!(quote_rune('x', false), "'x'");
        assert!(can_backquote("a\tb"));
        assert!(!can_backquote("a`b"));
        assert!(!can_backquote("a\nb"));
    }
}
