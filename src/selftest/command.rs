//! Commands run to the end within a timeout, their output read while they
//! run: what `TestNet` sets up namespaces with, and what tests drive other
//! tools with.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Longest any helper command may take before it is killed: a hung `ip` or a
/// binary that should have refused but runs on must not hang the caller.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `command` to the end, killing it after `timeout`; its output is read
/// while it runs, so a chatty command cannot block on a full pipe.
pub fn output_within(command: &mut Command, timeout: Duration) -> Result<Output> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {command:?}"))?;
    let stdout = read_all(child.stdout.take());
    let stderr = read_all(child.stderr.take());
    let Some(status) = wait_within(&mut child, timeout)? else {
        let _ = child.kill();
        let _ = child.wait();
        bail!("{command:?} did not finish within {timeout:?}");
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// `output_within` for commands that must succeed.
pub fn run_ok(command: &mut Command) -> Result<Output> {
    let out = output_within(command, COMMAND_TIMEOUT)?;
    if !out.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

fn read_all(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// The exit status of `child` if it exits within `timeout`.
pub fn wait_within(child: &mut Child, timeout: Duration) -> Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().context("waiting for a child")? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(5));
    }
}
