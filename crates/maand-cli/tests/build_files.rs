//! `maand build`: job files stored in the catalog and job-directory validation.
#![allow(clippy::unwrap_used)]

mod common;
use common::{three_workers, TestBucket};
use serde_json::json;

fn stored_paths(b: &TestBucket, job: &str) -> Vec<String> {
    let conn = b.db();
    let mut stmt = conn
        .prepare("SELECT path FROM job_files f JOIN job j ON j.job_id = f.job_id WHERE j.name = ?1 ORDER BY path")
        .unwrap();
    stmt.query_map([job], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect()
}

#[test]
fn job_files_are_stored_without_virtualenvs_and_caches() {
    let b = TestBucket::new();
    b.workers(three_workers());
    b.job("api", json!({"selectors": ["web"]}));
    b.write("workspace/jobs/api/conf/app.conf.tpl", "port={{ get \"maand/bucket\" \"x\" }}\n");
    b.write("workspace/jobs/api/.env.tpl", "A=1\n");
    b.write("workspace/jobs/api/_modules/.venv/bin/python3", "x");
    b.write("workspace/jobs/api/_modules/helper.py", "x = 1\n");
    b.write("workspace/jobs/api/_modules/__pycache__/helper.pyc", "x");
    b.write("workspace/jobs/api/node_modules/a/index.js", "x");
    b.build().ok();
    assert_eq!(
        stored_paths(&b, "api"),
        [
            "api/.env.tpl",
            "api/Makefile",
            "api/_modules",
            "api/_modules/helper.py",
            "api/conf",
            "api/conf/app.conf.tpl",
            "api/manifest.json",
        ]
    );
    let content: Vec<u8> =
        b.db().query_row("SELECT content FROM job_files WHERE path = 'api/.env.tpl'", [], |r| r.get(0)).unwrap();
    assert_eq!(content, b"A=1\n");
}

#[test]
fn job_directory_rules() {
    let b = TestBucket::new();
    b.workers(three_workers());
    b.job("api", json!({"selectors": ["web"]}));
    b.write("workspace/jobs/api/data/x", "1");
    b.build().fails_with("job api, data directory is reserved");
    b.remove("workspace/jobs/api/data");
    b.remove("workspace/jobs/api/Makefile");
    b.build().fails_with("Makefile or Makefile.tpl not found");
    b.write("workspace/jobs/api/Makefile.tpl", "start:\n");
    b.build().ok();
    b.job("api", json!({"selectors": ["web"], "commands": {"command_hello": {"executed_on": ["cli"]}}}));
    b.build().fails_with("job command file not found");
    b.write("workspace/jobs/api/_modules/command_hello.py", "print(1)\n");
    b.build().ok();
    b.write("workspace/jobs/api/_modules/command_hello.js", "console.log(1)\n");
    b.build().fails_with("multiple implementations");
}
