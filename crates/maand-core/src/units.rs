//! Capacity units of workers.json, manifests and bucket.jobs confs (spec §1.6, §2.3): memory in MB
//! (`mb`, `gb`, `tb`), CPU in MHz (`mhz`, `ghz`, `thz`), and Go `%v` formatting of those numbers.

/// Memory quantity in MB: `"8192 mb"`, `"4 gb"`, `"1.5 tb"`, `"512"` (plain = MB). Case-insensitive,
/// space between number and unit optional. `""` → 0. Negative numbers and unknown units are errors.
pub fn parse_memory_mb(s: &str) -> Result<f64, String> {
    parse_quantity("memory", s, &[("mb", 1.0), ("gb", 1024.0), ("tb", 1024.0 * 1024.0)])
}

/// CPU quantity in MHz: `"4000 mhz"`, `"2 ghz"` (×1000), `"1 thz"` (×10⁶), plain = MHz.
pub fn parse_cpu_mhz(s: &str) -> Result<f64, String> {
    parse_quantity("cpu", s, &[("mhz", 1.0), ("ghz", 1000.0), ("thz", 1_000_000.0)])
}

fn parse_quantity(what: &str, s: &str, units: &[(&str, f64)]) -> Result<f64, String> {
    let text = s.trim().to_ascii_lowercase();
    if text.is_empty() {
        return Ok(0.0);
    }
    let split = text.find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+'))).unwrap_or(text.len());
    let (number, unit) = (text[..split].trim(), text[split..].trim());
    let unit_names: Vec<&str> = units.iter().map(|(name, _)| *name).collect();
    let hint = format!("units: {}; a plain number means {}", unit_names.join(", "), units[0].0);
    let value: f64 =
        number.parse().map_err(|_| format!("invalid {what} {s:?}: expected a number and an optional unit ({hint})"))?;
    if !value.is_finite() {
        return Err(format!("invalid {what} {s:?}: number too large"));
    }
    if value < 0.0 {
        return Err(format!("invalid {what} {s:?}: must not be negative"));
    }
    let factor = if unit.is_empty() {
        1.0
    } else {
        units
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, factor)| *factor)
            .ok_or_else(|| format!("invalid {what} {s:?}: unknown unit {unit:?} ({hint})"))?
    };
    let result = value * factor;
    if !result.is_finite() {
        return Err(format!("invalid {what} {s:?}: number too large"));
    }
    Ok(result)
}

/// Go's `fmt.Sprintf("%v", float64)`: the shortest representation that round-trips, in plain
/// decimal notation when the decimal exponent is in `-4..6`, else as `d.ddde+XX`
/// (`512` → `"512"`, `0.5` → `"0.5"`, `1048576` → `"1.048576e+06"`).
pub fn format_number(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let sign = if v.is_sign_negative() { "-" } else { "" };
    if v == 0.0 {
        return format!("{sign}0");
    }
    // Rust's `{:e}` without precision prints the shortest round-trip digits: "1.234567e6", "5e-1".
    let sci = format!("{:e}", v.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i64 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let exp_sign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{fraction}e{exp_sign}{:02}", exp.abs());
    }
    let nd = digits.len() as i64;
    let dp = exp + 1; // position of the decimal point within `digits`
    let body = if dp <= 0 {
        format!("0.{}{digits}", "0".repeat((-dp) as usize))
    } else if dp >= nd {
        format!("{digits}{}", "0".repeat((dp - nd) as usize))
    } else {
        let (int, frac) = digits.split_at(dp as usize);
        format!("{int}.{frac}")
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory_mb("8192 mb"), Ok(8192.0));
        assert_eq!(parse_memory_mb("4 gb"), Ok(4096.0));
        assert_eq!(parse_memory_mb("4GB"), Ok(4096.0));
        assert_eq!(parse_memory_mb("1.5 tb"), Ok(1.5 * 1024.0 * 1024.0));
        assert_eq!(parse_memory_mb("512"), Ok(512.0));
        assert_eq!(parse_memory_mb("  0.5 Gb "), Ok(512.0));
        assert_eq!(parse_memory_mb(""), Ok(0.0));
        assert_eq!(parse_memory_mb("   "), Ok(0.0));
    }

    #[test]
    fn cpu_units() {
        assert_eq!(parse_cpu_mhz("4000 mhz"), Ok(4000.0));
        assert_eq!(parse_cpu_mhz("2 ghz"), Ok(2000.0));
        assert_eq!(parse_cpu_mhz("2.5GHz"), Ok(2500.0));
        assert_eq!(parse_cpu_mhz("1 thz"), Ok(1_000_000.0));
        assert_eq!(parse_cpu_mhz("1500"), Ok(1500.0));
        assert_eq!(parse_cpu_mhz(""), Ok(0.0));
    }

    #[test]
    fn bad_quantities_say_why() {
        assert_eq!(
            parse_memory_mb("8 kb"),
            Err("invalid memory \"8 kb\": unknown unit \"kb\" (units: mb, gb, tb; a plain number means mb)".into())
        );
        assert_eq!(parse_memory_mb("-1 gb"), Err("invalid memory \"-1 gb\": must not be negative".into()));
        assert!(parse_memory_mb("gb").is_err());
        assert!(parse_memory_mb("1.2.3 mb").is_err());
        assert!(parse_memory_mb("4 mhz").is_err());
        assert!(parse_cpu_mhz("2 gb").is_err());
        assert!(parse_cpu_mhz("-5").unwrap_err().contains("negative"));
        assert!(parse_cpu_mhz("NaN").is_err());
        assert!(parse_cpu_mhz("inf").is_err());
        assert!(parse_memory_mb(&"9".repeat(400)).unwrap_err().contains("too large"));
    }

    #[test]
    fn format_number_is_go_percent_v() {
        assert_eq!(format_number(512.0), "512");
        assert_eq!(format_number(0.5), "0.5");
        assert_eq!(format_number(1536.0), "1536");
        assert_eq!(format_number(12288.0), "12288");
        assert_eq!(format_number(0.0), "0");
        assert_eq!(format_number(1.5), "1.5");
        assert_eq!(format_number(123456.0), "123456");
        assert_eq!(format_number(999999.0), "999999");
        assert_eq!(format_number(1_000_000.0), "1e+06");
        assert_eq!(format_number(1_048_576.0), "1.048576e+06");
        assert_eq!(format_number(1_572_864.0), "1.572864e+06");
        assert_eq!(format_number(0.0001), "0.0001");
        assert_eq!(format_number(0.00001), "1e-05");
        assert_eq!(format_number(1e21), "1e+21");
        assert_eq!(format_number(1e100), "1e+100");
        assert_eq!(format_number(-2.25), "-2.25");
        assert_eq!(format_number(0.1 + 0.2), "0.30000000000000004");
    }
}
