//! Job commands of a manifest (spec §2.5, §2.6, §8.1): names, the events they run on, and the
//! optional demand on another job's command (with `min_version`/`max_version` constraints).

use crate::json_fields::{as_object, as_str, as_string_list, describe, field};
use crate::version::{parse_version_constraint, Version};
use crate::{Error, ErrorKind, Result};
use serde_json::{Map, Value};

/// When a job command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Event {
    PostBuild,
    PreDeploy,
    PostDeploy,
    JobControl,
    HealthCheck,
    Cli,
    AfterAllocationStarted,
    AfterAllocationStopped,
}

impl Event {
    pub const ALL: [Event; 8] = [
        Event::PostBuild,
        Event::PreDeploy,
        Event::PostDeploy,
        Event::JobControl,
        Event::HealthCheck,
        Event::Cli,
        Event::AfterAllocationStarted,
        Event::AfterAllocationStopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::PostBuild => "post_build",
            Event::PreDeploy => "pre_deploy",
            Event::PostDeploy => "post_deploy",
            Event::JobControl => "job_control",
            Event::HealthCheck => "health_check",
            Event::Cli => "cli",
            Event::AfterAllocationStarted => "after_allocation_started",
            Event::AfterAllocationStopped => "after_allocation_stopped",
        }
    }

    /// The event named exactly `s` (case-sensitive, as in the manifest).
    pub fn parse(s: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A command's dependency on a command of another job.
#[derive(Debug, Clone, PartialEq)]
pub struct Demand {
    pub job: String,
    pub command: String,
    /// Free JSON object (returned by the runtime API's `GET /demands`); `{}` when absent.
    pub config: Value,
}

impl Demand {
    /// `config.min_version` and `config.max_version`, parsed.
    pub fn version_range(&self) -> std::result::Result<(Option<Version>, Option<Version>), String> {
        let get = |key: &str| -> std::result::Result<Option<Version>, String> {
            match self.config.get(key).filter(|v| !v.is_null()) {
                None => Ok(None),
                Some(v) => parse_version_constraint(v).map(Some).map_err(|e| format!("demands.config.{key}: {e}")),
            }
        };
        Ok((get("min_version")?, get("max_version")?))
    }
}

/// One entry of the manifest's `commands` map.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandSpec {
    pub name: String,
    /// Events in manifest order, without duplicates; never empty.
    pub executed_on: Vec<Event>,
    /// `None` when `demands.job` and `demands.command` are both empty or absent.
    pub demand: Option<Demand>,
}

/// Parse the `commands` object of job `job`'s manifest, sorted by name. Errors carry no
/// `job <job>` prefix (the manifest parser adds it).
pub(crate) fn parse_commands(job: &str, value: Option<&Value>) -> Result<Vec<CommandSpec>> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let config_err = |msg: String| Error::new(ErrorKind::InvalidJobCommandConfiguration, msg);
    let commands = as_object(value, "commands").map_err(config_err)?;
    let mut names: Vec<&String> = commands.keys().collect();
    names.sort();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let spec = &commands[name.as_str()];
        out.push(parse_command(job, name, spec).map_err(|e| e.context(format!("command {name}")))?);
    }
    Ok(out)
}

fn parse_command(job: &str, name: &str, spec: &Value) -> Result<CommandSpec> {
    let config_err = |msg: String| Error::new(ErrorKind::InvalidJobCommandConfiguration, msg);
    let valid_name = name.starts_with("command_")
        && !name.chars().any(|c| c == '/' || c == '\\' || c.is_whitespace() || c.is_control());
    if !valid_name {
        return Err(config_err(format!(
            "invalid command name {name:?}: it must start with command_ and contain no /, \\ or spaces \
             (it names the script _modules/{name}.py|.ts|.js)"
        )));
    }
    let obj = as_object(spec, "the command").map_err(config_err)?;
    let executed_on = parse_events(obj).map_err(config_err)?;
    let demand = parse_demand(job, obj)?;
    Ok(CommandSpec { name: name.to_string(), executed_on, demand })
}

fn parse_events(obj: &Map<String, Value>) -> std::result::Result<Vec<Event>, String> {
    let names = match field(obj, "executed_on") {
        Some(v) => as_string_list(v, "executed_on")?,
        None => Vec::new(),
    };
    if names.is_empty() {
        return Err("missing executed_on: list the events it runs on, e.g. [\"post_build\"]".into());
    }
    let mut events = Vec::new();
    for name in names {
        let event = Event::parse(name.trim()).ok_or_else(|| {
            let all: Vec<&str> = Event::ALL.iter().map(|e| e.as_str()).collect();
            format!("invalid executed_on [{name:?}]: events are {}", all.join(", "))
        })?;
        if !events.contains(&event) {
            events.push(event);
        }
    }
    Ok(events)
}

fn parse_demand(job: &str, obj: &Map<String, Value>) -> Result<Option<Demand>> {
    let demand_err = |msg: String| Error::new(ErrorKind::InvalidJobCommandDemand, msg);
    let config_err = |msg: String| Error::new(ErrorKind::InvalidJobCommandConfiguration, msg);
    let Some(demands) = field(obj, "demands") else {
        return Ok(None);
    };
    let demands = as_object(demands, "demands").map_err(demand_err)?;
    let text = |key: &str| -> Result<String> {
        match field(demands, key) {
            None => Ok(String::new()),
            Some(v) => Ok(as_str(v, &format!("demands.{key}")).map_err(demand_err)?.trim().to_string()),
        }
    };
    let (up_job, up_command) = (text("job")?, text("command")?);
    match (up_job.is_empty(), up_command.is_empty()) {
        (true, true) => return Ok(None),
        (false, false) => {}
        _ => {
            return Err(demand_err(format!(
                "demands.job ({up_job:?}) and demands.command ({up_command:?}) must both be set or both be empty"
            )))
        }
    }
    if up_job == job {
        return Err(config_err(format!("demands its own job {job} (self referencing); demand another job's command")));
    }
    let config = match field(demands, "config") {
        None => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(other) => return Err(demand_err(format!("demands.config must be an object, not {}", describe(other)))),
    };
    let demand = Demand { job: up_job, command: up_command, config };
    let (min, max) = demand.version_range().map_err(config_err)?;
    if let (Some(min), Some(max)) = (&min, &max) {
        if min > max {
            return Err(config_err(format!("demands.config min_version {min} is greater than max_version {max}")));
        }
    }
    Ok(Some(demand))
}
