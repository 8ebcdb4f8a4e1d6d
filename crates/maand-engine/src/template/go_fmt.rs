//! Go `fmt` printing of template values: `Sprint`, `Sprintln` and `Sprintf` (flags, width,
//! precision, `*`, `[n]` argument indexes, and the `%!v(…)` error markers), plus the default
//! printing of an action's value. A port of the parts of fmt/print.go and fmt/format.go that
//! apply to the value types of [`Value`].

use super::float_format::format_float;
use super::go_strconv::{can_backquote, is_print, quote, quote_rune};
use super::value::Value;

/// Prints a value the way an action `{{ … }}` does (`<no value>` for an invalid value).
pub(crate) fn print_action_value(v: &Value) -> String {
    match v {
        Value::Nil => "<no value>".to_string(),
        Value::Str(s) => s.to_string(),
        other => sprint(std::slice::from_ref(other)),
    }
}

/// Go `fmt.Sprint`: spaces between operands when neither is a string.
pub(crate) fn sprint(args: &[Value]) -> String {
    let mut p = Printer::default();
    let mut prev_string = false;
    for (i, arg) in args.iter().enumerate() {
        let is_string = matches!(arg, Value::Str(_));
        if i > 0 && !is_string && !prev_string {
            p.buf.push(' ');
        }
        p.print_arg(arg, 'v');
        prev_string = is_string;
    }
    p.buf
}

/// Go `fmt.Sprintln`: spaces between all operands and a final newline.
pub(crate) fn sprintln(args: &[Value]) -> String {
    let mut p = Printer::default();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            p.buf.push(' ');
        }
        p.print_arg(arg, 'v');
    }
    p.buf.push('\n');
    p.buf
}

/// Go `fmt.Sprintf`.
pub(crate) fn sprintf(format: &str, args: &[Value]) -> String {
    let mut p = Printer::default();
    p.do_printf(format, args);
    p.buf
}

#[derive(Default, Clone, Copy)]
struct Flags {
    wid_present: bool,
    prec_present: bool,
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    plus_v: bool,
    sharp_v: bool,
    wid: i64,
    prec: i64,
}

#[derive(Default)]
struct Printer {
    buf: String,
    f: Flags,
    reordered: bool,
    good_arg_num: bool,
}

const LOWER_DIGITS: &[u8; 17] = b"0123456789abcdefx";
const UPPER_DIGITS: &[u8; 17] = b"0123456789ABCDEFX";
/// Go `tooLarge`: widths and precisions beyond this are ignored.
const MAX_WIDTH: i64 = 1_000_000;

/// Go `parsenum`: a decimal number at `start`, returning (value, found, next index).
fn parse_num(s: &[u8], start: usize) -> (i64, bool, usize) {
    let mut num: i64 = 0;
    let mut found = false;
    let mut i = start;
    while i < s.len() && s[i].is_ascii_digit() {
        if num > MAX_WIDTH {
            return (0, false, s.len());
        }
        num = num * 10 + i64::from(s[i] - b'0');
        found = true;
        i += 1;
    }
    (num, found, i)
}

impl Printer {
    fn write_padding(&mut self, n: i64) {
        if n <= 0 {
            return;
        }
        let pad = if self.f.zero { '0' } else { ' ' };
        self.buf.extend(std::iter::repeat_n(pad, usize::try_from(n).unwrap_or(0)));
    }

    fn pad(&mut self, s: &str) {
        if !self.f.wid_present || self.f.wid == 0 {
            self.buf.push_str(s);
            return;
        }
        let width = self.f.wid - s.chars().count() as i64;
        if self.f.minus {
            self.buf.push_str(s);
            self.write_padding(width);
        } else {
            self.write_padding(width);
            self.buf.push_str(s);
        }
    }

    /// Pads with spaces even when the zero flag is set.
    fn pad_spaces(&mut self, s: &str) {
        let zero = std::mem::replace(&mut self.f.zero, false);
        self.pad(s);
        self.f.zero = zero;
    }

    fn bad_verb(&mut self, verb: char, arg: &Value) {
        self.buf.push_str("%!");
        self.buf.push(verb);
        self.buf.push('(');
        if matches!(arg, Value::Nil) {
            self.buf.push_str("<nil>");
        } else {
            self.buf.push_str(arg.type_name());
            self.buf.push('=');
            self.print_arg(arg, 'v');
        }
        self.buf.push(')');
    }

    fn print_arg(&mut self, arg: &Value, verb: char) {
        if let Value::Nil = arg {
            match verb {
                'T' | 'v' => self.pad("<nil>"),
                _ => self.bad_verb(verb, arg),
            }
            return;
        }
        if verb == 'T' {
            self.fmt_s(arg.type_name());
            return;
        }
        if verb == 'p' {
            // Go prints a slice's address here; no value of ours has a stable address.
            self.bad_verb(verb, arg);
            return;
        }
        match arg {
            Value::Nil => {}
            Value::Bool(b) => match verb {
                't' | 'v' => self.pad(if *b { "true" } else { "false" }),
                _ => self.bad_verb(verb, arg),
            },
            Value::Int(i) => self.fmt_integer(*i as u64, true, verb, arg),
            Value::Byte(b) => self.fmt_integer(u64::from(*b), false, verb, arg),
            Value::Float(v) => self.fmt_float_verb(*v, verb, arg),
            Value::Str(s) => self.fmt_string(s, verb, arg),
            Value::Strings(items) => {
                if self.f.sharp_v {
                    self.buf.push_str("[]string{");
                } else {
                    self.buf.push('[');
                }
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.buf.push_str(if self.f.sharp_v { ", " } else { " " });
                    }
                    self.print_arg(&Value::string(item.as_str()), verb);
                }
                self.buf.push(if self.f.sharp_v { '}' } else { ']' });
            }
            Value::Struct(s) => {
                if self.f.sharp_v {
                    self.buf.push_str(s.type_name);
                }
                self.buf.push('{');
                for (i, field) in s.fields.iter().enumerate() {
                    if i > 0 {
                        self.buf.push_str(if self.f.sharp_v { ", " } else { " " });
                    }
                    if self.f.plus_v || self.f.sharp_v {
                        self.buf.push_str(field.name);
                        self.buf.push(':');
                    }
                    self.print_arg(&field.value, verb);
                }
                self.buf.push('}');
            }
        }
    }

    fn fmt_string(&mut self, s: &str, verb: char, arg: &Value) {
        match verb {
            'v' if self.f.sharp_v => self.fmt_q(s),
            'v' | 's' => self.fmt_s(s),
            'x' => self.fmt_sx(s, LOWER_DIGITS),
            'X' => self.fmt_sx(s, UPPER_DIGITS),
            'q' => self.fmt_q(s),
            _ => self.bad_verb(verb, arg),
        }
    }

    fn truncate<'s>(&self, s: &'s str) -> &'s str {
        if self.f.prec_present {
            if let Some((i, _)) = s.char_indices().nth(usize::try_from(self.f.prec).unwrap_or(0)) {
                return &s[..i];
            }
        }
        s
    }

    fn fmt_s(&mut self, s: &str) {
        let s = self.truncate(s);
        self.pad(s);
    }

    fn fmt_q(&mut self, s: &str) {
        let s = self.truncate(s);
        if self.f.sharp && can_backquote(s) {
            self.pad(&format!("`{s}`"));
            return;
        }
        let quoted = quote(s, self.f.plus);
        self.pad(&quoted);
    }

    /// Go `fmtSbx` for strings: hex of each byte, with `#` and space flags.
    fn fmt_sx(&mut self, s: &str, digits: &[u8; 17]) {
        let bytes = s.as_bytes();
        let mut length = bytes.len() as i64;
        if self.f.prec_present && self.f.prec < length {
            length = self.f.prec;
        }
        let mut width = 2 * length;
        if width > 0 {
            if self.f.space {
                if self.f.sharp {
                    width *= 2;
                }
                width += length - 1;
            } else if self.f.sharp {
                width += 2;
            }
        } else {
            if self.f.wid_present {
                self.write_padding(self.f.wid);
            }
            return;
        }
        if self.f.wid_present && self.f.wid > width && !self.f.minus {
            self.write_padding(self.f.wid - width);
        }
        let hex_prefix = |out: &mut String| {
            out.push('0');
            out.push(char::from(digits[16]));
        };
        if self.f.sharp {
            hex_prefix(&mut self.buf);
        }
        for (i, &c) in bytes.iter().take(usize::try_from(length).unwrap_or(0)).enumerate() {
            if self.f.space && i > 0 {
                self.buf.push(' ');
                if self.f.sharp {
                    hex_prefix(&mut self.buf);
                }
            }
            self.buf.push(char::from(digits[usize::from(c >> 4)]));
            self.buf.push(char::from(digits[usize::from(c & 0xF)]));
        }
        if self.f.wid_present && self.f.wid > width && self.f.minus {
            self.write_padding(self.f.wid - width);
        }
    }

    fn fmt_integer(&mut self, u: u64, signed: bool, verb: char, arg: &Value) {
        match verb {
            'v' if self.f.sharp_v && !signed => {
                let sharp = std::mem::replace(&mut self.f.sharp, true);
                self.fmt_int(u, 16, signed, verb, LOWER_DIGITS);
                self.f.sharp = sharp;
            }
            'v' | 'd' => self.fmt_int(u, 10, signed, verb, LOWER_DIGITS),
            'b' => self.fmt_int(u, 2, signed, verb, LOWER_DIGITS),
            'o' | 'O' => self.fmt_int(u, 8, signed, verb, LOWER_DIGITS),
            'x' => self.fmt_int(u, 16, signed, verb, LOWER_DIGITS),
            'X' => self.fmt_int(u, 16, signed, verb, UPPER_DIGITS),
            'c' => {
                let c = rune_or_replacement(u);
                self.pad(c.encode_utf8(&mut [0u8; 4]));
            }
            'q' => {
                let quoted = quote_rune(rune_or_replacement(u), self.f.plus);
                self.pad(&quoted);
            }
            'U' => self.fmt_unicode(u),
            _ => self.bad_verb(verb, arg),
        }
    }

    /// Go `fmt.fmtInteger`.
    fn fmt_int(&mut self, u: u64, base: u64, signed: bool, verb: char, digits: &[u8; 17]) {
        let negative = signed && (u as i64) < 0;
        let mut u = if negative { (u as i64).unsigned_abs() } else { u };
        let mut prec: i64 = 0;
        if self.f.prec_present {
            prec = self.f.prec;
            if prec == 0 && u == 0 {
                let zero = std::mem::replace(&mut self.f.zero, false);
                self.write_padding(self.f.wid);
                self.f.zero = zero;
                return;
            }
        } else if self.f.zero && self.f.wid_present {
            prec = self.f.wid;
            if negative || self.f.plus || self.f.space {
                prec -= 1;
            }
        }
        // Digits are produced right to left, then reversed.
        let mut rev: Vec<u8> = Vec::new();
        loop {
            rev.push(digits[(u % base) as usize]);
            u /= base;
            if u == 0 {
                break;
            }
        }
        while (rev.len() as i64) < prec {
            rev.push(b'0');
        }
        if self.f.sharp {
            match base {
                2 => rev.extend_from_slice(b"b0"),
                8 if rev.last() != Some(&b'0') => rev.push(b'0'),
                16 => {
                    rev.push(digits[16]);
                    rev.push(b'0');
                }
                _ => {}
            }
        }
        if verb == 'O' {
            rev.extend_from_slice(b"o0");
        }
        if negative {
            rev.push(b'-');
        } else if self.f.plus {
            rev.push(b'+');
        } else if self.f.space {
            rev.push(b' ');
        }
        let text: String = rev.iter().rev().map(|&b| char::from(b)).collect();
        self.pad_spaces(&text);
    }

    fn fmt_unicode(&mut self, u: u64) {
        let prec = if self.f.prec_present && self.f.prec > 4 { usize::try_from(self.f.prec).unwrap_or(4) } else { 4 };
        let mut text = format!("U+{u:0prec$X}");
        if self.f.sharp {
            if let Some(c) = u32::try_from(u).ok().and_then(char::from_u32).filter(|&c| is_print(c)) {
                text.push_str(&format!(" '{c}'"));
            }
        }
        self.pad_spaces(&text);
    }

    fn fmt_float_verb(&mut self, v: f64, verb: char, arg: &Value) {
        match verb {
            'v' => self.fmt_float(v, b'g', -1),
            'b' | 'g' | 'G' | 'x' | 'X' => self.fmt_float(v, verb as u8, -1),
            'f' | 'e' | 'E' => self.fmt_float(v, verb as u8, 6),
            'F' => self.fmt_float(v, b'f', 6),
            _ => self.bad_verb(verb, arg),
        }
    }

    /// Go `fmt.fmtFloat`: sign handling, `#` (keep the decimal point and trailing zeros) and
    /// zero padding after the sign.
    fn fmt_float(&mut self, v: f64, verb: u8, prec: i64) {
        let prec = if self.f.prec_present { self.f.prec } else { prec };
        let formatted = format_float(v, verb, prec);
        let mut num: Vec<u8> = if formatted.starts_with(['-', '+']) {
            formatted.into_bytes()
        } else {
            let mut n = vec![b'+'];
            n.extend_from_slice(formatted.as_bytes());
            n
        };
        if self.f.space && num[0] == b'+' && !self.f.plus {
            num[0] = b' ';
        }
        if num.get(1).is_some_and(|&c| c == b'I' || c == b'N') {
            let zero = std::mem::replace(&mut self.f.zero, false);
            if num[1] == b'N' && !self.f.space && !self.f.plus {
                num.remove(0);
            }
            self.pad(&String::from_utf8_lossy(&num));
            self.f.zero = zero;
            return;
        }
        if self.f.sharp && verb != b'b' {
            num = sharp_float(num, verb, prec);
        }
        let text = String::from_utf8_lossy(&num).into_owned();
        if self.f.plus || num[0] != b'+' {
            if self.f.zero && self.f.wid_present && self.f.wid > num.len() as i64 {
                self.buf.push(char::from(num[0]));
                self.write_padding(self.f.wid - num.len() as i64);
                self.buf.push_str(&text[1..]);
                return;
            }
            self.pad(&text);
            return;
        }
        self.pad(&text[1..]);
    }

    fn do_printf(&mut self, format: &str, args: &[Value]) {
        let s = format.as_bytes();
        let end = s.len();
        let mut arg_num = 0usize;
        let mut after_index;
        self.reordered = false;
        let mut i = 0;
        'format: while i < end {
            self.good_arg_num = true;
            let last = i;
            while i < end && s[i] != b'%' {
                i += 1;
            }
            if i > last {
                self.buf.push_str(&format[last..i]);
            }
            if i >= end {
                break;
            }
            i += 1;
            self.f = Flags::default();
            while i < end {
                let c = s[i];
                match c {
                    b'#' => self.f.sharp = true,
                    b'0' => self.f.zero = !self.f.minus,
                    b'+' => self.f.plus = true,
                    b'-' => {
                        self.f.minus = true;
                        self.f.zero = false;
                    }
                    b' ' => self.f.space = true,
                    _ => {
                        if c.is_ascii_lowercase() && arg_num < args.len() {
                            if c == b'v' {
                                self.f.sharp_v = std::mem::take(&mut self.f.sharp);
                                self.f.plus_v = std::mem::take(&mut self.f.plus);
                            }
                            self.print_arg(&args[arg_num], char::from(c));
                            arg_num += 1;
                            i += 1;
                            continue 'format;
                        }
                        break;
                    }
                }
                i += 1;
            }

            (arg_num, i, after_index) = self.arg_number(arg_num, s, i, args.len());

            if i < end && s[i] == b'*' {
                i += 1;
                let (wid, present, next) = int_from_arg(args, arg_num);
                (self.f.wid, self.f.wid_present, arg_num) = (wid, present, next);
                if !present {
                    self.buf.push_str("%!(BADWIDTH)");
                }
                if self.f.wid < 0 {
                    self.f.wid = -self.f.wid;
                    self.f.minus = true;
                    self.f.zero = false;
                }
                after_index = false;
            } else {
                let (wid, present, next) = parse_num(s, i);
                (self.f.wid, self.f.wid_present, i) = (wid, present, next);
                if after_index && present {
                    self.good_arg_num = false;
                }
            }

            if i + 1 < end && s[i] == b'.' {
                i += 1;
                if after_index {
                    self.good_arg_num = false;
                }
                (arg_num, i, after_index) = self.arg_number(arg_num, s, i, args.len());
                if i < end && s[i] == b'*' {
                    i += 1;
                    let (prec, present, next) = int_from_arg(args, arg_num);
                    (self.f.prec, self.f.prec_present, arg_num) = (prec, present, next);
                    // A negative precision is reported like a missing one.
                    if self.f.prec < 0 {
                        self.f.prec = 0;
                        self.f.prec_present = false;
                    }
                    if !self.f.prec_present {
                        self.buf.push_str("%!(BADPREC)");
                    }
                    after_index = false;
                } else {
                    let (prec, present, next) = parse_num(s, i);
                    (self.f.prec, self.f.prec_present, i) = (prec, present, next);
                    if !present {
                        self.f.prec = 0;
                        self.f.prec_present = true;
                    }
                }
            }

            if !after_index {
                (arg_num, i, _) = self.arg_number(arg_num, s, i, args.len());
            }

            if i >= end {
                self.buf.push_str("%!(NOVERB)");
                break;
            }
            let verb = format.get(i..).and_then(|rest| rest.chars().next()).unwrap_or('?');
            i += verb.len_utf8();

            if verb == '%' {
                self.buf.push('%');
            } else if !self.good_arg_num {
                self.buf.push_str(&format!("%!{verb}(BADINDEX)"));
            } else if arg_num >= args.len() {
                self.buf.push_str(&format!("%!{verb}(MISSING)"));
            } else {
                if verb == 'v' {
                    self.f.sharp_v = std::mem::take(&mut self.f.sharp);
                    self.f.plus_v = std::mem::take(&mut self.f.plus);
                }
                self.print_arg(&args[arg_num], verb);
                arg_num += 1;
            }
        }

        if !self.reordered && arg_num < args.len() {
            self.f = Flags::default();
            self.buf.push_str("%!(EXTRA ");
            for (i, arg) in args[arg_num..].iter().enumerate() {
                if i > 0 {
                    self.buf.push_str(", ");
                }
                if let Value::Nil = arg {
                    self.buf.push_str("<nil>");
                } else {
                    self.buf.push_str(arg.type_name());
                    self.buf.push('=');
                    self.print_arg(arg, 'v');
                }
            }
            self.buf.push(')');
        }
    }

    /// Go `argNumber`: an explicit `[n]` argument index at `i`.
    fn arg_number(&mut self, arg_num: usize, s: &[u8], i: usize, num_args: usize) -> (usize, usize, bool) {
        if i >= s.len() || s[i] != b'[' {
            return (arg_num, i, false);
        }
        self.reordered = true;
        let (index, width, ok) = parse_arg_number(&s[i..]);
        if ok && index < num_args as i64 && index >= 0 {
            return (usize::try_from(index).unwrap_or(0), i + width, true);
        }
        self.good_arg_num = false;
        (arg_num, i + width, ok)
    }
}

/// Go `parseArgNumber`: `[n]` → (n-1, bytes consumed, ok).
fn parse_arg_number(s: &[u8]) -> (i64, usize, bool) {
    if s.len() < 3 {
        return (0, 1, false);
    }
    for i in 1..s.len() {
        if s[i] == b']' {
            let (width, ok, next) = parse_num(s, 1);
            if !ok || next != i {
                return (0, i + 1, false);
            }
            return (width - 1, i + 1, true);
        }
    }
    (0, 1, false)
}

/// Go `intFromArg`: a `*` width or precision taken from an int argument.
fn int_from_arg(args: &[Value], arg_num: usize) -> (i64, bool, usize) {
    let Some(arg) = args.get(arg_num) else {
        return (0, false, arg_num);
    };
    match arg.as_integer() {
        Some(n) if (-MAX_WIDTH..=MAX_WIDTH).contains(&n) => (n, true, arg_num + 1),
        _ => (0, false, arg_num + 1),
    }
}

fn rune_or_replacement(u: u64) -> char {
    u32::try_from(u).ok().and_then(char::from_u32).unwrap_or('\u{FFFD}')
}

/// The `#` flag on floats: always a decimal point, and `%g`/`%v` keep trailing zeros.
fn sharp_float(mut num: Vec<u8>, verb: u8, prec: i64) -> Vec<u8> {
    let mut digits = match verb {
        b'v' | b'g' | b'G' | b'x' => {
            if prec == -1 {
                6
            } else {
                prec
            }
        }
        _ => 0,
    };
    let mut tail: Vec<u8> = Vec::new();
    let mut has_decimal_point = false;
    let mut saw_nonzero_digit = false;
    let mut i = 1;
    while i < num.len() {
        match num[i] {
            b'.' => has_decimal_point = true,
            b'p' | b'P' => {
                tail.extend_from_slice(&num[i..]);
                num.truncate(i);
                break;
            }
            b'e' | b'E' if verb != b'x' && verb != b'X' => {
                tail.extend_from_slice(&num[i..]);
                num.truncate(i);
                break;
            }
            c => {
                if c != b'0' {
                    saw_nonzero_digit = true;
                }
                if saw_nonzero_digit {
                    digits -= 1;
                }
            }
        }
        i += 1;
    }
    if !has_decimal_point {
        if num.len() == 2 && num[1] == b'0' {
            digits -= 1;
        }
        num.push(b'.');
    }
    while digits > 0 {
        num.push(b'0');
        digits -= 1;
    }
    num.extend_from_slice(&tail);
    num
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::string(v)
    }

    #[test]
    fn sprint_spacing_rules() {
        assert_eq!(sprint(&[s("a"), Value::Int(1), Value::Int(2), s("b")]), "a1 2b");
        assert_eq!(sprint(&[Value::Nil]), "<nil>");
        assert_eq!(sprintln(&[s("a"), Value::Int(1)]), "a 1\n");
        assert_eq!(print_action_value(&Value::strings(vec!["a".into(), "b".into()])), "[a b]");
        assert_eq!(print_action_value(&Value::Nil), "<no value>");
    }

    #[test]
    fn sprintf_common_verbs() {
        assert_eq!(sprintf("%02d", &[Value::Int(7)]), "07");
        assert_eq!(
            sprintf(
                "%5.1f|%-4s|%x|%X|%o|%b",
                &[Value::Float(1.23456), s("ab"), Value::Int(255), s("hi"), Value::Int(8), Value::Int(5)]
            ),
            "  1.2|ab  |ff|6869|10|101"
        );
        assert_eq!(
            sprintf(
                "%q %v %t %c %U",
                &[s("a\"b"), Value::Bool(true), Value::Bool(false), Value::Int(0x263A), Value::Int(0x263A)]
            ),
            "\"a\\\"b\" true false ☺ U+263A"
        );
        assert_eq!(
            sprintf("%+d % d %#x %#o", &[Value::Int(5), Value::Int(5), Value::Int(255), Value::Int(8)]),
            "+5  5 0xff 010"
        );
        assert_eq!(
            sprintf("%08.3f|%-8d|%+.2e", &[Value::Float(-1.23456), Value::Int(42), Value::Float(12345.678)]),
            "-001.235|42      |+1.23e+04"
        );
        assert_eq!(sprintf("%T %T %T", &[Value::Int(1), s("x"), Value::strings(vec![])]), "int string []string");
        assert_eq!(sprintf("%5s|%.2s", &[s("é"), s("héllo")]), "    é|hé");
        assert_eq!(sprintf("%#v %#v", &[s("a"), Value::strings(vec!["x".into()])]), "\"a\" []string{\"x\"}");
    }

    #[test]
    fn sprintf_error_markers() {
        assert_eq!(sprintf("%d", &[s("a")]), "%!d(string=a)");
        assert_eq!(sprintf("%d %d", &[Value::Int(1)]), "1 %!d(MISSING)");
        assert_eq!(sprintf("%d", &[Value::Int(1), s("x")]), "1%!(EXTRA string=x)");
        assert_eq!(sprintf("%!", &[]), "%!!(MISSING)");
        assert_eq!(sprintf("%", &[]), "%!(NOVERB)");
        assert_eq!(sprintf("%z", &[Value::Int(1)]), "%!z(int=1)");
        assert_eq!(sprintf("%s", &[Value::Nil]), "%!s(<nil>)");
        assert_eq!(sprintf("%[2]d %[1]d", &[Value::Int(1), Value::Int(2)]), "2 1");
        assert_eq!(sprintf("%[3]d", &[Value::Int(1)]), "%!d(BADINDEX)");
        assert_eq!(sprintf("%*d", &[Value::Int(4), Value::Int(7)]), "   7");
        assert_eq!(sprintf("%-*d|", &[Value::Int(-4), Value::Int(7)]), "7   |");
        assert_eq!(sprintf("%.*f", &[Value::Int(-1)]), "%!(BADPREC)%!f(MISSING)");
        assert_eq!(sprintf("%*d", &[s("x"), Value::Int(7)]), "%!(BADWIDTH)7");
        assert_eq!(sprintf("%d", &[Value::strings(vec!["a".into()])]), "[%!d(string=a)]");
    }

    #[test]
    fn sharp_float_keeps_zeros() {
        assert_eq!(sprintf("%#g", &[Value::Float(1.0)]), "1.00000");
        assert_eq!(sprintf("%#.0f", &[Value::Float(1.0)]), "1.");
        assert_eq!(sprintf("%v %v", &[Value::Float(1e6), Value::Float(0.5)]), "1e+06 0.5");
    }
}
