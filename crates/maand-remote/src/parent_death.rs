//! Children that die with maand: every program maand starts (ssh sessions and masters, rsync, job
//! commands) carries the parent-death signal SIGKILL (`prctl(PR_SET_PDEATHSIG)`), so the kernel
//! kills it when maand ends, even by SIGKILL or a crash, when no code of ours can run any more.
//!
//! Linux sends that signal when the *thread* that forked the child ends, not when the process does,
//! and maand starts programs from short-lived pool threads. So every child is forked by one
//! spawner thread that lives as long as the process: a child outlives the thread that asked for
//! it and dies with the process. A child whose parent died between the fork and the `prctl` (the
//! signal would never come) sees that its parent changed and exits before running the program.
//!
//! The signal is not inherited by the program's own children (a fork clears it) and an exec of a
//! set-user-ID program clears it; those are killed with the child's process group by an
//! interrupt (see [`crate::interrupt`]), or end when their connection or pipe to it closes.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc::{self, Sender};
use std::sync::OnceLock;
use std::thread;

/// One spawn handed to the spawner thread: the command, and where to send it back with the child.
struct Request {
    command: Command,
    reply: Sender<(Command, io::Result<Child>)>,
}

/// Starts `command` so that the child is killed (SIGKILL) when this process ends, however it
/// ends. The fork happens on the process-wide spawner thread; the call waits for it.
pub fn spawn(command: &mut Command) -> io::Result<Child> {
    die_with_this_process(command);
    let spawner = spawner()?;
    let (reply, answer) = mpsc::channel();
    let request = Request { command: std::mem::replace(command, Command::new("")), reply };
    spawner.send(request).map_err(|_| spawner_gone())?;
    let (taken, child) = answer.recv().map_err(|_| spawner_gone())?;
    *command = taken;
    child
}

/// The channel to the spawner thread, started on first use; it never ends (its sender is static).
fn spawner() -> io::Result<&'static Sender<Request>> {
    static SPAWNER: OnceLock<Option<Sender<Request>>> = OnceLock::new();
    SPAWNER
        .get_or_init(|| {
            let (requests, incoming) = mpsc::channel::<Request>();
            let started = thread::Builder::new().name("maand-spawner".into()).spawn(move || {
                for Request { mut command, reply } in incoming {
                    let child = command.spawn();
                    let _ = reply.send((command, child));
                }
            });
            started.ok().map(|_| requests)
        })
        .as_ref()
        .ok_or_else(|| io::Error::other("cannot start the thread that starts child processes"))
}

fn spawner_gone() -> io::Error {
    io::Error::other("the thread that starts child processes is gone")
}

/// Makes the child ask for SIGKILL when its parent (the spawner thread, which lives as long as
/// the process) ends, and refuse to run if the parent already ended.
#[allow(unsafe_code)]
fn die_with_this_process(command: &mut Command) {
    let parent = libc::pid_t::try_from(std::process::id()).unwrap_or(libc::pid_t::MAX);
    let hook = move || -> io::Result<()> {
        // SAFETY: prctl and getppid are async-signal-safe system calls without pointers; nothing
        // here allocates or takes a lock, as code between fork and exec must not.
        unsafe {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                // The parent died before the prctl: the signal will never come.
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
        }
        Ok(())
    };
    // SAFETY: the hook runs in the forked child before exec and only makes system calls (above).
    unsafe {
        command.pre_exec(hook);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_child_outlives_the_thread_that_started_it() {
        let mut child = thread::spawn(|| spawn(Command::new("sleep").arg("30")).unwrap()).join().unwrap();
        // Were the child forked by the finished thread, the kernel would have killed it by now.
        thread::sleep(Duration::from_millis(300));
        assert!(child.try_wait().unwrap().is_none(), "the child was killed when its thread ended");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn the_command_is_given_back_and_spawn_errors_are_reported() {
        let mut command = Command::new("/nonexistent/maand-test-program");
        command.arg("x");
        let err = spawn(&mut command).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(command.get_program(), "/nonexistent/maand-test-program");
        assert_eq!(command.get_args().collect::<Vec<_>>(), ["x"]);
    }

    #[test]
    fn a_child_is_a_child_of_this_process() {
        let mut child = spawn(Command::new("sleep").arg("30")).unwrap();
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
        let ppid: u32 = stat[stat.rfind(')').unwrap() + 1..].split_whitespace().nth(1).unwrap().parse().unwrap();
        assert_eq!(ppid, std::process::id());
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
