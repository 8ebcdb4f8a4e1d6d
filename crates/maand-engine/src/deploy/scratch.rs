//! A plan's throwaway catalog: `deploy --dry-run` (and `maand plan`) copies the catalog into
//! `data/.plan/` (a private directory), builds the workspace into the copy and runs the
//! `pre_deploy` hooks against it, so the plan shows what `deploy -b` would do while nothing it
//! does — build, certificates, hook KV writes — reaches the bucket. The copy is removed when the
//! plan is done, and any left by a killed plan at the next one.

use crate::bucket::Bucket;
use maand_core::{Error, ErrorKind, Result};
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

pub struct ScratchCatalog {
    dir: PathBuf,
    pub bucket: Bucket,
}

impl ScratchCatalog {
    /// A consistent copy of `bucket`'s catalog (SQLite `VACUUM INTO`), and the bucket on it.
    pub fn copy(bucket: &Bucket) -> Result<ScratchCatalog> {
        let dir = bucket.paths.plan_dir();
        let io = |e: std::io::Error| Error::new(ErrorKind::Unexpected, format!("{}: {e}", dir.display()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io)?;
        }
        std::fs::DirBuilder::new().mode(0o700).create(&dir).map_err(io)?;
        let copy = dir.join("maand.db");
        let conn = bucket.connect()?;
        conn.execute("VACUUM INTO ?1", [copy.to_string_lossy()])
            .map_err(|e| Error::new(ErrorKind::Database, format!("copy the catalog for the plan: {e}")))?;
        Ok(ScratchCatalog { bucket: bucket.on_catalog(&copy), dir })
    }
}

impl Drop for ScratchCatalog {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
