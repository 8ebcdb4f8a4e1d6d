//! maand-remote: talking to workers (scripts and rsync over OpenSSH) and sandbox workers for demos
//! and end-to-end tests. Knows nothing about jobs or deploys.
