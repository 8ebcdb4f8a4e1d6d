//! `maand init`: create or upgrade a bucket (spec/features.md §1.2). Never contacts workers and
//! never changes an existing bucket id, CA or key. The private parts (`data/`, `secrets/`, `logs/`,
//! `tmp/`) are created 0700 and their files 0600; upgrading a bucket makes them so and encrypts
//! leaf private keys stored in plaintext (DESIGN §3.18).

use maand_core::{Error, ErrorKind, Result};
use maand_store::catalog;
use maand_store::certs::generate_ca;
use maand_store::db::{self, MigrateOutcome, SCHEMA_VERSION};
use maand_store::leaf_keys::seal_plaintext_leaf_keys;
use maand_store::paths::BucketPaths;
use maand_store::private_files::{create_private_dir, secure_bucket, write_private_file};
use maand_store::secrets::SecretKey;
use maand_store::MaandConf;
use std::fs;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitOutcome {
    Initialized,
    Upgraded { schema_version: i64 },
}

impl std::fmt::Display for InitOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InitOutcome::Initialized => f.write_str("maand bucket initialized"),
            InitOutcome::Upgraded { schema_version } => {
                write!(f, "maand bucket upgraded (schema version {schema_version})")
            }
        }
    }
}

const DEFAULT_BUCKET_CONF: &str = "port_min = \"30000\"\nport_max = \"39999\"\n";

pub fn init(root: &Path) -> Result<InitOutcome> {
    let paths = BucketPaths::new(root);
    // Refuse a half CA before touching anything, so a failed init changes nothing.
    let (has_crt, has_key) = (paths.ca_crt().exists(), paths.ca_key().exists());
    if has_crt != has_key {
        return Err(Error::msg(
            "bucket CA is incomplete: secrets must contain both ca.crt and ca.key (restore the missing file, or remove both to generate a new CA)",
        ));
    }
    fs::create_dir_all(paths.jobs_dir()).map_err(|e| io_error(&paths.jobs_dir(), e))?;
    for dir in [paths.data_dir(), paths.logs(), paths.tmp(), paths.secrets()] {
        create_private_dir(&dir)?;
    }
    secure_bucket(&paths)?;
    let conn = db::open(&paths)?;
    let outcome = db::migrate(&conn)?;
    let created_bucket = catalog::insert_bucket(&conn, &uuid::Uuid::new_v4().to_string())?;
    if created_bucket && !paths.maand_conf().exists() {
        write_new(&paths.maand_conf(), MaandConf::default_file_text().as_bytes())?;
    }
    if !paths.workers_json().exists() {
        write_new(&paths.workers_json(), b"[]\n")?;
    }
    if !paths.bucket_conf().exists() {
        write_new(&paths.bucket_conf(), DEFAULT_BUCKET_CONF.as_bytes())?;
    }
    if !has_crt {
        let bucket_id = catalog::bucket_row(&conn)?.bucket_id;
        let (crt, key) = generate_ca(&bucket_id)?;
        write_private_file(&paths.ca_crt(), crt.as_bytes())?;
        write_private_file(&paths.ca_key(), key.as_bytes())?;
    }
    SecretKey::create_if_missing(&paths)?;
    seal_plaintext_leaf_keys(&conn, &paths)?;
    Ok(match (outcome, created_bucket) {
        (MigrateOutcome::Created, _) | (_, true) => InitOutcome::Initialized,
        _ => InitOutcome::Upgraded { schema_version: SCHEMA_VERSION },
    })
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::new(ErrorKind::Unexpected, format!("{}: {e}", path.display()))
}

fn write_new(path: &Path, content: &[u8]) -> Result<()> {
    fs::write(path, content).map_err(|e| io_error(path, e))
}
