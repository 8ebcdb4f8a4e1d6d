//! Kept releases (ours): the file set of every allocation a deploy promoted, so a plan can diff
//! against what runs and a rollback can ship it again byte for byte. A release is one run's
//! promotions of one job, numbered per job (1, 2, …); each allocation it promoted has a row
//! naming its files (path → content digest, mode, and the digest of the file with its secret
//! values masked, for templates). Contents live once per digest in `maand_release_blob`,
//! encrypted with the bucket's key: rendered files hold secrets. The digest is keyed (HMAC), so
//! it reveals nothing about a content to whoever lacks the key.

use super::db_err;
use crate::secrets::SecretKey;
use maand_core::{Error, ErrorKind, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One file of an allocation as it is promoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseFile {
    pub path: String,
    pub mode: u32,
    pub content: Vec<u8>,
    /// The file with every secret value masked (rendered templates only).
    pub masked: Option<Vec<u8>>,
}

/// One file of a kept release: digests of its contents, and its mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptFile {
    pub blob: String,
    pub mode: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masked: Option<String>,
}

/// Which release of which allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseOf {
    pub job: String,
    pub release: i64,
    pub alloc_id: String,
    pub worker_ip: String,
    pub version: String,
    pub created: i64,
}

/// What one release kept of one allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocationRelease {
    pub of: ReleaseOf,
    pub files: BTreeMap<String, KeptFile>,
}

/// One release of a job, summarised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseSummary {
    pub release: i64,
    pub created: i64,
    /// Versions of the allocations it promoted (usually one).
    pub versions: Vec<String>,
    pub workers: Vec<String>,
}

/// The number the next release of `job` gets.
pub fn next_release(conn: &Connection, job: &str) -> Result<i64> {
    conn.query_row("SELECT COALESCE(MAX(release), 0) + 1 FROM maand_release WHERE job = ?1", [job], |r| r.get(0))
        .map_err(db_err("read releases"))
}

/// Keep what `release` promoted on one allocation: its files' contents (once per content,
/// encrypted) and the row naming them. Keeping the same allocation twice in one release replaces it.
pub fn keep_release(conn: &Connection, key: &SecretKey, release: &ReleaseOf, files: &[ReleaseFile]) -> Result<()> {
    let mut kept = BTreeMap::new();
    for f in files {
        let blob = put_blob(conn, key, &f.content)?;
        let masked = f.masked.as_deref().map(|m| put_blob(conn, key, m)).transpose()?;
        kept.insert(f.path.clone(), KeptFile { blob, mode: f.mode, masked });
    }
    let json = serde_json::to_string(&kept).map_err(|e| Error::new(ErrorKind::Unexpected, e.to_string()))?;
    conn.execute(
        "INSERT INTO maand_release(job, release, alloc_id, worker_ip, version, files, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(job, release, alloc_id) DO UPDATE SET worker_ip = excluded.worker_ip,
           version = excluded.version, files = excluded.files, created = excluded.created",
        params![
            release.job,
            release.release,
            release.alloc_id,
            release.worker_ip,
            release.version,
            json,
            release.created
        ],
    )
    .map_err(db_err("keep release"))?;
    Ok(())
}

fn put_blob(conn: &Connection, key: &SecretKey, content: &[u8]) -> Result<String> {
    let digest = key.digest(content);
    let known: bool = conn
        .query_row("SELECT 1 FROM maand_release_blob WHERE digest = ?1", [&digest], |_| Ok(true))
        .optional()
        .map_err(db_err("read release contents"))?
        .unwrap_or(false);
    if !known {
        conn.execute(
            "INSERT INTO maand_release_blob(digest, sealed, size) VALUES (?1, ?2, ?3)",
            params![digest, key.seal(content)?, content.len() as i64],
        )
        .map_err(db_err("keep release contents"))?;
    }
    Ok(digest)
}

/// The content a digest names, decrypted.
pub fn release_content(conn: &Connection, key: &SecretKey, digest: &str) -> Result<Vec<u8>> {
    let sealed: Vec<u8> = conn
        .query_row("SELECT sealed FROM maand_release_blob WHERE digest = ?1", [digest], |r| r.get(0))
        .optional()
        .map_err(db_err("read release contents"))?
        .ok_or_else(|| Error::new(ErrorKind::Database, format!("kept release content {digest} is missing")))?;
    key.open(&sealed)
}

/// The latest release row of an allocation at or before `release` (None: the latest of all).
pub fn allocation_release(
    conn: &Connection,
    job: &str,
    alloc_id: &str,
    at_or_before: Option<i64>,
) -> Result<Option<AllocationRelease>> {
    conn.query_row(
        "SELECT job, release, alloc_id, worker_ip, version, files, created FROM maand_release
         WHERE job = ?1 AND alloc_id = ?2 AND release <= ?3 ORDER BY release DESC LIMIT 1",
        params![job, alloc_id, at_or_before.unwrap_or(i64::MAX)],
        row,
    )
    .optional()
    .map_err(db_err("read release"))?
    .transpose()
}

/// The numbers of the releases an allocation is in, ascending.
pub fn allocation_release_numbers(conn: &Connection, job: &str, alloc_id: &str) -> Result<Vec<i64>> {
    let mut stmt = conn
        .prepare("SELECT release FROM maand_release WHERE job = ?1 AND alloc_id = ?2 ORDER BY release")
        .map_err(db_err("read releases"))?;
    let rows = stmt.query_map([job, alloc_id], |r| r.get(0)).map_err(db_err("read releases"))?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_err("read releases"))
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<AllocationRelease>> {
    let files: String = r.get(5)?;
    let parsed =
        serde_json::from_str(&files).map_err(|e| Error::new(ErrorKind::Database, format!("kept release: {e}")));
    let of = ReleaseOf {
        job: r.get(0)?,
        release: r.get(1)?,
        alloc_id: r.get(2)?,
        worker_ip: r.get(3)?,
        version: r.get(4)?,
        created: r.get(6)?,
    };
    Ok(parsed.map(|files| AllocationRelease { of, files }))
}

/// The releases of a job, newest first.
pub fn job_releases(conn: &Connection, job: &str) -> Result<Vec<ReleaseSummary>> {
    let mut stmt = conn
        .prepare("SELECT release, MAX(created), worker_ip, version FROM maand_release WHERE job = ?1 GROUP BY release, alloc_id ORDER BY release DESC, worker_ip")
        .map_err(db_err("read releases"))?;
    let rows = stmt
        .query_map([job], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
        })
        .map_err(db_err("read releases"))?;
    let mut out: Vec<ReleaseSummary> = Vec::new();
    for r in rows {
        let (release, created, worker, version) = r.map_err(db_err("read releases"))?;
        if out.last().is_none_or(|s| s.release != release) {
            out.push(ReleaseSummary { release, created, versions: Vec::new(), workers: Vec::new() });
        }
        let s = out.last_mut().expect("pushed above");
        s.created = s.created.max(created);
        if !s.versions.contains(&version) {
            s.versions.push(version);
        }
        s.workers.push(worker);
    }
    Ok(out)
}

/// What [`prune_releases`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub rows: usize,
    pub blobs: usize,
}

/// Keep the last `keep` releases of each job (and, whatever their age, each allocation's latest
/// row: it is what runs), drop the releases of jobs no longer in the catalog, then every content
/// no remaining row names.
pub fn prune_releases(conn: &Connection, keep: usize) -> Result<Pruned> {
    let keep = i64::try_from(keep.max(1)).unwrap_or(i64::MAX);
    let mut rows = conn
        .execute("DELETE FROM maand_release WHERE job NOT IN (SELECT name FROM job)", [])
        .map_err(db_err("prune releases"))?;
    rows += conn
        .execute(
            "DELETE FROM maand_release AS r
             WHERE r.release <= (SELECT MAX(release) FROM maand_release WHERE job = r.job) - ?1
               AND r.release < (SELECT MAX(release) FROM maand_release WHERE job = r.job AND alloc_id = r.alloc_id)",
            [keep],
        )
        .map_err(db_err("prune releases"))?;
    let mut named = BTreeSet::new();
    {
        let mut stmt = conn.prepare("SELECT files FROM maand_release").map_err(db_err("read releases"))?;
        let all = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(db_err("read releases"))?;
        for files in all {
            let files: BTreeMap<String, KeptFile> = serde_json::from_str(&files.map_err(db_err("read releases"))?)
                .map_err(|e| Error::new(ErrorKind::Database, format!("kept release: {e}")))?;
            for f in files.into_values() {
                named.insert(f.blob);
                named.extend(f.masked);
            }
        }
    }
    let mut stmt = conn.prepare("SELECT digest FROM maand_release_blob").map_err(db_err("read release contents"))?;
    let digests: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .map_err(db_err("read release contents"))?
        .collect::<rusqlite::Result<_>>()
        .map_err(db_err("read release contents"))?;
    let mut blobs = 0;
    for d in digests.iter().filter(|d| !named.contains(*d)) {
        blobs += conn
            .execute("DELETE FROM maand_release_blob WHERE digest = ?1", [d])
            .map_err(db_err("prune release contents"))?;
    }
    Ok(Pruned { rows, blobs })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        crate::db::migrate(&conn).unwrap();
        conn
    }

    fn key() -> SecretKey {
        SecretKey::from_bytes([7; 32])
    }

    fn file(path: &str, content: &str) -> ReleaseFile {
        ReleaseFile { path: path.into(), mode: 0o644, content: content.as_bytes().to_vec(), masked: None }
    }

    fn keep(conn: &Connection, release: i64, alloc: &str, version: &str, files: &[ReleaseFile]) {
        let r = ReleaseOf {
            job: "web".into(),
            release,
            alloc_id: alloc.into(),
            worker_ip: format!("10.0.0.{alloc}"),
            version: version.into(),
            created: 100 + release,
        };
        keep_release(conn, &key(), &r, files).unwrap();
    }

    #[test]
    fn contents_are_kept_once_encrypted_and_read_back() {
        let conn = catalog();
        let secret = "password=hunter2";
        keep(&conn, 1, "1", "1.0", &[file("app.conf", secret), file("same.conf", secret)]);
        keep(&conn, 1, "2", "1.0", &[file("app.conf", secret)]);
        let blobs: i64 = conn.query_row("SELECT COUNT(*) FROM maand_release_blob", [], |r| r.get(0)).unwrap();
        assert_eq!(blobs, 1, "one content, kept once");
        let sealed: Vec<u8> = conn.query_row("SELECT sealed FROM maand_release_blob", [], |r| r.get(0)).unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"), "kept encrypted");
        let r = allocation_release(&conn, "web", "1", None).unwrap().unwrap();
        assert_eq!(r.files.len(), 2);
        assert_eq!(release_content(&conn, &key(), &r.files["app.conf"].blob).unwrap(), secret.as_bytes());
        assert!(!r.files["app.conf"].blob.contains("hunter2"));
    }

    #[test]
    fn an_allocation_release_is_the_latest_at_or_before() {
        let conn = catalog();
        keep(&conn, 1, "1", "1.0", &[file("a", "one")]);
        keep(&conn, 2, "2", "2.0", &[file("a", "two")]);
        keep(&conn, 3, "1", "3.0", &[file("a", "three")]);
        assert_eq!(next_release(&conn, "web").unwrap(), 4);
        assert_eq!(next_release(&conn, "db").unwrap(), 1);
        assert_eq!(allocation_release(&conn, "web", "1", None).unwrap().unwrap().of.version, "3.0");
        assert_eq!(allocation_release(&conn, "web", "1", Some(2)).unwrap().unwrap().of.version, "1.0");
        assert!(allocation_release(&conn, "web", "2", Some(1)).unwrap().is_none());
        assert_eq!(allocation_release_numbers(&conn, "web", "1").unwrap(), vec![1, 3]);
        assert!(allocation_release_numbers(&conn, "web", "9").unwrap().is_empty());
        let list = job_releases(&conn, "web").unwrap();
        assert_eq!(list.iter().map(|r| r.release).collect::<Vec<_>>(), vec![3, 2, 1]);
        assert_eq!(list[0].versions, vec!["3.0"]);
    }

    #[test]
    fn pruning_keeps_the_last_releases_and_what_runs() {
        let conn = catalog();
        conn.execute("INSERT INTO job(job_id, name) VALUES ('j', 'web')", []).unwrap();
        keep(&conn, 1, "1", "1.0", &[file("a", "one")]);
        keep(&conn, 1, "2", "1.0", &[file("a", "one-b")]);
        keep(&conn, 2, "1", "2.0", &[file("a", "two")]);
        keep(&conn, 3, "1", "3.0", &[file("a", "three")]);
        let pruned = prune_releases(&conn, 2).unwrap();
        // Release 1 of allocation 1 goes; allocation 2's only row stays (it is what runs there).
        assert_eq!(pruned, Pruned { rows: 1, blobs: 1 });
        assert!(allocation_release(&conn, "web", "1", Some(1)).unwrap().is_none());
        assert_eq!(allocation_release(&conn, "web", "2", None).unwrap().unwrap().of.version, "1.0");
        conn.execute("DELETE FROM job", []).unwrap();
        let pruned = prune_releases(&conn, 2).unwrap();
        assert_eq!(pruned.rows, 3);
        let blobs: i64 = conn.query_row("SELECT COUNT(*) FROM maand_release_blob", [], |r| r.get(0)).unwrap();
        assert_eq!(blobs, 0);
    }
}
