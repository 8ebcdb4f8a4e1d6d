//! Running a local program (ssh, rsync, a job command): arguments, optional working directory,
//! environment and bytes on stdin; its stdout and stderr delivered line by line to a callback on
//! the calling thread; killed (with its own process group) when its deadline passes.
//! Output still held open by children of a program that ended is read for a bounded time only.
//! A program that runs until stopped (an ssh ControlMaster) is started and reaped separately.
//!
//! Every program starts in a process group of its own, so a terminal's Ctrl-C (sent to the whole
//! foreground process group) reaches maand only and the step in flight finishes, and is registered
//! with [`crate::interrupt`] while it runs, so a second Ctrl-C kills it.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use crate::executor::Stream;
use crate::{interrupt, procfs};

/// How long output still held open by the children of a program that exited (or was killed) is
/// read before giving up.
const DRAIN: Duration = Duration::from_secs(2);
/// How often the program's exit and deadline are checked while no output arrives.
const POLL: Duration = Duration::from_millis(50);

/// How a program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    /// Exit status; -1 when it was ended by a signal.
    pub exit_code: i32,
    /// True when the deadline passed and the program was killed.
    pub killed_at_deadline: bool,
    pub duration: Duration,
}

/// One program to run on this host.
pub struct LocalProcess {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Working directory; the caller's when `None`.
    pub cwd: Option<PathBuf>,
    /// Variables added to the inherited environment.
    pub env: Vec<(String, String)>,
    /// Bytes written to its stdin (from a thread); stdin is empty when `None`.
    pub stdin: Option<Vec<u8>>,
    /// Measured from the start; no limit when `None`.
    pub deadline: Option<Duration>,
    /// Start it in a process group of its own (the default) and kill that whole group at the
    /// deadline. When false it shares maand's group and so gets the terminal's Ctrl-C itself.
    pub own_process_group: bool,
}

impl LocalProcess {
    /// `program args…` with nothing else set.
    pub fn new(program: impl Into<PathBuf>, args: &[String]) -> LocalProcess {
        LocalProcess {
            program: program.into(),
            args: args.to_vec(),
            cwd: None,
            env: Vec::new(),
            stdin: None,
            deadline: None,
            own_process_group: true,
        }
    }

    /// The command line for logs: `program args…`.
    pub fn display(&self) -> String {
        std::iter::once(self.program.display().to_string())
            .chain(self.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs it to the end (or the deadline), calling `on_line` for every output line.
    pub fn run(&self, on_line: &mut dyn FnMut(Stream, &str)) -> std::io::Result<Finished> {
        let started = Instant::now();
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(cwd) = &self.cwd {
            command.current_dir(cwd);
        }
        if self.own_process_group {
            command.process_group(0);
        }
        let (mut child, _registered) = interrupt::spawn_registered(&mut command, self.own_process_group)?;
        if let (Some(bytes), Some(mut pipe)) = (self.stdin.clone(), child.stdin.take()) {
            // A program that does not read must not block us: write from a thread.
            thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }
        let (tx, rx) = mpsc::channel::<(Stream, String)>();
        if let Some(out) = child.stdout.take() {
            forward_lines(out, Stream::Stdout, tx.clone());
        }
        if let Some(err) = child.stderr.take() {
            forward_lines(err, Stream::Stderr, tx.clone());
        }
        drop(tx);

        let deadline_at = self.deadline.map(|d| started + d);
        let mut exit: Option<i32> = None;
        let mut killed_at_deadline = false;
        let mut stop_reading_at: Option<Instant> = None;
        loop {
            match rx.recv_timeout(POLL) {
                Ok((stream, line)) => on_line(stream, &line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            if exit.is_none() && !killed_at_deadline {
                if let Some(status) = child.try_wait()? {
                    exit = Some(status.code().unwrap_or(-1));
                } else if deadline_at.is_some_and(|at| Instant::now() >= at) {
                    self.kill(&mut child);
                    killed_at_deadline = true;
                }
            }
            if exit.is_some() || killed_at_deadline {
                let until = *stop_reading_at.get_or_insert_with(|| Instant::now() + DRAIN);
                if Instant::now() >= until {
                    break;
                }
            }
        }
        let exit_code = match exit {
            Some(code) => code,
            None => wait_exit(&mut child, deadline_at, &mut killed_at_deadline, &|c| self.kill(c))?,
        };
        Ok(Finished { exit_code, killed_at_deadline, duration: started.elapsed() })
    }

    /// Kills the program (and its process group, when it has its own).
    fn kill(&self, child: &mut Child) {
        if self.own_process_group {
            kill_group(child);
        } else {
            let _ = child.kill();
        }
    }
}

/// Kills a child that leads a process group of its own, with every process of that group.
fn kill_group(child: &mut Child) {
    procfs::send_signal_to("KILL", &[], &[child.id()]);
    let _ = child.kill();
}

/// [`LocalProcess`] `program args…` with `stdin` and `deadline`, in the caller's directory and
/// environment, in a process group of its own.
pub(crate) fn run_streaming(
    program: &str,
    args: &[String],
    stdin: Option<Vec<u8>>,
    deadline: Option<Duration>,
    on_line: &mut dyn FnMut(Stream, &str),
) -> std::io::Result<Finished> {
    LocalProcess { stdin, deadline, ..LocalProcess::new(program, args) }.run(on_line)
}

/// Starts a program that runs until it is stopped (an ssh ControlMaster): stdin and stdout
/// discarded, stderr appended to `stderr_file`, in a process group of its own, tied to maand's
/// life like every child, and registered with [`crate::interrupt`] while the returned guard lives
/// (drop it once the child has been reaped).
pub(crate) fn spawn_background(
    program: &str,
    args: &[String],
    stderr_file: &Path,
) -> std::io::Result<(Child, interrupt::Guard)> {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(stderr_file)?;
    let mut command = Command::new(program);
    command.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::from(log)).process_group(0);
    interrupt::spawn_registered(&mut command, true)
}

/// Waits up to `grace` for a child to exit, else kills it with its process group; reaps it.
pub(crate) fn reap_within(child: &mut Child, grace: Duration) {
    let until = Instant::now() + grace;
    loop {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        if Instant::now() >= until {
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    kill_group(child);
    let _ = child.wait();
}

/// Sends each line of `reader` (without its line ending) to `tx` from a background thread.
fn forward_lines(reader: impl Read + Send + 'static, stream: Stream, tx: Sender<(Stream, String)>) {
    thread::spawn(move || {
        let mut reader = BufReader::new(reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    while matches!(buf.last(), Some(b'\n' | b'\r')) {
                        buf.pop();
                    }
                    if tx.send((stream, String::from_utf8_lossy(&buf).into_owned())).is_err() {
                        break;
                    }
                }
            }
        }
    });
}

/// Waits for the exit status, calling `kill` if the deadline passes first.
fn wait_exit(
    child: &mut Child,
    deadline_at: Option<Instant>,
    killed: &mut bool,
    kill: &dyn Fn(&mut Child),
) -> std::io::Result<i32> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status.code().unwrap_or(-1));
        }
        if deadline_at.is_some_and(|at| Instant::now() >= at) && !*killed {
            kill(child);
            *killed = true;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(script: &str, deadline: Option<Duration>) -> (Finished, Vec<(Stream, String)>) {
        let mut lines = Vec::new();
        let finished =
            run_streaming("bash", &["-s".to_string()], Some(script.as_bytes().to_vec()), deadline, &mut |s, l| {
                lines.push((s, l.to_string()))
            })
            .unwrap();
        (finished, lines)
    }

    #[test]
    fn streams_both_streams_and_exit_code() {
        let (finished, lines) = run("echo out1\necho err1 >&2\nprintf 'last'\nexit 7\n", None);
        assert_eq!(finished.exit_code, 7);
        assert!(!finished.killed_at_deadline);
        assert!(lines.contains(&(Stream::Stdout, "out1".into())));
        assert!(lines.contains(&(Stream::Stderr, "err1".into())));
        assert!(lines.contains(&(Stream::Stdout, "last".into())), "unterminated last line kept: {lines:?}");
    }

    #[test]
    fn kills_at_deadline() {
        let (finished, lines) = run("echo before\nexec sleep 30\n", Some(Duration::from_millis(500)));
        assert!(finished.killed_at_deadline);
        assert!(finished.duration < Duration::from_secs(5), "{:?}", finished.duration);
        assert_eq!(lines, vec![(Stream::Stdout, "before".to_string())]);
    }

    /// `bash -c script` in its own process group, in the temp dir, with `MAAND_TEST_VALUE`.
    fn grouped(script: &str, deadline: Duration) -> (Finished, Vec<(Stream, String)>) {
        let process = LocalProcess {
            cwd: Some(std::env::temp_dir()),
            env: vec![("MAAND_TEST_VALUE".into(), "v1".into())],
            deadline: Some(deadline),
            own_process_group: true,
            ..LocalProcess::new("bash", &["-c".to_string(), script.to_string()])
        };
        let mut lines = Vec::new();
        let finished = process.run(&mut |s, l| lines.push((s, l.to_string()))).unwrap();
        (finished, lines)
    }

    #[test]
    fn passes_environment_and_working_directory() {
        let (f, lines) = grouped("echo $MAAND_TEST_VALUE; pwd; exit 3", Duration::from_secs(10));
        assert_eq!(f.exit_code, 3);
        let tmp = std::env::temp_dir().canonicalize().unwrap();
        assert_eq!(lines, vec![(Stream::Stdout, "v1".into()), (Stream::Stdout, tmp.display().to_string())]);
    }

    #[test]
    fn kills_the_whole_group_at_the_deadline() {
        let (f, lines) = grouped("echo before; sleep 30 & sleep 30", Duration::from_millis(300));
        assert!(f.killed_at_deadline);
        assert!(f.duration < Duration::from_secs(5), "the background sleep was killed too: {:?}", f.duration);
        assert_eq!(lines, vec![(Stream::Stdout, "before".to_string())]);
    }

    #[test]
    fn a_background_child_holding_the_pipe_does_not_block() {
        let (f, lines) = grouped("sleep 20 & echo $!", Duration::from_secs(30));
        assert_eq!(f.exit_code, 0);
        assert!(!f.killed_at_deadline);
        assert!(f.duration < Duration::from_secs(6), "{:?}", f.duration);
        let _ = Command::new("kill").arg(&lines[0].1).status();
    }

    fn our_group() -> u32 {
        procfs::process_group(std::process::id()).unwrap()
    }

    #[test]
    fn a_streamed_program_runs_in_a_group_of_its_own() {
        // `$$` is the shell's pid; field 5 of its stat is its process group.
        let (f, lines) = run("echo $$; cut -d' ' -f5 /proc/$$/stat\n", Some(Duration::from_secs(10)));
        assert_eq!(f.exit_code, 0);
        let (pid, pgid) = (&lines[0].1, &lines[1].1);
        assert_eq!(pgid, pid, "the program leads its own group");
        assert_ne!(pgid, &our_group().to_string());
    }

    #[test]
    fn a_background_program_logs_stderr_runs_in_its_own_group_and_is_reaped() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("stderr");
        let script = "echo to-stderr >&2; echo to-stdout; exec sleep 30";
        let (mut child, guard) = spawn_background("sh", &["-c".to_string(), script.to_string()], &log).unwrap();
        let pid = child.id();
        assert!(interrupt::is_registered(pid), "registered while its guard lives");
        assert_eq!(procfs::process_group(pid), Some(pid), "it leads a process group of its own");
        assert_ne!(procfs::process_group(pid), Some(our_group()));
        let until = Instant::now() + Duration::from_secs(5);
        while std::fs::read_to_string(&log).unwrap_or_default().is_empty() && Instant::now() < until {
            thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "to-stderr\n", "stderr logged, stdout discarded");

        let started = Instant::now();
        reap_within(&mut child, Duration::from_millis(200));
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        assert!(child.try_wait().unwrap().is_some(), "killed after the grace and reaped");
        drop(guard);
        assert!(!interrupt::is_registered(pid));
    }

    #[test]
    fn reaping_a_program_that_exits_in_time_does_not_kill_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("stderr");
        let (mut child, _guard) =
            spawn_background("sh", &["-c".to_string(), "sleep 0.2; exit 3".to_string()], &log).unwrap();
        reap_within(&mut child, Duration::from_secs(5));
        assert_eq!(child.try_wait().unwrap().and_then(|s| s.code()), Some(3));
    }

    #[test]
    fn a_running_program_is_registered_for_interrupts_until_it_ends() {
        // The program prints its pid and sleeps a little; meanwhile the registry must list it.
        let mut seen = None;
        let process = LocalProcess::new("sh", &["-c".to_string(), "echo $$; sleep 1".to_string()]);
        let f = process
            .run(&mut |_, line| {
                let pid: u32 = line.parse().unwrap();
                seen = Some((pid, interrupt::is_registered(pid)));
            })
            .unwrap();
        assert_eq!(f.exit_code, 0);
        let (pid, registered_while_running) = seen.unwrap();
        assert!(registered_while_running);
        assert!(!interrupt::is_registered(pid), "unregistered once it ended");
    }
}
