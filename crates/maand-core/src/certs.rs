//! The manifest's `certs` (spec §2.8, §10.1): which TLS leaf certificates a job gets, and the
//! canonical JSON of the whole `certs` object whose MD5 (hash row `build_certs`) decides
//! regeneration. The JSON is byte-identical to Go's `json.Marshal` of the manifest's certs map
//! (sorted names; keys `pkcs8`, `one`, `subject.common_name`; `<`, `>`, `&` escaped).

use crate::json_fields::{as_bool, as_object, as_str, field};
use serde_json::Value;

/// X.509's `ub-common-name`: the longest common name a certificate may carry.
const MAX_COMMON_NAME_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSpec {
    /// File/KV name: `certs/<name>.crt`, `certs/<name>.key`.
    pub name: String,
    /// Key PEM as PKCS#8 (`PRIVATE KEY`) instead of PKCS#1.
    pub pkcs8: bool,
    /// One shared key/certificate for all allocations.
    pub one: bool,
    pub common_name: String,
}

/// Certs sorted by name, and their canonical JSON (`""` when there are none).
pub(crate) fn parse_certs(value: Option<&Value>) -> Result<(Vec<CertSpec>, String), String> {
    let Some(value) = value else {
        return Ok((Vec::new(), String::new()));
    };
    let obj = as_object(value, "certs")?;
    let mut names: Vec<&String> = obj.keys().collect();
    names.sort();
    let mut certs = Vec::with_capacity(names.len());
    for name in names {
        certs.push(parse_cert(name, &obj[name.as_str()])?);
    }
    let json = canonical_json(&certs);
    Ok((certs, json))
}

fn parse_cert(name: &str, value: &Value) -> Result<CertSpec, String> {
    let at = format!("certs.{name}");
    let valid_name = !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !valid_name {
        return Err(format!(
            "cert name {name:?} must use only letters, digits, _, - and . (it names certs/{name}.crt)"
        ));
    }
    let obj = as_object(value, &at)?;
    let flag =
        |key: &str| field(obj, key).map(|v| as_bool(v, &format!("{at}.{key}"))).transpose().map(|b| b.unwrap_or(false));
    let (pkcs8, one) = (flag("pkcs8")?, flag("one")?);
    let subject =
        field(obj, "subject").ok_or_else(|| format!("{at}.subject is required: {{\"common_name\": \"...\"}}"))?;
    let subject = as_object(subject, &format!("{at}.subject"))?;
    let common_name = match field(subject, "common_name") {
        Some(v) => as_str(v, &format!("{at}.subject.common_name"))?.trim().to_string(),
        None => String::new(),
    };
    if common_name.is_empty() {
        return Err(format!("{at}.subject.common_name is required (the certificate's CN)"));
    }
    let length = common_name.chars().count();
    if length > MAX_COMMON_NAME_CHARS {
        return Err(format!(
            "{at}.subject.common_name is {length} characters long; X.509 allows at most {MAX_COMMON_NAME_CHARS} \
             (ub-common-name)"
        ));
    }
    Ok(CertSpec { name: name.to_string(), pkcs8, one, common_name })
}

fn canonical_json(certs: &[CertSpec]) -> String {
    if certs.is_empty() {
        return String::new();
    }
    let entries: Vec<String> = certs
        .iter()
        .map(|c| {
            format!(
                "{}:{{\"pkcs8\":{},\"one\":{},\"subject\":{{\"common_name\":{}}}}}",
                go_json_string(&c.name),
                c.pkcs8,
                c.one,
                go_json_string(&c.common_name)
            )
        })
        .collect();
    format!("{{{}}}", entries.join(","))
}

/// A JSON string as Go's encoding/json writes it (HTML-safe escaping of `<`, `>`, `&`, and
/// U+2028/U+2029).
fn go_json_string(s: &str) -> String {
    let plain = Value::String(s.to_string()).to_string();
    plain
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}
