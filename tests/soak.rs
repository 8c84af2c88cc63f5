//! `make soak`: xdp-hello under steady traffic for ten minutes (SOAK_SECONDS
//! sets another length) on a veth pair in namespaces of its own; its RSS and
//! open descriptors, sampled from /proc every few seconds, must stay flat.
//! Not part of `make test` or CI (it is #[ignore]d): run it with
//! `cargo test --release --test soak -- --ignored --nocapture`.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use xdp_hello::loader::Mode;
use xdp_hello::selftest::veth::{Side, TestNet};

// Each test binary uses a part of the shared helpers.
mod common;
#[allow(dead_code)]
mod support;
use support::observer::Observer;

const BINARY: &str = env!("CARGO_BIN_EXE_xdp-hello");
/// Frames a second: steady, well below what the consumer keeps up with.
const RATE: u64 = 10_000;
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Start-up allocations settle in this time; samples before it do not count.
const WARM_UP: Duration = Duration::from_secs(30);
/// What "flat" allows: allocator noise, not a leak (a leak of one byte a
/// notice would be 6 MB in ten minutes).
const RSS_SLACK_KIB: u64 = 1024;

#[derive(Clone, Copy, Debug)]
struct Sample {
    at: Duration,
    rss_kib: u64,
    fds: usize,
}

fn sample(pid: u32, at: Duration) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some(Sample { at, rss_kib, fds })
}

#[test]
#[ignore = "ten minutes: run by `make soak`"]
fn soak_rss_and_fds_stay_flat() {
    common::require_root("the soak (namespaces, veth, bpf())");
    let length = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(600), Duration::from_secs);
    assert!(
        length > WARM_UP * 2,
        "SOAK_SECONDS must exceed {}",
        WARM_UP.as_secs() * 2
    );
    let net = TestNet::new().unwrap();
    let (ns, iface) = (net.ns(Side::A), net.veth(Side::A));
    let mut observer = Observer::start(
        Path::new(BINARY),
        ns,
        iface,
        Mode::Native,
        &[
            "--rule",
            "deny udp dport 9",
            "--rule",
            "allow src 10.211.0.0/24",
            "--stats",
            "60",
        ],
        Stdio::null(),
        Stdio::piped(),
    )
    .unwrap();
    observer.wait_attached(ns, iface).unwrap();
    let pid = observer.pid();
    let sender = support::Sender::start(&net, Some(RATE));

    let started = Instant::now();
    let mut samples = Vec::new();
    println!(
        "soak: {RATE} frames/s for {} s; sampling every {} s",
        length.as_secs(),
        SAMPLE_EVERY.as_secs()
    );
    println!("{:>6} {:>9} {:>4}", "secs", "RSS KiB", "fds");
    while started.elapsed() < length {
        std::thread::sleep(SAMPLE_EVERY);
        let Some(now) = sample(pid, started.elapsed()) else {
            panic!("xdp-hello ended during the soak: {:?}", observer.stderr());
        };
        println!("{:>6} {:>9} {:>4}", now.at.as_secs(), now.rss_kib, now.fds);
        samples.push(now);
    }
    let sent = sender.stop().unwrap();
    let done = observer.stop(libc::SIGINT).unwrap();
    assert_eq!(done.status.code(), Some(0), "{:?}", done.stderr);
    let summary = done.summary().expect("a summary");

    let settled: Vec<Sample> = samples
        .iter()
        .copied()
        .filter(|s| s.at >= WARM_UP)
        .collect();
    let rss = settled.iter().map(|s| s.rss_kib);
    let (rss_min, rss_max) = (rss.clone().min().unwrap(), rss.max().unwrap());
    let fds = settled.iter().map(|s| s.fds);
    let (fds_min, fds_max) = (fds.clone().min().unwrap(), fds.max().unwrap());
    let (first, last) = (settled[0], settled[settled.len() - 1]);
    let flat = rss_max - rss_min <= RSS_SLACK_KIB && fds_min == fds_max;
    println!(
        "soak: {} s, {sent} frames sent, {} packets counted ({} dropped), {} notices shown, {} lost",
        length.as_secs(),
        summary.passed + summary.dropped + summary.aborted,
        summary.dropped,
        summary.shown,
        summary.lost
    );
    println!(
        "soak: after {} s warm-up, {} samples: RSS {} → {} KiB (min {rss_min}, max {rss_max}), \
         fds {} → {} (min {fds_min}, max {fds_max}): {}",
        WARM_UP.as_secs(),
        settled.len(),
        first.rss_kib,
        last.rss_kib,
        first.fds,
        last.fds,
        if flat { "flat" } else { "NOT flat" }
    );
    assert!(flat, "RSS or descriptors grew");
}
