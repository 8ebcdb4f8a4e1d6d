//! The OpenSSH transport: settings, exact ssh/rsync command lines, ControlMaster lifecycle and the
//! `OpenSsh` executor built on them, and the cleaning of sockets left by runs that were killed.

mod argv;
mod master;
mod openssh;
mod settings;
mod stale;

pub use openssh::{OpenSsh, LOCAL_GRACE};
pub use settings::{HostKeyPolicy, SshSettings};
