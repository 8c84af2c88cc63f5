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
    ip_number, ArpHardwareId, ArpOperation, ArpPacket, EtherType, Ethernet2Header, IpFragOffset,
    IpHeaders, IpNumber, Ipv4Header, Ipv4Options, Ipv6Extensions, Ipv6FragmentHeader, Ipv6Header,
    Ipv6RawExtHeader, Ipv6RoutingExtensions, PacketBuilder, PacketBuilderStep, SingleVlanHeader,
    UdpHeader, VlanId, VlanPcp,
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
}

impl Whole {
    fn new(name: &'static str, frame: Vec<u8>) -> Whole {
        Whole { name, frame }
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
const PAYLOAD: &[u8] = b"xdp-hello";

const ETH_HLEN: usize = 14;
const VLAN_HLEN: usize = 4;
const IPV4_HLEN: usize = 20;
const IPV6_HLEN: usize = 40;

/// Every case, in a stable order.
pub fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(transports());
    cases.extend(vlans());
    cases.push(Case::new("arp-request", arp_request(), l2(EtherType::ARP)));
    cases.extend(ipv4_specials());
    cases.extend(ipv6_extensions());
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
        ..PASSED
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

fn vlans() -> Vec<Case> {
    // etherparse's builder stops at two tags: the link layer of the
    // three-tag frame is made of its header types, the rest by the builder.
    let tag = |id: u16, ether_type: EtherType| SingleVlanHeader {
        pcp: VlanPcp::ZERO,
        drop_eligible_indicator: false,
        vlan_id: vlan_id(id),
        ether_type,
    };
    let mut three_tags = Ethernet2Header {
        source: SRC_MAC,
        destination: DST_MAC,
        ether_type: EtherType::PROVIDER_BRIDGING,
    }
    .to_bytes()
    .to_vec();
    three_tags.extend(tag(10, EtherType::VLAN_TAGGED_FRAME).to_bytes());
    three_tags.extend(tag(20, EtherType::VLAN_TAGGED_FRAME).to_bytes());
    three_tags.extend(tag(30, EtherType::IPV4).to_bytes());
    three_tags.extend(written(|f| {
        PacketBuilder::ipv4(SRC_V4, DST_V4, TTL)
            .udp(CLIENT_PORT, DNS)
            .write(f, PAYLOAD)
    }));

    vec![
        Case::new(
            "vlan-ipv4-udp",
            vlan_ipv4_udp(),
            Notice {
                vlan_outer: 100,
                ..with_ports(ipv4(ip_number::UDP), CLIENT_PORT, DNS)
            },
        ),
        Case::new(
            "qinq-ipv6-tcp-syn",
            qinq_ipv6_tcp(),
            Notice {
                vlan_outer: 200,
                vlan_inner: 300,
                tcp_flags: SYN,
                ..with_ports(ipv6(ip_number::TCP), CLIENT_PORT, HTTPS)
            },
        ),
        // The walk reads two tags; what follows them is the third tag's
        // TPID, reported as the EtherType and not walked into.
        Case::new(
            "vlan-three-tags",
            three_tags,
            Notice {
                vlan_outer: 10,
                vlan_inner: 20,
                ..l2(EtherType::VLAN_TAGGED_FRAME)
            },
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
    ]
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

/// Extension headers the walk follows before it gives up (FLAG_EXT_LIMIT).
const EXT_HEADER_LIMIT: usize = 6;

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
            ipv6_dest_opts_chain(EXT_HEADER_LIMIT),
            udp,
        ),
        // The walk stops in front of the seventh header and names it.
        Case::new(
            "ipv6-ext-chain-over-limit-udp",
            ipv6_dest_opts_chain(EXT_HEADER_LIMIT + 1),
            flagged(ipv6(ip_number::IPV6_DEST_OPTIONS), FLAG_EXT_LIMIT),
        ),
    ]
}

/// Frames that end inside a header: the notice keeps what was read before
/// the cut and says FLAG_TRUNCATED.
fn truncations() -> Vec<Case> {
    let truncated = |notice: Notice| flagged(notice, FLAG_TRUNCATED);
    let nothing = truncated(PASSED); // DEPTH_NONE
    let mut cases = Vec::new();

    let tcp = Whole::new("ipv4-tcp-syn", ipv4_tcp_syn());
    let l4 = ETH_HLEN + IPV4_HLEN;
    cases.extend([
        tcp.cut(0, "empty", nothing),
        tcp.cut(6, "in-ethernet", nothing),
        tcp.cut(ETH_HLEN - 1, "in-ethernet", nothing),
        tcp.cut(ETH_HLEN, "after-ethernet", truncated(l2(EtherType::IPV4))),
        tcp.cut(ETH_HLEN + 10, "in-ipv4", truncated(l2(EtherType::IPV4))),
        tcp.cut(l4, "after-ipv4", truncated(ipv4(ip_number::TCP))),
        tcp.cut(l4 + 13, "in-tcp", truncated(ipv4(ip_number::TCP))),
        tcp.cut(l4 + 19, "in-tcp", truncated(ipv4(ip_number::TCP))),
    ]);

    let udp = Whole::new("ipv4-udp", ipv4_udp());
    cases.push(udp.cut(l4 + 4, "in-udp", truncated(ipv4(ip_number::UDP))));

    let icmp = Whole::new("ipv4-icmp-echo-request", ipv4_icmp_echo());
    cases.push(icmp.cut(l4 + 4, "in-icmp", truncated(ipv4(ip_number::ICMP))));

    let options = Whole::new("ipv4-options-udp", ipv4_options_udp());
    cases.push(options.cut(l4 + 4, "in-options", truncated(ipv4(ip_number::UDP))));

    // The tag is read whole or not at all: cut inside it, the walk has no
    // VLAN id and no EtherType past the tag.
    let vlan = Whole::new("vlan-ipv4-udp", vlan_ipv4_udp());
    let tagged = ETH_HLEN + VLAN_HLEN;
    cases.extend([
        // Cut inside a tag, the frame still says it was tagged: its TPID.
        vlan.cut(
            ETH_HLEN + 2,
            "in-vlan-tag",
            truncated(l2(EtherType::VLAN_TAGGED_FRAME)),
        ),
        vlan.cut(
            tagged,
            "after-vlan-tag",
            truncated(Notice {
                vlan_outer: 100,
                ..l2(EtherType::IPV4)
            }),
        ),
    ]);
    let qinq = Whole::new("qinq-ipv6-tcp-syn", qinq_ipv6_tcp());
    cases.push(qinq.cut(
        tagged + 2,
        "in-inner-tag",
        truncated(Notice {
            vlan_outer: 200,
            ..l2(EtherType::VLAN_TAGGED_FRAME)
        }),
    ));

    let l4 = ETH_HLEN + IPV6_HLEN;
    let udp6 = Whole::new("ipv6-udp", ipv6_udp());
    cases.extend([
        udp6.cut(ETH_HLEN + 20, "in-ipv6", truncated(l2(EtherType::IPV6))),
        udp6.cut(l4, "after-ipv6", truncated(ipv6(ip_number::UDP))),
        udp6.cut(l4 + 4, "in-udp", truncated(ipv6(ip_number::UDP))),
    ]);
    let tcp6 = Whole::new("ipv6-tcp-fin-psh-ack", ipv6_tcp_fin_psh_ack());
    cases.push(tcp6.cut(l4 + 10, "in-tcp", truncated(ipv6(ip_number::TCP))));
    let icmp6 = Whole::new("ipv6-icmpv6-echo-request", ipv6_icmpv6_echo());
    cases.push(icmp6.cut(l4 + 4, "in-icmpv6", truncated(ipv6(ip_number::IPV6_ICMP))));

    let ext = Whole::new("ipv6-ext-fragment-first-udp", ipv6_ext_udp(0, true));
    cases.extend([
        ext.cut(
            l4 + 1,
            "in-hop-by-hop",
            truncated(ipv6(ip_number::IPV6_HOP_BY_HOP)),
        ),
        ext.cut(
            l4 + 10,
            "in-hop-by-hop",
            truncated(ipv6(ip_number::IPV6_HOP_BY_HOP)),
        ),
        ext.cut(
            FRAGMENT_AT + 4,
            "in-fragment-header",
            truncated(ipv6(ip_number::IPV6_FRAG)),
        ),
    ]);
    cases
}
