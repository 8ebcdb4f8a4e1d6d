//! The OpenSSH transport: settings, exact ssh/rsync command lines, ControlMaster lifecycle, the SSH
//! banner that tells a live worker, the cleaning of sockets left by killed runs, and the `OpenSsh`
//! executor built on them.

mod argv;
mod banner;
mod master;
mod openssh;
mod settings;
mod stale;

pub use openssh::{OpenSsh, LOCAL_GRACE};
pub use settings::{HostKeyPolicy, SshSettings};
