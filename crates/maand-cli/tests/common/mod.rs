//! Test bucket fixture: a temporary directory initialised by the real `maand` binary, with helpers
//! to write workspace files, run commands and read the catalog.
#![allow(dead_code, clippy::unwrap_used)]

pub mod cluster;
pub mod etcd;
pub mod grpc;
pub mod jobcmd;
pub mod procs;

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

pub struct TestBucket {
    pub dir: tempfile::TempDir,
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn ok(self) -> Output {
        assert_eq!(self.code, 0, "expected success\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
    pub fn fails_with(self, needle: &str) -> Output {
        assert_eq!(self.code, 1, "expected exit 1\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        assert!(self.stderr.contains(needle), "stderr does not contain {needle:?}:\n{}", self.stderr);
        self
    }
}

pub fn maand_in(dir: &Path, args: &[&str]) -> Output {
    run(Command::cargo_bin("maand").unwrap().current_dir(dir).env("MAAND_TEST", "1").args(args))
}

/// `maand` run under `umask 000` (the most permissive): whatever is private then was made so by
/// maand, not by the umask.
pub fn maand_with_open_umask(dir: &Path, args: &[&str]) -> Output {
    let bin = assert_cmd::cargo::cargo_bin("maand");
    run(Command::new("sh")
        .args(["-c", "umask 000 && exec \"$0\" \"$@\""])
        .arg(bin)
        .args(args)
        .current_dir(dir)
        .env("MAAND_TEST", "1"))
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl TestBucket {
    /// A fresh bucket (`maand init` already run).
    pub fn new() -> TestBucket {
        let b = TestBucket::uninitialized();
        b.maand(&["init"]).ok();
        b
    }

    pub fn uninitialized() -> TestBucket {
        TestBucket { dir: tempfile::tempdir().unwrap() }
    }

    /// A fresh bucket in a new directory under `parent` (a test can then prove that nothing
    /// was written next to the bucket).
    pub fn new_in(parent: &Path) -> TestBucket {
        let b = TestBucket { dir: tempfile::tempdir_in(parent).unwrap() };
        b.maand(&["init"]).ok();
        b
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    pub fn maand(&self, args: &[&str]) -> Output {
        maand_in(self.root(), args)
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }

    pub fn remove(&self, rel: &str) {
        let p = self.path(rel);
        if p.is_dir() {
            std::fs::remove_dir_all(p).unwrap();
        } else {
            std::fs::remove_file(p).unwrap();
        }
    }

    pub fn workers(&self, workers: Value) {
        self.write("workspace/workers.json", &serde_json::to_string_pretty(&workers).unwrap());
    }

    /// A job with the given manifest and an empty Makefile.
    pub fn job(&self, name: &str, manifest: Value) {
        self.write(&format!("workspace/jobs/{name}/manifest.json"), &serde_json::to_string_pretty(&manifest).unwrap());
        self.write(&format!("workspace/jobs/{name}/Makefile"), "start:\n\nstop:\n\nrestart:\n");
    }

    pub fn build(&self) -> Output {
        self.maand(&["build"])
    }

    /// `maand cat <what> --json` parsed.
    pub fn cat(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["cat"];
        all.extend_from_slice(args);
        all.push("--json");
        let out = self.maand(&all).ok();
        match serde_json::from_str(&out.stdout).unwrap() {
            Value::Array(items) => items,
            other => panic!("expected a JSON array, got {other}"),
        }
    }

    /// The live value of a KV key, read through `maand cat kv get`.
    pub fn kv(&self, ns: &str, key: &str) -> Option<String> {
        let out = self.maand(&["cat", "kv", "get", ns, key, "--json"]);
        if out.code != 0 {
            return None;
        }
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        Some(v["value"].as_str().unwrap().to_string())
    }

    /// The live value of a KV key, decrypted (`maand cat kv get --reveal`).
    pub fn kv_revealed(&self, ns: &str, key: &str) -> Option<String> {
        let out = self.maand(&["cat", "kv", "get", ns, key, "--reveal", "--json"]);
        if out.code != 0 {
            return None;
        }
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        Some(v["value"].as_str().unwrap().to_string())
    }

    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path("data/maand.db")).unwrap()
    }

    /// Every row of every table, as text: to prove a failed command changed nothing.
    pub fn dump(&self) -> String {
        let conn = self.db();
        let mut tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        tables.sort();
        let mut out = String::new();
        for t in tables {
            let mut stmt = conn.prepare(&format!("SELECT * FROM {t}")).unwrap();
            let n = stmt.column_count();
            let mut rows: Vec<String> = stmt
                .query_map([], |r| {
                    let mut cells = Vec::new();
                    for i in 0..n {
                        let v: rusqlite::types::Value = r.get(i)?;
                        cells.push(format!("{v:?}"));
                    }
                    Ok(cells.join("|"))
                })
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            rows.sort();
            out.push_str(&format!("== {t}\n{}\n", rows.join("\n")));
        }
        out
    }
}

/// Three workers with labels, memory and cpu.
pub fn three_workers() -> Value {
    serde_json::json!([
        {"host": "10.0.0.1", "labels": ["web", "DB"], "memory": "4 gb", "cpu": "4000 mhz", "tags": {"Zone": "A"}},
        {"host": "10.0.0.2", "labels": ["web"], "memory": "4096 mb", "cpu": "4 ghz"},
        {"host": "10.0.0.3", "labels": ["db", "worker"], "memory": "4 gb", "cpu": "4000", "hostname": "db3"}
    ])
}
