//! `job` rows and their children: selectors, ports, certs, commands, files.

use super::db_err;
use maand_core::Result;
use rusqlite::{params, Connection, OptionalExtension};

#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub job_id: String,
    pub name: String,
    pub version: String,
    pub min_memory_mb: String,
    pub max_memory_mb: String,
    pub current_memory_mb: String,
    pub current_memory_source: String,
    pub min_cpu_mhz: String,
    pub max_cpu_mhz: String,
    pub current_cpu_mhz: String,
    pub current_cpu_source: String,
    pub max_concurrent_upgrades: i64,
    pub max_concurrent_starts: i64,
    pub restart_policy: String,
    pub restart_globs: String,
    pub health_check: Option<String>,
    /// Our extension (table `maand_job_options`): per-job remote step timeout.
    pub remote_timeout_seconds: Option<i64>,
    /// Our extension (table `maand_job_options`): a failed batch rolls the run back.
    pub rollback_on_failure: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRow {
    pub job: String,
    pub name: String,
    pub port: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRow {
    pub job: String,
    pub name: String,
    pub executed_on: String,
    pub demand_job: String,
    pub demand_command: String,
    pub demand_config: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRow {
    pub name: String,
    pub pkcs8: bool,
    pub one: bool,
    pub subject: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFile {
    /// Job-relative path (the catalog stores `<job>/<path>`).
    pub path: String,
    pub content: Vec<u8>,
    pub isdir: bool,
    /// Permission bits of the workspace file (our table `maand_job_file_modes`); `None` for
    /// directories, links and files built by the Go maand.
    pub mode: Option<u32>,
    /// The target of a symbolic link that stays inside the job directory (stored in our table
    /// `maand_job_links`, staged and shipped as a link; `content` is empty).
    pub link: Option<String>,
}

impl JobFile {
    pub fn file(path: impl Into<String>, content: impl Into<Vec<u8>>) -> JobFile {
        JobFile { path: path.into(), content: content.into(), isdir: false, mode: None, link: None }
    }

    pub fn dir(path: impl Into<String>) -> JobFile {
        JobFile { path: path.into(), content: Vec::new(), isdir: true, mode: None, link: None }
    }

    pub fn link(path: impl Into<String>, target: impl Into<String>) -> JobFile {
        JobFile { path: path.into(), content: Vec::new(), isdir: false, mode: None, link: Some(target.into()) }
    }

    /// This file with its permission bits.
    pub fn with_mode(mut self, mode: u32) -> JobFile {
        self.mode = Some(mode);
        self
    }
}

/// Everything the build writes for one job.
pub struct JobWrite<'a> {
    pub row: &'a JobRow,
    pub selectors: &'a [String],
    pub ports: &'a [(String, i64)],
    pub certs: &'a [CertRow],
    pub commands: &'a [CommandRow],
    pub files: &'a [JobFile],
}

const JOB_COLUMNS: &str =
    "j.job_id, j.name, ifnull(j.version,''), ifnull(j.min_memory_mb,'0'), ifnull(j.max_memory_mb,'0'),
    ifnull(j.current_memory_mb,'0'), j.current_memory_source, ifnull(j.min_cpu_mhz,'0'), ifnull(j.max_cpu_mhz,'0'),
    ifnull(j.current_cpu_mhz,'0'), j.current_cpu_source, j.max_concurrent_upgrades, j.max_concurrent_starts,
    j.restart_policy, j.restart_globs, j.health_check, o.remote_timeout_seconds, ifnull(o.rollback_on_failure, 0)";

fn job_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        job_id: r.get(0)?,
        name: r.get(1)?,
        version: r.get(2)?,
        min_memory_mb: r.get(3)?,
        max_memory_mb: r.get(4)?,
        current_memory_mb: r.get(5)?,
        current_memory_source: r.get(6)?,
        min_cpu_mhz: r.get(7)?,
        max_cpu_mhz: r.get(8)?,
        current_cpu_mhz: r.get(9)?,
        current_cpu_source: r.get(10)?,
        max_concurrent_upgrades: r.get(11)?,
        max_concurrent_starts: r.get(12)?,
        restart_policy: r.get(13)?,
        restart_globs: r.get(14)?,
        health_check: r.get(15)?,
        remote_timeout_seconds: r.get(16)?,
        rollback_on_failure: r.get(17)?,
    })
}

/// All jobs sorted by name.
pub fn load_jobs(conn: &Connection) -> Result<Vec<JobRow>> {
    let sql =
        format!("SELECT {JOB_COLUMNS} FROM job j LEFT JOIN maand_job_options o ON o.name = j.name ORDER BY j.name");
    let mut stmt = conn.prepare(&sql).map_err(db_err("read jobs"))?;
    let rows = stmt.query_map([], job_from_row).map_err(db_err("read jobs"))?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_err("read jobs"))
}

pub fn load_job_names(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM job ORDER BY name").map_err(db_err("read job names"))?;
    let rows = stmt.query_map([], |r| r.get(0)).map_err(db_err("read job names"))?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_err("read job names"))
}

/// Every port assignment (job, name, port), sorted by job then name.
pub fn load_job_ports(conn: &Connection) -> Result<Vec<PortRow>> {
    let mut stmt = conn
        .prepare(
            "SELECT j.name, p.name, p.port FROM job_ports p JOIN job j ON j.job_id = p.job_id ORDER BY j.name, p.name",
        )
        .map_err(db_err("read job ports"))?;
    let rows = stmt
        .query_map([], |r| Ok(PortRow { job: r.get(0)?, name: r.get(1)?, port: r.get(2)? }))
        .map_err(db_err("read job ports"))?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_err("read job ports"))
}

/// Every command row, sorted by job, name, event.
pub fn load_job_commands(conn: &Connection) -> Result<Vec<CommandRow>> {
    let mut stmt = conn
        .prepare(
            "SELECT job, name, executed_on, ifnull(demand_job,''), ifnull(demand_command,''), ifnull(demand_config,'')
             FROM job_commands ORDER BY job, name, executed_on",
        )
        .map_err(db_err("read job commands"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok(CommandRow {
                job: r.get(0)?,
                name: r.get(1)?,
                executed_on: r.get(2)?,
                demand_job: r.get(3)?,
                demand_command: r.get(4)?,
                demand_config: r.get(5)?,
            })
        })
        .map_err(db_err("read job commands"))?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_err("read job commands"))
}

/// The stored files and links of one job, paths relative to the job directory, sorted.
pub fn load_job_files(conn: &Connection, job: &str) -> Result<Vec<JobFile>> {
    let job_id: Option<String> = conn
        .query_row("SELECT job_id FROM job WHERE name = ?1", [job], |r| r.get(0))
        .optional()
        .map_err(db_err("read job id"))?;
    let Some(job_id) = job_id else { return Ok(Vec::new()) };
    let prefix = format!("{job}/");
    let relative = |path: String| path.strip_prefix(&prefix).map(str::to_string).unwrap_or(path);
    let mut stmt = conn
        .prepare(
            "SELECT f.path, f.content, f.isdir, m.mode FROM job_files f
             LEFT JOIN maand_job_file_modes m ON m.job_id = f.job_id AND m.path = f.path
             WHERE f.job_id = ?1 ORDER BY f.path",
        )
        .map_err(db_err("read job files"))?;
    let rows = stmt
        .query_map([&job_id], |r| {
            let path: String = r.get(0)?;
            let content: Option<Vec<u8>> = r.get(1)?;
            let isdir: Option<bool> = r.get(2)?;
            let mode: Option<i64> = r.get(3)?;
            Ok((path, content.unwrap_or_default(), isdir.unwrap_or(false), mode))
        })
        .map_err(db_err("read job files"))?;
    let mut files = Vec::new();
    for row in rows {
        let (path, content, isdir, mode) = row.map_err(db_err("read job files"))?;
        let mode = mode.and_then(|m| u32::try_from(m).ok()).map(|m| m & 0o777);
        files.push(JobFile { path: relative(path), content, isdir, mode, link: None });
    }
    let mut stmt =
        conn.prepare("SELECT path, target FROM maand_job_links WHERE job_id = ?1").map_err(db_err("read job links"))?;
    let rows = stmt
        .query_map([&job_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(db_err("read job links"))?;
    for row in rows {
        let (path, target) = row.map_err(db_err("read job links"))?;
        files.push(JobFile::link(relative(path), target));
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// Replace one job's row and all its child rows.
pub fn write_job(conn: &Connection, job: &JobWrite<'_>) -> Result<()> {
    let row = job.row;
    delete_job(conn, &row.name)?;
    conn.execute(
        "INSERT INTO job(job_id, name, version, min_memory_mb, max_memory_mb, current_memory_mb, current_memory_source,
             min_cpu_mhz, max_cpu_mhz, current_cpu_mhz, current_cpu_source, max_concurrent_upgrades, max_concurrent_starts,
             restart_policy, restart_globs, health_check)
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16)",
        params![
            row.job_id,
            row.name,
            row.version,
            row.min_memory_mb,
            row.max_memory_mb,
            row.current_memory_mb,
            row.current_memory_source,
            row.min_cpu_mhz,
            row.max_cpu_mhz,
            row.current_cpu_mhz,
            row.current_cpu_source,
            row.max_concurrent_upgrades,
            row.max_concurrent_starts,
            row.restart_policy,
            row.restart_globs,
            row.health_check
        ],
    )
    .map_err(db_err("write job"))?;
    if row.remote_timeout_seconds.is_some() || row.rollback_on_failure {
        conn.execute(
            "INSERT INTO maand_job_options(name, remote_timeout_seconds, rollback_on_failure) VALUES (?1, ?2, ?3)",
            params![row.name, row.remote_timeout_seconds, row.rollback_on_failure],
        )
        .map_err(db_err("write job options"))?;
    }
    for s in job.selectors {
        conn.execute("INSERT INTO job_selectors(job_id, selector) VALUES (?1,?2)", params![row.job_id, s])
            .map_err(db_err("write job selector"))?;
    }
    for (name, port) in job.ports {
        conn.execute("INSERT INTO job_ports(job_id, name, port) VALUES (?1,?2,?3)", params![row.job_id, name, port])
            .map_err(db_err("write job port"))?;
    }
    for c in job.certs {
        conn.execute(
            "INSERT INTO job_certs(job_id, name, pkcs8, one, subject) VALUES (?1,?2,?3,?4,?5)",
            params![row.job_id, c.name, c.pkcs8, c.one, c.subject],
        )
        .map_err(db_err("write job cert"))?;
    }
    for c in job.commands {
        conn.execute(
            "INSERT INTO job_commands(job_id, job, name, executed_on, demand_job, demand_command, demand_config)
             VALUES (?1,?2,?3,?4,?5,?6,?7)",
            params![row.job_id, c.job, c.name, c.executed_on, c.demand_job, c.demand_command, c.demand_config],
        )
        .map_err(db_err("write job command"))?;
    }
    let mut insert = conn
        .prepare("INSERT INTO job_files(job_id, path, content, isdir) VALUES (?1,?2,?3,?4)")
        .map_err(db_err("write job files"))?;
    let mut insert_mode = conn
        .prepare("INSERT INTO maand_job_file_modes(job_id, path, mode) VALUES (?1,?2,?3)")
        .map_err(db_err("write job file modes"))?;
    let mut insert_link = conn
        .prepare("INSERT INTO maand_job_links(job_id, path, target) VALUES (?1,?2,?3)")
        .map_err(db_err("write job links"))?;
    for f in job.files {
        let path = format!("{}/{}", row.name, f.path);
        if let Some(target) = &f.link {
            insert_link.execute(params![row.job_id, path, target]).map_err(db_err("write job link"))?;
            continue;
        }
        let content: Option<&[u8]> = if f.isdir { None } else { Some(&f.content) };
        insert.execute(params![row.job_id, path, content, f.isdir]).map_err(db_err("write job file"))?;
        if let Some(mode) = f.mode {
            insert_mode.execute(params![row.job_id, path, mode]).map_err(db_err("write job file mode"))?;
        }
    }
    Ok(())
}

/// Delete a job row and every child row (by name and by its job id).
pub fn delete_job(conn: &Connection, name: &str) -> Result<()> {
    let job_id: Option<String> = conn
        .query_row("SELECT job_id FROM job WHERE name = ?1", [name], |r| r.get(0))
        .optional()
        .map_err(db_err("read job id"))?;
    if let Some(id) = job_id {
        for table in [
            "job_selectors",
            "job_ports",
            "job_certs",
            "job_files",
            "job_commands",
            "maand_job_file_modes",
            "maand_job_links",
        ] {
            conn.execute(&format!("DELETE FROM {table} WHERE job_id = ?1"), [&id])
                .map_err(db_err("delete job rows"))?;
        }
    }
    conn.execute("DELETE FROM job_commands WHERE job = ?1", [name]).map_err(db_err("delete job commands"))?;
    conn.execute("DELETE FROM job WHERE name = ?1", [name]).map_err(db_err("delete job"))?;
    conn.execute("DELETE FROM maand_job_options WHERE name = ?1", [name]).map_err(db_err("delete job options"))?;
    Ok(())
}

/// Selectors per job name.
pub fn load_job_selectors(conn: &Connection) -> Result<std::collections::HashMap<String, Vec<String>>> {
    let mut stmt = conn
        .prepare(
            "SELECT j.name, s.selector FROM job_selectors s JOIN job j ON j.job_id = s.job_id ORDER BY j.name, s.rowid",
        )
        .map_err(db_err("read job selectors"))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(db_err("read job selectors"))?;
    let mut map: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for row in rows {
        let (job, sel) = row.map_err(db_err("read job selectors"))?;
        map.entry(job).or_default().push(sel);
    }
    Ok(map)
}
