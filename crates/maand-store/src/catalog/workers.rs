//! `worker`, `worker_labels`, `worker_tags` rows.

use super::db_err;
use maand_core::Result;
use rusqlite::{params, Connection};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, PartialEq)]
pub struct WorkerRow {
    pub worker_id: String,
    pub worker_ip: String,
    pub available_memory_mb: String,
    pub available_cpu_mhz: String,
    pub position: i64,
    pub labels: Vec<String>,
    pub tags: BTreeMap<String, String>,
    /// The worker's own SSH port (ours, table `maand_worker_options`); None = maand.conf ssh_port.
    pub ssh_port: Option<u16>,
}

/// All workers in catalog order (position, then IP), with labels (sorted) and tags.
pub fn load_workers(conn: &Connection) -> Result<Vec<WorkerRow>> {
    let mut stmt = conn
        .prepare(
            "SELECT worker_id, worker_ip, ifnull(available_memory_mb,'0'), ifnull(available_cpu_mhz,'0'), ifnull(position,0)
             FROM worker ORDER BY position, worker_ip",
        )
        .map_err(db_err("read workers"))?;
    let mut rows: Vec<WorkerRow> = stmt
        .query_map([], |r| {
            Ok(WorkerRow {
                worker_id: r.get(0)?,
                worker_ip: r.get(1)?,
                available_memory_mb: r.get(2)?,
                available_cpu_mhz: r.get(3)?,
                position: r.get(4)?,
                labels: Vec::new(),
                tags: BTreeMap::new(),
                ssh_port: None,
            })
        })
        .map_err(db_err("read workers"))?
        .collect::<rusqlite::Result<_>>()
        .map_err(db_err("read workers"))?;
    let index: HashMap<String, usize> = rows.iter().enumerate().map(|(i, w)| (w.worker_id.clone(), i)).collect();
    let mut labels =
        conn.prepare("SELECT worker_id, label FROM worker_labels ORDER BY label").map_err(db_err("read labels"))?;
    let pairs = labels
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(db_err("read labels"))?;
    for pair in pairs {
        let (id, label) = pair.map_err(db_err("read labels"))?;
        if let Some(&i) = index.get(&id) {
            rows[i].labels.push(label);
        }
    }
    let mut tags = conn.prepare("SELECT worker_id, key, value FROM worker_tags").map_err(db_err("read tags"))?;
    let triples = tags
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
        .map_err(db_err("read tags"))?;
    for triple in triples {
        let (id, k, v) = triple.map_err(db_err("read tags"))?;
        if let Some(&i) = index.get(&id) {
            rows[i].tags.insert(k, v);
        }
    }
    let mut ports =
        conn.prepare("SELECT worker_ip, ssh_port FROM maand_worker_options").map_err(db_err("read ports"))?;
    let pairs = ports
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?)))
        .map_err(db_err("read ports"))?;
    for pair in pairs {
        let (ip, port) = pair.map_err(db_err("read ports"))?;
        if let Some(w) = rows.iter_mut().find(|w| w.worker_ip == ip) {
            w.ssh_port = port.and_then(|p| u16::try_from(p).ok());
        }
    }
    Ok(rows)
}

/// Make the worker tables hold exactly `rows`: upsert each, replace labels and tags, delete the rest.
pub fn write_workers(conn: &Connection, rows: &[WorkerRow]) -> Result<()> {
    let existing = load_workers(conn)?;
    let by_ip: HashMap<&str, &WorkerRow> = existing.iter().map(|w| (w.worker_ip.as_str(), w)).collect();
    let keep: std::collections::HashSet<&str> = rows.iter().map(|w| w.worker_ip.as_str()).collect();
    for old in &existing {
        if !keep.contains(old.worker_ip.as_str()) {
            // A worker leaving the catalog keeps its SSH port row: deploy and gc still reach it
            // to clean up.
            delete_worker(conn, old)?;
            if let Some(port) = old.ssh_port {
                conn.execute(
                    "INSERT OR REPLACE INTO maand_worker_options(worker_ip, ssh_port) VALUES (?1,?2)",
                    params![old.worker_ip, i64::from(port)],
                )
                .map_err(db_err("keep worker port"))?;
            }
        }
    }
    for row in rows {
        if by_ip.get(row.worker_ip.as_str()).is_some_and(|old| *old == row) {
            continue;
        }
        if let Some(old) = by_ip.get(row.worker_ip.as_str()) {
            delete_worker(conn, old)?;
        }
        conn.execute(
            "INSERT INTO worker(worker_id, worker_ip, available_memory_mb, available_cpu_mhz, position) VALUES (?1,?2,?3,?4,?5)",
            params![row.worker_id, row.worker_ip, row.available_memory_mb, row.available_cpu_mhz, row.position],
        )
        .map_err(db_err("write worker"))?;
        for label in &row.labels {
            conn.execute("INSERT INTO worker_labels(worker_id, label) VALUES (?1,?2)", params![row.worker_id, label])
                .map_err(db_err("write worker label"))?;
        }
        if let Some(port) = row.ssh_port {
            conn.execute(
                "INSERT OR REPLACE INTO maand_worker_options(worker_ip, ssh_port) VALUES (?1,?2)",
                params![row.worker_ip, i64::from(port)],
            )
            .map_err(db_err("write worker port"))?;
        }
        for (k, v) in &row.tags {
            conn.execute(
                "INSERT INTO worker_tags(worker_id, key, value) VALUES (?1,?2,?3)",
                params![row.worker_id, k, v],
            )
            .map_err(db_err("write worker tag"))?;
        }
    }
    Ok(())
}

fn delete_worker(conn: &Connection, row: &WorkerRow) -> Result<()> {
    conn.execute("DELETE FROM worker WHERE worker_ip = ?1", [&row.worker_ip]).map_err(db_err("delete worker"))?;
    conn.execute("DELETE FROM worker_labels WHERE worker_id = ?1", [&row.worker_id])
        .map_err(db_err("delete labels"))?;
    conn.execute("DELETE FROM worker_tags WHERE worker_id = ?1", [&row.worker_id]).map_err(db_err("delete tags"))?;
    conn.execute("DELETE FROM maand_worker_options WHERE worker_ip = ?1", [&row.worker_ip])
        .map_err(db_err("delete worker port"))?;
    Ok(())
}

/// SSH ports recorded for workers, including workers that left the catalog.
pub fn worker_ports(conn: &Connection) -> Result<HashMap<String, u16>> {
    let mut stmt =
        conn.prepare("SELECT worker_ip, ssh_port FROM maand_worker_options").map_err(db_err("read ports"))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?)))
        .map_err(db_err("read ports"))?;
    let mut out = HashMap::new();
    for row in rows {
        let (ip, port) = row.map_err(db_err("read ports"))?;
        if let Some(p) = port.and_then(|p| u16::try_from(p).ok()) {
            out.insert(ip, p);
        }
    }
    Ok(out)
}
