//! What a notice's fields say, read out for both writers: whether it has
//! ports, its addresses as text, its ARP body, MACs and VLAN ids.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::abi::*;

pub(crate) fn has_ports(notice: &Notice) -> bool {
    notice.depth >= DEPTH_L4 && matches!(notice.l4_proto, IPPROTO_TCP | IPPROTO_UDP)
}

/// The address as text, for IP packets and Ethernet/IPv4 ARP.
pub(crate) fn address(notice: &Notice, addr: &[u8; 16]) -> Option<String> {
    match notice.ip_version {
        4 => Some(ipv4(addr).to_string()),
        6 => Some(Ipv6Addr::from(*addr).to_string()),
        _ if arp(notice).is_some() => Some(ipv4(addr).to_string()),
        _ => None,
    }
}

pub(crate) fn ipv4(addr: &[u8; 16]) -> Ipv4Addr {
    Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3])
}

/// An Ethernet/IPv4 ARP body, as the notice carries it.
pub(crate) struct Arp {
    pub(crate) op: u8,
    pub(crate) sender_ip: Ipv4Addr,
    pub(crate) sender_mac: [u8; 6],
    pub(crate) target_ip: Ipv4Addr,
    pub(crate) target_mac: [u8; 6],
}

/// The ARP body of `notice`, where the walk read one (depth L3): the
/// sender's IPv4 address and MAC in `src_addr`, the target's in `dst_addr`.
pub(crate) fn arp(notice: &Notice) -> Option<Arp> {
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

/// `02:00:5e:10:00:01`.
pub(crate) fn mac(bytes: &[u8; 6]) -> String {
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
pub(crate) fn vlan_ids(notice: &Notice) -> impl Iterator<Item = u16> {
    [notice.vlan_outer, notice.vlan_inner]
        .into_iter()
        .take(notice.vlan_count.into())
}
