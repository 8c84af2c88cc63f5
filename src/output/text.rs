//! The text writer: a column header, then one aligned line per notice.

use std::fmt::Write as _;

use super::fields::{address, arp, has_ports, mac, vlan_ids, Arp};
use super::names::{icmp_name, icmpv6_name, protocol, tcp_flags, verdict_name, FLAG_NAMES};
use crate::abi::*;

/// Widths (in characters) of the fixed columns, each enough for the widest
/// value of its column: an interface name of IFNAMSIZ - 1 bytes, a frame of
/// 65535 bytes, `ICMPv6`, `DROP`. The flow (up to two full-length IPv6
/// endpoints) and the detail come last, where their width breaks nothing.
const TIME_WIDTH: usize = 16;
const IFACE_WIDTH: usize = libc::IF_NAMESIZE - 1;
const LEN_WIDTH: usize = 5;
const PROTO_WIDTH: usize = 7;
const VERDICT_WIDTH: usize = 7;

/// In a dry run the verdict column says `would DROP`.
const DRY_RUN_VERDICT_WIDTH: usize = 10;

/// The column header, aligned with [`format_line`] (a test checks it).
pub const HEADER: &str =
    "TIME             IFACE             LEN PROTO   VERDICT SOURCE → DESTINATION  DETAIL";
/// The column header of a dry run, aligned with [`format_dry_run_line`].
pub const DRY_RUN_HEADER: &str =
    "TIME             IFACE             LEN PROTO   VERDICT    SOURCE → DESTINATION  DETAIL";

/// The line for `notice`, given its time and interface name already.
pub fn format_line(time: &str, iface: &str, notice: &Notice) -> String {
    line_with(
        time,
        iface,
        notice,
        verdict_name(notice.verdict),
        VERDICT_WIDTH,
    )
}

/// As [`format_line`], in a dry run: what was not enforced says `would`.
pub fn format_dry_run_line(time: &str, iface: &str, notice: &Notice) -> String {
    let verdict = match notice.verdict {
        XDP_DROP => "would DROP",
        verdict => verdict_name(verdict),
    };
    line_with(time, iface, notice, verdict, DRY_RUN_VERDICT_WIDTH)
}

fn line_with(time: &str, iface: &str, notice: &Notice, verdict: &str, width: usize) -> String {
    let flow = match (source(notice), destination(notice)) {
        (Some(src), Some(dst)) => format!("{src} → {dst}"),
        _ => "-".to_string(),
    };
    let mut line = format!(
        "{time:<TIME_WIDTH$} {iface:<IFACE_WIDTH$} {len:>LEN_WIDTH$} {proto:<PROTO_WIDTH$} \
         {verdict:<width$} {flow}",
        len = notice.packet_len,
        proto = protocol(notice),
    );
    let detail = detail(notice);
    if !detail.is_empty() {
        line.push_str("  ");
        line.push_str(&detail);
    }
    line
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

/// `who-has 10.0.0.1 tell 10.0.0.2`, `10.0.0.1 is-at 02:00:00:00:00:01`,
/// as tcpdump writes them.
fn arp_detail(arp: &Arp) -> String {
    match arp.op {
        1 => format!("who-has {} tell {}", arp.target_ip, arp.sender_ip),
        2 => format!("{} is-at {}", arp.sender_ip, mac(&arp.sender_mac)),
        op => format!("op {op}"),
    }
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
    } else if by_default_policy(notice) && notice.verdict == XDP_DROP {
        // Without it, a drop by --default deny would not say why.
        parts.push("default".into());
    }
    parts.join(" ")
}

/// IP the rules judged, and none matched: `--default` decided (not the
/// walk, which drops what it cannot judge while rules are in force).
fn by_default_policy(notice: &Notice) -> bool {
    notice.ip_version != 0 && notice.flags & FLAG_MALFORMED == 0
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::super::fixtures::notice;
    use super::*;

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
                "[S.] default",
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

    /// A dry run's `would DROP` fits its own, wider verdict column.
    #[test]
    fn dry_run_lines_align_with_their_header() {
        let mut n = super::super::fixtures::notice();
        n.verdict = XDP_DROP;
        let line = format_dry_run_line("12:00:00.000001", "veth0", &n);
        assert!(line.contains(" would DROP "), "{line}");
        let column = |text: &str, what: &str| text.find(what).map(|i| text[..i].chars().count());
        assert_eq!(column(&line, "would"), column(DRY_RUN_HEADER, "VERDICT"));
        assert_eq!(column(&line, "10.0.0.2"), column(DRY_RUN_HEADER, "SOURCE"));
        n.verdict = XDP_PASS;
        let line = format_dry_run_line("12:00:00.000001", "veth0", &n);
        assert_eq!(column(&line, "PASS"), column(DRY_RUN_HEADER, "VERDICT"));
        assert_eq!(column(&line, "10.0.0.2"), column(DRY_RUN_HEADER, "SOURCE"));
    }

    /// A drop by `--default deny` says so; one by the walk does not.
    #[test]
    fn default_drops_say_default() {
        let mut n = notice();
        n.verdict = XDP_DROP;
        assert_eq!(detail(&n), "default");
        n.flags = FLAG_MALFORMED;
        assert_eq!(detail(&n), "malformed");
        n.flags = 0;
        n.rule_id = 3;
        assert_eq!(detail(&n), "rule 3");
        n.rule_id = RULE_NONE;
        n.verdict = XDP_PASS;
        assert_eq!(detail(&n), "");
    }
}
