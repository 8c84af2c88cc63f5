//! Notices as lines: text (a column header, then one line per packet) or
//! JSON Lines (one object per packet, for `jq` and friends).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use crate::abi::*;
use crate::iface;

/// The column header, aligned with [`TextFormat::line`].
pub const HEADER: &str =
    "TIME             IFACE         LEN PROTO   SOURCE → DESTINATION                            VERDICT  DETAIL";

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
    ether_type: u16,
    vlan: Vec<u16>,
    ip_version: u8,
    proto: String,
    src: Option<String>,
    dst: Option<String>,
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
    let record = JsonNotice {
        time_ns: realtime_ns,
        iface,
        ifindex: notice.ifindex,
        rx_queue: notice.rx_queue,
        len: notice.packet_len,
        ether_type: notice.ether_type,
        vlan: [notice.vlan_outer, notice.vlan_inner]
            .into_iter()
            .filter(|&id| id != 0)
            .collect(),
        ip_version: notice.ip_version,
        proto: protocol(notice),
        src: address(notice, &notice.src_addr),
        dst: address(notice, &notice.dst_addr),
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
const FLAG_NAMES: [(u8, &str); 4] = [
    (FLAG_FRAGMENT, "fragment"),
    (FLAG_TRUNCATED, "truncated"),
    (FLAG_MALFORMED, "malformed"),
    (FLAG_EXT_LIMIT, "ext-limit"),
];

/// The line for `notice`, given its time and interface name already.
pub fn format_line(time: &str, iface: &str, notice: &Notice) -> String {
    let flow = match (source(notice), destination(notice)) {
        (Some(src), Some(dst)) => format!("{src} → {dst}"),
        _ => "-".to_string(),
    };
    let mut line = format!(
        "{time:<16} {iface:<12} {len:>4} {proto:<7} {flow:<47} {verdict:<8}",
        len = notice.packet_len,
        proto = protocol(notice),
        verdict = verdict_name(notice.verdict),
    );
    let detail = detail(notice);
    if detail.is_empty() {
        line.truncate(line.trim_end().len());
    } else {
        line.push(' ');
        line.push_str(&detail);
    }
    line
}

/// Short protocol name: the transport where there is one, else the network
/// layer, else the EtherType.
pub fn protocol(notice: &Notice) -> String {
    match (notice.ip_version, notice.l4_proto) {
        (4 | 6, IPPROTO_TCP) => "TCP".into(),
        (4 | 6, IPPROTO_UDP) => "UDP".into(),
        (4, IPPROTO_ICMP) => "ICMP".into(),
        (6, IPPROTO_ICMPV6) => "ICMPv6".into(),
        (4, _) => "IPv4".into(),
        (6, _) => "IPv6".into(),
        _ => match notice.ether_type {
            _ if notice.depth == DEPTH_NONE => "?".into(),
            ETH_P_ARP => "ARP".into(),
            ETH_P_IP => "IPv4".into(),
            ETH_P_IPV6 => "IPv6".into(),
            other => format!("0x{other:04x}"),
        },
    }
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

/// `10.0.0.1:53`, `[2001:db8::1]:53`, or a bare address without ports.
fn endpoint(notice: &Notice, addr: &[u8; 16], port: u16) -> Option<String> {
    let ip = address(notice, addr)?;
    Some(match (has_ports(notice), notice.ip_version) {
        (false, _) => ip,
        (true, 6) => format!("[{ip}]:{port}"),
        (true, _) => format!("{ip}:{port}"),
    })
}

/// The address as text, for IP packets.
fn address(notice: &Notice, addr: &[u8; 16]) -> Option<String> {
    match notice.ip_version {
        4 => Some(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]).to_string()),
        6 => Some(Ipv6Addr::from(*addr).to_string()),
        _ => None,
    }
}

/// What else is worth a glance: TCP flags, ICMP type, VLANs, why parsing
/// stopped, and the deciding rule.
pub fn detail(notice: &Notice) -> String {
    let mut parts: Vec<String> = Vec::new();
    if notice.depth >= DEPTH_L4 {
        match (notice.ip_version, notice.l4_proto) {
            (_, IPPROTO_TCP) => parts.push(format!("[{}]", tcp_flags(notice.tcp_flags))),
            (4, IPPROTO_ICMP) => parts.push(icmp_name(notice.icmp_type, notice.icmp_code)),
            (6, IPPROTO_ICMPV6) => parts.push(icmpv6_name(notice.icmp_type, notice.icmp_code)),
            _ => {}
        }
    }
    if notice.vlan_outer != 0 || notice.vlan_inner != 0 {
        let mut vlan = format!("vlan {}", notice.vlan_outer);
        if notice.vlan_inner != 0 {
            let _ = write!(vlan, ".{}", notice.vlan_inner);
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

/// tcpdump's letters: S F R P U E W, and `.` for ACK.
fn tcp_flags(flags: u8) -> String {
    use tcp_flag::*;
    const LETTERS: [(u8, char); 8] = [
        (SYN, 'S'),
        (FIN, 'F'),
        (RST, 'R'),
        (PSH, 'P'),
        (URG, 'U'),
        (ECE, 'E'),
        (CWR, 'W'),
        (ACK, '.'),
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
                "{:<16} {:<12} {:>4} {:<7} {:<47} {:<8} {}",
                "12:00:00.000001",
                "veth0",
                74,
                "TCP",
                "10.0.0.2:40000 → 10.0.0.1:22",
                "DROP",
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
            line.contains("UDP     [2001:db8::2]:5353 → [2001:db8::1]:53"),
            "{line}"
        );
        assert!(line.ends_with("PASS"), "{line}");
    }

    #[test]
    fn icmp_names_and_vlans_show_in_detail() {
        let mut n = notice();
        n.l4_proto = IPPROTO_ICMP;
        n.icmp_type = 8;
        n.vlan_outer = 100;
        n.vlan_inner = 200;
        assert_eq!(detail(&n), "echo-request vlan 100.200");
        assert_eq!(protocol(&n), "ICMP");
        n.ip_version = 6;
        n.l4_proto = IPPROTO_ICMPV6;
        n.icmp_type = 135;
        n.vlan_outer = 0;
        n.vlan_inner = 0;
        assert_eq!(detail(&n), "neighbor-solicit");
    }

    #[test]
    fn partial_packets_say_how_far_parsing_got() {
        let mut arp = Notice::ZERO;
        arp.depth = DEPTH_L2;
        arp.ether_type = ETH_P_ARP;
        assert_eq!(protocol(&arp), "ARP");
        assert!(format_line("t", "lo", &arp).contains(" - "));

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
            line.contains("10.0.0.2 → 10.0.0.1 "),
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
}
