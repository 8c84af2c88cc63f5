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
