//! Where and how files are staged for a worker (spec §5.2, DESIGN §3.18). The staging root
//! `tmp/workers/` is private (0700), so nothing staged — rendered secrets, certificate keys — is
//! reachable by other users of the CLI host. Below it, `tmp/workers/<ip>/` is the tree rsync
//! ships with its modes (`--perms`): directories 0755 and every file with the exact mode it is to
//! have on the worker, whatever the umask.

use super::stage::io;
use maand_core::rollout::shipped_dir_name;
use maand_core::Result;
use maand_store::file_modes::{create_dir_all_with_mode, write_with_mode};
use maand_store::private_files::create_private_dir;
use std::path::{Path, PathBuf};

/// Mode of every staged (and shipped) directory.
pub const SHIPPED_DIR_MODE: u32 = 0o755;

/// `tmp/workers/<ip>` — the tree rsynced to a worker.
pub fn worker_staging_dir(staging_root: &Path, ip: &str) -> PathBuf {
    staging_root.join("workers").join(ip)
}

pub fn job_staging_dir(staging_root: &Path, ip: &str, job: &str) -> PathBuf {
    worker_staging_dir(staging_root, ip).join("jobs").join(job)
}

/// `tmp/workers/<ip>/jobs/.<job>.next` — an allocation staged for shipping into the job's side
/// directory on the worker.
pub fn shipped_job_dir(staging_root: &Path, ip: &str, job: &str) -> PathBuf {
    worker_staging_dir(staging_root, ip).join("jobs").join(shipped_dir_name(job))
}

/// Create the staging root privately and `tmp/workers/<ip>/` (0755) in it; every staging of a
/// worker's files starts here, so the directories below are only ever created inside it.
pub fn prepare_worker_dir(staging_root: &Path, ip: &str) -> Result<PathBuf> {
    let root = staging_root.join("workers");
    create_private_dir(&root)?;
    let dir = worker_staging_dir(staging_root, ip);
    staged_dir(&dir)?;
    Ok(dir)
}

/// Create a staged directory (and its missing parents inside the worker's tree), 0755.
pub fn staged_dir(path: &Path) -> Result<()> {
    create_dir_all_with_mode(path, SHIPPED_DIR_MODE).map_err(|e| io(path, e))
}

/// Write a staged file with the mode it gets on the worker (its directory created when missing).
pub fn write_staged(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    if let Some(parent) = path.parent() {
        staged_dir(parent)?;
    }
    write_with_mode(path, content, mode).map_err(|e| io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use maand_store::file_modes::mode_of;

    #[test]
    fn the_staging_root_is_private_and_the_shipped_tree_has_exact_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("tmp");
        let dir = prepare_worker_dir(&root, "10.0.0.1").unwrap();
        assert_eq!(dir, root.join("workers/10.0.0.1"));
        assert_eq!(mode_of(&root).unwrap(), 0o700);
        assert_eq!(mode_of(&root.join("workers")).unwrap(), 0o700);
        assert_eq!(mode_of(&dir).unwrap(), 0o755);
        let file = shipped_job_dir(&root, "10.0.0.1", "api").join("conf/app.conf");
        // 0666 is beyond what the usual umask (022) lets through: the mode is set, not inherited.
        write_staged(&file, b"x", 0o666).unwrap();
        assert_eq!(mode_of(&file).unwrap(), 0o666);
        assert_eq!(mode_of(file.parent().unwrap()).unwrap(), 0o755);
        assert_eq!(mode_of(&shipped_job_dir(&root, "10.0.0.1", "api")).unwrap(), 0o755);
        write_staged(&file, b"y", 0o600).unwrap();
        assert_eq!(mode_of(&file).unwrap(), 0o600);
    }
}
