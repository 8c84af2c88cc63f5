//! `xdp-hello selftest`: does xdp-hello work on this kernel? Loads the
//! program, runs crafted packets through BPF_PROG_TEST_RUN, then attaches for
//! real over a veth pair in namespaces of its own, in native and skb mode.
//! One line per check, then `N passed, N failed`.

pub mod veth;

pub mod packets;
pub mod test_run;

use std::fmt::Display;

mod features;

/// Tallies checks and prints one line for each.
#[derive(Default)]
pub struct Report {
    pub passed: u32,
    pub failed: u32,
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

    /// Prints the closing tally; true when nothing failed.
    pub fn finish(&self) -> bool {
        println!("{} passed, {} failed", self.passed, self.failed);
        self.failed == 0
    }
}

/// Runs every check; true when all passed.
pub fn run() -> anyhow::Result<bool> {
    let mut report = Report::default();
    report.check("kernel features", features::check());
    Ok(report.finish())
}
