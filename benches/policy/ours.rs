//! xdp-hello as users run it: the built binary started on a bench veth
//! with a rules file, notices off; the program it attached, found by id;
//! its start-up and its SIGHUP reload timed from outside.

use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xdp_hello::loader::Mode;
use xdp_hello::selftest::veth::{Side, TestNet};

use crate::prog_run::Prog;
use crate::rulegen::{self, Rule};
use crate::rules_file::RulesFile;
use crate::support::observer::{Observe, Observer};
use crate::support::xdp_on;

/// The binary cargo built with the bench; XDP_HELLO_BIN=PATH times another
/// build (a branch's, an older one's) with the same rules and frames.
pub fn binary() -> PathBuf {
    std::env::var_os("XDP_HELLO_BIN")
        .map_or_else(|| env!("CARGO_BIN_EXE_xdp-hello").into(), PathBuf::from)
}
/// How long a reload may take to be logged before the bench gives up.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// xdp-hello running on side A of a `TestNet`.
pub struct Ours {
    observer: Observer,
    pub prog: Prog,
    /// Kept for SIGHUP, removed on drop.
    _rules: Option<RulesFile>,
    reloads: usize,
}

impl Ours {
    /// Starts it with `rules` (none: no --rules at all) and returns once it
    /// says it is attached, with the time that took from the spawn.
    pub fn start(net: &TestNet, mode: Mode, rules: &[Rule]) -> Result<(Ours, Duration)> {
        let file = (!rules.is_empty()).then(|| {
            let file = RulesFile::new("bench");
            file.write(&rulegen::ours_file(rules));
            file
        });
        let mut args = vec!["--notices", "none"];
        if let Some(file) = &file {
            args.extend(["--rules", file.path()]);
        }
        let started = Instant::now();
        let observer = net.observe(&binary(), mode, &args)?;
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

    pub fn stop(self) -> Result<()> {
        let finished = self.observer.stop(libc::SIGINT)?;
        if !finished.status.success() {
            bail!(
                "xdp-hello ended with {}: {}",
                finished.status,
                finished.stderr.join(" | ")
            );
        }
        Ok(())
    }
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
