//! `maand sandbox up|down|status`: local sandbox workers recorded in the bucket workspace.
//! `up` makes the throwaway key `secrets/sandbox.key`, starts the workers under `<bucket>/sandbox`,
//! lists them in `workspace/workers.json` and points `maand.conf` at them (root, the sandbox key,
//! no sudo); `down` stops them and removes their workers.json entries again.

use std::fs;
use std::path::{Path, PathBuf};

use maand_core::{Error, ErrorKind, Result};
use maand_remote::sandbox::{ensure_client_key, Sandbox, SandboxWorker};
use serde_json::{Map, Value};

/// Key file name under `secrets/` that sandbox workers authorize.
pub const SANDBOX_KEY: &str = "sandbox.key";

/// The maand.conf settings that make maand reach sandbox workers.
const SANDBOX_CONF: [(&str, &str); 3] =
    [("ssh_user", "\"root\""), ("ssh_key", "\"sandbox.key\""), ("use_sudo", "false")];

/// What `up` did, for the CLI to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxUp {
    /// Every sandbox worker, running.
    pub workers: Vec<SandboxWorker>,
    /// workers.json changes (`added 127.0.0.2:2222`, `port of 127.0.0.3 set to 2223`).
    pub workers_json_changes: Vec<String>,
    /// maand.conf lines set (`ssh_user = "root"`), empty when they already had these values.
    pub maand_conf_changes: Vec<String>,
}

fn sandbox(root: &Path) -> Sandbox {
    Sandbox::new(root.join("sandbox"))
}

fn workers_json(root: &Path) -> PathBuf {
    root.join("workspace").join("workers.json")
}

/// Starts `count` sandbox workers (keeping running ones) labelled `labels`, lists them in
/// workers.json and sets maand.conf to reach them. Returns the workers.
pub fn up(root: &Path, count: usize, labels: &[String]) -> Result<Vec<SandboxWorker>> {
    up_with_report(root, count, labels).map(|report| report.workers)
}

/// `up`, also saying what it changed in workers.json and maand.conf.
pub fn up_with_report(root: &Path, count: usize, labels: &[String]) -> Result<SandboxUp> {
    if !root.join("workspace").is_dir() {
        return Err(Error::new(
            ErrorKind::NotInitialized,
            format!("{} has no workspace/: run `maand init` first", root.display()),
        ));
    }
    let pubkey = ensure_client_key(&root.join("secrets").join(SANDBOX_KEY))?;
    let workers = sandbox(root).up(count, &pubkey)?;

    let path = workers_json(root);
    let current = read_optional(&path)?;
    let listed: Vec<(String, u16)> = workers.iter().map(|w| (w.ip.clone(), w.port)).collect();
    let (text, workers_json_changes) = add_workers(current.as_deref(), &listed, labels)?;
    if !workers_json_changes.is_empty() {
        write(&path, &text)?;
    }

    let conf_path = root.join("maand.conf");
    let conf = read_optional(&conf_path)?.unwrap_or_default();
    let (conf_text, maand_conf_changes) = set_conf_keys(&conf, &SANDBOX_CONF);
    if !maand_conf_changes.is_empty() || !conf_path.exists() {
        write(&conf_path, &conf_text)?;
    }
    Ok(SandboxUp { workers, workers_json_changes, maand_conf_changes })
}

/// Stops every sandbox worker (and every process in its namespace) and removes their entries from
/// workers.json. maand.conf is left as it is.
pub fn down(root: &Path) -> Result<()> {
    let sandbox = sandbox(root);
    let hosts: Vec<String> = sandbox.workers()?.into_iter().map(|w| w.ip).collect();
    sandbox.down()?;
    let path = workers_json(root);
    if let Some(current) = read_optional(&path)? {
        let (text, removed) = remove_workers(&current, &hosts)?;
        if removed > 0 {
            write(&path, &text)?;
        }
    }
    Ok(())
}

/// Each recorded sandbox worker and whether its sshd is running.
pub fn status(root: &Path) -> Result<Vec<(SandboxWorker, bool)>> {
    Ok(sandbox(root).workers()?.into_iter().map(|w| (w.clone(), w.is_running())).collect())
}

/// Adds `{"host", "port", "labels"}` for each worker not yet listed (fixing the port of listed
/// ones), keeping every other entry, field and their order. Returns the new text (2-space indent,
/// trailing newline) and the changes made.
fn add_workers(current: Option<&str>, workers: &[(String, u16)], labels: &[String]) -> Result<(String, Vec<String>)> {
    let mut entries = parse_workers(current)?;
    let mut changes = Vec::new();
    for (ip, port) in workers {
        match entries.iter_mut().find(|entry| entry_host(entry) == Some(ip.as_str())) {
            Some(Value::Object(entry)) => {
                if entry.get("port").and_then(Value::as_u64) != Some(u64::from(*port)) {
                    entry.insert("port".to_string(), Value::from(*port));
                    changes.push(format!("port of {ip} set to {port}"));
                }
            }
            _ => {
                let mut entry = Map::new();
                entry.insert("host".to_string(), Value::from(ip.as_str()));
                entry.insert("port".to_string(), Value::from(*port));
                if !labels.is_empty() {
                    entry.insert("labels".to_string(), Value::from(labels.to_vec()));
                }
                entries.push(Value::Object(entry));
                changes.push(format!("added {ip}:{port}"));
            }
        }
    }
    Ok((render_workers(entries)?, changes))
}

/// Drops the entries whose host is one of `hosts`. Returns the new text and how many were removed.
fn remove_workers(current: &str, hosts: &[String]) -> Result<(String, usize)> {
    let entries = parse_workers(Some(current))?;
    let before = entries.len();
    let kept: Vec<Value> =
        entries.into_iter().filter(|entry| !entry_host(entry).is_some_and(|h| hosts.iter().any(|x| x == h))).collect();
    let removed = before - kept.len();
    Ok((render_workers(kept)?, removed))
}

fn parse_workers(current: Option<&str>) -> Result<Vec<Value>> {
    let Some(text) = current.filter(|t| !t.trim().is_empty()) else { return Ok(Vec::new()) };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(entries)) => Ok(entries),
        Ok(_) => {
            Err(Error::new(ErrorKind::InvalidWorkerJson, "workspace/workers.json: expected a JSON array of workers"))
        }
        Err(e) => Err(Error::new(ErrorKind::InvalidWorkerJson, format!("workspace/workers.json: {e}"))),
    }
}

fn entry_host(entry: &Value) -> Option<&str> {
    entry.get("host").and_then(Value::as_str).map(str::trim)
}

fn render_workers(entries: Vec<Value>) -> Result<String> {
    serde_json::to_string_pretty(&Value::Array(entries))
        .map(|text| text + "\n")
        .map_err(|e| Error::new(ErrorKind::Unexpected, format!("cannot encode workspace/workers.json: {e}")))
}

/// Sets top-level `key = value` lines in TOML text in place (keeping every other line and
/// comment), adding missing keys before the first table. Returns the text and the lines set.
fn set_conf_keys(text: &str, settings: &[(&str, &str)]) -> (String, Vec<String>) {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let first_table = lines.iter().position(|l| l.trim_start().starts_with('[')).unwrap_or(lines.len());
    let mut changes = Vec::new();
    let mut missing = Vec::new();
    for (key, value) in settings {
        let wanted = format!("{key} = {value}");
        let mut found = false;
        for line in lines[..first_table].iter_mut().filter(|l| assigns_key(l, key)) {
            found = true;
            if assigned_value(line) != Some(*value) {
                *line = wanted.clone();
                changes.push(wanted.clone());
            }
        }
        if !found {
            missing.push(wanted.clone());
            changes.push(wanted);
        }
    }
    let mut insert_at = first_table;
    if first_table < lines.len() {
        // Add after the last setting, keeping the blank lines that separate it from the table.
        while insert_at > 0 && lines[insert_at - 1].trim().is_empty() {
            insert_at -= 1;
        }
    }
    lines.splice(insert_at..insert_at, missing);
    let mut out = lines.join("\n");
    out.push('\n');
    (out, changes)
}

/// `line` is `key = …` (whitespace allowed around the key and `=`).
fn assigns_key(line: &str, key: &str) -> bool {
    line.trim_start().strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with('='))
}

/// The value part of a `key = value` line, trimmed.
fn assigned_value(line: &str) -> Option<&str> {
    line.split_once('=').map(|(_, value)| value.trim())
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::new(ErrorKind::Unexpected, format!("cannot read {}: {e}", path.display()))),
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text)
        .map_err(|e| Error::new(ErrorKind::Unexpected, format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox_workers() -> Vec<(String, u16)> {
        vec![("127.0.0.2".to_string(), 2222), ("127.0.0.3".to_string(), 2223)]
    }

    #[test]
    fn adds_missing_workers_and_keeps_everything_else() {
        let current = r#"[
  {"host": "10.0.0.1", "labels": ["db"], "memory": "4 gb", "tags": {"zone": "a"}, "position": 5},
  {"host": "127.0.0.2", "port": 2222, "labels": ["custom"]}
]"#;
        let (text, changes) = add_workers(Some(current), &sandbox_workers(), &["web".to_string()]).unwrap();
        assert_eq!(changes, ["added 127.0.0.3:2223"]);
        assert_eq!(
            text,
            r#"[
  {
    "host": "10.0.0.1",
    "labels": [
      "db"
    ],
    "memory": "4 gb",
    "tags": {
      "zone": "a"
    },
    "position": 5
  },
  {
    "host": "127.0.0.2",
    "port": 2222,
    "labels": [
      "custom"
    ]
  },
  {
    "host": "127.0.0.3",
    "port": 2223,
    "labels": [
      "web"
    ]
  }
]
"#
        );
    }

    #[test]
    fn fixes_port_of_listed_worker_and_omits_empty_labels() {
        let (text, changes) =
            add_workers(Some(r#"[{"host":"127.0.0.2","port":22}]"#), &sandbox_workers(), &[]).unwrap();
        assert_eq!(changes, ["port of 127.0.0.2 set to 2222", "added 127.0.0.3:2223"]);
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value[0]["port"], 2222);
        assert_eq!(value[1], serde_json::json!({"host": "127.0.0.3", "port": 2223}));
    }

    #[test]
    fn missing_or_empty_file_starts_a_list_and_nothing_changes_when_listed() {
        let (text, changes) = add_workers(None, &sandbox_workers()[..1], &[]).unwrap();
        assert_eq!(changes.len(), 1);
        let (_, again) = add_workers(Some(&text), &sandbox_workers()[..1], &[]).unwrap();
        assert!(again.is_empty());
        assert_eq!(add_workers(Some("  \n"), &[], &[]).unwrap().0, "[]\n");
    }

    #[test]
    fn invalid_workers_json_is_reported() {
        let err = add_workers(Some("{\"host\": 1}"), &[], &[]).unwrap_err().to_string();
        assert!(err.starts_with("invalid worker.json: workspace/workers.json: expected a JSON array"), "{err}");
        assert!(add_workers(Some("[1,"), &[], &[]).unwrap_err().is(ErrorKind::InvalidWorkerJson));
    }

    #[test]
    fn removes_only_sandbox_entries() {
        let current = r#"[{"host":"10.0.0.1"},{"host":"127.0.0.2","port":2222},{"host":" 127.0.0.3 "}]"#;
        let hosts = vec!["127.0.0.2".to_string(), "127.0.0.3".to_string()];
        let (text, removed) = remove_workers(current, &hosts).unwrap();
        assert_eq!(removed, 2);
        assert_eq!(text, "[\n  {\n    \"host\": \"10.0.0.1\"\n  }\n]\n");
    }

    #[test]
    fn sets_conf_keys_in_place_keeping_comments_and_tables() {
        let conf =
            "# maand settings\nssh_user = \"agent\"\nuse_sudo=false\ncerts_ttl = 60\n\n[extra]\nssh_key = \"x\"\n";
        let (text, changes) = set_conf_keys(conf, &SANDBOX_CONF);
        assert_eq!(
            text,
            "# maand settings\nssh_user = \"root\"\nuse_sudo=false\ncerts_ttl = 60\nssh_key = \"sandbox.key\"\n\n[extra]\nssh_key = \"x\"\n"
        );
        assert_eq!(changes, ["ssh_user = \"root\"", "ssh_key = \"sandbox.key\""]);
        let (again, none) = set_conf_keys(&text, &SANDBOX_CONF);
        assert!(none.is_empty());
        assert_eq!(again, text);
    }

    #[test]
    fn creates_conf_from_nothing() {
        let (text, changes) = set_conf_keys("", &SANDBOX_CONF);
        assert_eq!(text, "ssh_user = \"root\"\nssh_key = \"sandbox.key\"\nuse_sudo = false\n");
        assert_eq!(changes.len(), 3);
    }

    #[test]
    fn key_prefixes_are_not_confused() {
        assert!(assigns_key("  ssh_key = \"a\"", "ssh_key"));
        assert!(!assigns_key("ssh_key_file = \"a\"", "ssh_key"));
        assert!(!assigns_key("# ssh_key = \"a\"", "ssh_key"));
    }

    #[test]
    fn up_requires_an_initialized_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let err = up(dir.path(), 1, &[]).unwrap_err();
        assert!(err.is(ErrorKind::NotInitialized), "{err}");
        assert!(status(dir.path()).unwrap().is_empty());
        assert!(down(dir.path()).is_ok());
    }

    /// Real sandbox workers: up lists them and points maand.conf at them, down removes them.
    #[test]
    fn up_and_down_edit_the_bucket() {
        if let Err(reason) = Sandbox::check_prerequisites() {
            assert!(std::env::var_os("CI").is_none(), "sandbox prerequisites missing on CI: {reason}");
            eprintln!("skipping sandbox test: {reason}");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("workspace")).unwrap();
        fs::create_dir_all(root.join("secrets")).unwrap();
        fs::write(root.join("workspace/workers.json"), "[{\"host\": \"10.9.9.9\"}]\n").unwrap();
        fs::write(root.join("maand.conf"), "ssh_user = \"agent\"\nuse_sudo = true\n").unwrap();

        struct Down<'a>(&'a Path);
        impl Drop for Down<'_> {
            fn drop(&mut self) {
                let _ = down(self.0);
            }
        }
        let _guard = Down(root);
        let report = up_with_report(root, 2, &["web".to_string()]).unwrap();
        assert_eq!(report.workers.len(), 2);
        assert_eq!(report.maand_conf_changes.len(), 3);
        let listed: Value = serde_json::from_str(&fs::read_to_string(workers_json(root)).unwrap()).unwrap();
        assert_eq!(listed[0]["host"], "10.9.9.9");
        assert_eq!(listed[1]["host"], report.workers[0].ip.as_str());
        assert_eq!(listed[1]["labels"], serde_json::json!(["web"]));
        assert_eq!(
            fs::read_to_string(root.join("maand.conf")).unwrap(),
            "ssh_user = \"root\"\nuse_sudo = false\nssh_key = \"sandbox.key\"\n"
        );
        assert!(root.join("secrets/sandbox.key").exists());
        assert!(status(root).unwrap().iter().all(|(_, running)| *running));

        let again = up_with_report(root, 2, &[]).unwrap();
        assert_eq!(again.workers, report.workers, "idempotent");
        assert!(again.workers_json_changes.is_empty() && again.maand_conf_changes.is_empty());

        down(root).unwrap();
        assert_eq!(fs::read_to_string(workers_json(root)).unwrap(), "[\n  {\n    \"host\": \"10.9.9.9\"\n  }\n]\n");
        assert!(status(root).unwrap().is_empty());
    }
}
