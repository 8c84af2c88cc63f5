//! The rule sets the C twin is checked under besides the timed ones: rules
//! made from the check frames' own fields as xdp_hello read them (networks
//! of many lengths around their addresses in both directions, near misses,
//! ports, ICMP types, TCP flags, allows before the denies that cover them,
//! `log`), alone and after the bench's 10,000 mixed rules; and the
//! networks alone.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use xdp_hello::abi::{
    is_extension_header, Notice, DEPTH_L4, FLAG_FRAGMENT, FLAG_MALFORMED, IPPROTO_ICMP,
    IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP,
};
use xdp_hello::policy::MAX_RULES_PER_SET;

use crate::rulegen::{self, Shapes};

/// The mixed set the frames' rules follow: as large as the bench's largest.
const MIXED_RULES: usize = 10_000;
/// Prefix lengths the rules cut around an address, in the order the frames
/// take them: host first, then every kind of boundary (byte, nibble, odd
/// bits; IPv6 on both sides of the 64-bit halves the program compares apart).
const V4_LENGTHS: [u8; 10] = [32, 31, 28, 24, 23, 20, 16, 13, 12, 8];
const V6_LENGTHS: [u8; 16] = [
    128, 127, 120, 112, 96, 80, 72, 65, 64, 63, 56, 48, 40, 32, 16, 8,
];
/// TCP flag letters by bit, FIN first (as the rule language writes them).
const FLAG_LETTERS: &[u8; 8] = b"FSRPAUEW";
const SYN_ACK: u8 = 0x12;

/// A rule set to check the twin under, and its name for messages.
pub struct CheckSet {
    pub name: String,
    pub rules: Vec<String>,
}

/// The sets, made from xdp_hello's notices of the check frames (a frame
/// without a notice, or not IP, adds nothing).
pub fn sets(notices: &[Notice]) -> Vec<CheckSet> {
    let mut seen = HashSet::new();
    let fields: Vec<Fields> = notices
        .iter()
        .filter_map(Fields::of)
        .filter(|fields| seen.insert(fields.clone()))
        .collect();
    let frames = frame_rules(&fields);
    let mut mixed: Vec<String> = rulegen::rule_set(MIXED_RULES, Shapes::Mixed, crate::SEED)
        .iter()
        .map(rulegen::Rule::ours)
        .collect();
    mixed.extend(frames.iter().cloned());
    let mixed = distinct(mixed);
    assert!(
        mixed.len() <= MAX_RULES_PER_SET,
        "the mixed check set is too large"
    );
    // Alone, the networks decide: address-alone shapes, answered by the
    // class values of the address search.
    let mut networks = near_misses(&fields);
    networks.extend(address_networks(&fields));
    let networks = distinct(networks);
    vec![
        CheckSet {
            name: format!("{} rules from the frames' fields", frames.len()),
            rules: frames,
        },
        CheckSet {
            name: format!("{} networks around the frames' addresses", networks.len()),
            rules: networks,
        },
        CheckSet {
            name: format!(
                "{MIXED_RULES} mixed rules (seed {}), then the frames' ({} in all)",
                crate::SEED,
                mixed.len()
            ),
            rules: mixed,
        },
    ]
}

/// What the classifier looks up in a frame, as xdp_hello's notice of it
/// says; `None` where the walk did not read the field.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Fields {
    src: IpAddr,
    dst: IpAddr,
    proto: Option<u8>,
    ports: Option<(u16, u16)>,
    icmp: Option<(u8, u8)>,
    tcp_flags: Option<u8>,
}

impl Fields {
    /// The fields of a judgeable IP frame (a malformed one no rule sees).
    fn of(notice: &Notice) -> Option<Fields> {
        let v6 = match notice.ip_version {
            4 => false,
            6 => true,
            _ => return None,
        };
        if notice.flags & FLAG_MALFORMED != 0 {
            return None;
        }
        let address = |bytes: &[u8; 16]| -> IpAddr {
            if v6 {
                Ipv6Addr::from(*bytes).into()
            } else {
                Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).into()
            }
        };
        // Where the walk stopped inside an extension chain, the protocol is unknown.
        let proto = Some(notice.l4_proto).filter(|&p| !is_extension_header(notice.ip_version, p));
        let transport = notice.depth >= DEPTH_L4 && notice.flags & FLAG_FRAGMENT == 0;
        let of = |number: u8| transport && proto == Some(number);
        let icmp = if v6 { IPPROTO_ICMPV6 } else { IPPROTO_ICMP };
        Some(Fields {
            src: address(&notice.src_addr),
            dst: address(&notice.dst_addr),
            proto,
            ports: (of(IPPROTO_TCP) || of(IPPROTO_UDP))
                .then_some((notice.src_port, notice.dst_port)),
            icmp: of(icmp).then_some((notice.icmp_type, notice.icmp_code)),
            tcp_flags: of(IPPROTO_TCP).then_some(notice.tcp_flags),
        })
    }

    fn v6(&self) -> bool {
        self.src.is_ipv6()
    }
}

/// The rules of the frames' fields, in an order where each block decides
/// what the ones before leave: near misses (none match), a rule per frame
/// of several fields, the covering denies of those, protocol rules, then
/// every address's networks, which leave no judgeable frame undecided.
fn frame_rules(fields: &[Fields]) -> Vec<String> {
    let mut rules = near_misses(fields);
    rules.extend(fields.iter().enumerate().map(|(i, f)| one_frame(i, f)));
    rules.extend(
        fields
            .iter()
            .enumerate()
            .filter_map(|(i, f)| covering(i, f)),
    );
    rules.extend(protocol_rules(fields));
    rules.extend(address_networks(fields));
    distinct(rules)
}

/// Hosts one bit away from each address (the last bit, and in IPv6 the
/// last of the upper half too), denied and logged: in the frames' own
/// buckets, so a search that goes one range wrong hits them.
fn near_misses(fields: &[Fields]) -> Vec<String> {
    let taken: HashSet<IpAddr> = fields.iter().flat_map(|f| [f.src, f.dst]).collect();
    let mut rules = Vec::new();
    for (word, addr) in directions(fields) {
        let bits: &[u32] = if addr.is_ipv6() { &[0, 64] } else { &[0] };
        for &bit in bits {
            let near = flip(addr, bit);
            if !taken.contains(&near) {
                rules.push(format!("deny {word} {near} log"));
            }
        }
    }
    rules
}

/// Rule `i`, for frame `i`: one of five shapes, the first that fits it from
/// `i` on (address and ports, ports and the other address, TCP flags, ICMP
/// type and code, protocol and both addresses), at a prefix length of its
/// own; allow and deny by turns, every third logged.
fn one_frame(i: usize, f: &Fields) -> String {
    let (src, dst) = (around(f.src, i), around(f.dst, i + 1));
    let shapes = [
        f.ports
            .map(|(s, d)| format!("{} sport {s} dport {d} src {src}", transport(f))),
        f.ports
            .map(|(_, d)| format!("{} dport {d} dst {dst}", transport(f))),
        f.tcp_flags.map(|flags| {
            if i % 2 == 0 {
                format!("tcp flags {}/FSRPAUEW dst {dst}", letters(flags))
            } else {
                format!("tcp flags {}/SA src {src}", letters(flags & SYN_ACK))
            }
        }),
        f.icmp.map(|(kind, code)| {
            let word = if f.v6() { "icmpv6" } else { "icmp" };
            format!("{word} type {kind} code {code} src {src}")
        }),
        f.proto
            .map(|proto| format!("proto {proto} src {src} dst {dst}")),
    ];
    let matches = (0..shapes.len())
        .find_map(|k| shapes[(i + k) % shapes.len()].clone())
        .unwrap_or_else(|| format!("src {src} dst {dst}"));
    let action = if i % 2 == 0 { "allow" } else { "deny" };
    let log = if i % 3 == 0 { " log" } else { "" };
    format!("{action} {matches}{log}")
}

/// A deny that covers frame `i`'s ports rule and more: its destination
/// port from a network 8 bits shorter, so the allows among them decide
/// their own frame and the deny the others.
fn covering(i: usize, f: &Fields) -> Option<String> {
    let (_, dport) = f.ports?;
    let len = lengths(f.src)[i % lengths(f.src).len()]
        .saturating_sub(8)
        .max(8);
    Some(format!(
        "deny {} dport {dport} src {}",
        transport(f),
        net(f.src, len)
    ))
}

/// A rule a protocol for what the per-frame rules left: ICMP types and
/// codes as lists, TCP flags under a mask, UDP source ports, any other
/// protocol by number.
fn protocol_rules(fields: &[Fields]) -> Vec<String> {
    let list = |items: &mut Vec<String>| {
        items.sort();
        items.dedup();
        items.join(",")
    };
    let mut rules = Vec::new();
    for (v6, word) in [(false, "icmp"), (true, "icmpv6")] {
        let mut types: Vec<String> = fields
            .iter()
            .filter(|f| f.v6() == v6)
            .filter_map(|f| f.icmp.map(|(kind, _)| kind.to_string()))
            .collect();
        if !types.is_empty() {
            rules.push(format!("deny {word} type {} log", list(&mut types)));
        }
    }
    rules.push("allow tcp flags S/SA log".into());
    rules.push("deny tcp flags A/SA".into());
    let mut sports: Vec<String> = fields
        .iter()
        .filter(|f| f.proto == Some(IPPROTO_UDP))
        .filter_map(|f| f.ports.map(|(s, _)| s.to_string()))
        .collect();
    if !sports.is_empty() {
        rules.push(format!("allow udp sport {}", list(&mut sports)));
    }
    let mut others: Vec<String> = fields
        .iter()
        .filter_map(|f| f.proto)
        .filter(|p| ![IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6].contains(p))
        .map(|p| p.to_string())
        .collect();
    if !others.is_empty() {
        rules.push(format!("deny proto {} log", list(&mut others)));
    }
    rules
}

/// Every address, as source and as destination, in a network of every
/// length of its family, starting at a length of its own: the long ones
/// allowed, the short ones that cover them denied, every fourth logged.
fn address_networks(fields: &[Fields]) -> Vec<String> {
    let mut rules = Vec::new();
    for (n, (word, addr)) in directions(fields).into_iter().enumerate() {
        let lens = lengths(addr);
        for k in 0..lens.len() {
            let len = lens[(n + k) % lens.len()];
            let long = u32::from(len) * 2 > u32::from(max_len(addr));
            let action = if long { "allow" } else { "deny" };
            let log = if (n + k) % 4 == 0 { " log" } else { "" };
            rules.push(format!("{action} {word} {}{log}", net(addr, len)));
        }
    }
    rules
}

/// Each address the frames have, once as `src` and once as `dst` where it
/// is one, in the order the frames give them.
fn directions(fields: &[Fields]) -> Vec<(&'static str, IpAddr)> {
    let mut seen = HashSet::new();
    fields
        .iter()
        .flat_map(|f| [("src", f.src), ("dst", f.dst)])
        .filter(|pair| seen.insert(*pair))
        .collect()
}

/// `tcp` or `udp`: the protocol of a frame with ports.
fn transport(f: &Fields) -> &'static str {
    if f.proto == Some(IPPROTO_TCP) {
        "tcp"
    } else {
        "udp"
    }
}

/// The network of the `i`-th length of its family around `addr`.
fn around(addr: IpAddr, i: usize) -> String {
    let lens = lengths(addr);
    net(addr, lens[i % lens.len()])
}

fn lengths(addr: IpAddr) -> &'static [u8] {
    if addr.is_ipv6() {
        &V6_LENGTHS
    } else {
        &V4_LENGTHS
    }
}

fn max_len(addr: IpAddr) -> u8 {
    if addr.is_ipv6() {
        128
    } else {
        32
    }
}

/// `addr/len` as the rule language writes it: a host without its length.
fn net(addr: IpAddr, len: u8) -> String {
    if len == max_len(addr) {
        return addr.to_string();
    }
    IpNet::new(addr, len)
        .expect("a length of the family")
        .trunc()
        .to_string()
}

/// `addr` with bit `bit` (0: the last) flipped.
fn flip(addr: IpAddr, bit: u32) -> IpAddr {
    match addr {
        IpAddr::V4(a) => Ipv4Addr::from(u32::from(a) ^ 1 << bit).into(),
        IpAddr::V6(a) => Ipv6Addr::from(u128::from(a) ^ 1 << bit).into(),
    }
}

/// TCP flags in the rule language's letters.
fn letters(flags: u8) -> String {
    (0..8)
        .filter(|bit| flags & 1 << bit != 0)
        .map(|bit| char::from(FLAG_LETTERS[bit]))
        .collect()
}

/// The rules without a later one of the same match (xdp-hello refuses a
/// match given twice, whatever the action or `log`).
fn distinct(rules: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    rules
        .into_iter()
        .filter(|rule| {
            let words: Vec<&str> = rule.split_whitespace().collect();
            let matches = words[1..].iter().filter(|w| **w != "log");
            seen.insert(matches.copied().collect::<Vec<_>>().join(" "))
        })
        .collect()
}
