//! Flat TOML string maps of the workspace (spec §1.4 `bucket.conf`, §1.5 `bucket.jobs*.conf`,
//! §1.8 `vars.toml`), the port pool range of bucket.conf, and a job's resource reservation from
//! its manifest bounds and the optional bucket.jobs override (§1.5, §2.3).

use crate::manifest::{manifest_file, Bounds, Manifest};
use crate::units::{format_number, parse_cpu_mhz, parse_memory_mb};
use crate::{Error, ErrorKind, Result};
use std::collections::BTreeMap;

/// The pool for `{}` ports when bucket.conf sets no `port_min` / `port_max`.
pub const DEFAULT_PORT_RANGE: (u16, u16) = (30000, 39999);

/// A flat TOML file of `key = "value"` lines. Non-string values and sections are errors of
/// `kind` naming the file and the key.
pub fn parse_string_table(file_label: &str, content: &str, kind: ErrorKind) -> Result<BTreeMap<String, String>> {
    let table = parse_toml(file_label, content, kind)?;
    let mut out = BTreeMap::new();
    for (key, value) in table {
        match value {
            toml::Value::String(s) => {
                out.insert(key, s);
            }
            toml::Value::Table(_) => {
                return Err(Error::new(
                    kind,
                    format!(
                        "{file_label}: [{key}] is a section, but this file is a flat list of key = \"value\" lines"
                    ),
                ))
            }
            other => return Err(not_a_string(kind, file_label, None, &key, &other)),
        }
    }
    Ok(out)
}

/// `bucket.jobs[.<selector>].conf`: one `[job]` section per job, string values only.
pub fn parse_bucket_jobs_conf(file_label: &str, content: &str) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
    let kind = ErrorKind::InvalidBucketConf;
    let table = parse_toml(file_label, content, kind)?;
    let mut out = BTreeMap::new();
    for (job, section) in table {
        let toml::Value::Table(entries) = section else {
            return Err(Error::new(
                kind,
                format!(
                    "{file_label}: key {job:?} is outside any [job] section; put it under the [<job>] it configures"
                ),
            ));
        };
        let mut values = BTreeMap::new();
        for (key, value) in entries {
            match value {
                toml::Value::String(s) => {
                    values.insert(key, s);
                }
                other => return Err(not_a_string(kind, file_label, Some(&job), &key, &other)),
            }
        }
        out.insert(job, values);
    }
    Ok(out)
}

fn parse_toml(file_label: &str, content: &str, kind: ErrorKind) -> Result<toml::Table> {
    toml::from_str::<toml::Table>(content).map_err(|e| {
        let position = e.span().map(|span| line_column(content, span.start)).unwrap_or_default();
        Error::new(kind, format!("{file_label}: {position}{}", e.message().trim()))
    })
}

/// `"line L column C: "` (1-based) of a byte offset.
fn line_column(content: &str, offset: usize) -> String {
    let before = content.get(..offset).unwrap_or(content);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    format!("line {line} column {column}: ")
}

fn not_a_string(kind: ErrorKind, file_label: &str, section: Option<&str>, key: &str, value: &toml::Value) -> Error {
    let place = section.map(|s| format!("[{s}] ")).unwrap_or_default();
    let shown = match value {
        toml::Value::Table(_) => "a table".to_string(),
        toml::Value::Array(_) => "an array".to_string(),
        other => other.to_string(),
    };
    let hint = match value {
        toml::Value::Table(_) | toml::Value::Array(_) => String::new(),
        other => format!(": {key} = \"{}\"", other.to_string().trim_matches('"')),
    };
    Error::new(kind, format!("{file_label}: {place}key {key:?} must be a string, not {shown} (quote it{hint})"))
}

/// `port_min`/`port_max` of bucket.conf (missing or empty → 30000/39999); `1 ≤ min ≤ max ≤ 65535`.
pub fn port_range(bucket_conf: &BTreeMap<String, String>) -> Result<(u16, u16)> {
    let raw = |key: &str| bucket_conf.get(key).map(|s| s.trim()).filter(|s| !s.is_empty());
    let (min_text, max_text) = (raw("port_min"), raw("port_max"));
    let shown = format!(
        "port_min={} port_max={}",
        min_text.unwrap_or(&DEFAULT_PORT_RANGE.0.to_string()),
        max_text.unwrap_or(&DEFAULT_PORT_RANGE.1.to_string())
    );
    let fail = |why: String| {
        Error::new(
            ErrorKind::InvalidPortRange,
            format!("{shown} ({why}; workspace/bucket.conf needs 1 <= port_min <= port_max <= 65535)"),
        )
    };
    let number = |key: &str, text: Option<&str>, default: u16| -> Result<i64> {
        match text {
            None => Ok(i64::from(default)),
            Some(t) => t.parse::<i64>().map_err(|_| fail(format!("{key} is not a whole number"))),
        }
    };
    let min = number("port_min", min_text, DEFAULT_PORT_RANGE.0)?;
    let max = number("port_max", max_text, DEFAULT_PORT_RANGE.1)?;
    if min < 1 {
        return Err(fail("port_min is below 1".into()));
    }
    if max > 65535 {
        return Err(fail("port_max is above 65535".into()));
    }
    if min > max {
        return Err(fail("port_min is greater than port_max".into()));
    }
    match (u16::try_from(min), u16::try_from(max)) {
        (Ok(lo), Ok(hi)) => Ok((lo, hi)),
        _ => Err(fail("out of range".into())),
    }
}

/// A job's resource bounds and current reservation, with where the reservation came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Reservation {
    pub min_memory_mb: f64,
    pub max_memory_mb: f64,
    pub memory_mb: f64,
    /// `"manifest"` or the file name of the bucket.jobs conf that set it.
    pub memory_source: String,
    pub min_cpu_mhz: f64,
    pub max_cpu_mhz: f64,
    pub cpu_mhz: f64,
    pub cpu_source: String,
}

/// Current reservation = manifest max unless the job's bucket.jobs section sets `memory`/`cpu`,
/// which must then lie within the manifest bounds (a manifest without bounds takes the override
/// as both bounds). `file_label` names the conf file in errors; its last path component is the
/// recorded source. A reservation outside the bounds names both places: the manifest's
/// `resources.<what>` field and the conf's `[job] <what>` key (either may be the one to change).
pub fn resolve_reservation(
    job: &str,
    manifest: &Manifest,
    overrides: Option<&BTreeMap<String, String>>,
    file_label: &str,
) -> Result<Reservation> {
    let source_name = file_label.rsplit('/').next().unwrap_or(file_label);
    let overridden = |key: &str| overrides.and_then(|o| o.get(key)).map(|s| s.trim()).filter(|s| !s.is_empty());
    let resolve = |what: &str, unit: &str, bounds: &Bounds, parse: fn(&str) -> std::result::Result<f64, String>| {
        let Some(text) = overridden(what) else {
            return Ok((bounds.min, bounds.max, bounds.max, "manifest".to_string()));
        };
        let value =
            parse(text).map_err(|e| Error::new(ErrorKind::InvalidBucketConf, format!("{file_label}: [{job}] {e}")))?;
        if bounds.min == 0.0 && bounds.max == 0.0 {
            return Ok((value, value, value, source_name.to_string()));
        }
        let out_of_bounds = |limit: &str, bound: f64| {
            Error::new(
                ErrorKind::UnsupportedResourceConfiguration,
                format!(
                    "job {job}: {} resources.{what} {limit} {} {unit}, but {file_label} [{job}] {what} requests {} \
                     {unit}; change resources.{what} in the manifest or {what} in {file_label}",
                    manifest_file(job),
                    format_number(bound),
                    format_number(value)
                ),
            )
        };
        if value > bounds.max {
            return Err(out_of_bounds("allows at most", bounds.max));
        }
        if value < bounds.min {
            return Err(out_of_bounds("requires at least", bounds.min));
        }
        Ok((bounds.min, bounds.max, value, source_name.to_string()))
    };
    let (min_memory_mb, max_memory_mb, memory_mb, memory_source) =
        resolve("memory", "mb", &manifest.memory, parse_memory_mb)?;
    let (min_cpu_mhz, max_cpu_mhz, cpu_mhz, cpu_source) = resolve("cpu", "mhz", &manifest.cpu, parse_cpu_mhz)?;
    Ok(Reservation {
        min_memory_mb,
        max_memory_mb,
        memory_mb,
        memory_source,
        min_cpu_mhz,
        max_cpu_mhz,
        cpu_mhz,
        cpu_source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse_manifest;

    #[test]
    fn string_tables() {
        let t = parse_string_table(
            "workspace/bucket.conf",
            "port_min = \"31000\"\nname = 'x'\n",
            ErrorKind::InvalidBucketConf,
        )
        .unwrap();
        assert_eq!(
            t,
            BTreeMap::from([("port_min".to_string(), "31000".to_string()), ("name".to_string(), "x".to_string())])
        );
        assert!(parse_string_table("f", "", ErrorKind::InvalidJobVars).unwrap().is_empty());
        let e =
            parse_string_table("workspace/bucket.conf", "port_min = 30000", ErrorKind::InvalidBucketConf).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid bucket.conf: workspace/bucket.conf: key \"port_min\" must be a string, not 30000 (quote it: port_min = \"30000\")"
        );
        let e =
            parse_string_table("workspace/jobs/api/vars.toml", "a = \"x\"\n[s]\nb = \"y\"", ErrorKind::InvalidJobVars)
                .unwrap_err();
        assert!(e.is(ErrorKind::InvalidJobVars));
        assert!(e.detail.contains("[s] is a section"));
        assert!(parse_string_table("f", "a = [1]", ErrorKind::InvalidJobVars)
            .unwrap_err()
            .detail
            .contains("not an array (quote it)"));
        assert!(parse_string_table("f", "a = true", ErrorKind::InvalidJobVars)
            .unwrap_err()
            .detail
            .contains("a = \"true\""));
        let e = parse_string_table("workspace/bucket.conf", "a = \"x\"\nb = = 1", ErrorKind::InvalidBucketConf)
            .unwrap_err();
        assert!(e.detail.starts_with("workspace/bucket.conf: line 2 column "), "{e}");
    }

    #[test]
    fn bucket_jobs_conf() {
        let t = parse_bucket_jobs_conf("workspace/bucket.jobs.conf", "[api]\nmemory = \"512 mb\"\nx = \"1\"\n[db]\n")
            .unwrap();
        assert_eq!(t["api"]["memory"], "512 mb");
        assert_eq!(t["api"]["x"], "1");
        assert!(t["db"].is_empty());
        let e = parse_bucket_jobs_conf("workspace/bucket.jobs.conf", "memory = \"1\"").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid bucket.conf: workspace/bucket.jobs.conf: key \"memory\" is outside any [job] section; put it under \
             the [<job>] it configures"
        );
        let e = parse_bucket_jobs_conf("workspace/bucket.jobs.conf", "[api]\ncpu = 1500").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid bucket.conf: workspace/bucket.jobs.conf: [api] key \"cpu\" must be a string, not 1500 (quote it: cpu = \"1500\")"
        );
        assert!(parse_bucket_jobs_conf("f", "[api").unwrap_err().is(ErrorKind::InvalidBucketConf));
    }

    fn conf(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn port_ranges() {
        assert_eq!(port_range(&conf(&[])), Ok((30000, 39999)));
        assert_eq!(port_range(&conf(&[("port_min", " "), ("port_max", "")])), Ok((30000, 39999)));
        assert_eq!(port_range(&conf(&[("port_min", "100"), ("port_max", "100")])), Ok((100, 100)));
        assert_eq!(port_range(&conf(&[("port_min", "1"), ("port_max", "65535")])), Ok((1, 65535)));
        let e = port_range(&conf(&[("port_min", "abc")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid port range in bucket.conf: port_min=abc port_max=39999 (port_min is not a whole number; \
             workspace/bucket.conf needs 1 <= port_min <= port_max <= 65535)"
        );
        for (min, max, why) in [
            ("0", "10", "port_min is below 1"),
            ("10", "70000", "port_max is above 65535"),
            ("20", "10", "port_min is greater than port_max"),
            ("1", "x", "port_max is not a whole number"),
            ("50000", "", "port_min is greater than port_max"),
        ] {
            let e = port_range(&conf(&[("port_min", min), ("port_max", max)])).unwrap_err();
            assert!(e.is(ErrorKind::InvalidPortRange));
            assert!(e.detail.contains(why), "{e}");
        }
    }

    fn manifest(resources: &str) -> Manifest {
        parse_manifest("api", &format!("{{\"resources\": {resources}}}"), &mut Vec::new()).unwrap()
    }

    #[test]
    fn reservation_from_manifest() {
        let m = manifest(r#"{"memory": {"min": "256 mb", "max": "1 gb"}, "cpu": {"max": "2 ghz"}}"#);
        let r = resolve_reservation("api", &m, None, "workspace/bucket.jobs.conf").unwrap();
        assert_eq!(
            r,
            Reservation {
                min_memory_mb: 256.0,
                max_memory_mb: 1024.0,
                memory_mb: 1024.0,
                memory_source: "manifest".into(),
                min_cpu_mhz: 0.0,
                max_cpu_mhz: 2000.0,
                cpu_mhz: 2000.0,
                cpu_source: "manifest".into(),
            }
        );
        let none =
            resolve_reservation("api", &manifest("{}"), Some(&conf(&[("x", "1"), ("memory", " ")])), "f").unwrap();
        assert_eq!((none.memory_mb, none.cpu_mhz, none.memory_source.as_str()), (0.0, 0.0, "manifest"));
    }

    #[test]
    fn reservation_overrides() {
        let m = manifest(r#"{"memory": {"min": "256 mb", "max": "1 gb"}, "cpu": {"min": "500 mhz", "max": "2 ghz"}}"#);
        let file = "workspace/bucket.jobs.prod.conf";
        let r = resolve_reservation("api", &m, Some(&conf(&[("memory", "512 mb"), ("cpu", "1.5 ghz")])), file).unwrap();
        assert_eq!((r.memory_mb, r.memory_source.as_str()), (512.0, "bucket.jobs.prod.conf"));
        assert_eq!((r.min_memory_mb, r.max_memory_mb), (256.0, 1024.0));
        assert_eq!((r.cpu_mhz, r.cpu_source.as_str()), (1500.0, "bucket.jobs.prod.conf"));
        let e = resolve_reservation("api", &m, Some(&conf(&[("memory", "2 gb")])), file).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unsupported resource configuration: job api: workspace/jobs/api/manifest.json resources.memory allows at \
             most 1024 mb, but workspace/bucket.jobs.prod.conf [api] memory requests 2048 mb; change resources.memory \
             in the manifest or memory in workspace/bucket.jobs.prod.conf"
        );
        let e = resolve_reservation("api", &m, Some(&conf(&[("cpu", "100")])), file).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unsupported resource configuration: job api: workspace/jobs/api/manifest.json resources.cpu requires at \
             least 500 mhz, but workspace/bucket.jobs.prod.conf [api] cpu requests 100 mhz; change resources.cpu in \
             the manifest or cpu in workspace/bucket.jobs.prod.conf"
        );
        let e = resolve_reservation("api", &m, Some(&conf(&[("memory", "lots")])), file).unwrap_err();
        assert!(e.is(ErrorKind::InvalidBucketConf));
        assert!(e.detail.starts_with("workspace/bucket.jobs.prod.conf: [api] invalid memory \"lots\""), "{e}");
        let unbounded = resolve_reservation("api", &manifest("{}"), Some(&conf(&[("memory", "300")])), file).unwrap();
        assert_eq!((unbounded.min_memory_mb, unbounded.max_memory_mb, unbounded.memory_mb), (300.0, 300.0, 300.0));
    }
}
