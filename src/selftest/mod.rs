//! `xdp-hello selftest`: does xdp-hello work on this kernel? Loads the
//! program, runs crafted packets through BPF_PROG_TEST_RUN (also under rule
//! sets, and across a live swap of them), then attaches for
//! real over a veth pair in namespaces of its own, in native and skb mode.
//! One line per check, then `N passed, N failed`.

pub mod attach;
mod features;
pub mod firewall;
pub mod packets;
pub mod test_run;
pub mod veth;

use std::fmt::Display;

use anyhow::{bail, Context, Result};

use crate::loader::Mode;

/// Tallies checks and prints one line for each.
#[derive(Default)]
pub struct Report {
    pub passed: u32,
    pub failed: u32,
    pub skipped: u32,
}

impl Report {
    /// Records the outcome of one check and prints its line.
    pub fn check<E: Display>(&mut self, name: &str, outcome: Result<(), E>) {
        match outcome {
            Ok(()) => {
                self.passed += 1;
                println!("ok    {name}");
            }
            Err(why) => {
                self.failed += 1;
                println!("FAIL  {name}: {why:#}");
            }
        }
    }

    /// Records a check this kernel cannot run, and why.
    pub fn skip(&mut self, name: &str, why: impl Display) {
        self.skipped += 1;
        println!("skip  {name}: {why}");
    }

    /// Prints the closing tally; true when nothing failed.
    pub fn finish(&self) -> bool {
        if self.skipped > 0 {
            println!(
                "{} passed, {} failed, {} skipped",
                self.passed, self.failed, self.skipped
            );
        } else {
            println!("{} passed, {} failed", self.passed, self.failed);
        }
        self.failed == 0
    }
}

/// Runs every check; true when all passed.
pub fn run() -> Result<bool> {
    if unsafe { libc::geteuid() } != 0 {
        bail!("selftest needs root (it loads BPF programs and makes network namespaces): run it with sudo");
    }
    println!(
        "xdp-hello selftest on Linux {}",
        crate::loader::kernel_release()
    );
    let mut report = Report::default();
    let features = features::check();
    let features_ok = features.is_ok();
    report.check("kernel features: BPF ring buffer, LPM trie, XDP", features);
    if features_ok {
        test_run::run_all(&mut report);
        firewall::run_all(&mut report);
        let binary = std::env::current_exe().context("finding the xdp-hello binary")?;
        for mode in [Mode::Native, Mode::Skb] {
            report.check(
                &format!(
                    "attach over veth in {mode} mode: ping and UDP seen, detached after SIGINT"
                ),
                attach::check(&binary, mode),
            );
        }
    }
    Ok(report.finish())
}
