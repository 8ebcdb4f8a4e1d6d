//! The exclusive bucket lock `data/maand.lock` (DESIGN §4): one command that changes the bucket at a
//! time. An OS file lock (released by the kernel when the holder exits, so a stale file never
//! blocks), with the holder's pid, command and start time written into the file for the message
//! another maand prints.

use crate::paths::BucketPaths;
use crate::private_files::PRIVATE_FILE_MODE;
use maand_core::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Who holds the lock (the file's content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    pub pid: u32,
    /// e.g. `maand deploy`.
    pub command: String,
    /// UTC, RFC 3339 (`2026-11-24T19:02:11Z`).
    pub since: String,
}

/// The held bucket lock; released when dropped.
#[derive(Debug)]
pub struct BucketLock {
    file: File,
    path: PathBuf,
}

impl BucketLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for BucketLock {
    fn drop(&mut self) {
        // Clear the holder while still holding the lock, then release it.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// Take the exclusive bucket lock for `command` (e.g. `deploy`) without waiting.
pub fn acquire_lock(paths: &BucketPaths, command: &str) -> Result<BucketLock> {
    let path = paths.lock_file();
    let io_error = |e: std::io::Error| Error::new(ErrorKind::Unexpected, format!("{}: {e}", path.display()));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(PRIVATE_FILE_MODE)
        .open(&path)
        .map_err(io_error)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Err(locked_error(&mut file)),
        Err(TryLockError::Error(e)) => return Err(io_error(e)),
    }
    let holder =
        LockHolder { pid: std::process::id(), command: format!("maand {}", command.trim()), since: utc_now_rfc3339() };
    let text = serde_json::to_string(&holder)
        .map_err(|e| Error::new(ErrorKind::Unexpected, format!("encode lock holder: {e}")))?;
    file.set_len(0).map_err(io_error)?;
    file.seek(SeekFrom::Start(0)).map_err(io_error)?;
    file.write_all(text.as_bytes()).map_err(io_error)?;
    file.flush().map_err(io_error)?;
    Ok(BucketLock { file, path })
}

/// Whether the process `pid` holds the bucket lock now: the lock file names it and it is alive.
/// (A holder killed with SIGKILL leaves its pid in the file, but its process is gone.)
pub fn held_by(paths: &BucketPaths, pid: u32) -> bool {
    let holder =
        std::fs::read_to_string(paths.lock_file()).ok().and_then(|text| serde_json::from_str::<LockHolder>(&text).ok());
    holder.is_some_and(|h| h.pid == pid) && Path::new(&format!("/proc/{pid}")).exists()
}

/// The message for a lock held by someone else, naming them when the file says who.
fn locked_error(file: &mut File) -> Error {
    let mut text = String::new();
    let holder = file
        .seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_string(&mut text))
        .ok()
        .and_then(|_| serde_json::from_str::<LockHolder>(&text).ok());
    let who = match holder {
        Some(h) => format!(": pid {} ({}) since {}", h.pid, h.command, h.since),
        None => String::new(),
    };
    Error::new(ErrorKind::Locked, format!("another maand is running in this bucket{who}; wait for it to finish"))
}

fn utc_now_rfc3339() -> String {
    crate::timestamp::rfc3339_utc(time::OffsetDateTime::now_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket() -> (tempfile::TempDir, BucketPaths) {
        let dir = tempfile::tempdir().unwrap();
        let paths = BucketPaths::new(dir.path());
        std::fs::create_dir_all(paths.data_dir()).unwrap();
        (dir, paths)
    }

    #[test]
    fn second_acquire_fails_naming_the_holder() {
        let (_dir, paths) = bucket();
        let held = acquire_lock(&paths, "deploy").unwrap();
        assert_eq!(held.path(), paths.lock_file());
        let e = acquire_lock(&paths, "build").unwrap_err();
        assert!(e.is(ErrorKind::Locked));
        let text = e.to_string();
        let prefix = format!(
            "bucket is locked: another maand is running in this bucket: pid {} (maand deploy) since ",
            std::process::id()
        );
        assert!(text.starts_with(&prefix), "{text}");
        assert!(text.ends_with("Z; wait for it to finish"), "{text}");
    }

    #[test]
    fn lock_is_released_on_drop() {
        let (_dir, paths) = bucket();
        drop(acquire_lock(&paths, "deploy").unwrap());
        assert_eq!(std::fs::read_to_string(paths.lock_file()).unwrap(), "", "holder cleared");
        let again = acquire_lock(&paths, "gc").unwrap();
        let holder: LockHolder = serde_json::from_str(&std::fs::read_to_string(paths.lock_file()).unwrap()).unwrap();
        assert_eq!(holder.command, "maand gc");
        assert_eq!(holder.pid, std::process::id());
        drop(again);
    }

    #[test]
    fn stale_lock_file_of_a_dead_process_does_not_block() {
        let (_dir, paths) = bucket();
        std::fs::write(paths.lock_file(), r#"{"pid":999999,"command":"maand deploy","since":"2020-01-01T00:00:00Z"}"#)
            .unwrap();
        let lock = acquire_lock(&paths, "build").unwrap();
        let holder: LockHolder = serde_json::from_str(&std::fs::read_to_string(paths.lock_file()).unwrap()).unwrap();
        assert_eq!(holder.command, "maand build");
        drop(lock);
    }

    #[test]
    fn lock_held_without_holder_info_still_refuses() {
        let (_dir, paths) = bucket();
        let lock = acquire_lock(&paths, "deploy").unwrap();
        std::fs::write(paths.lock_file(), "").unwrap();
        let e = acquire_lock(&paths, "build").unwrap_err();
        assert_eq!(e.to_string(), "bucket is locked: another maand is running in this bucket; wait for it to finish");
        drop(lock);
    }

    #[test]
    fn held_by_names_a_live_holder_only() {
        let (_dir, paths) = bucket();
        assert!(!held_by(&paths, std::process::id()), "no lock file");
        let lock = acquire_lock(&paths, "deploy").unwrap();
        assert!(held_by(&paths, std::process::id()));
        assert!(!held_by(&paths, std::process::id() + 1), "another pid");
        drop(lock);
        assert!(!held_by(&paths, std::process::id()), "released");
        // A holder killed without releasing: its pid stays in the file, its process is gone.
        std::fs::write(paths.lock_file(), r#"{"pid":4194305,"command":"maand deploy","since":"2020-01-01T00:00:00Z"}"#)
            .unwrap();
        assert!(!held_by(&paths, 4_194_305));
    }

    #[test]
    fn rfc3339_shape() {
        let s = utc_now_rfc3339();
        assert_eq!(s.len(), 20, "{s}");
        assert!(s.ends_with('Z') && s.as_bytes()[10] == b'T', "{s}");
    }
}
