//! Running one job-command process on the CLI host: program, arguments, working directory and
//! environment; stdout and stderr delivered line by line as they come; killed (with its process
//! group) when its time limit passes.

use maand_remote::Stream;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// How long output still held open by a finished program's children is read before giving up.
const DRAIN: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(50);

pub struct LocalCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    /// Exit status; -1 when ended by a signal.
    pub exit_code: i32,
    pub timed_out: bool,
}

impl LocalCommand {
    /// The command line for logs: `program args…`.
    pub fn display(&self) -> String {
        std::iter::once(self.program.display().to_string())
            .chain(self.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Run to the end (or the time limit), calling `on_line` for every output line.
    pub fn run(&self, on_line: &mut dyn FnMut(Stream, &str)) -> std::io::Result<Finished> {
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .current_dir(&self.cwd)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()?;
        let (tx, rx) = mpsc::channel::<(Stream, String)>();
        if let Some(out) = child.stdout.take() {
            forward_lines(out, Stream::Stdout, tx.clone());
        }
        if let Some(err) = child.stderr.take() {
            forward_lines(err, Stream::Stderr, tx.clone());
        }
        drop(tx);
        let deadline = Instant::now() + self.timeout;
        let mut exit: Option<i32> = None;
        let mut timed_out = false;
        let mut drain_until: Option<Instant> = None;
        loop {
            match rx.recv_timeout(POLL) {
                Ok((stream, line)) => on_line(stream, &line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            if exit.is_none() {
                if let Some(status) = child.try_wait()? {
                    exit = Some(status.code().unwrap_or(-1));
                } else if Instant::now() >= deadline {
                    kill_group(&mut child);
                    timed_out = true;
                }
            }
            if exit.is_some() || timed_out {
                let until = *drain_until.get_or_insert_with(|| Instant::now() + DRAIN);
                if Instant::now() >= until {
                    break;
                }
            }
        }
        let exit_code = match exit {
            Some(code) => code,
            None => child.wait()?.code().unwrap_or(-1),
        };
        Ok(Finished { exit_code, timed_out })
    }
}

/// Kill the program and everything it started in its process group.
fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
}

fn forward_lines(reader: impl Read + Send + 'static, stream: Stream, tx: Sender<(Stream, String)>) {
    std::thread::spawn(move || {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn bash(script: &str, timeout: Duration) -> (Finished, Vec<(Stream, String)>) {
        let cmd = LocalCommand {
            program: "bash".into(),
            args: vec!["-c".into(), script.into()],
            cwd: std::env::temp_dir(),
            env: vec![("MAAND_TEST_VALUE".into(), "v1".into())],
            timeout,
        };
        let mut lines = Vec::new();
        let finished = cmd.run(&mut |s, l| lines.push((s, l.to_string()))).unwrap();
        (finished, lines)
    }

    #[test]
    fn streams_output_with_env_and_exit_code() {
        let (f, lines) = bash("echo out $MAAND_TEST_VALUE; echo err >&2; exit 3", Duration::from_secs(10));
        assert_eq!(f, Finished { exit_code: 3, timed_out: false });
        assert!(lines.contains(&(Stream::Stdout, "out v1".into())), "{lines:?}");
        assert!(lines.contains(&(Stream::Stderr, "err".into())), "{lines:?}");
    }

    #[test]
    fn kills_the_group_at_the_time_limit() {
        let started = Instant::now();
        let (f, lines) = bash("echo before; sleep 30 & sleep 30", Duration::from_millis(300));
        assert!(f.timed_out);
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        assert_eq!(lines, vec![(Stream::Stdout, "before".to_string())]);
    }

    #[test]
    fn a_background_child_holding_the_pipe_does_not_block() {
        let started = Instant::now();
        let (f, lines) = bash("sleep 20 & echo $!", Duration::from_secs(30));
        assert_eq!(f.exit_code, 0);
        assert!(started.elapsed() < Duration::from_secs(6), "{:?}", started.elapsed());
        let pid = &lines[0].1;
        let _ = Command::new("kill").arg(pid).status();
    }
}
