//! What the XDP program costs per packet, measured with BPF_PROG_TEST_RUN,
//! next to its anchors: figures measured before on this kind of machine
//! (Debian 12 VM, kernel 6.18) for an empty XDP program and for minimal
//! Rust and C programs built the same way (parse only, parse + notice).
//! Needs root: `sudo cargo bench --bench test_run`.
//!
//! A notice costs differently whether it is delivered (reserve, clock, copy,
//! submit) or the ring is full (a failed reserve), so the program is timed
//! with a ring that has room for every notice of a run, with the smallest
//! ring (full after a few dozen packets), and with notices off.

use std::mem::MaybeUninit;
use std::process::ExitCode;

use anyhow::{ensure, Context, Result};
use xdp_hello::abi::{Config, NOTICES_NONE};
use xdp_hello::loader;
use xdp_hello::selftest::packets;
use xdp_hello::selftest::test_run::{self, Timing, CONFIG};

const REPEAT: u32 = 1_000_000;
const RUNS: usize = 7;
/// Room for a whole run: a million 88-byte records (an 80-byte notice plus
/// the ring's 8-byte header) need 88 MB.
const ROOMY_RING: u32 = 128 << 20;
/// The smallest ring there is: one page.
const FULL_RING: u32 = 4096;

/// Programs measured before on this kind of machine, ns/packet on the same
/// frame: the floor and a minimal notice program.
const ANCHORS: [(&str, &str); 2] = [
    ("empty XDP program", "26"),
    ("ring buffer program with ktime", "92"),
];

/// One way of running xdp_hello, and its anchor.
struct Setup {
    what: &'static str,
    ring_bytes: u32,
    config: Config,
    anchor: &'static str,
}

const SETUPS: [Setup; 3] = [
    Setup {
        what: "xdp_hello, notice delivered",
        ring_bytes: ROOMY_RING,
        config: CONFIG,
        anchor: "64-83 (parse + notice)",
    },
    Setup {
        what: "xdp_hello, ring full",
        ring_bytes: FULL_RING,
        config: CONFIG,
        anchor: "51-63 (parse + full ring)",
    },
    Setup {
        what: "xdp_hello, notices off",
        ring_bytes: FULL_RING,
        config: Config {
            notice_mode: NOTICES_NONE,
            ..CONFIG
        },
        anchor: "27-36 (parse only)",
    },
];

fn main() -> ExitCode {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        eprintln!("bench test_run skipped: loading XDP programs needs root (euid is {euid})");
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench test_run: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let mut measured = Vec::new();
    for setup in &SETUPS {
        let timings = runs(setup).with_context(|| format!("timing {}", setup.what))?;
        measured.push((setup, timings));
    }
    let (_, delivered) = &measured[0];
    ensure!(
        delivered.iter().all(|t| t.notices_lost == 0),
        "notices were lost with a {} MiB ring: {delivered:?}",
        ROOMY_RING >> 20
    );

    println!(
        "xdp_hello under BPF_PROG_TEST_RUN: 64-byte IPv4/UDP frame, no rules, \
         repeat {REPEAT}, {RUNS} runs\n"
    );
    // Other work on the machine only ever slows a run down: the minimum
    // says what the program can do, the median what to expect.
    println!("{:<32} {:>6} {:>6}   anchor", "ns/packet", "median", "min");
    for (what, anchor) in ANCHORS {
        println!("{what:<32} {:>6} {:>6}   {anchor}", "-", "-");
    }
    for (setup, timings) in &measured {
        let mut ns: Vec<u64> = timings.iter().map(|t| t.ns_per_packet).collect();
        ns.sort_unstable();
        println!(
            "{:<32} {:>6} {:>6}   {}",
            setup.what,
            ns[ns.len() / 2],
            ns[0],
            setup.anchor
        );
    }
    println!();
    for (setup, timings) in &measured {
        let ns: Vec<String> = timings
            .iter()
            .map(|t| t.ns_per_packet.to_string())
            .collect();
        println!("{:<32} runs: {}", setup.what, ns.join(" "));
    }
    Ok(())
}

/// RUNS timings of one loaded program.
fn runs(setup: &Setup) -> Result<Vec<Timing>> {
    let mut object = MaybeUninit::uninit();
    let skel = loader::load(&mut object, setup.ring_bytes, setup.config)?;
    let frame = packets::udp64();
    (0..RUNS)
        .map(|_| test_run::ns_per_packet(&skel, &frame, REPEAT))
        .collect()
}
