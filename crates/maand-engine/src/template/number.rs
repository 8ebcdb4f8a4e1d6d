//! Numeric constants of the template language: Go's `parse.newNumber` (which decides whether a
//! literal is usable as an int, a uint and/or a float) on top of ports of `strconv.ParseInt`,
//! `ParseUint` and `ParseFloat` with base prefixes and `_` separators.

use super::ast::NumberNode;
use super::go_strconv::{quote, unquote_char_constant};
use super::lexer::TokenKind;

/// Go `newNumber`. Complex constants (`1i`, `1+2i`) are not supported and are rejected.
pub(crate) fn new_number(pos: usize, text: &str, kind: TokenKind) -> Result<NumberNode, String> {
    let mut n = NumberNode {
        pos,
        text: text.to_string(),
        is_int: false,
        is_uint: false,
        is_float: false,
        int64: 0,
        float64: 0.0,
    };
    if kind == TokenKind::CharConstant {
        let rune = unquote_char_constant(text)?;
        n.is_int = true;
        n.is_uint = true;
        n.is_float = true;
        n.int64 = rune;
        n.float64 = rune as f64;
        return Ok(n);
    }
    let imaginary = text.strip_suffix('i').is_some_and(|t| parse_float(t).is_some());
    if kind == TokenKind::Complex || imaginary {
        return Err(format!("complex number constants are not supported: {}", quote(text, false)));
    }
    let unsigned = parse_uint(text);
    if let Some(u) = unsigned {
        n.is_uint = true;
        n.float64 = u as f64;
    }
    if let Some(i) = parse_int(text) {
        n.is_int = true;
        n.int64 = i;
        if i == 0 {
            n.is_uint = true;
        }
    }
    if n.is_int {
        n.is_float = true;
        n.float64 = n.int64 as f64;
    } else if n.is_uint {
        n.is_float = true;
    } else if let Some(f) = parse_float(text) {
        if !text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Err(format!("integer overflow: {}", quote(text, false)));
        }
        n.is_float = true;
        n.float64 = f;
        // Go: float64(int64(f)) == f, without relying on out-of-range conversions.
        const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
        if f.trunc() == f && (-TWO_POW_63..TWO_POW_63).contains(&f) {
            n.is_int = true;
            n.int64 = f as i64;
        }
        if f.trunc() == f && (0.0..2.0 * TWO_POW_63).contains(&f) {
            n.is_uint = true;
        }
    }
    if !n.is_int && !n.is_uint && !n.is_float {
        return Err(format!("illegal number syntax: {}", quote(text, false)));
    }
    Ok(n)
}

/// Go `strconv.ParseInt(s, 0, 64)`.
pub(crate) fn parse_int(s: &str) -> Option<i64> {
    let (neg, digits) = match s.as_bytes().first()? {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    let magnitude = parse_uint(digits)?;
    if neg {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Go `strconv.ParseUint(s, 0, 64)`: prefixes `0x`, `0o`, `0b`, a leading `0` for octal, and
/// `_` separators between digits.
pub(crate) fn parse_uint(s: &str) -> Option<u64> {
    let bytes = s.as_bytes();
    if bytes.is_empty() {
        return None;
    }
    let (base, digits): (u64, &[u8]) = if bytes[0] == b'0' {
        match bytes.get(1).map(u8::to_ascii_lowercase) {
            Some(b'b') if bytes.len() >= 3 => (2, &bytes[2..]),
            Some(b'o') if bytes.len() >= 3 => (8, &bytes[2..]),
            Some(b'x') if bytes.len() >= 3 => (16, &bytes[2..]),
            _ => (8, &bytes[1..]),
        }
    } else {
        (10, bytes)
    };
    let mut n: u64 = 0;
    let mut underscores = false;
    for &c in digits {
        let d = match c {
            b'_' => {
                underscores = true;
                continue;
            }
            b'0'..=b'9' => c - b'0',
            _ if c.is_ascii_alphabetic() => c.to_ascii_lowercase() - b'a' + 10,
            _ => return None,
        };
        if u64::from(d) >= base {
            return None;
        }
        n = n.checked_mul(base)?.checked_add(u64::from(d))?;
    }
    if underscores && !underscore_ok(s) {
        return None;
    }
    Some(n)
}

/// Go `strconv.ParseFloat(s, 64)` for the literal forms the lexer produces (decimal and
/// hexadecimal mantissas, exponents, `_` separators). Out-of-range values are errors (`None`).
pub(crate) fn parse_float(s: &str) -> Option<f64> {
    if s.contains('_') && !underscore_ok(s) {
        return None;
    }
    let cleaned: String = s.chars().filter(|&c| c != '_').collect();
    let (neg, body) = match cleaned.as_bytes().first()? {
        b'+' => (false, &cleaned[1..]),
        b'-' => (true, &cleaned[1..]),
        _ => (false, cleaned.as_str()),
    };
    let value = if let Some(hex) = body.get(..2).filter(|p| p.eq_ignore_ascii_case("0x")).and_then(|_| body.get(2..)) {
        parse_hex_float(hex)?
    } else {
        if !body.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-')) {
            return None;
        }
        body.parse::<f64>().ok()?
    };
    if !value.is_finite() {
        return None;
    }
    Some(if neg { -value } else { value })
}

/// Hexadecimal float mantissa and mandatory `p` exponent (after the `0x` prefix).
fn parse_hex_float(s: &str) -> Option<f64> {
    let (mantissa, exponent) = s.split_once(['p', 'P'])?;
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let digits = format!("{int_part}{frac_part}");
    if digits.len() > 30 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mant = u128::from_str_radix(&digits, 16).ok()?;
    let exp: i32 = exponent.parse().ok()?;
    let frac_bits = i32::try_from(frac_part.len()).ok()?.checked_mul(4)?;
    Some(mant as f64 * 2f64.powi(exp.checked_sub(frac_bits)?))
}

/// Go `strconv.underscoreOK`: underscores only between digits (or after a base prefix).
fn underscore_ok(s: &str) -> bool {
    let mut b = s.as_bytes();
    if let Some(b'+' | b'-') = b.first() {
        b = &b[1..];
    }
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = b[1].eq_ignore_ascii_case(&b'x');
    }
    while i < b.len() {
        let c = b[i];
        i += 1;
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
            continue;
        }
        if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
            continue;
        }
        if saw == b'_' {
            return false;
        }
        saw = b'!';
    }
    saw != b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(text: &str) -> Result<NumberNode, String> {
        new_number(0, text, TokenKind::Number)
    }

    #[test]
    fn integers_in_every_base() {
        assert_eq!(number("42").unwrap().int64, 42);
        assert_eq!(number("-7").unwrap().int64, -7);
        assert_eq!(number("0x1F").unwrap().int64, 31);
        assert_eq!(number("0o17").unwrap().int64, 15);
        assert_eq!(number("017").unwrap().int64, 15);
        assert_eq!(number("0b101").unwrap().int64, 5);
        assert_eq!(number("1_000").unwrap().int64, 1000);
        assert!(number("1__0").is_err());
    }

    #[test]
    fn floats_with_integral_values_are_also_ints() {
        let n = number("2.0").unwrap();
        assert!(n.is_float && n.is_int);
        assert_eq!(n.int64, 2);
        let n = number("1.5").unwrap();
        assert!(n.is_float && !n.is_int);
        assert_eq!(number("1e3").unwrap().int64, 1000);
        assert_eq!(number("0x1p-2").unwrap().float64, 0.25);
    }

    #[test]
    fn go_quirks_are_kept() {
        assert_eq!(number("089").unwrap_err(), "integer overflow: \"089\"");
        assert_eq!(number("99999999999999999999").unwrap_err(), "integer overflow: \"99999999999999999999\"");
        let big = number("18446744073709551615").unwrap();
        assert!(big.is_uint && !big.is_int);
        assert!(number("1i").is_err());
        assert!(number("1e400").is_err());
        assert_eq!(new_number(0, "'a'", TokenKind::CharConstant).unwrap().int64, 97);
    }
}
