//! `maand worker_facts [-w ips | -l labels] [-c N] [--dry-run] [--build]` (spec §3.8, internals
//! §2.6): probe each selected worker's memory and CPU over SSH and write them into
//! `workspace/workers.json` as `"memory": "<n> mb"` and `"cpu": "<n> mhz"`, keeping every other
//! entry, field and their order (2-space indent, trailing newline). Nothing is written when any
//! probe fails; `--build` runs a build after a successful write.

use crate::bucket::Bucket;
use crate::build::{build_in, BuildOptions};
use crate::output::Reporter;
use crate::remote_steps::{Remote, Step};
use crate::runlog::RunLog;
use crate::transport::ssh_executor;
use maand_core::workers::{parse_workers, WorkerSpec};
use maand_core::{Error, ErrorKind, Result};
use maand_remote::{Executor, RemoteScript, WorkerAddr};
use maand_store::catalog;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

/// Time limit of one worker's probe.
const PROBE_TIMEOUT_SECS: u64 = 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerFactsOptions {
    /// `-w/--workers`: hosts as written in workers.json.
    pub workers: Vec<String>,
    /// `-l/--labels`: any-match, case-insensitive, the implicit `worker` label included.
    pub labels: Vec<String>,
    /// `-c/--concurrency`: probes at once (at least 1).
    pub concurrency: i64,
    /// Print the changes without writing.
    pub dry_run: bool,
    /// Run `maand build` after writing.
    pub build: bool,
}

impl Default for WorkerFactsOptions {
    fn default() -> Self {
        WorkerFactsOptions { workers: Vec::new(), labels: Vec::new(), concurrency: 1, dry_run: false, build: false }
    }
}

/// What one worker's probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub memory_mb: u64,
    pub cpu_mhz: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerFactsReport {
    /// One line per changed worker (`10.0.0.1: memory "4 gb" -> "3936 mb", cpu (none) -> "8000 mhz"`).
    pub changes: Vec<String>,
    /// workers.json was rewritten.
    pub written: bool,
    /// A build ran after the write.
    pub built: bool,
}

/// `maand worker_facts` in the bucket at `root`, under the bucket lock (it may build), over SSH.
pub fn worker_facts(root: &Path, opts: &WorkerFactsOptions, out: &dyn Reporter) -> Result<WorkerFactsReport> {
    let bucket = Bucket::open_locked(root, "worker_facts")?;
    let executor = ssh_executor(&bucket);
    let report = worker_facts_with(&bucket, opts, out, &executor);
    executor.close();
    if report.as_ref().is_ok_and(|r| r.built) {
        let _ = std::fs::remove_dir_all(bucket.paths.tmp());
    }
    report
}

/// `maand worker_facts` on an opened (locked) bucket with a given executor.
pub fn worker_facts_with(
    bucket: &Bucket,
    opts: &WorkerFactsOptions,
    out: &dyn Reporter,
    executor: &dyn Executor,
) -> Result<WorkerFactsReport> {
    if opts.concurrency < 1 {
        return Err(Error::msg("concurrency must be at least 1"));
    }
    if !opts.workers.is_empty() && !opts.labels.is_empty() {
        return Err(Error::msg("specify either --workers or --labels, not both"));
    }
    let path = bucket.paths.workers_json();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::new(ErrorKind::InvalidWorkerJson, format!("cannot read {}: {e}", path.display())))?;
    let mut warnings = Vec::new();
    let all = parse_workers(&text, &mut warnings).map_err(|e| if text.trim().is_empty() { empty_file() } else { e })?;
    for warning in &warnings {
        out.message(&warning.to_string());
    }
    if all.is_empty() {
        return Err(empty_file());
    }
    let selected = select(&all, &opts.workers, &opts.labels)?;

    let conn = bucket.connect()?;
    let bucket_row = catalog::bucket_row(&conn)?;
    drop(conn);
    let log = RunLog::open(&bucket.paths, bucket.conf.log_format, "worker_facts", bucket_row.update_seq)?;
    let remote = Remote { executor, out, log: &log, bucket_id: &bucket_row.bucket_id };
    let steps: Vec<Step<'_>> = selected
        .iter()
        .map(|w| Step {
            job: None,
            phase: "worker_facts",
            action: "probe",
            worker: WorkerAddr::new(w.host.clone(), w.port),
            script: probe_script(),
            timeout_secs: Some(PROBE_TIMEOUT_SECS),
        })
        .collect();
    let limit = usize::try_from(opts.concurrency).unwrap_or(1);
    let mut facts = Vec::new();
    let mut failures = Vec::new();
    for (w, result) in selected.iter().zip(remote.run_all_captured(&steps, limit)) {
        let parsed = match result {
            Ok(o) if o.exit_code == 0 => parse_probe_output(&o.stdout),
            Ok(o) => Err(format!("probe exited with status {}: {}", o.exit_code, o.stderr.join(" "))),
            Err(e) => Err(e.to_string()),
        };
        match parsed {
            Ok(f) => facts.push((w.host.clone(), f)),
            Err(e) => failures.push(format!("worker {}: {e}", w.host)),
        }
    }
    if !failures.is_empty() {
        return Err(Error::new(
            ErrorKind::RunCommand,
            format!("worker_facts: nothing written: {}", failures.join("; ")),
        ));
    }
    let (new_text, changes) = apply_facts(&text, &facts)?;
    let mut report = WorkerFactsReport { changes, written: false, built: false };
    if opts.dry_run || report.changes.is_empty() {
        return Ok(report);
    }
    std::fs::write(&path, new_text)
        .map_err(|e| Error::new(ErrorKind::Unexpected, format!("cannot write {}: {e}", path.display())))?;
    report.written = true;
    if opts.build {
        build_in(bucket, &BuildOptions::default())?;
        report.built = true;
    }
    Ok(report)
}

fn empty_file() -> Error {
    Error::new(ErrorKind::InvalidWorkerJson, "workers.json is empty")
}

/// The workers named by `-w` (each must be in workers.json) or carrying any `-l` label; all when
/// neither is given. workers.json order.
fn select<'a>(all: &'a [WorkerSpec], workers: &[String], labels: &[String]) -> Result<Vec<&'a WorkerSpec>> {
    let hosts: BTreeSet<&str> = workers.iter().map(|w| w.trim()).filter(|w| !w.is_empty()).collect();
    let labels: BTreeSet<String> = labels.iter().map(|l| l.trim().to_lowercase()).filter(|l| !l.is_empty()).collect();
    let unknown: Vec<&str> = hosts.iter().copied().filter(|h| !all.iter().any(|w| w.host == *h)).collect();
    if !unknown.is_empty() {
        return Err(Error::msg(format!("workers not in workspace/workers.json: [{}]", unknown.join(" "))));
    }
    let selected: Vec<&WorkerSpec> = all
        .iter()
        .filter(|w| hosts.is_empty() || hosts.contains(w.host.as_str()))
        .filter(|w| labels.is_empty() || w.labels.iter().any(|l| labels.contains(l)))
        .collect();
    if selected.is_empty() {
        return Err(Error::msg("no workers matched the selection"));
    }
    Ok(selected)
}

/// Prints `MEMORY_MB=<ceil(MemTotal/1024)>` and `CPU_MHZ=<cpus * MHz>` (MHz from /proc/cpuinfo,
/// else lscpu's "CPU max MHz"; 0 when unknown).
pub fn probe_script() -> RemoteScript {
    RemoteScript::from_lines([
        "mem_kb=$(awk '/^MemTotal:/ {print $2; exit}' /proc/meminfo 2>/dev/null || true)",
        "cpus=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || true)",
        "mhz=$(awk -F: '/^cpu MHz/ {printf \"%d\", $2; exit}' /proc/cpuinfo 2>/dev/null || true)",
        "if [ -z \"$mhz\" ] || [ \"$mhz\" = 0 ]; then mhz=$(lscpu 2>/dev/null | awk -F: '/CPU max MHz/ {printf \"%d\", $2; exit}' || true); fi",
        "echo \"MEMORY_MB=$(( (${mem_kb:-0} + 1023) / 1024 ))\"",
        "echo \"CPU_MHZ=$(( ${cpus:-0} * ${mhz:-0} ))\"",
    ])
}

/// Read `MEMORY_MB=` and `CPU_MHZ=` from the probe's stdout; missing or 0 is an error.
pub fn parse_probe_output(stdout: &[String]) -> std::result::Result<Facts, String> {
    let value = |key: &str| -> std::result::Result<u64, String> {
        let raw = stdout.iter().rev().find_map(|l| l.trim().strip_prefix(key)).map(str::trim);
        match raw.map(str::parse::<u64>) {
            Some(Ok(n)) if n > 0 => Ok(n),
            Some(Ok(_)) => Err(format!("the probe could not determine {key}")),
            Some(Err(_)) => Err(format!("the probe printed an invalid {key}{}", raw.unwrap_or_default())),
            None => Err(format!("the probe printed no {key}")),
        }
    };
    Ok(Facts { memory_mb: value("MEMORY_MB=")?, cpu_mhz: value("CPU_MHZ=")? })
}

/// workers.json with `memory`/`cpu` of the probed hosts set (in place when present, else
/// appended to the entry), every other entry and field kept in order; plus one line per changed
/// worker.
pub fn apply_facts(text: &str, facts: &[(String, Facts)]) -> Result<(String, Vec<String>)> {
    let invalid =
        |e: serde_json::Error| Error::new(ErrorKind::InvalidWorkerJson, format!("workspace/workers.json: {e}"));
    let mut doc: Value = serde_json::from_str(text).map_err(invalid)?;
    let mut changes = Vec::new();
    if let Some(entries) = doc.as_array_mut() {
        for entry in entries.iter_mut().filter_map(Value::as_object_mut) {
            let host = entry.get("host").and_then(Value::as_str).map(str::trim).unwrap_or_default().to_string();
            let Some((_, f)) = facts.iter().find(|(h, _)| *h == host) else { continue };
            let mut changed = Vec::new();
            for (field, value) in [("memory", format!("{} mb", f.memory_mb)), ("cpu", format!("{} mhz", f.cpu_mhz))] {
                let old = entry.get(field).cloned();
                if old.as_ref().and_then(Value::as_str) == Some(value.as_str()) {
                    continue;
                }
                let old = old.map_or_else(|| "(none)".to_string(), |v| v.to_string());
                changed.push(format!("{field} {old} -> \"{value}\""));
                entry.insert(field.to_string(), Value::String(value));
            }
            if !changed.is_empty() {
                changes.push(format!("{host}: {}", changed.join(", ")));
            }
        }
    }
    let mut out = serde_json::to_string_pretty(&doc).map_err(invalid)?;
    out.push('\n');
    Ok((out, changes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn probe_output_parsing() {
        let f = parse_probe_output(&lines(&["noise", "MEMORY_MB=2048", "CPU_MHZ=8000"])).unwrap();
        assert_eq!(f, Facts { memory_mb: 2048, cpu_mhz: 8000 });
        assert!(parse_probe_output(&lines(&["MEMORY_MB=2048", "CPU_MHZ=0"])).unwrap_err().contains("CPU_MHZ"));
        assert!(parse_probe_output(&lines(&["MEMORY_MB=x", "CPU_MHZ=1"])).unwrap_err().contains("invalid MEMORY_MB"));
        assert!(parse_probe_output(&lines(&["CPU_MHZ=1"])).unwrap_err().contains("no MEMORY_MB"));
    }

    /// The probe script, run by a real bash on this machine, reports what /proc says.
    #[test]
    fn probe_script_reports_this_machine() {
        let out = std::process::Command::new("bash").arg("-c").arg(probe_script().render().unwrap()).output().unwrap();
        assert!(out.status.success());
        let stdout: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
        let f = parse_probe_output(&stdout).unwrap();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
        let kb: u64 = meminfo.lines().next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
        assert_eq!(f.memory_mb, kb.div_ceil(1024));
        let cpus = std::thread::available_parallelism().unwrap().get() as u64;
        assert_eq!(f.cpu_mhz % cpus, 0, "cpu = cpus x MHz: {f:?}");
    }

    #[test]
    fn apply_keeps_other_fields_and_order() {
        let text = r#"[
  {"host": "10.0.0.1", "labels": ["a"], "memory": "1 gb", "port": 22, "tags": {"z": "1", "a": "2"}},
  {"host": "10.0.0.2", "cpu": "8000 mhz", "hostname": "h2"},
  {"host": "10.0.0.3"}
]"#;
        let facts = vec![
            ("10.0.0.1".to_string(), Facts { memory_mb: 3936, cpu_mhz: 4000 }),
            ("10.0.0.2".to_string(), Facts { memory_mb: 512, cpu_mhz: 8000 }),
        ];
        let (out, changes) = apply_facts(text, &facts).unwrap();
        let expected = r#"[
  {
    "host": "10.0.0.1",
    "labels": [
      "a"
    ],
    "memory": "3936 mb",
    "port": 22,
    "tags": {
      "z": "1",
      "a": "2"
    },
    "cpu": "4000 mhz"
  },
  {
    "host": "10.0.0.2",
    "cpu": "8000 mhz",
    "hostname": "h2",
    "memory": "512 mb"
  },
  {
    "host": "10.0.0.3"
  }
]
"#;
        assert_eq!(out, expected);
        assert_eq!(
            changes,
            [
                "10.0.0.1: memory \"1 gb\" -> \"3936 mb\", cpu (none) -> \"4000 mhz\"",
                "10.0.0.2: memory (none) -> \"512 mb\""
            ]
        );
        let (again, none) = apply_facts(&out, &facts).unwrap();
        assert_eq!(again, out);
        assert!(none.is_empty(), "{none:?}");
    }

    #[test]
    fn selection() {
        let all = parse_workers(
            r#"[{"host": "a", "labels": ["Web"]}, {"host": "b", "labels": ["db"]}, {"host": "c"}]"#,
            &mut Vec::new(),
        )
        .unwrap();
        let hosts = |v: Vec<&WorkerSpec>| v.iter().map(|w| w.host.clone()).collect::<Vec<_>>();
        assert_eq!(hosts(select(&all, &[], &[]).unwrap()), ["a", "b", "c"]);
        assert_eq!(hosts(select(&all, &[], &lines(&["WEB", "db"])).unwrap()), ["a", "b"]);
        assert_eq!(hosts(select(&all, &[], &lines(&["worker"])).unwrap()), ["a", "b", "c"], "implicit label");
        assert_eq!(hosts(select(&all, &lines(&["c"]), &[]).unwrap()), ["c"]);
        assert_eq!(
            select(&all, &lines(&["z"]), &[]).unwrap_err().to_string(),
            "workers not in workspace/workers.json: [z]"
        );
        assert_eq!(select(&all, &[], &lines(&["x"])).unwrap_err().to_string(), "no workers matched the selection");
    }
}
