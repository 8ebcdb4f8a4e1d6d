//! Running a local program (ssh, rsync) with bytes on stdin, its stdout and stderr delivered line
//! by line to a callback on the calling thread, and a hard deadline after which it is killed.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use crate::executor::Stream;

/// How long output still held open by a killed program's children is drained before giving up.
const DRAIN_AFTER_KILL: Duration = Duration::from_secs(2);

/// How a program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Finished {
    /// Exit status; -1 when it was ended by a signal.
    pub exit_code: i32,
    /// True when the deadline passed and the program was killed.
    pub killed_at_deadline: bool,
    pub duration: Duration,
}

/// Runs `program args…`, writes `stdin` to it, streams its output lines to `on_line`, and kills it
/// when `deadline` (measured from the start) passes.
pub(crate) fn run_streaming(
    program: &str,
    args: &[String],
    stdin: Option<Vec<u8>>,
    deadline: Option<Duration>,
    on_line: &mut dyn FnMut(Stream, &str),
) -> std::io::Result<Finished> {
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A remote side that does not read must not block us: write from a thread.
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

    let deadline_at = deadline.map(|d| started + d);
    let mut killed_at_deadline = false;
    loop {
        let wait = match deadline_at {
            Some(at) => at.saturating_duration_since(Instant::now()),
            None => Duration::from_secs(3600),
        };
        match rx.recv_timeout(wait) {
            Ok((stream, line)) => on_line(stream, &line),
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                if deadline_at.is_some_and(|at| Instant::now() >= at) {
                    kill(&mut child);
                    killed_at_deadline = true;
                    drain(&rx, on_line);
                    break;
                }
            }
        }
    }
    let exit_code = wait_exit(&mut child, deadline_at, &mut killed_at_deadline)?;
    Ok(Finished { exit_code, killed_at_deadline, duration: started.elapsed() })
}

/// Runs a program that leaves a background child behind (`ssh -f`): stdout is discarded and
/// stderr appended to `stderr_file`, so no pipe stays open after the foreground process exits.
pub(crate) fn run_detaching(
    program: &str,
    args: &[String],
    stderr_file: &Path,
    deadline: Duration,
) -> std::io::Result<Finished> {
    let started = Instant::now();
    let log = std::fs::OpenOptions::new().create(true).append(true).open(stderr_file)?;
    let mut child =
        Command::new(program).args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::from(log)).spawn()?;
    let mut killed_at_deadline = false;
    let exit_code = wait_exit(&mut child, Some(started + deadline), &mut killed_at_deadline)?;
    Ok(Finished { exit_code, killed_at_deadline, duration: started.elapsed() })
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

/// Delivers what is still buffered, for a bounded time (children of a killed program may hold
/// the pipes open).
fn drain(rx: &mpsc::Receiver<(Stream, String)>, on_line: &mut dyn FnMut(Stream, &str)) {
    let until = Instant::now() + DRAIN_AFTER_KILL;
    while let Ok((stream, line)) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
        on_line(stream, &line);
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
}

/// Waits for the exit status, killing the program if the deadline passes first.
fn wait_exit(child: &mut Child, deadline_at: Option<Instant>, killed: &mut bool) -> std::io::Result<i32> {
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
}
