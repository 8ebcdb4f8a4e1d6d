//! Drift (`maand status`): does a worker's live job directory hold exactly the files of the
//! release promoted there? Which paths of a release reach the worker, which paths on the worker
//! maand leaves alone (the job's runtime `data/`, `logs/`, `bin/`, the never-shipped `_modules/`,
//! `_prometheus/` and `.tpl` sources, Python byte code), and the files added, changed or missing.

use crate::rollout::{counts_as_content, FileManifest};
use serde::Serialize;

/// Top-level directories of a job on a worker that deploys never write or delete (runner.py keeps
/// them through a swap): drift ignores them on both sides and the worker does not even list them.
pub const WORKER_OWNED_DIRS: [&str; 5] = ["data", "logs", "bin", "_modules", "_prometheus"];

/// Whether a job-relative path is part of what a release puts on the worker.
pub fn is_release_path(path: &str) -> bool {
    let path = path.trim_start_matches("./");
    let top = path.split('/').next().unwrap_or(path);
    !WORKER_OWNED_DIRS.contains(&top) && !path.ends_with(".tpl") && counts_as_content(path)
}

/// How a live job directory differs from its promoted release (paths sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileDrift {
    /// On the worker, not in the release.
    pub added: Vec<String>,
    /// In both, with different content.
    pub changed: Vec<String>,
    /// In the release, not on the worker.
    pub missing: Vec<String>,
}

impl FileDrift {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.missing.is_empty()
    }

    /// `changed conf.txt; added extra.txt; missing Makefile` (empty when nothing drifted).
    pub fn describe(&self) -> String {
        [("changed", &self.changed), ("added", &self.added), ("missing", &self.missing)]
            .iter()
            .filter(|(_, paths)| !paths.is_empty())
            .map(|(what, paths)| format!("{what} {}", paths.join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Compare the promoted release's manifest with the live files' (both path -> MD5), over
/// [release paths](is_release_path) only.
pub fn file_drift(promoted: &FileManifest, live: &FileManifest) -> FileDrift {
    let release = |m: &FileManifest| -> FileManifest {
        m.iter().filter(|(p, _)| is_release_path(p)).map(|(p, h)| (p.clone(), h.clone())).collect()
    };
    let (promoted, live) = (release(promoted), release(live));
    let mut drift = FileDrift::default();
    for (path, hash) in &promoted {
        match live.get(path) {
            None => drift.missing.push(path.clone()),
            Some(h) if h != hash => drift.changed.push(path.clone()),
            Some(_) => {}
        }
    }
    drift.added = live.keys().filter(|p| !promoted.contains_key(*p)).cloned().collect();
    drift
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(entries: &[(&str, &str)]) -> FileManifest {
        entries.iter().map(|(p, h)| (p.to_string(), h.to_string())).collect()
    }

    #[test]
    fn release_paths_leave_out_what_never_ships_or_belongs_to_the_worker() {
        for kept in ["Makefile", "conf/app.conf", "certs/tls.crt", "database/x", "binary", "sub/data/x"] {
            assert!(is_release_path(kept), "{kept}");
        }
        for ignored in [
            "data/db",
            "logs/out.log",
            "bin/tool",
            "_modules/command_x.py",
            "_prometheus/rules.yml",
            "conf/app.conf.tpl",
            "__pycache__/a.pyc",
            "lib/__pycache__/a.pyc",
            "./data/x",
        ] {
            assert!(!is_release_path(ignored), "{ignored}");
        }
    }

    #[test]
    fn names_files_added_changed_and_missing() {
        let promoted = manifest(&[("Makefile", "1"), ("conf.txt", "2"), ("gone.txt", "3"), ("_modules/c.py", "4")]);
        let live = manifest(&[("Makefile", "1"), ("conf.txt", "9"), ("extra.txt", "5"), ("data/db", "6")]);
        let drift = file_drift(&promoted, &live);
        assert_eq!(drift.changed, vec!["conf.txt"]);
        assert_eq!(drift.added, vec!["extra.txt"]);
        assert_eq!(drift.missing, vec!["gone.txt"]);
        assert_eq!(drift.describe(), "changed conf.txt; added extra.txt; missing gone.txt");
        assert!(!drift.is_empty());
    }

    #[test]
    fn a_live_tree_equal_to_the_release_has_no_drift() {
        let promoted = manifest(&[("Makefile", "1"), ("app.conf.tpl", "t"), ("app.conf", "2")]);
        let live = manifest(&[("Makefile", "1"), ("app.conf", "2"), ("logs/x", "3"), ("bin/y", "4")]);
        let drift = file_drift(&promoted, &live);
        assert!(drift.is_empty(), "{drift:?}");
        assert_eq!(drift.describe(), "");
    }
}
