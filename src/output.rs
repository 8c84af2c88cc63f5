//! Notices as lines: text (a column header, then one line per packet) or
//! JSON Lines (one object per packet, for `jq` and friends).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use crate::abi::*;
use crate::iface;

/// Widths (in characters) of the fixed columns, each enough for the widest
/// value of its column: an interface name of IFNAMSIZ - 1 bytes, a frame of
/// 65535 bytes, `ICMPv6`, `DROP`. The flow (up to two full-length IPv6
/// endpoints) and the detail come last, where their width breaks nothing.
const TIME_WIDTH: usize = 16;
const IFACE_WIDTH: usize = libc::IF_NAMESIZE - 1;
const LEN_WIDTH: usize = 5;
const PROTO_WIDTH: usize = 7;
const VERDICT_WIDTH: usize = 7;

/// The column header, aligned with [`format_line`] (a test checks it).
pub const HEADER: &str =
    "TIME             IFACE             LEN PROTO   VERDICT SOURCE → DESTINATION  DETAIL";

/// How notices are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Text,
    Json,
}

/// Formats notices; remembers interface names and how to turn the kernel's
/// monotonic timestamps into wall-clock time.
pub struct Formatter {
    style: Style,
    monotonic_to_realtime_ns: i128,
    iface_names: HashMap<u32, String>,
}

impl Formatter {
    pub fn new(style: Style) -> Self {
        let offset = clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_MONOTONIC);
        Formatter {
            style,
            monotonic_to_realtime_ns: offset,
            iface_names: HashMap::new(),
        }
    }

    /// The column header, where the style has one.
    pub fn header(&self) -> Option<&'static str> {
        (self.style == Style::Text).then_some(HEADER)
    }

    /// One line (without the newline) for `notice`.
    pub fn line(&mut self, notice: &Notice) -> String {
        let realtime_ns = notice.timestamp_ns as i128 + self.monotonic_to_realtime_ns;
        let iface = self
            .iface_names
            .entry(notice.ifindex)
            .or_insert_with(|| iface::name_of(notice.ifindex));
        match self.style {
            Style::Text => format_line(&local_time(realtime_ns), iface, notice),
            Style::Json => json_line(realtime_ns, iface, notice),
        }
    }
}

/// A notice as JSON: every field, with names and units spelled out.
#[derive(Serialize)]
struct JsonNotice<'a> {
    /// Nanoseconds since the Unix epoch.
    time_ns: i128,
    iface: &'a str,
    ifindex: u32,
    rx_queue: u32,
    len: u32,
    eth_src: Option<String>,
    eth_dst: Option<String>,
    ether_type: u16,
    /// The ids of the first two VLAN tags (0: a priority tag).
    vlan: Vec<u16>,
    /// How many VLAN tags there were, up to MAX_VLAN_TAGS.
    vlan_tags: u8,
    ip_version: u8,
    proto: String,
    /// The IP protocol number behind `proto`, for IP packets.
    ip_proto: Option<u8>,
    /// IP addresses; for ARP, the sender's and the target's.
    src: Option<String>,
    dst: Option<String>,
    /// ARP operation (1 request, 2 reply) and hardware addresses.
    arp_op: Option<u8>,
    arp_sender_mac: Option<String>,
    arp_target_mac: Option<String>,
    sport: Option<u16>,
    dport: Option<u16>,
    icmp_type: Option<u8>,
    icmp_code: Option<u8>,
    tcp_flags: Option<String>,
    verdict: &'static str,
    rule: Option<u32>,
    depth: &'static str,
    flags: Vec<&'static str>,
}

/// The JSON line for `notice`.
pub fn json_line(realtime_ns: i128, iface: &str, notice: &Notice) -> String {
    let ports = has_ports(notice);
    let icmp = notice.depth >= DEPTH_L4
        && matches!(
            (notice.ip_version, notice.l4_proto),
            (4, IPPROTO_ICMP) | (6, IPPROTO_ICMPV6)
        );
    let tcp = notice.depth >= DEPTH_L4 && notice.l4_proto == IPPROTO_TCP;
    let ethernet = notice.depth >= DEPTH_L2;
    let arp = arp(notice);
    let record = JsonNotice {
        time_ns: realtime_ns,
        iface,
        ifindex: notice.ifindex,
        rx_queue: notice.rx_queue,
        len: notice.packet_len,
        eth_src: ethernet.then(|| mac(&notice.eth_src)),
        eth_dst: ethernet.then(|| mac(&notice.eth_dst)),
        ether_type: notice.ether_type,
        vlan: vlan_ids(notice).collect(),
        vlan_tags: notice.vlan_count,
        ip_version: notice.ip_version,
        proto: protocol(notice),
        ip_proto: matches!(notice.ip_version, 4 | 6).then_some(notice.l4_proto),
        src: address(notice, &notice.src_addr),
        dst: address(notice, &notice.dst_addr),
        arp_op: arp.as_ref().map(|arp| arp.op),
        arp_sender_mac: arp.as_ref().map(|arp| mac(&arp.sender_mac)),
        arp_target_mac: arp.as_ref().map(|arp| mac(&arp.target_mac)),
        sport: ports.then_some(notice.src_port),
        dport: ports.then_some(notice.dst_port),
        icmp_type: icmp.then_some(notice.icmp_type),
        icmp_code: icmp.then_some(notice.icmp_code),
        tcp_flags: tcp.then(|| tcp_flags(notice.tcp_flags)),
        verdict: verdict_name(notice.verdict),
        rule: (notice.rule_id != RULE_NONE).then_some(notice.rule_id),
        depth: match notice.depth {
            DEPTH_L2 => "l2",
            DEPTH_L3 => "l3",
            DEPTH_L4 => "l4",
            _ => "none",
        },
        flags: FLAG_NAMES
            .iter()
            .filter(|(flag, _)| notice.flags & flag != 0)
            .map(|&(_, name)| name)
            .collect(),
    };
    serde_json::to_string(&record).expect("a notice always serializes")
}

/// Why parsing stopped early, by flag.
const FLAG_NAMES: [(u8, &str); 5] = [
    (FLAG_FRAGMENT, "fragment"),
    (FLAG_TRUNCATED, "truncated"),
    (FLAG_MALFORMED, "malformed"),
    (FLAG_EXT_LIMIT, "ext-limit"),
    (FLAG_VLAN_LIMIT, "vlan-limit"),
];

/// The line for `notice`, given its time and interface name already.
pub fn format_line(time: &str, iface: &str, notice: &Notice) -> String {
    let flow = match (source(notice), destination(notice)) {
        (Some(src), Some(dst)) => format!("{src} → {dst}"),
        _ => "-".to_string(),
    };
    let mut line = format!(
        "{time:<TIME_WIDTH$} {iface:<IFACE_WIDTH$} {len:>LEN_WIDTH$} {proto:<PROTO_WIDTH$} \
         {verdict:<VERDICT_WIDTH$} {flow}",
        len = notice.packet_len,
        proto = protocol(notice),
        verdict = verdict_name(notice.verdict),
    );
    let detail = detail(notice);
    if !detail.is_empty() {
        line.push_str("  ");
        line.push_str(&detail);
    }
    line
}

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

fn has_ports(notice: &Notice) -> bool {
    notice.depth >= DEPTH_L4 && matches!(notice.l4_proto, IPPROTO_TCP | IPPROTO_UDP)
}

fn source(notice: &Notice) -> Option<String> {
    endpoint(notice, &notice.src_addr, notice.src_port)
}

fn destination(notice: &Notice) -> Option<String> {
    endpoint(notice, &notice.dst_addr, notice.dst_port)
}

/// `10.0.0.1:53`, `[2001:db8::1]:53`, or a bare address without ports (an
/// ARP sender's or target's IPv4 address among them).
fn endpoint(notice: &Notice, addr: &[u8; 16], port: u16) -> Option<String> {
    let ip = address(notice, addr)?;
    Some(match (has_ports(notice), notice.ip_version) {
        (false, _) => ip,
        (true, 6) => format!("[{ip}]:{port}"),
        (true, _) => format!("{ip}:{port}"),
    })
}

/// The address as text, for IP packets and Ethernet/IPv4 ARP.
fn address(notice: &Notice, addr: &[u8; 16]) -> Option<String> {
    match notice.ip_version {
        4 => Some(ipv4(addr).to_string()),
        6 => Some(Ipv6Addr::from(*addr).to_string()),
        _ if arp(notice).is_some() => Some(ipv4(addr).to_string()),
        _ => None,
    }
}

fn ipv4(addr: &[u8; 16]) -> Ipv4Addr {
    Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3])
}

/// An Ethernet/IPv4 ARP body, as the notice carries it.
struct Arp {
    op: u8,
    sender_ip: Ipv4Addr,
    sender_mac: [u8; 6],
    target_ip: Ipv4Addr,
    target_mac: [u8; 6],
}

/// The ARP body of `notice`, where the walk read one (depth L3): the
/// sender's IPv4 address and MAC in `src_addr`, the target's in `dst_addr`.
fn arp(notice: &Notice) -> Option<Arp> {
    let mac_of = |addr: &[u8; 16]| -> [u8; 6] { addr[4..10].try_into().expect("6 bytes") };
    (notice.ip_version == 0 && notice.ether_type == ETH_P_ARP && notice.depth >= DEPTH_L3).then(
        || Arp {
            op: notice.arp_op,
            sender_ip: ipv4(&notice.src_addr),
            sender_mac: mac_of(&notice.src_addr),
            target_ip: ipv4(&notice.dst_addr),
            target_mac: mac_of(&notice.dst_addr),
        },
    )
}

/// `who-has 10.0.0.1 tell 10.0.0.2`, `10.0.0.1 is-at 02:00:00:00:00:01`,
/// as tcpdump writes them.
fn arp_detail(arp: &Arp) -> String {
    match arp.op {
        1 => format!("who-has {} tell {}", arp.target_ip, arp.sender_ip),
        2 => format!("{} is-at {}", arp.sender_ip, mac(&arp.sender_mac)),
        op => format!("op {op}"),
    }
}

/// `02:00:5e:10:00:01`.
fn mac(bytes: &[u8; 6]) -> String {
    let mut text = String::with_capacity(17);
    for (i, byte) in bytes.iter().enumerate() {
        if i > 0 {
            text.push(':');
        }
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// The ids of the VLAN tags the notice names: the first two at most.
fn vlan_ids(notice: &Notice) -> impl Iterator<Item = u16> {
    [notice.vlan_outer, notice.vlan_inner]
        .into_iter()
        .take(notice.vlan_count.into())
}

/// What else is worth a glance: TCP flags, ICMP type, what an ARP asks or
/// tells, VLANs, why parsing stopped, and the deciding rule.
pub fn detail(notice: &Notice) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(arp) = arp(notice) {
        parts.push(arp_detail(&arp));
    }
    if notice.depth >= DEPTH_L4 {
        match (notice.ip_version, notice.l4_proto) {
            (_, IPPROTO_TCP) => parts.push(format!("[{}]", tcp_flags(notice.tcp_flags))),
            (4, IPPROTO_ICMP) => parts.push(icmp_name(notice.icmp_type, notice.icmp_code)),
            (6, IPPROTO_ICMPV6) => parts.push(icmpv6_name(notice.icmp_type, notice.icmp_code)),
            _ => {}
        }
    }
    let mut ids = vlan_ids(notice);
    if let Some(first) = ids.next() {
        // `vlan 0` is a priority tag: shown, as the kernel walks it too.
        let mut vlan = format!("vlan {first}");
        for id in ids {
            let _ = write!(vlan, ".{id}");
        }
        if notice.vlan_count > 2 {
            let _ = write!(vlan, " ({} tags)", notice.vlan_count);
        }
        parts.push(vlan);
    }
    for (flag, name) in FLAG_NAMES {
        if notice.flags & flag != 0 {
            parts.push(name.into());
        }
    }
    if notice.rule_id != RULE_NONE {
        parts.push(format!("rule {}", notice.rule_id));
    }
    parts.join(" ")
}

/// tcpdump's letters in tcpdump's order (its `tcp_flag_values`, print-tcp.c):
/// F S R P, `.` for ACK, U E W — so SYN+ACK+ECE is `S.E`.
fn tcp_flags(flags: u8) -> String {
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

fn icmp_name(kind: u8, code: u8) -> String {
    match kind {
        0 => "echo-reply".into(),
        3 => format!("unreachable/{code}"),
        8 => "echo-request".into(),
        11 => format!("time-exceeded/{code}"),
        _ => format!("type {kind}/{code}"),
    }
}

fn icmpv6_name(kind: u8, code: u8) -> String {
    match kind {
        1 => format!("unreachable/{code}"),
        3 => format!("time-exceeded/{code}"),
        128 => "echo-request".into(),
        129 => "echo-reply".into(),
        133 => "router-solicit".into(),
        134 => "router-advert".into(),
        135 => "neighbor-solicit".into(),
        136 => "neighbor-advert".into(),
        143 => "mld2-report".into(),
        _ => format!("type {kind}/{code}"),
    }
}

fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

/// `HH:MM:SS.micros` in local time.
fn local_time(realtime_ns: i128) -> String {
    let secs = (realtime_ns / 1_000_000_000) as libc::time_t;
    let micros = (realtime_ns % 1_000_000_000) / 1000;
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe { libc::localtime_r(&secs, &mut tm) };
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        tm.tm_hour, tm.tm_min, tm.tm_sec, micros
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice() -> Notice {
        let mut n = Notice::ZERO;
        n.packet_len = 74;
        n.ether_type = ETH_P_IP;
        n.ip_version = 4;
        n.depth = DEPTH_L4;
        n.src_addr[..4].copy_from_slice(&[10, 0, 0, 2]);
        n.dst_addr[..4].copy_from_slice(&[10, 0, 0, 1]);
        n
    }

    #[test]
    fn tcp_line_has_every_column() {
        let mut n = notice();
        n.l4_proto = IPPROTO_TCP;
        n.src_port = 40000;
        n.dst_port = 22;
        n.tcp_flags = 0x02; // SYN
        n.verdict = XDP_DROP;
        n.rule_id = 3;
        let line = format_line("12:00:00.000001", "veth0", &n);
        assert_eq!(
            line,
            format!(
                "{:<16} {:<15} {:>5} {:<7} {:<7} {}  {}",
                "12:00:00.000001",
                "veth0",
                74,
                "TCP",
                "DROP",
                "10.0.0.2:40000 → 10.0.0.1:22",
                "[S] rule 3"
            )
        );
        // The header's columns line up with the line's.
        assert_eq!(HEADER.find("IFACE"), line.find("veth0"));
        assert_eq!(
            HEADER.find("VERDICT").map(|i| HEADER[..i].chars().count()),
            line.find("DROP").map(|i| line[..i].chars().count())
        );
    }

    #[test]
    fn ipv6_udp_uses_brackets_and_ports() {
        let mut n = notice();
        n.ip_version = 6;
        n.ether_type = ETH_P_IPV6;
        n.l4_proto = IPPROTO_UDP;
        n.src_addr = "2001:db8::2".parse::<Ipv6Addr>().unwrap().octets();
        n.dst_addr = "2001:db8::1".parse::<Ipv6Addr>().unwrap().octets();
        n.src_port = 5353;
        n.dst_port = 53;
        let line = format_line("t", "lo", &n);
        assert!(
            line.contains("UDP     PASS    [2001:db8::2]:5353 → [2001:db8::1]:53"),
            "{line}"
        );
        assert!(line.ends_with("[2001:db8::1]:53"), "{line}");
    }

    #[test]
    fn icmp_names_and_vlans_show_in_detail() {
        let mut n = notice();
        n.l4_proto = IPPROTO_ICMP;
        n.icmp_type = 8;
        n.vlan_count = 2;
        n.vlan_outer = 100;
        n.vlan_inner = 200;
        assert_eq!(detail(&n), "echo-request vlan 100.200");
        assert_eq!(protocol(&n), "ICMP");
        n.ip_version = 6;
        n.l4_proto = IPPROTO_ICMPV6;
        n.icmp_type = 135;
        n.vlan_count = 0;
        assert_eq!(detail(&n), "neighbor-solicit");
    }

    #[test]
    fn partial_packets_say_how_far_parsing_got() {
        let mut arp = Notice::ZERO;
        arp.depth = DEPTH_L2;
        arp.ether_type = ETH_P_ARP;
        assert_eq!(protocol(&arp), "ARP");
        assert!(format_line("t", "lo", &arp).ends_with(" PASS    -"));

        let mut runt = Notice::ZERO;
        runt.flags = FLAG_TRUNCATED;
        assert_eq!(protocol(&runt), "?");
        assert_eq!(detail(&runt), "truncated");

        let mut fragment = notice();
        fragment.depth = DEPTH_L3;
        fragment.l4_proto = IPPROTO_UDP;
        fragment.flags = FLAG_FRAGMENT;
        let line = format_line("t", "lo", &fragment);
        assert!(
            line.contains("10.0.0.2 → 10.0.0.1  "),
            "no ports on a fragment: {line}"
        );
        assert!(line.ends_with("fragment"), "{line}");
    }

    #[test]
    fn json_has_named_fields_and_no_ports_where_there_are_none() {
        let mut n = notice();
        n.l4_proto = IPPROTO_UDP;
        n.src_port = 5353;
        n.dst_port = 53;
        n.vlan_count = 1;
        n.vlan_outer = 7;
        let value: serde_json::Value =
            serde_json::from_str(&json_line(1_000, "veth0", &n)).unwrap();
        assert_eq!(value["time_ns"], 1_000);
        assert_eq!(value["iface"], "veth0");
        assert_eq!(value["proto"], "UDP");
        assert_eq!(value["src"], "10.0.0.2");
        assert_eq!(value["sport"], 5353);
        assert_eq!(value["dport"], 53);
        assert_eq!(value["vlan"], serde_json::json!([7]));
        assert_eq!(value["verdict"], "PASS");
        assert_eq!(value["rule"], serde_json::Value::Null);
        assert_eq!(value["depth"], "l4");

        n.depth = DEPTH_L3;
        n.flags = FLAG_FRAGMENT;
        let value: serde_json::Value = serde_json::from_str(&json_line(0, "veth0", &n)).unwrap();
        assert_eq!(value["sport"], serde_json::Value::Null);
        assert_eq!(value["flags"], serde_json::json!(["fragment"]));
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

    /// Where `text` starts in `line`, in characters (as a terminal shows it).
    fn column_of(line: &str, text: &str) -> usize {
        let at = line
            .find(text)
            .unwrap_or_else(|| panic!("no '{text}' in '{line}'"));
        line[..at].chars().count()
    }

    /// Issue 7 item 14: a 15-character interface name, a 65535-byte frame
    /// and two full-length IPv6 endpoints with 5-digit ports break no
    /// column, as a short line does not: every fixed column starts under its
    /// title (LEN is right-aligned: it ends where its title ends), the flow
    /// starts under SOURCE, and the detail follows it after two spaces.
    #[test]
    fn columns_hold_the_longest_names_and_endpoints() {
        let mut wide = notice();
        wide.ip_version = 6;
        wide.ether_type = ETH_P_IPV6;
        wide.l4_proto = IPPROTO_TCP;
        wide.packet_len = 65535;
        // 39 characters, the longest an IPv6 address is written.
        let long: Ipv6Addr = "fd00:1234:5678:9abc:def0:1234:5678:9abc".parse().unwrap();
        wide.src_addr = long.octets();
        wide.dst_addr = long.octets();
        wide.src_port = 65535;
        wide.dst_port = 65535;
        wide.tcp_flags = 0x12;
        wide.verdict = XDP_DROP;
        let widest = format_line("23:59:59.999999", "abcdefghijklmno", &wide);
        assert!(
            widest.contains(
                " DROP    [fd00:1234:5678:9abc:def0:1234:5678:9abc]:65535 → \
                 [fd00:1234:5678:9abc:def0:1234:5678:9abc]:65535  [S.]"
            ),
            "{widest}"
        );
        let mut short = notice();
        short.l4_proto = IPPROTO_UDP;
        short.packet_len = 60;
        short.rule_id = 1;
        let narrow = format_line("00:00:00.000000", "lo", &short);

        let len_end = column_of(HEADER, "LEN") + "LEN".len();
        for (line, iface, len, proto, src, verdict, detail) in [
            (
                &widest,
                "abcdefghijklmno",
                "65535",
                "TCP",
                "[fd00:",
                "DROP",
                "[S.]",
            ),
            (&narrow, "lo", "60", "UDP", "10.0.0.2", "PASS", "rule 1"),
        ] {
            let view = format!("{HEADER}\n{line}");
            assert_eq!(column_of(line, iface), column_of(HEADER, "IFACE"), "{view}");
            let len_at = column_of(line, &format!(" {len} ")) + 1;
            assert_eq!(len_at + len.len(), len_end, "{view}");
            assert_eq!(column_of(line, proto), column_of(HEADER, "PROTO"), "{view}");
            assert_eq!(column_of(line, src), column_of(HEADER, "SOURCE"), "{view}");
            assert_eq!(
                column_of(line, verdict),
                column_of(HEADER, "VERDICT"),
                "{view}"
            );
            assert!(line.ends_with(&format!("  {detail}")), "{view}");
        }
    }

    fn json(notice: &Notice) -> serde_json::Value {
        serde_json::from_str(&json_line(0, "veth0", notice)).unwrap()
    }

    /// Issue 7 item 25: a priority tag (VLAN id 0) shows, in text and JSON,
    /// and so do stacks deeper than the two ids a notice carries.
    #[test]
    fn priority_tags_show() {
        let mut n = notice();
        n.l4_proto = IPPROTO_ICMP;
        n.icmp_type = 8;
        n.vlan_count = 1;
        assert_eq!(detail(&n), "echo-request vlan 0");
        assert_eq!(json(&n)["vlan"], serde_json::json!([0]));
        assert_eq!(json(&n)["vlan_tags"], 1);

        n.vlan_count = 3;
        n.vlan_inner = 5;
        assert_eq!(detail(&n), "echo-request vlan 0.5 (3 tags)");
        assert_eq!(json(&n)["vlan"], serde_json::json!([0, 5]));
        assert_eq!(json(&n)["vlan_tags"], 3);

        n.vlan_count = 0;
        assert_eq!(detail(&n), "echo-request");
        assert_eq!(json(&n)["vlan"], serde_json::json!([]));
    }

    #[test]
    fn vlan_limit_is_a_flag_in_text_and_json() {
        let mut n = Notice::ZERO;
        n.depth = DEPTH_L2;
        n.ether_type = ETH_P_8021Q;
        n.vlan_count = MAX_VLAN_TAGS as u8;
        n.flags = FLAG_VLAN_LIMIT;
        n.verdict = XDP_DROP;
        assert!(
            detail(&n).ends_with("(8 tags) vlan-limit"),
            "{}",
            detail(&n)
        );
        assert_eq!(json(&n)["flags"], serde_json::json!(["vlan-limit"]));
    }

    /// Issue 7 item 25: IP protocols other than TCP, UDP and ICMP are named,
    /// or given by number, instead of a bare `IPv4`.
    #[test]
    fn other_ip_protocols_are_named_or_numbered() {
        let mut n = notice();
        n.depth = DEPTH_L3;
        for (version, proto, name) in [
            (4, 132, "SCTP"),
            (6, 132, "SCTP"),
            (4, 47, "GRE"),
            (4, IPPROTO_ESP, "ESP"),
            (6, IPPROTO_ESP, "ESP"),
            (6, IPPROTO_AH, "AH"),
            (4, 253, "253"),
            (6, 59, "59"),
            (6, IPPROTO_ICMP, "1"),
            // Stopped inside the IPv6 extension headers: no transport known.
            (6, IPPROTO_DSTOPTS, "IPv6"),
        ] {
            n.ip_version = version;
            n.l4_proto = proto;
            assert_eq!(protocol(&n), name, "IPv{version} protocol {proto}");
            assert_eq!(json(&n)["proto"], name);
            assert_eq!(json(&n)["ip_proto"], proto);
        }
        let line = format_line("t", "lo", &n);
        assert!(line.contains(" IPv6 "), "{line}");
    }

    /// Issue 7 item 25: the Ethernet addresses are in the JSON.
    #[test]
    fn json_has_the_mac_addresses() {
        let mut n = notice();
        n.eth_src = [0x02, 0, 0x5e, 0x10, 0, 0x01];
        n.eth_dst = [0xff; 6];
        assert_eq!(json(&n)["eth_src"], "02:00:5e:10:00:01");
        assert_eq!(json(&n)["eth_dst"], "ff:ff:ff:ff:ff:ff");
        let runt = Notice::ZERO; // shorter than an Ethernet header
        assert_eq!(json(&runt)["eth_src"], serde_json::Value::Null);
    }

    fn arp(op: u8) -> Notice {
        let mut n = Notice::ZERO;
        n.packet_len = 42;
        n.ether_type = ETH_P_ARP;
        n.depth = DEPTH_L3;
        n.arp_op = op;
        n.src_addr[..10].copy_from_slice(&[10, 0, 0, 2, 0x02, 0, 0, 0, 0, 0x02]);
        n.dst_addr[..10].copy_from_slice(&[10, 0, 0, 1, 0x02, 0, 0, 0, 0, 0x01]);
        n
    }

    /// Issue 7 item 25: ARP lines say who-has / is-at with their addresses,
    /// as tcpdump does; the JSON has the sender's and target's addresses.
    #[test]
    fn arp_lines_say_who_has_and_is_at() {
        let request = format_line("t", "veth0", &arp(1));
        assert!(
            request.contains(" ARP     PASS    10.0.0.2 → 10.0.0.1  "),
            "{request}"
        );
        assert!(
            request.ends_with("10.0.0.1  who-has 10.0.0.1 tell 10.0.0.2"),
            "{request}"
        );
        let mut reply = arp(2);
        std::mem::swap(&mut reply.src_addr, &mut reply.dst_addr);
        let reply = format_line("t", "veth0", &reply);
        assert!(
            reply.ends_with(" 10.0.0.1 is-at 02:00:00:00:00:01"),
            "{reply}"
        );
        assert_eq!(detail(&arp(3)), "op 3");

        let value = json(&arp(1));
        assert_eq!(value["proto"], "ARP");
        assert_eq!(value["arp_op"], 1);
        assert_eq!(value["src"], "10.0.0.2");
        assert_eq!(value["dst"], "10.0.0.1");
        assert_eq!(value["arp_sender_mac"], "02:00:00:00:00:02");
        assert_eq!(value["arp_target_mac"], "02:00:00:00:00:01");
        assert_eq!(value["ip_proto"], serde_json::Value::Null);

        // ARP of another kind (not Ethernet/IPv4): no body to show.
        let mut other = arp(0);
        other.depth = DEPTH_L2;
        assert_eq!(detail(&other), "");
        assert_eq!(json(&other)["src"], serde_json::Value::Null);
        assert_eq!(json(&other)["arp_op"], serde_json::Value::Null);
    }
}
