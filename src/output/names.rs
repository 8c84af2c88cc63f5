//! Names both writers print: protocols, verdicts, TCP flags, ICMP types and
//! why the walk stopped.

use super::fields::{push_hex, push_num};
use super::text_of;
use crate::abi::*;

/// Why parsing stopped early, by flag.
pub(super) const FLAG_NAMES: [(u8, &str); 5] = [
    (FLAG_FRAGMENT, "fragment"),
    (FLAG_TRUNCATED, "truncated"),
    (FLAG_MALFORMED, "malformed"),
    (FLAG_EXT_LIMIT, "ext-limit"),
    (FLAG_VLAN_LIMIT, "vlan-limit"),
];

/// Short protocol name: the IP protocol (its number where it has no name
/// here), else the EtherType. Where the walk stopped inside the IPv6
/// extension headers the transport is unknown: `IPv6`.
pub fn protocol(notice: &Notice) -> String {
    text_of(|out| write_protocol(out, notice))
}

/// [`protocol`], written to `out`.
pub(super) fn write_protocol(out: &mut Vec<u8>, notice: &Notice) {
    let name = match (notice.ip_version, notice.l4_proto) {
        (6, proto) if proto != IPPROTO_AH && is_extension_header(6, proto) => "IPv6",
        (4 | 6, proto) => match ip_protocol_name(notice.ip_version, proto) {
            Some(name) => name,
            None => return push_num(out, proto),
        },
        _ => match notice.ether_type {
            _ if notice.depth == DEPTH_NONE => "?",
            ETH_P_ARP => "ARP",
            ETH_P_IP => "IPv4",
            ETH_P_IPV6 => "IPv6",
            other => {
                out.extend_from_slice(b"0x");
                return push_hex(out, other, 4);
            }
        },
    };
    out.extend_from_slice(name.as_bytes());
}

/// IANA's short names of the IP protocols worth naming; ICMP and ICMPv6
/// only in their own IP version.
fn ip_protocol_name(ip_version: u8, proto: u8) -> Option<&'static str> {
    Some(match (ip_version, proto) {
        (4, IPPROTO_ICMP) => "ICMP",
        (_, 2) => "IGMP",
        (_, 4) => "IPIP",
        (_, IPPROTO_TCP) => "TCP",
        (_, IPPROTO_UDP) => "UDP",
        (_, 41) => "IPv6",
        (_, 47) => "GRE",
        (_, IPPROTO_ESP) => "ESP",
        (_, IPPROTO_AH) => "AH",
        (6, IPPROTO_ICMPV6) => "ICMPv6",
        (_, 89) => "OSPF",
        (_, 103) => "PIM",
        (_, 112) => "VRRP",
        (_, 132) => "SCTP",
        _ => return None,
    })
}

pub fn verdict_name(verdict: u8) -> &'static str {
    match verdict {
        XDP_PASS => "PASS",
        XDP_DROP => "DROP",
        XDP_ABORTED => "ABORTED",
        _ => "?",
    }
}

/// tcpdump's letters in tcpdump's order (its `tcp_flag_values`, print-tcp.c):
/// F S R P, `.` for ACK, U E W — so SYN+ACK+ECE is `S.E`; `none` for none.
pub(super) fn write_tcp_flags(out: &mut Vec<u8>, flags: u8) {
    use tcp_flag::*;
    const LETTERS: [(u8, u8); 8] = [
        (FIN, b'F'),
        (SYN, b'S'),
        (RST, b'R'),
        (PSH, b'P'),
        (ACK, b'.'),
        (URG, b'U'),
        (ECE, b'E'),
        (CWR, b'W'),
    ];
    if flags == 0 {
        return out.extend_from_slice(b"none");
    }
    for (bit, letter) in LETTERS {
        if flags & bit != 0 {
            out.push(letter);
        }
    }
}

/// An ICMP type by name, or with its code where the code matters.
pub(super) fn write_icmp_name(out: &mut Vec<u8>, icmp_type: u8, code: u8) {
    match icmp_type {
        0 => out.extend_from_slice(b"echo-reply"),
        3 => with_code(out, "unreachable", code),
        8 => out.extend_from_slice(b"echo-request"),
        11 => with_code(out, "time-exceeded", code),
        _ => unnamed_type(out, icmp_type, code),
    }
}

/// An ICMPv6 type by name, or with its code where the code matters.
pub(super) fn write_icmpv6_name(out: &mut Vec<u8>, icmp_type: u8, code: u8) {
    let name: &str = match icmp_type {
        1 => return with_code(out, "unreachable", code),
        3 => return with_code(out, "time-exceeded", code),
        128 => "echo-request",
        129 => "echo-reply",
        133 => "router-solicit",
        134 => "router-advert",
        135 => "neighbor-solicit",
        136 => "neighbor-advert",
        143 => "mld2-report",
        _ => return unnamed_type(out, icmp_type, code),
    };
    out.extend_from_slice(name.as_bytes());
}

/// `unreachable/3`.
fn with_code(out: &mut Vec<u8>, name: &str, code: u8) {
    out.extend_from_slice(name.as_bytes());
    out.push(b'/');
    push_num(out, code);
}

/// `type 42/0`.
fn unnamed_type(out: &mut Vec<u8>, icmp_type: u8, code: u8) {
    out.extend_from_slice(b"type ");
    push_num(out, icmp_type);
    out.push(b'/');
    push_num(out, code);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp_flags(flags: u8) -> String {
        text_of(|out| write_tcp_flags(out, flags))
    }

    #[test]
    fn tcp_flags_read_like_tcpdump() {
        assert_eq!(tcp_flags(0x12), "S.");
        assert_eq!(tcp_flags(0x18), "P.");
        assert_eq!(tcp_flags(0x11), "F.");
        assert_eq!(tcp_flags(0x04), "R");
        assert_eq!(tcp_flags(0), "none");
    }

    /// What tcpdump 4.99.3 printed for the same flag bytes (`tcpdump -r` on
    /// crafted frames): its order is F S R P . U E W.
    #[test]
    fn tcp_flags_come_in_tcpdumps_order() {
        assert_eq!(tcp_flags(0x52), "S.E"); // SYN ACK ECE
        assert_eq!(tcp_flags(0xc2), "SEW"); // SYN ECE CWR
        assert_eq!(tcp_flags(0x29), "FPU");
        assert_eq!(tcp_flags(0xff), "FSRP.UEW");
    }
}
