//! The JSON Lines writer: one object per notice, every field named,
//! written straight into the output buffer. Only the interface name can
//! need escaping: serde_json escapes it once per interface
//! ([`escaped_name`]); every other value is a number, `null` or ASCII of a
//! known shape.

use super::fields::{arp, has_ports, push_num, vlan_ids, write_address, write_mac};
use super::names::{verdict_name, write_protocol, write_tcp_flags, FLAG_NAMES};
use super::text_of;
use crate::abi::*;

/// The JSON line for `notice`; `dry_run`: its verdict was not enforced.
pub fn json_line(realtime_ns: i128, iface: &str, notice: &Notice, dry_run: bool) -> String {
    text_of(|out| write_json(out, realtime_ns, &escaped_name(iface), notice, dry_run))
}

/// `iface` as a JSON string, quotes included.
pub(super) fn escaped_name(iface: &str) -> Vec<u8> {
    serde_json::to_vec(iface).expect("a str always serializes")
}

/// The object for `notice` (no newline), appended to `out`; `iface` is the
/// interface's [`escaped_name`]. The fields, in this order: `time_ns`
/// (nanoseconds since the Unix epoch), `iface`, `ifindex`, `rx_queue`,
/// `len`, `eth_src`, `eth_dst`, `ether_type`, `vlan` (the ids of the first
/// two tags; 0 is a priority tag), `vlan_tags` (how many, up to
/// MAX_VLAN_TAGS), `ip_version`, `proto`, `ip_proto` (the number behind
/// `proto`, for IP), `src`, `dst` (IP addresses; for ARP the sender's and
/// the target's), `arp_op`, `arp_sender_mac`, `arp_target_mac`, `sport`,
/// `dport`, `icmp_type`, `icmp_code`, `tcp_flags`, `verdict`, `dry_run`
/// (only in a dry run: true), `rule`, `depth`, `flags`; `null` where a
/// field does not apply.
pub(super) fn write_json(
    out: &mut Vec<u8>,
    realtime_ns: i128,
    iface: &[u8],
    notice: &Notice,
    dry_run: bool,
) {
    let ports = has_ports(notice);
    let icmp = notice.depth >= DEPTH_L4
        && matches!(
            (notice.ip_version, notice.l4_proto),
            (4, IPPROTO_ICMP) | (6, IPPROTO_ICMPV6)
        );
    let tcp = notice.depth >= DEPTH_L4 && notice.l4_proto == IPPROTO_TCP;
    let ethernet = notice.depth >= DEPTH_L2;
    let arp = arp(notice);
    let ip = matches!(notice.ip_version, 4 | 6);

    out.extend_from_slice(b"{\"time_ns\":");
    // In 64 bits while it fits (until 2262): 128-bit division is slow.
    match i64::try_from(realtime_ns) {
        Ok(ns) => push_num(out, ns),
        Err(_) => push_num(out, realtime_ns),
    }
    key(out, b",\"iface\":");
    out.extend_from_slice(iface);
    number(out, b",\"ifindex\":", Some(notice.ifindex));
    number(out, b",\"rx_queue\":", Some(notice.rx_queue));
    number(out, b",\"len\":", Some(notice.packet_len));
    string(
        out,
        b",\"eth_src\":",
        ethernet.then_some(&notice.eth_src),
        write_mac,
    );
    string(
        out,
        b",\"eth_dst\":",
        ethernet.then_some(&notice.eth_dst),
        write_mac,
    );
    number(out, b",\"ether_type\":", Some(notice.ether_type));
    key(out, b",\"vlan\":");
    out.push(b'[');
    for (i, id) in vlan_ids(notice).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_num(out, id);
    }
    out.push(b']');
    number(out, b",\"vlan_tags\":", Some(notice.vlan_count));
    number(out, b",\"ip_version\":", Some(notice.ip_version));
    string(out, b",\"proto\":", Some(notice), write_protocol);
    number(out, b",\"ip_proto\":", ip.then_some(notice.l4_proto));
    address(out, b",\"src\":", notice, &notice.src_addr);
    address(out, b",\"dst\":", notice, &notice.dst_addr);
    number(out, b",\"arp_op\":", arp.as_ref().map(|arp| arp.op));
    let macs = arp.as_ref().map(|arp| (&arp.sender_mac, &arp.target_mac));
    string(out, b",\"arp_sender_mac\":", macs.map(|m| m.0), write_mac);
    string(out, b",\"arp_target_mac\":", macs.map(|m| m.1), write_mac);
    number(out, b",\"sport\":", ports.then_some(notice.src_port));
    number(out, b",\"dport\":", ports.then_some(notice.dst_port));
    number(out, b",\"icmp_type\":", icmp.then_some(notice.icmp_type));
    number(out, b",\"icmp_code\":", icmp.then_some(notice.icmp_code));
    string(
        out,
        b",\"tcp_flags\":",
        tcp.then_some(notice.tcp_flags),
        write_tcp_flags,
    );
    string(
        out,
        b",\"verdict\":",
        Some(verdict_name(notice.verdict)),
        push_str,
    );
    if dry_run {
        out.extend_from_slice(b",\"dry_run\":true");
    }
    let rule = (notice.rule_id != RULE_NONE).then_some(notice.rule_id);
    number(out, b",\"rule\":", rule);
    let depth = match notice.depth {
        DEPTH_L2 => "l2",
        DEPTH_L3 => "l3",
        DEPTH_L4 => "l4",
        _ => "none",
    };
    string(out, b",\"depth\":", Some(depth), push_str);
    key(out, b",\"flags\":");
    out.push(b'[');
    let mut first = true;
    for (flag, name) in FLAG_NAMES {
        if notice.flags & flag != 0 {
            if !first {
                out.push(b',');
            }
            first = false;
            out.push(b'"');
            push_str(out, name);
            out.push(b'"');
        }
    }
    out.extend_from_slice(b"]}");
}

/// `key` is `,"name":` (every field but the first), in one piece: one copy.
#[inline(always)]
fn key(out: &mut Vec<u8>, key: &[u8]) {
    out.extend_from_slice(key);
}

#[inline(always)]
fn number(out: &mut Vec<u8>, name: &[u8], value: Option<impl itoa::Integer>) {
    key(out, name);
    match value {
        Some(value) => push_num(out, value),
        None => out.extend_from_slice(b"null"),
    }
}

/// A string field whose text `write` gives: text that needs no escaping.
#[inline(always)]
fn string<T>(
    out: &mut Vec<u8>,
    name: &[u8],
    value: Option<T>,
    write: impl FnOnce(&mut Vec<u8>, T),
) {
    key(out, name);
    match value {
        Some(value) => {
            out.push(b'"');
            write(out, value);
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
}

fn push_str(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
}

/// An address field: the address as a string, or `null`.
fn address(out: &mut Vec<u8>, name: &[u8], notice: &Notice, addr: &[u8; 16]) {
    key(out, name);
    out.push(b'"');
    if write_address(out, notice, addr) {
        out.push(b'"');
    } else {
        out.pop();
        out.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{json_of, notice};
    use super::*;

    #[test]
    fn json_has_named_fields_and_no_ports_where_there_are_none() {
        let mut n = notice();
        n.l4_proto = IPPROTO_UDP;
        n.src_port = 5353;
        n.dst_port = 53;
        n.vlan_count = 1;
        n.vlan_outer = 7;
        let value: serde_json::Value =
            serde_json::from_str(&json_line(1_000, "veth0", &n, false)).unwrap();
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
        assert_eq!(value.get("dry_run"), None);

        n.depth = DEPTH_L3;
        n.flags = FLAG_FRAGMENT;
        let value: serde_json::Value =
            serde_json::from_str(&json_line(0, "veth0", &n, true)).unwrap();
        assert_eq!(value["dry_run"], true);
        assert_eq!(value["sport"], serde_json::Value::Null);
        assert_eq!(value["flags"], serde_json::json!(["fragment"]));
    }

    /// Issue 7 item 25: the Ethernet addresses are in the JSON.
    #[test]
    fn json_has_the_mac_addresses() {
        let mut n = notice();
        n.eth_src = [0x02, 0, 0x5e, 0x10, 0, 0x01];
        n.eth_dst = [0xff; 6];
        assert_eq!(json_of(&n)["eth_src"], "02:00:5e:10:00:01");
        assert_eq!(json_of(&n)["eth_dst"], "ff:ff:ff:ff:ff:ff");
        let runt = Notice::ZERO; // shorter than an Ethernet header
        assert_eq!(json_of(&runt)["eth_src"], serde_json::Value::Null);
    }
}
