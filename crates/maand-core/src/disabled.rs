//! `workspace/disabled.json` (spec §1.7): whole jobs, single allocations and whole workers taken
//! out of service. Entries combine (union).
//!
//! Decisions: an empty file means nothing is disabled; errors read
//! `invalid disabled.json: workspace/disabled.json: ...`. A job entry with a `workers` key is
//! rejected (the Go maand silently disabled the whole job there, internals §11.16): the key for
//! single allocations is `allocations`. Names of jobs or workers that do not exist are accepted,
//! as the Go maand did (a bucket may keep a drained worker listed), with a warning each.

use crate::json_fields::{as_object, as_string_list, describe, field};
use crate::json_text::parse_json;
use crate::{Error, ErrorKind, Result, Warning};
use std::collections::{BTreeMap, BTreeSet};

const FILE: &str = "workspace/disabled.json";

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disabled {
    /// job → `None` (every allocation) or `Some(worker IPs)`.
    pub jobs: BTreeMap<String, Option<BTreeSet<String>>>,
    /// Every allocation on these workers.
    pub workers: BTreeSet<String>,
}

impl Disabled {
    /// Nothing disabled.
    pub fn none() -> Self {
        Disabled::default()
    }

    pub fn is_disabled(&self, job: &str, ip: &str) -> bool {
        if self.workers.contains(ip) {
            return true;
        }
        match self.jobs.get(job) {
            Some(None) => true,
            Some(Some(ips)) => ips.contains(ip),
            None => false,
        }
    }

    /// A warning for each job or worker named here that the workspace does not have (the entry
    /// disables nothing).
    pub fn unknown_names<'a>(
        &self,
        jobs: impl IntoIterator<Item = &'a str>,
        workers: impl IntoIterator<Item = &'a str>,
    ) -> Vec<Warning> {
        let jobs: BTreeSet<&str> = jobs.into_iter().collect();
        let workers: BTreeSet<&str> = workers.into_iter().collect();
        let mut warnings = Vec::new();
        let mut unknown_worker = |item: String, ip: &str| {
            if !workers.contains(ip) {
                warnings.push(Warning::new(
                    FILE,
                    format!("{item}: {ip:?} is not a worker of workspace/workers.json (it disables nothing)"),
                ));
            }
        };
        for (job, ips) in &self.jobs {
            for ip in ips.iter().flatten() {
                unknown_worker(format!("jobs.{job}.allocations"), ip);
            }
        }
        for ip in &self.workers {
            unknown_worker("workers".to_string(), ip);
        }
        for job in self.jobs.keys().filter(|job| !jobs.contains(job.as_str())) {
            warnings.push(Warning::new(
                FILE,
                format!("jobs.{job}: there is no job {job:?} in workspace/jobs (it disables nothing)"),
            ));
        }
        warnings
    }
}

/// Parse disabled.json. Keys written twice go to `warnings`.
pub fn parse_disabled(content: &str, warnings: &mut Vec<Warning>) -> Result<Disabled> {
    if content.trim().is_empty() {
        return Ok(Disabled::none());
    }
    parse(content, warnings).map_err(|e| Error::new(ErrorKind::InvalidDisabledJson, format!("{FILE}: {e}")))
}

fn parse(content: &str, warnings: &mut Vec<Warning>) -> std::result::Result<Disabled, String> {
    let value = parse_json(content, FILE, warnings)?;
    let obj = as_object(&value, "the top level")
        .map_err(|e| format!("{e} (expected {{\"jobs\": {{...}}, \"workers\": [...]}})"))?;
    let mut disabled = Disabled::none();
    if let Some(jobs) = field(obj, "jobs") {
        for (job, entry) in as_object(jobs, "jobs")? {
            let job = job.trim().to_string();
            if job.is_empty() {
                return Err("jobs has an empty job name".into());
            }
            let at = format!("jobs.{job}");
            let ips = match entry {
                serde_json::Value::Null => None,
                serde_json::Value::Object(spec) => {
                    if spec.contains_key("workers") {
                        return Err(format!(
                            "{at} has \"workers\"; use \"allocations\": [ip, ...] to disable single allocations, \
                             or {{}} to disable the whole job"
                        ));
                    }
                    let ips = match field(spec, "allocations") {
                        Some(v) => ip_set(v, &format!("{at}.allocations"))?,
                        None => BTreeSet::new(),
                    };
                    Some(ips).filter(|ips| !ips.is_empty())
                }
                other => {
                    return Err(format!(
                        "{at} must be an object ({{}} or {{\"allocations\": [...]}}), not {}",
                        describe(other)
                    ))
                }
            };
            let merged = match (disabled.jobs.remove(&job), ips) {
                (Some(None), _) | (_, None) => None,
                (Some(Some(mut a)), Some(b)) => {
                    a.extend(b);
                    Some(a)
                }
                (None, Some(b)) => Some(b),
            };
            disabled.jobs.insert(job, merged);
        }
    }
    if let Some(workers) = field(obj, "workers") {
        disabled.workers = ip_set(workers, "workers")?;
    }
    Ok(disabled)
}

fn ip_set(v: &serde_json::Value, name: &str) -> std::result::Result<BTreeSet<String>, String> {
    Ok(as_string_list(v, name)?.into_iter().map(|ip| ip.trim().to_string()).filter(|ip| !ip.is_empty()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_disabled(content: &str) -> Result<Disabled> {
        super::parse_disabled(content, &mut Vec::new())
    }

    #[test]
    fn parses_the_three_forms() {
        let d = parse_disabled(
            r#"{"jobs": {"api": {}, "vault": {"allocations": ["10.0.0.2", " "]}, "db": {"allocations": []}, "x": null},
                "workers": ["10.0.0.3"]}"#,
        )
        .unwrap();
        assert!(d.is_disabled("api", "10.0.0.9"));
        assert!(d.is_disabled("db", "10.0.0.9"), "empty allocations = whole job");
        assert!(d.is_disabled("x", "10.0.0.9"));
        assert!(d.is_disabled("vault", "10.0.0.2"));
        assert!(!d.is_disabled("vault", "10.0.0.1"));
        assert!(d.is_disabled("anything", "10.0.0.3"));
        assert!(!d.is_disabled("other", "10.0.0.1"));
        assert_eq!(d.jobs["vault"], Some(BTreeSet::from(["10.0.0.2".to_string()])));
    }

    #[test]
    fn empty_and_none() {
        assert_eq!(parse_disabled("").unwrap(), Disabled::none());
        assert_eq!(parse_disabled(" \n").unwrap(), Disabled::none());
        assert_eq!(parse_disabled("{}").unwrap(), Disabled::none());
        assert!(!Disabled::none().is_disabled("a", "b"));
    }

    #[test]
    fn errors() {
        let e = parse_disabled(r#"{"jobs": {"api": {"workers": ["10.0.0.1"]}}}"#).unwrap_err();
        assert!(e.is(ErrorKind::InvalidDisabledJson));
        assert_eq!(
            e.to_string(),
            "invalid disabled.json: workspace/disabled.json: jobs.api has \"workers\"; use \"allocations\": [ip, ...] to \
             disable single allocations, or {} to disable the whole job"
        );
        let bad = [
            ("[]", "the top level must be an object"),
            ("{", "not valid JSON"),
            (r#"{"jobs": []}"#, "jobs must be an object"),
            (r#"{"jobs": {"api": true}}"#, "jobs.api must be an object"),
            (r#"{"jobs": {"api": {"allocations": "10.0.0.1"}}}"#, "jobs.api.allocations must be an array of strings"),
            (r#"{"jobs": {" ": {}}}"#, "empty job name"),
            (r#"{"workers": [1]}"#, "workers[0] must be a string"),
        ];
        for (content, expected) in bad {
            let text = parse_disabled(content).unwrap_err().to_string();
            assert!(text.starts_with("invalid disabled.json: workspace/disabled.json: "), "{text}");
            assert!(text.contains(expected), "{content}: {text}");
        }
    }

    #[test]
    fn unknown_jobs_and_workers_are_warnings() {
        let d = parse_disabled(
            r#"{"jobs": {"api": {"allocations": ["10.0.0.1", "10.0.0.9"]}, "ghost": {}}, "workers": ["10.0.0.8", "10.0.0.2"]}"#,
        )
        .unwrap();
        let warnings: Vec<String> =
            d.unknown_names(["api", "db"], ["10.0.0.1", "10.0.0.2"]).iter().map(ToString::to_string).collect();
        assert_eq!(
            warnings,
            [
                "warning: workspace/disabled.json: jobs.api.allocations: \"10.0.0.9\" is not a worker of workspace/workers.json (it disables nothing)",
                "warning: workspace/disabled.json: workers: \"10.0.0.8\" is not a worker of workspace/workers.json (it disables nothing)",
                "warning: workspace/disabled.json: jobs.ghost: there is no job \"ghost\" in workspace/jobs (it disables nothing)",
            ]
        );
        assert!(d.unknown_names(["api", "ghost"], ["10.0.0.1", "10.0.0.2", "10.0.0.8", "10.0.0.9"]).is_empty());
    }

    #[test]
    fn duplicate_keys_are_warnings() {
        let mut warnings = Vec::new();
        let d = super::parse_disabled(r#"{"workers": ["a"], "workers": ["b"]}"#, &mut warnings).unwrap();
        assert_eq!(d.workers, BTreeSet::from(["b".to_string()]));
        assert_eq!(
            warnings[0].to_string(),
            "warning: workspace/disabled.json: key \"workers\" appears twice; the last value is used"
        );
    }
}
