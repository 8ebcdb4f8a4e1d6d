//! Go `strconv.FormatFloat(v, fmt, prec, 64)` for the verbs `e E f g G b x X`. Decimal digits
//! come from Rust's exact (correctly rounded, round-half-even) formatting; the layout rules
//! (exponent form, `%g` switch-over, trailing zeros) are Go's.

/// Decimal digits of a float: `digits` (no trailing zeros) with the decimal point after `dp` digits.
struct Decimal {
    digits: Vec<u8>,
    dp: i64,
}

pub(crate) fn format_float(v: f64, fmt: u8, prec: i64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v < 0.0 { "-Inf" } else { "+Inf" }.to_string();
    }
    let neg = v.is_sign_negative();
    let abs = v.abs();
    let mut out = String::new();
    match fmt {
        b'b' => return format_binary(v),
        b'x' | b'X' => return format_hex(v, fmt, prec),
        _ => {}
    }
    if neg {
        out.push('-');
    }
    let shortest = prec < 0;
    if fmt == b'f' && !shortest {
        out.push_str(&format!("{abs:.*}", to_usize(prec)));
        return out;
    }
    let (decimal, prec) = if shortest {
        let d = decimal_digits(&format!("{abs:e}"));
        let nd = d.digits.len() as i64;
        let prec = match fmt {
            b'e' | b'E' => (nd - 1).max(0),
            b'f' => (nd - d.dp).max(0),
            _ => nd,
        };
        (d, prec)
    } else {
        let prec = if matches!(fmt, b'g' | b'G') && prec == 0 { 1 } else { prec };
        let significant = if matches!(fmt, b'e' | b'E') { prec + 1 } else { prec };
        (decimal_digits(&format!("{abs:.*e}", to_usize(significant - 1))), prec)
    };
    match fmt {
        b'e' | b'E' => fmt_e(&mut out, &decimal, prec, fmt),
        b'f' => fmt_f(&mut out, &decimal, prec),
        b'g' | b'G' => {
            let nd = decimal.digits.len() as i64;
            let mut eprec = prec;
            if eprec > nd && nd >= decimal.dp {
                eprec = nd;
            }
            if shortest {
                eprec = 6;
            }
            let exp = decimal.dp - 1;
            if exp < -4 || exp >= eprec {
                let prec = prec.min(nd);
                fmt_e(&mut out, &decimal, prec - 1, fmt + b'e' - b'g');
            } else {
                let prec = if prec > decimal.dp { nd } else { prec };
                fmt_f(&mut out, &decimal, (prec - decimal.dp).max(0));
            }
        }
        other => {
            out.push('%');
            out.push(char::from(other));
        }
    }
    out
}

fn to_usize(n: i64) -> usize {
    usize::try_from(n.max(0)).unwrap_or(0)
}

/// Parses Rust's `{:e}` output (`d.ddde-7`) into trimmed digits and the decimal point position.
fn decimal_digits(exp_form: &str) -> Decimal {
    let (mantissa, exponent) = exp_form.split_once('e').unwrap_or((exp_form, "0"));
    let mut digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    while digits.last() == Some(&b'0') {
        digits.pop();
    }
    if digits.is_empty() {
        return Decimal { digits, dp: 0 };
    }
    let exp: i64 = exponent.parse().unwrap_or(0);
    Decimal { digits, dp: exp + 1 }
}

fn digit_at(d: &Decimal, i: i64) -> char {
    usize::try_from(i).ok().and_then(|i| d.digits.get(i)).map_or('0', |&b| char::from(b))
}

fn fmt_e(out: &mut String, d: &Decimal, prec: i64, fmt: u8) {
    out.push(digit_at(d, 0));
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            out.push(digit_at(d, i));
        }
    }
    out.push(char::from(fmt));
    let exp = if d.digits.is_empty() { 0 } else { d.dp - 1 };
    out.push(if exp < 0 { '-' } else { '+' });
    out.push_str(&format!("{:02}", exp.abs()));
}

fn fmt_f(out: &mut String, d: &Decimal, prec: i64) {
    if d.dp > 0 {
        for i in 0..d.dp {
            out.push(digit_at(d, i));
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 0..prec {
            out.push(digit_at(d, d.dp + i));
        }
    }
}

/// Go `%b`: decimal mantissa and binary exponent, `-123456p-78`.
fn format_binary(v: f64) -> String {
    let (neg, mant, exp) = decompose(v);
    format!("{}{}p{:+}", if neg { "-" } else { "" }, mant, exp - 52)
}

/// Sign, mantissa with the implicit bit, and unbiased exponent of a finite float.
fn decompose(v: f64) -> (bool, u64, i64) {
    let bits = v.to_bits();
    let neg = bits >> 63 != 0;
    let mut exp = ((bits >> 52) & 0x7ff) as i64;
    let mut mant = bits & ((1u64 << 52) - 1);
    if exp == 0 {
        exp += 1;
    } else {
        mant |= 1u64 << 52;
    }
    (neg, mant, exp - 1023)
}

/// Go `%x`/`%X` hexadecimal floats, `-0x1.8p+01`.
fn format_hex(v: f64, fmt: u8, prec: i64) -> String {
    let (neg, mut mant, mut exp) = decompose(v);
    if mant == 0 {
        exp = 0;
    }
    mant <<= 60 - 52;
    while mant != 0 && mant & (1 << 60) == 0 {
        mant <<= 1;
        exp -= 1;
    }
    if (0..15).contains(&prec) {
        let shift = u32::try_from(prec * 4).unwrap_or(0);
        let extra = (mant << shift) & ((1u64 << 60) - 1);
        mant >>= 60 - shift;
        if extra | (mant & 1) > 1 << 59 {
            mant += 1;
        }
        mant <<= 60 - shift;
        if mant & (1 << 61) != 0 {
            mant >>= 1;
            exp += 1;
        }
    }
    let hex = if fmt == b'X' { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    out.push('0');
    out.push(char::from(fmt));
    out.push(char::from(b'0' + ((mant >> 60) & 1) as u8));
    mant <<= 4;
    if prec < 0 && mant != 0 {
        out.push('.');
        while mant != 0 {
            out.push(char::from(hex[((mant >> 60) & 15) as usize]));
            mant <<= 4;
        }
    } else if prec > 0 {
        out.push('.');
        for _ in 0..prec {
            out.push(char::from(hex[((mant >> 60) & 15) as usize]));
            mant <<= 4;
        }
    }
    out.push(if fmt == b'X' { 'P' } else { 'p' });
    out.push(if exp < 0 { '-' } else { '+' });
    out.push_str(&format!("{:02}", exp.abs()));
    out
}

#[cfg(test)]
mod tests {
    use super::format_float;

    #[test]
    fn shortest_forms_match_go() {
        assert_eq!(format_float(1.5, b'g', -1), "1.5");
        assert_eq!(format_float(1e6, b'g', -1), "1e+06");
        assert_eq!(format_float(100000.0, b'g', -1), "100000");
        assert_eq!(format_float(0.0001, b'g', -1), "0.0001");
        assert_eq!(format_float(0.00001, b'g', -1), "1e-05");
        assert_eq!(format_float(0.0, b'g', -1), "0");
        assert_eq!(format_float(-0.0, b'g', -1), "-0");
        assert_eq!(format_float(1e23, b'g', -1), "1e+23");
        assert_eq!(format_float(123456789.0, b'g', -1), "1.23456789e+08");
    }

    #[test]
    fn fixed_precision_matches_go() {
        assert_eq!(format_float(1.23456, b'f', 2), "1.23");
        assert_eq!(format_float(0.125, b'f', 2), "0.12");
        assert_eq!(format_float(2.5, b'e', 3), "2.500e+00");
        assert_eq!(format_float(0.0, b'e', 2), "0.00e+00");
        assert_eq!(format_float(1234.5678, b'g', 3), "1.23e+03");
        assert_eq!(format_float(0.5, b'g', 6), "0.5");
        assert_eq!(format_float(1.0, b'e', -1), "1e+00");
        assert_eq!(format_float(1e100, b'e', 1), "1.0e+100");
    }

    #[test]
    fn binary_and_hex_forms() {
        assert_eq!(format_float(1.0, b'b', -1), "4503599627370496p-52");
        assert_eq!(format_float(1.0, b'x', -1), "0x1p+00");
        assert_eq!(format_float(3.0, b'x', -1), "0x1.8p+01");
        assert_eq!(format_float(-0.5, b'X', 2), "-0X1.00P-01");
    }
}
