//! maand-store: the bucket on disk — paths, maand.conf, the SQLite catalog, versioned KV with
//! encrypted secrets, the CA and leaf certificates, and the bucket lock.

pub mod catalog;
pub mod certs;
pub mod db;
pub mod kv;
pub mod lock;
pub mod maand_conf;
pub mod paths;
pub mod secrets;
pub mod timestamp;

pub use maand_conf::{HostKeyChecking, LogFormat, MaandConf};
pub use paths::BucketPaths;
