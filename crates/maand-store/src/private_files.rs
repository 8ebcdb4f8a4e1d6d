//! The private part of a bucket (DESIGN §3.18): everything that can hold a secret — the catalog
//! and its WAL files in `data/`, `secrets/`, the staging under `tmp/` and the run logs in `logs/` —
//! lives in directories 0700, and the files maand writes there are 0600 (staged files keep the
//! mode they get on the worker: the 0700 `tmp/` keeps everyone else out). New ones are created so
//! whatever the umask; an existing bucket (made by the Go maand or an older maand) is brought there
//! when a command opens it. Also: removing the staging a killed run left behind.

use crate::file_modes::{create_dir_all_with_mode, mode_of, set_mode, write_with_mode};
use crate::paths::BucketPaths;
use maand_core::{Error, ErrorKind, Result};
use std::fs;
use std::path::Path;

/// Mode of every private directory.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// Mode of every private file maand writes.
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// Create `path` (and missing parents) as private directories.
pub fn create_private_dir(path: &Path) -> Result<()> {
    create_dir_all_with_mode(path, PRIVATE_DIR_MODE).map_err(|e| io_error(path, "create", e))
}

/// Write a private file (0600), replacing any content.
pub fn write_private_file(path: &Path, content: &[u8]) -> Result<()> {
    write_with_mode(path, content, PRIVATE_FILE_MODE).map_err(|e| io_error(path, "write", e))
}

/// Bring the private parts of an existing bucket to their modes: `data/` and `secrets/` with
/// everything in them; `logs/` with its whole tree, walked only while `logs/` itself is not
/// private yet (so once, not on every command); `tmp/` itself (created when missing).
pub fn secure_bucket(paths: &BucketPaths) -> Result<()> {
    for dir in [paths.data_dir(), paths.secrets()] {
        if dir.is_dir() {
            make_tree_private(&dir)?;
        }
    }
    let logs = paths.logs();
    if logs.is_dir() && mode_of(&logs).map_err(|e| io_error(&logs, "read the mode of", e))? != PRIVATE_DIR_MODE {
        make_tree_private(&logs)?;
    }
    let tmp = paths.tmp();
    create_private_dir(&tmp)?;
    make_private(&tmp, PRIVATE_DIR_MODE)
}

/// Remove the staging tree `tmp/workers/` (rendered templates and certificate keys of a run that
/// was killed). Only for commands holding the bucket lock: no other such command is staging.
pub fn remove_staging(paths: &BucketPaths) -> Result<()> {
    let staging = paths.staging();
    match fs::remove_dir_all(&staging) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(&staging, "remove", e)),
    }
}

/// Directories 0700 and regular files 0600 below (and including) `dir`. Symbolic links, sockets
/// and other special files are left alone.
fn make_tree_private(dir: &Path) -> Result<()> {
    make_private(dir, PRIVATE_DIR_MODE)?;
    let entries = fs::read_dir(dir).map_err(|e| io_error(dir, "read", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_error(dir, "read", e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| io_error(&path, "read", e))?;
        if kind.is_dir() {
            make_tree_private(&path)?;
        } else if kind.is_file() {
            make_private(&path, PRIVATE_FILE_MODE)?;
        }
    }
    Ok(())
}

fn make_private(path: &Path, mode: u32) -> Result<()> {
    if mode_of(path).map_err(|e| io_error(path, "read the mode of", e))? == mode {
        return Ok(());
    }
    set_mode(path, mode).map_err(|e| {
        Error::new(
            ErrorKind::Unexpected,
            format!(
                "cannot make {} private (mode {mode:04o}): {e}; run maand as the owner of the bucket",
                path.display()
            ),
        )
    })
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::new(ErrorKind::Unexpected, format!("cannot {what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file_modes::mode_of;

    fn mode(path: &Path) -> u32 {
        mode_of(path).unwrap()
    }

    /// A bucket laid out as the Go maand (or an older maand) left it: everything world-readable.
    /// The files of [`open_bucket`] that must end up private.
    fn private_files(paths: &BucketPaths) -> [std::path::PathBuf; 7] {
        [
            paths.db(),
            paths.data_dir().join("maand.db-wal"),
            paths.data_dir().join("maand.db-shm"),
            paths.ca_key(),
            paths.kv_key(),
            paths.logs().join("10.0.0.1.log"),
            paths.run_logs("r1").join("10.0.0.1.log"),
        ]
    }

    fn open_bucket() -> (tempfile::TempDir, BucketPaths) {
        let dir = tempfile::tempdir().unwrap();
        let paths = BucketPaths::new(dir.path());
        for d in [paths.data_dir(), paths.secrets(), paths.run_logs("r1"), paths.tmp(), paths.jobs_dir()] {
            fs::create_dir_all(&d).unwrap();
        }
        for f in private_files(&paths).iter().chain([&paths.workers_json()]) {
            fs::write(f, "x").unwrap();
            set_mode(f, 0o644).unwrap();
        }
        for d in [paths.data_dir(), paths.secrets(), paths.logs(), paths.run_logs("r1"), paths.tmp()] {
            set_mode(&d, 0o755).unwrap();
        }
        (dir, paths)
    }

    #[test]
    fn an_open_bucket_is_made_private_and_the_workspace_is_left_alone() {
        let (_dir, paths) = open_bucket();
        let jobs_mode = mode(&paths.jobs_dir());
        secure_bucket(&paths).unwrap();
        for d in [paths.data_dir(), paths.secrets(), paths.logs(), paths.logs().join("runs"), paths.run_logs("r1")] {
            assert_eq!(mode(&d), 0o700, "{}", d.display());
        }
        assert_eq!(mode(&paths.tmp()), 0o700);
        for f in private_files(&paths) {
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
        assert_eq!(mode(&paths.workers_json()), 0o644, "the operator's workspace is not ours to change");
        assert_eq!(mode(&paths.jobs_dir()), jobs_mode);
    }

    #[test]
    fn logs_are_walked_only_while_their_directory_is_not_private() {
        let (_dir, paths) = open_bucket();
        secure_bucket(&paths).unwrap();
        let later = paths.run_logs("r1").join("other.log");
        fs::write(&later, "x").unwrap();
        set_mode(&later, 0o644).unwrap();
        secure_bucket(&paths).unwrap();
        assert_eq!(mode(&later), 0o644, "a private logs/ is not walked again (it keeps everyone out)");
        let key = paths.secrets().join("new.key");
        fs::write(&key, "x").unwrap();
        set_mode(&key, 0o644).unwrap();
        secure_bucket(&paths).unwrap();
        assert_eq!(mode(&key), 0o600, "secrets/ is checked on every open");
    }

    #[test]
    fn missing_parts_are_fine_and_tmp_is_created_private() {
        let dir = tempfile::tempdir().unwrap();
        let paths = BucketPaths::new(dir.path());
        secure_bucket(&paths).unwrap();
        assert_eq!(mode(&paths.tmp()), 0o700);
        assert!(!paths.logs().exists() && !paths.data_dir().exists());
    }

    #[test]
    fn private_dirs_and_files_are_created_private() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("tmp/workers/x");
        create_private_dir(&deep).unwrap();
        for d in ["tmp", "tmp/workers", "tmp/workers/x"] {
            assert_eq!(mode(&dir.path().join(d)), 0o700, "{d}");
        }
        let f = deep.join("f");
        write_private_file(&f, b"secret").unwrap();
        assert_eq!(mode(&f), 0o600);
    }

    #[test]
    fn leftover_staging_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let paths = BucketPaths::new(dir.path());
        remove_staging(&paths).unwrap();
        let staged = paths.staging().join("10.0.0.1/jobs/.api.next/certs");
        fs::create_dir_all(&staged).unwrap();
        fs::write(staged.join("tls.key"), "KEY").unwrap();
        fs::create_dir_all(paths.tmp().join("ssh")).unwrap();
        remove_staging(&paths).unwrap();
        assert!(!paths.staging().exists());
        assert!(paths.tmp().join("ssh").is_dir(), "only the staging goes");
    }
}
