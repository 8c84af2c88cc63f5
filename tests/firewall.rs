//! The firewall through BPF_PROG_TEST_RUN: ordered rule sets put in place
//! with `Firewall::install` in a freshly loaded program, then crafted frames
//! run through it one at a time. The first rule that matches decides, so
//! every table says which rule (by its text) decides each frame, or that the
//! default does. For every frame the XDP return value and the one notice it
//! produces (its verdict and rule id) are checked; for every table, each
//! rule's hits (packets, and bytes: the frames' lengths) and the verdict
//! counters. Tables run under both default policies (a rule decides the same
//! either way, the default does not), each also as a dry run (every packet
//! passes, the notice and the counters say what would have happened). Root
//! only: ignored as anyone else; `make test` runs them.
//!
//! Where a table relied on the old "a deny among the kinds wins" or "the
//! longest prefix wins", it now either writes the exception first or keeps
//! the order and expects the first rule; the comment says which.
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
    self, Config, Notice, RuleHits, MAX_RULES, NOTICES_ALL, NOTICES_DENIED, NOTICES_NONE,
    RULE_NONE, XDP_DROP, XDP_PASS,
};
use xdp_hello::firewall::{Firewall, RuleMaps, RuleSet};
use xdp_hello::policy::{self, evaluate, Action, Rule, MAX_RULES_PER_SET};
use xdp_hello::selftest::{packets, test_run};
use xdp_hello::skel::XdpHelloSkel;
use xdp_hello::stats::Counters;
use xdp_hello::{iface, loader};

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

/// An ICMP message (IPv4) or ICMPv6 one (IPv6) of `icmp_type` and `code`.
fn icmp_code(src: &str, dst: &str, icmp_type: u8, code: u8) -> Packet {
    let v6 = addr(src).is_ipv6();
    let frame = if v6 {
        written(|f| {
            ip(src, dst)
                .icmpv6_raw(icmp_type, code, [0; 4])
                .write(f, b"ping")
        })
    } else {
        written(|f| {
            ip(src, dst)
                .icmpv4_raw(icmp_type, code, [0; 4])
                .write(f, b"ping")
        })
    };
    let proto = if v6 { "ICMPv6" } else { "ICMP" };
    Packet {
        label: format!("{proto} type {icmp_type} code {code} {src} → {dst}"),
        frame,
    }
}

/// TCP flag letters as the rules write them, FIN in bit 0.
const FLAG_LETTERS: [char; 8] = ['F', 'S', 'R', 'P', 'A', 'U', 'E', 'W'];

/// A TCP segment whose flags byte is `flags` (FIN in bit 0).
fn tcp_flags(src: &str, sport: u16, dst: &str, dport: u16, flags: u8) -> Packet {
    let mut frame = written(|f| ip(src, dst).tcp(sport, dport, 1, 64240).write(f, &[]));
    let ip_len = if addr(src).is_ipv6() { 40 } else { 20 };
    // Byte 13 of the TCP header holds the eight flags (RFC 9293, 3.1).
    frame[abi::ETH_HLEN + ip_len + 13] = flags;
    let letters: String = (0..8)
        .filter(|bit| flags & (1 << bit) != 0)
        .map(|bit| FLAG_LETTERS[bit])
        .collect();
    Packet {
        label: format!(
            "TCP [{letters}] {} → {}",
            endpoint(src, sport),
            endpoint(dst, dport)
        ),
        frame,
    }
}

/// The TCP flag bits by letter.
const FIN: u8 = 1;
const SYN: u8 = 1 << 1;
const RST: u8 = 1 << 2;
const ACK: u8 = 1 << 4;
const ECE: u8 = 1 << 6;
const CWR: u8 = 1 << 7;

/// A non-first IPv4 fragment (offset 185, the last) whose protocol field
/// says `proto`, and whose first bytes look like a header of it with
/// `sport` → `dport`: only the offset tells the program there is none.
fn later_fragment(proto: u8, name: &str, src: &str, sport: u16, dst: &str, dport: u16) -> Packet {
    let packet = patched(
        fragment(src, sport, dst, dport, 185, false),
        abi::ETH_HLEN + 9,
        proto,
        "",
    );
    Packet {
        label: format!(
            "{name} {} → {} fragment at offset 185",
            endpoint(src, sport),
            endpoint(dst, dport)
        ),
        frame: packet.frame,
    }
}

/// Bytes of Ethernet, IPv4 and 8 of the transport header: UDP's whole, a
/// TCP header's ports but not its flags.
const CUT: usize = 14 + 20 + 8;

/// A TCP SYN (IPv4) whose datagram ends 8 bytes into the TCP header: the
/// walk cannot read the header, so ports and flags are unknown.
fn cut_tcp(src: &str, dst: &str, dport: u16) -> Packet {
    ended(tcp(src, CLIENT, dst, dport), CUT)
}

/// A UDP datagram (IPv4) that ends 4 bytes into the UDP header.
fn cut_udp(src: &str, dst: &str, dport: u16) -> Packet {
    ended(udp(src, CLIENT, dst, dport), CUT - 4)
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

/// A program's configuration: the default, the notices, enforcing.
fn config(default_verdict: u8, notice_mode: u32) -> Config {
    Config {
        default_verdict: default_verdict as u32,
        notice_mode,
        dry_run: 0,
        ..Config::DEFAULT
    }
}

/// `config` as a dry run.
fn dry(config: Config) -> Config {
    Config {
        dry_run: 1,
        ..config
    }
}

/// `texts` as the command line reads and compiles them.
fn rule_set(texts: &[&str]) -> RuleSet {
    let texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
    RuleSet::of(policy::parse_flags(&texts).unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("compiling {}: {e}", shown(&texts)))
}

/// A rule set as a failure shows it: whole while it is short.
fn shown<S: AsRef<str> + std::fmt::Debug>(texts: &[S]) -> String {
    match texts {
        [first, .., last] if texts.len() > 10 => format!(
            "{} rules, '{}' … '{}'",
            texts.len(),
            first.as_ref(),
            last.as_ref()
        ),
        _ => format!("{texts:?}"),
    }
}

impl<'obj> Lab<'obj> {
    fn load(object: &'obj mut MaybeUninit<OpenObject>, config: Config) -> Self {
        let skel = loader::load(object, RING_BYTES, config).expect("loading the XDP program");
        Lab {
            skel,
            firewall: Firewall::new(),
        }
    }

    /// Reads and compiles `texts` as the command line does, then installs
    /// them.
    fn install(&mut self, texts: &[&str]) {
        let set = rule_set(texts);
        self.firewall
            .install(&RuleMaps::of(&self.skel.maps), &set)
            .unwrap_or_else(|e| panic!("installing {}: {e:#}", shown(texts)));
    }

    /// The id of the first rule in force written as `text`.
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

    /// Every rule in force (as written back by `Display`) with its hits, in
    /// rule order.
    fn hits(&self) -> Vec<(String, RuleHits)> {
        self.firewall
            .hits(&RuleMaps::of(&self.skel.maps))
            .expect("reading rule hits")
            .into_iter()
            .map(|(active, hits)| (active.rule.rule.to_string(), hits))
            .collect()
    }

    /// The hits of the first rule in force written as `text`.
    fn hits_of(&self, text: &str) -> RuleHits {
        let printed = parse(text).to_string();
        self.hits()
            .into_iter()
            .find(|(rule, _)| *rule == printed)
            .map(|(_, hits)| hits)
            .unwrap_or_else(|| panic!("'{text}' is not in force"))
    }

    /// The counter slot of the rule in force written as `text`.
    fn slot(&self, text: &str) -> u32 {
        self.firewall
            .slot_of(self.id(text))
            .expect("a rule in force has a slot")
    }

    /// The hits in counter slot `slot` since it was last freed, whether a
    /// rule holds it or not.
    fn hits_of_slot(&self, slot: u32) -> RuleHits {
        self.firewall
            .slot_hits(&RuleMaps::of(&self.skel.maps), slot)
            .expect("reading a rule counter")
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

/// `packets` packets of `packet`'s length.
fn hits(packets: u64, packet: &Packet) -> RuleHits {
    RuleHits {
        packets,
        bytes: packets * packet.frame.len() as u64,
    }
}

/// Empties the ring buffer `events`, oldest notice first.
fn drain(events: &dyn MapCore) -> Vec<Notice> {
    let mut notices = Vec::new();
    test_run::drain(events, |notice| notices.push(notice)).expect("reading the ring buffer");
    notices
}

/// What a run should come to: the verdict (in the notice and the
/// counters), what the program returns (the verdict, or XDP_PASS in a dry
/// run), the deciding rule, and whether a notice must come out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Want {
    verdict: u8,
    returned: u8,
    rule_id: u32,
    notice: bool,
}

impl Want {
    /// `verdict` by `rule_id`, enforced, with a notice.
    fn enforced(verdict: u8, rule_id: u32) -> Want {
        Want {
            verdict,
            returned: verdict,
            rule_id,
            notice: true,
        }
    }
}

/// Whether `ran` (of `packet`) is `want`; else what differs.
fn check_run(ran: &Ran, packet: &Packet, want: Want) -> Result<(), String> {
    let mut diffs = Vec::new();
    if ran.return_value != want.returned as u32 {
        diffs.push(format!(
            "return value {} ({}), want {} ({})",
            ran.return_value,
            verdict_name(ran.return_value as u8),
            want.returned,
            verdict_name(want.returned)
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
// Tables: rules in order, frames, and who decides each frame

enum By {
    /// The default policy (rule id RULE_NONE).
    Default,
    /// The first rule written so.
    Rule(&'static str),
    /// Nobody: non-IP traffic passes whatever the rules and the default.
    NonIp,
    /// Nobody: IP the walk cannot judge (malformed, cut inside the IP
    /// header, VLAN tags past the limit) is dropped while any rule is in
    /// force (fail closed), before any rule is looked at.
    Unjudgeable,
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

    /// `packet` is decided by the first rule written `rule`.
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

    /// `packet` is IP the walk cannot judge: dropped while any rule is in
    /// force, else the default decides.
    fn unjudgeable(mut self, packet: Packet) -> Table {
        self.probes.push((packet, By::Unjudgeable));
        self
    }

    /// Runs the table only under `default`.
    fn under(mut self, default: u8) -> Table {
        self.defaults = vec![default];
        self
    }

    /// The index of the first rule of the table written as `text`.
    fn index_of(&self, text: &str) -> usize {
        let rule = parse(text);
        self.rules
            .iter()
            .position(|r| parse(r) == rule)
            .unwrap_or_else(|| panic!("'{text}' is not a rule of {:?}", self.rules))
    }

    /// Who decides `by` under `default`: the verdict and the rule's index.
    fn decision(&self, by: &By, default: u8) -> (u8, Option<usize>) {
        match by {
            By::Default => (default, None),
            By::NonIp => (XDP_PASS, None),
            By::Unjudgeable if self.rules.is_empty() => (default, None),
            By::Unjudgeable => (XDP_DROP, None),
            By::Rule(text) => (verdict_of(text), Some(self.index_of(text))),
        }
    }

    /// For each default policy, enforcing and as a dry run: loads a
    /// program, installs the rules, runs every frame and checks it; then
    /// checks every rule's hits and the verdict counters. Reports every
    /// difference at once.
    fn check(&self) {
        common::require_root(NEEDS_ROOT);
        let failures: Vec<String> = self
            .defaults
            .iter()
            .flat_map(|&default| {
                [
                    config(default, NOTICES_ALL),
                    dry(config(default, NOTICES_ALL)),
                ]
            })
            .flat_map(|config| self.check_under(config))
            .collect();
        assert!(
            failures.is_empty(),
            "rules {:?}:\n  {}",
            self.rules,
            failures.join("\n  ")
        );
    }

    fn check_under(&self, config: Config) -> Vec<String> {
        let default = config.default_verdict as u8;
        let mut object = MaybeUninit::uninit();
        let mut lab = Lab::load(&mut object, config);
        lab.install(&self.rules);

        let under = format!(
            "default {}{}",
            verdict_name(default),
            if config.dry_run != 0 { ", dry run" } else { "" }
        );
        let mut failures = Vec::new();
        let mut want_hits = vec![RuleHits::default(); self.rules.len()];
        let (mut passed, mut dropped) = (0, 0);
        for (packet, by) in &self.probes {
            let (verdict, index) = self.decision(by, default);
            let rule_id = match index {
                Some(index) => {
                    want_hits[index].packets += 1;
                    want_hits[index].bytes += packet.frame.len() as u64;
                    lab.firewall.rules()[index].id
                }
                None => RULE_NONE,
            };
            if verdict == XDP_PASS {
                passed += 1;
            } else {
                dropped += 1;
            }
            let want = Want {
                verdict,
                returned: if config.dry_run != 0 {
                    XDP_PASS
                } else {
                    verdict
                },
                rule_id,
                notice: true,
            };
            if let Err(why) = check_run(&lab.run(packet), packet, want) {
                let who = match by {
                    By::Default => "the default".to_string(),
                    By::NonIp => "nobody (not IP)".to_string(),
                    By::Unjudgeable => "nobody (IP the walk cannot judge)".to_string(),
                    By::Rule(text) => format!("'{text}' (id {rule_id})"),
                };
                failures.push(format!(
                    "{under}: {}, to be decided by {who}: {why}",
                    packet.label
                ));
            }
        }
        let got_hits: Vec<RuleHits> = lab.hits().into_iter().map(|(_, hits)| hits).collect();
        if got_hits != want_hits {
            let differ: Vec<String> = self
                .rules
                .iter()
                .zip(got_hits.iter().zip(&want_hits))
                .filter(|(_, (got, want))| got != want)
                .map(|(rule, (got, want))| format!("'{rule}' {got:?}, want {want:?}"))
                .collect();
            failures.push(format!("{under}: rule hits: {}", differ.join("; ")));
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

/// A rule text built at run time, for `Table::new`.
fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

/// Checks every table of a test.
fn check_tables(tables: Vec<Table>) {
    for table in tables {
        table.check();
    }
}

/// One root test per function of `tables` (each gives the tables of one
/// subject), and the list of them all for `every_table_agrees_with_the_spec`.
macro_rules! table_tests {
    ($($name:ident),+ $(,)?) => {
        $(
            #[test]
            #[ignore = "needs root: loading XDP programs"]
            fn $name() {
                check_tables(tables::$name());
            }
        )+
        const TABLES: &[(&str, fn() -> Vec<Table>)] = &[$((stringify!($name), tables::$name)),+];
    };
}

table_tests!(
    address_rules_ipv4_src_dst_host_and_network,
    address_rules_ipv6_src_dst_host_and_network,
    exceptions_written_first_ipv4,
    exceptions_written_first_ipv6,
    nested_prefixes_from_the_host_out,
    hosts_inside_wider_networks_of_earlier_rules,
    wide_networks_paired_with_other_fields,
    tcp_port_rules_single_ports_and_range_edges,
    udp_port_rules_single_ports_and_range_edges,
    icmp_type_exceptions_written_first,
    icmp_types_without_an_any_type_rule,
    first_match_across_fields,
    default_deny_drops_unmatched_ip_and_allow_rules_beat_it,
    non_ip_traffic_passes_under_default_deny_and_deny_rules,
    non_first_fragments_have_no_transport_fields,
    truncated_transport_header_fails_closed,
    tcp_fragment_at_offset_one_fails_closed,
    stop_in_the_extension_chain_is_an_unknown_protocol,
    headers_the_stack_walks_do_not_hide_packets,
    ip_packets_the_walk_cannot_judge_fail_closed,
    protocol_rules_match_by_ip_protocol,
    protocol_rules_in_order_with_other_fields,
    protocol_rules_see_the_protocol_behind_ah,
    combined_fields_ssh_from_the_admin_network,
    combined_fields_addresses_and_ports_together,
    port_lists_and_ranges_with_their_boundaries,
    address_lists_mix_ipv4_and_ipv6,
    icmp_type_and_code_lists,
    tcp_flags_with_and_without_a_mask,
    protocol_lists,
    rules_with_no_field_match_every_ip_packet,
    rules_on_an_interface,
);

/// The tables, one function per subject.
mod tables {
    use super::*;

    /// Both families, since port rules apply to IPv4 and IPv6 alike.
    const FAMILIES: [(&str, &str); 2] = [("192.0.2.1", N4), ("2001:db8::1", N6)];

    // -- Address rules

    pub fn address_rules_ipv4_src_dst_host_and_network() -> Vec<Table> {
        let table = Table::new(&[
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
        // Two rules match: the first decides (was "the deny wins"; the order
        // is kept, so the allow of the source decides the first packet).
        .by(
            "allow src 198.51.100.0/24",
            udp("198.51.100.7", CLIENT, "203.0.113.5", SERVICE),
        )
        .by(
            "deny src 192.0.2.1",
            udp("192.0.2.1", CLIENT, "192.0.2.9", SERVICE),
        )
        // IPv4 rules never match IPv6 addresses that start with the same bytes.
        .default(udp("c000:201::", CLIENT, N6, SERVICE))
        .default(udp(N6, CLIENT, "cb00:7100::", SERVICE));
        vec![table]
    }

    pub fn address_rules_ipv6_src_dst_host_and_network() -> Vec<Table> {
        let table = Table::new(&[
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
        // Two rules match: the first decides (order kept, as for IPv4).
        .by(
            "allow src 2001:db8:100::/48",
            udp("2001:db8:100::7", CLIENT, "2001:db8:200::7", SERVICE),
        )
        .by(
            "deny src 2001:db8::1",
            udp("2001:db8::1", CLIENT, "2001:db8::9", SERVICE),
        )
        // 32.1.13.184 is 2001:0db8 as an IPv4 address.
        .default(udp("32.1.13.184", CLIENT, N4, SERVICE));
        vec![table]
    }

    /// A host allowed out of a denied network: the exception is written
    /// first (it was "the longest prefix wins"). Written after, the network's
    /// rule decides the host too.
    pub fn exceptions_written_first_ipv4() -> Vec<Table> {
        let first = Table::new(&[
            "allow src 10.1.2.3",
            "deny src 10.0.0.0/8",
            "allow dst 172.20.5.6",
            "deny dst 172.20.0.0/16",
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
        // Both directions match: the earlier rule, whatever the prefixes.
        .by(
            "deny src 10.0.0.0/8",
            udp("10.9.9.9", CLIENT, "172.20.5.6", SERVICE),
        );
        let after = Table::new(&["deny src 10.0.0.0/8", "allow src 10.1.2.3"])
            .by("deny src 10.0.0.0/8", udp("10.1.2.3", CLIENT, N4, SERVICE))
            .by("deny src 10.0.0.0/8", udp("10.1.2.4", CLIENT, N4, SERVICE));
        vec![first, after]
    }

    pub fn exceptions_written_first_ipv6() -> Vec<Table> {
        let first = Table::new(&[
            "allow src 2001:db8::1:2:3",
            "deny src 2001:db8::/32",
            "allow dst fd12::5",
            "deny dst fd12::/16",
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
        .default(udp(N6, CLIENT, "fd13::5", SERVICE));
        let after = Table::new(&["deny src 2001:db8::/32", "allow src 2001:db8::1:2:3"]).by(
            "deny src 2001:db8::/32",
            udp("2001:db8::1:2:3", CLIENT, N6, SERVICE),
        );
        vec![first, after]
    }

    /// Four levels deep, and the whole address space (/0) as the outermost,
    /// written from the host out (was: from /0 in, longest prefix wins).
    pub fn nested_prefixes_from_the_host_out() -> Vec<Table> {
        let table = Table::new(&[
            "deny src 10.1.2.3",
            "allow src 10.1.2.0/24",
            "deny src 10.1.0.0/16",
            "allow src 10.0.0.0/8",
            "deny src 0.0.0.0/0",
            "allow src 2001:db8:1:2::3",
            "deny src 2001:db8:1:2::/64",
            "allow src 2001:db8:1::/48",
            "deny src 2001:db8::/32",
            "allow src ::/0",
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
        );
        vec![table]
    }

    /// Many hosts in every field, some inside wider networks: a host inside
    /// a wider network of an earlier rule is still decided by that rule, in
    /// both families and directions (the host's range lies inside the
    /// network's, `classify::AddressTable`); a set of hosts alone.
    pub fn hosts_inside_wider_networks_of_earlier_rules() -> Vec<Table> {
        // Enough hosts in every field to fill many buckets.
        let many = |v4: &str, v6: &str| -> Vec<String> {
            (1..=64)
                .map(|i| format!("{v4}.{i}"))
                .chain((1..=64).map(|i| format!("{v6}{i:x}")))
                .collect()
        };
        let fill: [&'static str; 2] = [
            leak(format!(
                "deny src {}",
                many("10.200.0", "2001:db8:200::").join(",")
            )),
            leak(format!(
                "deny dst {}",
                many("10.201.0", "2001:db8:201::").join(",")
            )),
        ];
        let with_networks = Table::new(&[
            fill[0],
            fill[1],
            "allow src 10.1.2.3",
            "deny src 10.0.0.0/8",
            "allow src 10.1.2.4",
            "deny src 192.0.2.7",
            "allow src 2001:db8::3",
            "deny src 2001:db8::/32",
            "allow src 2001:db8::4",
            "deny src 3fff::7",
            "deny dst 10.9.9.9",
            "allow dst 10.9.0.0/16",
            "deny dst 10.9.9.10",
            "deny dst 2001:db8:9::9",
            "allow dst 2001:db8:9::/48",
            "deny dst 2001:db8:9::10",
        ])
        .by("allow src 10.1.2.3", udp("10.1.2.3", CLIENT, N4, SERVICE))
        .by("deny src 10.0.0.0/8", udp("10.1.2.4", CLIENT, N4, SERVICE))
        .by("deny src 10.0.0.0/8", udp("10.7.7.7", CLIENT, N4, SERVICE))
        .by("deny src 192.0.2.7", udp("192.0.2.7", CLIENT, N4, SERVICE))
        .default(udp("192.0.2.8", CLIENT, N4, SERVICE))
        .by(
            "allow src 2001:db8::3",
            udp("2001:db8::3", CLIENT, N6, SERVICE),
        )
        .by(
            "deny src 2001:db8::/32",
            udp("2001:db8::4", CLIENT, N6, SERVICE),
        )
        .by("deny src 3fff::7", udp("3fff::7", CLIENT, N6, SERVICE))
        .default(udp("3fff::8", CLIENT, N6, SERVICE))
        .by(
            "deny dst 10.9.9.9",
            udp("192.0.2.1", CLIENT, "10.9.9.9", SERVICE),
        )
        .by(
            "allow dst 10.9.0.0/16",
            udp("192.0.2.1", CLIENT, "10.9.9.10", SERVICE),
        )
        .by(
            "allow dst 10.9.0.0/16",
            udp("192.0.2.1", CLIENT, "10.9.1.1", SERVICE),
        )
        .by(
            "deny dst 2001:db8:9::9",
            udp("3fff::1", CLIENT, "2001:db8:9::9", SERVICE),
        )
        .by(
            "allow dst 2001:db8:9::/48",
            udp("3fff::1", CLIENT, "2001:db8:9::10", SERVICE),
        );
        let hosts_alone = Table::new(&[
            fill[0],
            fill[1],
            "deny src 10.1.2.3",
            "allow src 10.1.2.4",
            "deny src 2001:db8::3,2001:db8::5",
            "deny dst 192.0.2.99",
            "allow dst 2001:db8:9::9",
        ])
        .by("deny src 10.1.2.3", udp("10.1.2.3", CLIENT, N4, SERVICE))
        .by("allow src 10.1.2.4", udp("10.1.2.4", CLIENT, N4, SERVICE))
        .default(udp("10.1.2.5", CLIENT, N4, SERVICE))
        .by(
            "deny src 2001:db8::3,2001:db8::5",
            udp("2001:db8::5", CLIENT, N6, SERVICE),
        )
        .default(udp("2001:db8::4", CLIENT, N6, SERVICE))
        .by(
            "deny dst 192.0.2.99",
            udp("10.1.2.5", CLIENT, "192.0.2.99", SERVICE),
        )
        .by(
            "deny src 10.1.2.3",
            udp("10.1.2.3", CLIENT, "192.0.2.99", SERVICE),
        )
        .by(
            "allow dst 2001:db8:9::9",
            udp("3fff::1", CLIENT, "2001:db8:9::9", SERVICE),
        );
        vec![with_networks, hosts_alone]
    }

    /// A network that holds many others, paired with a port or a second
    /// address, is keyed by its wide class (`abi::NARROW_CLASS_BITS`): it
    /// still decides the hosts inside it by rule order, before and after
    /// rules of those hosts, in both families and directions, and in one
    /// rule beside a host (one part of it narrow, one wide).
    pub fn wide_networks_paired_with_other_fields() -> Vec<Table> {
        let hosts = |v4: &str, v6: &str| -> String {
            (1..=16)
                .map(|i| format!("{v4}.{i}"))
                .chain((1..=16).map(|i| format!("{v6}{i:x}")))
                .collect::<Vec<_>>()
                .join(",")
        };
        let rules: [&'static str; 8] = [
            leak(format!(
                "allow udp dport 1000 src {}",
                hosts("10.1.0", "2001:db8:1::")
            )),
            leak(format!(
                "allow udp dport 1000 dst {}",
                hosts("10.2.0", "2001:db8:2::")
            )),
            "deny udp dport 53 src 10.0.0.0/8,2001:db8::/32",
            "allow udp dport 53 src 10.1.0.1",
            "deny udp sport 53 dst 10.0.0.0/8,2001:db8::/32",
            "deny udp dport 54 src 192.0.2.9,10.0.0.0/8",
            "deny udp src 10.0.0.0/8 dst 10.0.0.0/8",
            "allow udp dport 1000",
        ];
        let table = Table::new(&rules)
            .by(rules[0], udp("10.1.0.1", CLIENT, N4, 1000))
            .by(rules[0], udp("2001:db8:1::1", CLIENT, N6, 1000))
            .by(rules[2], udp("10.1.0.1", CLIENT, N4, 53))
            .by(rules[2], udp("10.9.9.9", CLIENT, N4, 53))
            .by(rules[2], udp("2001:db8:1::2", CLIENT, N6, 53))
            .by(rules[2], udp("2001:db8:9::9", CLIENT, N6, 53))
            .default(udp("11.1.0.1", CLIENT, N4, 53))
            .by(rules[1], udp(N4, CLIENT, "10.2.0.1", 1000))
            .by(rules[4], udp(N4, 53, "10.2.0.1", SERVICE))
            .by(rules[4], udp(N6, 53, "2001:db8:2::3", SERVICE))
            .by(rules[4], udp(N4, 53, "10.9.9.9", SERVICE))
            .by(rules[5], udp("192.0.2.9", CLIENT, N4, 54))
            .by(rules[5], udp("10.1.0.4", CLIENT, N4, 54))
            .by(rules[6], udp("10.1.0.4", CLIENT, "10.2.0.4", SERVICE))
            .by(rules[6], udp("10.9.9.9", CLIENT, "10.9.9.8", SERVICE))
            .by(rules[1], udp("10.9.9.9", CLIENT, "10.2.0.4", 1000))
            .by(rules[7], udp("11.1.0.1", CLIENT, N4, 1000))
            .default(udp("10.9.9.9", CLIENT, N4, SERVICE))
            .default(udp("2001:db8:9::9", CLIENT, "2001:db8:2::3", SERVICE));
        vec![table]
    }

    // -- Port rules

    pub fn tcp_port_rules_single_ports_and_range_edges() -> Vec<Table> {
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
                // Two rules match: the first decides (was "the deny wins":
                // the allow of 8000-8080 now decides the second).
                .by("deny tcp dport 22", tcp(a, 53, b, 22))
                .by("allow tcp dport 8000-8080", tcp(a, 1000, b, 8000))
                // Each rule looks at its own direction and protocol only.
                .default(tcp(a, 22, b, SERVICE))
                .default(tcp(a, CLIENT, b, 53))
                .default(udp(a, CLIENT, b, 22))
                .default(udp(a, 1000, b, SERVICE))
                .default(udp(a, CLIENT, b, 8000));
        }
        vec![table]
    }

    pub fn udp_port_rules_single_ports_and_range_edges() -> Vec<Table> {
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
                // Two rules match: the first decides (order kept).
                .by("deny udp dport 53", udp(a, 123, b, 53))
                .by("allow udp dport 65000-65535", udp(a, 5, b, 65535))
                .default(udp(a, 53, b, SERVICE))
                .default(udp(a, CLIENT, b, 123))
                .default(tcp(a, CLIENT, b, 53))
                .default(tcp(a, 0, b, SERVICE))
                .default(tcp(a, CLIENT, b, 65535));
        }
        vec![table]
    }

    // -- ICMP rules

    /// One type excepted from a rule for all of ICMP: the exception is
    /// written first (was "an exact type beats any type").
    pub fn icmp_type_exceptions_written_first() -> Vec<Table> {
        let table = Table::new(&[
            "allow icmp type 8",
            "deny icmp",
            "deny icmpv6 type 128",
            "allow icmpv6",
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
        .default(tcp("2001:db8::1", CLIENT, N6, SERVICE));
        // Written after the rule for all of ICMP, the exception never decides.
        let after = Table::new(&["deny icmp", "allow icmp type 8"])
            .by("deny icmp", icmp("192.0.2.1", N4, 8));
        vec![table, after]
    }

    pub fn icmp_types_without_an_any_type_rule() -> Vec<Table> {
        let table = Table::new(&["deny icmp type 0", "allow icmpv6 type 135"])
            .by("deny icmp type 0", icmp("192.0.2.1", N4, 0))
            .default(icmp("192.0.2.1", N4, 8))
            .default(icmp("192.0.2.1", N4, 135))
            .by("allow icmpv6 type 135", icmp("2001:db8::1", N6, 135))
            .default(icmp("2001:db8::1", N6, 136))
            .default(icmp("2001:db8::1", N6, 0));
        vec![table]
    }

    // -- Rules on different fields together, the default, non-IP traffic

    /// Rules on different fields, in order: where two match, the first
    /// decides, deny or allow (was "a deny among the kinds wins"; the order
    /// is kept, and the comments name the later rule that also matches).
    /// The same frames again with the denies written first.
    pub fn first_match_across_fields() -> Vec<Table> {
        let interleaved = Table::new(&[
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
        // Also `allow tcp dport 80`.
        .by("deny src 192.0.2.1", tcp("192.0.2.1", CLIENT, N4, 80))
        .by("allow tcp dport 80", tcp(N4, CLIENT, "192.0.2.2", 80))
        .by("deny src 192.0.2.1", tcp("192.0.2.1", CLIENT, N4, 81))
        // Also `deny udp dport 53`.
        .by(
            "allow src 198.51.100.7",
            udp("198.51.100.7", CLIENT, N4, 53),
        )
        .by(
            "allow src 198.51.100.7",
            udp("198.51.100.7", CLIENT, N4, 54),
        )
        // Also `deny icmp type 8`.
        .by("allow dst 203.0.113.9", icmp(N4, "203.0.113.9", 8))
        .by("allow dst 203.0.113.9", icmp(N4, "203.0.113.9", 3))
        // Also `allow icmp type 0`.
        .by("deny dst 203.0.113.66", icmp(N4, "203.0.113.66", 0))
        .by("allow icmp type 0", icmp(N4, "203.0.113.67", 0))
        // Also `deny icmpv6 type 128`.
        .by("allow src 2001:db8::7", icmp("2001:db8::7", N6, 128))
        .by("allow src 2001:db8::7", icmp("2001:db8::7", N6, 129))
        .by("deny icmpv6 type 128", icmp("2001:db8::8", N6, 128))
        .default(udp(N4, CLIENT, "192.0.2.2", 80));
        let denies_first = Table::new(&[
            "deny src 192.0.2.1",
            "deny udp dport 53",
            "deny icmp type 8",
            "deny dst 203.0.113.66",
            "deny icmpv6 type 128",
            "allow tcp dport 80",
            "allow src 198.51.100.7",
            "allow dst 203.0.113.9",
            "allow icmp type 0",
            "allow src 2001:db8::7",
        ])
        .by("deny src 192.0.2.1", tcp("192.0.2.1", CLIENT, N4, 80))
        .by("allow tcp dport 80", tcp(N4, CLIENT, "192.0.2.2", 80))
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
        .default(udp(N4, CLIENT, "192.0.2.2", 80));
        vec![interleaved, denies_first]
    }

    /// With --default deny, IP traffic no rule allows is dropped, every kind
    /// of allow rule lets its traffic through, and non-IP traffic passes.
    pub fn default_deny_drops_unmatched_ip_and_allow_rules_beat_it() -> Vec<Table> {
        let table = Table::new(&[
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
        .non_ip(lldp());
        vec![table]
    }

    pub fn non_ip_traffic_passes_under_default_deny_and_deny_rules() -> Vec<Table> {
        let table = Table::new(&["deny src 0.0.0.0/0", "deny dst ::/0", "deny"])
            .non_ip(arp("192.0.2.1", "192.0.2.2"))
            .non_ip(arp("0.0.0.0", "10.0.0.1"))
            .non_ip(lldp())
            .by("deny src 0.0.0.0/0", udp("192.0.2.1", CLIENT, N4, SERVICE))
            .by("deny dst ::/0", icmp("2001:db8::1", N6, 135));
        vec![table]
    }

    /// A non-first fragment has no transport header: rules asking for
    /// ports, ICMP type or code, or TCP flags never match it (even where its
    /// first bytes look like such a header, and deny or allow alike); rules
    /// on its protocol and addresses do. The first fragment is judged whole.
    pub fn non_first_fragments_have_no_transport_fields() -> Vec<Table> {
        let ports = Table::new(&[
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
        .default(fixture("ipv6-ext-fragment-later-udp"))
        .by(
            "deny src 192.0.2.66",
            fragment("192.0.2.66", 40001, N4, SERVICE, 185, false),
        );
        let protocols = Table::new(&[
            "deny tcp dport 22",
            "deny tcp flags S/SA",
            "deny icmp type 8",
            "deny icmp code 0",
            "allow udp dport 53",
            "deny proto tcp",
            "deny udp",
        ])
        .by(
            "deny proto tcp",
            later_fragment(6, "TCP", "192.0.2.1", CLIENT, N4, 22),
        )
        .by(
            "deny udp",
            fragment("192.0.2.1", CLIENT, N4, 53, 185, false),
        )
        .by("deny udp", fixture("ipv6-ext-fragment-later-udp"))
        .default(later_fragment(1, "ICMP", "192.0.2.1", 0x0800, N4, 0))
        // The first fragment of each, with its header.
        .by("deny tcp dport 22", tcp("192.0.2.1", CLIENT, N4, 22))
        .by("allow udp dport 53", fixture("ipv6-ext-fragment-first-udp"))
        .by("deny icmp type 8", icmp("192.0.2.1", N4, 8));
        vec![ports, protocols]
    }

    /// A datagram whose IP header is whole but whose transport header is cut
    /// short by its own length field (padding behind it is not header): its
    /// ports, flags and ICMP type are unknown. A deny rule asking for them
    /// matches it, an allow rule does not (fail closed): it never gets past
    /// a deny by reaching a later allow. Rules on other fields decide as
    /// usual.
    pub fn truncated_transport_header_fails_closed() -> Vec<Table> {
        let fields = Table::new(&[
            "deny src 192.0.2.1",
            "deny udp dport 53",
            "allow dst 172.16.0.9",
        ])
        .by("deny src 192.0.2.1", cut_udp("192.0.2.1", N4, 53))
        .by("deny udp dport 53", cut_udp("192.0.2.3", N4, 53))
        .by("deny udp dport 53", cut_udp("192.0.2.3", N4, 54))
        .by("deny udp dport 53", cut_udp("192.0.2.3", "172.16.0.9", 53))
        // A UDP rule says nothing about TCP, cut or not.
        .default(cut_tcp("192.0.2.3", N4, 22))
        .by(
            "allow dst 172.16.0.9",
            cut_tcp("192.0.2.3", "172.16.0.9", 22),
        );
        let deny_then_allow = Table::new(&["deny tcp dport 22", "allow tcp"])
            .by("deny tcp dport 22", cut_tcp("192.0.2.3", N4, 22))
            .by("deny tcp dport 22", cut_tcp("192.0.2.3", N4, 80))
            .by(
                "deny tcp dport 22",
                fixture("ipv6-tcp-fin-psh-ack-ends-64-in-tcp"),
            )
            .by("deny tcp dport 22", tcp("192.0.2.3", CLIENT, N4, 22))
            .by("allow tcp", tcp("192.0.2.3", CLIENT, N4, 80));
        let allow_port = Table::new(&["allow tcp dport 22"])
            .default(cut_tcp("192.0.2.3", N4, 22))
            .by("allow tcp dport 22", tcp("192.0.2.3", CLIENT, N4, 22));
        let allow_flags = Table::new(&["allow tcp flags S/SA", "deny tcp flags S/SA"])
            .by("deny tcp flags S/SA", cut_tcp("192.0.2.3", N4, 22))
            .by("allow tcp flags S/SA", tcp("192.0.2.3", CLIENT, N4, 22));
        // `allow tcp` asks nothing of the header: the protocol is known.
        let allow_protocol = Table::new(&["allow tcp", "deny"])
            .by("allow tcp", cut_tcp("192.0.2.3", N4, 22))
            .by("deny", cut_udp("192.0.2.3", N4, 53));
        let icmp_types = Table::new(&["allow icmp type 8", "deny icmp type 3", "allow icmp"])
            .by(
                "deny icmp type 3",
                fixture("ipv4-icmp-echo-request-ends-38-in-icmp"),
            )
            .by("allow icmp type 8", icmp("192.0.2.1", N4, 8))
            .by("allow icmp", icmp("192.0.2.1", N4, 0));
        let icmp_allowed = Table::new(&["allow icmpv6 type 128"])
            .default(fixture("ipv6-icmpv6-echo-request-ends-58-in-icmpv6"))
            .by("allow icmpv6 type 128", icmp("2001:db8::1", N6, 128));
        vec![
            fields,
            deny_then_allow,
            allow_port,
            allow_flags,
            allow_protocol,
            icmp_types,
            icmp_allowed,
        ]
    }

    /// A TCP fragment at offset 1 (8 bytes) overlaps the first fragment's
    /// TCP header, the overlapping-fragment attack of RFC 1858: malformed,
    /// so dropped while any rule is in force, before any rule is looked at.
    pub fn tcp_fragment_at_offset_one_fails_closed() -> Vec<Table> {
        // The protocol byte of the IPv4 header: make the fragment TCP.
        let tcp_at_one = || {
            patched(
                fragment("192.0.2.1", CLIENT, N4, 22, 1, true),
                14 + 9,
                6,
                "protocol TCP",
            )
        };
        vec![
            Table::new(&["deny tcp dport 22"])
                .unjudgeable(tcp_at_one())
                .default(fragment("192.0.2.1", CLIENT, N4, 22, 1, true)),
            Table::new(&["deny udp dport 53"]).unjudgeable(tcp_at_one()),
            Table::new(&["allow tcp", "allow"]).unjudgeable(tcp_at_one()),
        ]
    }

    /// Where the walk stops inside the IPv6 extension chain (past the limit,
    /// or cut inside AH) the protocol is unknown, and so is every transport
    /// field: deny rules asking for the protocol or a transport field match,
    /// allow rules do not; address rules decide as usual.
    pub fn stop_in_the_extension_chain_is_an_unknown_protocol() -> Vec<Table> {
        let over_limit = || fixture("ipv6-ext-chain-over-limit-udp");
        let in_ah = || fixture("ipv6-ah-tcp-syn-ends-70-in-ah");
        vec![
            Table::new(&["deny tcp dport 22"])
                .by("deny tcp dport 22", over_limit())
                .by("deny tcp dport 22", in_ah()),
            Table::new(&["allow udp", "allow udp dport 53", "deny proto esp", "allow"])
                .by("deny proto esp", over_limit())
                .by("deny proto esp", in_ah())
                .by("allow udp", fixture("ipv6-ext-chain-at-limit-udp")),
            Table::new(&[
                "allow udp dport 53",
                "allow icmpv6 type 128",
                "allow tcp flags S",
            ])
            .default(over_limit())
            .default(in_ah()),
            Table::new(&["allow src 2001:db8::1", "deny"])
                .by("allow src 2001:db8::1", over_limit())
                .by("allow src 2001:db8::1", in_ah()),
            Table::new(&["deny src 192.0.2.1"]).default(over_limit()),
        ]
    }

    /// Headers the stack walks must not hide a packet from the rules:
    /// priority tags (VLAN id 0) and VLAN stacks, AH in both families. A VLAN
    /// stack deeper than the walk goes is dropped while any rule is in force.
    pub fn headers_the_stack_walks_do_not_hide_packets() -> Vec<Table> {
        vec![
            Table::new(&["deny src 192.0.2.1"])
                .by("deny src 192.0.2.1", fixture("vlan-four-priority-tags"))
                .by("deny src 192.0.2.1", fixture("vlan-three-tags"))
                .by("deny src 192.0.2.1", fixture("vlan-tags-at-limit"))
                .unjudgeable(fixture("vlan-tags-over-limit"))
                .by("deny src 192.0.2.1", fixture("ipv4-ah-tcp-syn")),
            Table::new(&["deny udp dport 53", "deny tcp dport 22"])
                .by("deny udp dport 53", fixture("vlan-four-priority-tags"))
                .by("deny tcp dport 22", fixture("ipv4-ah-tcp-syn"))
                .by("deny tcp dport 22", fixture("ipv6-ah-tcp-syn"))
                .unjudgeable(fixture("ipv6-ah-too-short"))
                // Cut inside AH: the protocol is unknown, and the first deny
                // that asks for one matches (see the extension chain table).
                .by(
                    "deny udp dport 53",
                    fixture("ipv6-ah-tcp-syn-ends-70-in-ah"),
                ),
            // With no rule in force, IP the walk cannot judge follows the default.
            Table::new(&[]).unjudgeable(fixture("vlan-tags-over-limit")),
        ]
    }

    /// Frames whose EtherType says IPv4 or IPv6 but whose IP header ends
    /// early, makes no sense, or claims more bytes than the frame has are IP
    /// the program cannot judge: dropped while any rule is in force, whatever
    /// it asks (even an `allow` with no field); with no rules at all they
    /// follow the default.
    pub fn ip_packets_the_walk_cannot_judge_fail_closed() -> Vec<Table> {
        let v4 = udp("192.0.2.1", CLIENT, N4, 53);
        let v6 = udp("2001:db8::1", CLIENT, N6, 53);
        let unjudgeable = || {
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
        [
            &["deny udp dport 53"][..],
            &["allow src 198.51.100.0/24"],
            &["allow"],
            &[],
        ]
        .into_iter()
        .map(|rules| {
            unjudgeable()
                .into_iter()
                .fold(Table::new(rules), Table::unjudgeable)
        })
        .collect()
    }

    // -- Protocol rules

    pub fn protocol_rules_match_by_ip_protocol() -> Vec<Table> {
        let table = Table::new(&[
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
        .non_ip(arp("192.0.2.1", N4));
        vec![table]
    }

    /// Protocol rules among rules on other fields: the first that matches
    /// decides (was "a deny among the kinds wins, else the first allow";
    /// the order is kept, so `allow tcp dport 22` never decides and the
    /// address allow decides port 53).
    pub fn protocol_rules_in_order_with_other_fields() -> Vec<Table> {
        let table = Table::new(&[
            "deny proto tcp",
            "allow tcp dport 22",
            "allow src 192.0.2.9",
            "allow proto udp",
            "deny udp dport 53",
            "deny proto icmp",
        ])
        .by("deny proto tcp", tcp("192.0.2.9", CLIENT, N4, 22))
        .by("deny proto tcp", tcp("192.0.2.1", CLIENT, N4, 80))
        // Also `deny udp dport 53`, later.
        .by("allow src 192.0.2.9", udp("192.0.2.9", CLIENT, N4, 53))
        .by("allow proto udp", udp("192.0.2.1", CLIENT, N4, 53))
        .by("allow proto udp", udp("192.0.2.1", CLIENT, N4, SERVICE))
        .by("allow src 192.0.2.9", udp("192.0.2.9", CLIENT, N4, SERVICE))
        .by("deny proto icmp", icmp("192.0.2.1", N4, 8))
        // ICMPv6 is protocol 58, not ICMP's 1.
        .default(icmp("2001:db8::1", N6, 128));
        vec![table]
    }

    /// The walk looks through AH in both families: a protocol rule sees what
    /// is behind it, never AH itself.
    pub fn protocol_rules_see_the_protocol_behind_ah() -> Vec<Table> {
        let table = Table::new(&["deny proto esp", "allow proto gre"])
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
            .default(behind_ah("192.0.2.1", N4, 132, "SCTP", SCTP_PAYLOAD));
        vec![table]
    }

    // -- Fields combined, lists, ranges, flags, codes: the new language

    /// The policy the old language could not write: SSH only from the admin
    /// network. Both fields of the first rule must match; the second rule
    /// takes the rest of port 22; everything else is the default's.
    pub fn combined_fields_ssh_from_the_admin_network() -> Vec<Table> {
        const ADMIN_SSH: &str = "allow tcp dport 22 src 10.0.0.0/24";
        const SSH: &str = "deny tcp dport 22";
        let table = Table::new(&[ADMIN_SSH, SSH])
            .by(ADMIN_SSH, tcp("10.0.0.5", CLIENT, N4, 22))
            .by(ADMIN_SSH, tcp("10.0.0.0", CLIENT, N4, 22))
            .by(ADMIN_SSH, tcp("10.0.0.255", CLIENT, N4, 22))
            .by(SSH, tcp("10.0.1.0", CLIENT, N4, 22))
            .by(SSH, tcp("9.255.255.255", CLIENT, N4, 22))
            .by(SSH, tcp("2001:db8::5", CLIENT, N6, 22))
            // The admin network as the destination is not the source.
            .by(SSH, tcp(N4, CLIENT, "10.0.0.5", 22))
            // The admin network's other ports and protocols: the default.
            .default(tcp("10.0.0.5", CLIENT, N4, 23))
            .default(tcp("10.0.0.5", 22, N4, SERVICE))
            .default(udp("10.0.0.5", CLIENT, N4, 22))
            .default(udp("10.0.1.5", CLIENT, N4, 22))
            .default(icmp("10.0.0.5", N4, 8))
            // A cut TCP header from the admin network: its port is unknown,
            // so the allow does not admit it and the deny drops it.
            .by(SSH, cut_tcp("10.0.0.5", N4, 22));
        vec![table]
    }

    /// Every field a rule may combine: all must match.
    pub fn combined_fields_addresses_and_ports_together() -> Vec<Table> {
        const DNS: &str = "allow udp sport 1024-65535 dport 53 \
                           src 192.0.2.0/24,2001:db8::/32 dst 198.51.100.53,2001:db8:53::53";
        const OTHER_DNS: &str = "deny udp dport 53";
        let table = Table::new(&[DNS, OTHER_DNS])
            .by(DNS, udp("192.0.2.7", CLIENT, "198.51.100.53", 53))
            .by(DNS, udp("192.0.2.7", 1024, "198.51.100.53", 53))
            .by(DNS, udp("192.0.2.7", 65535, "198.51.100.53", 53))
            .by(OTHER_DNS, udp("192.0.2.7", 1023, "198.51.100.53", 53))
            .by(OTHER_DNS, udp("192.0.2.7", CLIENT, "198.51.100.54", 53))
            .by(OTHER_DNS, udp("192.0.3.7", CLIENT, "198.51.100.53", 53))
            .by(DNS, udp("2001:db8::7", CLIENT, "2001:db8:53::53", 53))
            .by(OTHER_DNS, udp("2001:db8::7", CLIENT, "2001:db8:53::54", 53))
            .by(OTHER_DNS, udp("2001:db9::7", CLIENT, "2001:db8:53::53", 53))
            .default(udp("192.0.2.7", CLIENT, "198.51.100.53", 54))
            .default(tcp("192.0.2.7", CLIENT, "198.51.100.53", 53))
            .default(tcp("2001:db8::7", CLIENT, "2001:db8:53::53", 53));
        vec![table]
    }

    /// Port lists and ranges, at and either side of each boundary, in both
    /// families, for TCP and UDP; `proto tcp,udp` takes both.
    pub fn port_lists_and_ranges_with_their_boundaries() -> Vec<Table> {
        const WEB: &str = "allow tcp dport 80,443,8000-8080";
        const NTP_DNS: &str = "allow udp sport 53,123 dport 1024-65534";
        const LOW_HIGH: &str = "deny proto tcp,udp dport 0-1023,65535";
        let mut table = Table::new(&[WEB, NTP_DNS, LOW_HIGH]);
        for (a, b) in FAMILIES {
            let to = |dport| tcp(a, CLIENT, b, dport);
            let to_udp = |dport| udp(a, CLIENT, b, dport);
            table = table
                .by(WEB, to(80))
                .by(WEB, to(443))
                .by(WEB, to(8000))
                .by(WEB, to(8080))
                .by(LOW_HIGH, to(79))
                .by(LOW_HIGH, to(81))
                .by(LOW_HIGH, to(442))
                .by(LOW_HIGH, to(0))
                .by(LOW_HIGH, to(1023))
                .default(to(1024))
                .default(to(7999))
                .default(to(8081))
                .default(to(65534))
                .by(LOW_HIGH, to(65535))
                .by(LOW_HIGH, to_udp(80))
                .by(LOW_HIGH, to_udp(0))
                .by(LOW_HIGH, to_udp(65535))
                .default(to_udp(8000))
                .by(NTP_DNS, udp(a, 53, b, 1024))
                .by(NTP_DNS, udp(a, 123, b, 65534))
                .by(LOW_HIGH, udp(a, 123, b, 1023))
                .by(LOW_HIGH, udp(a, 123, b, 65535))
                .default(udp(a, 124, b, 40000))
                .default(udp(a, 52, b, 40000))
                .default(tcp(a, 123, b, 40000));
        }
        vec![table]
    }

    /// One list may hold IPv4 and IPv6 networks and hosts; a network of the
    /// other family never contains an address.
    pub fn address_lists_mix_ipv4_and_ipv6() -> Vec<Table> {
        const PAIR: &str = "deny src 192.0.2.0/24,2001:db8::/32,198.51.100.7 \
                            dst 203.0.113.0/24,2001:db8:ffff::/48";
        const LOWER: &str = "allow src 192.0.2.0/25,2001:db8::/33";
        const DSTS: &str = "deny dst 203.0.113.0/24,fd00::/8";
        let table = Table::new(&[PAIR, LOWER, DSTS])
            .by(PAIR, udp("192.0.2.1", CLIENT, "203.0.113.1", SERVICE))
            .by(PAIR, udp("192.0.2.255", CLIENT, "203.0.113.255", SERVICE))
            .by(PAIR, udp("198.51.100.7", CLIENT, "203.0.113.1", SERVICE))
            .by(PAIR, tcp("192.0.2.200", CLIENT, "203.0.113.1", 22))
            .by(PAIR, icmp("192.0.2.1", "203.0.113.1", 8))
            .by(DSTS, udp("198.51.100.8", CLIENT, "203.0.113.1", SERVICE))
            .by(LOWER, udp("192.0.2.127", CLIENT, N4, SERVICE))
            .default(udp("192.0.2.128", CLIENT, N4, SERVICE))
            .by(
                PAIR,
                udp("2001:db8::1", CLIENT, "2001:db8:ffff::1", SERVICE),
            )
            .by(
                PAIR,
                udp("2001:db8:8000::1", CLIENT, "2001:db8:ffff:ffff::1", SERVICE),
            )
            .by(LOWER, udp("2001:db8::1", CLIENT, N6, SERVICE))
            .by(
                LOWER,
                udp(
                    "2001:db8:7fff:ffff:ffff:ffff:ffff:ffff",
                    CLIENT,
                    N6,
                    SERVICE,
                ),
            )
            .by(DSTS, udp("2001:db8:8000::1", CLIENT, N6, SERVICE))
            .default(udp("2001:db8:8000::1", CLIENT, "2001:db8:fffe::1", SERVICE))
            .default(udp("fe80::1", CLIENT, "2001:db8:ffff::1", SERVICE))
            // The IPv4-mapped form of an admitted address is IPv6.
            .default(udp("::ffff:192.0.2.1", CLIENT, "2001:db8:fffe::1", SERVICE));
        vec![table]
    }

    /// ICMP type lists and ranges, codes, and both together; ICMP in IPv6
    /// (protocol 1 there) has no ICMP type for the rules.
    pub fn icmp_type_and_code_lists() -> Vec<Table> {
        const PORT_UNREACHABLE: &str = "deny icmp type 3 code 3";
        const BASIC: &str = "allow icmp type 0,3,8,11";
        const V6_BASIC: &str = "allow icmpv6 type 1-4,128,129,133-136";
        const CODES: &str = "deny icmp code 1-2";
        const REST_V6: &str = "deny icmpv6";
        let (a, b) = ("192.0.2.1", N4);
        let (a6, b6) = ("2001:db8::1", N6);
        let table = Table::new(&[PORT_UNREACHABLE, BASIC, V6_BASIC, CODES, REST_V6])
            .by(PORT_UNREACHABLE, icmp_code(a, b, 3, 3))
            .by(BASIC, icmp_code(a, b, 3, 4))
            .by(BASIC, icmp_code(a, b, 3, 1))
            .by(BASIC, icmp_code(a, b, 0, 0))
            .by(BASIC, icmp_code(a, b, 8, 0))
            .by(BASIC, icmp_code(a, b, 11, 1))
            .by(CODES, icmp_code(a, b, 5, 1))
            .by(CODES, icmp_code(a, b, 12, 2))
            .default(icmp_code(a, b, 5, 0))
            .default(icmp_code(a, b, 5, 3))
            .default(icmp_code(a, b, 128, 0))
            .by(V6_BASIC, icmp_code(a6, b6, 1, 4))
            .by(V6_BASIC, icmp_code(a6, b6, 4, 0))
            .by(V6_BASIC, icmp_code(a6, b6, 128, 0))
            .by(V6_BASIC, icmp_code(a6, b6, 129, 0))
            .by(V6_BASIC, icmp_code(a6, b6, 133, 0))
            .by(V6_BASIC, icmp_code(a6, b6, 136, 0))
            .by(REST_V6, icmp_code(a6, b6, 0, 0))
            .by(REST_V6, icmp_code(a6, b6, 5, 0))
            .by(REST_V6, icmp_code(a6, b6, 127, 0))
            .by(REST_V6, icmp_code(a6, b6, 130, 0))
            .by(REST_V6, icmp_code(a6, b6, 132, 0))
            .by(REST_V6, icmp_code(a6, b6, 137, 1))
            // Protocol 1 in IPv6 and 58 in IPv4 carry no ICMP type or code
            // for the rules; `deny icmpv6` asks for the protocol alone.
            .default(raw_ip(
                a6,
                b6,
                1,
                "protocol 1 (ICMP) in IPv6",
                &[5, 1, 0, 0, 0, 0, 0, 0],
            ))
            .by(
                REST_V6,
                raw_ip(
                    a,
                    b,
                    58,
                    "protocol 58 (ICMPv6) in IPv4",
                    &[1, 0, 0, 0, 0, 0, 0, 0],
                ),
            );
        vec![table]
    }

    /// `flags VALUE/MASK`: of the flags in the mask, exactly those in the
    /// value are set; without a mask, all eight flags are looked at.
    pub fn tcp_flags_with_and_without_a_mask() -> Vec<Table> {
        const NEW_LOW: &str = "deny tcp flags S/SA dport 1-1023";
        const PLAIN_SYN_HIGH: &str = "allow tcp flags S dport 1024-65535";
        const RESET: &str = "deny tcp flags R";
        const REST: &str = "allow tcp";
        let mut table = Table::new(&[NEW_LOW, PLAIN_SYN_HIGH, RESET, REST]);
        for (a, b) in FAMILIES {
            let to = |dport, flags| tcp_flags(a, CLIENT, b, dport, flags);
            table = table
                .by(NEW_LOW, to(22, SYN))
                .by(NEW_LOW, to(1, SYN))
                .by(NEW_LOW, to(1023, SYN))
                .by(NEW_LOW, to(22, SYN | ECE | CWR))
                .by(NEW_LOW, to(22, SYN | FIN))
                .by(REST, to(22, SYN | ACK))
                .by(REST, to(22, ACK))
                .by(REST, to(0, SYN))
                .by(PLAIN_SYN_HIGH, to(1024, SYN))
                .by(PLAIN_SYN_HIGH, to(65535, SYN))
                .by(REST, to(1024, SYN | ECE))
                .by(RESET, to(80, RST))
                .by(REST, to(80, RST | ACK))
                .by(REST, to(80, 0))
                .by(REST, to(80, 0xff))
                .default(udp(a, CLIENT, b, 22));
        }
        // A cut TCP header: its flags are unknown, so the deny matches.
        table = table.by(NEW_LOW, cut_tcp("192.0.2.1", N4, 22));
        vec![table]
    }

    /// `proto LIST`: names and numbers, alone and with an address.
    pub fn protocol_lists() -> Vec<Table> {
        const TUNNELS_FROM_PEER: &str = "allow proto esp,47 src 192.0.2.1,2001:db8::1";
        const TUNNELS: &str = "deny proto esp,gre,132";
        const TRANSPORTS: &str = "allow proto tcp,udp";
        let table = Table::new(&[TUNNELS_FROM_PEER, TUNNELS, TRANSPORTS])
            .by(
                TUNNELS_FROM_PEER,
                raw_ip("192.0.2.1", N4, 50, "ESP", ESP_PAYLOAD),
            )
            .by(
                TUNNELS_FROM_PEER,
                raw_ip("192.0.2.1", N4, 47, "GRE", GRE_PAYLOAD),
            )
            .by(
                TUNNELS_FROM_PEER,
                raw_ip("2001:db8::1", N6, 47, "GRE", GRE_PAYLOAD),
            )
            .by(
                TUNNELS_FROM_PEER,
                behind_ah("192.0.2.1", N4, 50, "ESP", ESP_PAYLOAD),
            )
            .by(TUNNELS, raw_ip("192.0.2.1", N4, 132, "SCTP", SCTP_PAYLOAD))
            .by(TUNNELS, raw_ip("192.0.2.2", N4, 50, "ESP", ESP_PAYLOAD))
            .by(TUNNELS, raw_ip("2001:db8::2", N6, 50, "ESP", ESP_PAYLOAD))
            .by(TUNNELS, raw_ip("2001:db8::2", N6, 47, "GRE", GRE_PAYLOAD))
            .by(TRANSPORTS, udp("192.0.2.1", CLIENT, N4, SERVICE))
            .by(TRANSPORTS, tcp("2001:db8::2", CLIENT, N6, 22))
            .default(icmp("192.0.2.1", N4, 8))
            .default(raw_ip("192.0.2.1", N4, 253, "protocol 253", &[0; 8]));
        vec![table]
    }

    /// A rule with no field matches every IP packet the walk can judge:
    /// `deny` last makes the default unreachable; non-IP still passes, and
    /// IP the walk cannot judge is dropped before any rule.
    pub fn rules_with_no_field_match_every_ip_packet() -> Vec<Table> {
        let deny_rest = Table::new(&["allow src 192.0.2.1", "allow icmp type 8", "deny"])
            .by("allow src 192.0.2.1", udp("192.0.2.1", CLIENT, N4, SERVICE))
            .by("allow icmp type 8", icmp("192.0.2.2", N4, 8))
            .by("deny", icmp("192.0.2.2", N4, 0))
            .by("deny", udp("192.0.2.2", CLIENT, N4, SERVICE))
            .by("deny", tcp("2001:db8::2", CLIENT, N6, 22))
            .by("deny", raw_ip("192.0.2.2", N4, 50, "ESP", ESP_PAYLOAD))
            .by("deny", cut_tcp("192.0.2.2", N4, 22))
            .by("deny", fixture("ipv6-ext-chain-over-limit-udp"))
            .by("deny", fragment("192.0.2.2", CLIENT, N4, 53, 185, false))
            .non_ip(arp("192.0.2.2", "192.0.2.1"))
            .unjudgeable(fixture("vlan-tags-over-limit"));
        let allow_rest = Table::new(&["deny src 192.0.2.1", "allow"])
            .by("deny src 192.0.2.1", udp("192.0.2.1", CLIENT, N4, SERVICE))
            .by("allow", udp("192.0.2.2", CLIENT, N4, SERVICE))
            .by("allow", icmp("2001:db8::2", N6, 128))
            .by("allow", cut_tcp("192.0.2.2", N4, 22));
        // Rules after a rule with no field never decide.
        let shadowed = Table::new(&["deny", "allow tcp dport 22"])
            .by("deny", tcp("192.0.2.2", CLIENT, N4, 22));
        vec![deny_rest, allow_rest, shadowed]
    }

    /// `on IFACE`: BPF_PROG_TEST_RUN runs a frame as arriving on the
    /// loopback device, so rules `on lo` see it.
    pub fn rules_on_an_interface() -> Vec<Table> {
        const ADMIN_SSH: &str = "allow tcp dport 22 src 10.0.0.0/24 on lo";
        const SSH: &str = "deny tcp dport 22";
        const LOOPBACK: &str = "deny on lo";
        let table = Table::new(&[ADMIN_SSH, SSH, LOOPBACK])
            .by(ADMIN_SSH, tcp("10.0.0.5", CLIENT, N4, 22))
            .by(SSH, tcp("10.0.1.5", CLIENT, N4, 22))
            .by(LOOPBACK, udp("10.0.0.5", CLIENT, N4, 53))
            .by(LOOPBACK, icmp("2001:db8::1", N6, 128))
            .non_ip(arp("10.0.0.5", "10.0.0.1"));
        vec![table]
    }
}

/// The selftest's frame `name` (from 192.0.2.1 or 2001:db8::1 to
/// 192.0.2.2 or 2001:db8::2; UDP from port 40000 to 53, TCP to 22 or 443).
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

/// `packet` with byte `at` replaced by `byte`.
fn patched(packet: Packet, at: usize, byte: u8, what: &str) -> Packet {
    let mut frame = packet.frame;
    frame[at] = byte;
    Packet {
        label: format!("{} with {what}", packet.label),
        frame,
    }
}

// ---------------------------------------------------------------------------
// The spec: every table agrees with `policy::evaluate`

/// Every table's expectations (written out by hand, the readable spec) are
/// what `policy::evaluate` (the spec in code) says, for the packet as the
/// program saw it.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn every_table_agrees_with_the_spec() {
    common::require_root(NEEDS_ROOT);
    let mut failures = Vec::new();
    let mut compared = 0;
    for (name, tables) in TABLES {
        for table in tables() {
            let mut object = MaybeUninit::uninit();
            let mut lab = Lab::load(&mut object, config(XDP_PASS, NOTICES_ALL));
            lab.install(&table.rules);
            let rules: Vec<Rule> = table.rules.iter().map(|text| parse(text)).collect();
            for (packet, by) in &table.probes {
                let (_, want) = match by {
                    By::NonIp | By::Unjudgeable => continue,
                    by => table.decision(by, XDP_PASS),
                };
                let ran = lab.run(packet);
                let [notice] = ran.notices[..] else {
                    failures.push(format!("{name}: {}: no notice", packet.label));
                    continue;
                };
                let Some(seen) = evaluate::Packet::from_notice(&notice) else {
                    failures.push(format!("{name}: {}: not IP to the spec", packet.label));
                    continue;
                };
                let spec = evaluate::evaluate(&rules, &|name| iface::index_of(name).ok(), &seen);
                compared += 1;
                if spec != want {
                    let show = |index: Option<usize>| {
                        index.map_or("the default".to_string(), |i| {
                            format!("'{}'", table.rules[i])
                        })
                    };
                    failures.push(format!(
                        "{name}: {}: the table says {}, the spec {} ({seen:?})",
                        packet.label,
                        show(want),
                        show(spec)
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(compared > 300, "only {compared} frames compared");
}

// ---------------------------------------------------------------------------
// Notice modes, `log`, dry runs

/// Runs each of `probes` (packet, verdict, rule) in a program loaded with
/// `notice_mode`, checking the verdict, whether a notice came out, the hits
/// and the counters.
fn check_notice_mode(notice_mode: u32, default: u8) {
    common::require_root(NEEDS_ROOT);
    let mut object = MaybeUninit::uninit();
    let mut lab = Lab::load(&mut object, config(default, notice_mode));
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
            notice,
            ..Want::enforced(*verdict, *rule_id)
        };
        if let Err(why) = check_run(&lab.run(packet), packet, want) {
            failures.push(format!("{}: {why}", packet.label));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Counted alike whatever the mode.
    assert_eq!(
        lab.hits_of("deny src 192.0.2.1"),
        hits(2, &probes[0].0),
        "{:?}",
        lab.hits()
    );
    assert_eq!(
        lab.hits_of("allow tcp dport 80"),
        hits(1, &probes[2].0),
        "{:?}",
        lab.hits()
    );
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

/// `log`: a notice for every packet the rule decides, whatever `--notices`
/// says (under `none`, those are the only notices); the packets other rules
/// or the default decide follow the mode.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn log_rules_get_a_notice_whatever_the_notice_mode() {
    common::require_root(NEEDS_ROOT);
    const LOGGED_ALLOW: &str = "allow tcp dport 80 log";
    const DENY: &str = "deny src 192.0.2.1";
    const LOGGED_DENY: &str = "deny udp dport 53 log";
    for notice_mode in [NOTICES_NONE, NOTICES_DENIED, NOTICES_ALL] {
        for default in [XDP_PASS, XDP_DROP] {
            for dry_run in [false, true] {
                let mut config = config(default, notice_mode);
                if dry_run {
                    config = dry(config);
                }
                let mut object = MaybeUninit::uninit();
                let mut lab = Lab::load(&mut object, config);
                lab.install(&[LOGGED_ALLOW, DENY, LOGGED_DENY]);
                let by_mode = |verdict: u8| match notice_mode {
                    NOTICES_ALL => true,
                    NOTICES_DENIED => verdict == XDP_DROP,
                    _ => false,
                };
                let probes = [
                    (tcp("192.0.2.1", CLIENT, N4, 80), Some(LOGGED_ALLOW)),
                    (udp("192.0.2.1", CLIENT, N4, 53), Some(DENY)),
                    (udp("192.0.2.2", CLIENT, N4, 53), Some(LOGGED_DENY)),
                    (udp("192.0.2.2", CLIENT, N4, 54), None),
                ];
                let mut noticed = 0;
                for (packet, by) in &probes {
                    let (verdict, rule_id, logged) = match by {
                        Some(text) => (verdict_of(text), lab.id(text), parse(text).log),
                        None => (default, RULE_NONE, false),
                    };
                    let want = Want {
                        verdict,
                        returned: if dry_run { XDP_PASS } else { verdict },
                        rule_id,
                        notice: logged || by_mode(verdict),
                    };
                    noticed += u64::from(want.notice);
                    check_run(&lab.run(packet), packet, want).unwrap_or_else(|why| {
                        panic!(
                            "notice mode {notice_mode}, default {}, dry run {dry_run}: {}: {why}",
                            verdict_name(default),
                            packet.label
                        )
                    });
                }
                let counters = lab.counters();
                assert_eq!(counters.notices_sent, noticed, "{counters:?}");
            }
        }
    }
}

/// A dry run computes, counts and reports every verdict — the rules', the
/// default's, and the drop of IP the walk cannot judge — but every packet
/// passes: the return value is XDP_PASS, the notice and the counters say
/// what would have happened.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn dry_run_passes_everything_and_counts_what_it_would_drop() {
    common::require_root(NEEDS_ROOT);
    for notice_mode in [NOTICES_ALL, NOTICES_DENIED] {
        let mut object = MaybeUninit::uninit();
        let mut lab = Lab::load(&mut object, dry(config(XDP_DROP, notice_mode)));
        lab.install(&["allow tcp dport 22 src 10.0.0.0/24", "deny tcp dport 22"]);
        let admin = tcp("10.0.0.5", CLIENT, N4, 22);
        let other = tcp("10.0.1.5", CLIENT, N4, 22);
        let web = tcp("10.0.1.5", CLIENT, N4, 80);
        let broken = cut(udp("10.0.1.5", CLIENT, N4, 53), 14 + 10);
        let not_ip = arp("10.0.1.5", "10.0.0.1");
        let probes = [
            (
                &admin,
                XDP_PASS,
                lab.id("allow tcp dport 22 src 10.0.0.0/24"),
            ),
            (&other, XDP_DROP, lab.id("deny tcp dport 22")),
            (&other, XDP_DROP, lab.id("deny tcp dport 22")),
            (&web, XDP_DROP, RULE_NONE),
            (&broken, XDP_DROP, RULE_NONE),
            (&not_ip, XDP_PASS, RULE_NONE),
        ];
        for (packet, verdict, rule_id) in probes {
            let want = Want {
                verdict,
                returned: XDP_PASS,
                rule_id,
                notice: notice_mode == NOTICES_ALL || verdict == XDP_DROP,
            };
            check_run(&lab.run(packet), packet, want)
                .unwrap_or_else(|why| panic!("{}: {why}", packet.label));
        }
        let counters = lab.counters();
        assert_eq!(
            (counters.passed, counters.dropped, counters.aborted),
            (2, 4, 0),
            "{counters:?}"
        );
        assert_eq!(lab.hits_of("deny tcp dport 22"), hits(2, &other));
        assert_eq!(
            lab.hits_of("allow tcp dport 22 src 10.0.0.0/24"),
            hits(1, &admin)
        );
    }
}

// ---------------------------------------------------------------------------
// Reinstalling: ids and hits

/// Rules that stay keep their id and their count (packets and bytes),
/// wherever they move in the order; a rule that goes has its counter
/// zeroed, so a rule that later gets the same id starts from 0.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn rule_ids_stay_across_reinstalls_and_removed_counters_are_zeroed() {
    common::require_root(NEEDS_ROOT);
    let mut object = MaybeUninit::uninit();
    let mut lab = Lab::load(&mut object, config(XDP_PASS, NOTICES_ALL));
    let from_x = udp("192.0.2.1", CLIENT, N4, SERVICE);
    let ssh = tcp("192.0.2.2", CLIENT, N4, 22);
    let telnet = tcp("192.0.2.2", CLIENT, N4, 23);
    let ping = icmp("192.0.2.2", N4, 8);
    let dns = udp("192.0.2.2", CLIENT, N4, 53);
    let run = |lab: &Lab, packet: &Packet, times: usize, verdict: u8, rule: Option<&str>| {
        let rule_id = rule.map_or(RULE_NONE, |r| lab.id(r));
        for _ in 0..times {
            let want = Want::enforced(verdict, rule_id);
            check_run(&lab.run(packet), packet, want)
                .unwrap_or_else(|why| panic!("{}: {why}", packet.label));
        }
    };
    let all_hits = |lab: &Lab| lab.hits();
    let h = |rule: &str, n: u64, packet: &Packet| (parse(rule).to_string(), hits(n, packet));

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
    assert_eq!(lab.hits_of_slot(deny_ssh), hits(1, &ssh));

    // Reordered, one rule gone, one new.
    lab.install(&[
        "allow icmp type 8",
        "deny udp dport 53",
        "deny src 192.0.2.1",
    ]);
    assert_eq!(lab.id("deny src 192.0.2.1"), deny_x, "the id moved");
    assert_eq!(lab.id("allow icmp type 8"), allow_ping, "the id moved");
    assert_eq!(
        all_hits(&lab),
        [
            h("allow icmp type 8", 3, &ping),
            h("deny udp dport 53", 0, &dns),
            h("deny src 192.0.2.1", 2, &from_x),
        ]
    );
    // Zeroed once no packet can still count on it (after the grace period).
    assert_eq!(
        lab.hits_of_slot(deny_ssh),
        RuleHits::default(),
        "the counter of the removed 'deny tcp dport 22' (slot {deny_ssh})"
    );
    run(&lab, &ssh, 2, XDP_PASS, None);
    run(&lab, &from_x, 1, XDP_DROP, Some("deny src 192.0.2.1"));
    run(&lab, &dns, 1, XDP_DROP, Some("deny udp dport 53"));
    assert_eq!(
        all_hits(&lab),
        [
            h("allow icmp type 8", 3, &ping),
            h("deny udp dport 53", 1, &dns),
            h("deny src 192.0.2.1", 3, &from_x),
        ]
    );
    assert_eq!(
        lab.hits_of_slot(deny_ssh),
        RuleHits::default(),
        "counted for a rule not in force"
    );

    // A new rule (a new id, perhaps on a freed counter slot) starts from
    // zero; so does the removed rule coming back (with a new id too).
    lab.install(&[
        "allow icmp type 8",
        "deny udp dport 53",
        "deny src 192.0.2.1",
        "deny tcp dport 23",
    ]);
    assert_eq!(lab.id("deny src 192.0.2.1"), deny_x);
    assert_eq!(lab.id("allow icmp type 8"), allow_ping);
    assert_eq!(lab.hits_of("deny tcp dport 23"), RuleHits::default());
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
        all_hits(&lab),
        [
            h("deny tcp dport 22", 1, &ssh),
            h("allow icmp type 8", 3, &ping),
            h("deny udp dport 53", 1, &dns),
            h("deny src 192.0.2.1", 3, &from_x),
            h("deny tcp dport 23", 1, &telnet),
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

/// A rule keeps its id and its hits (packets and bytes) across reloads for
/// as long as its text stays in the set, whatever moves around it; a rule
/// whose text changes is a new rule. The same text twice is two rules (the
/// second never decides: the first matches first).
#[test]
#[ignore = "needs root: loading XDP programs"]
fn a_rule_keeps_its_id_and_hits_while_its_text_stays() {
    common::require_root(NEEDS_ROOT);
    const ADMIN_SSH: &str = "allow tcp dport 22 src 10.0.0.0/24";
    const SSH: &str = "deny tcp dport 22";
    const WEB: &str = "allow tcp dport 80,443";
    const WIDER_SSH: &str = "deny tcp dport 22,2222";
    let mut object = MaybeUninit::uninit();
    let mut lab = Lab::load(&mut object, config(XDP_DROP, NOTICES_ALL));
    // Frames of three lengths, so bytes are not packets times one length.
    let admin = tcp("10.0.0.5", CLIENT, N4, 22);
    let other = tcp("2001:db8::5", CLIENT, N6, 22);
    let web = ended(tcp("10.0.1.5", CLIENT, N4, 443), 14 + 20 + 20);
    assert!(admin.frame.len() != other.frame.len() && other.frame.len() != web.frame.len());
    let run = |lab: &Lab, packet: &Packet, rule: &str| {
        let want = Want::enforced(verdict_of(rule), lab.id(rule));
        check_run(&lab.run(packet), packet, want)
            .unwrap_or_else(|why| panic!("{}: {why}", packet.label));
    };

    lab.install(&[ADMIN_SSH, SSH, WEB]);
    let ids = (lab.id(ADMIN_SSH), lab.id(SSH), lab.id(WEB));
    for _ in 0..3 {
        run(&lab, &admin, ADMIN_SSH);
    }
    run(&lab, &other, SSH);
    run(&lab, &web, WEB);
    run(&lab, &web, WEB);

    // A rule in front, the web rule moved up: the texts stay.
    lab.install(&["deny src 192.0.2.0/24", WEB, ADMIN_SSH, SSH]);
    assert_eq!((lab.id(ADMIN_SSH), lab.id(SSH), lab.id(WEB)), ids);
    assert_eq!(
        lab.hits(),
        [
            (
                parse("deny src 192.0.2.0/24").to_string(),
                RuleHits::default()
            ),
            (parse(WEB).to_string(), hits(2, &web)),
            (parse(ADMIN_SSH).to_string(), hits(3, &admin)),
            (parse(SSH).to_string(), hits(1, &other)),
        ]
    );
    run(&lab, &other, SSH);
    assert_eq!(lab.hits_of(SSH), hits(2, &other));

    // The deny's text changes: a new rule, a new id, from zero. The same
    // text twice: two rules with two ids; the first decides.
    lab.install(&[ADMIN_SSH, WIDER_SSH, WEB, WEB]);
    assert_eq!(lab.id(ADMIN_SSH), ids.0);
    assert_eq!(lab.id(WEB), ids.2);
    assert!(![ids.0, ids.1, ids.2].contains(&lab.id(WIDER_SSH)));
    assert_eq!(lab.hits_of(WIDER_SSH), RuleHits::default());
    let in_force: Vec<u32> = lab.firewall.rules().iter().map(|a| a.id).collect();
    assert_eq!(in_force.len(), 4);
    assert_eq!(
        in_force.iter().collect::<BTreeSet<_>>().len(),
        4,
        "{in_force:?}"
    );
    run(&lab, &web, WEB);
    run(&lab, &other, WIDER_SSH);
    assert_eq!(
        lab.hits(),
        [
            (parse(ADMIN_SSH).to_string(), hits(3, &admin)),
            (parse(WIDER_SSH).to_string(), hits(1, &other)),
            (parse(WEB).to_string(), hits(3, &web)),
            (parse(WEB).to_string(), RuleHits::default()),
        ]
    );
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
                Some(text) => Want::enforced(verdict_of(text), lab.id(text)),
                None => Want::enforced(XDP_PASS, RULE_NONE),
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
    let mut lab = Lab::load(&mut object, config(XDP_PASS, NOTICES_ALL));
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
    let mut lab = Lab::load(&mut object, config(XDP_PASS, NOTICES_ALL));
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

    // `policy::load` refuses such a set as it reads it; a set put together
    // otherwise is refused by the firewall.
    let mut too_many = host_rules(200, full);
    too_many.push("deny icmp".into());
    let set = RuleSet::of(policy::parse_flags(&too_many).unwrap()).unwrap();
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
    let want = Want::enforced(XDP_DROP, lab.id("deny src 10.0.255.255"));
    check_run(&lab.run(&packet), &packet, want).unwrap();
}

/// Full sets of rules that combine fields — the SSH of one host each, a
/// host's DNS each — replace each other both ways.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn full_sets_of_combined_rules_replace_each_other() {
    common::require_root(NEEDS_ROOT);
    let full = MAX_RULES_PER_SET as u32;
    let hosts = |octet2: u32, rule: &str| -> Vec<String> {
        (0..full)
            .map(|i| {
                let n = (octet2 << 16) + i;
                format!("{rule} 10.{}.{}.{}", n >> 16, (n >> 8) & 255, n & 255)
            })
            .collect()
    };
    let a = hosts(0, "allow tcp dport 22 src");
    let b = hosts(100, "deny udp dport 53 dst");
    let mut object = MaybeUninit::uninit();
    let mut lab = Lab::load(&mut object, config(XDP_PASS, NOTICES_ALL));
    let probes = [
        (
            tcp("10.0.255.255", CLIENT, N4, 22),
            vec![Some("allow tcp dport 22 src 10.0.255.255"), None],
        ),
        (
            udp(N4, CLIENT, "10.100.0.0", 53),
            vec![None, Some("deny udp dport 53 dst 10.100.0.0")],
        ),
        // The right host, the wrong port: neither set's rule.
        (tcp("10.0.255.255", CLIENT, N4, 23), vec![None, None]),
        (udp(N4, CLIENT, "10.100.0.0", 54), vec![None, None]),
    ];
    let took = swap_between(&mut lab, &[&a, &b, &a, &b], &probes);
    eprintln!("{full}-rule sets of combined rules, install times: {took:?}");
}

/// Issue 7 item 15: an id names one rule for the whole run. A rule that
/// stays keeps its id; a new one — also a rule that comes back — gets an id
/// never used before.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn rule_ids_are_never_reused_within_a_run() {
    common::require_root(NEEDS_ROOT);
    let mut object = MaybeUninit::uninit();
    let mut lab = Lab::load(&mut object, config(XDP_PASS, NOTICES_ALL));
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
            let want = Want::enforced(XDP_DROP, lab.id("deny udp dport 53"));
            check_run(&lab.run(&dns), &dns, want).unwrap();
            // Each comeback is a new rule with a new counter.
            assert_eq!(lab.hits_of("deny udp dport 53"), hits(1, &dns));
        }
    }
    // 53, icmp, 54, 53 again, 55, 53 and icmp again: seven ids, in order.
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        (0..7).collect::<Vec<_>>()
    );
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
    let mut lab = Lab::load(&mut object, config(XDP_PASS, NOTICES_ALL));
    let full = MAX_RULES_PER_SET as u32;
    let mut ids = BTreeSet::new();
    // Full sets of hosts (65,536 one-port rules on one field would need
    // more port classes than a key holds); the first and the last decide a
    // packet from their second host.
    let sets = [
        (Some("deny src 10.0.0.1"), host_rules(0, full)),
        (None, host_rules(100, full)),
        (Some("deny src 10.200.0.1"), host_rules(200, full)),
    ];
    let from = |decider: &str| udp(decider.trim_start_matches("deny src "), CLIENT, N4, SERVICE);
    for (decider, set) in &sets {
        let texts: Vec<&str> = set.iter().map(String::as_str).collect();
        lab.install(&texts);
        ids.extend(lab.firewall.rules().iter().map(|active| active.id));
        if let Some(decider) = decider {
            let packet = from(decider);
            let ran = lab.run(&packet);
            let want = Want::enforced(XDP_DROP, lab.id(decider));
            check_run(&ran, &packet, want).unwrap_or_else(|why| panic!("{decider}: {why}"));
        }
    }
    assert_eq!(ids.len(), 3 * 65536, "an id was handed out twice");
    let decider = sets[2].0.unwrap();
    let packet = from(decider);
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
    let counted: Vec<(String, RuleHits)> = lab
        .hits()
        .into_iter()
        .filter(|(_, hits)| hits.packets != 0 || hits.bytes != 0)
        .collect();
    assert_eq!(counted, [(decider.to_string(), hits(1, &packet))]);
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
    // The default would pass the packet: one that saw neither set shows.
    // The sets have rules on different fields, so a packet that looked up
    // the classes of the one set and the entries of the other shows too.
    live_reload(
        (
            &["deny src 192.0.2.1", "deny tcp dport 22"],
            "deny src 192.0.2.1",
        ),
        (
            &[
                "allow udp dport 4789",
                "deny src 198.51.100.0/24",
                "deny icmp",
            ],
            "allow udp dport 4789",
        ),
    );
}

/// The same two rules, in one order and then the other: both match the
/// packet, so only the order decides. The rules keep their ids and slots
/// across the swaps (their texts stay); a packet that saw the entries of one
/// order with the plan of the other would show.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn live_reload_of_a_new_order_only() {
    const DENY: &str = "deny src 192.0.2.0/24";
    const ALLOW: &str = "allow udp dport 4789 src 192.0.2.1";
    live_reload((&[DENY, ALLOW], DENY), (&[ALLOW, DENY], ALLOW));
}

/// Swaps between the sets `a` and `b` (each with the rule that decides the
/// packet) while packets run.
fn live_reload(a: (&[&str], &str), b: (&[&str], &str)) {
    common::require_root(NEEDS_ROOT);
    let (a_set, a_decider) = a;
    let (b_set, b_decider) = b;
    let packet = udp("192.0.2.1", CLIENT, N4, SERVICE);
    let mut object = MaybeUninit::uninit();
    let mut lab = Lab::load(&mut object, config(XDP_PASS, NOTICES_ALL));
    lab.install(a_set);
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
    let mut allowed = BTreeSet::from([(verdict_of(a_decider), lab.slot(a_decider))]);
    let runs = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let seen = thread::scope(|scope| {
        let runner = scope.spawn(|| run_until_stopped(prog, events, &packet.frame, &runs, &stop));
        for swap in 0..SWAPS {
            let (set, decider) = if swap % 2 == 0 {
                (b_set, b_decider)
            } else {
                (a_set, a_decider)
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
