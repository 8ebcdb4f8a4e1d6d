//! End-to-end plans: `deploy --dry-run` / `maand plan` built from the workspace without side
//! effects, file-by-file changes with masked diffs against the kept release, `--exit-code`, and
//! releases kept encrypted — the real `maand` binary against sandbox workers.
#![allow(clippy::unwrap_used)]

mod common;
use common::cluster::{Cluster, COUNTING_MAKEFILE};
use common::jobcmd::cluster;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

const SECRET: &str = "pw-Zq81-unique-secret";

/// Job `web` on every worker: a config template reading the job's secret `password`, and a `cli`
/// job command that stores `$NEW_SECRET` as that secret.
fn web_job(c: &Cluster, template: &str) {
    let b = &c.bucket;
    b.write(
        "workspace/jobs/web/manifest.json",
        &json!({
            "version": "1.0.0", "selectors": ["app"],
            "commands": {"command_set_secret": {"executed_on": ["cli"]}}
        })
        .to_string(),
    );
    b.write("workspace/jobs/web/Makefile", COUNTING_MAKEFILE);
    b.write("workspace/jobs/web/app.conf.tpl", template);
    b.write(
        "workspace/jobs/web/_modules/command_set_secret.py",
        "import os\nimport maand\nmaand.put_job_secret(\"password\", os.environ[\"NEW_SECRET\"])\n",
    );
}

const TEMPLATE_V1: &str = "greeting = hello\npassword = {{ getSecret \"password\" }}\nport = 80\n";
const TEMPLATE_V2: &str = "greeting = hello\ndb_password = {{ getSecret \"password\" }}\nport = 80\n";

/// A deployed `web` whose template renders the secret.
fn deployed_web() -> Cluster {
    std::env::set_var("NEW_SECRET", SECRET);
    let c = cluster(2);
    web_job(&c, TEMPLATE_V1);
    c.bucket.build().ok();
    c.bucket.maand(&["job_command", "command_set_secret", "web"]).ok();
    c.deploy(&[]).ok();
    assert!(c.worker_file(0, "jobs/web/app.conf").unwrap().contains(SECRET));
    c
}

/// Files by path, with their bytes.
type Tree = BTreeMap<String, Vec<u8>>;

/// Every file under `dir` (recursively), path -> bytes.
fn tree(dir: &Path) -> Tree {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else if p.is_file() {
                out.insert(p.strip_prefix(base).unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The catalog's bytes and every worker's deployed tree.
fn state(c: &Cluster) -> (Tree, Vec<Tree>) {
    let data = tree(&c.bucket.path("data"));
    let catalog = data.into_iter().filter(|(p, _)| p.starts_with("maand.db")).collect();
    (catalog, (0..c.workers.len()).map(|i| tree(&c.worker_path(i, ""))).collect())
}

fn web_plan(plan: &Value) -> Value {
    plan["waves"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["jobs"].as_array().unwrap().clone())
        .find(|j| j["job"] == "web")
        .unwrap()
}

#[test]
fn plan_shows_masked_diffs_of_the_unbuilt_workspace_and_changes_nothing() {
    let c = deployed_web();
    // Settle the catalog files (a connection's close checkpoints its WAL), then edit the template
    // without building.
    c.bucket.maand(&["cat", "jobs"]).ok();
    web_job(&c, TEMPLATE_V2);
    let before = state(&c);

    let out = c.deploy(&["--dry-run", "--diff"]).ok();
    let text = &out.stdout;
    assert!(text.starts_with("deploy dry-run: deployment required"), "{text}");
    for i in 0..2 {
        assert!(text.contains(&c.ip(i)), "{text}");
    }
    assert!(text.contains("~ app.conf\n"), "changed file named by its rendered name:\n{text}");
    assert!(!text.contains("app.conf.tpl"), "the template source is never shipped:\n{text}");
    assert!(text.contains("-password = ********"), "old side masked:\n{text}");
    assert!(text.contains("+db_password = ********"), "new side masked:\n{text}");
    assert!(text.contains(" greeting = hello"), "context lines:\n{text}");
    assert!(!text.contains(SECRET) && !out.stderr.contains(SECRET), "the secret leaked:\n{text}\n{}", out.stderr);
    assert_eq!(text.matches("~ app.conf\n").count(), 2, "one diff per allocation:\n{text}");

    let json = c.deploy(&["--dry-run", "--diff", "--json"]).ok();
    assert!(!json.stdout.contains(SECRET));
    let plan: Value = serde_json::from_str(&json.stdout).unwrap();
    let alloc = &web_plan(&plan)["allocations"][0];
    assert_eq!(alloc["files"]["changed"], json!(["app.conf"]), "{alloc}");
    assert!(alloc["diff"][0]["diff"].as_str().unwrap().contains("+db_password = ********"), "{alloc}");

    assert_eq!(c.deploy(&["--dry-run", "--exit-code"]).code, 2, "changes pending");
    assert_eq!(c.bucket.maand(&["plan", "--exit-code"]).code, 2, "maand plan is the same plan");
    let after = state(&c);
    assert!(before.0 == after.0, "the plan changed the catalog files");
    assert!(before.1 == after.1, "the plan changed files on a worker");
    assert!(!c.bucket.path("data/.plan").exists(), "the scratch catalog is removed");

    // Deploying the workspace makes the plan empty.
    c.deploy(&["-b"]).ok();
    assert!(c.worker_file(1, "jobs/web/app.conf").unwrap().contains(&format!("db_password = {SECRET}")));
    let none = c.deploy(&["--dry-run", "--exit-code"]);
    assert_eq!(none.code, 0, "nothing pending after the deploy:\n{}", none.stdout);
}

#[test]
fn kept_releases_hold_no_plaintext_secret() {
    let c = deployed_web();
    web_job(&c, TEMPLATE_V2);
    c.deploy(&["-b"]).ok();
    let db = c.bucket.db();
    let releases: i64 = db.query_row("SELECT COUNT(DISTINCT release) FROM maand_release", [], |r| r.get(0)).unwrap();
    assert_eq!(releases, 2, "two deploys, two releases of web");
    let blobs: i64 = db.query_row("SELECT COUNT(*) FROM maand_release_blob", [], |r| r.get(0)).unwrap();
    assert!(blobs > 0);
    drop(db);
    for (path, bytes) in tree(c.bucket.root()) {
        if path.starts_with("sandbox/") {
            continue; // the workers' own disks
        }
        assert!(!bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()), "{path} holds the secret in plaintext");
    }

    // gc keeps the last `releases_kept` releases (and what runs), and the contents they name.
    let conf = c.bucket.read("maand.conf");
    c.bucket.write("maand.conf", &format!("{conf}\nreleases_kept = 1\n"));
    let out = c.bucket.maand(&["gc"]).ok();
    let said = format!("{}{}", out.stdout, out.stderr);
    // Release 1 of both allocations goes, with what only it named: the v1 template source, its
    // rendering and the rendering's masked variant.
    assert!(said.contains("2 kept release rows and 3 release contents pruned"), "{said}");
    let db = c.bucket.db();
    let left: Vec<i64> = db
        .prepare("SELECT DISTINCT release FROM maand_release WHERE job = 'web'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(left, vec![2], "only the release that runs is left");
}
