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
    ip_number, ArpHardwareId, ArpOperation, ArpPacket, EtherType, Ethernet2Header, IpAuthHeader,
    IpFragOffset, IpHeaders, IpNumber, Ipv4Extensions, Ipv4Header, Ipv4Options, Ipv6Extensions,
    Ipv6FragmentHeader, Ipv6Header, Ipv6RawExtHeader, Ipv6RoutingExtensions, PacketBuilder,
    PacketBuilderStep, SingleVlanHeader, UdpHeader, VlanId, VlanPcp,
};

use crate::abi::tcp_flag::*;
use crate::abi::*;

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

/// A whole frame, to be cut short at several places.
struct Whole {
    name: &'static str,
    frame: Vec<u8>,
    /// The IP version right after its Ethernet header, or 0.
    ip_version: u8,
}

impl Whole {
    fn new(name: &'static str, frame: Vec<u8>, ip_version: u8) -> Whole {
        Whole {
            name,
            frame,
            ip_version,
        }
    }

    /// The datagram made to end after `len` bytes of the frame: its IP
    /// length field says so, and the frame is padded as a sender pads it.
    fn ended(&self, len: usize, place: &str, expect: Notice) -> Case {
        let ip_len = (len - ETH_HLEN) as u16;
        let frame = match self.ip_version {
            4 => with_ipv4_total_length(self.frame[..len].to_vec(), ip_len),
            6 => with_ipv6_payload_length(self.frame[..len].to_vec(), ip_len - IPV6_HLEN as u16),
            _ => unreachable!("only IP datagrams have a length to end"),
        };
        Case::new(
            format!("{}-ends-{len}-{place}", self.name),
            padded(frame),
            expect,
        )
    }

    /// The frame cut to its first `len` bytes, with what the program knows
    /// by then; `place` says where the cut falls, for the name.
    fn cut(&self, len: usize, place: &str, expect: Notice) -> Case {
        Case::new(
            format!("{}-cut-{len}-{place}", self.name),
            self.frame[..len].to_vec(),
            expect,
        )
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

const ETH_HLEN: usize = 14;
/// The shortest Ethernet frame, without FCS.
const ETH_ZLEN: usize = 60;
const VLAN_HLEN: usize = 4;
const IPV4_HLEN: usize = 20;
const IPV6_HLEN: usize = 40;

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

/// Eight bytes of options (IHL 7): Router Alert, then NOPs and the end.
const IPV4_OPTIONS: [u8; 8] = [0x94, 0x04, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00];

fn ipv4_options_udp() -> Vec<u8> {
    let mut header = ipv4_header();
    header.options = Ipv4Options::try_from(&IPV4_OPTIONS[..]).expect("8 bytes of options");
    written(|f| {
        eth()
            .ip(IpHeaders::Ipv4(header, Default::default()))
            .udp(CLIENT_PORT, DNS)
            .write(f, PAYLOAD)
    })
}

/// An IPv4 header; the builder fills in its length, protocol and checksum.
fn ipv4_header() -> Ipv4Header {
    Ipv4Header::new(0, TTL, ip_number::UDP, SRC_V4, DST_V4).expect("an empty payload fits")
}

/// A UDP datagram's fragment at `offset` (in 8-byte units).
fn ipv4_fragment(offset: u16, more_fragments: bool) -> Vec<u8> {
    let header = Ipv4Header {
        identification: 0x1234,
        more_fragments,
        fragment_offset: IpFragOffset::try_new(offset).expect("13-bit offset"),
        ..ipv4_header()
    };
    written(|f| {
        eth()
            .ip(IpHeaders::Ipv4(header, Default::default()))
            .udp(CLIENT_PORT, DNS)
            .write(f, PAYLOAD)
    })
}

fn ipv4_specials() -> Vec<Case> {
    // etherparse writes a correct first byte (version 4, IHL from the
    // options) whatever the header says: a broken one is patched in.
    let with_first_byte = |byte: u8| {
        let mut frame = ipv4_udp();
        frame[ETH_HLEN] = byte;
        frame
    };
    let malformed = flagged(l2(EtherType::IPV4), FLAG_MALFORMED);
    vec![
        Case::new(
            "ipv4-options-udp",
            ipv4_options_udp(),
            with_ports(ipv4(ip_number::UDP), CLIENT_PORT, DNS),
        ),
        // The first fragment carries the transport header.
        Case::new(
            "ipv4-fragment-first-udp",
            ipv4_fragment(0, true),
            with_ports(ipv4(ip_number::UDP), CLIENT_PORT, DNS),
        ),
        Case::new(
            "ipv4-fragment-later-udp",
            ipv4_fragment(185, false),
            flagged(ipv4(ip_number::UDP), FLAG_FRAGMENT),
        ),
        Case::new("ipv4-ihl-4", with_first_byte(0x44), malformed),
        Case::new("ipv4-version-6", with_first_byte(0x65), malformed),
        // Ethernet padding is not part of the datagram.
        Case::new(
            "ipv4-udp-padded",
            padded(ipv4_udp()),
            with_ports(ipv4(ip_number::UDP), CLIENT_PORT, DNS),
        ),
        Case::new(
            "ipv4-total-length-past-frame",
            with_ipv4_total_length(ipv4_udp(), 200),
            flagged(ipv4(ip_number::UDP), FLAG_MALFORMED),
        ),
        Case::new(
            "ipv4-total-length-in-header",
            with_ipv4_total_length(ipv4_udp(), 19),
            flagged(ipv4(ip_number::UDP), FLAG_MALFORMED),
        ),
        // RFC 1858: a TCP fragment at offset 8 bytes rewrites the first
        // fragment's header.
        Case::new(
            "ipv4-tcp-fragment-offset-1",
            ipv4_tcp_fragment(1),
            flagged(ipv4(ip_number::TCP), FLAG_MALFORMED | FLAG_FRAGMENT),
        ),
    ]
}

/// `frame` padded with zeros to Ethernet's 60-byte minimum, as senders do.
fn padded(mut frame: Vec<u8>) -> Vec<u8> {
    frame.resize(frame.len().max(ETH_ZLEN), 0);
    frame
}

/// `frame` (IPv4 right after Ethernet) with Total Length set to `len`. The
/// header checksum goes stale: the program does not check it.
fn with_ipv4_total_length(mut frame: Vec<u8>, len: u16) -> Vec<u8> {
    frame[ETH_HLEN + 2..ETH_HLEN + 4].copy_from_slice(&len.to_be_bytes());
    frame
}

/// `frame` (IPv6 right after Ethernet) with Payload Length set to `len`.
fn with_ipv6_payload_length(mut frame: Vec<u8>, len: u16) -> Vec<u8> {
    frame[ETH_HLEN + 4..ETH_HLEN + 6].copy_from_slice(&len.to_be_bytes());
    frame
}

/// A fragment of a TCP segment at `offset` (8-byte units), with 20 bytes of
/// whatever the segment holds there.
fn ipv4_tcp_fragment(offset: u16) -> Vec<u8> {
    let header = Ipv4Header {
        identification: 0x4321,
        fragment_offset: IpFragOffset::try_new(offset).expect("13-bit offset"),
        ..Ipv4Header::new(0, TTL, ip_number::TCP, SRC_V4, DST_V4).expect("empty payload")
    };
    written(|f| {
        eth()
            .ip(IpHeaders::Ipv4(header, Default::default()))
            .write(f, ip_number::TCP, &[0x55; 20])
    })
}

/// PadN options filling the rest of an extension header (RFC 8200 4.2).
fn pad_n(len: usize) -> Vec<u8> {
    let mut option = vec![0u8; len];
    option[0] = 1;
    option[1] = (len - 2) as u8;
    option
}

/// An options header (hop-by-hop or destination) of `len` bytes, a multiple of 8.
/// Its next-header field is set when the chain is written.
fn options_header(len: usize) -> Ipv6RawExtHeader {
    Ipv6RawExtHeader::new_raw(ip_number::UDP, &pad_n(len - 2)).expect("a valid length")
}

/// A routing header of an experimental type (RFC 4727) with no segments
/// left, which routers pass on untouched.
fn routing_header() -> Ipv6RawExtHeader {
    let mut data = [0u8; ROUTING_LEN - 2];
    data[0] = 253; // routing type
    data[1] = 0; // segments left
    Ipv6RawExtHeader::new_raw(ip_number::UDP, &data).expect("a valid length")
}

/// Sizes of the extension headers of [`ipv6_ext_udp`], in the order written.
const HOP_BY_HOP_LEN: usize = 16; // hdrlen 1: exercises the walk's length formula
const DEST_OPTS_LEN: usize = 8;
const ROUTING_LEN: usize = 24;
/// Where the fragment header of [`ipv6_ext_udp`] starts.
const FRAGMENT_AT: usize = ETH_HLEN + IPV6_HLEN + HOP_BY_HOP_LEN + DEST_OPTS_LEN + ROUTING_LEN;

/// IPv6 with hop-by-hop, destination, routing and fragment headers (and
/// the final destination options when `final_options`), then UDP.
fn ipv6_ext_udp(fragment_offset: u16, final_options: bool) -> Vec<u8> {
    let more_fragments = fragment_offset == 0;
    let extensions = Ipv6Extensions {
        hop_by_hop_options: Some(options_header(HOP_BY_HOP_LEN)),
        destination_options: Some(options_header(DEST_OPTS_LEN)),
        routing: Some(Ipv6RoutingExtensions {
            routing: routing_header(),
            final_destination_options: final_options.then(|| options_header(DEST_OPTS_LEN)),
        }),
        fragment: Some(Ipv6FragmentHeader::new(
            ip_number::UDP,
            IpFragOffset::try_new(fragment_offset).expect("13-bit offset"),
            more_fragments,
            0x1234,
        )),
        auth: None,
    };
    let header = Ipv6Header {
        hop_limit: TTL,
        source: SRC_V6,
        destination: DST_V6,
        ..Default::default()
    };
    let mut frame = written(|f| {
        eth()
            .ip(IpHeaders::Ipv6(header, extensions))
            .udp(CLIENT_PORT, DNS)
            .write(f, PAYLOAD)
    });
    // etherparse 0.19 writes the offset's low bits and the M flag into the
    // wrong bits of the fragment header (its issue #150, fixed in 0.20):
    // rewrite that word as RFC 8200 4.5 lays it out.
    assert_eq!(frame[FRAGMENT_AT - ROUTING_LEN], ip_number::IPV6_FRAG.0);
    let word = fragment_offset << 3 | u16::from(more_fragments);
    frame[FRAGMENT_AT + 2..FRAGMENT_AT + 4].copy_from_slice(&word.to_be_bytes());
    frame
}

/// IPv6 with `count` destination-options headers in a row, then UDP.
/// etherparse's `Ipv6Extensions` holds at most two of them, so the chain is
/// put together from its header types.
fn ipv6_dest_opts_chain(count: usize) -> Vec<u8> {
    let mut ip = Ipv6Header {
        next_header: ip_number::IPV6_DEST_OPTIONS,
        hop_limit: TTL,
        source: SRC_V6,
        destination: DST_V6,
        ..Default::default()
    };
    ip.set_payload_length(count * DEST_OPTS_LEN + UdpHeader::LEN + PAYLOAD.len())
        .expect("a small payload");
    let udp = UdpHeader::with_ipv6_checksum(CLIENT_PORT, DNS, &ip, PAYLOAD).expect("small");

    let mut frame = Ethernet2Header {
        source: SRC_MAC,
        destination: DST_MAC,
        ether_type: EtherType::IPV6,
    }
    .to_bytes()
    .to_vec();
    frame.extend(ip.to_bytes());
    for i in 0..count {
        let mut options = options_header(DEST_OPTS_LEN);
        options.next_header = if i + 1 == count {
            ip_number::UDP
        } else {
            ip_number::IPV6_DEST_OPTIONS
        };
        frame.extend(options.to_bytes());
    }
    frame.extend(udp.to_bytes());
    frame.extend(PAYLOAD);
    frame
}

fn ipv6_extensions() -> Vec<Case> {
    let udp = with_ports(ipv6(ip_number::UDP), CLIENT_PORT, DNS);
    vec![
        Case::new("ipv6-ext-fragment-first-udp", ipv6_ext_udp(0, true), udp),
        // No final destination options: the fragment header's next header
        // is UDP, which is what a non-first fragment reports.
        Case::new(
            "ipv6-ext-fragment-later-udp",
            ipv6_ext_udp(185, false),
            flagged(ipv6(ip_number::UDP), FLAG_FRAGMENT),
        ),
        Case::new(
            "ipv6-ext-chain-at-limit-udp",
            ipv6_dest_opts_chain(MAX_EXT_HEADERS),
            udp,
        ),
        // The walk stops in front of the header past its limit and names it.
        Case::new(
            "ipv6-ext-chain-over-limit-udp",
            ipv6_dest_opts_chain(MAX_EXT_HEADERS + 1),
            flagged(ipv6(ip_number::IPV6_DEST_OPTIONS), FLAG_EXT_LIMIT),
        ),
        Case::new(
            "ipv6-payload-length-past-frame",
            with_ipv6_payload_length(ipv6_udp(), 200),
            flagged(ipv6(ip_number::UDP), FLAG_MALFORMED),
        ),
        // Payload Length 0 in front of hop-by-hop options: a jumbogram.
        Case::new(
            "ipv6-jumbogram",
            with_ipv6_payload_length(ipv6_ext_udp(0, true), 0),
            flagged(ipv6(ip_number::IPV6_HOP_BY_HOP), FLAG_MALFORMED),
        ),
    ]
}

/// An AH (RFC 4302) with a 12-byte ICV, as HMAC-SHA-256-128 has.
fn auth_header() -> IpAuthHeader {
    IpAuthHeader::new(ip_number::TCP, 0x1000, 1, &[0xaa; 12]).expect("a valid ICV length")
}

fn ipv4_ah_tcp_syn() -> Vec<u8> {
    let header = Ipv4Header::new(0, TTL, ip_number::AUTH, SRC_V4, DST_V4).expect("empty");
    let extensions = Ipv4Extensions {
        auth: Some(auth_header()),
    };
    written(|f| {
        eth()
            .ip(IpHeaders::Ipv4(header, extensions))
            .tcp(CLIENT_PORT, SSH, 1, 64240)
            .syn()
            .write(f, &[])
    })
}

fn ipv6_ah_tcp_syn() -> Vec<u8> {
    let header = Ipv6Header {
        hop_limit: TTL,
        source: SRC_V6,
        destination: DST_V6,
        ..Default::default()
    };
    let extensions = Ipv6Extensions {
        auth: Some(auth_header()),
        ..Default::default()
    };
    written(|f| {
        eth()
            .ip(IpHeaders::Ipv6(header, extensions))
            .tcp(CLIENT_PORT, SSH, 1, 64240)
            .syn()
            .write(f, &[])
    })
}

/// An ESP packet: SPI, sequence number, then ciphertext the walk cannot read.
fn esp(v6: bool) -> Vec<u8> {
    let mut body = vec![0, 0, 0x10, 0x01, 0, 0, 0, 1];
    body.extend([0x5a; 24]);
    written(|f| {
        if v6 {
            eth()
                .ipv6(SRC_V6, DST_V6, TTL)
                .write(f, ip_number::ENCAP_SEC, &body)
        } else {
            eth()
                .ipv4(SRC_V4, DST_V4, TTL)
                .write(f, ip_number::ENCAP_SEC, &body)
        }
    })
}

/// The stack takes AH off and delivers the segment inside, so the walk
/// steps over it (its length counts 4-octet units); ESP hides what it
/// carries and is reported as such.
fn ipsec() -> Vec<Case> {
    let syn = |l3: Notice| Notice {
        tcp_flags: SYN,
        ..with_ports(l3, CLIENT_PORT, SSH)
    };
    // AH's length byte (offset 1) patched to 0: 8 bytes, shorter than AH.
    let ah_at = ETH_HLEN + IPV6_HLEN;
    let mut short_ah = ipv6_ah_tcp_syn();
    short_ah[ah_at + 1] = 0;
    vec![
        Case::new(
            "ipv4-ah-tcp-syn",
            ipv4_ah_tcp_syn(),
            syn(ipv4(ip_number::TCP)),
        ),
        Case::new(
            "ipv6-ah-tcp-syn",
            ipv6_ah_tcp_syn(),
            syn(ipv6(ip_number::TCP)),
        ),
        Case::new(
            "ipv6-ah-too-short",
            short_ah,
            flagged(ipv6(ip_number::AUTH), FLAG_MALFORMED),
        ),
        Case::new("ipv4-esp", esp(false), ipv4(ip_number::ENCAP_SEC)),
        Case::new("ipv6-esp", esp(true), ipv6(ip_number::ENCAP_SEC)),
    ]
}

/// Frames that end inside a header: the notice keeps what was read before
/// the cut and says FLAG_TRUNCATED. Where the cut falls after the fixed IP
/// header, two cases: the frame cut short (its IP length field now claims
/// more than there is: FLAG_MALFORMED) and the datagram made short (the
/// length field says where it ends; the frame padded to 60 bytes as every
/// Ethernet sender pads it: FLAG_TRUNCATED, the tiny-fragment case).
fn truncations() -> Vec<Case> {
    let truncated = |notice: Notice| flagged(notice, FLAG_TRUNCATED);
    let malformed = |notice: Notice| flagged(notice, FLAG_MALFORMED);
    let nothing = truncated(PASSED); // DEPTH_NONE
    let mut cases = Vec::new();

    let tcp = Whole::new("ipv4-tcp-syn", ipv4_tcp_syn(), 4);
    let l4 = ETH_HLEN + IPV4_HLEN;
    let tcp4 = ipv4(ip_number::TCP);
    cases.extend([
        tcp.cut(0, "empty", nothing),
        tcp.cut(6, "in-ethernet", nothing),
        tcp.cut(ETH_HLEN - 1, "in-ethernet", nothing),
        tcp.cut(ETH_HLEN, "after-ethernet", truncated(l2(EtherType::IPV4))),
        tcp.cut(ETH_HLEN + 10, "in-ipv4", truncated(l2(EtherType::IPV4))),
        tcp.cut(l4, "after-ipv4", malformed(tcp4)),
        tcp.cut(l4 + 13, "in-tcp", malformed(tcp4)),
        tcp.ended(l4, "after-ipv4", truncated(tcp4)),
        // Eight bytes of TCP: ports, no flags.
        tcp.ended(l4 + 8, "in-tcp", truncated(tcp4)),
        tcp.ended(l4 + 19, "in-tcp", truncated(tcp4)),
    ]);

    let udp = Whole::new("ipv4-udp", ipv4_udp(), 4);
    cases.push(udp.ended(l4 + 4, "in-udp", truncated(ipv4(ip_number::UDP))));

    let icmp = Whole::new("ipv4-icmp-echo-request", ipv4_icmp_echo(), 4);
    cases.push(icmp.ended(l4 + 4, "in-icmp", truncated(ipv4(ip_number::ICMP))));

    // A datagram that ends inside its own options is shorter than its header.
    let options = Whole::new("ipv4-options-udp", ipv4_options_udp(), 4);
    cases.extend([
        options.cut(l4 + 4, "in-options", malformed(ipv4(ip_number::UDP))),
        options.ended(l4 + 4, "in-options", malformed(ipv4(ip_number::UDP))),
    ]);

    // The tag is read whole or not at all: cut inside it, the walk has no
    // VLAN id and no EtherType past the tag.
    let vlan = Whole::new("vlan-ipv4-udp", vlan_ipv4_udp(), 0);
    let tagged_len = ETH_HLEN + VLAN_HLEN;
    cases.extend([
        // Cut inside a tag, the frame still says it was tagged: its TPID.
        vlan.cut(
            ETH_HLEN + 2,
            "in-vlan-tag",
            truncated(l2(EtherType::VLAN_TAGGED_FRAME)),
        ),
        vlan.cut(
            tagged_len,
            "after-vlan-tag",
            truncated(tagged(l2(EtherType::IPV4), &[100])),
        ),
    ]);
    let qinq = Whole::new("qinq-ipv6-tcp-syn", qinq_ipv6_tcp(), 0);
    cases.push(qinq.cut(
        tagged_len + 2,
        "in-inner-tag",
        truncated(tagged(l2(EtherType::VLAN_TAGGED_FRAME), &[200])),
    ));

    let l4 = ETH_HLEN + IPV6_HLEN;
    let udp6 = Whole::new("ipv6-udp", ipv6_udp(), 6);
    cases.extend([
        udp6.cut(ETH_HLEN + 20, "in-ipv6", truncated(l2(EtherType::IPV6))),
        udp6.cut(l4, "after-ipv6", malformed(ipv6(ip_number::UDP))),
        udp6.ended(l4, "after-ipv6", truncated(ipv6(ip_number::UDP))),
        udp6.ended(l4 + 4, "in-udp", truncated(ipv6(ip_number::UDP))),
    ]);
    let tcp6 = Whole::new("ipv6-tcp-fin-psh-ack", ipv6_tcp_fin_psh_ack(), 6);
    cases.push(tcp6.ended(l4 + 10, "in-tcp", truncated(ipv6(ip_number::TCP))));
    let icmp6 = Whole::new("ipv6-icmpv6-echo-request", ipv6_icmpv6_echo(), 6);
    cases.push(icmp6.ended(l4 + 4, "in-icmpv6", truncated(ipv6(ip_number::IPV6_ICMP))));

    let ext = Whole::new("ipv6-ext-fragment-first-udp", ipv6_ext_udp(0, true), 6);
    let hop_by_hop = truncated(ipv6(ip_number::IPV6_HOP_BY_HOP));
    cases.extend([
        ext.ended(l4 + 1, "in-hop-by-hop", hop_by_hop),
        ext.ended(l4 + 10, "in-hop-by-hop", hop_by_hop),
        ext.ended(
            FRAGMENT_AT + 4,
            "in-fragment-header",
            truncated(ipv6(ip_number::IPV6_FRAG)),
        ),
    ]);
    let ah = Whole::new("ipv6-ah-tcp-syn", ipv6_ah_tcp_syn(), 6);
    cases.push(ah.ended(l4 + 16, "in-ah", truncated(ipv6(ip_number::AUTH))));
    cases
}
