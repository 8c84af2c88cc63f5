//! The firewall at scale: how long 10,000 address rules and 1,000 port rules
//! take to load, and what a packet costs with them loaded next to one rule of
//! the same kind (BPF_PROG_TEST_RUN, 64-byte UDP frames). Goals (issue #3):
//! load < 1 s, cost with 10,000 rules within 10 % of the cost with one.
//! Kinds with no rules cost no lookup at all, so "one rule" is compared with
//! rules of the same kinds: only the number of rules differs.
//!
//! Run: `sudo cargo bench --bench rules` (or `make bench`).

use std::mem::MaybeUninit;
use std::net::Ipv4Addr;
use std::time::Instant;

use etherparse::PacketBuilder;
use libbpf_rs::ProgramInput;
use xdp_hello::abi::{self, Config};
use xdp_hello::firewall::{Firewall, RuleMaps};
use xdp_hello::loader;
use xdp_hello::rules::{Direction, Match, Origin, SourcedRule};

const REPEAT: u32 = 2_000_000;
const ROUNDS: usize = 5;

fn main() {
    if unsafe { libc::geteuid() } != 0 {
        println!("rules bench: skipped, needs root (BPF_PROG_TEST_RUN)");
        return;
    }
    println!(
        "xdp_hello per-packet cost, BPF_PROG_TEST_RUN, 64-byte UDP (matching no rule), \
         repeat {REPEAT}, median of {ROUNDS}"
    );
    let many = many_rules();
    // The same kinds of rule as `many`, one of each: packets do the same
    // lookups, so only the number of rules differs.
    let one_of_each_kind = one_of_each_kind(&many);
    let sources_only: Vec<SourcedRule> =
        many.iter().filter(|r| is_source_rule(r)).cloned().collect();
    for notice_mode in [abi::NOTICES_NONE, abi::NOTICES_ALL] {
        let mode = if notice_mode == abi::NOTICES_ALL {
            "on"
        } else {
            "off"
        };
        println!("\nnotices {mode}");
        println!("{:<52} {:>10}", "rule set", "ns/packet");
        let none = measure(&[], notice_mode);
        println!("{:<52} {:>10.1}", "no rules", none.cost_ns);
        compare(
            "1 source-address rule",
            &sources_only[..1],
            &format!("{} source-address rules", sources_only.len()),
            &sources_only,
            notice_mode,
        );
        compare(
            &format!("{} rules, one of each kind", one_of_each_kind.len()),
            &one_of_each_kind,
            "10,000 address + 1,000 port rules",
            &many,
            notice_mode,
        );
    }
}

/// Prints the cost with `few` and with `lots` and how far apart they are.
fn compare(
    few_name: &str,
    few: &[SourcedRule],
    lots_name: &str,
    lots: &[SourcedRule],
    notice_mode: u32,
) {
    let few_figures = measure(few, notice_mode);
    let lots_figures = measure(lots, notice_mode);
    println!("{few_name:<52} {:>10.1}", few_figures.cost_ns);
    println!(
        "{lots_name:<52} {:>10.1}   {:+.1} % (goal: within 10 %); loaded in {:.0} ms (goal: < 1000 ms)",
        lots_figures.cost_ns,
        (lots_figures.cost_ns / few_figures.cost_ns - 1.0) * 100.0,
        lots_figures.install_ms
    );
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
            Match::Port(transport, ..) => format!("{transport} ports"),
            Match::Icmp(v6, _) => format!("icmp {v6}"),
        };
        if !seen.contains(&kind) {
            seen.push(kind);
            picked.push(rule.clone());
        }
    }
    picked
}

struct Figures {
    cost_ns: f64,
    install_ms: f64,
}

fn measure(rules: &[SourcedRule], notice_mode: u32) -> Figures {
    let config = Config {
        default_verdict: abi::XDP_PASS as u32,
        notice_mode,
    };
    let mut object = MaybeUninit::uninit();
    let skel = loader::load(&mut object, 1 << 20, config).expect("loading the program");
    let maps = RuleMaps::of(&skel.maps);
    let mut firewall = Firewall::new();
    let started = Instant::now();
    firewall.install(&maps, rules).expect("installing rules");
    let install_ms = started.elapsed().as_secs_f64() * 1e3;

    // A source the rules do not match: every lookup walks the tries in vain.
    let frame = udp_frame(Ipv4Addr::new(198, 51, 100, 7), 40000, 4789);
    let mut costs: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let input = ProgramInput {
                data_in: Some(&frame),
                repeat: REPEAT,
                ..Default::default()
            };
            let output = skel.progs.xdp_hello.test_run(input).expect("test_run");
            assert_eq!(output.return_value, abi::XDP_PASS as u32);
            output.duration.as_nanos() as f64
        })
        .collect();
    costs.sort_by(f64::total_cmp);
    Figures {
        cost_ns: costs[ROUNDS / 2],
        install_ms,
    }
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
