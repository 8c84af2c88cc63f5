//! Names both writers print: protocols, verdicts, TCP flags, ICMP types and
//! why the walk stopped.

use crate::abi::*;

/// Why parsing stopped early, by flag.
pub(crate) const FLAG_NAMES: [(u8, &str); 5] = [
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
    match (notice.ip_version, notice.l4_proto) {
        (6, proto) if proto != IPPROTO_AH && is_extension_header(6, proto) => "IPv6".into(),
        (4 | 6, proto) => match ip_protocol_name(notice.ip_version, proto) {
            Some(name) => name.into(),
            None => proto.to_string(),
        },
        _ => match notice.ether_type {
            _ if notice.depth == DEPTH_NONE => "?".into(),
            ETH_P_ARP => "ARP".into(),
            ETH_P_IP => "IPv4".into(),
            ETH_P_IPV6 => "IPv6".into(),
            other => format!("0x{other:04x}"),
        },
    }
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
/// F S R P, `.` for ACK, U E W — so SYN+ACK+ECE is `S.E`.
pub(crate) fn tcp_flags(flags: u8) -> String {
    use tcp_flag::*;
    const LETTERS: [(u8, char); 8] = [
        (FIN, 'F'),
        (SYN, 'S'),
        (RST, 'R'),
        (PSH, 'P'),
        (ACK, '.'),
        (URG, 'U'),
        (ECE, 'E'),
        (CWR, 'W'),
    ];
    let text: String = LETTERS
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|&(_, letter)| letter)
        .collect();
    if text.is_empty() {
        "none".into()
    } else {
        text
    }
}

pub(crate) fn icmp_name(icmp_type: u8, code: u8) -> String {
    match icmp_type {
        0 => "echo-reply".into(),
        3 => format!("unreachable/{code}"),
        8 => "echo-request".into(),
        11 => format!("time-exceeded/{code}"),
        _ => format!("type {icmp_type}/{code}"),
    }
}

pub(crate) fn icmpv6_name(icmp_type: u8, code: u8) -> String {
    match icmp_type {
        1 => format!("unreachable/{code}"),
        3 => format!("time-exceeded/{code}"),
        128 => "echo-request".into(),
        129 => "echo-reply".into(),
        133 => "router-solicit".into(),
        134 => "router-advert".into(),
        135 => "neighbor-solicit".into(),
        136 => "neighbor-advert".into(),
        143 => "mld2-report".into(),
        _ => format!("type {icmp_type}/{code}"),
    }
}
