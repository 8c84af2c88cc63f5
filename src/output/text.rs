//! The text writer: a column header, then one aligned line per notice.

use super::fields::{
    arp, has_ports, push_num, vlan_ids, write_address, write_ipv4, write_mac, Arp,
};
use super::names::{
    verdict_name, write_icmp_name, write_icmpv6_name, write_protocol, write_tcp_flags, FLAG_NAMES,
};
use super::text_of;
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
    text_of(|out| write_line(out, time, iface, notice, false))
}

/// As [`format_line`], in a dry run: what was not enforced says `would`.
pub fn format_dry_run_line(time: &str, iface: &str, notice: &Notice) -> String {
    text_of(|out| write_line(out, time, iface, notice, true))
}

/// The line for `notice` (no newline), appended to `out`.
pub(super) fn write_line(
    out: &mut Vec<u8>,
    time: &str,
    iface: &str,
    notice: &Notice,
    dry_run: bool,
) {
    pad_right(out, time, TIME_WIDTH);
    pad_right(out, iface, IFACE_WIDTH);
    write_columns(out, notice, dry_run);
}

/// The time column of `time` (`HH:MM:SS.micros`), with the space after it.
pub(super) fn time_column(out: &mut Vec<u8>, time: &[u8; 15]) {
    out.extend_from_slice(time);
    push_spaces(out, TIME_WIDTH + 1 - time.len());
}

/// The interface column of `iface`, with the space after it: what the
/// formatter keeps for each interface.
pub(super) fn iface_column(iface: &str) -> Vec<u8> {
    let mut column = Vec::new();
    pad_right(&mut column, iface, IFACE_WIDTH);
    column
}

/// The columns after the interface's, LEN to DETAIL, appended to `out`.
pub(super) fn write_columns(out: &mut Vec<u8>, notice: &Notice, dry_run: bool) {
    let (verdict, verdict_width) = match notice.verdict {
        XDP_DROP if dry_run => ("would DROP", DRY_RUN_VERDICT_WIDTH),
        verdict if dry_run => (verdict_name(verdict), DRY_RUN_VERDICT_WIDTH),
        verdict => (verdict_name(verdict), VERDICT_WIDTH),
    };
    let mut digits = itoa::Buffer::new();
    let len = digits.format(notice.packet_len);
    push_spaces(out, LEN_WIDTH.saturating_sub(len.len()));
    out.extend_from_slice(len.as_bytes());
    out.push(b' ');
    let proto_at = out.len();
    write_protocol(out, notice);
    pad_from(out, proto_at, PROTO_WIDTH);
    let verdict_at = out.len();
    out.extend_from_slice(verdict.as_bytes());
    pad_from(out, verdict_at, verdict_width);
    write_flow(out, notice);
    let detail_at = out.len();
    out.extend_from_slice(b"  ");
    write_detail(out, notice);
    if out.len() == detail_at + 2 {
        out.truncate(detail_at); // no detail: no separator either
    }
}

/// Enough spaces to pad any column and add the space after it.
const SPACES: [u8; 32] = [b' '; 32];
const _: () = assert!(TIME_WIDTH < SPACES.len() && IFACE_WIDTH < SPACES.len());
const _: () = assert!(DRY_RUN_VERDICT_WIDTH < SPACES.len() && PROTO_WIDTH < SPACES.len());

/// Appends `count` spaces (at most [`SPACES`]'s length). All of SPACES is
/// copied, then the rest cut: a copy of fixed length is two moves, where
/// one of `count` bytes is a call to memset.
fn push_spaces(out: &mut Vec<u8>, count: usize) {
    assert!(count <= SPACES.len(), "a column wider than SPACES");
    let end = out.len() + count;
    out.extend_from_slice(&SPACES);
    out.truncate(end);
}

/// `text`, then spaces up to `width` characters (as `{:<width$}` pads),
/// then the space between two columns.
fn pad_right(out: &mut Vec<u8>, text: &str, width: usize) {
    out.extend_from_slice(text.as_bytes());
    let chars = text.chars().count();
    push_spaces(out, width.saturating_sub(chars) + 1);
}

/// Spaces after the ASCII column that starts at `at`, up to `width`, then
/// the space between two columns.
fn pad_from(out: &mut Vec<u8>, at: usize, width: usize) {
    let written = out.len() - at;
    push_spaces(out, width.saturating_sub(written) + 1);
}

/// `SOURCE → DESTINATION`, or `-` where the notice has no addresses.
fn write_flow(out: &mut Vec<u8>, notice: &Notice) {
    let at = out.len();
    if write_endpoint(out, notice, &notice.src_addr, notice.src_port) {
        out.extend_from_slice(" → ".as_bytes());
        if write_endpoint(out, notice, &notice.dst_addr, notice.dst_port) {
            return;
        }
    }
    out.truncate(at);
    out.push(b'-');
}

/// `10.0.0.1:53`, `[2001:db8::1]:53`, or a bare address without ports (an
/// ARP sender's or target's IPv4 address among them); false where the
/// notice has no address.
fn write_endpoint(out: &mut Vec<u8>, notice: &Notice, addr: &[u8; 16], port: u16) -> bool {
    let ports = has_ports(notice);
    let brackets = ports && notice.ip_version == 6;
    if brackets {
        out.push(b'[');
    }
    if !write_address(out, notice, addr) {
        return false;
    }
    if brackets {
        out.push(b']');
    }
    if ports {
        out.push(b':');
        push_num(out, port);
    }
    true
}

/// `who-has 10.0.0.1 tell 10.0.0.2`, `10.0.0.1 is-at 02:00:00:00:00:01`,
/// as tcpdump writes them.
fn write_arp_detail(out: &mut Vec<u8>, arp: &Arp) {
    match arp.op {
        1 => {
            out.extend_from_slice(b"who-has ");
            write_ipv4(out, arp.target_ip);
            out.extend_from_slice(b" tell ");
            write_ipv4(out, arp.sender_ip);
        }
        2 => {
            write_ipv4(out, arp.sender_ip);
            out.extend_from_slice(b" is-at ");
            write_mac(out, &arp.sender_mac);
        }
        op => {
            out.extend_from_slice(b"op ");
            push_num(out, op);
        }
    }
}

/// What else is worth a glance: TCP flags, ICMP type, what an ARP asks or
/// tells, VLANs, why parsing stopped, and the deciding rule.
pub fn detail(notice: &Notice) -> String {
    text_of(|out| write_detail(out, notice))
}

/// [`detail`]'s parts, one space between each two, appended to `out`.
fn write_detail(out: &mut Vec<u8>, notice: &Notice) {
    let start = out.len();
    let next_part = |out: &mut Vec<u8>| {
        if out.len() > start {
            out.push(b' ');
        }
    };
    if let Some(arp) = arp(notice) {
        write_arp_detail(out, &arp);
    }
    if notice.depth >= DEPTH_L4 {
        match (notice.ip_version, notice.l4_proto) {
            (_, IPPROTO_TCP) => {
                next_part(out);
                out.push(b'[');
                write_tcp_flags(out, notice.tcp_flags);
                out.push(b']');
            }
            (4, IPPROTO_ICMP) => {
                next_part(out);
                write_icmp_name(out, notice.icmp_type, notice.icmp_code);
            }
            (6, IPPROTO_ICMPV6) => {
                next_part(out);
                write_icmpv6_name(out, notice.icmp_type, notice.icmp_code);
            }
            _ => {}
        }
    }
    let mut ids = vlan_ids(notice);
    if let Some(first) = ids.next() {
        // `vlan 0` is a priority tag: shown, as the kernel walks it too.
        next_part(out);
        out.extend_from_slice(b"vlan ");
        push_num(out, first);
        for id in ids {
            out.push(b'.');
            push_num(out, id);
        }
        if notice.vlan_count > 2 {
            // Past the walk's limit, more tags follow than it counted.
            let more = notice.flags & FLAG_VLAN_LIMIT != 0;
            out.extend_from_slice(if more { b" (more than " } else { b" (" });
            push_num(out, notice.vlan_count);
            out.extend_from_slice(b" tags)");
        }
    }
    for (flag, name) in FLAG_NAMES {
        if notice.flags & flag != 0 {
            next_part(out);
            out.extend_from_slice(name.as_bytes());
        }
    }
    if notice.rule_id != RULE_NONE {
        next_part(out);
        out.extend_from_slice(b"rule ");
        push_num(out, notice.rule_id);
    } else if by_default_policy(notice) && notice.verdict == XDP_DROP {
        // Without it, a drop by --default deny would not say why.
        next_part(out);
        out.extend_from_slice(b"default");
    }
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
    use super::super::protocol;
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
