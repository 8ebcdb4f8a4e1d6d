//! maand-core: the domain model and every decision maand makes, as pure functions over values.
//! Never touches the file system, the database, the network or the clock.

pub mod bucket_conf;
pub mod certs;
pub mod demands;
pub mod disabled;
pub mod drift;
pub mod error;
pub mod globs;
pub mod health_check;
pub mod ids;
pub mod job_command;
pub mod job_files;
pub mod job_links;
mod json_fields;
mod json_text;
pub mod kv_access;
pub mod manifest;
pub mod placement;
pub mod ports;
pub mod prometheus;
pub mod rollout;
pub mod units;
pub mod version;
pub mod warning;
pub mod waves;
pub mod worker_host;
pub mod workers;

pub use bucket_conf::Reservation;
pub use disabled::Disabled;
pub use error::{err, Error, ErrorKind, Result};
pub use ids::stable_uuid;
pub use manifest::{
    parse_manifest, Bounds, CertSpec, CommandSpec, Demand, Event, HealthCheckSpec, Manifest, PortDecl, ProbeKind,
    RestartPolicy,
};
pub use placement::WorkerLoad;
pub use version::{parse_version, Version};
pub use warning::Warning;
pub use workers::{parse_workers, WorkerSpec};
