//! Which bucket a command works on: `-C/--bucket <dir>` (or `MAAND_BUCKET`) when given, else the
//! nearest directory at or above the current one that holds a bucket (`data/maand.db`), so every
//! command works from anywhere inside a bucket (never creating one nested in it), else the
//! current directory (where `maand init` creates one).

use maand_store::BucketPaths;
use std::path::{Path, PathBuf};

pub fn bucket_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(dir) = flag {
        return dir.to_path_buf();
    }
    let here = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    here.ancestors()
        .find(|dir| BucketPaths::new(*dir).db().is_file())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins() {
        assert_eq!(bucket_dir(Some(Path::new("/b"))), PathBuf::from("/b"));
    }
}
