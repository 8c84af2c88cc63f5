//! A running xdp-hello in namespace A of a `TestNet`, driven from outside:
//! started through `ip netns exec`, its stdout and stderr collected line by
//! line, signalled and waited for; and its closing summary line read.

use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xdp_hello::loader::Mode;
use xdp_hello::selftest::command::wait_within;
use xdp_hello::selftest::veth::{Side, TestNet};

/// How long xdp-hello may take to load, attach and say so: generous, as a
/// busy machine (a CI run beside other builds) has taken several seconds.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(30);

/// How long xdp-hello may take to exit after a signal.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

/// `net.observe(…)`: xdp-hello attached to the `TestNet`'s side A.
pub trait Observe {
    /// Starts `binary` in namespace A, attached to A's veth in `mode`, with
    /// `extra` arguments; returns once it says it is attached.
    fn observe(&self, binary: &Path, mode: Mode, extra: &[&str]) -> Result<Observer>;
}

impl Observe for TestNet {
    fn observe(&self, binary: &Path, mode: Mode, extra: &[&str]) -> Result<Observer> {
        Observer::spawn(binary, self.ns(Side::A), self.veth(Side::A), mode, extra)
    }
}

/// they come; dropping it kills the process.
pub struct Observer {
    child: Child,
    stdout: Arc<Lines>,
    stderr: Arc<Lines>,
    readers: Vec<JoinHandle<()>>,
}

/// How an observed xdp-hello ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

impl Finished {
    /// The closing summary, if there is one on stderr.
    pub fn summary(&self) -> Option<Summary> {
        self.stderr.iter().find_map(|line| Summary::parse(line))
    }
}

impl Observer {
    /// Starts `binary -i IFACE -m MODE EXTRA…` inside namespace `ns` (through
    /// `ip netns exec`, so its /sys shows the namespace's interfaces) and
    /// waits until it says it is attached. If it exits first, the error
    /// carries what it said. It gets SIGTERM if the thread that calls this
    /// ends first, the whole process included, however it ends.
    pub fn spawn(
        binary: &Path,
        ns: &str,
        iface: &str,
        mode: Mode,
        extra: &[&str],
    ) -> Result<Observer> {
        let mut observer = Observer::start(
            binary,
            ns,
            iface,
            mode,
            extra,
            Stdio::piped(),
            Stdio::piped(),
        )?;
        observer.wait_attached(ns, iface)?;
        Ok(observer)
    }

    /// Starts it as [`Observer::spawn`] does, with stdout and stderr where
    /// the caller says (`Stdio::piped()`: collected, as `spawn` does), and
    /// returns at once: for output that cannot be written, and for signals
    /// that come before the attach.
    pub fn start(
        binary: &Path,
        ns: &str,
        iface: &str,
        mode: Mode,
        extra: &[&str],
        stdout: Stdio,
        stderr: Stdio,
    ) -> Result<Observer> {
        // `ip netns exec` execs the binary: the child's pid is xdp-hello's,
        // so signals reach it directly.
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", ns])
            .arg(binary)
            .args(["-i", iface, "-m", &mode.to_string()])
            .args(extra)
            .stdout(stdout)
            .stderr(stderr);
        Observer::start_command(command)
    }

    /// Starts `command` (stdout and stderr set by the caller; `Stdio::piped()`
    /// collects them) that must end in xdp-hello's exec without a fork, so
    /// its pid is xdp-hello's; returns at once. As for [`Observer::spawn`], it
    /// gets SIGTERM if the calling thread ends first.
    pub fn start_command(mut command: Command) -> Result<Observer> {
        command.stdin(Stdio::null());
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: runs in the forked child before exec, and calls only
        // prctl(2) and getppid(2), both async-signal-safe; no allocation.
        unsafe {
            command.pre_exec(move || {
                // SIGTERM, which xdp-hello handles by detaching, when this
                // process dies however it dies (even SIGKILL), so nothing
                // stays attached in namespaces no one will remove. It
                // survives both execs, `ip` and xdp-hello being neither
                // set-uid nor capability-marked. The kernel sends it when the
                // *thread* that spawned exits: an Observer must not outlive
                // the thread that made it.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The parent died between fork and prctl: no signal is coming.
                if libc::getppid() != parent {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {command:?}"))?;
        let stdout = Arc::new(Lines::default());
        let stderr = Arc::new(Lines::default());
        let readers = vec![
            collect_lines(child.stdout.take(), stdout.clone()),
            collect_lines(child.stderr.take(), stderr.clone()),
        ];
        Ok(Observer {
            child,
            stdout,
            stderr,
            readers,
        })
    }

    /// Waits until it says (on collected stderr) that it is attached to
    /// `iface` in `ns`; kills it if it does not.
    pub fn wait_attached(&mut self, ns: &str, iface: &str) -> Result<()> {
        let banner = self
            .stderr
            .wait_for(|line| line.contains(" attached to "), ATTACH_TIMEOUT);
        if banner.is_none() {
            let status = self.kill_and_wait();
            bail!(
                "xdp-hello did not attach to {iface} in {ns} ({}): {}",
                status.map_or("still running after 10 s".into(), |s| s.to_string()),
                self.stderr.snapshot().join(" | ")
            );
        }
        Ok(())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The stdout lines so far.
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.snapshot()
    }

    /// The stderr lines so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.snapshot()
    }

    /// Waits up to `timeout` until `count` stdout lines match `what`; returns
    /// how many matched in the end.
    pub fn wait_for_lines(
        &self,
        count: usize,
        what: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> usize {
        self.stdout.wait_until(
            |lines| lines.iter().filter(|l| what(l)).count() >= count,
            timeout,
        );
        self.stdout().iter().filter(|l| what(l)).count()
    }

    /// Sends `signal` (SIGINT, SIGTERM, SIGKILL, …), waits for the exit and
    /// returns the status with everything the process wrote.
    pub fn stop(self, signal: libc::c_int) -> Result<Finished> {
        self.signal(signal)?;
        self.exit_within(EXIT_TIMEOUT)
            .with_context(|| format!("after signal {signal}"))
    }

    /// Sends `signal` and returns at once.
    pub fn signal(&self, signal: libc::c_int) -> Result<()> {
        // SAFETY: a plain kill(2) on our own child, not yet reaped.
        if unsafe { libc::kill(self.child.id() as libc::pid_t, signal) } != 0 {
            return Err(io::Error::last_os_error()).context("signalling xdp-hello");
        }
        Ok(())
    }

    /// Sends SIGHUP and waits up to `timeout` for the stderr line about
    /// reload `n` (from 1), which it returns.
    pub fn reload(&self, n: usize, timeout: Duration) -> Result<String> {
        self.signal(libc::SIGHUP)?;
        let prefix = format!("xdp-hello: reload {n} ");
        let find = |lines: &[String]| lines.iter().find(|l| l.starts_with(&prefix)).cloned();
        self.stderr
            .wait_until(|lines| find(lines).is_some(), timeout);
        find(&self.stderr())
            .with_context(|| format!("no '{prefix}…' after SIGHUP: {:?}", self.stderr()))
    }

    /// Waits up to `timeout` for it to exit by itself (it is killed if it
    /// does not) and returns the status with everything it wrote.
    pub fn exit_within(mut self, timeout: Duration) -> Result<Finished> {
        let status = match wait_within(&mut self.child, timeout)? {
            Some(status) => status,
            None => {
                self.kill_and_wait();
                bail!("xdp-hello did not exit within {timeout:?}");
            }
        };
        // The pipes close with the process: the readers have everything.
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Ok(Finished {
            status,
            stdout: self.stdout.snapshot(),
            stderr: self.stderr.snapshot(),
        })
    }

    fn kill_and_wait(&mut self) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        // A process left running would keep its namespace alive after
        // `ip netns del`, with the program attached.
        self.kill_and_wait();
    }
}

/// The counts of xdp-hello's closing line: `xdp-hello: detached from X.
/// packets: 3 passed, 0 dropped, 0 aborted; notices: 3 shown, 0 lost (ring full)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub passed: u64,
    pub dropped: u64,
    pub aborted: u64,
    pub shown: u64,
    pub lost: u64,
}

impl Summary {
    pub fn parse(line: &str) -> Option<Summary> {
        let (_, counts) = line.split_once("packets:")?;
        let words: Vec<&str> = counts
            .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
            .filter(|word| !word.is_empty())
            .collect();
        // Each count is the number just before its word.
        let count = |name: &str| -> Option<u64> {
            words
                .windows(2)
                .find(|pair| pair[1] == name)
                .and_then(|pair| pair[0].parse().ok())
        };
        Some(Summary {
            passed: count("passed")?,
            dropped: count("dropped")?,
            aborted: count("aborted")?,
            shown: count("shown")?,
            lost: count("lost")?,
        })
    }
}

/// Lines of a pipe, collected by a reader thread while others wait on them.
#[derive(Default)]
struct Lines {
    state: Mutex<LinesState>,
    changed: Condvar,
}

#[derive(Default)]
struct LinesState {
    lines: Vec<String>,
    closed: bool,
}

impl Lines {
    fn push(&self, line: String) {
        self.state.lock().unwrap().lines.push(line);
        self.changed.notify_all();
    }

    fn close(&self) {
        self.state.lock().unwrap().closed = true;
        self.changed.notify_all();
    }

    fn snapshot(&self) -> Vec<String> {
        self.state.lock().unwrap().lines.clone()
    }

    /// Waits until `done` holds for the lines, the pipe closes, or `timeout`
    /// passes; returns whether `done` held.
    fn wait_until(&self, done: impl Fn(&[String]) -> bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock().unwrap();
        loop {
            if done(&state.lines) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if state.closed || left.is_zero() {
                return false;
            }
            state = self.changed.wait_timeout(state, left).unwrap().0;
        }
    }

    /// The first line matching `what`, waiting for it as `wait_until` does.
    fn wait_for(&self, what: impl Fn(&str) -> bool, timeout: Duration) -> Option<String> {
        self.wait_until(|lines| lines.iter().any(|l| what(l)), timeout);
        self.snapshot().into_iter().find(|l| what(l))
    }
}

fn collect_lines(pipe: Option<impl Read + Send + 'static>, into: Arc<Lines>) -> JoinHandle<()> {
    thread::spawn(move || {
        if let Some(pipe) = pipe {
            let mut reader = BufReader::new(pipe);
            let mut line = Vec::new();
            while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                let text = String::from_utf8_lossy(&line);
                into.push(text.trim_end_matches(['\n', '\r']).to_string());
                line.clear();
            }
        }
        into.close();
    })
}
