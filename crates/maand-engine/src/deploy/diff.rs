//! `deploy --dry-run --diff`: per allocation, unified diffs of the files a rollout changes, the
//! last promoted release (kept in the catalog) against what is staged now. Secret values are
//! masked on both sides (templates that read one are kept and staged a second time rendered with
//! every secret masked), private keys are never shown, binary and large files are summarised.

use super::stage::masked_job_dir;
use super::staged_tree::shipped_job_dir;
use maand_core::rollout::FileChanges;
use maand_core::Result;
use maand_store::catalog::{self, AllocationRelease};
use maand_store::secrets::SecretKey;
use rusqlite::Connection;
use serde::Serialize;
use std::path::Path;

/// Files larger than this are summarised, not diffed.
const MAX_DIFF_BYTES: usize = 1 << 20;
/// Lines of context around each change.
const CONTEXT_LINES: usize = 3;

/// One file's change, with its diff or why there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileDiff {
    pub path: String,
    /// "added" | "changed" | "removed"
    pub change: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Where both sides of a diff come from.
pub struct DiffSource<'a> {
    pub conn: &'a Connection,
    pub key: Option<&'a SecretKey>,
    pub staging_root: &'a Path,
}

/// One allocation's staged files against its last promoted release.
pub struct AllocationSides<'a> {
    pub job: &'a str,
    pub alloc_id: &'a str,
    pub worker_ip: &'a str,
}

impl DiffSource<'_> {
    /// The diffs of every path in `changes`, in the order added, changed, removed.
    pub fn diffs(&self, a: &AllocationSides<'_>, changes: &FileChanges) -> Result<Vec<FileDiff>> {
        let release = match self.key {
            Some(_) => catalog::allocation_release(self.conn, a.job, a.alloc_id, None)?,
            None => None,
        };
        let mut out = Vec::new();
        let kinds = [("added", &changes.added), ("changed", &changes.changed), ("removed", &changes.removed)];
        for (change, paths) in kinds {
            for path in paths {
                let old = if change == "added" { Side::Absent } else { self.kept(release.as_ref(), path)? };
                let new = if change == "removed" { Side::Absent } else { self.staged(a, path)? };
                out.push(file_diff(path, change, &old, &new));
            }
        }
        Ok(out)
    }

    fn kept(&self, release: Option<&AllocationRelease>, path: &str) -> Result<Side> {
        let (Some(key), Some(file)) = (self.key, release.and_then(|r| r.files.get(path))) else {
            return Ok(Side::NotKept);
        };
        let digest = file.masked.as_deref().unwrap_or(&file.blob);
        Ok(Side::Content(catalog::release_content(self.conn, key, digest)?))
    }

    fn staged(&self, a: &AllocationSides<'_>, path: &str) -> Result<Side> {
        let masked = masked_job_dir(self.staging_root, a.worker_ip, a.job).join(path);
        let p =
            if masked.is_file() { masked } else { shipped_job_dir(self.staging_root, a.worker_ip, a.job).join(path) };
        std::fs::read(&p).map(Side::Content).map_err(|e| super::stage::io(&p, e))
    }
}

/// One side of a file's diff.
enum Side {
    Absent,
    /// Changed or removed, but the promoted content was not kept (promoted before releases were
    /// kept, or pruned).
    NotKept,
    Content(Vec<u8>),
}

fn file_diff(path: &str, change: &'static str, old: &Side, new: &Side) -> FileDiff {
    let summary = |note: String| FileDiff { path: path.to_string(), change, diff: None, note: Some(note) };
    if is_private_key(path) {
        return summary("private key, not shown".into());
    }
    let text = |s: &Side| -> Option<Result<String, usize>> {
        match s {
            Side::Absent => Some(Ok(String::new())),
            Side::NotKept => None,
            Side::Content(bytes) if bytes.len() > MAX_DIFF_BYTES || bytes.contains(&0) => Some(Err(bytes.len())),
            Side::Content(bytes) => Some(String::from_utf8(bytes.clone()).map_err(|e| e.as_bytes().len())),
        }
    };
    let size = |s: &Side| match s {
        Side::Content(b) => format!("{} bytes", b.len()),
        Side::Absent => "none".into(),
        Side::NotKept => "?".into(),
    };
    match (text(old), text(new)) {
        (None, _) => {
            summary("the promoted content was not kept (promoted before releases were kept, or pruned)".into())
        }
        (Some(Ok(a)), Some(Ok(b))) if a == b => summary("only secret values differ".into()),
        (Some(Ok(a)), Some(Ok(b))) => {
            let diff = similar::TextDiff::from_lines(&a, &b)
                .unified_diff()
                .context_radius(CONTEXT_LINES)
                .header(&format!("a/{path}"), &format!("b/{path}"))
                .to_string();
            FileDiff { path: path.to_string(), change, diff: Some(diff), note: None }
        }
        _ => summary(format!("binary or large file: {} -> {}", size(old), size(new))),
    }
}

/// Private keys (`certs/<name>.key`) are never shown, not even masked.
fn is_private_key(path: &str) -> bool {
    path.starts_with("certs/") && path.ends_with(".key")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(s: &str) -> Side {
        Side::Content(s.as_bytes().to_vec())
    }

    #[test]
    fn text_files_get_a_unified_diff() {
        let d = file_diff("app.conf", "changed", &content("a\nb\nc\n"), &content("a\nB\nc\n"));
        let diff = d.diff.unwrap();
        assert!(diff.contains("--- a/app.conf\n+++ b/app.conf\n"), "{diff}");
        assert!(diff.contains("-b\n+B\n"), "{diff}");
        let added = file_diff("new", "added", &Side::Absent, &content("x\n"));
        assert!(added.diff.unwrap().contains("+x\n"));
    }

    #[test]
    fn keys_binaries_and_unkept_contents_are_summarised() {
        let key = file_diff("certs/tls.key", "changed", &content("k1"), &content("k2"));
        assert_eq!(key.note.as_deref(), Some("private key, not shown"));
        assert!(key.diff.is_none());
        let bin = file_diff("bin/x", "changed", &Side::Content(vec![0, 1]), &Side::Content(vec![0, 1, 2]));
        assert_eq!(bin.note.as_deref(), Some("binary or large file: 2 bytes -> 3 bytes"));
        let unkept = file_diff("a", "changed", &Side::NotKept, &content("x"));
        assert!(unkept.note.unwrap().contains("not kept"));
        let same = file_diff("a", "changed", &content("pw=********\n"), &content("pw=********\n"));
        assert_eq!(same.note.as_deref(), Some("only secret values differ"));
    }
}
