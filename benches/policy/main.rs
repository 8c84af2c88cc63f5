//! `make bench`'s figures, side by side in one run: ns/packet with 1 to
//! 10,000 rules, ours next to xdp-filter with 10,000 addresses, packets/s
//! on a real veth next to the empty program, xdp-filter and nftables,
//! start-up and footprint. Drives the built binary; one table, then the
//! `ratio …: X` lines.
//!
//! Run: `make bench`, or as root `cargo bench --bench policy [-- --mixed]
//! [per-packet] [scale] [xdp-filter] [veth] [startup] [consumer]`; `-- --print-rules N` shows a set.

#[allow(dead_code)]
#[path = "../../tests/support/mod.rs"]
mod support;

#[allow(dead_code)]
#[path = "../../tests/support/rules_file.rs"]
mod rules_file;

mod c_objects;
mod consumer;
mod frames;
#[allow(dead_code)]
#[path = "../../tests/support/frames.rs"]
mod fuzz_frames;
mod nftables;
mod ours;
mod per_packet;
mod prog_run;
mod report;
mod rulegen;
mod scale;
mod startup;
mod twin_rules;
mod veth;
mod xdp_filter;

use std::process::ExitCode;
use std::time::Instant;

use rulegen::Shapes;

/// The rules the sets are made of: mixed shapes, as the issue asks
/// (`-- --one-field` for sets of one-field rules).
const SHAPES: Shapes = Shapes::Mixed;
/// Every run draws the same rules.
pub const SEED: u64 = 9;
/// What one run measures, in this order.
const PARTS: [&str; 6] = [
    "per-packet",
    "scale",
    "xdp-filter",
    "veth",
    "startup",
    "consumer",
];

fn main() -> ExitCode {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        eprintln!("bench policy skipped: attaching XDP programs needs root (euid is {euid})");
        return ExitCode::SUCCESS;
    }
    let args: Vec<String> = std::env::args().collect();
    let shapes = if args.iter().any(|a| a == "--mixed") {
        Shapes::Mixed
    } else if args.iter().any(|a| a == "--one-field") {
        Shapes::OneField
    } else {
        SHAPES
    };
    // `--print-rules N`: the set of N rules as both sides get it, and no bench.
    if let Some(count) = args
        .iter()
        .position(|a| a == "--print-rules")
        .and_then(|i| args.get(i + 1))
    {
        let rules = rulegen::rule_set(count.parse().unwrap_or(100), shapes, SEED);
        print!("{}", rulegen::ours_file(&rules));
        println!("# the same as nftables rules:");
        rules
            .iter()
            .flat_map(rulegen::Rule::nft)
            .for_each(|line| println!("# {line}"));
        return ExitCode::SUCCESS;
    }
    xdp_hello::selftest::veth::remove_stale_namespaces();
    let started = Instant::now();
    println!(
        "policy bench: {}, rules of {} shape, seed {SEED}",
        ours::binary().display(),
        shapes.name()
    );
    let mut report = report::Report::new(shapes.name());
    let mut failed = false;
    // Parts named on the command line (`-- nftables`), else all of them.
    let named: Vec<&str> = PARTS
        .into_iter()
        .filter(|part| args.iter().any(|a| a == part))
        .collect();
    let chosen = if named.is_empty() {
        PARTS.to_vec()
    } else {
        named
    };
    for name in chosen {
        let part_started = Instant::now();
        let done = match name {
            "per-packet" => per_packet::run(&mut report),
            "scale" => scale::run(&mut report, shapes),
            "xdp-filter" => xdp_filter::run(&mut report),
            "veth" => veth::run(&mut report),
            "startup" => startup::run(&mut report, shapes),
            "consumer" => consumer::run(&mut report),
            _ => unreachable!("a part of PARTS"),
        };
        let seconds = part_started.elapsed().as_secs_f64();
        report.part_time(name, seconds);
        match done {
            Ok(()) => eprintln!("policy bench: {name} done in {seconds:.0} s"),
            Err(err) => {
                eprintln!("policy bench: {name} failed: {err:#}");
                failed = true;
            }
        }
    }
    report.print();
    match report.save() {
        Ok(path) => println!(
            "\nsaved {} ({:.0} s)",
            path.display(),
            started.elapsed().as_secs_f64()
        ),
        Err(err) => {
            eprintln!("policy bench: {err:#}");
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
