//! maand-store: the bucket on disk — paths, maand.conf, the SQLite catalog, versioned KV with
//! encrypted secrets (leaf private keys included), the CA and leaf certificates, the bucket lock,
//! and the modes of its private files.

pub mod catalog;
pub mod certs;
pub mod db;
pub mod file_modes;
pub mod kv;
pub mod leaf_keys;
pub mod lock;
pub mod maand_conf;
pub mod paths;
pub mod private_files;
pub mod secrets;
pub mod timestamp;

pub use maand_conf::{HostKeyChecking, LogFormat, MaandConf};
pub use paths::BucketPaths;
