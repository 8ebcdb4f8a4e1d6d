//! An opened bucket: its paths and maand.conf, with the schema gate passed, its private files
//! private and its leaf keys encrypted (DESIGN §3.18), and (for commands that change the bucket)
//! the exclusive bucket lock held for the whole command.

use maand_core::Result;
use maand_store::lock::{acquire_lock, BucketLock};
use maand_store::paths::BucketPaths;
use maand_store::MaandConf;
use maand_store::{db, leaf_keys, private_files};
use std::path::Path;

pub struct Bucket {
    pub paths: BucketPaths,
    pub conf: MaandConf,
    _lock: Option<BucketLock>,
}

impl Bucket {
    /// Open for reading: schema gate, no lock.
    pub fn open(root: &Path) -> Result<Bucket> {
        let paths = BucketPaths::new(root);
        open_catalog(&paths)?;
        let conf = MaandConf::load(&paths)?;
        Ok(Bucket { paths, conf, _lock: None })
    }

    /// Open for a command that changes the bucket: schema gate plus the exclusive lock. Staged
    /// files a killed run left in `tmp/` are removed (no other locked command can be staging).
    pub fn open_locked(root: &Path, command: &str) -> Result<Bucket> {
        let paths = BucketPaths::new(root);
        open_catalog(&paths)?;
        let lock = acquire_lock(&paths, command)?;
        private_files::remove_staging(&paths)?;
        let conf = MaandConf::load(&paths)?;
        Ok(Bucket { paths, conf, _lock: Some(lock) })
    }

    /// The same bucket working on another catalog file (a plan's copy), without a lock of its
    /// own: the caller holds this bucket's.
    pub fn on_catalog(&self, catalog: &Path) -> Bucket {
        Bucket { paths: self.paths.with_catalog(catalog), conf: self.conf.clone(), _lock: None }
    }

    /// A new connection to the catalog.
    pub fn connect(&self) -> Result<rusqlite::Connection> {
        db::open_existing(&self.paths)
    }
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// The schema gate, then what an older bucket (made by the Go maand or an earlier maand) lacks:
/// private file modes, our extra tables, leaf private keys encrypted. Each step is idempotent.
fn open_catalog(paths: &BucketPaths) -> Result<()> {
    let conn = db::open_existing(paths)?;
    private_files::secure_bucket(paths)?;
    db::check_schema(&conn)?;
    db::ensure_extensions(&conn)?;
    leaf_keys::seal_plaintext_leaf_keys(&conn, paths)?;
    Ok(())
}
