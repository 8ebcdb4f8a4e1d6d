//! Reading a job's health check back from the catalog: `job.health_check` holds the manifest's
//! `health_check` as JSON (`{"checks":[…],"timeout_seconds":N,"wait":{"attempts":N,"interval_seconds":N}}`).
//! Missing, null, zero or empty values take the spec defaults, so rows written by the Go maand read too.

use maand_core::health_check::{DEFAULT_TIMEOUT_SECONDS, DEFAULT_WAIT_ATTEMPTS, DEFAULT_WAIT_INTERVAL_SECONDS};
use maand_core::{Error, ErrorKind, HealthCheckSpec, ProbeKind, Result};
use serde::Deserialize;

#[derive(Deserialize)]
struct StoredSpec {
    checks: Option<Vec<StoredProbe>>,
    timeout_seconds: Option<u64>,
    wait: Option<StoredWait>,
}

#[derive(Deserialize)]
struct StoredWait {
    attempts: Option<u32>,
    interval_seconds: Option<u64>,
}

#[derive(Deserialize)]
struct StoredProbe {
    #[serde(rename = "type")]
    kind: Option<String>,
    port: Option<String>,
    path: Option<String>,
    expect_status: Option<u16>,
    scheme: Option<String>,
    command: Option<String>,
}

/// Parses the catalog's `job.health_check` JSON. Errors say what is wrong and to rebuild.
pub fn parse_health_spec(json: &str) -> Result<HealthCheckSpec> {
    let stored: StoredSpec = serde_json::from_str(json).map_err(|e| invalid(format!("not valid JSON ({e})")))?;
    let checks = stored
        .checks
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, probe)| probe_kind(probe).map_err(|e| invalid(format!("checks[{i}]: {e}"))))
        .collect::<Result<Vec<_>>>()?;
    let wait = stored.wait.unwrap_or(StoredWait { attempts: None, interval_seconds: None });
    Ok(HealthCheckSpec {
        checks,
        timeout_seconds: or_default(stored.timeout_seconds, DEFAULT_TIMEOUT_SECONDS),
        wait_attempts: or_default(wait.attempts, DEFAULT_WAIT_ATTEMPTS),
        wait_interval_seconds: or_default(wait.interval_seconds, DEFAULT_WAIT_INTERVAL_SECONDS),
    })
}

fn probe_kind(probe: StoredProbe) -> std::result::Result<ProbeKind, String> {
    let kind = text(probe.kind).unwrap_or_default().to_lowercase();
    let port = || text(probe.port.clone()).ok_or_else(|| format!("{kind} probe has no port"));
    match kind.as_str() {
        "tcp" => Ok(ProbeKind::Tcp { port: port()? }),
        "http" => Ok(ProbeKind::Http {
            port: port()?,
            path: text(probe.path).unwrap_or_else(|| "/".into()),
            expect_status: or_default(probe.expect_status, 200),
            scheme: text(probe.scheme).unwrap_or_else(|| "http".into()).to_lowercase(),
        }),
        "ssh" => Ok(ProbeKind::Ssh { command: text(probe.command).ok_or("ssh probe has no command")? }),
        other => Err(format!("unknown probe type {other:?} (expected tcp, http or ssh)")),
    }
}

/// The trimmed text, or None when absent or blank.
fn text(value: Option<String>) -> Option<String> {
    value.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// `value` unless absent or zero.
fn or_default<T: PartialEq + Default>(value: Option<T>, default: T) -> T {
    value.filter(|v| *v != T::default()).unwrap_or(default)
}

fn invalid(detail: String) -> Error {
    Error::new(ErrorKind::Database, format!("catalog health_check {detail}: run maand build to rewrite it"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_catalog_shape() {
        let json = r#"{"checks":[{"type":"tcp","port":"cql"},
            {"type":"http","port":"web","path":"/metrics","expect_status":204,"scheme":"https"},
            {"type":"ssh","command":"systemctl is-active x"}],
            "timeout_seconds":7,"wait":{"attempts":3,"interval_seconds":2}}"#;
        assert_eq!(
            parse_health_spec(json).unwrap(),
            HealthCheckSpec {
                checks: vec![
                    ProbeKind::Tcp { port: "cql".into() },
                    ProbeKind::Http {
                        port: "web".into(),
                        path: "/metrics".into(),
                        expect_status: 204,
                        scheme: "https".into()
                    },
                    ProbeKind::Ssh { command: "systemctl is-active x".into() },
                ],
                timeout_seconds: 7,
                wait_attempts: 3,
                wait_interval_seconds: 2,
            }
        );
    }

    #[test]
    fn missing_and_zero_values_take_defaults() {
        let spec = parse_health_spec(
            r#"{"checks":[{"type":"HTTP","port":"web","path":"","expect_status":0,"scheme":null}],"timeout_seconds":0,"wait":null}"#,
        )
        .unwrap();
        assert_eq!(
            spec.checks,
            vec![ProbeKind::Http { port: "web".into(), path: "/".into(), expect_status: 200, scheme: "http".into() }]
        );
        assert_eq!((spec.timeout_seconds, spec.wait_attempts, spec.wait_interval_seconds), (5, 30, 1));
        assert!(parse_health_spec(r#"{"wait":{"attempts":60}}"#).unwrap().checks.is_empty());
    }

    #[test]
    fn bad_rows_name_the_problem() {
        for (json, needle) in [
            ("{", "not valid JSON"),
            (r#"{"checks":[{"type":"udp","port":"p"}]}"#, "checks[0]: unknown probe type \"udp\""),
            (r#"{"checks":[{"type":"tcp"}]}"#, "checks[0]: tcp probe has no port"),
            (r#"{"checks":[{"type":"ssh","command":" "}]}"#, "checks[0]: ssh probe has no command"),
        ] {
            let e = parse_health_spec(json).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Database);
            assert!(e.to_string().contains(needle), "{json}: {e}");
            assert!(e.to_string().contains("run maand build"), "{e}");
        }
    }
}
