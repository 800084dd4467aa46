//! Running ssh and rsync as child processes, with cancellation.

use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::Error;

pub(crate) struct ChildOutput {
    pub status: ExitStatus,
    pub stderr: Vec<u8>,
}

/// Runs `cmd` to the end, feeding `stdin` and passing stdout chunks to `on_stdout` as they
/// come. When `cancel` is set, sends SIGTERM (rsync then saves partial files), waits up to
/// 10 s, then SIGKILL; returns [`Error::Cancelled`].
pub(crate) fn run(
    cmd: &mut Command,
    program: &'static str,
    stdin: Option<Vec<u8>>,
    cancel: &AtomicBool,
    mut on_stdout: impl FnMut(&[u8]) + Send,
) -> Result<ChildOutput, Error> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|source| Error::Spawn { program, source })?;
    let child_in = child.stdin.take();
    let child_out = child.stdout.take();
    let child_err = child.stderr.take();
    let mut stderr = Vec::new();
    let mut cancelled = false;
    let status = std::thread::scope(|s| {
        if let (Some(mut w), Some(data)) = (child_in, stdin) {
            s.spawn(move || {
                // A child that exits early closes the pipe; its status tells why.
                let _ = w.write_all(&data);
            });
        }
        let err_thread = child_err.map(|mut r| {
            s.spawn(move || {
                let mut buf = Vec::new();
                let _ = r.read_to_end(&mut buf);
                buf
            })
        });
        let out_thread = child_out.map(|mut r| {
            let on_stdout = &mut on_stdout;
            s.spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match r.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => on_stdout(&buf[..n]),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
            })
        });
        let status = wait_or_cancel(&mut child, cancel, &mut cancelled);
        if let Some(t) = out_thread {
            let _ = t.join();
        }
        if let Some(t) = err_thread {
            stderr = t.join().unwrap_or_default();
        }
        status
    });
    let status = status.map_err(|source| Error::Spawn { program, source })?;
    if cancelled {
        return Err(Error::Cancelled);
    }
    Ok(ChildOutput { status, stderr })
}

fn wait_or_cancel(
    child: &mut Child,
    cancel: &AtomicBool,
    cancelled: &mut bool,
) -> std::io::Result<ExitStatus> {
    let mut term_sent: Option<Instant> = None;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if cancel.load(Ordering::Relaxed) {
            *cancelled = true;
            match term_sent {
                None => {
                    if let Ok(pid) = i32::try_from(child.id()) {
                        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
                    }
                    term_sent = Some(Instant::now());
                }
                Some(t) if t.elapsed() > Duration::from_secs(10) => {
                    let _ = child.kill();
                }
                Some(_) => {}
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
