//! The firewall at scale: how long 10,000 address rules and 1,000 port rules
//! take to load, and what a packet costs with them loaded next to one rule of
//! the same kind (BPF_PROG_TEST_RUN, 64-byte UDP frames). Goals:
//! load < 1 s, cost with 10,000 rules within 10 % of the cost with one.
//! Kinds with no rules cost no lookup at all, so "one rule" is compared with
//! rules of the same kinds: only the number of rules differs.
//!
//! Run: `sudo cargo bench --bench rules` (or `make bench`).

use std::mem::MaybeUninit;
use std::net::Ipv4Addr;
use std::time::Instant;

use etherparse::PacketBuilder;
use libbpf_rs::{OpenObject, ProgramInput};
use xdp_hello::abi::{self, Config};
use xdp_hello::firewall::{Firewall, RuleMaps};
use xdp_hello::loader;
use xdp_hello::rules::{Direction, Match, Origin, SourcedRule};
use xdp_hello::skel::XdpHelloSkel;

const REPEAT: u32 = 1_000_000;
const ROUNDS: usize = 9;

fn main() {
    if unsafe { libc::geteuid() } != 0 {
        println!("rules bench: skipped, needs root (BPF_PROG_TEST_RUN)");
        return;
    }
    println!(
        "xdp_hello per-packet cost with rules, BPF_PROG_TEST_RUN, 64-byte UDP matching no rule, \
         notices off,\nrepeat {REPEAT}, {ROUNDS} rounds alternating between the two sets"
    );
    let many = many_rules();
    // The same kinds of rule as `many`, one of each: packets do the same
    // lookups, so only the number of rules differs.
    let one_of_each_kind = one_of_each_kind(&many);
    let sources: Vec<SourcedRule> = many.iter().filter(|r| is_source_rule(r)).cloned().collect();
    println!(
        "\n{:<40} {:>9} {:>9} {:>12} {:>10}",
        "rule set", "median ns", "min ns", "vs few (min)", "load ms"
    );
    compare(("no rules", &[]), ("1 source-address rule", &sources[..1]));
    compare(
        ("1 source-address rule", &sources[..1]),
        (&format!("{} source-address rules", sources.len()), &sources),
    );
    compare(
        (
            &format!("{} rules, one of each kind", one_of_each_kind.len()),
            &one_of_each_kind,
        ),
        ("10,000 address + 1,000 port rules", &many),
    );
    println!("\ngoals: many rules within 10 % of one rule of the same kinds; load < 1000 ms");
}

/// A program loaded with a rule set, ready to run frames through.
struct Loaded<'obj> {
    skel: XdpHelloSkel<'obj>,
    install_ms: f64,
}

fn load<'obj>(object: &'obj mut MaybeUninit<OpenObject>, rules: &[SourcedRule]) -> Loaded<'obj> {
    let config = Config {
        default_verdict: abi::XDP_PASS as u32,
        notice_mode: abi::NOTICES_NONE,
    };
    let skel = loader::load(object, 1 << 20, config).expect("loading the program");
    let started = Instant::now();
    Firewall::new()
        .install(&RuleMaps::of(&skel.maps), rules)
        .expect("installing rules");
    Loaded {
        install_ms: started.elapsed().as_secs_f64() * 1e3,
        skel,
    }
}

/// ns/packet of one round.
fn round(loaded: &Loaded<'_>, frame: &[u8]) -> f64 {
    let input = ProgramInput {
        data_in: Some(frame),
        repeat: REPEAT,
        ..Default::default()
    };
    let output = loaded
        .skel
        .progs
        .xdp_hello
        .test_run(input)
        .expect("test_run");
    assert_eq!(output.return_value, abi::XDP_PASS as u32);
    output.duration.as_nanos() as f64
}

/// Measures both sets in alternating rounds (so drift on a shared machine
/// hits both alike) and prints them side by side.
fn compare(few: (&str, &[SourcedRule]), many: (&str, &[SourcedRule])) {
    // A source the rules do not match: every lookup walks the tries in vain.
    let frame = udp_frame(Ipv4Addr::new(198, 51, 100, 7), 40000, 4789);
    let (mut few_object, mut many_object) = (MaybeUninit::uninit(), MaybeUninit::uninit());
    let few_loaded = load(&mut few_object, few.1);
    let many_loaded = load(&mut many_object, many.1);
    let (mut few_costs, mut many_costs) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        few_costs.push(round(&few_loaded, &frame));
        many_costs.push(round(&many_loaded, &frame));
    }
    let (few_median, few_min) = median_and_min(&mut few_costs);
    let (many_median, many_min) = median_and_min(&mut many_costs);
    println!(
        "{:<40} {few_median:>9.0} {few_min:>9.0} {:>12} {:>10.0}",
        few.0, "", few_loaded.install_ms
    );
    println!(
        "{:<40} {many_median:>9.0} {many_min:>9.0} {:>+11.1}% {:>10.0}",
        many.0,
        (many_min / few_min - 1.0) * 100.0,
        many_loaded.install_ms
    );
}

fn median_and_min(costs: &mut [f64]) -> (f64, f64) {
    costs.sort_by(f64::total_cmp);
    (costs[costs.len() / 2], costs[0])
}

fn is_source_rule(rule: &SourcedRule) -> bool {
    matches!(rule.rule.matches, Match::Address(Direction::Src, _))
}

/// The first rule of each kind (address src/dst, tcp/udp ports) in `rules`.
fn one_of_each_kind(rules: &[SourcedRule]) -> Vec<SourcedRule> {
    let mut seen = Vec::new();
    let mut picked = Vec::new();
    for rule in rules {
        let kind = match rule.rule.matches {
            Match::Address(dir, _) => format!("address {dir}"),
            Match::Port { transport, .. } => format!("{transport} ports"),
            Match::Icmp { v6, .. } => format!("icmp {v6}"),
            Match::Proto(_) => "protocol".to_string(),
        };
        if !seen.contains(&kind) {
            seen.push(kind);
            picked.push(rule.clone());
        }
    }
    picked
}

fn sourced(text: String) -> SourcedRule {
    SourcedRule {
        rule: text.parse().unwrap(),
        origin: Origin::Flag(0),
    }
}

/// 10,000 address rules of mixed prefix lengths, sources and destinations,
/// and 1,000 port rules (single ports and ranges), none matching the frame.
fn many_rules() -> Vec<SourcedRule> {
    let mut rules = Vec::new();
    for i in 0..10_000u32 {
        let dir = if i % 2 == 0 { "src" } else { "dst" };
        let addr = Ipv4Addr::from(0x0a00_0000 | (i << 8));
        let text = match i % 3 {
            0 => format!("deny {dir} {addr}"),
            1 => format!("deny {dir} {addr}/24"),
            _ => format!("allow {dir} {}", Ipv4Addr::from(0x0a00_0000 | (i << 8) | 1)),
        };
        rules.push(sourced(text));
    }
    for i in 0..1_000u32 {
        let port = 10_000 + i * 20;
        let text = match i % 4 {
            0 => format!("deny tcp dport {port}"),
            1 => format!("allow udp sport {port}-{}", port + 9),
            2 => format!("deny udp dport {port}"),
            _ => format!("allow tcp sport {port}-{}", port + 5),
        };
        rules.push(sourced(text));
    }
    rules
}

fn udp_frame(src: Ipv4Addr, sport: u16, dport: u16) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src.octets(), [192, 0, 2, 99], 64)
        .udp(sport, dport);
    let payload = [0u8; 64 - 42];
    let mut frame = Vec::with_capacity(builder.size(payload.len()));
    builder.write(&mut frame, &payload).unwrap();
    frame
}
