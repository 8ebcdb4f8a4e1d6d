//! The OpenSSH transport: settings, exact ssh/rsync command lines, ControlMaster lifecycle and the
//! `OpenSsh` executor built on them.

mod argv;
mod master;
mod openssh;
mod settings;

pub use openssh::{OpenSsh, LOCAL_GRACE};
pub use settings::{HostKeyPolicy, SshSettings};
