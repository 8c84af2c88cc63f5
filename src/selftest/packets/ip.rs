//! Cases past the plain IP header: IPv4 options and fragments, the IPv6
//! extension header chain, and IPsec (AH walked over, ESP reported).

use etherparse::{
    ip_number, IpAuthHeader, IpFragOffset, IpHeaders, Ipv4Extensions, Ipv4Header, Ipv4Options,
    Ipv6Extensions, Ipv6FragmentHeader, Ipv6Header, Ipv6RawExtHeader, Ipv6RoutingExtensions,
    UdpHeader,
};

use super::*;

/// Eight bytes of options (IHL 7): Router Alert, then NOPs and the end.
const IPV4_OPTIONS: [u8; 8] = [0x94, 0x04, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00];

pub(super) fn ipv4_options_udp() -> Vec<u8> {
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

pub(super) fn ipv4_specials() -> Vec<Case> {
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
pub fn padded(mut frame: Vec<u8>) -> Vec<u8> {
    frame.resize(frame.len().max(ETH_ZLEN), 0);
    frame
}

/// `frame` (IPv4 right after Ethernet) with Total Length set to `len`. The
/// header checksum goes stale: the program does not check it.
pub fn with_ipv4_total_length(mut frame: Vec<u8>, len: u16) -> Vec<u8> {
    frame[ETH_HLEN + 2..ETH_HLEN + 4].copy_from_slice(&len.to_be_bytes());
    frame
}

/// `frame` (IPv6 right after Ethernet) with Payload Length set to `len`.
pub fn with_ipv6_payload_length(mut frame: Vec<u8>, len: u16) -> Vec<u8> {
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
pub(super) const FRAGMENT_AT: usize =
    ETH_HLEN + IPV6_HLEN + HOP_BY_HOP_LEN + DEST_OPTS_LEN + ROUTING_LEN;

/// IPv6 with hop-by-hop, destination, routing and fragment headers (and
/// the final destination options when `final_options`), then UDP.
pub(super) fn ipv6_ext_udp(fragment_offset: u16, final_options: bool) -> Vec<u8> {
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

pub(super) fn ipv6_extensions() -> Vec<Case> {
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

pub(super) fn ipv6_ah_tcp_syn() -> Vec<u8> {
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
pub(super) fn ipsec() -> Vec<Case> {
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
