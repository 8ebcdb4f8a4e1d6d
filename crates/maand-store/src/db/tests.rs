//! Tests of the catalog schema, migrations and the schema gate.

use super::*;

/// internals.md §3.1, written out independently of the TABLES constant:
/// (table, [(column, declared type, not null, default)], primary key columns in order).
type ColumnSpec = (&'static str, &'static str, bool, Option<&'static str>);
const SPEC_TABLES: &[(&str, &[ColumnSpec], &[&str])] = &[
    ("schema_version", &[("id", "INTEGER", false, None), ("version", "INTEGER", true, None)], &["id"]),
    ("bucket", &[("bucket_id", "TEXT", false, None), ("update_seq", "INT", false, None)], &[]),
    (
        "worker",
        &[
            ("worker_id", "TEXT", false, None),
            ("worker_ip", "TEXT", false, None),
            ("available_memory_mb", "TEXT", false, None),
            ("available_cpu_mhz", "TEXT", false, None),
            ("position", "INT", false, None),
        ],
        &["worker_ip"],
    ),
    ("worker_labels", &[("worker_id", "TEXT", false, None), ("label", "TEXT", false, None)], &[]),
    (
        "worker_tags",
        &[("worker_id", "TEXT", false, None), ("key", "TEXT", false, None), ("value", "TEXT", false, None)],
        &[],
    ),
    (
        "allocations",
        &[
            ("alloc_id", "TEXT", false, None),
            ("worker_ip", "TEXT", false, None),
            ("job", "TEXT", false, None),
            ("disabled", "INT", false, None),
            ("removed", "INT", false, None),
            ("deployment_seq", "INT", false, None),
            ("new_version", "TEXT", false, None),
        ],
        &["worker_ip", "job"],
    ),
    (
        "job",
        &[
            ("job_id", "TEXT", false, None),
            ("name", "TEXT", false, None),
            ("version", "TEXT", false, None),
            ("min_memory_mb", "TEXT", false, None),
            ("max_memory_mb", "TEXT", false, None),
            ("current_memory_mb", "TEXT", false, None),
            ("current_memory_source", "TEXT", true, Some("'manifest'")),
            ("min_cpu_mhz", "TEXT", false, None),
            ("max_cpu_mhz", "TEXT", false, None),
            ("current_cpu_mhz", "TEXT", false, None),
            ("current_cpu_source", "TEXT", true, Some("'manifest'")),
            ("max_concurrent_upgrades", "INT", true, Some("1")),
            ("max_concurrent_starts", "INT", true, Some("0")),
            ("restart_policy", "TEXT", true, Some("'always'")),
            ("restart_globs", "TEXT", true, Some("'[]'")),
            ("health_check", "TEXT", false, None),
        ],
        &["name"],
    ),
    ("job_selectors", &[("job_id", "TEXT", false, None), ("selector", "TEXT", false, None)], &[]),
    ("job_ports", &[("job_id", "TEXT", false, None), ("name", "TEXT", false, None), ("port", "INT", false, None)], &[]),
    (
        "job_certs",
        &[
            ("job_id", "TEXT", false, None),
            ("name", "TEXT", false, None),
            ("pkcs8", "INT", false, None),
            ("one", "INT", false, None),
            ("subject", "TEXT", false, None),
        ],
        &[],
    ),
    (
        "job_files",
        &[
            ("job_id", "TEXT", false, None),
            ("path", "TEXT", false, None),
            ("content", "BLOB", false, None),
            ("isdir", "BOOL", false, None),
        ],
        &[],
    ),
    (
        "job_commands",
        &[
            ("job_id", "TEXT", false, None),
            ("job", "TEXT", false, None),
            ("name", "TEXT", false, None),
            ("executed_on", "TEXT", false, None),
            ("demand_job", "TEXT", false, None),
            ("demand_command", "TEXT", false, None),
            ("demand_config", "TEXT", false, None),
        ],
        &[],
    ),
    (
        "key_value",
        &[
            ("key", "TEXT", false, None),
            ("value", "TEXT", false, None),
            ("namespace", "TEXT", false, None),
            ("version", "INT", false, None),
            ("ttl", "TEXT", false, None),
            ("created_date", "TEXT", false, None),
            ("deleted", "INT", false, None),
        ],
        &[],
    ),
    (
        "hash",
        &[
            ("namespace", "TEXT", false, None),
            ("key", "TEXT", false, None),
            ("current_hash", "TEXT", false, None),
            ("previous_hash", "TEXT", false, None),
            ("current_files", "TEXT", false, None),
            ("previous_files", "TEXT", false, None),
            ("current_version", "TEXT", false, None),
        ],
        &["namespace", "key"],
    ),
];

const SPEC_VIEWS: &[(&str, &[&str])] = &[
    ("cat_allocations", &["alloc_id", "worker_ip", "job", "disabled", "removed", "new_version", "zone"]),
    (
        "cat_jobs",
        &[
            "job_id",
            "name",
            "version",
            "disabled",
            "deployment_seq",
            "selectors",
            "current_memory_mb",
            "current_memory_source",
            "current_cpu_mhz",
            "current_cpu_source",
        ],
    ),
    ("cat_job_commands", &["job", "command_name", "executed_on", "demand_job", "demand_command", "demand_config"]),
    ("cat_kv", &["namespace", "key", "value", "version", "ttl", "created_date", "deleted"]),
    (
        "cat_workers",
        &["worker_id", "worker_ip", "available_memory_mb", "available_cpu_mhz", "position", "labels", "zone"],
    ),
    (
        "cat_deployments",
        &[
            "alloc_id",
            "worker_ip",
            "job",
            "disabled",
            "removed",
            "current_hash",
            "previous_hash",
            "current_version",
            "new_version",
        ],
    ),
];

struct Bucket {
    _dir: tempfile::TempDir,
    paths: BucketPaths,
}

fn bucket() -> Bucket {
    let dir = tempfile::tempdir().unwrap();
    let paths = BucketPaths::new(dir.path());
    std::fs::create_dir_all(paths.data_dir()).unwrap();
    Bucket { _dir: dir, paths }
}

fn migrated() -> (Bucket, Connection) {
    let b = bucket();
    let conn = open(&b.paths).unwrap();
    assert_eq!(migrate(&conn).unwrap(), MigrateOutcome::Created);
    (b, conn)
}

/// (name, type, notnull, default, pk position) of every column.
fn table_info(conn: &Connection, name: &str) -> Vec<(String, String, bool, Option<String>, i64)> {
    let mut stmt = conn.prepare("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?1)").unwrap();
    stmt.query_map([name], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0, r.get(3)?, r.get(4)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

fn schema_dump(conn: &Connection) -> Vec<(String, String, Option<String>)> {
    let mut stmt = conn.prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().collect::<rusqlite::Result<_>>().unwrap()
}

fn version(conn: &Connection) -> i64 {
    conn.query_row("SELECT version FROM schema_version WHERE id = 1", [], |r| r.get(0)).unwrap()
}

#[test]
fn fresh_catalog_has_every_table_column_and_view_of_the_spec() {
    let (_b, conn) = migrated();
    for (table, columns, pk) in SPEC_TABLES {
        let info = table_info(&conn, table);
        let names: Vec<&str> = info.iter().map(|c| c.0.as_str()).collect();
        let want: Vec<&str> = columns.iter().map(|c| c.0).collect();
        assert_eq!(names, want, "columns of {table}");
        for ((name, ty, notnull, default), got) in columns.iter().zip(&info) {
            assert_eq!(got.1, *ty, "{table}.{name} type");
            assert_eq!(got.2, *notnull, "{table}.{name} not null");
            assert_eq!(got.3.as_deref(), *default, "{table}.{name} default");
        }
        let mut pk_cols: Vec<(i64, &str)> = info.iter().filter(|c| c.4 > 0).map(|c| (c.4, c.0.as_str())).collect();
        pk_cols.sort();
        let pk_cols: Vec<&str> = pk_cols.into_iter().map(|(_, n)| n).collect();
        assert_eq!(pk_cols, pk.to_vec(), "primary key of {table}");
    }
    for (view, columns) in SPEC_VIEWS {
        let kind: String =
            conn.query_row("SELECT type FROM sqlite_master WHERE name = ?1", [view], |r| r.get(0)).unwrap();
        assert_eq!(kind, "view");
        let names: Vec<String> = table_info(&conn, view).into_iter().map(|c| c.0).collect();
        assert_eq!(names, columns.to_vec(), "columns of {view}");
    }
    assert_eq!(version(&conn), 1);
    assert!(table_info(&conn, "key_value").len() == 7);
    let index: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'key_value'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(index >= 1, "key_value has a lookup index");
    check_schema(&conn).unwrap();
}

#[test]
fn open_sets_wal_and_busy_timeout() {
    let (b, conn) = migrated();
    drop(conn);
    let conn = open_existing(&b.paths).unwrap();
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let timeout: i64 = conn.query_row("PRAGMA busy_timeout", [], |r| r.get(0)).unwrap();
    assert_eq!(timeout, 5000);
    let fk: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
    assert_eq!(fk, 0);
}

#[test]
fn a_new_catalog_and_its_wal_files_are_private() {
    use crate::file_modes::mode_of;
    let (b, conn) = migrated();
    conn.execute("INSERT INTO bucket(bucket_id, update_seq) VALUES ('b', 0)", []).unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let p = b.paths.data_dir().join(format!("maand.db{suffix}"));
        assert_eq!(mode_of(&p).unwrap(), 0o600, "{}", p.display());
    }
}

#[test]
fn open_existing_without_database_is_not_initialized() {
    let b = bucket();
    let e = open_existing(&b.paths).unwrap_err();
    assert!(e.is(ErrorKind::NotInitialized));
    assert_eq!(e.to_string(), "maand is not initialized: run maand init in the bucket directory");
    assert!(!b.paths.db().exists(), "open_existing must not create the file");
}

#[test]
fn migrate_is_idempotent_and_keeps_data() {
    let (_b, conn) = migrated();
    conn.execute("INSERT INTO bucket(bucket_id, update_seq) VALUES ('b1', 3)", []).unwrap();
    let before = schema_dump(&conn);
    assert_eq!(migrate(&conn).unwrap(), MigrateOutcome::Upgraded);
    assert_eq!(migrate(&conn).unwrap(), MigrateOutcome::Upgraded);
    assert_eq!(schema_dump(&conn), before);
    let seq: i64 = conn.query_row("SELECT update_seq FROM bucket WHERE bucket_id = 'b1'", [], |r| r.get(0)).unwrap();
    assert_eq!(seq, 3);
    check_schema(&conn).unwrap();
}

#[test]
fn newer_schema_is_refused_and_left_untouched() {
    let (_b, conn) = migrated();
    conn.execute("UPDATE schema_version SET version = 2", []).unwrap();
    conn.execute_batch("DROP VIEW cat_kv").unwrap();
    let before = schema_dump(&conn);
    let e = migrate(&conn).unwrap_err();
    assert!(e.is(ErrorKind::SchemaTooNew));
    assert!(e.to_string().ends_with("upgrade the maand binary"), "{e}");
    assert_eq!(schema_dump(&conn), before, "nothing recreated");
    assert_eq!(version(&conn), 2, "never downgraded");
    let e = check_schema(&conn).unwrap_err();
    assert!(e.is(ErrorKind::SchemaTooNew), "{e}");
}

#[test]
fn newer_schema_alone_is_refused_before_creating_tables() {
    let b = bucket();
    let conn = open(&b.paths).unwrap();
    conn.execute_batch("CREATE TABLE schema_version(id INTEGER PRIMARY KEY, version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1, 5);")
        .unwrap();
    assert!(migrate(&conn).unwrap_err().is(ErrorKind::SchemaTooNew));
    assert_eq!(schema_dump(&conn).len(), 1, "only schema_version exists");
}

#[test]
fn check_schema_requires_every_view_and_column() {
    let (_b, conn) = migrated();
    conn.execute_batch("DROP VIEW cat_kv").unwrap();
    let e = check_schema(&conn).unwrap_err();
    assert!(e.is(ErrorKind::SchemaUpgradeRequired));
    assert_eq!(
        e.to_string(),
        "database schema upgrade required: run maand init in the bucket directory (view cat_kv is missing)"
    );
    migrate(&conn).unwrap();
    check_schema(&conn).unwrap();

    conn.execute_batch("DROP VIEW cat_deployments; ALTER TABLE hash DROP COLUMN current_files").unwrap();
    let e = check_schema(&conn).unwrap_err();
    assert!(e.is(ErrorKind::SchemaUpgradeRequired));
    assert!(e.to_string().contains("(table hash has no column current_files)"), "{e}");
    migrate(&conn).unwrap();
    check_schema(&conn).unwrap();
}

#[test]
fn check_schema_refuses_older_or_unversioned_catalogs() {
    let (_b, conn) = migrated();
    conn.execute("UPDATE schema_version SET version = 0", []).unwrap();
    let e = check_schema(&conn).unwrap_err();
    assert!(e.is(ErrorKind::SchemaUpgradeRequired));
    assert!(e.to_string().contains("schema version 0"), "{e}");
    conn.execute("DELETE FROM schema_version", []).unwrap();
    assert!(check_schema(&conn).unwrap_err().is(ErrorKind::SchemaUpgradeRequired));
    conn.execute_batch("DROP TABLE schema_version").unwrap();
    assert!(check_schema(&conn).unwrap_err().is(ErrorKind::SchemaUpgradeRequired));
    assert_eq!(migrate(&conn).unwrap(), MigrateOutcome::Upgraded);
    check_schema(&conn).unwrap();
}

#[test]
fn legacy_parallel_columns_are_renamed_keeping_values() {
    let b = bucket();
    let conn = open(&b.paths).unwrap();
    conn.execute_batch(
        "CREATE TABLE job(job_id TEXT, name TEXT, version TEXT, update_parallel_count INT, deploy_parallel_count INT, PRIMARY KEY(name));
         INSERT INTO job(job_id, name, version, update_parallel_count, deploy_parallel_count) VALUES ('id', 'api', '1.0', 3, 2);",
    )
    .unwrap();
    assert_eq!(migrate(&conn).unwrap(), MigrateOutcome::Upgraded);
    let (upgrades, starts, policy): (i64, i64, String) = conn
        .query_row(
            "SELECT max_concurrent_upgrades, max_concurrent_starts, restart_policy FROM job WHERE name = 'api'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((upgrades, starts, policy.as_str()), (3, 2, "always"));
    let names: Vec<String> = table_info(&conn, "job").into_iter().map(|c| c.0).collect();
    assert!(!names.iter().any(|n| n == "update_parallel_count" || n == "deploy_parallel_count"));
    check_schema(&conn).unwrap();
}

#[test]
fn views_present_catalog_rows() {
    let (_b, conn) = migrated();
    conn.execute_batch(
        "INSERT INTO worker VALUES ('w1', '10.0.0.1', '1024', '2000', 0), ('w2', '10.0.0.2', '1024', '2000', 1);
         INSERT INTO worker_labels VALUES ('w1', 'web'), ('w1', 'db'), ('w1', 'worker'), ('w2', 'worker');
         INSERT INTO worker_tags VALUES ('w1', 'zone', 'a'), ('w1', 'rack', 'r1');
         INSERT INTO job(job_id, name, version) VALUES ('j1', 'api', '1.0'), ('j2', 'db', '2.0');
         INSERT INTO job_selectors VALUES ('j1', 'web'), ('j1', 'worker');
         INSERT INTO allocations VALUES ('a1', '10.0.0.1', 'api', 0, 0, 2, '1.0'), ('a2', '10.0.0.2', 'api', 1, 0, 2, '1.0'),
                                        ('a3', '10.0.0.1', 'db', 1, 0, 0, '2.0');
         INSERT INTO hash VALUES ('api_allocation', 'a1', 'h2', 'h1', NULL, NULL, '0.9');
         INSERT INTO job_commands VALUES ('j1', 'api', 'command_x', 'post_build', 'db', 'command_y', '{}');",
    )
    .unwrap();
    let long = "x".repeat(60);
    conn.execute(
        "INSERT INTO key_value VALUES ('k', 'old', 'ns', 1, '0', '1', 0), ('k', ?1, 'ns', 2, '0', '2', 0),
                                     ('s', 'enc:v1:abcd', 'secrets/job/api', 1, '0', '3', 0)",
        [&long],
    )
    .unwrap();

    let (labels, zone): (String, String) = conn
        .query_row("SELECT labels, zone FROM cat_workers WHERE worker_ip = '10.0.0.1'", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((labels.as_str(), zone.as_str()), ("db,web,worker", "a"));
    let zone2: String =
        conn.query_row("SELECT zone FROM cat_workers WHERE worker_ip = '10.0.0.2'", [], |r| r.get(0)).unwrap();
    assert_eq!(zone2, "");

    let zone: String =
        conn.query_row("SELECT zone FROM cat_allocations WHERE alloc_id = 'a1'", [], |r| r.get(0)).unwrap();
    assert_eq!(zone, "a");

    let jobs: Vec<(String, i64, i64, String)> = conn
        .prepare("SELECT name, disabled, deployment_seq, selectors FROM cat_jobs ORDER BY name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(jobs, vec![("api".into(), 0, 2, "web,worker".into()), ("db".into(), 1, 0, "".into())]);

    let command: String =
        conn.query_row("SELECT command_name FROM cat_job_commands WHERE job = 'api'", [], |r| r.get(0)).unwrap();
    assert_eq!(command, "command_x");

    let kv: Vec<(String, String, i64)> = conn
        .prepare("SELECT key, value, version FROM cat_kv ORDER BY namespace, key")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(kv, vec![("k".into(), format!("{}...", "x".repeat(50)), 2), ("s".into(), "[encrypted]".into(), 1)]);

    type Deployment = (String, Option<String>, Option<String>, Option<String>);
    let deployments: Vec<Deployment> = conn
        .prepare("SELECT alloc_id, current_hash, previous_hash, current_version FROM cat_deployments ORDER BY alloc_id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(deployments[0], ("a1".into(), Some("h2".into()), Some("h1".into()), Some("0.9".into())));
    assert_eq!(deployments[1], ("a2".into(), None, None, None));
    assert_eq!(deployments.len(), 3);
}

#[test]
fn extensions_gain_the_columns_an_older_maand_did_not_have() {
    let (_b, conn) = migrated();
    conn.execute_batch(
        "DROP TABLE maand_job_options;
         CREATE TABLE maand_job_options(name TEXT, remote_timeout_seconds INT, PRIMARY KEY(name));
         INSERT INTO maand_job_options(name, remote_timeout_seconds) VALUES ('api', 60);",
    )
    .unwrap();
    ensure_extensions(&conn).unwrap();
    let (timeout, rollback): (i64, i64) = conn
        .query_row("SELECT remote_timeout_seconds, rollback_on_failure FROM maand_job_options", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((timeout, rollback), (60, 0), "kept, and the new option off");
    let before = schema_dump(&conn);
    ensure_extensions(&conn).unwrap();
    assert_eq!(schema_dump(&conn), before, "idempotent");
}
