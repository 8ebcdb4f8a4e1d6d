//! What a deploy changes on a worker, file by file: the shipped paths added, changed and removed
//! between the promoted manifest and the staged one. Template sources (`*.tpl`) never leave the
//! CLI host and helper files are not content, so neither appears; a rendered file appears under
//! its rendered name.

use super::file_manifest::{counts_as_content, FileManifest};
use serde::Serialize;

/// Paths (job-relative, sorted) that a rollout adds, changes or removes on a worker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileChanges {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

impl FileChanges {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

/// Whether a staged path reaches the worker and counts as content.
pub fn is_shipped(path: &str) -> bool {
    counts_as_content(path) && !path.ends_with(".tpl")
}

/// The changes from `previous` (None: nothing promoted yet, every file is added) to `current`.
pub fn file_changes(previous: Option<&FileManifest>, current: &FileManifest) -> FileChanges {
    let empty = FileManifest::new();
    let previous = previous.unwrap_or(&empty);
    let mut out = FileChanges::default();
    for (path, digest) in current.iter().filter(|(p, _)| is_shipped(p)) {
        match previous.get(path) {
            None => out.added.push(path.clone()),
            Some(old) if old != digest => out.changed.push(path.clone()),
            Some(_) => {}
        }
    }
    out.removed = previous.keys().filter(|p| is_shipped(p) && !current.contains_key(*p)).cloned().collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(entries: &[(&str, &str)]) -> FileManifest {
        entries.iter().map(|(p, d)| (p.to_string(), d.to_string())).collect()
    }

    #[test]
    fn added_changed_removed_by_rendered_name() {
        let before = manifest(&[("app.conf", "a"), ("app.conf.tpl", "t"), ("old.sh", "o"), ("same", "s")]);
        let after = manifest(&[
            ("app.conf", "b"),
            ("app.conf.tpl", "t2"),
            ("new.sh", "n"),
            ("same", "s"),
            ("_modules/maand.py", "h"),
        ]);
        let c = file_changes(Some(&before), &after);
        assert_eq!(c.added, vec!["new.sh"]);
        assert_eq!(c.changed, vec!["app.conf"]);
        assert_eq!(c.removed, vec!["old.sh"]);
        assert!(!c.is_empty());
        assert!(file_changes(Some(&after), &after).is_empty());
    }

    #[test]
    fn nothing_promoted_means_every_shipped_file_is_added() {
        let after = manifest(&[("b", "1"), ("a.tpl", "2"), ("a", "3"), ("x/__pycache__/y.pyc", "4")]);
        let c = file_changes(None, &after);
        assert_eq!(c.added, vec!["a", "b"]);
        assert!(c.changed.is_empty() && c.removed.is_empty());
    }
}
