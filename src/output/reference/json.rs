//! The JSON Lines writer: one object per notice, every field named.

use serde::Serialize;

use super::fields::{address, arp, has_ports, mac, vlan_ids};
use super::names::{protocol, tcp_flags, verdict_name, FLAG_NAMES};
use crate::abi::*;

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
    /// Present, and true, in a dry run: the verdict was not enforced.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    dry_run: bool,
    rule: Option<u32>,
    depth: &'static str,
    flags: Vec<&'static str>,
}

/// The JSON line for `notice`; `dry_run`: its verdict was not enforced.
pub fn json_line(realtime_ns: i128, iface: &str, notice: &Notice, dry_run: bool) -> String {
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
        dry_run,
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
