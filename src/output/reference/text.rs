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
