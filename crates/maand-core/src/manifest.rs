//! `workspace/jobs/<job>/manifest.json` (spec §2.2–§2.10, catalog-jobs §0/§2.1): parsed and
//! validated into a [`Manifest`] with every default applied. Unknown fields are ignored; the
//! legacy names `update_parallel_count` / `deploy_parallel_count` are accepted (the new names win
//! when both are present). Every error starts with `job <job>` and names the field.
//!
//! Decisions: an empty `"version": ""` counts as absent, whitespace in it is an error (it would
//! reach the KV, the environment and file names as written); explicit selectors are trimmed,
//! lower-cased and de-duplicated (worker labels are too, so case never matters); memory/cpu bounds
//! may be strings with units or plain numbers; `restart_policy: ""` means `always`. A negative
//! `max_concurrent_upgrades` is an error; 0 is taken as 1, as the Go maand did, with a warning (as
//! are keys written twice).

use crate::certs::parse_certs;
use crate::globs::validate_glob;
use crate::health_check::parse_health_check;
use crate::job_command::parse_commands;
use crate::json_fields::{as_bool, as_i64, as_i64_at_least, as_object, as_string_list, describe, field};
use crate::json_text::parse_json;
use crate::placement::normalize_labels;
use crate::units::{format_number, parse_cpu_mhz, parse_memory_mb};
use crate::version::{parse_version, Version};
use crate::{Error, ErrorKind, Result, Warning};
use serde_json::{Map, Value};

pub use crate::certs::CertSpec;
pub use crate::health_check::{HealthCheckSpec, ProbeKind};
pub use crate::job_command::{CommandSpec, Demand, Event};
pub use crate::job_files::{is_skipped_dir, is_skipped_path, validate_job_files};

/// What happens to an allocation whose files changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RestartPolicy {
    Always,
    Reload,
    Never,
}

impl RestartPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::Always => "always",
            RestartPolicy::Reload => "reload",
            RestartPolicy::Never => "never",
        }
    }

    /// Exact, case-sensitive names.
    pub fn parse(s: &str) -> Option<RestartPolicy> {
        match s {
            "always" => Some(RestartPolicy::Always),
            "reload" => Some(RestartPolicy::Reload),
            "never" => Some(RestartPolicy::Never),
            _ => None,
        }
    }
}

/// A `resources.ports` entry: `{}` (from the bucket pool) or a fixed number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortDecl {
    Pool,
    Fixed(u16),
}

/// `resources.memory` (MB) or `resources.cpu` (MHz); 0 = no bound.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Bounds {
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Trimmed version text as written (`None` when absent or empty).
    pub version_raw: Option<String>,
    pub version: Option<Version>,
    /// Effective selectors: the explicit ones (normalised) or `[job name]`.
    pub selectors: Vec<String>,
    /// ≥ 1.
    pub max_concurrent_upgrades: i64,
    /// ≥ 0 (0 = all at once).
    pub max_concurrent_starts: i64,
    pub min_allocations_count: i64,
    pub restart_policy: RestartPolicy,
    pub restart_globs: Vec<String>,
    pub memory: Bounds,
    pub cpu: Bounds,
    /// Sorted by name.
    pub ports: Vec<(String, PortDecl)>,
    /// Sorted by name.
    pub commands: Vec<CommandSpec>,
    pub health_check: Option<HealthCheckSpec>,
    /// Sorted by name.
    pub certs: Vec<CertSpec>,
    /// Canonical JSON of the manifest's `certs` (see [`crate::certs`]); `""` when no certs.
    pub certs_json: String,
    /// Our extension: overrides maand.conf's remote step timeout for this job.
    pub remote_timeout_seconds: Option<u64>,
    /// Our extension: when a batch of a deploy fails, the allocations rolled in that run go back
    /// to their previous release (as `deploy --rollback-on-failure`).
    pub rollback_on_failure: bool,
}

impl Manifest {
    /// Version for deploy, KV and the environment: the raw text, `0.0.0` when absent.
    pub fn version_or_default(&self) -> String {
        self.version_raw.clone().unwrap_or_else(|| "0.0.0".into())
    }

    /// Commands registered for `event`, sorted by name.
    pub fn commands_for(&self, event: Event) -> Vec<&CommandSpec> {
        self.commands.iter().filter(|c| c.executed_on.contains(&event)).collect()
    }
}

/// Parse and validate the manifest of job `job`; what is accepted with a warning goes to
/// `warnings`.
/// Errors start with `job <job>`, followed by `manifest.json` when their kind does not already
/// name the file.
pub fn parse_manifest(job: &str, content: &str, warnings: &mut Vec<Warning>) -> Result<Manifest> {
    parse(job, content, warnings).map_err(|e| match e.is(ErrorKind::InvalidManifest) {
        true => e.context(format!("job {job}")),
        false => e.context(format!("job {job}: manifest.json")),
    })
}

/// `workspace/jobs/<job>/manifest.json`, as messages name it.
pub fn manifest_file(job: &str) -> String {
    format!("workspace/jobs/{job}/manifest.json")
}

fn invalid(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidManifest, detail)
}

fn parse(job: &str, content: &str, warnings: &mut Vec<Warning>) -> Result<Manifest> {
    let file = manifest_file(job);
    let value = parse_json(content, &file, warnings).map_err(|e| invalid(format!("manifest.json is {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| invalid(format!("manifest.json must be a JSON object, not {}", describe(&value))))?;

    let (version_raw, version) = parse_version_field(obj)?;
    let selectors = match field(obj, "selectors") {
        Some(v) => normalize_labels(as_string_list(v, "selectors").map_err(invalid)?),
        None => Vec::new(),
    };
    let selectors = if selectors.is_empty() { vec![job.to_string()] } else { selectors };

    let max_concurrent_upgrades = match aliased_int(obj, "max_concurrent_upgrades", "update_parallel_count")? {
        None => 1,
        Some((key, n)) if n < 0 => {
            return Err(invalid(format!(
                "{key} must not be negative (got {n}): it is how many allocations restart at once"
            )))
        }
        Some((key, 0)) => {
            warnings.push(Warning::new(&file, format!("{key} is 0; 1 is used (allocations restart one at a time)")));
            1
        }
        Some((_, n)) => n,
    };
    let max_concurrent_starts =
        aliased_int(obj, "max_concurrent_starts", "deploy_parallel_count")?.map_or(0, |(_, n)| n.max(0));
    let min_allocations_count = match field(obj, "min_allocations_count") {
        Some(v) => as_i64_at_least(v, "min_allocations_count", 0).map_err(invalid)?,
        None => 0,
    };

    let (restart_policy, restart_globs) = parse_restart(obj)?;
    let (memory, cpu, ports) = parse_resources(obj)?;
    let commands = parse_commands(job, field(obj, "commands"))?;
    let port_names: Vec<String> = ports.iter().map(|(name, _)| name.clone()).collect();
    let health_check = parse_health_check(field(obj, "health_check"), &port_names).map_err(invalid)?;
    let (certs, certs_json) = parse_certs(field(obj, "certs")).map_err(invalid)?;
    let remote_timeout_seconds = match field(obj, "remote_timeout_seconds") {
        Some(v) => Some(as_i64_at_least(v, "remote_timeout_seconds", 1).map_err(invalid)?.unsigned_abs()),
        None => None,
    };
    let rollback_on_failure = match field(obj, "rollback_on_failure") {
        Some(v) => as_bool(v, "rollback_on_failure").map_err(invalid)?,
        None => false,
    };

    Ok(Manifest {
        version_raw,
        version,
        selectors,
        max_concurrent_upgrades,
        max_concurrent_starts,
        min_allocations_count,
        restart_policy,
        restart_globs,
        memory,
        cpu,
        ports,
        commands,
        health_check,
        certs,
        certs_json,
        remote_timeout_seconds,
        rollback_on_failure,
    })
}

fn parse_version_field(obj: &Map<String, Value>) -> Result<(Option<String>, Option<Version>)> {
    let version_err = |msg: String| Error::new(ErrorKind::InvalidJobVersion, msg);
    let raw = match field(obj, "version") {
        None => return Ok((None, None)),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(version_err(format!("version must be a string such as \"1.0.0\", not {}", describe(other))))
        }
    };
    if raw.is_empty() {
        return Ok((None, None));
    }
    if raw.chars().any(char::is_whitespace) {
        return Err(version_err(format!(
            "version {raw:?} contains whitespace (a space, tab or newline); write the version alone, e.g. \"1.0.0\""
        )));
    }
    let version = parse_version(&raw).map_err(version_err)?;
    Ok((Some(raw), Some(version)))
}

/// An integer field that may also be written under its legacy name (the new name wins), with the
/// name it was found under.
fn aliased_int<'k>(obj: &Map<String, Value>, name: &'k str, legacy: &'k str) -> Result<Option<(&'k str, i64)>> {
    for key in [name, legacy] {
        if let Some(v) = field(obj, key) {
            return as_i64(v, key).map(|n| Some((key, n))).map_err(invalid);
        }
    }
    Ok(None)
}

fn parse_restart(obj: &Map<String, Value>) -> Result<(RestartPolicy, Vec<String>)> {
    let policy = match field(obj, "restart_policy") {
        None => RestartPolicy::Always,
        Some(Value::String(s)) if s.is_empty() => RestartPolicy::Always,
        Some(v) => {
            let got = v.as_str().map(|s| format!("{s:?}")).unwrap_or_else(|| describe(v));
            v.as_str()
                .and_then(RestartPolicy::parse)
                .ok_or_else(|| invalid(format!("restart_policy must be one of always, reload, never (got {got})")))?
        }
    };
    let globs: Vec<String> = match field(obj, "restart_globs") {
        Some(v) => {
            as_string_list(v, "restart_globs").map_err(invalid)?.into_iter().map(|g| g.trim().to_string()).collect()
        }
        None => Vec::new(),
    };
    if !globs.is_empty() && policy != RestartPolicy::Reload {
        return Err(invalid("restart_globs requires restart_policy reload"));
    }
    for (i, glob) in globs.iter().enumerate() {
        validate_glob(glob).map_err(|e| invalid(format!("restart_globs[{i}]: {e}")))?;
    }
    Ok((policy, globs))
}

type Resources = (Bounds, Bounds, Vec<(String, PortDecl)>);

fn parse_resources(obj: &Map<String, Value>) -> Result<Resources> {
    let Some(resources) = field(obj, "resources") else {
        return Ok((Bounds::default(), Bounds::default(), Vec::new()));
    };
    let resources = as_object(resources, "resources").map_err(invalid)?;
    let memory =
        parse_bounds(field(resources, "memory"), "resources.memory", "mb", parse_memory_mb).map_err(invalid)?;
    let cpu = parse_bounds(field(resources, "cpu"), "resources.cpu", "mhz", parse_cpu_mhz).map_err(invalid)?;
    let ports = match field(resources, "ports") {
        Some(v) => parse_ports(v)?,
        None => Vec::new(),
    };
    Ok((memory, cpu, ports))
}

/// Omitted bounds are 0; a min with no max (or max 0) makes max = min; min > max is an error.
fn parse_bounds(
    value: Option<&Value>,
    name: &str,
    unit: &str,
    parse: fn(&str) -> std::result::Result<f64, String>,
) -> std::result::Result<Bounds, String> {
    let Some(value) = value else {
        return Ok(Bounds::default());
    };
    let obj = as_object(value, name)?;
    let bound = |key: &str| -> std::result::Result<f64, String> {
        match field(obj, key) {
            None => Ok(0.0),
            Some(Value::String(s)) => parse(s),
            Some(Value::Number(n)) => parse(&n.to_string()),
            Some(other) => {
                Err(format!("{name}.{key} must be a string such as \"512 {unit}\", not {}", describe(other)))
            }
        }
        .map_err(|e| if e.starts_with(name) { e } else { format!("{name}.{key}: {e}") })
    };
    let min = bound("min")?;
    let mut max = bound("max")?;
    if max == 0.0 {
        max = min;
    }
    if min > max {
        return Err(format!(
            "{name}: min {} {unit} is greater than max {} {unit}",
            format_number(min),
            format_number(max)
        ));
    }
    Ok(Bounds { min, max })
}

fn parse_ports(value: &Value) -> Result<Vec<(String, PortDecl)>> {
    let ports = as_object(value, "resources.ports").map_err(invalid)?;
    let mut out = Vec::with_capacity(ports.len());
    for (name, decl) in ports {
        if !is_port_name(name) {
            return Err(Error::new(
                ErrorKind::PortKeyFormat,
                format!("port name {name:?} in resources.ports must match ^[a-z][a-z0-9_]*$"),
            ));
        }
        let decl = match decl {
            Value::Object(m) if m.is_empty() => PortDecl::Pool,
            Value::Number(n) => match n.as_u64().and_then(|p| u16::try_from(p).ok()).filter(|p| *p >= 1) {
                Some(p) => PortDecl::Fixed(p),
                None => {
                    return Err(Error::new(
                        ErrorKind::InvalidManifestPort,
                        format!("port {name:?} must be {{}} or an integer between 1 and 65535, not number {n}"),
                    ))
                }
            },
            other => {
                return Err(Error::new(
                    ErrorKind::InvalidManifestPort,
                    format!("port {name:?} must be {{}} or an integer, not {}", describe(other)),
                ))
            }
        };
        out.push((name.clone(), decl));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// `^[a-z][a-z0-9_]*$`
pub fn is_port_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(content: &str) -> Manifest {
        parse_manifest("api", content, &mut Vec::new()).unwrap()
    }

    fn warnings(content: &str) -> Vec<String> {
        let mut warnings = Vec::new();
        let _ = parse_manifest("api", content, &mut warnings);
        warnings.iter().map(ToString::to_string).collect()
    }

    fn fail(content: &str, kind: ErrorKind) -> String {
        let e = parse_manifest("api", content, &mut Vec::new()).unwrap_err();
        assert_eq!(e.kind, kind, "{e}");
        assert!(e.detail.starts_with("job api: "), "{e}");
        e.to_string()
    }

    #[test]
    fn defaults() {
        let m = ok("{}");
        assert_eq!(m.version_raw, None);
        assert_eq!(m.version, None);
        assert_eq!(m.version_or_default(), "0.0.0");
        assert_eq!(m.selectors, vec!["api"]);
        assert_eq!((m.max_concurrent_upgrades, m.max_concurrent_starts, m.min_allocations_count), (1, 0, 0));
        assert_eq!(m.restart_policy, RestartPolicy::Always);
        assert!(m.restart_globs.is_empty());
        assert_eq!((m.memory, m.cpu), (Bounds::default(), Bounds::default()));
        assert!(m.ports.is_empty() && m.commands.is_empty() && m.certs.is_empty());
        assert_eq!(m.health_check, None);
        assert_eq!(m.certs_json, "");
        assert_eq!(m.remote_timeout_seconds, None);
        assert!(!m.rollback_on_failure);
        assert_eq!(
            ok(r#"{"version": "", "selectors": ["", " "], "restart_policy": "", "unknown": [1]}"#).selectors,
            vec!["api"]
        );
        assert_eq!(ok(r#"{"version": null, "resources": null, "commands": null}"#).version_raw, None);
    }

    #[test]
    fn full_manifest() {
        let m = ok(r#"{
            "version": "v2.1",
            "selectors": ["Web", " db ", "web"],
            "max_concurrent_upgrades": 3, "max_concurrent_starts": 2, "min_allocations_count": 2,
            "restart_policy": "reload", "restart_globs": ["conf/**", " *.env "],
            "resources": {"memory": {"min": "256 mb", "max": "2 gb"}, "cpu": {"min": "500 mhz"},
                          "ports": {"z_port": {}, "a_port": 5432}},
            "commands": {"command_b": {"executed_on": ["cli", "post_build", "cli"]},
                         "command_a": {"executed_on": ["pre_deploy"],
                                       "demands": {"job": " db ", "command": "command_x", "config": {"min_version": 2}}}},
            "health_check": {"checks": [{"type": "TCP", "port": "a_port"},
                                        {"type": "http", "port": "z_port"},
                                        {"type": "ssh", "command": "true"}],
                             "timeout_seconds": 10, "wait": {"attempts": 60, "interval_seconds": 2}},
            "certs": {"tls": {"pkcs8": true, "subject": {"common_name": "api.internal"}}, "a": {"one": true, "subject": {"common_name": "x"}}},
            "remote_timeout_seconds": 900, "rollback_on_failure": true
        }"#);
        assert_eq!(m.version_raw.as_deref(), Some("v2.1"));
        assert_eq!(m.version, Some(Version::new(2, 1, 0)));
        assert_eq!(m.selectors, vec!["web", "db"]);
        assert_eq!((m.max_concurrent_upgrades, m.max_concurrent_starts, m.min_allocations_count), (3, 2, 2));
        assert_eq!(m.restart_policy, RestartPolicy::Reload);
        assert_eq!(m.restart_globs, vec!["conf/**", "*.env"]);
        assert_eq!(m.memory, Bounds { min: 256.0, max: 2048.0 });
        assert_eq!(m.cpu, Bounds { min: 500.0, max: 500.0 });
        assert_eq!(
            m.ports,
            vec![("a_port".to_string(), PortDecl::Fixed(5432)), ("z_port".to_string(), PortDecl::Pool)]
        );
        let names: Vec<&str> = m.commands.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["command_a", "command_b"]);
        assert_eq!(m.commands[1].executed_on, vec![Event::Cli, Event::PostBuild]);
        assert_eq!(m.commands[1].demand, None);
        assert_eq!(
            m.commands[0].demand,
            Some(Demand { job: "db".into(), command: "command_x".into(), config: json!({"min_version": 2}) })
        );
        assert_eq!(m.commands_for(Event::Cli).len(), 1);
        let hc = m.health_check.unwrap();
        assert_eq!(
            hc.checks,
            vec![
                ProbeKind::Tcp { port: "a_port".into() },
                ProbeKind::Http { port: "z_port".into(), path: "/".into(), expect_status: 200, scheme: "http".into() },
                ProbeKind::Ssh { command: "true".into() },
            ]
        );
        assert_eq!((hc.timeout_seconds, hc.wait_attempts, hc.wait_interval_seconds), (10, 60, 2));
        assert_eq!(
            m.certs,
            vec![
                CertSpec { name: "a".into(), pkcs8: false, one: true, common_name: "x".into() },
                CertSpec { name: "tls".into(), pkcs8: true, one: false, common_name: "api.internal".into() },
            ]
        );
        assert_eq!(
            m.certs_json,
            r#"{"a":{"pkcs8":false,"one":true,"subject":{"common_name":"x"}},"tls":{"pkcs8":true,"one":false,"subject":{"common_name":"api.internal"}}}"#
        );
        assert_eq!(m.remote_timeout_seconds, Some(900));
        assert!(m.rollback_on_failure);
    }

    #[test]
    fn legacy_parallel_counts() {
        let m = ok(r#"{"update_parallel_count": 4, "deploy_parallel_count": 1}"#);
        assert_eq!((m.max_concurrent_upgrades, m.max_concurrent_starts), (4, 1));
        let m = ok(
            r#"{"update_parallel_count": 4, "max_concurrent_upgrades": 2, "deploy_parallel_count": 1, "max_concurrent_starts": 3}"#,
        );
        assert_eq!((m.max_concurrent_upgrades, m.max_concurrent_starts), (2, 3));
        let m = ok(r#"{"max_concurrent_upgrades": 0, "max_concurrent_starts": -5}"#);
        assert_eq!((m.max_concurrent_upgrades, m.max_concurrent_starts), (1, 0));
        assert!(fail(r#"{"update_parallel_count": "2"}"#, ErrorKind::InvalidManifest)
            .contains("update_parallel_count must be a whole number, not string \"2\""));
    }

    #[test]
    fn upgrade_batch_size_zero_is_a_warning_and_negative_an_error() {
        assert_eq!(
            warnings(r#"{"max_concurrent_upgrades": 0}"#),
            ["warning: workspace/jobs/api/manifest.json: max_concurrent_upgrades is 0; 1 is used (allocations restart \
              one at a time)"]
        );
        assert!(warnings(r#"{"update_parallel_count": 0}"#)[0].contains(": update_parallel_count is 0; 1 is used"));
        assert!(warnings(r#"{"max_concurrent_upgrades": 2}"#).is_empty());
        assert_eq!(
            fail(r#"{"max_concurrent_upgrades": -1}"#, ErrorKind::InvalidManifest),
            "invalid manifest.json: job api: max_concurrent_upgrades must not be negative (got -1): it is how many \
             allocations restart at once"
        );
        assert!(fail(r#"{"update_parallel_count": -3}"#, ErrorKind::InvalidManifest)
            .contains("update_parallel_count must not be negative (got -3)"));
    }

    #[test]
    fn duplicate_keys_are_warnings_even_when_the_manifest_fails() {
        assert_eq!(
            warnings(r#"{"version": "1.0", "version": "x"}"#),
            ["warning: workspace/jobs/api/manifest.json: key \"version\" appears twice; the last value is used"]
        );
        assert!(fail(r#"{"version": "1.0", "version": "x"}"#, ErrorKind::InvalidJobVersion).contains("\"x\""));
    }

    #[test]
    fn top_level_errors() {
        assert!(fail("{", ErrorKind::InvalidManifest)
            .starts_with("invalid manifest.json: job api: manifest.json is not valid JSON: "));
        assert_eq!(
            fail("[]", ErrorKind::InvalidManifest),
            "invalid manifest.json: job api: manifest.json must be a JSON object, not an array"
        );
        assert_eq!(
            fail(r#"{"restart_policy": "x"}"#, ErrorKind::InvalidManifest),
            "invalid manifest.json: job api: restart_policy must be one of always, reload, never (got \"x\")"
        );
        assert!(fail(r#"{"restart_policy": "Always"}"#, ErrorKind::InvalidManifest).contains("(got \"Always\")"));
        assert!(fail(r#"{"restart_policy": 1}"#, ErrorKind::InvalidManifest).contains("(got number 1)"));
        assert_eq!(
            fail(r#"{"restart_globs": ["*.conf"]}"#, ErrorKind::InvalidManifest),
            "invalid manifest.json: job api: restart_globs requires restart_policy reload"
        );
        assert_eq!(
            fail(r#"{"restart_policy": "reload", "restart_globs": ["ok", "[x"]}"#, ErrorKind::InvalidManifest),
            "invalid manifest.json: job api: restart_globs[1]: invalid glob \"[x\": unclosed [ character class"
        );
        assert!(fail(r#"{"min_allocations_count": -1}"#, ErrorKind::InvalidManifest)
            .contains("min_allocations_count must be at least 0 (got -1)"));
        assert!(fail(r#"{"selectors": "web"}"#, ErrorKind::InvalidManifest)
            .contains("selectors must be an array of strings"));
        assert!(fail(r#"{"remote_timeout_seconds": 0}"#, ErrorKind::InvalidManifest)
            .contains("remote_timeout_seconds must be at least 1 (got 0)"));
        assert_eq!(
            fail(r#"{"rollback_on_failure": "yes"}"#, ErrorKind::InvalidManifest),
            "invalid manifest.json: job api: rollback_on_failure must be true or false, not string \"yes\""
        );
    }

    #[test]
    fn version_errors() {
        assert_eq!(
            fail(r#"{"version": "1.2.3.4"}"#, ErrorKind::InvalidJobVersion),
            "invalid job version: job api: manifest.json: version \"1.2.3.4\" has more than 3 numeric parts (expected e.g. \"1.2.0\", \"v2.1\" or \"2.0.0-rc1\")"
        );
        assert!(fail(r#"{"version": "unknown"}"#, ErrorKind::InvalidJobVersion).contains("\"unknown\""));
        assert!(fail(r#"{"version": 1}"#, ErrorKind::InvalidJobVersion)
            .contains("version must be a string such as \"1.0.0\", not number 1"));
        assert_eq!(
            fail(r#"{"version": "1.0.0\n"}"#, ErrorKind::InvalidJobVersion),
            "invalid job version: job api: manifest.json: version \"1.0.0\\n\" contains whitespace (a space, tab or \
             newline); write the version alone, e.g. \"1.0.0\""
        );
        for bad in [" 1.0", "1.0 ", "1 .0", "1.0\\t", "  "] {
            fail(&format!(r#"{{"version": "{bad}"}}"#), ErrorKind::InvalidJobVersion);
        }
    }

    #[test]
    fn resource_errors() {
        assert_eq!(
            fail(r#"{"resources": {"memory": {"min": "1 gb", "max": "512 mb"}}}"#, ErrorKind::InvalidManifest),
            "invalid manifest.json: job api: resources.memory: min 1024 mb is greater than max 512 mb"
        );
        assert!(fail(r#"{"resources": {"cpu": {"min": "3 ghz", "max": "2 ghz"}}}"#, ErrorKind::InvalidManifest)
            .contains("resources.cpu: min 3000 mhz is greater than max 2000 mhz"));
        assert!(fail(r#"{"resources": {"memory": {"max": "2 xb"}}}"#, ErrorKind::InvalidManifest)
            .contains("resources.memory.max: invalid memory \"2 xb\": unknown unit \"xb\""));
        assert!(fail(r#"{"resources": {"memory": {"max": true}}}"#, ErrorKind::InvalidManifest)
            .contains("resources.memory.max must be a string such as \"512 mb\", not true"));
        assert_eq!(ok(r#"{"resources": {"memory": {"max": 512}}}"#).memory, Bounds { min: 0.0, max: 512.0 });
        assert!(fail(r#"{"resources": []}"#, ErrorKind::InvalidManifest).contains("resources must be an object"));
    }

    #[test]
    fn port_errors() {
        assert_eq!(
            fail(r#"{"resources": {"ports": {"Http": {}}}}"#, ErrorKind::PortKeyFormat),
            "invalid port key format: job api: manifest.json: port name \"Http\" in resources.ports must match ^[a-z][a-z0-9_]*$"
        );
        for bad in ["1port", "", "a-b", "a b"] {
            let content = json!({"resources": {"ports": {bad: {}}}}).to_string();
            fail(&content, ErrorKind::PortKeyFormat);
        }
        assert_eq!(
            fail(r#"{"resources": {"ports": {"x": "5432"}}}"#, ErrorKind::InvalidManifestPort),
            "invalid manifest port declaration: job api: manifest.json: port \"x\" must be {} or an integer, not string \"5432\""
        );
        assert!(fail(r#"{"resources": {"ports": {"x": 70000}}}"#, ErrorKind::InvalidManifestPort)
            .contains("port \"x\" must be {} or an integer between 1 and 65535, not number 70000"));
        fail(r#"{"resources": {"ports": {"x": 0}}}"#, ErrorKind::InvalidManifestPort);
        fail(r#"{"resources": {"ports": {"x": -1}}}"#, ErrorKind::InvalidManifestPort);
        fail(r#"{"resources": {"ports": {"x": 80.5}}}"#, ErrorKind::InvalidManifestPort);
        fail(r#"{"resources": {"ports": {"x": {"a": 1}}}}"#, ErrorKind::InvalidManifestPort);
        fail(r#"{"resources": {"ports": {"x": null}}}"#, ErrorKind::InvalidManifestPort);
        assert!(is_port_name("a_1") && !is_port_name("_a"));
    }

    #[test]
    fn command_errors() {
        use ErrorKind::{InvalidJobCommandConfiguration as Config, InvalidJobCommandDemand as DemandKind};
        assert_eq!(
            fail(r#"{"commands": {"migrate": {"executed_on": ["cli"]}}}"#, Config),
            "invalid job command configuration: job api: manifest.json: command migrate: invalid command name \"migrate\": it must start \
             with command_ and contain no /, \\ or spaces (it names the script _modules/migrate.py|.ts|.js)"
        );
        fail(r#"{"commands": {"command_../x": {"executed_on": ["cli"]}}}"#, Config);
        assert_eq!(
            fail(r#"{"commands": {"command_x": {}}}"#, Config),
            "invalid job command configuration: job api: manifest.json: command command_x: missing executed_on: list the events it runs on, e.g. [\"post_build\"]"
        );
        fail(r#"{"commands": {"command_x": {"executed_on": []}}}"#, Config);
        assert!(fail(r#"{"commands": {"command_x": {"executed_on": ["cli", "deploy"]}}}"#, Config).contains(
            "command command_x: invalid executed_on [\"deploy\"]: events are post_build, pre_deploy, post_deploy, \
                       job_control, health_check, cli, after_allocation_started, after_allocation_stopped"
        ));
        fail(r#"{"commands": {"command_x": {"executed_on": ["CLI"]}}}"#, Config);
        fail(r#"{"commands": {"command_x": {"executed_on": "cli"}}}"#, Config);
        fail(r#"{"commands": {"command_x": []}}"#, Config);
        fail(r#"{"commands": []}"#, Config);
        assert_eq!(
            fail(r#"{"commands": {"command_x": {"executed_on": ["cli"], "demands": {"job": "db"}}}}"#, DemandKind),
            "invalid job command demand: job api: manifest.json: command command_x: demands.job (\"db\") and demands.command (\"\") must both be set or both be empty"
        );
        fail(
            r#"{"commands": {"command_x": {"executed_on": ["cli"], "demands": {"command": "command_y"}}}}"#,
            DemandKind,
        );
        fail(
            r#"{"commands": {"command_x": {"executed_on": ["cli"], "demands": {"job": "db", "command": "command_y", "config": []}}}}"#,
            DemandKind,
        );
        fail(r#"{"commands": {"command_x": {"executed_on": ["cli"], "demands": "db"}}}"#, DemandKind);
        assert!(fail(r#"{"commands": {"command_x": {"executed_on": ["cli"], "demands": {"job": "api", "command": "command_y"}}}}"#, Config)
            .contains("command command_x: demands its own job api (self referencing)"));
        assert!(fail(
            r#"{"commands": {"command_x": {"executed_on": ["cli"], "demands": {"job": "db", "command": "command_y", "config": {"min_version": "3", "max_version": 2}}}}}"#,
            Config
        )
        .contains("demands.config min_version 3.0.0 is greater than max_version 2.0.0"));
        assert!(fail(
            r#"{"commands": {"command_x": {"executed_on": ["cli"], "demands": {"job": "db", "command": "command_y", "config": {"min_version": 2.5}}}}}"#,
            Config
        )
        .contains("demands.config.min_version: version constraint 2.5"));
        let m = ok(
            r#"{"commands": {"command_x": {"executed_on": ["cli"], "demands": {"job": "", "command": " ", "config": {"a": 1}}}}}"#,
        );
        assert_eq!(m.commands[0].demand, None);
    }

    #[test]
    fn health_check_rules() {
        let ports = r#""resources": {"ports": {"p": {}}}"#;
        let with = |hc: &str| format!("{{{ports}, \"health_check\": {hc}}}");
        assert_eq!(ok(&with("{}")).health_check, None);
        assert_eq!(ok(&with(r#"{"checks": []}"#)).health_check, None);
        assert_eq!(
            ok(&with(r#"{"wait": {"attempts": 60, "interval_seconds": 2}}"#)).health_check,
            Some(HealthCheckSpec { checks: vec![], timeout_seconds: 5, wait_attempts: 60, wait_interval_seconds: 2 })
        );
        assert_eq!(
            ok(&with(r#"{"timeout_seconds": 0, "checks": [{"type": "http", "port": "p", "path": "/m", "expect_status": 204, "scheme": "HTTPS"}]}"#))
                .health_check,
            Some(HealthCheckSpec {
                checks: vec![ProbeKind::Http { port: "p".into(), path: "/m".into(), expect_status: 204, scheme: "https".into() }],
                timeout_seconds: 5,
                wait_attempts: 30,
                wait_interval_seconds: 1,
            })
        );
        assert_eq!(
            fail(&with(r#"{"checks": [{"type": "tcp", "port": "q"}]}"#), ErrorKind::InvalidManifest),
            "invalid manifest.json: job api: health_check.checks[0].port \"q\" is not declared in resources.ports"
        );
        let bad = [
            (r#"{"checks": [{"type": "udp", "port": "p"}]}"#, "type must be tcp, http or ssh (got \"udp\")"),
            (r#"{"checks": [{"port": "p"}]}"#, "type is required"),
            (r#"{"checks": [{"type": "tcp"}]}"#, "port is required"),
            (r#"{"checks": [{"type": "tcp", "port": 1}]}"#, "port must be a string"),
            (r#"{"checks": [{"type": "http", "port": "p", "path": "m"}]}"#, "path must start with / (got \"m\")"),
            (
                r#"{"checks": [{"type": "http", "port": "p", "expect_status": 99}]}"#,
                "expect_status must be an HTTP status 100-599",
            ),
            (r#"{"checks": [{"type": "http", "port": "p", "scheme": "ftp"}]}"#, "scheme must be http or https"),
            (r#"{"checks": [{"type": "ssh", "command": " "}]}"#, "command is required for an ssh probe"),
            (r#"{"checks": [1]}"#, "checks[0] must be an object"),
            (r#"{"checks": {}}"#, "checks must be an array"),
            (r#"{"timeout_seconds": -1}"#, "timeout_seconds must be at least 0"),
            (r#"{"wait": {"attempts": 1.5}}"#, "wait.attempts must be a whole number"),
            (r#"{"wait": {"attempts": 99999999999}}"#, "wait.attempts is too large"),
            (r#"{"wait": 3}"#, "wait must be an object"),
            (r#"[]"#, "health_check must be an object"),
        ];
        for (hc, expected) in bad {
            let text = fail(&with(hc), ErrorKind::InvalidManifest);
            assert!(text.contains(expected), "{hc}: {text}");
        }
    }

    #[test]
    fn cert_rules() {
        let m = ok(r#"{"certs": {"t": {"subject": {"common_name": "a<b>&c"}}}}"#);
        assert_eq!(
            m.certs_json,
            r#"{"t":{"pkcs8":false,"one":false,"subject":{"common_name":"a\u003cb\u003e\u0026c"}}}"#
        );
        assert_eq!(ok(r#"{"certs": {}}"#).certs_json, "");
        let longest = "é".repeat(64);
        assert_eq!(
            ok(&format!(r#"{{"certs": {{"t": {{"subject": {{"common_name": "{longest}"}}}}}}}}"#)).certs[0].common_name,
            longest
        );
        assert_eq!(
            fail(r#"{"certs": {"t": {}}}"#, ErrorKind::InvalidManifest),
            "invalid manifest.json: job api: certs.t.subject is required: {\"common_name\": \"...\"}"
        );
        let bad = [
            (r#"{"certs": {"t": {"subject": {}}}}"#, "certs.t.subject.common_name is required"),
            (r#"{"certs": {"t": {"subject": "cn"}}}"#, "certs.t.subject must be an object"),
            (
                r#"{"certs": {"t": {"pkcs8": "yes", "subject": {"common_name": "x"}}}}"#,
                "certs.t.pkcs8 must be true or false",
            ),
            (r#"{"certs": {"../t": {"subject": {"common_name": "x"}}}}"#, "cert name \"../t\" must use only"),
            (r#"{"certs": []}"#, "certs must be an object"),
            (
                &format!(r#"{{"certs": {{"t": {{"subject": {{"common_name": "{}"}}}}}}}}"#, "é".repeat(65)),
                "certs.t.subject.common_name is 65 characters long; X.509 allows at most 64 (ub-common-name)",
            ),
        ];
        for (content, expected) in bad {
            let text = fail(content, ErrorKind::InvalidManifest);
            assert!(text.contains(expected), "{content}: {text}");
        }
    }

    #[test]
    fn enum_names() {
        for p in [RestartPolicy::Always, RestartPolicy::Reload, RestartPolicy::Never] {
            assert_eq!(RestartPolicy::parse(p.as_str()), Some(p));
        }
        for e in Event::ALL {
            assert_eq!(Event::parse(e.as_str()), Some(e));
        }
        assert_eq!(Event::AfterAllocationStopped.as_str(), "after_allocation_stopped");
        assert_eq!(Event::parse("deploy"), None);
        assert_eq!(ProbeKind::Ssh { command: "x".into() }.type_name(), "ssh");
    }
}
