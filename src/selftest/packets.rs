//! Crafted frames, each with the notice the XDP program must send for it: the
//! fixture matrix behind `xdp-hello selftest` and `tests/test_run.rs`.
//!
//! Frames are built with etherparse's `PacketBuilder`. Where it cannot say
//! what a frame needs (three VLAN tags, a chain of repeated IPv6 extension
//! headers, IHL < 5, a wrong IP version) or gets it wrong (the IPv6 fragment
//! offset), the frame is put together from etherparse's header types, or a
//! built frame gets a few bytes patched; the comment at each place says why.
//! Truncated frames are built frames cut short.

use std::net::Ipv6Addr;

use etherparse::err::packet::BuildWriteError;
use etherparse::{
    ip_number, ArpHardwareId, ArpOperation, ArpPacket, EtherType, Ethernet2Header, IpNumber,
    PacketBuilder, PacketBuilderStep, SingleVlanHeader, UdpHeader, VlanId, VlanPcp,
};

use crate::abi::tcp_flag::*;
use crate::abi::*;

mod ip;
mod truncations;

use ip::{ipsec, ipv4_specials, ipv6_extensions};
/// Frame surgery the firewall tests use too.
pub use ip::{padded, with_ipv4_total_length, with_ipv6_payload_length};
use truncations::truncations;

/// One frame and what the program must report about it.
pub struct Case {
    /// Lowercase words joined by `-`, unique among the cases.
    pub name: String,
    pub frame: Vec<u8>,
    /// The notice the program must send. `timestamp_ns`, `ifindex` and
    /// `rx_queue` stay zero here: they depend on the run, and the runner
    /// checks them against the run itself.
    pub expect: Notice,
}

impl Case {
    fn new(name: impl Into<String>, frame: Vec<u8>, expect: Notice) -> Case {
        let packet_len = frame.len() as u32;
        Case {
            name: name.into(),
            frame,
            expect: Notice {
                packet_len,
                ..expect
            },
        }
    }
}

const SRC_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
const DST_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
// Documentation ranges (RFC 5737, RFC 3849).
const SRC_V4: [u8; 4] = [192, 0, 2, 1];
const DST_V4: [u8; 4] = [198, 51, 100, 2];
const SRC_V6: [u8; 16] = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets();
const DST_V6: [u8; 16] = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2).octets();
const TTL: u8 = 64;
const CLIENT_PORT: u16 = 40000;
const HTTPS: u16 = 443;
const DNS: u16 = 53;
const SSH: u16 = 22;
const PAYLOAD: &[u8] = b"xdp-hello";

/// The shortest Ethernet frame, without FCS.
const ETH_ZLEN: usize = 60;

/// Every case, in a stable order.
pub fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(transports());
    cases.extend(vlans());
    cases.push(Case::new(
        "arp-request",
        arp_request(),
        arp_request_notice(),
    ));
    cases.extend(ipv4_specials());
    cases.extend(ipv6_extensions());
    cases.extend(ipsec());
    cases.extend(truncations());
    cases
}

/// A 64-byte IPv4/UDP frame (without FCS): the benchmark's packet.
pub fn udp64() -> Vec<u8> {
    const FRAME_LEN: usize = 64;
    let payload = [0u8; FRAME_LEN - ETH_HLEN - IPV4_HLEN - UdpHeader::LEN];
    let frame = written(|f| {
        eth()
            .ipv4(SRC_V4, DST_V4, TTL)
            .udp(CLIENT_PORT, DNS)
            .write(f, &payload)
    });
    debug_assert_eq!(frame.len(), FRAME_LEN);
    frame
}

// ---- expected notices ----------------------------------------------------

/// A frame no rule decided: the default policy passed it.
const PASSED: Notice = Notice {
    verdict: XDP_PASS,
    rule_id: RULE_NONE,
    ..Notice::ZERO
};

/// An Ethernet frame of `ether_type` that the walk took no further.
fn l2(ether_type: EtherType) -> Notice {
    Notice {
        ether_type: ether_type.0,
        depth: DEPTH_L2,
        eth_src: SRC_MAC,
        eth_dst: DST_MAC,
        ..PASSED
    }
}

/// `notice` seen behind VLAN tags with these ids, outer first.
fn tagged(notice: Notice, ids: &[u16]) -> Notice {
    Notice {
        vlan_outer: ids.first().copied().unwrap_or(0),
        vlan_inner: ids.get(1).copied().unwrap_or(0),
        vlan_count: ids.len() as u8,
        ..notice
    }
}

/// An IPv4 packet between the usual addresses, walked up to its transport.
fn ipv4(proto: IpNumber) -> Notice {
    Notice {
        ip_version: 4,
        l4_proto: proto.0,
        src_addr: v4_addr(SRC_V4),
        dst_addr: v4_addr(DST_V4),
        depth: DEPTH_L3,
        ..l2(EtherType::IPV4)
    }
}

/// An IPv6 packet between the usual addresses, walked up to its transport.
fn ipv6(proto: IpNumber) -> Notice {
    Notice {
        ip_version: 6,
        l4_proto: proto.0,
        src_addr: SRC_V6,
        dst_addr: DST_V6,
        depth: DEPTH_L3,
        ..l2(EtherType::IPV6)
    }
}

/// `l3` with its TCP or UDP header read.
fn with_ports(l3: Notice, src_port: u16, dst_port: u16) -> Notice {
    Notice {
        src_port,
        dst_port,
        depth: DEPTH_L4,
        ..l3
    }
}

/// `l3` with its ICMP or ICMPv6 header read.
fn with_icmp(l3: Notice, icmp_type: u8, icmp_code: u8) -> Notice {
    Notice {
        icmp_type,
        icmp_code,
        depth: DEPTH_L4,
        ..l3
    }
}

/// `notice` with `flags` added.
fn flagged(notice: Notice, flags: u8) -> Notice {
    Notice {
        flags: notice.flags | flags,
        ..notice
    }
}

/// IPv4 addresses sit in the first four bytes of a notice's address.
fn v4_addr(addr: [u8; 4]) -> [u8; 16] {
    let mut out = [0; 16];
    out[..4].copy_from_slice(&addr);
    out
}

// ---- frames ------------------------------------------------------------

fn eth() -> PacketBuilderStep<Ethernet2Header> {
    PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
}

/// Runs one of etherparse's `write`s into a fresh buffer.
fn written(write: impl FnOnce(&mut Vec<u8>) -> Result<(), BuildWriteError>) -> Vec<u8> {
    let mut frame = Vec::new();
    write(&mut frame).expect("etherparse refused a fixed frame");
    frame
}

fn vlan_id(id: u16) -> VlanId {
    VlanId::try_new(id).expect("VLAN ids are 12 bits")
}

fn ipv4_udp() -> Vec<u8> {
    written(|f| {
        eth()
            .ipv4(SRC_V4, DST_V4, TTL)
            .udp(CLIENT_PORT, DNS)
            .write(f, PAYLOAD)
    })
}

fn ipv4_tcp_syn() -> Vec<u8> {
    written(|f| {
        eth()
            .ipv4(SRC_V4, DST_V4, TTL)
            .tcp(CLIENT_PORT, HTTPS, 1, 64240)
            .syn()
            .write(f, &[])
    })
}

fn ipv4_icmp_echo() -> Vec<u8> {
    written(|f| {
        eth()
            .ipv4(SRC_V4, DST_V4, TTL)
            .icmpv4_echo_request(7, 1)
            .write(f, PAYLOAD)
    })
}

fn ipv6_udp() -> Vec<u8> {
    written(|f| {
        eth()
            .ipv6(SRC_V6, DST_V6, TTL)
            .udp(CLIENT_PORT, DNS)
            .write(f, PAYLOAD)
    })
}

fn ipv6_tcp_fin_psh_ack() -> Vec<u8> {
    written(|f| {
        eth()
            .ipv6(SRC_V6, DST_V6, TTL)
            .tcp(CLIENT_PORT, HTTPS, 1000, 64240)
            .fin()
            .psh()
            .ack(2000)
            .write(f, PAYLOAD)
    })
}

fn ipv6_icmpv6_echo() -> Vec<u8> {
    written(|f| {
        eth()
            .ipv6(SRC_V6, DST_V6, TTL)
            .icmpv6_echo_request(7, 1)
            .write(f, PAYLOAD)
    })
}

fn arp_request() -> Vec<u8> {
    let arp = ArpPacket::new(
        ArpHardwareId::ETHERNET,
        EtherType::IPV4,
        ArpOperation::REQUEST,
        &SRC_MAC,
        &SRC_V4,
        &[0; 6],
        &DST_V4,
    )
    .expect("Ethernet/IPv4 ARP addresses");
    written(|f| eth().arp(arp).write(f))
}

/// Who has DST_V4? Tell SRC_V4: the operation and both parties.
fn arp_request_notice() -> Notice {
    let mut notice = Notice {
        arp_op: 1,
        depth: DEPTH_L3,
        ..l2(EtherType::ARP)
    };
    notice.src_addr[..4].copy_from_slice(&SRC_V4);
    notice.src_addr[4..10].copy_from_slice(&SRC_MAC);
    notice.dst_addr[..4].copy_from_slice(&DST_V4);
    notice
}

/// Plain TCP, UDP and ICMP over IPv4 and IPv6, and a transport the walk does
/// not read.
fn transports() -> Vec<Case> {
    let all_flags = written(|f| {
        eth()
            .ipv4(SRC_V4, DST_V4, TTL)
            .tcp(CLIENT_PORT, HTTPS, 1, 64240)
            .ns() // not one of the eight: must not show up in tcp_flags
            .fin()
            .syn()
            .rst()
            .psh()
            .ack(1)
            .urg(1)
            .ece()
            .cwr()
            .write(f, &[])
    });
    let sctp = written(|f| {
        eth()
            .ipv4(SRC_V4, DST_V4, TTL)
            .write(f, ip_number::SCTP, PAYLOAD)
    });
    vec![
        Case::new(
            "ipv4-tcp-syn",
            ipv4_tcp_syn(),
            Notice {
                tcp_flags: SYN,
                ..with_ports(ipv4(ip_number::TCP), CLIENT_PORT, HTTPS)
            },
        ),
        Case::new(
            "ipv4-tcp-all-flags",
            all_flags,
            Notice {
                tcp_flags: FIN | SYN | RST | PSH | ACK | URG | ECE | CWR,
                ..with_ports(ipv4(ip_number::TCP), CLIENT_PORT, HTTPS)
            },
        ),
        Case::new(
            "ipv4-udp",
            ipv4_udp(),
            with_ports(ipv4(ip_number::UDP), CLIENT_PORT, DNS),
        ),
        Case::new(
            "ipv4-icmp-echo-request",
            ipv4_icmp_echo(),
            with_icmp(ipv4(ip_number::ICMP), 8, 0),
        ),
        // Known network layer, transport the walk does not read: L3 it is.
        Case::new("ipv4-sctp", sctp, ipv4(ip_number::SCTP)),
        Case::new(
            "ipv6-tcp-fin-psh-ack",
            ipv6_tcp_fin_psh_ack(),
            Notice {
                tcp_flags: FIN | PSH | ACK,
                ..with_ports(ipv6(ip_number::TCP), CLIENT_PORT, HTTPS)
            },
        ),
        Case::new(
            "ipv6-udp",
            ipv6_udp(),
            with_ports(ipv6(ip_number::UDP), CLIENT_PORT, DNS),
        ),
        Case::new(
            "ipv6-icmpv6-echo-request",
            ipv6_icmpv6_echo(),
            with_icmp(ipv6(ip_number::IPV6_ICMP), 128, 0),
        ),
    ]
}

fn vlan_ipv4_udp() -> Vec<u8> {
    written(|f| {
        eth()
            .single_vlan(vlan_id(100))
            .ipv4(SRC_V4, DST_V4, TTL)
            .udp(CLIENT_PORT, DNS)
            .write(f, PAYLOAD)
    })
}

/// 802.1ad outer tag (0x88A8) around an 802.1Q inner tag: etherparse's
/// `double_vlan` writes exactly that.
fn qinq_ipv6_tcp() -> Vec<u8> {
    written(|f| {
        eth()
            .double_vlan(vlan_id(200), vlan_id(300))
            .ipv6(SRC_V6, DST_V6, TTL)
            .tcp(CLIENT_PORT, HTTPS, 1, 64240)
            .syn()
            .write(f, &[])
    })
}

/// `ids.len()` VLAN tags (802.1ad outside, 802.1Q inside) around IPv4/UDP.
/// etherparse's builder stops at two tags: the link layer is made of its
/// header types, the rest by the builder.
fn tags_ipv4_udp(ids: &[u16]) -> Vec<u8> {
    let mut frame = Ethernet2Header {
        source: SRC_MAC,
        destination: DST_MAC,
        ether_type: EtherType::PROVIDER_BRIDGING,
    }
    .to_bytes()
    .to_vec();
    for (i, &id) in ids.iter().enumerate() {
        let inner = if i + 1 == ids.len() {
            EtherType::IPV4
        } else {
            EtherType::VLAN_TAGGED_FRAME
        };
        let tag = SingleVlanHeader {
            pcp: VlanPcp::ZERO,
            drop_eligible_indicator: false,
            vlan_id: vlan_id(id),
            ether_type: inner,
        };
        frame.extend(tag.to_bytes());
    }
    frame.extend(written(|f| {
        PacketBuilder::ipv4(SRC_V4, DST_V4, TTL)
            .udp(CLIENT_PORT, DNS)
            .write(f, PAYLOAD)
    }));
    frame
}

fn vlans() -> Vec<Case> {
    let udp = with_ports(ipv4(ip_number::UDP), CLIENT_PORT, DNS);
    let priority_tags = [0; 4];
    let at_limit: Vec<u16> = (1..=MAX_VLAN_TAGS as u16).collect();
    let over_limit: Vec<u16> = (1..=MAX_VLAN_TAGS as u16 + 1).collect();
    vec![
        Case::new("vlan-ipv4-udp", vlan_ipv4_udp(), tagged(udp, &[100])),
        Case::new(
            "qinq-ipv6-tcp-syn",
            qinq_ipv6_tcp(),
            Notice {
                tcp_flags: SYN,
                ..tagged(
                    with_ports(ipv6(ip_number::TCP), CLIENT_PORT, HTTPS),
                    &[200, 300],
                )
            },
        ),
        Case::new(
            "vlan-three-tags",
            tags_ipv4_udp(&[10, 20, 30]),
            tagged(udp, &[10, 20, 30]),
        ),
        // Priority tags (id 0): the stack strips any number of them and
        // delivers the IP packet inside, so the walk goes through them too.
        Case::new(
            "vlan-four-priority-tags",
            tags_ipv4_udp(&priority_tags),
            tagged(udp, &priority_tags),
        ),
        Case::new(
            "vlan-tags-at-limit",
            tags_ipv4_udp(&at_limit),
            tagged(udp, &at_limit),
        ),
        // One tag more than the walk reads: it stops on the next TPID.
        Case::new(
            "vlan-tags-over-limit",
            tags_ipv4_udp(&over_limit),
            flagged(
                tagged(l2(EtherType::VLAN_TAGGED_FRAME), &at_limit),
                FLAG_VLAN_LIMIT,
            ),
        ),
    ]
}
