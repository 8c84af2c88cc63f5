//! The firewall through BPF_PROG_TEST_RUN: rule sets put in place with
//! `Firewall::install` in a freshly loaded program, then crafted frames run
//! through it one at a time. For every frame the XDP return value and the one
//! notice it produces (its verdict and rule id) are checked; for every table,
//! each rule's hit counter and the verdict counters. Tables run under both
//! default policies: a rule decides the same either way, the default does
//! not. Root only:
//! ignored as anyone else; `make test` runs them.
//!
//! Each test loads its own copies of the program: tests run in parallel, and
//! a ring buffer or counter shared between tests would mix their packets.

use std::collections::{BTreeMap, BTreeSet};
use std::mem::{size_of, MaybeUninit};
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use etherparse::err::packet::BuildWriteError;
use etherparse::{
    ip_number, ArpHardwareId, ArpOperation, ArpPacket, EtherType, Ethernet2Header, IpFragOffset,
    IpHeaders, IpNumber, Ipv4Header, PacketBuilder, PacketBuilderStep, VlanId,
};
use libbpf_rs::{libbpf_sys, MapCore, MapHandle, OpenObject, ProgramInput};
use xdp_hello::abi::{
    self, Config, Notice, MAX_RULES, NOTICES_ALL, NOTICES_DENIED, NOTICES_NONE, RULE_NONE,
    XDP_DROP, XDP_PASS,
};
use xdp_hello::firewall::{Firewall, RuleMaps};
use xdp_hello::loader;
use xdp_hello::rules::{self, Action, Rule, MAX_RULES_PER_SET};
use xdp_hello::selftest::{packets, test_run};
use xdp_hello::skel::XdpHelloSkel;
use xdp_hello::stats::{self, Counters};

mod common;

/// What the tests marked `needs root` need it for.
const NEEDS_ROOT: &str = "loading XDP programs";

/// Each run leaves at most one notice in the ring.
const RING_BYTES: u32 = 64 * 1024;

const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// Addresses and ports no rule of a table mentions, for the other end.
const N4: &str = "172.16.0.1";
const N6: &str = "fd00::1";
const CLIENT: u16 = 40000;
const SERVICE: u16 = 4789;

fn verdict_name(verdict: u8) -> &'static str {
    xdp_hello::output::verdict_name(verdict)
}

// ---------------------------------------------------------------------------
// Frames

/// A frame and how to name it in a failure.
#[derive(Clone)]
struct Packet {
    label: String,
    frame: Vec<u8>,
}

fn written(write: impl FnOnce(&mut Vec<u8>) -> Result<(), BuildWriteError>) -> Vec<u8> {
    let mut frame = Vec::new();
    write(&mut frame).expect("etherparse refused a frame");
    frame
}

fn addr(text: &str) -> IpAddr {
    text.parse()
        .unwrap_or_else(|_| panic!("'{text}' is no address"))
}

/// Ethernet, then IPv4 or IPv6 by the addresses' family.
fn ip(src: &str, dst: &str) -> PacketBuilderStep<IpHeaders> {
    let eth = PacketBuilder::ethernet2(SRC_MAC, DST_MAC);
    match (addr(src), addr(dst)) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), 64),
        _ => panic!("{src} and {dst} are of different families"),
    }
}

fn endpoint(text: &str, port: u16) -> String {
    match addr(text) {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

fn udp(src: &str, sport: u16, dst: &str, dport: u16) -> Packet {
    Packet {
        label: format!("UDP {} → {}", endpoint(src, sport), endpoint(dst, dport)),
        frame: written(|f| ip(src, dst).udp(sport, dport).write(f, b"payload")),
    }
}

fn tcp(src: &str, sport: u16, dst: &str, dport: u16) -> Packet {
    Packet {
        label: format!("TCP {} → {}", endpoint(src, sport), endpoint(dst, dport)),
        frame: written(|f| ip(src, dst).tcp(sport, dport, 1, 64240).syn().write(f, &[])),
    }
}

/// An ICMP message over IPv4, or an ICMPv6 one over IPv6, of `icmp_type`.
fn icmp(src: &str, dst: &str, icmp_type: u8) -> Packet {
    let v6 = addr(src).is_ipv6();
    let frame = if v6 {
        written(|f| {
            ip(src, dst)
                .icmpv6_raw(icmp_type, 0, [0; 4])
                .write(f, b"ping")
        })
    } else {
        written(|f| {
            ip(src, dst)
                .icmpv4_raw(icmp_type, 0, [0; 4])
                .write(f, b"ping")
        })
    };
    let proto = if v6 { "ICMPv6" } else { "ICMP" };
    Packet {
        label: format!("{proto} type {icmp_type} {src} → {dst}"),
        frame,
    }
}

/// `udp` inside an 802.1Q tag.
fn vlan_udp(vid: u16, src: &str, dst: &str) -> Packet {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (addr(src), addr(dst)) else {
        panic!("vlan_udp takes IPv4 addresses");
    };
    Packet {
        label: format!("UDP {src} → {dst} in VLAN {vid}"),
        frame: written(|f| {
            PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
                .single_vlan(VlanId::try_new(vid).unwrap())
                .ipv4(s.octets(), d.octets(), 64)
                .udp(CLIENT, SERVICE)
                .write(f, b"payload")
        }),
    }
}

fn arp(sender: &str, target: &str) -> Packet {
    let (IpAddr::V4(s), IpAddr::V4(t)) = (addr(sender), addr(target)) else {
        panic!("ARP takes IPv4 addresses");
    };
    let request = ArpPacket::new(
        ArpHardwareId::ETHERNET,
        EtherType::IPV4,
        ArpOperation::REQUEST,
        &SRC_MAC,
        &s.octets(),
        &[0; 6],
        &t.octets(),
    )
    .unwrap();
    Packet {
        label: format!("ARP who-has {target} tell {sender}"),
        frame: written(|f| {
            PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
                .arp(request)
                .write(f)
        }),
    }
}

/// An LLDP frame: neither IP nor ARP.
fn lldp() -> Packet {
    let eth = Ethernet2Header {
        source: SRC_MAC,
        destination: [0x01, 0x80, 0xc2, 0, 0, 0x0e],
        ether_type: EtherType(0x88cc),
    };
    let mut frame = eth.to_bytes().to_vec();
    frame.extend_from_slice(&[0; 46]);
    Packet {
        label: "LLDP".into(),
        frame,
    }
}

/// An IPv4 fragment of a UDP datagram `sport → dport`, at `offset` (in
/// 8-byte units). Whatever the offset, the bytes after the IPv4 header are
/// a UDP header with those ports: only the fragment offset may tell the
/// program to look no further.
fn fragment(src: &str, sport: u16, dst: &str, dport: u16, offset: u16, more: bool) -> Packet {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (addr(src), addr(dst)) else {
        panic!("fragment takes IPv4 addresses");
    };
    let header = Ipv4Header {
        identification: 0x1234,
        more_fragments: more,
        fragment_offset: IpFragOffset::try_new(offset).unwrap(),
        ..Ipv4Header::new(0, 64, ip_number::UDP, s.octets(), d.octets()).unwrap()
    };
    Packet {
        label: format!(
            "UDP {} → {} fragment at offset {offset}{}",
            endpoint(src, sport),
            endpoint(dst, dport),
            if more { " (more follow)" } else { "" }
        ),
        frame: written(|f| {
            PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
                .ip(IpHeaders::Ipv4(header, Default::default()))
                .udp(sport, dport)
                .write(f, b"payload")
        }),
    }
}

/// `packet` cut to its first `len` bytes.
fn cut(packet: Packet, len: usize) -> Packet {
    Packet {
        label: format!("{} cut to {len} bytes", packet.label),
        frame: packet.frame[..len].to_vec(),
    }
}

/// An IP packet (family by the addresses) carrying protocol `proto` with
/// `payload` as it is: ESP, GRE, SCTP, … the program does not read into.
fn raw_ip(src: &str, dst: &str, proto: u8, name: &str, payload: &[u8]) -> Packet {
    Packet {
        label: format!("{name} {src} → {dst}"),
        frame: written(|f| ip(src, dst).write(f, IpNumber(proto), payload)),
    }
}

/// ESP: SPI, sequence number, then ciphertext the program cannot read.
const ESP_PAYLOAD: &[u8] = &[
    0, 0, 0x10, 0x01, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0,
];
/// GRE: no flags, protocol type IPv4, then nothing.
const GRE_PAYLOAD: &[u8] = &[0, 0, 0x08, 0x00];
/// SCTP: a common header (ports, verification tag, checksum).
const SCTP_PAYLOAD: &[u8] = &[0x9c, 0x40, 0x0b, 0x59, 0, 0, 0, 1, 0, 0, 0, 0];

/// `inner` (protocol `proto`) behind an Authentication Header (RFC 4302):
/// 12 fixed bytes and a 12-byte ICV, so its length field is 24 / 4 - 2.
fn behind_ah(src: &str, dst: &str, proto: u8, name: &str, inner: &[u8]) -> Packet {
    let mut payload = vec![proto, 4, 0, 0, 0, 0, 0x20, 0x01, 0, 0, 0, 1];
    payload.extend_from_slice(&[0xab; 12]);
    payload.extend_from_slice(inner);
    Packet {
        label: format!("{name} behind AH {src} → {dst}"),
        frame: written(|f| ip(src, dst).write(f, IpNumber(51), &payload)),
    }
}

/// `packet` (IPv4 right after Ethernet) as a datagram that ends after `len`
/// bytes of the frame: Total Length says so, and the frame is padded to 60
/// bytes as every Ethernet sender pads it (a tiny fragment, say).
fn ended(packet: Packet, len: usize) -> Packet {
    let cut = packet.frame[..len].to_vec();
    let total_length = (len - abi::ETH_HLEN) as u16;
    Packet {
        label: format!("{} ending after {len} bytes, padded", packet.label),
        frame: packets::padded(packets::with_ipv4_total_length(cut, total_length)),
    }
}

// ---------------------------------------------------------------------------
// A loaded program with its firewall

struct Lab<'obj> {
    skel: XdpHelloSkel<'obj>,
    firewall: Firewall,
}

/// What one BPF_PROG_TEST_RUN gave.
struct Ran {
    return_value: u32,
    notices: Vec<Notice>,
}

impl<'obj> Lab<'obj> {
    fn load(
        object: &'obj mut MaybeUninit<OpenObject>,
        default_verdict: u8,
        notice_mode: u32,
    ) -> Self {
        let config = Config {
            default_verdict: default_verdict as u32,
            notice_mode,
        };
        let skel = loader::load(object, RING_BYTES, config).expect("loading the XDP program");
        Lab {
            skel,
            firewall: Firewall::new(),
        }
    }

    /// Checks `texts` as the command line does, then installs them.
    fn install(&mut self, texts: &[&str]) {
        let texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
        let set = rules::parse_flags(&texts).unwrap_or_else(|e| panic!("{e}"));
        rules::check_clashes(&set).unwrap_or_else(|e| panic!("{e}"));
        self.firewall
            .install(&RuleMaps::of(&self.skel.maps), &set)
            .unwrap_or_else(|e| panic!("installing {texts:?}: {e:#}"));
    }

    /// The id of the rule in force written as `text`.
    fn id(&self, text: &str) -> u32 {
        let rule = parse(text);
        self.firewall
            .rules()
            .iter()
            .find(|active| active.rule.rule == rule)
            .map(|active| active.id)
            .unwrap_or_else(|| panic!("'{text}' is not in force"))
    }

    /// Runs `packet` through the program once; the ring is empty before.
    fn run(&self, packet: &Packet) -> Ran {
        let stale = drain(&self.skel.maps.events);
        assert!(stale.is_empty(), "{} notices left from before", stale.len());
        let input = ProgramInput {
            data_in: Some(&packet.frame),
            repeat: 1,
            ..Default::default()
        };
        let output = self
            .skel
            .progs
            .xdp_hello
            .test_run(input)
            .unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN of {}: {e}", packet.label));
        // Notices carry the rule's counter slot; what is shown is its id.
        let mut notices = drain(&self.skel.maps.events);
        for notice in &mut notices {
            notice.rule_id = self.firewall.shown_rule_id(notice.rule_id);
        }
        Ran {
            return_value: output.return_value,
            notices,
        }
    }

    /// Every rule in force (as written back by `Display`) with its hits.
    fn hits(&self) -> BTreeMap<String, u64> {
        self.firewall
            .hits(&RuleMaps::of(&self.skel.maps))
            .expect("reading rule hits")
            .into_iter()
            .map(|(active, hits)| (active.rule.rule.to_string(), hits))
            .collect()
    }

    /// The counter slot of the rule in force written as `text`.
    fn slot(&self, text: &str) -> u32 {
        self.firewall
            .slot_of(self.id(text))
            .expect("a rule in force has a slot")
    }

    /// The hit counter in slot `slot`, whether a rule holds it or not.
    fn counter_of_slot(&self, slot: u32) -> u64 {
        stats::sum_per_cpu(&self.skel.maps.rule_hits, slot).expect("reading a rule counter")
    }

    fn counters(&self) -> Counters {
        Counters::read(&self.skel.maps.counters).expect("reading the counters")
    }
}

fn parse(text: &str) -> Rule {
    text.parse()
        .unwrap_or_else(|e| panic!("bad rule '{text}': {e}"))
}

/// The verdict a rule gives.
fn verdict_of(text: &str) -> u8 {
    match parse(text).action {
        Action::Allow => XDP_PASS,
        Action::Deny => XDP_DROP,
    }
}

/// Empties the ring buffer `events`, oldest notice first.
fn drain(events: &dyn MapCore) -> Vec<Notice> {
    let mut notices = Vec::new();
    test_run::drain(events, |notice| notices.push(notice)).expect("reading the ring buffer");
    notices
}

/// What a run should come to: its verdict, the deciding rule, and whether a
/// notice must come out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Want {
    verdict: u8,
    rule_id: u32,
    notice: bool,
}

/// Whether `ran` (of `packet`) is `want`; else what differs.
fn check_run(ran: &Ran, packet: &Packet, want: Want) -> Result<(), String> {
    let mut diffs = Vec::new();
    if ran.return_value != want.verdict as u32 {
        diffs.push(format!(
            "return value {} ({}), want {} ({})",
            ran.return_value,
            verdict_name(ran.return_value as u8),
            want.verdict,
            verdict_name(want.verdict)
        ));
    }
    match (&ran.notices[..], want.notice) {
        ([], false) => {}
        ([notice], true) => {
            if notice.verdict != want.verdict {
                diffs.push(format!(
                    "notice verdict {}, want {}",
                    verdict_name(notice.verdict),
                    verdict_name(want.verdict)
                ));
            }
            if notice.rule_id != want.rule_id {
                diffs.push(format!(
                    "notice rule_id {}, want {}",
                    id_name(notice.rule_id),
                    id_name(want.rule_id)
                ));
            }
            if notice.packet_len as usize != packet.frame.len() {
                diffs.push(format!(
                    "notice of a {}-byte packet, this one has {}",
                    notice.packet_len,
                    packet.frame.len()
                ));
            }
        }
        (notices, _) => diffs.push(format!(
            "{} notices, want {}",
            notices.len(),
            u8::from(want.notice)
        )),
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join("; "))
    }
}

fn id_name(id: u32) -> String {
    if id == RULE_NONE {
        "RULE_NONE".into()
    } else {
        id.to_string()
    }
}

// ---------------------------------------------------------------------------
// Tables: rules, frames, and who decides each frame

enum By {
    /// The default policy (rule id RULE_NONE).
    Default,
    /// The rule written so.
    Rule(&'static str),
    /// Nobody: non-IP traffic passes whatever the rules and the default.
    NonIp,
    /// Nobody: the transport header cannot be read while rules for that
    /// transport are in force, so the packet is dropped (fail closed).
    Unreadable,
}

struct Table {
    rules: Vec<&'static str>,
    probes: Vec<(Packet, By)>,
    defaults: Vec<u8>,
}

impl Table {
    fn new(rules: &[&'static str]) -> Table {
        Table {
            rules: rules.to_vec(),
            probes: Vec::new(),
            defaults: vec![XDP_PASS, XDP_DROP],
        }
    }

    /// `packet` is decided by the rule written `rule`.
    fn by(mut self, rule: &'static str, packet: Packet) -> Table {
        self.probes.push((packet, By::Rule(rule)));
        self
    }

    /// No rule matches `packet`: the default decides.
    fn default(mut self, packet: Packet) -> Table {
        self.probes.push((packet, By::Default));
        self
    }

    /// `packet` is not IP: it passes, whatever the default.
    fn non_ip(mut self, packet: Packet) -> Table {
        self.probes.push((packet, By::NonIp));
        self
    }

    /// `packet`'s transport header cannot be read and rules need it: dropped.
    fn unreadable(mut self, packet: Packet) -> Table {
        self.probes.push((packet, By::Unreadable));
        self
    }

    /// Runs the table only under `default`.
    fn under(mut self, default: u8) -> Table {
        self.defaults = vec![default];
        self
    }

    /// Loads a program for each default policy, installs the rules, runs
    /// every frame and checks it; then checks every rule's hits and the
    /// verdict counters. Reports every difference at once.
    fn check(&self) {
        common::require_root(NEEDS_ROOT);
        let failures: Vec<String> = self
            .defaults
            .iter()
            .flat_map(|&default| self.check_under(default))
            .collect();
        assert!(
            failures.is_empty(),
            "rules {:?}:\n  {}",
            self.rules,
            failures.join("\n  ")
        );
    }

    fn check_under(&self, default: u8) -> Vec<String> {
        let mut object = MaybeUninit::uninit();
        let mut lab = Lab::load(&mut object, default, NOTICES_ALL);
        lab.install(&self.rules);

        let under = format!("default {}", verdict_name(default));
        let mut failures = Vec::new();
        let mut want_hits: BTreeMap<String, u64> = self
            .rules
            .iter()
            .map(|r| (parse(r).to_string(), 0))
            .collect();
        let (mut passed, mut dropped) = (0, 0);
        for (packet, by) in &self.probes {
            let (verdict, rule_id) = match by {
                By::Default => (default, RULE_NONE),
                By::NonIp => (XDP_PASS, RULE_NONE),
                By::Unreadable => (XDP_DROP, RULE_NONE),
                By::Rule(text) => {
                    *want_hits.get_mut(&parse(text).to_string()).unwrap() += 1;
                    (verdict_of(text), lab.id(text))
                }
            };
            if verdict == XDP_PASS {
                passed += 1;
            } else {
                dropped += 1;
            }
            let want = Want {
                verdict,
                rule_id,
                notice: true,
            };
            if let Err(why) = check_run(&lab.run(packet), packet, want) {
                let who = match by {
                    By::Default => "the default".to_string(),
                    By::NonIp => "nobody (not IP)".to_string(),
                    By::Unreadable => "nobody (transport unreadable)".to_string(),
                    By::Rule(text) => format!("'{text}' (id {rule_id})"),
                };
                failures.push(format!(
                    "{under}: {}, to be decided by {who}: {why}",
                    packet.label
                ));
            }
        }
        let hits = lab.hits();
        if hits != want_hits {
            failures.push(format!("{under}: rule hits {hits:?}, want {want_hits:?}"));
        }
        let counters = lab.counters();
        let want_counters = (passed, dropped, 0, passed + dropped, 0);
        let got_counters = (
            counters.passed,
            counters.dropped,
            counters.aborted,
            counters.notices_sent,
            counters.notices_lost,
        );
        if got_counters != want_counters {
            failures.push(format!(
                "{under}: counters (passed, dropped, aborted, notices sent, lost) \
                 {got_counters:?}, want {want_counters:?}"
            ));
        }
        failures
    }
}

// ---------------------------------------------------------------------------
// Address rules

#[test]
#[ignore = "needs root: loading XDP programs"]
fn address_rules_ipv4_src_dst_host_and_network() {
    Table::new(&[
        "deny src 192.0.2.1",
        "allow src 198.51.100.0/24",
        "allow dst 192.0.2.9",
        "deny dst 203.0.113.0/24",
    ])
    .by("deny src 192.0.2.1", udp("192.0.2.1", CLIENT, N4, SERVICE))
    .by("deny src 192.0.2.1", tcp("192.0.2.1", CLIENT, N4, 443))
    .by("deny src 192.0.2.1", icmp("192.0.2.1", N4, 8))
    .by("deny src 192.0.2.1", vlan_udp(7, "192.0.2.1", N4))
    .default(udp("192.0.2.2", CLIENT, N4, SERVICE))
    .default(udp("192.0.2.0", CLIENT, N4, SERVICE))
    .by(
        "allow src 198.51.100.0/24",
        udp("198.51.100.0", CLIENT, N4, SERVICE),
    )
    .by(
        "allow src 198.51.100.0/24",
        udp("198.51.100.77", CLIENT, N4, SERVICE),
    )
    .by(
        "allow src 198.51.100.0/24",
        udp("198.51.100.255", CLIENT, N4, SERVICE),
    )
    .default(udp("198.51.99.255", CLIENT, N4, SERVICE))
    .default(udp("198.51.101.0", CLIENT, N4, SERVICE))
    .by("allow dst 192.0.2.9", udp(N4, CLIENT, "192.0.2.9", SERVICE))
    .default(udp(N4, CLIENT, "192.0.2.8", SERVICE))
    .by(
        "deny dst 203.0.113.0/24",
        udp(N4, CLIENT, "203.0.113.0", SERVICE),
    )
    .by(
        "deny dst 203.0.113.0/24",
        udp(N4, CLIENT, "203.0.113.255", SERVICE),
    )
    .default(udp(N4, CLIENT, "203.0.114.0", SERVICE))
    // A rule looks in its own direction only.
    .default(udp(N4, CLIENT, "192.0.2.1", SERVICE))
    .default(udp("192.0.2.9", CLIENT, N4, SERVICE))
    .default(udp("203.0.113.5", CLIENT, N4, SERVICE))
    // A source allow and a destination deny: the deny wins, both ways round.
    .by(
        "deny dst 203.0.113.0/24",
        udp("198.51.100.7", CLIENT, "203.0.113.5", SERVICE),
    )
    .by(
        "deny src 192.0.2.1",
        udp("192.0.2.1", CLIENT, "192.0.2.9", SERVICE),
    )
    // IPv4 rules never match IPv6 addresses that start with the same bytes.
    .default(udp("c000:201::", CLIENT, N6, SERVICE))
    .default(udp(N6, CLIENT, "cb00:7100::", SERVICE))
    .check();
}

#[test]
#[ignore = "needs root: loading XDP programs"]
fn address_rules_ipv6_src_dst_host_and_network() {
    Table::new(&[
        "deny src 2001:db8::1",
        "allow src 2001:db8:100::/48",
        "allow dst 2001:db8::9",
        "deny dst 2001:db8:200::/40",
    ])
    .by(
        "deny src 2001:db8::1",
        udp("2001:db8::1", CLIENT, N6, SERVICE),
    )
    .by("deny src 2001:db8::1", tcp("2001:db8::1", CLIENT, N6, 443))
    .by("deny src 2001:db8::1", icmp("2001:db8::1", N6, 128))
    .default(udp("2001:db8::2", CLIENT, N6, SERVICE))
    .default(udp("2001:db8::", CLIENT, N6, SERVICE))
    .by(
        "allow src 2001:db8:100::/48",
        udp("2001:db8:100::", CLIENT, N6, SERVICE),
    )
    .by(
        "allow src 2001:db8:100::/48",
        udp("2001:db8:100:ffff:ffff:ffff:ffff:ffff", CLIENT, N6, SERVICE),
    )
    .default(udp(
        "2001:db8:ff:ffff:ffff:ffff:ffff:ffff",
        CLIENT,
        N6,
        SERVICE,
    ))
    .default(udp("2001:db8:101::", CLIENT, N6, SERVICE))
    .by(
        "allow dst 2001:db8::9",
        udp(N6, CLIENT, "2001:db8::9", SERVICE),
    )
    .default(udp(N6, CLIENT, "2001:db8::8", SERVICE))
    .by(
        "deny dst 2001:db8:200::/40",
        udp(N6, CLIENT, "2001:db8:200::", SERVICE),
    )
    .by(
        "deny dst 2001:db8:200::/40",
        udp(N6, CLIENT, "2001:db8:2ff:ffff::1", SERVICE),
    )
    .default(udp(N6, CLIENT, "2001:db8:300::", SERVICE))
    .default(udp(
        N6,
        CLIENT,
        "2001:db8:1ff:ffff:ffff:ffff:ffff:ffff",
        SERVICE,
    ))
    .default(udp(N6, CLIENT, "2001:db8::1", SERVICE))
    .default(udp("2001:db8::9", CLIENT, N6, SERVICE))
    .default(udp("2001:db8:200::1", CLIENT, N6, SERVICE))
    .by(
        "deny dst 2001:db8:200::/40",
        udp("2001:db8:100::7", CLIENT, "2001:db8:200::7", SERVICE),
    )
    .by(
        "deny src 2001:db8::1",
        udp("2001:db8::1", CLIENT, "2001:db8::9", SERVICE),
    )
    // 32.1.13.184 is 2001:0db8 as an IPv4 address.
    .default(udp("32.1.13.184", CLIENT, N4, SERVICE))
    .check();
}

#[test]
#[ignore = "needs root: loading XDP programs"]
fn longest_prefix_exception_ipv4() {
    Table::new(&[
        "deny src 10.0.0.0/8",
        "allow src 10.1.2.3",
        "deny dst 172.20.0.0/16",
        "allow dst 172.20.5.6",
    ])
    .by("allow src 10.1.2.3", udp("10.1.2.3", CLIENT, N4, SERVICE))
    .by("allow src 10.1.2.3", tcp("10.1.2.3", CLIENT, N4, 22))
    .by("deny src 10.0.0.0/8", udp("10.1.2.4", CLIENT, N4, SERVICE))
    .by("deny src 10.0.0.0/8", udp("10.1.2.2", CLIENT, N4, SERVICE))
    .by("deny src 10.0.0.0/8", udp("10.0.0.0", CLIENT, N4, SERVICE))
    .by(
        "deny src 10.0.0.0/8",
        udp("10.255.255.255", CLIENT, N4, SERVICE),
    )
    .default(udp("9.255.255.255", CLIENT, N4, SERVICE))
    .default(udp("11.0.0.0", CLIENT, N4, SERVICE))
    .by(
        "allow dst 172.20.5.6",
        udp(N4, CLIENT, "172.20.5.6", SERVICE),
    )
    .by(
        "deny dst 172.20.0.0/16",
        udp(N4, CLIENT, "172.20.5.7", SERVICE),
    )
    .by(
        "deny dst 172.20.0.0/16",
        udp(N4, CLIENT, "172.20.255.255", SERVICE),
    )
    .default(udp(N4, CLIENT, "172.21.0.0", SERVICE))
    .check();
}

#[test]
#[ignore = "needs root: loading XDP programs"]
fn longest_prefix_exception_ipv6() {
    Table::new(&[
        "deny src 2001:db8::/32",
        "allow src 2001:db8::1:2:3",
        "deny dst fd12::/16",
        "allow dst fd12::5",
    ])
    .by(
        "allow src 2001:db8::1:2:3",
        udp("2001:db8::1:2:3", CLIENT, N6, SERVICE),
    )
    .by(
        "deny src 2001:db8::/32",
        udp("2001:db8::1:2:4", CLIENT, N6, SERVICE),
    )
    .by(
        "deny src 2001:db8::/32",
        udp("2001:db8::1:2:2", CLIENT, N6, SERVICE),
    )
    .by(
        "deny src 2001:db8::/32",
        udp("2001:db8::", CLIENT, N6, SERVICE),
    )
    .by(
        "deny src 2001:db8::/32",
        udp(
            "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
            CLIENT,
            N6,
            SERVICE,
        ),
    )
    .default(udp(
        "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
        CLIENT,
        N6,
        SERVICE,
    ))
    .default(udp("2001:db9::", CLIENT, N6, SERVICE))
    .by("allow dst fd12::5", udp(N6, CLIENT, "fd12::5", SERVICE))
    .by("deny dst fd12::/16", udp(N6, CLIENT, "fd12::6", SERVICE))
    .default(udp(N6, CLIENT, "fd13::5", SERVICE))
    .check();
}

/// Four levels deep, and the whole address space (/0) as the outermost.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn nested_prefixes_alternate_down_to_the_host() {
    Table::new(&[
        "deny src 0.0.0.0/0",
        "allow src 10.0.0.0/8",
        "deny src 10.1.0.0/16",
        "allow src 10.1.2.0/24",
        "deny src 10.1.2.3",
        "allow src ::/0",
        "deny src 2001:db8::/32",
        "allow src 2001:db8:1::/48",
        "deny src 2001:db8:1:2::/64",
        "allow src 2001:db8:1:2::3",
    ])
    .by("deny src 0.0.0.0/0", udp("192.0.2.1", CLIENT, N4, SERVICE))
    .by("deny src 0.0.0.0/0", udp("0.0.0.0", CLIENT, N4, SERVICE))
    .by("allow src 10.0.0.0/8", udp("10.2.0.1", CLIENT, N4, SERVICE))
    .by("deny src 10.1.0.0/16", udp("10.1.3.1", CLIENT, N4, SERVICE))
    .by(
        "allow src 10.1.2.0/24",
        udp("10.1.2.4", CLIENT, N4, SERVICE),
    )
    .by("deny src 10.1.2.3", udp("10.1.2.3", CLIENT, N4, SERVICE))
    .by("allow src ::/0", udp("fe80::1", CLIENT, N6, SERVICE))
    .by(
        "deny src 2001:db8::/32",
        udp("2001:db8:2::1", CLIENT, N6, SERVICE),
    )
    .by(
        "allow src 2001:db8:1::/48",
        udp("2001:db8:1:3::1", CLIENT, N6, SERVICE),
    )
    .by(
        "deny src 2001:db8:1:2::/64",
        udp("2001:db8:1:2::4", CLIENT, N6, SERVICE),
    )
    .by(
        "allow src 2001:db8:1:2::3",
        udp("2001:db8:1:2::3", CLIENT, N6, SERVICE),
    )
    .check();
}

// ---------------------------------------------------------------------------
// Port rules

/// Both families, since port rules apply to IPv4 and IPv6 alike.
const FAMILIES: [(&str, &str); 2] = [("192.0.2.1", N4), ("2001:db8::1", N6)];

#[test]
#[ignore = "needs root: loading XDP programs"]
fn tcp_port_rules_single_ports_and_range_edges() {
    let mut table = Table::new(&[
        "deny tcp dport 22",
        "allow tcp dport 8000-8080",
        "allow tcp sport 53",
        "deny tcp sport 1000-1023",
    ]);
    for (a, b) in FAMILIES {
        let to = |dport| tcp(a, CLIENT, b, dport);
        let from = |sport| tcp(a, sport, b, SERVICE);
        table = table
            .default(to(21))
            .by("deny tcp dport 22", to(22))
            .default(to(23))
            .default(to(7999))
            .by("allow tcp dport 8000-8080", to(8000))
            .by("allow tcp dport 8000-8080", to(8040))
            .by("allow tcp dport 8000-8080", to(8080))
            .default(to(8081))
            .default(from(52))
            .by("allow tcp sport 53", from(53))
            .default(from(54))
            .default(from(999))
            .by("deny tcp sport 1000-1023", from(1000))
            .by("deny tcp sport 1000-1023", from(1023))
            .default(from(1024))
            // A source allow and a destination deny, and the other way round.
            .by("deny tcp dport 22", tcp(a, 53, b, 22))
            .by("deny tcp sport 1000-1023", tcp(a, 1000, b, 8000))
            // Each rule looks at its own direction and protocol only.
            .default(tcp(a, 22, b, SERVICE))
            .default(tcp(a, CLIENT, b, 53))
            .default(udp(a, CLIENT, b, 22))
            .default(udp(a, 1000, b, SERVICE))
            .default(udp(a, CLIENT, b, 8000));
    }
    table.check();
}

#[test]
#[ignore = "needs root: loading XDP programs"]
fn udp_port_rules_single_ports_and_range_edges() {
    let mut table = Table::new(&[
        "deny udp dport 53",
        "allow udp dport 65000-65535",
        "allow udp sport 123",
        "deny udp sport 0-9",
    ]);
    for (a, b) in FAMILIES {
        let to = |dport| udp(a, CLIENT, b, dport);
        let from = |sport| udp(a, sport, b, SERVICE);
        table = table
            .default(to(52))
            .by("deny udp dport 53", to(53))
            .default(to(54))
            .default(to(64999))
            .by("allow udp dport 65000-65535", to(65000))
            .by("allow udp dport 65000-65535", to(65535))
            .default(from(122))
            .by("allow udp sport 123", from(123))
            .default(from(124))
            .by("deny udp sport 0-9", from(0))
            .by("deny udp sport 0-9", from(9))
            .default(from(10))
            .by("deny udp dport 53", udp(a, 123, b, 53))
            .by("deny udp sport 0-9", udp(a, 5, b, 65535))
            .default(udp(a, 53, b, SERVICE))
            .default(udp(a, CLIENT, b, 123))
            .default(tcp(a, CLIENT, b, 53))
            .default(tcp(a, 0, b, SERVICE))
            .default(tcp(a, CLIENT, b, 65535));
    }
    table.check();
}

// ---------------------------------------------------------------------------
// ICMP rules

#[test]
#[ignore = "needs root: loading XDP programs"]
fn icmp_exact_type_beats_any_type() {
    Table::new(&[
        "deny icmp",
        "allow icmp type 8",
        "allow icmpv6",
        "deny icmpv6 type 128",
    ])
    .by("allow icmp type 8", icmp("192.0.2.1", N4, 8))
    .by("deny icmp", icmp("192.0.2.1", N4, 0))
    .by("deny icmp", icmp("192.0.2.1", N4, 3))
    .by("deny icmp", icmp("192.0.2.1", N4, 255))
    .by("deny icmp", icmp("192.0.2.1", N4, 128))
    .by("deny icmpv6 type 128", icmp("2001:db8::1", N6, 128))
    .by("allow icmpv6", icmp("2001:db8::1", N6, 129))
    .by("allow icmpv6", icmp("2001:db8::1", N6, 135))
    .by("allow icmpv6", icmp("2001:db8::1", N6, 8))
    .by("allow icmpv6", icmp("2001:db8::1", N6, 0))
    // ICMP rules are no port or address rules.
    .default(udp("192.0.2.1", CLIENT, N4, SERVICE))
    .default(tcp("2001:db8::1", CLIENT, N6, SERVICE))
    .check();
}

#[test]
#[ignore = "needs root: loading XDP programs"]
fn icmp_types_without_an_any_type_rule() {
    Table::new(&["deny icmp type 0", "allow icmpv6 type 135"])
        .by("deny icmp type 0", icmp("192.0.2.1", N4, 0))
        .default(icmp("192.0.2.1", N4, 8))
        .default(icmp("192.0.2.1", N4, 135))
        .by("allow icmpv6 type 135", icmp("2001:db8::1", N6, 135))
        .default(icmp("2001:db8::1", N6, 136))
        .default(icmp("2001:db8::1", N6, 0))
        .check();
}

// ---------------------------------------------------------------------------
// Rules of different kinds together, the default, non-IP traffic

#[test]
#[ignore = "needs root: loading XDP programs"]
fn deny_wins_across_kinds() {
    Table::new(&[
        "deny src 192.0.2.1",
        "allow tcp dport 80",
        "allow src 198.51.100.7",
        "deny udp dport 53",
        "allow dst 203.0.113.9",
        "deny icmp type 8",
        "deny dst 203.0.113.66",
        "allow icmp type 0",
        "allow src 2001:db8::7",
        "deny icmpv6 type 128",
    ])
    .by("deny src 192.0.2.1", tcp("192.0.2.1", CLIENT, N4, 80))
    .by("allow tcp dport 80", tcp(N4, CLIENT, "192.0.2.2", 80))
    .by("deny src 192.0.2.1", tcp("192.0.2.1", CLIENT, N4, 81))
    .by("deny udp dport 53", udp("198.51.100.7", CLIENT, N4, 53))
    .by(
        "allow src 198.51.100.7",
        udp("198.51.100.7", CLIENT, N4, 54),
    )
    .by("deny icmp type 8", icmp(N4, "203.0.113.9", 8))
    .by("allow dst 203.0.113.9", icmp(N4, "203.0.113.9", 3))
    .by("deny dst 203.0.113.66", icmp(N4, "203.0.113.66", 0))
    .by("allow icmp type 0", icmp(N4, "203.0.113.67", 0))
    .by("deny icmpv6 type 128", icmp("2001:db8::7", N6, 128))
    .by("allow src 2001:db8::7", icmp("2001:db8::7", N6, 129))
    .default(udp(N4, CLIENT, "192.0.2.2", 80))
    .check();
}

/// With --default deny, IP traffic no rule allows is dropped, every kind of
/// allow rule lets its traffic through, and non-IP traffic passes.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn default_deny_drops_unmatched_ip_and_allow_rules_beat_it() {
    Table::new(&[
        "allow tcp dport 80",
        "allow udp sport 53",
        "allow src 198.51.100.7",
        "allow dst 2001:db8::9",
        "allow icmp type 8",
        "allow icmpv6 type 135",
    ])
    .under(XDP_DROP)
    .by("allow tcp dport 80", tcp("192.0.2.1", CLIENT, N4, 80))
    .by("allow tcp dport 80", tcp("2001:db8::1", CLIENT, N6, 80))
    .by("allow udp sport 53", udp("192.0.2.1", 53, N4, SERVICE))
    .by(
        "allow src 198.51.100.7",
        udp("198.51.100.7", CLIENT, N4, SERVICE),
    )
    .by("allow dst 2001:db8::9", tcp(N6, CLIENT, "2001:db8::9", 443))
    .by("allow icmp type 8", icmp("192.0.2.1", N4, 8))
    .by("allow icmpv6 type 135", icmp("2001:db8::1", N6, 135))
    .default(tcp("192.0.2.1", CLIENT, N4, 81))
    .default(udp("192.0.2.1", 54, N4, SERVICE))
    .default(udp("2001:db8::1", CLIENT, N6, 53))
    .default(icmp("192.0.2.1", N4, 0))
    .default(icmp("2001:db8::1", N6, 136))
    .default(fragment("192.0.2.1", CLIENT, N4, 80, 185, false))
    .non_ip(arp("192.0.2.1", "192.0.2.2"))
    .non_ip(lldp())
    .check();
}

#[test]
#[ignore = "needs root: loading XDP programs"]
fn non_ip_traffic_passes_under_default_deny_and_deny_rules() {
    Table::new(&["deny src 0.0.0.0/0", "deny dst ::/0"])
        .non_ip(arp("192.0.2.1", "192.0.2.2"))
        .non_ip(arp("0.0.0.0", "10.0.0.1"))
        .non_ip(lldp())
        .by("deny src 0.0.0.0/0", udp("192.0.2.1", CLIENT, N4, SERVICE))
        .by("deny dst ::/0", icmp("2001:db8::1", N6, 135))
        .check();
}

/// A non-first fragment has no transport header: port rules cannot see it
/// (even where its first bytes look like one), address rules still do.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn non_first_ipv4_fragment_ignores_port_rules() {
    Table::new(&[
        "deny udp dport 53",
        "deny udp sport 40000",
        "allow tcp dport 80",
        "deny src 192.0.2.66",
    ])
    .by("deny udp dport 53", udp("192.0.2.1", 40001, N4, 53))
    .by(
        "deny udp dport 53",
        fragment("192.0.2.1", 40001, N4, 53, 0, true),
    )
    .by(
        "deny udp sport 40000",
        fragment("192.0.2.1", 40000, N4, SERVICE, 0, true),
    )
    .default(fragment("192.0.2.1", 40001, N4, 53, 185, true))
    .default(fragment("192.0.2.1", 40000, N4, 53, 185, false))
    .default(fragment("192.0.2.1", 40000, N4, 53, 1, true))
    .by(
        "deny src 192.0.2.66",
        fragment("192.0.2.66", 40001, N4, SERVICE, 185, false),
    )
    .check();
}

/// A datagram whose IP header is whole but whose transport header is cut
/// short by its own length field (padding behind it is not header): a deny
/// address rule still wins; otherwise, while rules for that transport are in
/// force the packet is dropped (a deny port rule must not be dodged by a
/// tiny fragment), and where only rules for other transports exist, address
/// rules and the default decide.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn truncated_transport_header_fails_closed() {
    const CUT: usize = 14 + 20 + 8; // 8 bytes of UDP or TCP: ports, no flags
    Table::new(&[
        "deny src 192.0.2.1",
        "deny udp dport 53",
        "allow dst 172.16.0.9",
    ])
    .by(
        "deny src 192.0.2.1",
        ended(udp("192.0.2.1", CLIENT, N4, 53), CUT - 4),
    )
    .unreadable(ended(udp("192.0.2.3", CLIENT, N4, 53), CUT - 4))
    .unreadable(ended(udp("192.0.2.3", CLIENT, "172.16.0.9", 53), CUT - 4))
    // No TCP rules: a cut TCP header hides nothing the rules look at.
    .default(ended(tcp("192.0.2.3", CLIENT, N4, 22), CUT))
    .by(
        "allow dst 172.16.0.9",
        ended(tcp("192.0.2.3", CLIENT, "172.16.0.9", 22), CUT),
    )
    .check();
    Table::new(&["deny tcp dport 22"])
        .unreadable(ended(tcp("192.0.2.3", CLIENT, N4, 22), CUT))
        .check();
}

/// A TCP fragment at offset 1 (8 bytes) overlaps the first fragment's TCP
/// header, the overlapping-fragment attack of RFC 1858: malformed, so
/// dropped while any rule is in force.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn tcp_fragment_at_offset_one_fails_closed() {
    // The protocol byte of the IPv4 header: make the fragment TCP.
    let tcp_at_one = || {
        patched(
            fragment("192.0.2.1", CLIENT, N4, 22, 1, true),
            14 + 9,
            6,
            "protocol TCP",
        )
    };
    Table::new(&["deny tcp dport 22"])
        .unreadable(tcp_at_one())
        .default(fragment("192.0.2.1", CLIENT, N4, 22, 1, true))
        .check();
    Table::new(&["deny udp dport 53"])
        .unreadable(tcp_at_one())
        .check();
}

/// An IPv6 extension chain longer than the walk follows hides the
/// transport: dropped while any port or ICMP rule is in force, else decided
/// by address rules and the default.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn over_long_ipv6_extension_chain_fails_closed() {
    let over_limit = || fixture("ipv6-ext-chain-over-limit-udp");
    Table::new(&["deny tcp dport 22"])
        .unreadable(over_limit())
        .check();
    Table::new(&["deny src 192.0.2.1"])
        .default(over_limit())
        .check();
}

/// The selftest's frame `name` (from 192.0.2.1 or 2001:db8::1; UDP to port
/// 53, TCP to 22 or 443).
fn fixture(name: &str) -> Packet {
    let case = packets::cases()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no selftest fixture {name}"));
    Packet {
        label: format!("fixture {name}"),
        frame: case.frame,
    }
}

/// Headers the stack walks must not hide a packet from the rules: priority
/// tags (VLAN id 0) and VLAN stacks, AH in both families. A VLAN stack
/// deeper than the walk goes is dropped while any rule is in force.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn headers_the_stack_walks_do_not_hide_packets() {
    Table::new(&["deny src 192.0.2.1"])
        .by("deny src 192.0.2.1", fixture("vlan-four-priority-tags"))
        .by("deny src 192.0.2.1", fixture("vlan-three-tags"))
        .by("deny src 192.0.2.1", fixture("vlan-tags-at-limit"))
        .unreadable(fixture("vlan-tags-over-limit"))
        .by("deny src 192.0.2.1", fixture("ipv4-ah-tcp-syn"))
        .check();
    Table::new(&["deny udp dport 53", "deny tcp dport 22"])
        .by("deny udp dport 53", fixture("vlan-four-priority-tags"))
        .by("deny tcp dport 22", fixture("ipv4-ah-tcp-syn"))
        .by("deny tcp dport 22", fixture("ipv6-ah-tcp-syn"))
        .unreadable(fixture("ipv6-ah-too-short"))
        .unreadable(fixture("ipv6-ah-tcp-syn-ends-70-in-ah"))
        .check();
    Table::new(&[])
        .default(fixture("vlan-tags-over-limit"))
        .check();
}

/// `packet` with byte `at` replaced by `byte`.
fn patched(packet: Packet, at: usize, byte: u8, what: &str) -> Packet {
    let mut frame = packet.frame;
    frame[at] = byte;
    Packet {
        label: format!("{} with {what}", packet.label),
        frame,
    }
}

/// Frames whose EtherType says IPv4 or IPv6 but whose IP header ends early,
/// makes no sense, or claims more bytes than the frame has are IP the
/// program cannot judge: dropped while any rule is in force, whatever kind;
/// with no rules at all they follow the default.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn ip_packets_the_walk_cannot_read_fail_closed() {
    let v4 = udp("192.0.2.1", CLIENT, N4, 53);
    let v6 = udp("2001:db8::1", CLIENT, N6, 53);
    let unreadable = || {
        [
            cut(v4.clone(), 14 + 10),
            cut(v4.clone(), 14 + 19),
            cut(v6.clone(), 14 + 39),
            // Whole headers, but length fields longer than the frame.
            cut(v4.clone(), 14 + 20 + 4),
            cut(v6.clone(), 14 + 40 + 4),
            patched(v4.clone(), 14, 0x44, "IHL 4"),
            patched(v4.clone(), 14, 0x65, "IP version 6"),
        ]
    };
    for rules in [&["deny udp dport 53"][..], &["allow src 198.51.100.0/24"]] {
        unreadable()
            .into_iter()
            .fold(Table::new(rules), Table::unreadable)
            .check();
    }
    unreadable()
        .into_iter()
        .fold(Table::new(&[]), Table::default)
        .check();
}

// ---------------------------------------------------------------------------
// Notice modes

/// Runs each of `probes` (packet, verdict, rule) in a program loaded with
/// `notice_mode`, checking the verdict, whether a notice came out, the hits
/// and the counters.
fn check_notice_mode(notice_mode: u32, default: u8) {
    common::require_root(NEEDS_ROOT);
    let mut object = MaybeUninit::uninit();
    let mut lab = Lab::load(&mut object, default, notice_mode);
    lab.install(&["deny src 192.0.2.1", "allow tcp dport 80"]);
    let deny = lab.id("deny src 192.0.2.1");
    let allow = lab.id("allow tcp dport 80");
    let probes = [
        (udp("192.0.2.1", CLIENT, N4, SERVICE), XDP_DROP, deny),
        (udp("192.0.2.1", CLIENT, N4, SERVICE), XDP_DROP, deny),
        (tcp("192.0.2.2", CLIENT, N4, 80), XDP_PASS, allow),
        (udp("192.0.2.2", CLIENT, N4, SERVICE), default, RULE_NONE),
        (arp("192.0.2.2", "192.0.2.1"), XDP_PASS, RULE_NONE),
    ];
    let mut failures = Vec::new();
    for (packet, verdict, rule_id) in &probes {
        let notice = match notice_mode {
            NOTICES_ALL => true,
            NOTICES_DENIED => *verdict == XDP_DROP,
            _ => false,
        };
        let want = Want {
            verdict: *verdict,
            rule_id: *rule_id,
            notice,
        };
        if let Err(why) = check_run(&lab.run(packet), packet, want) {
            failures.push(format!("{}: {why}", packet.label));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Counted alike whatever the mode.
    let hits = lab.hits();
    assert_eq!(hits["deny src 192.0.2.1"], 2, "{hits:?}");
    assert_eq!(hits["allow tcp dport 80"], 1, "{hits:?}");
    let counters = lab.counters();
    let drops = probes.iter().filter(|p| p.1 == XDP_DROP).count() as u64;
    let noticed = match notice_mode {
        NOTICES_ALL => probes.len() as u64,
        NOTICES_DENIED => drops,
        _ => 0,
    };
    assert_eq!(
        (counters.passed, counters.dropped, counters.aborted),
        (probes.len() as u64 - drops, drops, 0),
        "{counters:?}"
    );
    assert_eq!(
        (counters.notices_sent, counters.notices_lost),
        (noticed, 0),
        "{counters:?}"
    );
}

#[test]
#[ignore = "needs root: loading XDP programs"]
fn notices_denied_only_for_dropped_packets() {
    check_notice_mode(NOTICES_DENIED, XDP_PASS);
}

#[test]
#[ignore = "needs root: loading XDP programs"]
fn notices_denied_under_default_deny_include_default_drops() {
    check_notice_mode(NOTICES_DENIED, XDP_DROP);
}

#[test]
#[ignore = "needs root: loading XDP programs"]
fn notices_none_but_counters_still_count() {
    check_notice_mode(NOTICES_NONE, XDP_PASS);
}

#[test]
#[ignore = "needs root: loading XDP programs"]
fn notices_all_for_every_packet() {
    check_notice_mode(NOTICES_ALL, XDP_DROP);
}

// ---------------------------------------------------------------------------
// Reinstalling

/// Rules that stay keep their id and their count; a rule that goes has its
/// counter zeroed, so a rule that later gets the same id starts from 0.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn rule_ids_stay_across_reinstalls_and_removed_counters_are_zeroed() {
    common::require_root(NEEDS_ROOT);
    let mut object = MaybeUninit::uninit();
    let mut lab = Lab::load(&mut object, XDP_PASS, NOTICES_ALL);
    let from_x = udp("192.0.2.1", CLIENT, N4, SERVICE);
    let ssh = tcp("192.0.2.2", CLIENT, N4, 22);
    let telnet = tcp("192.0.2.2", CLIENT, N4, 23);
    let ping = icmp("192.0.2.2", N4, 8);
    let dns = udp("192.0.2.2", CLIENT, N4, 53);
    let run = |lab: &Lab, packet: &Packet, times: usize, verdict: u8, rule: Option<&str>| {
        let rule_id = rule.map_or(RULE_NONE, |r| lab.id(r));
        for _ in 0..times {
            let want = Want {
                verdict,
                rule_id,
                notice: true,
            };
            check_run(&lab.run(packet), packet, want)
                .unwrap_or_else(|why| panic!("{}: {why}", packet.label));
        }
    };
    let hits = |lab: &Lab| lab.hits().into_iter().collect::<Vec<_>>();
    let h = |rule: &str, n: u64| (rule.to_string(), n);

    lab.install(&[
        "deny src 192.0.2.1",
        "deny tcp dport 22",
        "allow icmp type 8",
    ]);
    let deny_x = lab.id("deny src 192.0.2.1");
    let deny_ssh = lab.slot("deny tcp dport 22");
    let allow_ping = lab.id("allow icmp type 8");
    run(&lab, &from_x, 2, XDP_DROP, Some("deny src 192.0.2.1"));
    run(&lab, &ssh, 1, XDP_DROP, Some("deny tcp dport 22"));
    run(&lab, &ping, 3, XDP_PASS, Some("allow icmp type 8"));
    assert_eq!(lab.counter_of_slot(deny_ssh), 1);

    // Reordered, one rule gone, one new.
    lab.install(&[
        "allow icmp type 8",
        "deny udp dport 53",
        "deny src 192.0.2.1",
    ]);
    assert_eq!(lab.id("deny src 192.0.2.1"), deny_x, "the id moved");
    assert_eq!(lab.id("allow icmp type 8"), allow_ping, "the id moved");
    assert_eq!(
        hits(&lab),
        [
            h("allow icmp type 8", 3),
            h("deny src 192.0.2.1", 2),
            h("deny udp dport 53", 0)
        ]
    );
    // Zeroed once no packet can still count on it (after the grace period).
    assert_eq!(
        lab.counter_of_slot(deny_ssh),
        0,
        "the counter of the removed 'deny tcp dport 22' (slot {deny_ssh})"
    );
    run(&lab, &ssh, 2, XDP_PASS, None);
    run(&lab, &from_x, 1, XDP_DROP, Some("deny src 192.0.2.1"));
    run(&lab, &dns, 1, XDP_DROP, Some("deny udp dport 53"));
    assert_eq!(
        hits(&lab),
        [
            h("allow icmp type 8", 3),
            h("deny src 192.0.2.1", 3),
            h("deny udp dport 53", 1)
        ]
    );
    assert_eq!(
        lab.counter_of_slot(deny_ssh),
        0,
        "counted for a rule not in force"
    );

    // A new rule (a new id, perhaps on a freed counter slot) starts from
    // zero; so does the removed rule coming back (with a new id too).
    // removed rule coming back.
    lab.install(&[
        "allow icmp type 8",
        "deny udp dport 53",
        "deny src 192.0.2.1",
        "deny tcp dport 23",
    ]);
    assert_eq!(lab.id("deny src 192.0.2.1"), deny_x);
    assert_eq!(lab.id("allow icmp type 8"), allow_ping);
    assert_eq!(lab.hits()["deny tcp dport 23"], 0);
    run(&lab, &telnet, 1, XDP_DROP, Some("deny tcp dport 23"));
    lab.install(&[
        "deny tcp dport 22",
        "allow icmp type 8",
        "deny udp dport 53",
        "deny src 192.0.2.1",
        "deny tcp dport 23",
    ]);
    assert_eq!(lab.id("deny src 192.0.2.1"), deny_x);
    assert_eq!(lab.id("allow icmp type 8"), allow_ping);
    run(&lab, &ssh, 1, XDP_DROP, Some("deny tcp dport 22"));
    assert_eq!(
        hits(&lab),
        [
            h("allow icmp type 8", 3),
            h("deny src 192.0.2.1", 3),
            h("deny tcp dport 22", 1),
            h("deny tcp dport 23", 1),
            h("deny udp dport 53", 1)
        ]
    );
    let ids: BTreeSet<u32> = lab.firewall.rules().iter().map(|a| a.id).collect();
    assert_eq!(
        ids.len(),
        5,
        "two rules share an id: {:?}",
        lab.firewall.rules()
    );
}

// ---------------------------------------------------------------------------
// Protocol rules

#[test]
#[ignore = "needs root: loading XDP programs"]
fn protocol_rules_match_by_ip_protocol() {
    Table::new(&[
        "deny proto esp",
        "allow proto 47",
        "deny proto sctp",
        "allow proto udplite",
    ])
    .by(
        "deny proto esp",
        raw_ip("192.0.2.1", N4, 50, "ESP", ESP_PAYLOAD),
    )
    .by(
        "deny proto esp",
        raw_ip("2001:db8::1", N6, 50, "ESP", ESP_PAYLOAD),
    )
    .by(
        "allow proto gre",
        raw_ip("192.0.2.1", N4, 47, "GRE", GRE_PAYLOAD),
    )
    .by(
        "allow proto gre",
        raw_ip("2001:db8::1", N6, 47, "GRE", GRE_PAYLOAD),
    )
    .by(
        "deny proto sctp",
        raw_ip("192.0.2.1", N4, 132, "SCTP", SCTP_PAYLOAD),
    )
    .by(
        "deny proto sctp",
        raw_ip("2001:db8::1", N6, 132, "SCTP", SCTP_PAYLOAD),
    )
    .by(
        "allow proto udplite",
        raw_ip("192.0.2.1", N4, 136, "UDP-Lite", &[0; 8]),
    )
    .default(udp("192.0.2.1", CLIENT, N4, SERVICE))
    .default(tcp("2001:db8::1", CLIENT, N6, 22))
    .default(icmp("192.0.2.1", N4, 8))
    .default(raw_ip("192.0.2.1", N4, 253, "protocol 253", &[0; 8]))
    .non_ip(arp("192.0.2.1", N4))
    .check();
}

/// A protocol rule is one more kind: a deny among the kinds' matches wins
/// (over an allowed port or address), else the first allow (the address
/// is looked at before the protocol), else the default.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn protocol_rules_combine_with_the_other_kinds() {
    Table::new(&[
        "deny proto tcp",
        "allow tcp dport 22",
        "allow src 192.0.2.9",
        "allow proto udp",
        "deny udp dport 53",
        "deny proto icmp",
    ])
    .by("deny proto tcp", tcp("192.0.2.9", CLIENT, N4, 22))
    .by("deny proto tcp", tcp("192.0.2.1", CLIENT, N4, 80))
    .by("deny udp dport 53", udp("192.0.2.9", CLIENT, N4, 53))
    .by("allow proto udp", udp("192.0.2.1", CLIENT, N4, SERVICE))
    .by("allow src 192.0.2.9", udp("192.0.2.9", CLIENT, N4, SERVICE))
    .by("deny proto icmp", icmp("192.0.2.1", N4, 8))
    // ICMPv6 is protocol 58, not ICMP's 1.
    .default(icmp("2001:db8::1", N6, 128))
    .check();
}

/// The walk looks through AH in both families: a protocol rule sees what is
/// behind it, never AH itself.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn protocol_rules_see_the_protocol_behind_ah() {
    Table::new(&["deny proto esp", "allow proto gre"])
        .by(
            "deny proto esp",
            behind_ah("192.0.2.1", N4, 50, "ESP", ESP_PAYLOAD),
        )
        .by(
            "deny proto esp",
            behind_ah("2001:db8::1", N6, 50, "ESP", ESP_PAYLOAD),
        )
        .by(
            "allow proto gre",
            behind_ah("2001:db8::1", N6, 47, "GRE", GRE_PAYLOAD),
        )
        .default(behind_ah("192.0.2.1", N4, 132, "SCTP", SCTP_PAYLOAD))
        .check();
}

// ---------------------------------------------------------------------------
// Rule ids and capacity

/// Installs each set in turn; packets that must be decided by a rule of
/// the set in force (`by`) or by the default (`passes`) after each.
fn swap_between(
    lab: &mut Lab,
    sets: &[&[String]],
    probes: &[(Packet, Vec<Option<&str>>)],
) -> Vec<Duration> {
    let mut took = Vec::new();
    for (round, set) in sets.iter().enumerate() {
        let texts: Vec<&str> = set.iter().map(String::as_str).collect();
        let started = Instant::now();
        lab.install(&texts);
        took.push(started.elapsed());
        for (packet, deciders) in probes {
            let want = match deciders[round % deciders.len()] {
                Some(text) => Want {
                    verdict: verdict_of(text),
                    rule_id: lab.id(text),
                    notice: true,
                },
                None => Want {
                    verdict: XDP_PASS,
                    rule_id: RULE_NONE,
                    notice: true,
                },
            };
            check_run(&lab.run(packet), packet, want)
                .unwrap_or_else(|why| panic!("after install {round}: {}: {why}", packet.label));
        }
    }
    took
}

/// `deny src 10.N.x.y` for the first `count` hosts of 10.N.0.0/16 (and on
/// into 10.N+1 past 65536).
fn host_rules(first_octet2: u32, count: u32) -> Vec<String> {
    (0..count)
        .map(|i| {
            let n = (first_octet2 << 16) + i;
            format!("deny src 10.{}.{}.{}", n >> 16, (n >> 8) & 255, n & 255)
        })
        .collect()
}

/// Issue 7 item 11: two sets of 40,000 rules, each of which fits, replace
/// each other again and again (a SIGHUP reload does exactly this install).
#[test]
#[ignore = "needs root: loading XDP programs"]
fn two_sets_of_40000_rules_replace_each_other() {
    common::require_root(NEEDS_ROOT);
    let mixed = |v4_octet2: u32, v6_group: u32, transport: &str| -> Vec<String> {
        let mut set = host_rules(v4_octet2, 30_000);
        set.extend((1..=5_000).map(|i| format!("deny src 2001:db8:{v6_group:x}::{i:x}")));
        set.extend((1..=5_000).map(|port| format!("deny {transport} dport {port}")));
        set
    };
    let a = mixed(0, 0, "tcp");
    let b = mixed(128, 1, "udp");
    assert_eq!((a.len(), b.len()), (40_000, 40_000));
    let mut object = MaybeUninit::uninit();
    let mut lab = Lab::load(&mut object, XDP_PASS, NOTICES_ALL);
    // Port 9999 is in neither set.
    let probes = [
        (
            udp("10.0.0.5", CLIENT, N4, 9999),
            vec![Some("deny src 10.0.0.5"), None],
        ),
        (
            udp("10.128.0.5", CLIENT, N4, 9999),
            vec![None, Some("deny src 10.128.0.5")],
        ),
        (
            tcp("2001:db8::7", CLIENT, N6, 9999),
            vec![Some("deny src 2001:db8::7"), None],
        ),
        (
            udp(N4, CLIENT, "192.0.2.1", 4000),
            vec![None, Some("deny udp dport 4000")],
        ),
    ];
    let took = swap_between(&mut lab, &[&a, &b, &a, &b], &probes);
    eprintln!("40,000-rule sets, install times: {took:?}");
}

/// Full sets of the longest kind to write (one LPM trie update a rule)
/// replace each other; one rule more is refused. Prints how long each
/// install took.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn full_rule_sets_replace_each_other() {
    common::require_root(NEEDS_ROOT);
    let full = MAX_RULES_PER_SET as u32;
    let a = host_rules(0, full);
    let b = host_rules(100, full);
    let mut object = MaybeUninit::uninit();
    let mut lab = Lab::load(&mut object, XDP_PASS, NOTICES_ALL);
    let probes = [
        (
            udp("10.0.255.255", CLIENT, N4, SERVICE),
            vec![Some("deny src 10.0.255.255"), None],
        ),
        (
            udp("10.100.0.0", CLIENT, N4, SERVICE),
            vec![None, Some("deny src 10.100.0.0")],
        ),
    ];
    let took = swap_between(&mut lab, &[&a, &b, &a], &probes);
    eprintln!("{full}-rule sets of IPv4 hosts, install times: {took:?}");

    let mut too_many = host_rules(200, full);
    too_many.push("deny icmp".into());
    let set = rules::parse_flags(&too_many).unwrap();
    let err = lab
        .firewall
        .install(&RuleMaps::of(&lab.skel.maps), &set)
        .expect_err("one rule more than a set holds");
    assert!(
        err.to_string().contains("65537 rules, more than the 65536"),
        "{err:#}"
    );
    // Refused before anything changed: the set in force still decides.
    let packet = udp("10.0.255.255", CLIENT, N4, SERVICE);
    let want = Want {
        verdict: XDP_DROP,
        rule_id: lab.id("deny src 10.0.255.255"),
        notice: true,
    };
    check_run(&lab.run(&packet), &packet, want).unwrap();
}

/// Issue 7 item 15: an id names one rule for the whole run. A rule that
/// stays keeps its id; a new one — also a rule that comes back — gets an id
/// never used before.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn rule_ids_are_never_reused_within_a_run() {
    common::require_root(NEEDS_ROOT);
    let mut object = MaybeUninit::uninit();
    let mut lab = Lab::load(&mut object, XDP_PASS, NOTICES_ALL);
    let dns = udp("192.0.2.1", CLIENT, N4, 53);
    let mut seen = BTreeMap::new();
    for set in [
        &["deny udp dport 53", "deny icmp"][..],
        &["deny udp dport 54", "deny icmp"],
        &["deny udp dport 53", "deny icmp"],
        &["deny udp dport 55"],
        &["deny udp dport 53", "deny icmp"],
    ] {
        lab.install(set);
        for active in lab.firewall.rules() {
            let text = active.rule.rule.to_string();
            if let Some(earlier) = seen.insert(active.id, text.clone()) {
                assert!(
                    earlier == text,
                    "id {} was '{earlier}', now '{text}'",
                    active.id
                );
            }
        }
        if set.contains(&"deny udp dport 53") {
            let want = Want {
                verdict: XDP_DROP,
                rule_id: lab.id("deny udp dport 53"),
                notice: true,
            };
            check_run(&lab.run(&dns), &dns, want).unwrap();
            // Each comeback is a new rule with a new counter.
            assert_eq!(lab.hits()["deny udp dport 53"], 1);
        }
    }
    // 53, icmp, 54, 53 again, 55, 53 and icmp again: seven ids, in order.
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        (0..7).collect::<Vec<_>>()
    );
}

/// Every port in `transport` `dir` denied: 65,536 rules cheap to write.
fn every_port(transport: &str, dir: &str) -> Vec<String> {
    (0..=u16::MAX)
        .map(|port| format!("deny {transport} {dir} {port}"))
        .collect()
}

/// Once more rules than there are counter slots have come and gone, slots
/// are handed out again; ids never are. Notices carry the slot, and
/// `Firewall::rule_of_slot` names the rule and its id; a reused slot's
/// counter starts from zero.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn notice_rule_ids_translate_to_ids_once_slots_are_reused() {
    common::require_root(NEEDS_ROOT);
    let mut object = MaybeUninit::uninit();
    let mut lab = Lab::load(&mut object, XDP_PASS, NOTICES_ALL);
    let packet = tcp(N4, CLIENT, "192.0.2.1", SERVICE);
    let mut ids = BTreeSet::new();
    let sets = [
        ("deny tcp dport 4789", every_port("tcp", "dport")),
        ("deny udp sport 40000", every_port("udp", "sport")),
        ("deny tcp sport 40000", every_port("tcp", "sport")),
    ];
    for (decider, set) in &sets {
        let texts: Vec<&str> = set.iter().map(String::as_str).collect();
        lab.install(&texts);
        ids.extend(lab.firewall.rules().iter().map(|active| active.id));
        if decider.starts_with("deny tcp") {
            let ran = lab.run(&packet);
            let want = Want {
                verdict: XDP_DROP,
                rule_id: lab.id(decider),
                notice: true,
            };
            check_run(&ran, &packet, want).unwrap_or_else(|why| panic!("{decider}: {why}"));
        }
    }
    assert_eq!(ids.len(), 3 * 65536, "an id was handed out twice");
    let (decider, _) = &sets[2];
    let (id, slot) = (lab.id(decider), lab.slot(decider));
    assert!(slot < MAX_RULES, "slot {slot}");
    assert_ne!(id, slot, "slots should be reused by now");
    let named = lab
        .firewall
        .rule_of_slot(slot)
        .expect("the slot names a rule");
    assert_eq!(
        (named.id, named.rule.rule.to_string()),
        (id, decider.to_string())
    );
    assert_eq!(lab.firewall.shown_rule_id(RULE_NONE), RULE_NONE);
    // Only the rule that saw the packet has a hit: the slot counted on in
    // the first set was zeroed before it was handed out again.
    let hits: Vec<(String, u64)> = lab.hits().into_iter().filter(|&(_, n)| n != 0).collect();
    assert_eq!(hits, [(decider.to_string(), 1)]);
}

// ---------------------------------------------------------------------------
// Live reload

/// How often the rule set is swapped while packets run.
const SWAPS: usize = 24;
/// Packets that must run between two swaps, so both sets are seen.
const RUNS_PER_SWAP: u64 = 20;

/// What the packet thread saw: (return value, notice verdict, notice rule
/// id) with how often, and whatever was wrong.
#[derive(Default)]
struct Seen {
    outcomes: BTreeMap<(u32, u8, u32), u64>,
    problems: Vec<String>,
}

/// Runs `frame` through the program behind `prog` once at a time until
/// `stop`, reading the one notice of each run from `events`.
fn run_until_stopped(
    prog: OwnedFd,
    events: MapHandle,
    frame: &[u8],
    runs: &AtomicU64,
    stop: &AtomicBool,
) -> Seen {
    let mut seen = Seen::default();
    while !stop.load(Ordering::Relaxed) && seen.problems.len() < 10 {
        // SAFETY: plain data; the pointers live across the call.
        let mut opts: libbpf_sys::bpf_test_run_opts = unsafe { std::mem::zeroed() };
        opts.sz = size_of::<libbpf_sys::bpf_test_run_opts>() as _;
        opts.data_in = frame.as_ptr().cast();
        opts.data_size_in = frame.len() as u32;
        opts.repeat = 1;
        // SAFETY: a valid program fd and options that point to live memory.
        let rc = unsafe { libbpf_sys::bpf_prog_test_run_opts(prog.as_raw_fd(), &mut opts) };
        if rc != 0 {
            seen.problems
                .push(format!("BPF_PROG_TEST_RUN failed: {rc}"));
            continue;
        }
        let notices = drain(&events);
        match notices[..] {
            [notice] => {
                *seen
                    .outcomes
                    .entry((opts.retval, notice.verdict, notice.rule_id))
                    .or_default() += 1
            }
            _ => seen.problems.push(format!(
                "run {}: {} notices, want 1",
                runs.load(Ordering::Relaxed),
                notices.len()
            )),
        }
        runs.fetch_add(1, Ordering::Relaxed);
    }
    seen
}

/// One thread runs a packet through the program again and again while
/// another swaps between two rule sets that decide it differently (A: deny
/// its source; B: allow its port, deny other things): every
/// packet gets the verdict of one set or the other, by that set's rule —
/// never a half-installed set, the default, or ABORTED.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn live_reload_while_packets_run() {
    common::require_root(NEEDS_ROOT);
    // The default would pass the packet: one that saw neither set shows.
    // The sets have different kinds of rule, so a packet that looked up
    // the kinds of the one set and the rules of the other shows too.
    const A: &[&str] = &["deny src 192.0.2.1", "deny tcp dport 22"];
    const B: &[&str] = &[
        "allow udp dport 4789",
        "deny src 198.51.100.0/24",
        "deny icmp",
    ];
    let packet = udp("192.0.2.1", CLIENT, N4, SERVICE);
    let mut object = MaybeUninit::uninit();
    let mut lab = Lab::load(&mut object, XDP_PASS, NOTICES_ALL);
    lab.install(A);
    // The skeleton's handles stay on this thread; the packet thread gets
    // descriptors of its own for the same program and ring.
    let prog = lab
        .skel
        .progs
        .xdp_hello
        .as_fd()
        .try_clone_to_owned()
        .expect("duplicating the program fd");
    let events = MapHandle::try_from(&lab.skel.maps.events).expect("a handle on the ring");

    // (verdict, rule id) each installed set gives the packet.
    // The packet thread sees the kernel's rule ids: counter slots.
    let mut allowed = BTreeSet::from([(XDP_DROP, lab.slot("deny src 192.0.2.1"))]);
    let runs = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let seen = thread::scope(|scope| {
        let runner = scope.spawn(|| run_until_stopped(prog, events, &packet.frame, &runs, &stop));
        for swap in 0..SWAPS {
            let (set, decider) = if swap % 2 == 0 {
                (B, "allow udp dport 4789")
            } else {
                (A, "deny src 192.0.2.1")
            };
            lab.install(set);
            allowed.insert((verdict_of(decider), lab.slot(decider)));
            // Let packets run under this set before the next swap.
            let target = runs.load(Ordering::Relaxed) + RUNS_PER_SWAP;
            let deadline = Instant::now() + Duration::from_secs(10);
            while runs.load(Ordering::Relaxed) < target
                && !runner.is_finished()
                && Instant::now() < deadline
            {
                thread::yield_now();
            }
        }
        stop.store(true, Ordering::Relaxed);
        runner.join().expect("the packet thread panicked")
    });
    let elapsed = started.elapsed();

    assert!(seen.problems.is_empty(), "{}", seen.problems.join("\n"));
    let total: u64 = seen.outcomes.values().sum();
    assert_eq!(total, runs.load(Ordering::Relaxed));
    let stray: Vec<_> = seen
        .outcomes
        .iter()
        .filter(|&(&(ret, verdict, rule_id), _)| {
            ret != verdict as u32 || !allowed.contains(&(verdict, rule_id))
        })
        .collect();
    assert!(
        stray.is_empty(),
        "(return value, verdict, rule id) no installed set gives: {stray:?}; \
         allowed (verdict, rule id): {allowed:?}; all: {:?}",
        seen.outcomes
    );
    for verdict in [XDP_DROP, XDP_PASS] {
        assert!(
            seen.outcomes
                .keys()
                .any(|&(ret, _, _)| ret == verdict as u32),
            "no packet got {}: {:?}",
            verdict_name(verdict),
            seen.outcomes
        );
    }
    assert!(
        total >= SWAPS as u64 * RUNS_PER_SWAP,
        "only {total} packets in {elapsed:?}"
    );
    let counters = lab.counters();
    assert_eq!(
        (
            counters.passed + counters.dropped,
            counters.aborted,
            counters.notices_lost
        ),
        (total, 0, 0),
        "{counters:?}"
    );
    eprintln!(
        "live reload: {SWAPS} swaps, {total} packets in {elapsed:?}: {:?}",
        seen.outcomes
    );
}
