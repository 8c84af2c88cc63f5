//! The matching spec as code: which rule decides a packet, one rule at a time.
//!
//! This is the reference the classifier (`crate::classify`) is tested
//! against; it is meant to be read, not to be fast.

use std::net::IpAddr;

use super::{Action, ByteRange, PortRange, Rule};
use crate::abi;

/// A packet field as the walk left it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field<T> {
    /// The walk read it.
    Known(T),
    /// The packet should have it but the walk could not read it (a cut
    /// header, a stop in the extension chain).
    Unknown,
    /// The packet has no such field (ports of ICMP, flags of UDP, any
    /// transport field of a non-first fragment).
    Absent,
}

/// What the rules see of an IP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    pub ifindex: u32,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The transport protocol; `None` when the walk stopped inside the
    /// extension chain.
    pub proto: Option<u8>,
    pub sport: Field<u16>,
    pub dport: Field<u16>,
    /// ICMP (in IPv4) or ICMPv6 (in IPv6) type and code.
    pub icmp: Field<(u8, u8)>,
    /// TCP flags, FIN in bit 0.
    pub flags: Field<u8>,
}

impl Packet {
    /// The packet a notice describes; `None` for non-IP.
    pub fn from_notice(n: &abi::Notice) -> Option<Packet> {
        let v4 = |a: [u8; 16]| IpAddr::from([a[0], a[1], a[2], a[3]]);
        let (src, dst) = match n.ip_version {
            4 => (v4(n.src_addr), v4(n.dst_addr)),
            6 => (IpAddr::from(n.src_addr), IpAddr::from(n.dst_addr)),
            _ => return None,
        };
        let header_read = n.depth >= abi::DEPTH_L4;
        // A non-first fragment has no transport header: its fields are
        // absent, not unknown (as in iptables and nftables).
        let fragment = n.flags & abi::FLAG_FRAGMENT != 0;
        let proto = if abi::is_extension_header(n.ip_version, n.l4_proto) && !header_read {
            None
        } else {
            Some(n.l4_proto)
        };
        let icmp_proto = if n.ip_version == 4 {
            abi::IPPROTO_ICMP
        } else {
            abi::IPPROTO_ICMPV6
        };
        let (mut sport, mut dport, mut icmp, mut flags) =
            (Field::Absent, Field::Absent, Field::Absent, Field::Absent);
        match proto {
            None => {
                (sport, dport) = (Field::Unknown, Field::Unknown);
                (icmp, flags) = (Field::Unknown, Field::Unknown);
            }
            Some(p @ (abi::IPPROTO_TCP | abi::IPPROTO_UDP)) => {
                sport = read(header_read, fragment, n.src_port);
                dport = read(header_read, fragment, n.dst_port);
                if p == abi::IPPROTO_TCP {
                    flags = read(header_read, fragment, n.tcp_flags);
                }
            }
            Some(p) if p == icmp_proto => {
                icmp = read(header_read, fragment, (n.icmp_type, n.icmp_code))
            }
            Some(_) => {}
        }
        Some(Packet {
            ifindex: n.ifindex,
            src,
            dst,
            proto,
            sport,
            dport,
            icmp,
            flags,
        })
    }
}

/// A transport field of a packet that has it: known if the walk read it,
/// absent from a non-first fragment, unknown where the header was cut.
fn read<T>(header_read: bool, fragment: bool, value: T) -> Field<T> {
    match (header_read, fragment) {
        (true, _) => Field::Known(value),
        (false, true) => Field::Absent,
        (false, false) => Field::Unknown,
    }
}

/// The index of the first rule that matches `packet`; `None`: the default
/// decides. `iface_of` gives the ifindex of an interface name.
pub fn evaluate(
    rules: &[Rule],
    iface_of: &dyn Fn(&str) -> Option<u32>,
    packet: &Packet,
) -> Option<usize> {
    rules
        .iter()
        .position(|rule| matches(rule, iface_of, packet))
}

fn matches(rule: &Rule, iface_of: &dyn Fn(&str) -> Option<u32>, packet: &Packet) -> bool {
    let m = &rule.matches;
    let deny = rule.action == Action::Deny;
    // Fail closed: what the walk could not read matches a deny, not an allow.
    let field = |field: Field<bool>| match field {
        Field::Known(admitted) => admitted,
        Field::Unknown => deny,
        Field::Absent => false,
    };
    let proto = match packet.proto {
        Some(p) => Field::Known(p),
        None => Field::Unknown,
    };
    let in_ranges = |ranges: &[PortRange], port: u16| ranges.iter().any(|r| r.contains(&port));
    let in_bytes = |ranges: &[ByteRange], byte: u8| ranges.iter().any(|r| r.contains(&byte));
    m.protos
        .as_ref()
        .is_none_or(|protos| field(map(proto, |p| protos.contains(&p))))
        && m.src
            .as_ref()
            .is_none_or(|nets| nets.iter().any(|n| n.contains(&packet.src)))
        && m.dst
            .as_ref()
            .is_none_or(|nets| nets.iter().any(|n| n.contains(&packet.dst)))
        && m.sport
            .as_ref()
            .is_none_or(|ports| field(map(packet.sport, |p| in_ranges(ports, p))))
        && m.dport
            .as_ref()
            .is_none_or(|ports| field(map(packet.dport, |p| in_ranges(ports, p))))
        && m.icmp_types
            .as_ref()
            .is_none_or(|types| field(map(packet.icmp, |(t, _)| in_bytes(types, t))))
        && m.icmp_codes
            .as_ref()
            .is_none_or(|codes| field(map(packet.icmp, |(_, c)| in_bytes(codes, c))))
        && m.tcp_flags
            .is_none_or(|f| field(map(packet.flags, |v| v & f.mask == f.value)))
        && m.iface
            .as_ref()
            .is_none_or(|name| iface_of(name) == Some(packet.ifindex))
}

fn map<T, U>(field: Field<T>, f: impl FnOnce(T) -> U) -> Field<U> {
    match field {
        Field::Known(value) => Field::Known(f(value)),
        Field::Unknown => Field::Unknown,
        Field::Absent => Field::Absent,
    }
}
