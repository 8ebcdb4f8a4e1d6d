//! maand-store: the bucket on disk — paths, maand.conf, the SQLite catalog, versioned KV with
//! encrypted secrets, the CA and leaf certificates, and the bucket lock.

pub mod catalog;
