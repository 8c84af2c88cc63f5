//! The firewall at scale: how long 10,000 address rules and 1,000 port rules
//! take to load, and what a packet costs with them loaded next to one rule
//! (BPF_PROG_TEST_RUN, 64-byte UDP frames). Goals (issue #3): load < 1 s,
//! cost with 10,000 rules within 10 % of the cost with one.
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
use xdp_hello::rules::{Origin, SourcedRule};

const REPEAT: u32 = 2_000_000;
const ROUNDS: usize = 5;

fn main() {
    if unsafe { libc::geteuid() } != 0 {
        println!("rules bench: skipped, needs root (BPF_PROG_TEST_RUN)");
        return;
    }
    println!("xdp_hello per-packet cost, BPF_PROG_TEST_RUN, 64-byte UDP, repeat {REPEAT}, median of {ROUNDS}");
    println!("{:<44} {:>10} {:>10}", "rule set", "notices", "ns/packet");
    for notice_mode in [abi::NOTICES_NONE, abi::NOTICES_ALL] {
        let one = measure(&one_rule(), notice_mode);
        let many = measure(&many_rules(), notice_mode);
        let mode = if notice_mode == abi::NOTICES_ALL {
            "on"
        } else {
            "off"
        };
        println!(
            "{:<44} {:>10} {:>10.1}",
            "1 rule (deny src 192.0.2.1)", mode, one.cost_ns
        );
        println!(
            "{:<44} {:>10} {:>10.1}   {:+.1} % (goal: within ±10 %)",
            "10,000 address + 1,000 port rules",
            mode,
            many.cost_ns,
            (many.cost_ns / one.cost_ns - 1.0) * 100.0
        );
        if notice_mode == abi::NOTICES_NONE {
            println!(
                "{:<44} {:>10} {:>10.1} ms (goal: < 1000 ms)",
                "  time to load those 11,000 rules", "", many.install_ms
            );
        }
    }
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

fn one_rule() -> Vec<SourcedRule> {
    vec![sourced("deny src 192.0.2.1".into())]
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
