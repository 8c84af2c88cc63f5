//! Rules × packets with the expected rule, and the compiled tables compared
//! with the reference evaluator over random rule sets and packets.

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use super::{Compiled, MAX_SET_ENTRIES};
use crate::abi::{self, tcp_flag};
use crate::policy::evaluate::{evaluate, Packet};
use crate::policy::{Action, Matches, Rule, TcpFlags};

// ---- Rules, built the way the parser would.

fn allow() -> Rule {
    Rule {
        action: Action::Allow,
        matches: Matches::default(),
        log: false,
    }
}

fn deny() -> Rule {
    Rule {
        action: Action::Deny,
        ..allow()
    }
}

/// "80,443,8000-8080" as ranges.
fn ranges<T: std::str::FromStr + Copy>(list: &str) -> Vec<RangeInclusive<T>>
where
    T::Err: std::fmt::Debug,
{
    list.split(',')
        .map(|item| match item.split_once('-') {
            Some((a, b)) => a.parse().unwrap()..=b.parse().unwrap(),
            None => item.parse().unwrap()..=item.parse().unwrap(),
        })
        .collect()
}

fn nets(list: &str) -> Vec<IpNet> {
    list.split(',')
        .map(|item| {
            item.parse()
                .unwrap_or_else(|_| IpNet::from(item.parse::<IpAddr>().unwrap()))
        })
        .collect()
}

trait Build {
    fn protos(self, protos: &[u8]) -> Self;
    fn tcp(self) -> Self;
    fn udp(self) -> Self;
    fn icmp(self) -> Self;
    fn icmpv6(self) -> Self;
    fn src(self, list: &str) -> Self;
    fn dst(self, list: &str) -> Self;
    fn sport(self, list: &str) -> Self;
    fn dport(self, list: &str) -> Self;
    fn types(self, list: &str) -> Self;
    fn codes(self, list: &str) -> Self;
    fn flags(self, value: u8, mask: u8) -> Self;
    fn on(self, iface: &str) -> Self;
}

impl Build for Rule {
    fn protos(mut self, protos: &[u8]) -> Rule {
        self.matches.protos = Some(protos.to_vec());
        self
    }
    fn tcp(self) -> Rule {
        self.protos(&[abi::IPPROTO_TCP])
    }
    fn udp(self) -> Rule {
        self.protos(&[abi::IPPROTO_UDP])
    }
    fn icmp(self) -> Rule {
        self.protos(&[abi::IPPROTO_ICMP])
    }
    fn icmpv6(self) -> Rule {
        self.protos(&[abi::IPPROTO_ICMPV6])
    }
    fn src(mut self, list: &str) -> Rule {
        self.matches.src = Some(nets(list));
        self
    }
    fn dst(mut self, list: &str) -> Rule {
        self.matches.dst = Some(nets(list));
        self
    }
    fn sport(mut self, list: &str) -> Rule {
        self.matches.sport = Some(ranges(list));
        self
    }
    fn dport(mut self, list: &str) -> Rule {
        self.matches.dport = Some(ranges(list));
        self
    }
    fn types(mut self, list: &str) -> Rule {
        self.matches.icmp_types = Some(ranges(list));
        self
    }
    fn codes(mut self, list: &str) -> Rule {
        self.matches.icmp_codes = Some(ranges(list));
        self
    }
    fn flags(mut self, value: u8, mask: u8) -> Rule {
        self.matches.tcp_flags = Some(TcpFlags { value, mask });
        self
    }
    fn on(mut self, iface: &str) -> Rule {
        self.matches.iface = Some(iface.to_string());
        self
    }
}

/// The fake interfaces: eth1 and its alias `uplink` are one.
fn iface_of(name: &str) -> Option<u32> {
    match name {
        "eth0" => Some(2),
        "eth1" | "uplink" => Some(3),
        "eth2" => Some(4),
        _ => None,
    }
}

// ---- Packets, built the way the walk reports them.

fn notice(src: &str, dst: &str, proto: u8) -> abi::Notice {
    let (src, dst): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
    let mut n = abi::Notice::ZERO;
    n.ifindex = 2;
    n.l4_proto = proto;
    n.depth = abi::DEPTH_L3;
    for (addr, bytes) in [(src, &mut n.src_addr), (dst, &mut n.dst_addr)] {
        match addr {
            IpAddr::V4(a) => {
                n.ip_version = 4;
                bytes[..4].copy_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                n.ip_version = 6;
                *bytes = a.octets();
            }
        }
    }
    n
}

fn packet(n: abi::Notice) -> Packet {
    Packet::from_notice(&n).unwrap()
}

fn tcp(src: &str, dst: &str, sport: u16, dport: u16, flags: u8) -> abi::Notice {
    let mut n = notice(src, dst, abi::IPPROTO_TCP);
    (n.src_port, n.dst_port, n.tcp_flags, n.depth) = (sport, dport, flags, abi::DEPTH_L4);
    n
}

fn udp(src: &str, dst: &str, sport: u16, dport: u16) -> abi::Notice {
    let mut n = notice(src, dst, abi::IPPROTO_UDP);
    (n.src_port, n.dst_port, n.depth) = (sport, dport, abi::DEPTH_L4);
    n
}

fn icmp(src: &str, dst: &str, icmp_type: u8, code: u8) -> abi::Notice {
    let proto = if src.contains(':') {
        abi::IPPROTO_ICMPV6
    } else {
        abi::IPPROTO_ICMP
    };
    let mut n = notice(src, dst, proto);
    (n.icmp_type, n.icmp_code, n.depth) = (icmp_type, code, abi::DEPTH_L4);
    n
}

/// The transport header could not be read (cut short, non-first fragment).
fn cut(mut n: abi::Notice) -> abi::Notice {
    n.depth = abi::DEPTH_L3;
    n.flags |= abi::FLAG_TRUNCATED;
    n
}

fn on(mut n: abi::Notice, ifindex: u32) -> abi::Notice {
    n.ifindex = ifindex;
    n
}

/// Both the reference and the compiled tables give `expected` for each packet.
fn check(rules: &[Rule], cases: &[(abi::Notice, Option<usize>)]) -> Compiled {
    let compiled = Compiled::new(rules, &iface_of).unwrap();
    for (i, (n, expected)) in cases.iter().enumerate() {
        let p = packet(*n);
        assert_eq!(
            evaluate(rules, &iface_of, &p),
            *expected,
            "evaluate, case {i}: {p:?}"
        );
        assert_eq!(compiled.decide(&p), *expected, "decide, case {i}: {p:?}");
    }
    compiled
}

// ---- The packet a notice describes.

#[test]
fn notices_become_packets() {
    use crate::policy::evaluate::Field::{Absent, Known, Unknown};
    let p = packet(tcp("10.0.0.1", "10.0.0.2", 1234, 22, tcp_flag::SYN));
    assert_eq!(
        (p.proto, p.sport, p.dport),
        (Some(6), Known(1234), Known(22))
    );
    assert_eq!((p.icmp, p.flags), (Absent, Known(tcp_flag::SYN)));
    let p = packet(cut(udp("2001:db8::1", "2001:db8::2", 1, 53)));
    assert_eq!((p.sport, p.dport, p.flags), (Unknown, Unknown, Absent));
    let p = packet(icmp("2001:db8::1", "2001:db8::2", 128, 0));
    assert_eq!(
        (p.proto, p.icmp, p.sport),
        (Some(58), Known((128, 0)), Absent)
    );
    // ICMPv6's number in IPv4 is just a protocol.
    let p = packet(notice("10.0.0.1", "10.0.0.2", abi::IPPROTO_ICMPV6));
    assert_eq!(p.icmp, Absent);
    // Stopped on a fragment header: the transport is unknown.
    let p = packet(notice("2001:db8::1", "2001:db8::2", abi::IPPROTO_FRAGMENT));
    assert_eq!(
        (p.proto, p.dport, p.icmp, p.flags),
        (None, Unknown, Unknown, Unknown)
    );
    // Protocol 0 in IPv4 is no hop-by-hop header.
    let p = packet(notice("10.0.0.1", "10.0.0.2", 0));
    assert_eq!((p.proto, p.dport), (Some(0), Absent));
    let mut arp = abi::Notice::ZERO;
    arp.ether_type = abi::ETH_P_ARP;
    assert_eq!(Packet::from_notice(&arp), None);
}

// ---- Tables of rules × packets.

/// The example policy.
fn example() -> Vec<Rule> {
    vec![
        allow().tcp().dport("22").src("10.0.0.0/24"),
        deny().tcp().dport("22"),
        allow().tcp().dport("80,443,8000-8080"),
        allow().udp().dport("53").src("192.0.2.0/24,2001:db8::/32"),
        allow().icmp().types("0,3,8,11"),
        allow().icmpv6().types("1-4,128,129,133-136"),
        deny().src("203.0.113.0/24"),
        allow().protos(&[47]),
        deny()
            .tcp()
            .flags(tcp_flag::SYN, tcp_flag::SYN | tcp_flag::ACK)
            .dport("1-1023"),
    ]
}

#[test]
fn the_example_policy_admits_and_refuses_what_its_comments_say() {
    let syn = tcp_flag::SYN;
    let me = "10.9.9.9";
    let c = check(
        &example(),
        &[
            (tcp("10.0.0.7", me, 40000, 22, syn), Some(0)),
            (tcp("10.0.1.7", me, 40000, 22, syn), Some(1)),
            (tcp("2001:db8::7", "2001:db8::1", 40000, 22, syn), Some(1)),
            (tcp("10.0.1.7", me, 40000, 443, syn), Some(2)),
            (tcp("10.0.1.7", me, 40000, 8080, syn), Some(2)),
            (tcp("10.0.1.7", me, 40000, 8081, syn), None),
            (udp("192.0.2.9", me, 5353, 53), Some(3)),
            (udp("2001:db8:1::9", "2001:db8::1", 5353, 53), Some(3)),
            (udp("198.51.100.1", me, 5353, 53), None),
            (icmp("198.51.100.1", me, 8, 0), Some(4)),
            (icmp("198.51.100.1", me, 5, 0), None),
            (icmp("2001:db8::7", "2001:db8::1", 135, 0), Some(5)),
            (icmp("2001:db8::7", "2001:db8::1", 8, 0), None),
            // Allowed above before the deny of its network.
            (tcp("203.0.113.5", me, 1, 80, syn), Some(2)),
            (udp("203.0.113.5", me, 1, 53), Some(6)),
            (notice("198.51.100.1", me, 47), Some(7)),
            (tcp("198.51.100.1", me, 1, 25, syn), Some(8)),
            (tcp("198.51.100.1", me, 1, 25, syn | tcp_flag::ACK), None),
            (tcp("198.51.100.1", me, 1, 2000, syn), None),
        ],
    );
    well_formed(&c);
    assert_eq!((c.shadowed.len(), c.never_matches.len()), (0, 0));
    eprintln!("the example policy: {} entries", c.entries.len());
}

#[test]
fn what_the_walk_could_not_read_gets_past_no_deny() {
    let me = "10.9.9.9";
    check(
        &example(),
        &[
            // Port unknown: not the admin allow, but the deny of port 22.
            (cut(tcp("10.0.0.7", me, 0, 22, 0)), Some(1)),
            (cut(udp("192.0.2.9", me, 0, 53)), None),
            (cut(icmp("198.51.100.1", me, 8, 0)), None),
            // A stop in the extension chain: the first deny that asks the
            // protocol.
            (
                notice("2001:db8::7", "2001:db8::1", abi::IPPROTO_ROUTING),
                Some(1),
            ),
            (notice("10.0.0.7", me, abi::IPPROTO_AH), Some(1)),
        ],
    );
    let rules = [
        deny().tcp().flags(tcp_flag::SYN, tcp_flag::SYN),
        deny().icmp().types("8"),
        allow().tcp(),
        allow().icmp(),
    ];
    check(
        &rules,
        &[
            (cut(tcp(me, me, 1, 2, 0)), Some(0)),
            (tcp(me, me, 1, 2, tcp_flag::ACK), Some(2)),
            (cut(icmp(me, me, 0, 0)), Some(1)),
            (icmp(me, me, 0, 0), Some(3)),
            // A non-first fragment of UDP: the flags deny asks TCP only.
            (cut(udp(me, me, 1, 2)), None),
        ],
    );
}

#[test]
fn fields_combine_with_and_lists_with_or() {
    let rules = [
        allow()
            .src("10.0.0.0/8,2001:db8::/32")
            .dst("10.1.0.0/16,2001:db8:1::/48"),
        deny().udp().sport("1000-2000").dport("53,5353"),
        allow().icmp().types("3").codes("1-3"),
        deny().tcp().on("eth1"),
        allow().on("uplink").src("192.0.2.0/24"),
        deny().tcp().flags(0, tcp_flag::ACK),
        allow().icmp().codes("4"),
        deny().src("0.0.0.0/0"),
    ];
    let x = "198.51.100.1";
    check(
        &rules,
        &[
            (udp("10.2.3.4", "10.1.9.9", 1, 2), Some(0)),
            (udp("2001:db8::1", "2001:db8:1::9", 1, 2), Some(0)),
            (udp("10.2.3.4", "2001:db8:1::9", 1, 2), None),
            (udp(x, x, 1500, 5353), Some(1)),
            (udp(x, x, 999, 5353), Some(7)),
            (udp(x, x, 1500, 54), Some(7)),
            (udp("2001:db8:5::1", "2001:db8::1", 1500, 54), None),
            (icmp(x, x, 3, 2), Some(2)),
            (icmp(x, x, 3, 4), Some(6)),
            (icmp(x, x, 5, 4), Some(6)),
            (icmp(x, x, 4, 2), Some(7)),
            (on(tcp(x, x, 1, 2, tcp_flag::ACK), 3), Some(3)),
            (on(udp("192.0.2.1", x, 1, 2), 3), Some(4)),
            (on(udp("192.0.2.1", x, 1, 2), 2), Some(7)),
            (tcp(x, x, 1, 2, tcp_flag::SYN), Some(5)),
            (
                tcp("2001:db8:5::1", "2001:db8::1", 1, 2, tcp_flag::SYN),
                Some(5),
            ),
            (
                tcp("2001:db8:5::1", "2001:db8::1", 1, 2, tcp_flag::ACK),
                None,
            ),
        ],
    );
}

#[test]
fn a_rule_with_no_field_matches_everything_after_it() {
    let rules = [deny().tcp().dport("22"), allow(), deny()];
    let c = check(
        &rules,
        &[
            (tcp("10.0.0.1", "10.0.0.2", 1, 22, 0), Some(0)),
            (tcp("10.0.0.1", "10.0.0.2", 1, 23, 0), Some(1)),
            (
                notice("2001:db8::1", "2001:db8::2", abi::IPPROTO_FRAGMENT),
                Some(0),
            ),
            (notice("2001:db8::1", "2001:db8::2", 50), Some(1)),
        ],
    );
    assert_eq!(c.shadowed, [(2, vec![1])]);
    assert!(c.entries.contains(&(abi::ClassKey::default(), 1)));
    assert_eq!(
        c.plan.shapes,
        1 | 1 << (abi::GROUP_DPORT | abi::GROUP_PROTO)
    );
}

#[test]
fn an_unknown_interface_is_an_error() {
    let err = Compiled::new(&[allow().on("wlan9")], &iface_of).unwrap_err();
    assert_eq!(err.to_string(), "on wlan9: no interface wlan9 here");
}

// ---- Diagnostics.

#[test]
fn shadowed_rules_are_found_and_named_by_what_covers_them() {
    let rules = [
        deny().src("10.0.0.0/8"),                     // 0
        allow().src("10.1.0.0/16").tcp().dport("22"), // 1: under 0
        allow().tcp().dport("80,443"),                // 2
        allow().tcp().dport("443"),                   // 3: under 2
        allow().tcp().dport("443").src("192.0.2.1"),  // 4: under 2 too
        allow().tcp().dport("22,80"),                 // 5: partly new (22)
        deny().tcp().dport("22"),                     // 6: not shadowed: unknown ports
        deny().tcp().dport("22"),                     // 7: under 5 (port 22) and 6
        allow().udp(),                                // 8
        allow().udp().dport("53").on("eth0"),         // 9: under 8
        allow().protos(&[6, 17]),                     // 10: partly new (TCP of other ports)
        allow().icmp().types("8"),                    // 11
        allow().icmp().types("8").codes("0"),         // 12: under 11
        allow().icmp().types("8,9"),                  // 13: partly new
    ];
    let c = Compiled::new(&rules, &iface_of).unwrap();
    assert_eq!(
        c.shadowed,
        [
            (1, vec![0]),
            (3, vec![2]),
            (4, vec![2]),
            (7, vec![5, 6]),
            (9, vec![8]),
            (12, vec![11])
        ]
    );
    assert_eq!(c.never_matches, Vec::<usize>::new());
}

/// A shadowed rule is named by the first rule that decides all of it
/// alone, and only where none does by the rules that decide it between
/// them: never by one that takes a part of it.
#[test]
fn a_shadowed_rule_is_named_by_the_rules_that_decide_it() {
    let between_them = [
        deny().tcp().dport("25"),  // 0: the ports it cannot read
        allow().tcp().dport("80"), // 1: port 80
        deny().tcp().dport("80"),  // 2: under 0 and 1
    ];
    let c = Compiled::new(&between_them, &iface_of).unwrap();
    assert_eq!(c.shadowed, [(2, vec![0, 1])]);
    let alone = [
        deny().tcp().dport("9"),  // 0: decides a part of 2 (unread ports)
        allow(),                  // 1: decides all of 2
        deny().tcp().dport("22"), // 2
    ];
    let c = Compiled::new(&alone, &iface_of).unwrap();
    assert_eq!(c.shadowed, [(2, vec![1])]);
    let on_one_interface = [
        deny().tcp().dport("22").on("eth0"), // 0: a part of 2 again
        allow(),
        deny().tcp().dport("22"),
    ];
    let c = Compiled::new(&on_one_interface, &iface_of).unwrap();
    assert_eq!(c.shadowed, [(2, vec![1])]);
}

#[test]
fn rules_no_packet_can_match_are_found() {
    let rules = [
        allow().src("10.0.0.0/8").dst("2001:db8::/32"),
        allow().src("2001:db8::/32").dst("2001:db8::/32"),
        allow().src("10.0.0.0/8,2001:db8::/32").dst("2001:db8::/32"),
    ];
    let c = Compiled::new(&rules, &iface_of).unwrap();
    assert_eq!(c.never_matches, [0]);
    assert_eq!(c.shadowed, [(2, vec![1])]);
}

// ---- Sizes.

#[test]
fn a_long_address_list_in_one_rule_is_one_class() {
    let list: Vec<IpNet> = (0..10_000u32)
        .map(|i| IpNet::from(IpAddr::from(((10u32 << 24) | (i * 7)).to_be_bytes())))
        .collect();
    let mut rule = deny().tcp().dport("22");
    rule.matches.src = Some(list);
    let c = Compiled::new(&[rule, allow().tcp()], &iface_of).unwrap();
    assert_eq!(c.src_v4.len(), 10_000);
    assert!(c.src_v4.iter().all(|&(_, class)| class == 1));
    // A range each host and each gap, and no bucket holds more than a few.
    let ranges = &c.addresses[0];
    assert_eq!(ranges.starts.len(), 20_001);
    let widest = ranges.buckets.iter().map(|&(f, l)| l - f).max();
    assert!(widest <= Some(3), "{widest:?}");
    // src × dport {22, unknown} × proto {tcp}, and the allow's tcp.
    assert_eq!(c.entries.len(), 3, "{:?}", c.entries);
    let p = packet(tcp("10.0.0.7", "10.9.9.9", 1, 22, 0));
    assert_eq!(c.decide(&p), Some(0));
}

#[test]
fn a_rule_that_would_blow_up_the_tables_is_named() {
    // Its sport classes × dport classes: 1,201 × 1,201.
    let mut rules = vec![allow(), deny().tcp().sport("1-65535").dport("1-65535")];
    for port in 1..=1200 {
        rules.push(
            allow()
                .tcp()
                .sport(&port.to_string())
                .dport(&port.to_string()),
        );
    }
    rules.remove(0);
    let err = Compiled::new(&rules, &iface_of).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "rule 1: the classifier would need more than {MAX_SET_ENTRIES} entries"
        )),
        "{err}"
    );
}

// ---- The property: the tables decide as the reference does.

/// Random rules as the parser makes them, and packets near their edges.
struct Gen {
    rng: fastrand::Rng,
    /// Fields in any combination, not only those the parser lets through.
    loose: bool,
}

const V4_ANCHORS: [u32; 4] = [0x0a00_0000, 0x0a01_0203, 0xc000_0201, 0xcb00_7180];
const V6_ANCHORS: [u128; 3] = [
    0x2001_0db8_0000_0000_0000_0000_0000_0001,
    0x2001_0db8_0001_0000_0000_0000_0000_0000,
    0xfe80_0000_0000_0000_0000_0000_0000_0042,
];
const PORTS: [u16; 8] = [0, 22, 53, 80, 443, 1000, 8080, 65535];
const BYTES: [u8; 7] = [0, 1, 3, 8, 11, 128, 255];
const PROTOS: [u8; 8] = [6, 17, 1, 58, 47, 50, 132, 255];

impl Gen {
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.usize(..items.len())]
    }

    /// An address near an anchor: a few bits flipped here and there.
    fn addr(&mut self, v6: bool) -> IpAddr {
        if v6 {
            let mut a = self.pick(&V6_ANCHORS);
            for _ in 0..self.rng.usize(..3) {
                a ^= 1 << self.rng.u32(..128);
            }
            IpAddr::from(a.to_be_bytes())
        } else {
            let mut a = self.pick(&V4_ANCHORS);
            for _ in 0..self.rng.usize(..3) {
                a ^= 1 << self.rng.u32(..32);
            }
            IpAddr::from(a.to_be_bytes())
        }
    }

    fn net(&mut self) -> IpNet {
        let v6 = self.rng.u8(..3) == 0;
        let max = if v6 { 128 } else { 32 };
        let len = match self.rng.u8(..4) {
            0 => self.rng.u8(..=max),
            1 => max,
            _ => self.pick(&[0, 8, 16, 24, 31, 32, 48, 64, 127]).min(max),
        };
        IpNet::new(self.addr(v6), len).unwrap().trunc()
    }

    fn list<T>(&mut self, mut item: impl FnMut(&mut Gen) -> T) -> Vec<T> {
        (0..1 + self.rng.usize(..3)).map(|_| item(self)).collect()
    }

    fn port_range(&mut self) -> RangeInclusive<u16> {
        let a = self.pick(&PORTS).saturating_add(self.rng.u16(..2));
        let b = self.pick(&PORTS).max(a);
        if self.rng.bool() {
            a..=a
        } else {
            a..=b
        }
    }

    fn byte_range(&mut self) -> RangeInclusive<u8> {
        let a = self.pick(&BYTES);
        let b = self.pick(&BYTES).max(a);
        if self.rng.bool() {
            a..=a
        } else {
            a..=b
        }
    }

    fn rule(&mut self) -> Rule {
        let mut rule = if self.rng.bool() { allow() } else { deny() };
        let m = &mut rule.matches;
        let chance = |g: &mut Gen, n: u8| g.rng.u8(..n) == 0;
        if self.loose {
            if chance(self, 2) {
                m.protos = Some(self.list(|g| g.pick(&PROTOS)));
            }
            if chance(self, 3) {
                m.sport = Some(self.list(Gen::port_range));
            }
            if chance(self, 3) {
                m.dport = Some(self.list(Gen::port_range));
            }
            if chance(self, 3) {
                m.icmp_types = Some(self.list(Gen::byte_range));
            }
            if chance(self, 3) {
                m.icmp_codes = Some(self.list(Gen::byte_range));
            }
            if chance(self, 3) {
                let (value, mask) = (self.rng.u8(..), self.rng.u8(..));
                m.tcp_flags = Some(TcpFlags {
                    value: value & mask,
                    mask,
                });
            }
        }
        match if self.loose { 5 } else { self.rng.u8(..6) } {
            0 => {
                m.protos = Some(self.list(|g| g.pick(&PROTOS)));
            }
            1 => {
                m.protos = Some(self.pick(&[&[6][..], &[17], &[6, 17]]).to_vec());
                if chance(self, 2) {
                    m.sport = Some(self.list(Gen::port_range));
                }
                if chance(self, 2) || m.sport.is_none() {
                    m.dport = Some(self.list(Gen::port_range));
                }
            }
            2 => {
                m.protos = Some(self.pick(&[&[1][..], &[58], &[1, 58]]).to_vec());
                if chance(self, 2) {
                    m.icmp_types = Some(self.list(Gen::byte_range));
                }
                if chance(self, 2) {
                    m.icmp_codes = Some(self.list(Gen::byte_range));
                }
            }
            3 => {
                m.protos = Some(vec![6]);
                let (value, mask) = (self.rng.u8(..), self.rng.u8(..));
                m.tcp_flags = Some(TcpFlags {
                    value: value & mask,
                    mask,
                });
                if chance(self, 3) {
                    m.dport = Some(self.list(Gen::port_range));
                }
            }
            _ => {}
        }
        if chance(self, 3) {
            m.src = Some(self.list(Gen::net));
        }
        if chance(self, 3) {
            m.dst = Some(self.list(Gen::net));
        }
        if chance(self, 5) {
            m.iface = Some(self.pick(&["eth0", "eth1", "uplink", "eth2"]).to_string());
        }
        rule
    }

    fn notice(&mut self) -> abi::Notice {
        let v6 = self.rng.bool();
        let (src, dst) = (self.addr(v6).to_string(), self.addr(v6).to_string());
        let proto = match self.rng.u8(..4) {
            0 => self.pick(&[0, 43, 44, 51, 60, 47, 50, 255]),
            1 => self.pick(&[1, 58]),
            _ => self.pick(&[6, 17]),
        };
        let mut n = notice(&src, &dst, proto);
        n.ifindex = self.rng.u32(1..=4);
        if [1, 6, 17, 58].contains(&proto) {
            match self.rng.u8(..6) {
                // Cut short: the transport header unknown.
                0 => n.flags |= abi::FLAG_TRUNCATED,
                // A non-first fragment: no transport header at all.
                1 => n.flags |= abi::FLAG_FRAGMENT,
                _ => n.depth = abi::DEPTH_L4,
            }
        }
        n.src_port = self
            .pick(&PORTS)
            .wrapping_add(self.rng.u16(..3))
            .wrapping_sub(1);
        n.dst_port = self
            .pick(&PORTS)
            .wrapping_add(self.rng.u16(..3))
            .wrapping_sub(1);
        n.icmp_type = self
            .pick(&BYTES)
            .wrapping_add(self.rng.u8(..3))
            .wrapping_sub(1);
        n.icmp_code = self
            .pick(&BYTES)
            .wrapping_add(self.rng.u8(..3))
            .wrapping_sub(1);
        n.tcp_flags = self.rng.u8(..);
        n
    }
}

/// What the maps expect: keys zero outside their shape, one rule per key,
/// arrays of their domain's length.
fn well_formed(c: &Compiled) {
    let mut keys = std::collections::HashSet::new();
    for (key, order) in &c.entries {
        let table = key.table;
        assert!(c.plan.shapes & (1 << table) != 0, "{key:?} -> {order}");
        let listed = c.plan.shape_list[..c.plan.shape_count as usize]
            .iter()
            .position(|&t| t == table)
            .expect("a table with entries is listed");
        assert_eq!(key.masked(&c.plan.key_masks[listed], table), *key);
        assert!(keys.insert(*key), "{key:?} twice");
    }
    for (array, domain) in [
        (&c.sport, abi::PORT_DOMAIN),
        (&c.dport, abi::PORT_DOMAIN),
        (&c.proto, abi::PROTO_DOMAIN),
        (&c.icmp, abi::ICMP_DOMAIN),
        (&c.flags, abi::FLAGS_DOMAIN),
    ] {
        assert!(array.as_ref().is_none_or(|a| a.len() == domain as usize));
    }
}

#[test]
fn the_tables_decide_as_the_reference_over_random_sets() {
    same_decisions(Gen {
        rng: fastrand::Rng::with_seed(9),
        loose: false,
    });
}

#[test]
fn the_tables_decide_as_the_reference_for_any_combination_of_fields() {
    same_decisions(Gen {
        rng: fastrand::Rng::with_seed(10),
        loose: true,
    });
}

fn same_decisions(mut g: Gen) {
    for set in 0..2000 {
        let rules: Vec<Rule> = (0..1 + g.rng.usize(..12)).map(|_| g.rule()).collect();
        let c = Compiled::new(&rules, &iface_of).unwrap();
        well_formed(&c);
        for _ in 0..60 {
            let p = packet(g.notice());
            let expected = evaluate(&rules, &iface_of, &p);
            let shown = || rules.iter().map(|r| format!("{r}\n")).collect::<String>();
            assert_eq!(c.decide(&p), expected, "set {set}:\n{}{p:?}", shown());
            // No false alarm: a rule that decides is neither shadowed nor dead.
            if let Some(r) = expected {
                assert!(
                    !c.never_matches.contains(&r),
                    "set {set}: {r} matches {p:?}"
                );
                assert!(
                    c.shadowed.iter().all(|(s, _)| *s != r),
                    "set {set}: {r} decides {p:?}"
                );
            }
        }
    }
}

/// 10,000 rules of mixed shape, as a host policy might grow.
fn mixed(count: usize, seed: u64) -> Vec<Rule> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..count)
        .map(|i| {
            let v4 = IpNet::new(IpAddr::from(rng.u32(..).to_be_bytes()), rng.u8(8..=32)).unwrap();
            let v6 =
                IpNet::new(IpAddr::from(rng.u128(..).to_be_bytes()), rng.u8(16..=128)).unwrap();
            let net = if rng.u8(..3) == 0 { v6 } else { v4 }.trunc().to_string();
            let service = ["22", "53", "80,443", "8000-8080", "1-1023", "25,587"][i % 6];
            match i % 8 {
                0 | 1 => deny().src(&net),
                2 => allow().tcp().dport(service).src(&net),
                3 => allow().udp().dport(service).dst(&net),
                4 => deny().protos(&[6, 17]).dport(service).src(&net),
                5 => allow().icmp().types("0,3,8,11").src(&net),
                6 => allow().protos(&[rng.u8(..40) + 100]),
                _ => deny()
                    .tcp()
                    .flags(tcp_flag::SYN, tcp_flag::SYN | tcp_flag::ACK)
                    .dst(&net),
            }
        })
        .collect()
}

#[test]
fn ten_thousand_mixed_rules_compile_and_decide_as_the_reference() {
    let rules = mixed(10_000, 1);
    // The best of three: other work shares the machine.
    let mut took = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        Compiled::new(&rules, &iface_of).unwrap();
        took = took.min(started.elapsed());
    }
    let c = Compiled::new(&rules, &iface_of).unwrap();
    eprintln!(
        "10000 mixed rules: {took:?}, {} entries, {} + {} v4 / {} + {} v6 networks",
        c.entries.len(),
        c.src_v4.len(),
        c.dst_v4.len(),
        c.src_v6.len(),
        c.dst_v6.len()
    );
    let mut g = Gen {
        rng: fastrand::Rng::with_seed(2),
        loose: false,
    };
    for i in 0..2000 {
        // Half the packets come from the rules' own networks.
        let mut n = g.notice();
        if i % 2 == 0 {
            let rule = &rules[g.rng.usize(..rules.len())];
            if let Some(net) = rule.matches.src.as_ref().or(rule.matches.dst.as_ref()) {
                let addr = net[0].network();
                n = notice(&addr.to_string(), &addr.to_string(), n.l4_proto);
                n.depth = abi::DEPTH_L4;
                n.dst_port = g.pick(&PORTS);
                n.tcp_flags = tcp_flag::SYN;
            }
        }
        let p = packet(n);
        assert_eq!(c.decide(&p), evaluate(&rules, &iface_of, &p), "{p:?}");
    }
}

// ---- The address ranges and the shape filter, which only make lookups cheaper.

/// 64 hosts of each family, for a last rule that gives a field many
/// networks: `10.200.0.1,…` and `2001:db8:200::1,…`.
fn many_hosts(v4: &str, v6: &str) -> String {
    let count = 64;
    (1..=count)
        .map(|i| format!("{v4}.{i}"))
        .chain((1..=count).map(|i| format!("{v6}{i:x}")))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn hosts_nest_in_wider_networks_and_a_wider_earlier_network_still_wins() {
    let rules = [
        allow().src("10.1.2.3"),
        deny().src("10.0.0.0/8"),
        allow().src("10.1.2.4"),
        deny().src("192.0.2.7"),
        allow().src("2001:db8::3"),
        deny().src("2001:db8::/32"),
        allow().src("2001:db8::4"),
        deny().src("3fff::7"),
        deny().dst("10.9.9.9"),
        allow().dst("10.9.0.0/16"),
        deny().dst("10.9.9.10"),
        deny().src(&many_hosts("10.200.0", "2001:db8:200::")),
        deny().dst(&many_hosts("10.201.0", "2001:db8:201::")),
    ];
    let other = "172.16.0.1";
    let c = check(
        &rules,
        &[
            (udp("10.1.2.3", other, 1, 2), Some(0)),
            (udp("10.1.2.4", other, 1, 2), Some(1)),
            (udp("10.7.7.7", other, 1, 2), Some(1)),
            (udp("192.0.2.7", other, 1, 2), Some(3)),
            (udp("192.0.2.8", other, 1, 2), None),
            (udp("2001:db8::3", "fd00::1", 1, 2), Some(4)),
            (udp("2001:db8::4", "fd00::1", 1, 2), Some(5)),
            (udp("3fff::7", "fd00::1", 1, 2), Some(7)),
            (udp("3fff::8", "fd00::1", 1, 2), None),
            (udp("192.0.2.1", "10.9.9.9", 1, 2), Some(8)),
            (udp("192.0.2.1", "10.9.9.10", 1, 2), Some(9)),
            (udp("192.0.2.1", "10.9.1.1", 1, 2), Some(9)),
        ],
    );
    let addresses =
        abi::LOOKUP_SRC_V4 | abi::LOOKUP_SRC_V6 | abi::LOOKUP_DST_V4 | abi::LOOKUP_DST_V6;
    assert_eq!(c.plan.lookups & 0xf, addresses, "{:#x}", c.plan.lookups);
}

#[test]
fn rules_of_one_address_field_need_no_hash_lookup() {
    let rules = [
        deny().src("10.1.2.3"),
        allow().src("10.1.2.4"),
        deny().src("2001:db8::3,2001:db8::5"),
        deny().dst("192.0.2.99"),
        deny().src(&many_hosts("10.200.0", "2001:db8:200::")),
        deny().dst(&many_hosts("10.201.0", "2001:db8:201::")),
    ];
    let c = check(
        &rules,
        &[
            (udp("10.1.2.3", "172.16.0.1", 1, 2), Some(0)),
            (udp("10.1.2.4", "192.0.2.99", 1, 2), Some(1)),
            (udp("10.1.2.5", "172.16.0.1", 1, 2), None),
            (udp("2001:db8::5", "fd00::1", 1, 2), Some(2)),
            (udp("2001:db8::4", "fd00::1", 1, 2), None),
            (udp("10.1.2.5", "192.0.2.99", 1, 2), Some(3)),
        ],
    );
    // Rules of one address field alone are answered by the class values.
    assert_eq!(c.plan.hashed, 0);
}

#[test]
fn a_port_of_no_rule_still_meets_rules_that_ask_no_port_in_its_table() {
    // The ICMP rule is merged into the port rule's shape (it has no port,
    // so its entries have port class 0, as has UDP port 99): a UDP packet
    // to port 99 must still find the later protocol rule there.
    let rules = [
        allow().udp().dport("53"),
        deny().icmp(),
        deny().udp(),
        allow().tcp().sport("1-1023"),
    ];
    let c = check(
        &rules,
        &[
            (udp("10.0.0.1", "10.0.0.2", 1000, 53), Some(0)),
            (udp("10.0.0.1", "10.0.0.2", 1000, 99), Some(2)),
            (icmp("10.0.0.1", "10.0.0.2", 8, 0), Some(1)),
            (tcp("10.0.0.1", "10.0.0.2", 80, 99, 0x02), Some(3)),
            (tcp("10.0.0.1", "10.0.0.2", 8080, 99, 0x02), None),
        ],
    );
    assert!(c.plan.hashed != 0);
}

#[test]
fn a_wide_network_paired_with_a_port_takes_a_key_per_wide_class() {
    let rules = [
        allow()
            .udp()
            .dport("1000")
            .src(&many_hosts("10.1.0", "2001:db8:1::")),
        deny().udp().dport("53").src("10.0.0.0/8,2001:db8::/32"),
        allow().udp().dport("53").src("10.1.0.1"),
        deny().udp().dport("54").src("192.0.2.9,10.0.0.0/8"),
    ];
    let n4 = "172.16.0.1";
    let c = check(
        &rules,
        &[
            (udp("10.1.0.1", n4, 1, 1000), Some(0)),
            (udp("10.1.0.1", n4, 1, 53), Some(1)),
            (udp("10.9.9.9", n4, 1, 53), Some(1)),
            (udp("2001:db8:1::1", "fd00::1", 1, 53), Some(1)),
            (udp("11.0.0.1", n4, 1, 53), None),
            (udp("192.0.2.9", n4, 1, 54), Some(3)),
            (udp("10.1.0.7", n4, 1, 54), Some(3)),
        ],
    );
    well_formed(&c);
    // Per family: port 53, an unknown port, an unknown protocol. Narrow,
    // the /8 would take keys for each of the 65 classes inside it.
    let keys = |rule| {
        c.entries
            .iter()
            .filter(|&&(_, order)| order == rule)
            .count()
    };
    assert_eq!(keys(1), 6);
    assert!(keys(3) <= 6, "{} keys", keys(3));
    // The host's rule after the wide network's is found shadowed all the
    // same: its narrow class meets only the /8's wide class.
    assert_eq!(c.shadowed, [(2, vec![1])]);
}

#[test]
fn a_set_whose_wide_shapes_take_more_tables_than_there_are_compiles_all_narrow() {
    // Both address groups narrow and wide, with each protocol and port
    // group: 42 shapes, more than the 32 tables. The most specific first,
    // so that none covers another.
    let hosts = |net: &str| (1..=9).map(|i| format!("{net}.{i}")).collect::<Vec<_>>();
    let mut rules = vec![
        allow().udp().dport("1").src(&hosts("10.0.0").join(",")),
        allow().udp().dport("1").dst(&hosts("198.51.100").join(",")),
    ];
    let mut group_sets: Vec<u32> = (1..32u32)
        .filter(|g| g & (abi::GROUP_SPORT | abi::GROUP_DPORT) == 0 || g & abi::GROUP_PROTO != 0)
        .collect();
    group_sets.sort_by_key(|g| std::cmp::Reverse(g.count_ones()));
    for groups in group_sets {
        let srcs: &[&str] = if groups & abi::GROUP_SRC != 0 {
            &["10.0.0.0/8", "192.0.2.1"]
        } else {
            &[""]
        };
        let dsts: &[&str] = if groups & abi::GROUP_DST != 0 {
            &["198.51.100.0/24", "203.0.113.1"]
        } else {
            &[""]
        };
        for (src, dst) in srcs.iter().flat_map(|s| dsts.iter().map(move |d| (s, d))) {
            let mut rule = deny();
            if !src.is_empty() {
                rule = rule.src(src);
            }
            if !dst.is_empty() {
                rule = rule.dst(dst);
            }
            if groups & abi::GROUP_PROTO != 0 {
                rule = rule.tcp();
            }
            if groups & abi::GROUP_SPORT != 0 {
                rule = rule.sport(&format!("{}", 1000 + groups));
            }
            if groups & abi::GROUP_DPORT != 0 {
                rule = rule.dport(&format!("{}", 2000 + groups));
            }
            rules.push(rule);
        }
    }
    // Many port classes: no shape merges into a wider one for few entries.
    for port in (3000..3080).step_by(2) {
        let port = port.to_string();
        rules.insert(0, allow().tcp().sport(&port).dport(&port));
    }
    let c = Compiled::new(&rules, &iface_of).unwrap();
    well_formed(&c);
    let listed = &c.plan.key_masks[..c.plan.shape_count as usize];
    assert!(
        listed
            .iter()
            .all(|m| m.src <= abi::NARROW_CLASS_MASK && m.dst <= abi::NARROW_CLASS_MASK),
        "a wide shape in {listed:?}"
    );
    let mut g = Gen {
        rng: fastrand::Rng::with_seed(5),
        loose: false,
    };
    for i in 0..3000u16 {
        let mut n = g.notice();
        if i % 2 == 0 {
            let src = format!("10.0.0.{}", i % 12);
            let dst = format!("198.51.100.{}", i / 2 % 12);
            n = tcp(&src, &dst, 1000 + i % 40, 2000 + i / 3 % 40, tcp_flag::SYN);
        }
        let p = packet(n);
        assert_eq!(c.decide(&p), evaluate(&rules, &iface_of, &p), "{p:?}");
    }
}

#[test]
fn a_network_holding_only_its_own_rules_hosts_stays_narrow() {
    // Its hosts share the /8's class: wide, the rule would take keys for
    // both (found by review: twice the entries, past the cap).
    let hosts = (1..=9).map(|i| format!("10.1.1.{i}")).collect::<Vec<_>>();
    let rules = [
        deny()
            .udp()
            .dport("53")
            .src(&format!("10.0.0.0/8,{}", hosts.join(","))),
        allow().udp().dport("54").src("10.2.0.1"),
    ];
    let n4 = "172.16.0.1";
    let c = check(
        &rules,
        &[
            (udp("10.1.1.1", n4, 1, 53), Some(0)),
            (udp("10.9.9.9", n4, 1, 53), Some(0)),
            (udp("10.2.0.1", n4, 1, 54), Some(1)),
        ],
    );
    let listed = &c.plan.key_masks[..c.plan.shape_count as usize];
    assert!(
        listed.iter().all(|m| m.src <= abi::NARROW_CLASS_MASK),
        "{listed:?}"
    );
}
