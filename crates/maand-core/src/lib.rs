//! maand-core: the domain model and every decision maand makes, as pure functions over values.
//! Never touches the file system, the database, the network or the clock.

pub mod error;

pub use error::{err, Error, ErrorKind, Result};
