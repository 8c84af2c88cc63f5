//! Seeded rule sets for the bench: rules of mixed shape (prefixes of every
//! length in both families, port ranges and lists, protocols, ICMP types),
//! none of which matches a probe frame, closed by the rule that matches the
//! "late" probes; rendered as xdp-hello rules and as nftables rules.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use xdp_hello::abi::{XDP_DROP, XDP_PASS};

use crate::frames;

/// Which rules the generator writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shapes {
    /// One field a rule (`deny src 10.0.0.0/8`, `allow tcp dport 80-90`):
    /// what the binary accepts before ordered rules land.
    OneField,
    /// Several fields a rule and lists (`allow tcp dport 22,80 src 10.0.0.0/24`).
    Mixed,
}

impl Shapes {
    pub fn name(self) -> &'static str {
        match self {
            Shapes::OneField => "one-field",
            Shapes::Mixed => "mixed",
        }
    }
}

/// Addresses a generated network must not contain: the probes', and the
/// veth's own (the flooding sender's frames must pass every set).
const PROTECTED_V4: [Ipv4Addr; 5] = [
    frames::LATE_V4,
    frames::NONE_V4,
    frames::DST_V4,
    xdp_hello::selftest::veth::A_V4,
    xdp_hello::selftest::veth::B_V4,
];
const PROTECTED_V6: [Ipv6Addr; 5] = [
    frames::LATE_V6,
    frames::NONE_V6,
    frames::DST_V6,
    xdp_hello::selftest::veth::A_V6,
    xdp_hello::selftest::veth::B_V6,
];
/// Ports a generated port list must not hold: the probes' and the sender's.
const PROTECTED_PORTS: [u16; 5] = [
    frames::SPORT_V4,
    frames::DPORT_V4,
    frames::SPORT_V6,
    frames::DPORT_V6,
    9,
];
/// Protocols neither probe carries, as ours and nftables write them (not
/// AH: the walk looks through it, so no rule may name it).
const OTHER_PROTOCOLS: [(&str, u8); 4] = [("esp", 50), ("gre", 47), ("sctp", 132), ("89", 89)];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    Other(&'static str, u8),
}

/// One rule, field by field; empty lists are fields it does not give.
#[derive(Clone, Debug)]
pub struct Rule {
    pub deny: bool,
    pub proto: Option<Proto>,
    pub src: Vec<IpNet>,
    pub dst: Vec<IpNet>,
    pub sport: Vec<(u16, u16)>,
    pub dport: Vec<(u16, u16)>,
    pub icmp_types: Vec<u8>,
}

impl Rule {
    fn new(deny: bool) -> Rule {
        Rule {
            deny,
            proto: None,
            src: Vec::new(),
            dst: Vec::new(),
            sport: Vec::new(),
            dport: Vec::new(),
            icmp_types: Vec::new(),
        }
    }

    /// `deny src HOST`.
    pub fn deny_src(host: IpAddr) -> Rule {
        Rule {
            src: vec![host.into()],
            ..Rule::new(true)
        }
    }

    /// The rule in xdp-hello's language.
    pub fn ours(&self) -> String {
        let mut line = String::from(if self.deny { "deny" } else { "allow" });
        match self.proto {
            Some(Proto::Tcp) => line.push_str(" tcp"),
            Some(Proto::Udp) => line.push_str(" udp"),
            Some(Proto::Icmp) => line.push_str(" icmp"),
            Some(Proto::Icmpv6) => line.push_str(" icmpv6"),
            Some(Proto::Other(name, _)) => write!(line, " proto {name}").unwrap(),
            None => {}
        }
        let joined = |items: Vec<String>| items.join(",");
        for (word, nets) in [("src", &self.src), ("dst", &self.dst)] {
            if !nets.is_empty() {
                write!(
                    line,
                    " {word} {}",
                    joined(nets.iter().map(host_or_net).collect())
                )
                .unwrap();
            }
        }
        for (word, ports) in [("sport", &self.sport), ("dport", &self.dport)] {
            if !ports.is_empty() {
                write!(
                    line,
                    " {word} {}",
                    joined(ports.iter().map(port_range).collect())
                )
                .unwrap();
            }
        }
        if !self.icmp_types.is_empty() {
            let types = self.icmp_types.iter().map(u8::to_string).collect();
            write!(line, " type {}", joined(types)).unwrap();
        }
        line
    }

    /// The same rule as nftables rules (`ip saddr … tcp dport { … } drop`):
    /// one a family its address lists hold, as nftables matches `ip` and
    /// `ip6` addresses apart; the same packets match.
    pub fn nft(&self) -> Vec<String> {
        let given = !self.src.is_empty() || !self.dst.is_empty();
        if !given {
            let family = match self.proto {
                Some(Proto::Icmp) => Some(false),
                Some(Proto::Icmpv6) => Some(true),
                _ => None,
            };
            return vec![self.nft_of(family, &[], &[])];
        }
        [false, true]
            .into_iter()
            .filter_map(|v6| {
                let of_family = |nets: &[IpNet]| -> Vec<IpNet> {
                    nets.iter()
                        .copied()
                        .filter(|net| net.addr().is_ipv6() == v6)
                        .collect()
                };
                let (src, dst) = (of_family(&self.src), of_family(&self.dst));
                // A field given with no network of this family matches none of its packets.
                let possible = (self.src.is_empty() || !src.is_empty())
                    && (self.dst.is_empty() || !dst.is_empty())
                    && self.proto != Some(if v6 { Proto::Icmp } else { Proto::Icmpv6 });
                possible.then(|| self.nft_of(Some(v6), &src, &dst))
            })
            .collect()
    }

    /// One nftables rule: `v6` None when no match needs the family.
    fn nft_of(&self, v6: Option<bool>, src: &[IpNet], dst: &[IpNet]) -> String {
        let set = |items: Vec<String>| {
            if items.len() == 1 {
                items[0].clone()
            } else {
                format!("{{ {} }}", items.join(", "))
            }
        };
        let mut parts = Vec::new();
        match self.proto {
            Some(Proto::Other(_, number)) => parts.push(format!("meta l4proto {number}")),
            // The port matches below imply their protocol.
            Some(Proto::Tcp) if self.sport.is_empty() && self.dport.is_empty() => {
                parts.push("meta l4proto tcp".into())
            }
            Some(Proto::Udp) if self.sport.is_empty() && self.dport.is_empty() => {
                parts.push("meta l4proto udp".into())
            }
            _ => {}
        }
        let family = if v6 == Some(true) { "ip6" } else { "ip" };
        for (word, nets) in [("saddr", src), ("daddr", dst)] {
            if !nets.is_empty() {
                parts.push(format!(
                    "{family} {word} {}",
                    set(nets.iter().map(host_or_net).collect())
                ));
            }
        }
        let transport = match self.proto {
            Some(Proto::Udp) => "udp",
            _ => "tcp",
        };
        for (word, ports) in [("sport", &self.sport), ("dport", &self.dport)] {
            if !ports.is_empty() {
                parts.push(format!(
                    "{transport} {word} {}",
                    set(ports.iter().map(port_range).collect())
                ));
            }
        }
        // `icmp type` implies its protocol; alone, the protocol is matched.
        match self.proto {
            Some(Proto::Icmp) if self.icmp_types.is_empty() => {
                parts.push("meta l4proto icmp".into())
            }
            Some(Proto::Icmpv6) if self.icmp_types.is_empty() => {
                parts.push("meta l4proto ipv6-icmp".into())
            }
            _ => {}
        }
        if !self.icmp_types.is_empty() {
            let word = if v6 == Some(true) { "icmpv6" } else { "icmp" };
            let types = self.icmp_types.iter().map(u8::to_string).collect();
            parts.push(format!("{word} type {}", set(types)));
        }
        parts.push(if self.deny { "drop" } else { "accept" }.into());
        parts.join(" ")
    }
}

fn host_or_net(net: &IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

fn port_range(&(low, high): &(u16, u16)) -> String {
    if low == high {
        low.to_string()
    } else {
        format!("{low}-{high}")
    }
}

/// `count` rules: `count - 1` (or `- 2`) that match no probe, then the
/// rule(s) the late probes match — last, so a first-match walk reaches them
/// after all the others. The same seed gives the same set.
pub fn rule_set(count: usize, shapes: Shapes, seed: u64) -> Vec<Rule> {
    let mut generator = Generator::new(seed, shapes);
    let late = late_rules(shapes);
    let fillers = count.saturating_sub(late.len());
    // xdp-hello refuses a match given twice, whatever the actions.
    let mut seen = std::collections::HashSet::new();
    let mut rules = Vec::with_capacity(count);
    while rules.len() < fillers {
        let rule = generator.rule();
        let text = rule.ours();
        let (_action, matches) = text.split_once(' ').expect("a rule with fields");
        if seen.insert(matches.to_string()) {
            rules.push(rule);
        }
    }
    // One-field rules cannot list both families: with a single rule, only
    // the IPv4 late probe has its match.
    rules.extend(late.into_iter().rev().take(count).rev());
    rules
}

/// The rules the late probes match, last in every set.
fn late_rules(shapes: Shapes) -> Vec<Rule> {
    let late = |addrs: &[IpAddr]| Rule {
        src: addrs.iter().map(|&a| IpNet::from(a)).collect(),
        ..Rule::new(true)
    };
    let (v4, v6) = (IpAddr::V4(frames::LATE_V4), IpAddr::V6(frames::LATE_V6));
    match shapes {
        Shapes::OneField => vec![late(&[v6]), late(&[v4])],
        Shapes::Mixed => vec![late(&[v4, v6])],
    }
}

/// `count` distinct host addresses, both families, none a probe's; the last
/// two are the late probes' sources: the address lists xdp-filter is given.
pub fn host_list(count: usize, seed: u64) -> Vec<IpAddr> {
    let mut generator = Generator::new(seed, Shapes::OneField);
    let mut seen = std::collections::HashSet::new();
    let mut hosts = Vec::with_capacity(count);
    while hosts.len() + 2 < count {
        let host = generator.network(hosts.len() % 2 == 1, true).addr();
        if seen.insert(host) {
            hosts.push(host);
        }
    }
    hosts.extend([IpAddr::V6(frames::LATE_V6), IpAddr::V4(frames::LATE_V4)]);
    hosts
}

struct Generator {
    rng: fastrand::Rng,
    shapes: Shapes,
    /// Ports one-field rules hold so far, by kind (see `disjoint_port_range`).
    taken_ports: Vec<Vec<bool>>,
}

impl Generator {
    fn new(seed: u64, shapes: Shapes) -> Generator {
        Generator {
            rng: fastrand::Rng::with_seed(seed),
            shapes,
            taken_ports: vec![vec![false; 1 << 16]; 4],
        }
    }

    fn rule(&mut self) -> Rule {
        let mut rule = Rule::new(self.rng.bool());
        let v6 = self.rng.u8(..4) == 0;
        match self.shapes {
            Shapes::OneField => match self.rng.u8(..10) {
                0..=3 => rule.src = vec![self.network(v6, false)],
                4..=5 => rule.dst = vec![self.network(v6, false)],
                6..=7 => {
                    let (tcp, dport) = (self.rng.bool(), self.rng.bool());
                    rule.proto = Some(if tcp { Proto::Tcp } else { Proto::Udp });
                    let ports =
                        vec![self.disjoint_port_range(usize::from(tcp) * 2 + usize::from(dport))];
                    if dport {
                        rule.dport = ports;
                    } else {
                        rule.sport = ports;
                    }
                }
                8 => rule.proto = Some(self.other_protocol()),
                _ => {
                    rule.proto = Some(if v6 { Proto::Icmpv6 } else { Proto::Icmp });
                    rule.icmp_types = vec![self.rng.u8(..)];
                }
            },
            Shapes::Mixed => match self.rng.u8(..10) {
                0..=2 => rule.src = self.networks(v6),
                3 => rule.dst = self.networks(v6),
                4 => (rule.src, rule.dst) = (self.networks(v6), self.networks(v6)),
                5..=6 => {
                    rule.proto = Some(if self.rng.bool() {
                        Proto::Tcp
                    } else {
                        Proto::Udp
                    });
                    rule.dport = self.port_list();
                    if self.rng.bool() {
                        rule.src = self.networks(v6);
                    } else {
                        rule.sport = self.port_list();
                    }
                }
                7 => {
                    rule.proto = Some(self.other_protocol());
                    rule.dst = self.networks(v6);
                }
                _ => {
                    rule.proto = Some(if v6 { Proto::Icmpv6 } else { Proto::Icmp });
                    rule.icmp_types = (0..self.rng.usize(1..=4))
                        .map(|_| self.rng.u8(..))
                        .collect();
                    if self.rng.bool() {
                        rule.src = self.networks(v6);
                    }
                }
            },
        }
        rule
    }

    /// A list of one to four networks of one family.
    fn networks(&mut self, v6: bool) -> Vec<IpNet> {
        (0..self.rng.usize(1..=4))
            .map(|_| self.network(v6, false))
            .collect()
    }

    /// A network containing no protected address: mostly long prefixes, as
    /// real sets hold, one in fifty of any length at all (more, and the short
    /// ones shadow much of what follows). `host`: a /32 or /128.
    fn network(&mut self, v6: bool, host: bool) -> IpNet {
        loop {
            let bits = if v6 { 128 } else { 32 };
            let len = if host {
                bits
            } else if self.rng.u8(..50) == 0 {
                self.rng.u8(1..=bits)
            } else {
                self.rng.u8(bits / 2..=bits)
            };
            let net = if v6 {
                IpNet::V6(
                    Ipv6Net::new(Ipv6Addr::from(self.rng.u128(..)), len)
                        .unwrap()
                        .trunc(),
                )
            } else {
                IpNet::V4(
                    Ipv4Net::new(Ipv4Addr::from(self.rng.u32(..)), len)
                        .unwrap()
                        .trunc(),
                )
            };
            let holds_protected = PROTECTED_V4
                .iter()
                .map(|&a| IpAddr::V4(a))
                .chain(PROTECTED_V6.iter().map(|&a| IpAddr::V6(a)))
                .any(|a| net.contains(&a));
            if !holds_protected {
                return net;
            }
        }
    }

    /// A port or a range holding no protected port: mostly single ports,
    /// some short ranges, a few of up to 1,000 — wide ranges that overlap
    /// each other split the port space into many classes.
    fn port_range(&mut self) -> (u16, u16) {
        loop {
            let low = self.rng.u16(1..);
            let width = match self.rng.u8(..100) {
                0..=69 => 0,
                70..=94 => self.rng.u16(1..16),
                _ => self.rng.u16(16..1000),
            };
            let high = low.saturating_add(width);
            if !PROTECTED_PORTS.iter().any(|p| (low..=high).contains(p)) {
                return (low, high);
            }
        }
    }

    /// A port range that overlaps no earlier one of its kind (`kind`: TCP or
    /// UDP, source or destination), short enough that thousands fit: today's
    /// binary refuses overlapping ranges of one kind.
    fn disjoint_port_range(&mut self, kind: usize) -> (u16, u16) {
        loop {
            let low = self.rng.u16(1..);
            let high = if self.rng.bool() {
                low
            } else {
                low.saturating_add(self.rng.u16(1..50))
            };
            let ports = usize::from(low)..=usize::from(high);
            let taken = &mut self.taken_ports[kind];
            if PROTECTED_PORTS.iter().any(|p| (low..=high).contains(p))
                || taken[ports.clone()].iter().any(|&t| t)
            {
                continue;
            }
            taken[ports].fill(true);
            return (low, high);
        }
    }

    fn port_list(&mut self) -> Vec<(u16, u16)> {
        (0..self.rng.usize(1..=4))
            .map(|_| self.port_range())
            .collect()
    }

    fn other_protocol(&mut self) -> Proto {
        let (name, number) = OTHER_PROTOCOLS[self.rng.usize(..OTHER_PROTOCOLS.len())];
        Proto::Other(name, number)
    }
}

/// The XDP verdict `rules` give a probe from `src` (default allow): drop
/// only by a late rule, as no other network holds a probe's address.
pub fn verdict(rules: &[Rule], src: IpAddr) -> u32 {
    let denied = rules
        .iter()
        .any(|rule| rule.deny && rule.src.iter().any(|net| net.contains(&src)));
    u32::from(if denied { XDP_DROP } else { XDP_PASS })
}

/// The rules as a file for `--rules`, one a line.
pub fn ours_file(rules: &[Rule]) -> String {
    rules.iter().map(|rule| rule.ours() + "\n").collect()
}
