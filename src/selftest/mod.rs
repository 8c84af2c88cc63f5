//! `xdp-hello selftest`: does xdp-hello work on this kernel? Loads the
//! program, runs crafted packets through BPF_PROG_TEST_RUN (also under rule
//! sets, and across a live swap of them), then attaches for
//! real over a veth pair in namespaces of its own, in native and skb mode.
//! One line per check, then `N passed, N failed`. Interrupted (SIGINT or
//! SIGTERM), it removes its namespaces and exits with 130 or 143; killed
//! (SIGKILL), it leaves them to the next run, which removes them first.

pub mod attach;
pub mod command;
mod features;
pub mod firewall;
pub mod packets;
pub mod test_run;
pub mod veth;

use std::fmt::Display;
use std::io::{self, Write};
use std::thread;

use anyhow::{bail, Context, Result};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

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
    clean_up_on_signal()?;
    // A run killed with SIGKILL could not remove its namespaces: this one does.
    let stale = veth::remove_stale_namespaces();
    if !stale.is_empty() {
        eprintln!(
            "xdp-hello selftest: removed network namespaces left behind by runs that were \
             killed: {}",
            stale.join(", ")
        );
    }
    println!("xdp-hello selftest on Linux {}", crate::kernel::release());
    let mut report = Report::default();
    let features = features::check();
    let features_ok = features.is_ok();
    report.check(
        "kernel features: BPF ring buffer, mmapable arrays, XDP",
        features,
    );
    if features_ok {
        test_run::run_all(&mut report);
        firewall::run_all(&mut report);
        for mode in [Mode::Native, Mode::Skb] {
            report.check(
                &format!("attach over veth in {mode} mode: ping and UDP seen, then detached"),
                attach::check(mode),
            );
        }
        report.check(
            "no rules, then some: the program without its classifier replaced on its link",
            attach::classifier_swap(),
        );
    }
    Ok(report.finish())
}

/// On SIGINT or SIGTERM, from a thread of its own: removes the namespaces
/// this process made (no destructor runs on `exit`, so `TestNet::drop`
/// cannot), says so on stderr and exits with 128 + the signal, as the
/// signal itself would have. The links it attached close with it.
fn clean_up_on_signal() -> Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("installing signal handlers")?;
    thread::Builder::new()
        .name("selftest-signals".into())
        .spawn(move || {
            let Some(signal) = signals.forever().next() else {
                return;
            };
            let removed = veth::remove_namespaces_of_this_process();
            let name = if signal == SIGINT {
                "SIGINT"
            } else {
                "SIGTERM"
            };
            let _ = io::stdout().flush();
            if removed.is_empty() {
                eprintln!("xdp-hello selftest: {name}: stopped; no network namespaces to remove");
            } else {
                eprintln!(
                    "xdp-hello selftest: {name}: stopped; removed network namespaces {}",
                    removed.join(", ")
                );
            }
            std::process::exit(128 + signal);
        })
        .context("starting the signal thread")?;
    Ok(())
}
