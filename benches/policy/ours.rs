//! xdp-hello as users run it: the built binary started on a bench veth
//! with a rules file, notices off or as asked (stdout to /dev/null); the
//! program it attached, found by id; its start-up, SIGHUP reload and peak
//! RSS measured from outside.

use std::io;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xdp_hello::loader::Mode;
use xdp_hello::selftest::veth::{Side, TestNet};

use crate::prog_run::Prog;
use crate::rulegen::{self, Rule};
use crate::rules_file::RulesFile;
use crate::support::observer::Observer;
use crate::support::xdp_on;

/// The binary cargo built with the bench; XDP_HELLO_BIN=PATH times another
/// build (a branch's, an older one's) with the same rules and frames.
pub fn binary() -> PathBuf {
    std::env::var_os("XDP_HELLO_BIN")
        .map_or_else(|| env!("CARGO_BIN_EXE_xdp-hello").into(), PathBuf::from)
}
/// How long a reload may take to be logged before the bench gives up.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long it may take to exit after SIGINT.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);
/// Notices off: what the per-packet and scale figures run with.
pub const NOTICES_NONE: &[&str] = &["--notices", "none"];

/// xdp-hello running on side A of a `TestNet`.
pub struct Ours {
    observer: Observer,
    pub prog: Prog,
    /// Kept for SIGHUP, removed on drop.
    _rules: Option<RulesFile>,
    reloads: usize,
}

impl Ours {
    /// Starts it with `rules` (none: no --rules at all), notices off, and
    /// returns once it says it is attached, with the time that took from
    /// the spawn.
    pub fn start(net: &TestNet, mode: Mode, rules: &[Rule]) -> Result<(Ours, Duration)> {
        Ours::start_with(net, mode, rules, NOTICES_NONE)
    }

    /// As [`Ours::start`], with `notices` (`--notices all`, …) instead of
    /// notices off; its stdout, the notices, goes to /dev/null.
    pub fn start_with(
        net: &TestNet,
        mode: Mode,
        rules: &[Rule],
        notices: &[&str],
    ) -> Result<(Ours, Duration)> {
        let file = (!rules.is_empty()).then(|| {
            let file = RulesFile::new("bench");
            file.write(&rulegen::ours_file(rules));
            file
        });
        let mut args = notices.to_vec();
        if let Some(file) = &file {
            args.extend(["--rules", file.path()]);
        }
        let (ns, iface) = (net.ns(Side::A), net.veth(Side::A));
        let started = Instant::now();
        let mut observer = Observer::start(
            &binary(),
            ns,
            iface,
            mode,
            &args,
            Stdio::null(),
            Stdio::piped(),
        )?;
        observer.wait_attached(ns, iface)?;
        let took = started.elapsed();
        let ids = xdp_on(net, Side::A)?;
        let [id] = ids[..] else {
            bail!(
                "expected one XDP program on {}, found {ids:?}",
                net.veth(Side::A)
            );
        };
        let ours = Ours {
            observer,
            prog: Prog::by_id(id)?,
            _rules: file,
            reloads: 0,
        };
        Ok((ours, took))
    }

    /// SIGHUP, then the time until it logs that the reload is done.
    pub fn reload(&mut self) -> Result<Duration> {
        self.reloads += 1;
        let done = format!("reload {} of", self.reloads);
        let started = Instant::now();
        self.observer.signal(libc::SIGHUP)?;
        while started.elapsed() < RELOAD_TIMEOUT {
            if let Some(line) = self
                .observer
                .stderr()
                .into_iter()
                .find(|l| l.contains(&done))
            {
                if line.contains("failed") {
                    bail!("xdp-hello could not reload its rules: {line}");
                }
                return Ok(started.elapsed());
            }
            thread::sleep(Duration::from_micros(200));
        }
        bail!("xdp-hello logged no reload within {RELOAD_TIMEOUT:?}")
    }

    /// Its process id (`ip netns exec` execs it: the child's is its own).
    pub fn pid(&self) -> u32 {
        self.observer.pid()
    }

    pub fn stop(self) -> Result<()> {
        self.stop_with_peak_rss().map(drop)
    }

    /// Stops it (SIGINT) and returns its peak RSS in KiB (`peak_rss_at_exit`).
    pub fn stop_with_peak_rss(self) -> Result<u64> {
        self.observer.signal(libc::SIGINT)?;
        let peak = peak_rss_at_exit(self.observer.pid(), EXIT_TIMEOUT);
        let finished = self.observer.exit_within(EXIT_TIMEOUT)?;
        if !finished.status.success() {
            bail!(
                "xdp-hello ended with {}: {}",
                finished.status,
                finished.stderr.join(" | ")
            );
        }
        peak
    }
}

/// Peak RSS in KiB of what child `pid` runs when it exits within `timeout`:
/// the kernel's high-water mark of its memory (`VmHWM`), as last read while
/// it ran. Not wait's `ru_maxrss`: that keeps the mark of every image the
/// process was, and a forked child starts with a copy of this bench's
/// memory, tens of MiB once the twin check has compiled its rule sets.
/// WNOWAIT leaves it a zombie, for whoever holds its `Child` to reap as
/// usual (the Observer; `Command`).
pub fn peak_rss_at_exit(pid: u32, timeout: Duration) -> Result<u64> {
    let deadline = Instant::now() + timeout;
    let mut peak = None;
    loop {
        // Gone once it has exited (a zombie has no memory).
        if let Some(now) = high_water_kib(pid) {
            peak = Some(now);
        }
        // SAFETY: plain data, all zeros valid; the kernel fills it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a live local of the right type.
        let ret = unsafe {
            libc::waitid(
                libc::P_PID,
                pid,
                &mut info,
                libc::WEXITED | libc::WNOWAIT | libc::WNOHANG,
            )
        };
        if ret != 0 {
            return Err(io::Error::last_os_error()).with_context(|| format!("waitid on {pid}"));
        }
        // SAFETY: waitid filled `info` (si_pid 0: not exited yet).
        if unsafe { info.si_pid() } != 0 {
            return peak
                .with_context(|| format!("process {pid} exited before its memory was read"));
        }
        if Instant::now() >= deadline {
            bail!("process {pid} did not exit within {timeout:?}");
        }
        thread::sleep(Duration::from_micros(200));
    }
}

/// `VmHWM` of `pid` in KiB, while it has memory.
fn high_water_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What `ip netns exec NS true` costs: the part of a measured start-up
/// that is not xdp-hello's.
pub fn netns_exec_overhead(net: &TestNet) -> Result<Duration> {
    let started = Instant::now();
    let status = Command::new("ip")
        .args(["netns", "exec", net.ns(Side::A), "true"])
        .status()
        .context("running ip netns exec")?;
    if !status.success() {
        bail!("ip netns exec {} true failed: {status}", net.ns(Side::A));
    }
    Ok(started.elapsed())
}
