//! The manifest's `health_check` (spec §2.7, §9.2): probes (tcp, http, ssh), the per-probe
//! timeout and the retry loop used when waiting. Settings without probes are kept
//! (catalog-jobs §1.9: prometheus sets only `timeout_seconds` and `wait`).

use crate::json_fields::{as_i64_at_least, as_object, as_str, describe, field};
use serde_json::{Map, Value};

pub const DEFAULT_TIMEOUT_SECONDS: u64 = 5;
pub const DEFAULT_WAIT_ATTEMPTS: u32 = 30;
pub const DEFAULT_WAIT_INTERVAL_SECONDS: u64 = 1;

/// One probe. `port` names a key of `resources.ports`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeKind {
    Tcp { port: String },
    Http { port: String, path: String, expect_status: u16, scheme: String },
    Ssh { command: String },
}

impl ProbeKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            ProbeKind::Tcp { .. } => "tcp",
            ProbeKind::Http { .. } => "http",
            ProbeKind::Ssh { .. } => "ssh",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckSpec {
    pub checks: Vec<ProbeKind>,
    pub timeout_seconds: u64,
    pub wait_attempts: u32,
    pub wait_interval_seconds: u64,
}

/// `None` when the object is absent or sets neither checks nor timeout/wait. Zero values of
/// `timeout_seconds`, `wait.attempts` and `wait.interval_seconds` mean the default.
pub(crate) fn parse_health_check(
    value: Option<&Value>,
    port_names: &[String],
) -> Result<Option<HealthCheckSpec>, String> {
    let Some(value) = value else {
        return Ok(None);
    };
    let obj = as_object(value, "health_check")?;
    let checks = match field(obj, "checks") {
        None => Vec::new(),
        Some(v) => {
            let items =
                v.as_array().ok_or_else(|| format!("health_check.checks must be an array, not {}", describe(v)))?;
            items
                .iter()
                .enumerate()
                .map(|(i, item)| parse_probe(&format!("health_check.checks[{i}]"), item, port_names))
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    let timeout = field(obj, "timeout_seconds");
    let wait = field(obj, "wait");
    if checks.is_empty() && timeout.is_none() && wait.is_none() {
        return Ok(None);
    }
    let timeout_seconds = non_negative(timeout, "health_check.timeout_seconds", DEFAULT_TIMEOUT_SECONDS)?;
    let (mut wait_attempts, mut wait_interval_seconds) = (DEFAULT_WAIT_ATTEMPTS, DEFAULT_WAIT_INTERVAL_SECONDS);
    if let Some(wait) = wait {
        let wait = as_object(wait, "health_check.wait")?;
        let attempts =
            non_negative(field(wait, "attempts"), "health_check.wait.attempts", u64::from(DEFAULT_WAIT_ATTEMPTS))?;
        wait_attempts =
            u32::try_from(attempts).map_err(|_| format!("health_check.wait.attempts is too large ({attempts})"))?;
        wait_interval_seconds = non_negative(
            field(wait, "interval_seconds"),
            "health_check.wait.interval_seconds",
            DEFAULT_WAIT_INTERVAL_SECONDS,
        )?;
    }
    Ok(Some(HealthCheckSpec { checks, timeout_seconds, wait_attempts, wait_interval_seconds }))
}

/// A whole number ≥ 0; absent or 0 → `default`.
fn non_negative(v: Option<&Value>, name: &str, default: u64) -> Result<u64, String> {
    match v {
        None => Ok(default),
        Some(v) => {
            let n = as_i64_at_least(v, name, 0)?;
            Ok(if n == 0 { default } else { n.unsigned_abs() })
        }
    }
}

fn parse_probe(name: &str, item: &Value, port_names: &[String]) -> Result<ProbeKind, String> {
    let obj = as_object(item, name)?;
    let text = |key: &str| -> Result<Option<String>, String> {
        match field(obj, key) {
            None => Ok(None),
            Some(v) => Ok(Some(as_str(v, &format!("{name}.{key}"))?.trim().to_string()).filter(|s| !s.is_empty())),
        }
    };
    let kind = text("type")?.unwrap_or_default().to_lowercase();
    match kind.as_str() {
        "tcp" => Ok(ProbeKind::Tcp { port: probe_port(name, obj, port_names)? }),
        "http" => {
            let port = probe_port(name, obj, port_names)?;
            let path = text("path")?.unwrap_or_else(|| "/".into());
            if !path.starts_with('/') {
                return Err(format!("{name}.path must start with / (got {path:?})"));
            }
            let expect_status = match field(obj, "expect_status") {
                None => 200,
                Some(v) => {
                    v.as_u64().and_then(|n| u16::try_from(n).ok()).filter(|n| (100..=599).contains(n)).ok_or_else(
                        || format!("{name}.expect_status must be an HTTP status 100-599, not {}", describe(v)),
                    )?
                }
            };
            let scheme = text("scheme")?.unwrap_or_else(|| "http".into()).to_lowercase();
            if scheme != "http" && scheme != "https" {
                return Err(format!("{name}.scheme must be http or https (got {scheme:?})"));
            }
            Ok(ProbeKind::Http { port, path, expect_status, scheme })
        }
        "ssh" => {
            let command = match field(obj, "command") {
                Some(v) => as_str(v, &format!("{name}.command"))?.to_string(),
                None => String::new(),
            };
            if command.trim().is_empty() {
                return Err(format!("{name}.command is required for an ssh probe"));
            }
            Ok(ProbeKind::Ssh { command })
        }
        "" => Err(format!("{name}.type is required: tcp, http or ssh")),
        other => Err(format!("{name}.type must be tcp, http or ssh (got {other:?})")),
    }
}

fn probe_port(name: &str, obj: &Map<String, Value>, port_names: &[String]) -> Result<String, String> {
    let port = match field(obj, "port") {
        Some(v) => {
            as_str(v, &format!("{name}.port")).map_err(|e| format!("{e} (the name of a resources.ports entry)"))?
        }
        None => "",
    }
    .trim();
    if port.is_empty() {
        return Err(format!("{name}.port is required: the name of a resources.ports entry"));
    }
    if !port_names.iter().any(|p| p == port) {
        return Err(format!("{name}.port {port:?} is not declared in resources.ports"));
    }
    Ok(port.to_string())
}
