//! The address ranges through BPF_PROG_TEST_RUN against the spec
//! (`policy::evaluate`): at the edges of both address spaces, at the deepest
//! search (60,000 hosts in one /64: one bucket), with source and destination
//! ranges sharing a family's array, after larger sets left stale slots
//! behind, and with a family filling its generation to the last slot.

mod common;

use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::PacketBuilder;
use libbpf_rs::ProgramInput;
use xdp_hello::abi::{Config, NOTICES_NONE, XDP_DROP, XDP_PASS};
use xdp_hello::firewall::{Firewall, RuleMaps, RuleSet};
use xdp_hello::loader;
use xdp_hello::policy::{self, evaluate, Action, Rule};
use xdp_hello::skel::XdpHelloSkel;

const NEEDS_ROOT: &str = "loading the XDP program";

/// A UDP frame from `src` to `dst`, ports 1000 → 2000.
fn frame(src: IpAddr, dst: IpAddr) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let mut out = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth
            .ipv4(s.octets(), d.octets(), 64)
            .udp(1000, 2000)
            .write(&mut out, b"x")
            .unwrap(),
        (IpAddr::V6(s), IpAddr::V6(d)) => eth
            .ipv6(s.octets(), d.octets(), 64)
            .udp(1000, 2000)
            .write(&mut out, b"x")
            .unwrap(),
        _ => unreachable!(),
    }
    out
}

/// The verdict the spec gives that frame under `rules` and `default`.
fn spec(rules: &[Rule], default: u8, src: IpAddr, dst: IpAddr) -> u8 {
    let p = evaluate::Packet {
        ifindex: 1,
        src,
        dst,
        proto: Some(17),
        sport: evaluate::Field::Known(1000),
        dport: evaluate::Field::Known(2000),
        icmp: evaluate::Field::Absent,
        flags: evaluate::Field::Absent,
    };
    match evaluate::evaluate(rules, &|_| None, &p) {
        Some(i) => match rules[i].action {
            Action::Allow => XDP_PASS,
            Action::Deny => XDP_DROP,
        },
        None => default,
    }
}

/// A rule set and the frames (source, destination) to try it with.
struct Case {
    name: &'static str,
    rules: Vec<String>,
    probes: Vec<(IpAddr, IpAddr)>,
}

fn v4(a: u32) -> IpAddr {
    IpAddr::V4(a.into())
}

fn v6(a: u128) -> IpAddr {
    IpAddr::V6(a.into())
}

/// The sets: deepest search, both directions large, edges, one network.
fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    // Deepest search: 60,000 hosts in one /64 (one bucket), a /64 around.
    let base6: u128 = 0x2001_0db8_0000_0000_0000_0000_0000_0000;
    let hosts: Vec<String> = (0..60_000u128)
        .map(|i| format!("{}", Ipv6Addr::from(base6 + 2 * i + 2)))
        .collect();
    let mut probes = Vec::new();
    for i in (0..60_000u128).step_by(97).chain([0, 1, 59_998, 59_999]) {
        for d in [0, 1, 2, 3] {
            probes.push((v6(base6 + 2 * i + d), v6(1)));
        }
    }
    probes.push((v6(base6 + 2 * 60_000 + 2), v6(1)));
    probes.push((v6(base6 - 1), v6(1)));
    probes.push((v6(u128::MAX), v6(1)));
    cases.push(Case {
        name: "v6 deep bucket",
        rules: vec![
            format!("deny src {}", hosts.join(",")),
            "allow src 2001:db8::/64".into(),
        ],
        probes,
    });
    // IPv4 src and dst both large, the dst after the src in the ranges array.
    let srcs: Vec<String> = (0..30_000u32)
        .map(|i| format!("{}", Ipv4Addr::from(0x0a00_0000 + 4 * i)))
        .collect();
    let dsts: Vec<String> = (0..30_000u32)
        .map(|i| format!("{}", Ipv4Addr::from(0xc000_0000 + 8 * i)))
        .collect();
    let mut probes = Vec::new();
    for i in (0..30_000u32).step_by(101).chain([0, 29_999]) {
        for d in [0, 1, 3, 4] {
            probes.push((v4(0x0a00_0000 + 4 * i + d), v4(0xc000_0000 + 8 * i + d)));
            probes.push((v4(0x0b00_0000), v4(0xc000_0000 + 8 * i + d)));
        }
    }
    cases.push(Case {
        name: "v4 src and dst large",
        rules: vec![
            format!("deny src {}", srcs.join(",")),
            format!("deny dst {}", dsts.join(",")),
            "allow src 10.0.0.0/8".into(),
            "allow dst 192.0.0.0/8".into(),
        ],
        probes,
    });
    // The top and bottom of both spaces, nested networks ending there.
    let mut probes = Vec::new();
    for a in [
        0u32,
        1,
        0x7fff_ffff,
        0x8000_0000,
        0xfeff_ffff,
        0xff00_0000,
        0xffff_fffe,
        u32::MAX,
    ] {
        for b in [0u32, 1, 0x8000_0000, u32::MAX - 1, u32::MAX] {
            probes.push((v4(a), v4(b)));
        }
    }
    for a in [
        0u128,
        1,
        1 << 127,
        (1 << 127) - 1,
        u128::MAX - 1,
        u128::MAX,
        u128::MAX << 64,
        (u128::MAX << 64) - 1,
    ] {
        for b in [0u128, 1, u128::MAX - 1, u128::MAX] {
            probes.push((v6(a), v6(b)));
        }
    }
    cases.push(Case {
        name: "edges",
        rules: vec![
            "deny src 255.255.255.255/32".into(),
            "allow src 255.0.0.0/8".into(),
            "deny src 128.0.0.0/1".into(),
            "deny dst 0.0.0.0/32".into(),
            "allow dst 0.0.0.0/0".into(),
            "deny src ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128".into(),
            "allow src ffff:ffff:ffff:ffff::/64".into(),
            "deny src 8000::/1".into(),
            "deny dst ::/128".into(),
            "allow dst ::/0".into(),
        ],
        probes,
    });
    // A single network each.
    cases.push(Case {
        name: "single",
        rules: vec!["deny src 10.1.2.3".into(), "deny dst 2001:db8::1".into()],
        probes: vec![
            (v4(0x0a01_0203), v4(1)),
            (v4(0x0a01_0202), v4(1)),
            (v4(0x0a01_0204), v4(1)),
            (v6(1), v6(base6 + 1)),
            (v6(1), v6(base6)),
            (v6(1), v6(base6 + 2)),
        ],
    });
    cases
}

/// Loads the program with `default` for packets no rule decides.
fn load(object: &mut MaybeUninit<libbpf_rs::OpenObject>, default: u8) -> XdpHelloSkel<'_> {
    let config = Config {
        default_verdict: default as u32,
        notice_mode: NOTICES_NONE,
        ..Config::DEFAULT
    };
    loader::load(object, 64 * 1024, config).expect("loading the XDP program")
}

/// Installs `texts`; returns the rules, for the spec.
fn install(firewall: &mut Firewall, skel: &XdpHelloSkel<'_>, texts: &[String]) -> Vec<Rule> {
    let parsed = policy::parse_flags(texts).expect("the rules parse");
    let rules = parsed.iter().map(|sourced| sourced.rule.clone()).collect();
    let set = RuleSet::of(parsed).expect("the rules compile");
    firewall
        .install(&RuleMaps::of(&skel.maps), &set)
        .expect("installing the rules");
    rules
}

/// The frames of `probes` whose verdict differs from the spec's, as lines.
fn mismatches(
    skel: &XdpHelloSkel<'_>,
    rules: &[Rule],
    default: u8,
    probes: &[(IpAddr, IpAddr)],
) -> Vec<String> {
    let mut wrong = Vec::new();
    for &(src, dst) in probes {
        let data = frame(src, dst);
        let out = skel
            .progs
            .xdp_hello
            .test_run(ProgramInput {
                data_in: Some(&data),
                repeat: 1,
                ..Default::default()
            })
            .expect("BPF_PROG_TEST_RUN");
        let want = spec(rules, default, src, dst);
        if out.return_value != u32::from(want) {
            wrong.push(format!("{src} -> {dst}: {} not {want}", out.return_value));
        }
    }
    wrong
}

#[test]
#[ignore = "needs root: loading XDP programs"]
fn ranges_agree_with_the_spec_across_installs() {
    common::require_root(NEEDS_ROOT);
    for default in [XDP_PASS, XDP_DROP] {
        let mut object = MaybeUninit::uninit();
        let skel = load(&mut object, default);
        let mut firewall = Firewall::new();
        let all = cases();
        // Big sets first, then small ones over their stale slots, and round
        // again, so that each lands in both generations.
        for c in [0, 1, 2, 3, 1, 0, 3, 2, 0, 2, 1, 3] {
            let case = &all[c];
            let rules = install(&mut firewall, &skel, &case.rules);
            let wrong = mismatches(&skel, &rules, default, &case.probes);
            assert!(
                wrong.is_empty(),
                "{} (generation {}, default {default}): {} of {} frames wrong, first {:?}",
                case.name,
                firewall.generation(),
                wrong.len(),
                case.probes.len(),
                &wrong[..wrong.len().min(5)]
            );
        }
    }
}

#[test]
#[ignore = "needs root: loading XDP programs"]
fn a_full_family_fills_the_last_generation_to_its_end() {
    common::require_root(NEEDS_ROOT);
    let mut object = MaybeUninit::uninit();
    let skel = load(&mut object, XDP_PASS);
    let mut firewall = Firewall::new();
    // 32,768 sources and as many destinations: 65,536 IPv4 networks, the
    // most a set may name, 65,537 ranges each.
    let hosts = |base: u32| -> Vec<String> {
        (0..32_768u32)
            .map(|i| Ipv4Addr::from(base + 2 * i + 1).to_string())
            .collect()
    };
    let texts = vec![
        format!("deny src {}", hosts(0x0a00_0000).join(",")),
        format!("deny dst {}", hosts(0xc000_0000).join(",")),
    ];
    let rules = install(&mut firewall, &skel, &texts);
    assert_eq!(
        firewall.generation(),
        1,
        "the first set goes to generation 1"
    );
    let mut probes = Vec::new();
    for i in (0..32_768u32).step_by(7).chain([32_767]) {
        for d in [0, 1, 2] {
            probes.push((v4(0x0a00_0000 + 2 * i + d), v4(1)));
            probes.push((v4(1), v4(0xc000_0000 + 2 * i + d)));
        }
    }
    let wrong = mismatches(&skel, &rules, XDP_PASS, &probes);
    assert!(
        wrong.is_empty(),
        "{} wrong, first {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
}
