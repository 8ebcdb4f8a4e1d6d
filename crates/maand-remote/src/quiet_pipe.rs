//! Commands that only print (tables, JSON, logs) end quietly when their reader goes away, as
//! `git log | head` does: Rust ignores SIGPIPE, so a write to a closed pipe would fail and the
//! print would panic. Restoring the default action makes the process end on that signal instead.
//! Never for commands that drive workers: a child's closed pipe must not kill maand.

/// Restore SIGPIPE's default action (terminate) for this process.
#[allow(unsafe_code)]
pub fn end_quietly_when_the_reader_leaves() {
    // SAFETY: `signal` with SIG_DFL changes only the disposition of SIGPIPE; no handler runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
