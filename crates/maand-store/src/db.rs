//! The SQLite catalog file `data/maand.db`: opening it, the schema (version 1: the tables, columns
//! and `cat_*` views of spec/internals.md §3.1, plus our extra table and indexes), migrations by
//! `maand init`, and the schema gate every other command passes first.

use crate::paths::BucketPaths;
use crate::private_files::write_private_file;
use maand_core::{Error, ErrorKind, Result};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::Path;
use std::time::Duration;

/// The catalog schema version this binary reads and writes.
pub const SCHEMA_VERSION: i64 = 1;

const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);
const INIT_HINT: &str = "run maand init in the bucket directory";

/// What `migrate` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrateOutcome {
    /// The database had no tables: a new catalog was created.
    Created,
    /// An existing catalog was brought to the current schema (possibly already current).
    Upgraded,
}

/// One catalog table: its columns (name, declaration) and table constraint.
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, &'static str)],
    primary_key: Option<&'static str>,
}

/// The Go maand's schema version 1 (internals §3.1).
const GO_TABLES: &[Table] = &[
    Table {
        name: "schema_version",
        columns: &[("id", "INTEGER PRIMARY KEY CHECK(id = 1)"), ("version", "INTEGER NOT NULL")],
        primary_key: None,
    },
    Table { name: "bucket", columns: &[("bucket_id", "TEXT"), ("update_seq", "INT")], primary_key: None },
    Table {
        name: "worker",
        columns: &[
            ("worker_id", "TEXT"),
            ("worker_ip", "TEXT"),
            ("available_memory_mb", "TEXT"),
            ("available_cpu_mhz", "TEXT"),
            ("position", "INT"),
        ],
        primary_key: Some("worker_ip"),
    },
    Table { name: "worker_labels", columns: &[("worker_id", "TEXT"), ("label", "TEXT")], primary_key: None },
    Table {
        name: "worker_tags",
        columns: &[("worker_id", "TEXT"), ("key", "TEXT"), ("value", "TEXT")],
        primary_key: None,
    },
    Table {
        name: "allocations",
        columns: &[
            ("alloc_id", "TEXT"),
            ("worker_ip", "TEXT"),
            ("job", "TEXT"),
            ("disabled", "INT"),
            ("removed", "INT"),
            ("deployment_seq", "INT"),
            ("new_version", "TEXT"),
        ],
        primary_key: Some("worker_ip, job"),
    },
    Table {
        name: "job",
        columns: &[
            ("job_id", "TEXT"),
            ("name", "TEXT"),
            ("version", "TEXT"),
            ("min_memory_mb", "TEXT"),
            ("max_memory_mb", "TEXT"),
            ("current_memory_mb", "TEXT"),
            ("current_memory_source", "TEXT NOT NULL DEFAULT 'manifest'"),
            ("min_cpu_mhz", "TEXT"),
            ("max_cpu_mhz", "TEXT"),
            ("current_cpu_mhz", "TEXT"),
            ("current_cpu_source", "TEXT NOT NULL DEFAULT 'manifest'"),
            ("max_concurrent_upgrades", "INT NOT NULL DEFAULT 1"),
            ("max_concurrent_starts", "INT NOT NULL DEFAULT 0"),
            ("restart_policy", "TEXT NOT NULL DEFAULT 'always'"),
            ("restart_globs", "TEXT NOT NULL DEFAULT '[]'"),
            ("health_check", "TEXT"),
        ],
        primary_key: Some("name"),
    },
    Table { name: "job_selectors", columns: &[("job_id", "TEXT"), ("selector", "TEXT")], primary_key: None },
    Table { name: "job_ports", columns: &[("job_id", "TEXT"), ("name", "TEXT"), ("port", "INT")], primary_key: None },
    Table {
        name: "job_certs",
        columns: &[("job_id", "TEXT"), ("name", "TEXT"), ("pkcs8", "INT"), ("one", "INT"), ("subject", "TEXT")],
        primary_key: None,
    },
    Table {
        name: "job_files",
        columns: &[("job_id", "TEXT"), ("path", "TEXT"), ("content", "BLOB"), ("isdir", "BOOL")],
        primary_key: None,
    },
    Table {
        name: "job_commands",
        columns: &[
            ("job_id", "TEXT"),
            ("job", "TEXT"),
            ("name", "TEXT"),
            ("executed_on", "TEXT"),
            ("demand_job", "TEXT"),
            ("demand_command", "TEXT"),
            ("demand_config", "TEXT"),
        ],
        primary_key: None,
    },
    Table {
        name: "key_value",
        columns: &[
            ("key", "TEXT"),
            ("value", "TEXT"),
            ("namespace", "TEXT"),
            ("version", "INT"),
            ("ttl", "TEXT"),
            ("created_date", "TEXT"),
            ("deleted", "INT"),
        ],
        primary_key: None,
    },
    Table {
        name: "hash",
        columns: &[
            ("namespace", "TEXT"),
            ("key", "TEXT"),
            ("current_hash", "TEXT"),
            ("previous_hash", "TEXT"),
            ("current_files", "TEXT"),
            ("previous_files", "TEXT"),
            ("current_version", "TEXT"),
        ],
        primary_key: Some("namespace, key"),
    },
];

/// Our extra tables (DESIGN §2 allows them). Purely additive: a catalog made by the Go maand gets
/// them on first open ([`ensure_extensions`]), so switching binaries needs no `maand init`.
const OUR_TABLES: &[Table] = &[
    // Per-job settings the Go schema has no column for.
    Table {
        name: "maand_job_options",
        columns: &[
            ("name", "TEXT"),
            ("remote_timeout_seconds", "INT"),
            ("rollback_on_failure", "INT NOT NULL DEFAULT 0"),
        ],
        primary_key: Some("name"),
    },
    // Ours: a worker's own SSH port from workers.json (DESIGN §3.1).
    Table {
        name: "maand_worker_options",
        columns: &[("worker_ip", "TEXT"), ("ssh_port", "INT")],
        primary_key: Some("worker_ip"),
    },
    // Ours: allocations maand has stopped (disabled ones are stopped once, DESIGN §3.6).
    Table {
        name: "maand_allocation_state",
        columns: &[("alloc_id", "TEXT"), ("job", "TEXT"), ("stopped", "INT")],
        primary_key: Some("alloc_id"),
    },
    // Ours: jobs whose post_deploy must run again (their rollout completed, the hook failed).
    Table {
        name: "maand_job_state",
        columns: &[("job", "TEXT"), ("post_deploy_pending", "INT")],
        primary_key: Some("job"),
    },
    // Ours: the file sets of promoted allocations, kept for diffs and rollback (releases.rs).
    Table {
        name: "maand_release",
        columns: &[
            ("job", "TEXT"),
            ("release", "INT"),
            ("alloc_id", "TEXT"),
            ("worker_ip", "TEXT"),
            ("version", "TEXT"),
            ("files", "TEXT"),
            ("created", "INT"),
        ],
        primary_key: Some("job, release, alloc_id"),
    },
    // Ours: the contents those file sets name, encrypted with the bucket's key, once per content.
    Table {
        name: "maand_release_blob",
        columns: &[("digest", "TEXT"), ("sealed", "BLOB"), ("size", "INT")],
        primary_key: Some("digest"),
    },
    // Ours: the mode of each job file in the workspace (a rendered file gets its template's).
    Table {
        name: "maand_job_file_modes",
        columns: &[("job_id", "TEXT"), ("path", "TEXT"), ("mode", "INT")],
        primary_key: Some("job_id, path"),
    },
    // Ours: symbolic links of job directories (shipped as links; `path` as in job_files).
    Table {
        name: "maand_job_links",
        columns: &[("job_id", "TEXT"), ("path", "TEXT"), ("target", "TEXT")],
        primary_key: Some("job_id, path"),
    },
    // Ours: the history of runs that changed something (`maand history`), one row per run…
    Table {
        name: "maand_runs",
        columns: &[
            ("id", "INTEGER PRIMARY KEY AUTOINCREMENT"),
            ("kind", "TEXT NOT NULL"),
            ("target", "TEXT"),
            ("argv", "TEXT NOT NULL DEFAULT '[]'"),
            ("user", "TEXT"),
            ("host", "TEXT"),
            ("pid", "INT"),
            ("started_ms", "INT NOT NULL"),
            ("finished_ms", "INT"),
            ("result", "TEXT NOT NULL"),
            ("reason", "TEXT"),
        ],
        primary_key: None,
    },
    // …and one per job the run acted on.
    Table {
        name: "maand_run_jobs",
        columns: &[
            ("run_id", "INT NOT NULL"),
            ("job", "TEXT NOT NULL"),
            ("version_from", "TEXT"),
            ("version_to", "TEXT"),
            ("allocations", "TEXT NOT NULL DEFAULT '[]'"),
            ("promoted", "TEXT NOT NULL DEFAULT '[]'"),
            ("result", "TEXT NOT NULL"),
            ("reason", "TEXT"),
        ],
        primary_key: Some("run_id, job"),
    },
];

/// Columns renamed since older Go schemas: (table, legacy name, current name).
const LEGACY_RENAMES: &[(&str, &str, &str)] = &[
    ("job", "update_parallel_count", "max_concurrent_upgrades"),
    ("job", "deploy_parallel_count", "max_concurrent_starts"),
];

/// Extra indexes (ours) that keep the catalog fast at ~10k allocations and 100k KV rows.
const INDEXES: &[(&str, &str)] = &[
    ("maand_idx_key_value_latest", "key_value(namespace, key, version)"),
    ("maand_idx_allocations_job", "allocations(job)"),
    ("maand_idx_worker_labels_worker", "worker_labels(worker_id)"),
    ("maand_idx_worker_tags_worker", "worker_tags(worker_id)"),
    ("maand_idx_job_selectors_job", "job_selectors(job_id)"),
    ("maand_idx_job_ports_job", "job_ports(job_id)"),
    ("maand_idx_job_certs_job", "job_certs(job_id)"),
    ("maand_idx_job_files_job", "job_files(job_id, path)"),
    ("maand_idx_job_commands_job", "job_commands(job)"),
    ("maand_idx_run_jobs_job", "maand_run_jobs(job)"),
];

/// One `cat_*` view: the columns every command checks, and its query. Queries stay within SQL
/// that old SQLite versions parse, so a Go maand can still open the file.
struct View {
    name: &'static str,
    columns: &'static [&'static str],
    select: &'static str,
}

const VIEWS: &[View] = &[
    View {
        name: "cat_allocations",
        columns: &["alloc_id", "worker_ip", "job", "disabled", "removed", "new_version", "zone"],
        select: "SELECT a.alloc_id AS alloc_id, a.worker_ip AS worker_ip, a.job AS job, a.disabled AS disabled,
                        a.removed AS removed, a.new_version AS new_version,
                        ifnull((SELECT t.value FROM worker_tags t WHERE t.worker_id = w.worker_id AND t.key = 'zone'), '') AS zone
                 FROM allocations a LEFT JOIN worker w ON w.worker_ip = a.worker_ip",
    },
    View {
        name: "cat_jobs",
        columns: &[
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
        select: "SELECT j.job_id AS job_id, j.name AS name, j.version AS version,
                        CASE WHEN EXISTS (SELECT 1 FROM allocations a WHERE a.job = j.name AND ifnull(a.disabled, 0) = 0)
                             THEN 0 ELSE 1 END AS disabled,
                        ifnull((SELECT max(a.deployment_seq) FROM allocations a WHERE a.job = j.name), 0) AS deployment_seq,
                        ifnull((SELECT group_concat(s.selector, ',') FROM job_selectors s WHERE s.job_id = j.job_id), '') AS selectors,
                        j.current_memory_mb AS current_memory_mb, j.current_memory_source AS current_memory_source,
                        j.current_cpu_mhz AS current_cpu_mhz, j.current_cpu_source AS current_cpu_source
                 FROM job j",
    },
    View {
        name: "cat_job_commands",
        columns: &["job", "command_name", "executed_on", "demand_job", "demand_command", "demand_config"],
        select: "SELECT c.job AS job, c.name AS command_name, c.executed_on AS executed_on, c.demand_job AS demand_job,
                        c.demand_command AS demand_command, c.demand_config AS demand_config
                 FROM job_commands c",
    },
    View {
        name: "cat_kv",
        columns: &["namespace", "key", "value", "version", "ttl", "created_date", "deleted"],
        select: "SELECT kv.namespace AS namespace, kv.key AS key,
                        CASE WHEN substr(kv.value, 1, 7) = 'enc:v1:' THEN '[encrypted]'
                             WHEN length(kv.value) > 50 THEN substr(kv.value, 1, 50) || '...'
                             ELSE kv.value END AS value,
                        kv.version AS version, kv.ttl AS ttl, kv.created_date AS created_date, kv.deleted AS deleted
                 FROM key_value kv
                 JOIN (SELECT namespace, key, max(version) AS version FROM key_value GROUP BY namespace, key) latest
                   ON latest.namespace = kv.namespace AND latest.key = kv.key AND latest.version = kv.version",
    },
    View {
        name: "cat_workers",
        columns: &["worker_id", "worker_ip", "available_memory_mb", "available_cpu_mhz", "position", "labels", "zone"],
        select: "SELECT w.worker_id AS worker_id, w.worker_ip AS worker_ip, w.available_memory_mb AS available_memory_mb,
                        w.available_cpu_mhz AS available_cpu_mhz, w.position AS position,
                        ifnull((SELECT group_concat(label, ',') FROM
                                  (SELECT l.label AS label FROM worker_labels l WHERE l.worker_id = w.worker_id ORDER BY l.label)), '') AS labels,
                        ifnull((SELECT t.value FROM worker_tags t WHERE t.worker_id = w.worker_id AND t.key = 'zone'), '') AS zone
                 FROM worker w",
    },
    View {
        name: "cat_deployments",
        columns: &[
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
        select: "SELECT a.alloc_id AS alloc_id, a.worker_ip AS worker_ip, a.job AS job, a.disabled AS disabled,
                        a.removed AS removed, h.current_hash AS current_hash, h.previous_hash AS previous_hash,
                        h.current_version AS current_version, a.new_version AS new_version
                 FROM allocations a LEFT JOIN hash h ON h.namespace = a.job || '_allocation' AND h.key = a.alloc_id",
    },
];

fn db_error(what: impl std::fmt::Display) -> impl Fn(rusqlite::Error) -> Error {
    move |e| Error::new(ErrorKind::Database, format!("{what}: {e}"))
}

/// Open (creating if missing) the catalog with the connection settings every command uses. Only
/// `maand init` should call this; everything else uses [`open_existing`]. A new catalog file is
/// created 0600 (SQLite gives its `-wal` and `-shm` files the catalog's mode).
pub fn open(paths: &BucketPaths) -> Result<Connection> {
    let path = paths.db();
    if !path.exists() {
        write_private_file(&path, b"")?;
    }
    let conn = Connection::open(&path).map_err(db_error(format!("open {}", path.display())))?;
    configure(conn, &path)
}

/// Open an existing catalog; a missing `data/maand.db` means the bucket was never initialised.
pub fn open_existing(paths: &BucketPaths) -> Result<Connection> {
    let path = paths.db();
    if !path.is_file() {
        return Err(Error::new(ErrorKind::NotInitialized, INIT_HINT));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(&path, flags).map_err(db_error(format!("open {}", path.display())))?;
    configure(conn, &path)
}

/// WAL journal, 5 s busy timeout, foreign keys off (the Go schema declares none).
fn configure(conn: Connection, path: &Path) -> Result<Connection> {
    let what = format!("configure {}", path.display());
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_error(&what))?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)).map_err(db_error(&what))?;
    conn.pragma_update(None, "foreign_keys", false).map_err(db_error(&what))?;
    Ok(conn)
}

/// Bring the catalog to schema version 1: create missing tables, rename legacy columns, add
/// missing columns, create indexes, recreate the `cat_*` views and record the version. Idempotent.
/// A catalog newer than this binary is refused and left untouched.
pub fn migrate(conn: &Connection) -> Result<MigrateOutcome> {
    if let Some(version) = stored_version(conn)? {
        if version > SCHEMA_VERSION {
            return Err(too_new(version));
        }
    }
    let fresh = user_table_count(conn)? == 0;
    let tx = conn.unchecked_transaction().map_err(db_error("begin schema migration"))?;
    for view in VIEWS {
        tx.execute_batch(&format!("DROP VIEW IF EXISTS {}", view.name))
            .map_err(db_error(format!("drop view {}", view.name)))?;
    }
    for table in GO_TABLES.iter().chain(OUR_TABLES) {
        migrate_table(&tx, table)?;
    }
    create_indexes(&tx)?;
    for view in VIEWS {
        tx.execute_batch(&format!("CREATE VIEW {} AS {}", view.name, view.select))
            .map_err(db_error(format!("create view {}", view.name)))?;
    }
    tx.execute(
        "INSERT INTO schema_version(id, version) VALUES (1, ?1) ON CONFLICT(id) DO UPDATE SET version = excluded.version",
        [SCHEMA_VERSION],
    )
    .map_err(db_error("record schema version"))?;
    tx.commit().map_err(db_error("commit schema migration"))?;
    Ok(if fresh { MigrateOutcome::Created } else { MigrateOutcome::Upgraded })
}

fn migrate_table(conn: &Connection, table: &Table) -> Result<()> {
    let mut columns: Vec<String> = table.columns.iter().map(|(name, decl)| format!("{name} {decl}")).collect();
    if let Some(pk) = table.primary_key {
        columns.push(format!("PRIMARY KEY({pk})"));
    }
    conn.execute_batch(&format!("CREATE TABLE IF NOT EXISTS {} ({})", table.name, columns.join(", ")))
        .map_err(db_error(format!("create table {}", table.name)))?;
    let mut existing = column_names(conn, table.name)?;
    for (_, legacy, current) in LEGACY_RENAMES.iter().filter(|(t, _, _)| *t == table.name) {
        if existing.iter().any(|c| c == legacy) && !existing.iter().any(|c| c == current) {
            conn.execute_batch(&format!("ALTER TABLE {} RENAME COLUMN {legacy} TO {current}", table.name))
                .map_err(db_error(format!("rename column {}.{legacy}", table.name)))?;
            existing = column_names(conn, table.name)?;
        }
    }
    for (name, decl) in table.columns {
        if !existing.iter().any(|c| c == name) {
            conn.execute_batch(&format!("ALTER TABLE {} ADD COLUMN {name} {decl}", table.name))
                .map_err(db_error(format!("add column {}.{name}", table.name)))?;
        }
    }
    Ok(())
}

/// The schema gate of every command but `init`: the catalog must be exactly version 1 with every
/// table column and view column this binary uses.
pub fn check_schema(conn: &Connection) -> Result<()> {
    match stored_version(conn)? {
        None => return Err(upgrade_required("the catalog records no schema version")),
        Some(v) if v > SCHEMA_VERSION => return Err(too_new(v)),
        Some(v) if v < SCHEMA_VERSION => {
            return Err(upgrade_required(&format!("schema version {v}, this binary needs {SCHEMA_VERSION}")))
        }
        Some(_) => {}
    }
    let tables = GO_TABLES.iter().map(|t| ("table", t.name, t.columns.iter().map(|(c, _)| *c).collect::<Vec<_>>()));
    let views = VIEWS.iter().map(|v| ("view", v.name, v.columns.to_vec()));
    for (kind, name, required) in tables.chain(views) {
        let existing = column_names(conn, name)?;
        if existing.is_empty() {
            return Err(upgrade_required(&format!("{kind} {name} is missing")));
        }
        if let Some(column) = required.iter().find(|c| !existing.iter().any(|e| e == *c)) {
            return Err(upgrade_required(&format!("{kind} {name} has no column {column}")));
        }
    }
    Ok(())
}

/// Add our extra tables, their columns and our indexes to a catalog that passed [`check_schema`]
/// but lacks some (one made by the Go maand, or by an older maand of ours). Idempotent; a no-op on
/// catalogs that have them all.
pub fn ensure_extensions(conn: &Connection) -> Result<()> {
    let lacks = |t: &Table| {
        column_names(conn, t.name).map_or(true, |have| t.columns.iter().any(|(c, _)| !have.iter().any(|h| h == c)))
    };
    let missing = OUR_TABLES.iter().any(lacks);
    if !missing {
        return Ok(());
    }
    let tx = conn.unchecked_transaction().map_err(db_error("begin catalog extension"))?;
    for table in OUR_TABLES {
        migrate_table(&tx, table)?;
    }
    create_indexes(&tx)?;
    tx.commit().map_err(db_error("commit catalog extension"))
}

fn create_indexes(conn: &Connection) -> Result<()> {
    for (name, target) in INDEXES {
        conn.execute_batch(&format!("CREATE INDEX IF NOT EXISTS {name} ON {target}"))
            .map_err(db_error(format!("create index {name}")))?;
    }
    Ok(())
}

/// The recorded schema version; None when the `schema_version` table or its row is missing.
fn stored_version(conn: &Connection) -> Result<Option<i64>> {
    let has_table: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'", [], |r| {
            r.get(0)
        })
        .map_err(db_error("read schema version"))?;
    if has_table == 0 {
        return Ok(None);
    }
    conn.query_row("SELECT version FROM schema_version WHERE id = 1", [], |r| r.get(0))
        .optional()
        .map_err(db_error("read schema version"))
}

fn user_table_count(conn: &Connection) -> Result<i64> {
    conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'", [], |r| {
        r.get(0)
    })
    .map_err(db_error("list tables"))
}

/// Column names of a table or view (empty when it does not exist).
fn column_names(conn: &Connection, name: &str) -> Result<Vec<String>> {
    let what = format!("read columns of {name}");
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)").map_err(db_error(&what))?;
    let rows = stmt.query_map([name], |r| r.get::<_, String>(0)).map_err(db_error(&what))?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_error(&what))
}

fn upgrade_required(reason: &str) -> Error {
    Error::new(ErrorKind::SchemaUpgradeRequired, format!("{INIT_HINT} ({reason})"))
}

fn too_new(version: i64) -> Error {
    Error::new(
        ErrorKind::SchemaTooNew,
        format!(
            "the catalog has schema version {version}, this binary supports {SCHEMA_VERSION}: upgrade the maand binary"
        ),
    )
}

#[cfg(test)]
mod tests;
