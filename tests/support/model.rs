//! The reference model of the fuzzer: what the XDP program must report and
//! decide for a frame under a rule set. The walk is written from its spec
//! (HACKING.md, "The walk and the verdict") and the RFCs, in plain
//! user-space Rust, never from the BPF code; headers are decoded with
//! etherparse, and where etherparse refuses something the spec still walks,
//! the comment says so and the model does what the spec says. Which rule
//! decides is `policy::evaluate`, the matching spec as code, so that the
//! rules have one reference.

use etherparse::err::ipv4::{HeaderError as Ipv4Error, HeaderSliceError as Ipv4SliceError};
use etherparse::err::ipv6::HeaderSliceError as Ipv6SliceError;
use etherparse::{
    ArpPacketSlice, Ethernet2HeaderSlice, Icmpv4Slice, Icmpv6Slice, IpAuthHeaderSlice,
    Ipv4HeaderSlice, Ipv6FragmentHeaderSlice, Ipv6HeaderSlice, Ipv6RawExtHeaderSlice,
    SingleVlanHeaderSlice, TcpHeaderSlice, UdpHeaderSlice,
};
use xdp_hello::abi::*;
use xdp_hello::policy::evaluate::{evaluate, Packet};
use xdp_hello::policy::{Action, Rule};

/// Ethernet/IPv4 ARP: htype 1, ptype 0x0800, hlen 6, plen 4 (RFC 826).
const ARP_ETHERNET_IPV4: [u8; 6] = [0, 1, 0x08, 0x00, 6, 4];

/// A rule set as the program has it: the rules in order, each with the
/// counter slot the kernel reports for it, the `--default` verdict, and
/// the interfaces its `on` rules name.
pub struct Policy {
    pub rules: Vec<Rule>,
    pub slots: Vec<u32>,
    pub default_verdict: u8,
    /// The ifindex of an interface name, as the rules were compiled with.
    pub iface_of: fn(&str) -> Option<u32>,
    /// The interface the frames arrive on.
    pub ifindex: u32,
}

/// The notice the program must produce for `frame` under `set` — every field
/// but the run-dependent `timestamp_ns`, `ifindex` and `rx_queue` (left 0) —
/// and who decided it.
pub fn expect(frame: &[u8], set: &Policy) -> (Notice, Decision) {
    let mut notice = walk(frame);
    let decision = decide(&notice, set);
    let (verdict, rule_id) = match decision {
        Decision::Rule(index) => (verdict_of(set.rules[index].action), set.slots[index]),
        Decision::Default => (set.default_verdict, RULE_NONE),
        Decision::Verdict(verdict) => (verdict, RULE_NONE),
    };
    notice.verdict = verdict;
    notice.rule_id = rule_id;
    (notice, decision)
}

// ---------------------------------------------------------------------------
// The walk

/// The walk's state: the notice so far and where the datagram ends.
struct Walk<'a> {
    frame: &'a [u8],
    notice: Notice,
    /// Bytes from here on are past the bound: the frame end for L2 and the
    /// fixed IP header, the datagram end (IP length field) after that.
    bound: usize,
}

/// Why the walk stopped early; the flag it sets.
struct Stop;

impl<'a> Walk<'a> {
    /// The bytes from `at` to the bound, if at least `len` of them.
    fn read(&mut self, at: usize, len: usize) -> Result<&'a [u8], Stop> {
        match self.frame[..self.bound].get(at..) {
            Some(rest) if rest.len() >= len => Ok(rest),
            _ => Err(self.flag(FLAG_TRUNCATED)),
        }
    }

    fn flag(&mut self, flag: u8) -> Stop {
        self.notice.flags |= flag;
        Stop
    }
}

/// The notice fields the walk sets for `frame` (verdict PASS, no rule).
pub fn walk(frame: &[u8]) -> Notice {
    let mut walk = Walk {
        frame,
        notice: Notice {
            packet_len: frame.len() as u32,
            ..Notice::ZERO
        },
        bound: frame.len(),
    };
    let _ = walk_ethernet(&mut walk);
    walk.notice
}

fn walk_ethernet(walk: &mut Walk) -> Result<(), Stop> {
    let eth =
        Ethernet2HeaderSlice::from_slice(walk.frame).map_err(|_| walk.flag(FLAG_TRUNCATED))?;
    let n = &mut walk.notice;
    n.depth = DEPTH_L2;
    n.eth_dst = eth.destination();
    n.eth_src = eth.source();
    n.ether_type = eth.ether_type().0;
    let mut at = eth.slice().len();

    while is_vlan_tpid(walk.notice.ether_type) && (walk.notice.vlan_count as usize) < MAX_VLAN_TAGS
    {
        let rest = walk.read(at, 4)?;
        let tag = SingleVlanHeaderSlice::from_slice(rest).expect("4 bytes read");
        let n = &mut walk.notice;
        match n.vlan_count {
            0 => n.vlan_outer = tag.vlan_identifier().value(),
            1 => n.vlan_inner = tag.vlan_identifier().value(),
            _ => {}
        }
        n.vlan_count += 1;
        n.ether_type = tag.ether_type().0;
        at += tag.slice().len();
    }
    if is_vlan_tpid(walk.notice.ether_type) {
        return Err(walk.flag(FLAG_VLAN_LIMIT));
    }

    match walk.notice.ether_type {
        ETH_P_ARP => walk_arp(walk, at),
        ETH_P_IP => walk_ipv4(walk, at),
        ETH_P_IPV6 => walk_ipv6(walk, at),
        _ => Ok(()),
    }
}

fn is_vlan_tpid(ether_type: u16) -> bool {
    ether_type == ETH_P_8021Q || ether_type == ETH_P_8021AD
}

fn walk_arp(walk: &mut Walk, at: usize) -> Result<(), Stop> {
    let rest = walk.read(at, 8)?;
    // ArpPacketSlice wants the addresses of whatever sizes the header
    // claims; the spec reads them only for Ethernet/IPv4 ARP.
    if rest[..6] != ARP_ETHERNET_IPV4 {
        return Ok(());
    }
    let rest = walk.read(at, 28)?;
    let arp = ArpPacketSlice::from_slice(rest).expect("28 bytes read");
    let n = &mut walk.notice;
    n.arp_op = u8::try_from(arp.operation().0).unwrap_or(0);
    n.src_addr[..4].copy_from_slice(arp.sender_protocol_addr());
    n.src_addr[4..10].copy_from_slice(arp.sender_hw_addr());
    n.dst_addr[..4].copy_from_slice(arp.target_protocol_addr());
    n.dst_addr[4..10].copy_from_slice(arp.target_hw_addr());
    n.depth = DEPTH_L3;
    Ok(())
}

fn walk_ipv4(walk: &mut Walk, at: usize) -> Result<(), Stop> {
    let rest = &walk.frame[at..];
    // etherparse checks, in the spec's order: 20 bytes, version, IHL >= 5,
    // then the options in the frame. That last refusal the spec does not
    // make here: Total Length (>= IHL*4) must then exceed the frame, which
    // is MALFORMED after the fixed fields are taken, so read those by the
    // RFC 791 layout.
    let (ihl_bytes, protocol, src, dst, total_len, frag_off) =
        match Ipv4HeaderSlice::from_slice(rest) {
            Ok(ip) => (
                ip.slice().len(),
                ip.protocol().0,
                ip.source(),
                ip.destination(),
                ip.total_len() as usize,
                ip.fragments_offset().value(),
            ),
            Err(Ipv4SliceError::Len(len)) if len.required_len == 20 => {
                return Err(walk.flag(FLAG_TRUNCATED))
            }
            Err(Ipv4SliceError::Content(
                Ipv4Error::UnexpectedVersion { .. }
                | Ipv4Error::HeaderLengthSmallerThanHeader { .. },
            )) => return Err(walk.flag(FLAG_MALFORMED)),
            Err(Ipv4SliceError::Len(_)) => (
                usize::from(rest[0] & 0x0f) * 4,
                rest[9],
                rest[12..16].try_into().unwrap(),
                rest[16..20].try_into().unwrap(),
                usize::from(u16::from_be_bytes([rest[2], rest[3]])),
                u16::from_be_bytes([rest[6], rest[7]]) & 0x1fff,
            ),
        };
    let n = &mut walk.notice;
    n.ip_version = 4;
    n.l4_proto = protocol;
    n.src_addr[..4].copy_from_slice(&src);
    n.dst_addr[..4].copy_from_slice(&dst);
    n.depth = DEPTH_L3;
    if total_len < ihl_bytes || total_len > rest.len() {
        return Err(walk.flag(FLAG_MALFORMED));
    }
    // Ethernet padding after the datagram is never read.
    walk.bound = at + total_len;
    if frag_off == 1 && protocol == IPPROTO_TCP {
        // RFC 1858: an offset of 8 bytes rewrites the first fragment's
        // TCP flags.
        return Err(walk.flag(FLAG_MALFORMED | FLAG_FRAGMENT));
    }
    if frag_off != 0 {
        return Err(walk.flag(FLAG_FRAGMENT));
    }
    walk_extensions(walk, at + ihl_bytes, protocol)
}

fn walk_ipv6(walk: &mut Walk, at: usize) -> Result<(), Stop> {
    let ip = match Ipv6HeaderSlice::from_slice(&walk.frame[at..]) {
        Ok(ip) => ip,
        Err(Ipv6SliceError::Len(_)) => return Err(walk.flag(FLAG_TRUNCATED)),
        Err(Ipv6SliceError::Content(_)) => return Err(walk.flag(FLAG_MALFORMED)),
    };
    let next = ip.next_header().0;
    let payload_len = usize::from(ip.payload_length());
    let n = &mut walk.notice;
    n.ip_version = 6;
    n.l4_proto = next;
    n.src_addr = ip.source();
    n.dst_addr = ip.destination();
    n.depth = DEPTH_L3;
    if 40 + payload_len > walk.frame.len() - at {
        return Err(walk.flag(FLAG_MALFORMED));
    }
    // RFC 2675: a jumbogram's length is in its hop-by-hop option; on a
    // link with frames this size it cannot be one.
    if payload_len == 0 && next == IPPROTO_HOPOPTS {
        return Err(walk.flag(FLAG_MALFORMED));
    }
    walk.bound = at + 40 + payload_len;
    walk_extensions(walk, at + 40, next)
}

/// The extension headers from `at` (first one: `next`), then the transport.
fn walk_extensions(walk: &mut Walk, mut at: usize, mut next: u8) -> Result<(), Stop> {
    let version = walk.notice.ip_version;
    for _ in 0..MAX_EXT_HEADERS {
        walk.notice.l4_proto = next;
        if !is_extension_header(version, next) {
            break;
        }
        match next {
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => {
                // RFC 8200 4.3-4.6: the length counts 8-octet units after
                // the first 8. A short slice is TRUNCATED either way.
                let rest = walk.read(at, 2)?;
                let header = Ipv6RawExtHeaderSlice::from_slice(rest)
                    .map_err(|_| walk.flag(FLAG_TRUNCATED))?;
                next = header.next_header().0;
                at += header.slice().len();
            }
            IPPROTO_FRAGMENT => {
                let rest = walk.read(at, 8)?;
                let header = Ipv6FragmentHeaderSlice::from_slice(rest).expect("8 bytes read");
                next = header.next_header().0;
                // RFC 8200 4.5: the offset is the top 13 bits of bytes 2-3.
                // Not etherparse 0.19's fragment_offset(), which reads other
                // bits (its issue #150, fixed in 0.20).
                let offset = u16::from_be_bytes([rest[2], rest[3]]) >> 3;
                if offset != 0 {
                    walk.notice.l4_proto = next;
                    return Err(walk.flag(FLAG_FRAGMENT));
                }
                at += header.slice().len();
            }
            IPPROTO_AH => {
                // RFC 4302 2.2: the length counts 4-octet units, minus 2.
                // etherparse checks for 12 bytes before it looks at the
                // length; the spec reads the length first, so a too-short
                // AH is MALFORMED even when the datagram ends early.
                let rest = walk.read(at, 2)?;
                let len = (usize::from(rest[1]) + 2) * 4;
                if len < 12 {
                    return Err(walk.flag(FLAG_MALFORMED));
                }
                walk.read(at, len)?;
                let header = IpAuthHeaderSlice::from_slice(rest).expect("whole AH read");
                next = header.next_header().0;
                at += header.slice().len();
            }
            _ => unreachable!("is_extension_header lists no other"),
        }
    }
    walk.notice.l4_proto = next;
    if is_extension_header(version, next) {
        return Err(walk.flag(FLAG_EXT_LIMIT));
    }
    walk_transport(walk, at)
}

fn walk_transport(walk: &mut Walk, at: usize) -> Result<(), Stop> {
    let n = walk.notice;
    match (n.l4_proto, n.ip_version) {
        (IPPROTO_TCP, _) => {
            let rest = walk.read(at, 20)?;
            // TcpHeaderSlice refuses a data offset under 5 or options past
            // the slice; the spec reads the fixed 20 bytes only.
            let (src, dst, flags) = match TcpHeaderSlice::from_slice(rest) {
                Ok(tcp) => (tcp.source_port(), tcp.destination_port(), tcp.slice()[13]),
                Err(_) => (
                    u16::from_be_bytes([rest[0], rest[1]]),
                    u16::from_be_bytes([rest[2], rest[3]]),
                    rest[13],
                ),
            };
            walk.notice.src_port = src;
            walk.notice.dst_port = dst;
            walk.notice.tcp_flags = flags;
        }
        (IPPROTO_UDP, _) => {
            let rest = walk.read(at, 8)?;
            let udp = UdpHeaderSlice::from_slice(rest).expect("8 bytes read");
            walk.notice.src_port = udp.source_port();
            walk.notice.dst_port = udp.destination_port();
        }
        (IPPROTO_ICMP, 4) => {
            let rest = walk.read(at, 8)?;
            // Icmpv4Slice wants 20 bytes of a timestamp message (types 13
            // and 14); the spec reads the 8-byte header of any type.
            let (icmp_type, icmp_code) = match Icmpv4Slice::from_slice(rest) {
                Ok(icmp) => (icmp.type_u8(), icmp.code_u8()),
                Err(_) => (rest[0], rest[1]),
            };
            walk.notice.icmp_type = icmp_type;
            walk.notice.icmp_code = icmp_code;
        }
        (IPPROTO_ICMPV6, 6) => {
            let rest = walk.read(at, 8)?;
            let icmp = Icmpv6Slice::from_slice(rest).expect("8 bytes read");
            walk.notice.icmp_type = icmp.type_u8();
            walk.notice.icmp_code = icmp.code_u8();
        }
        _ => return Ok(()),
    }
    walk.notice.depth = DEPTH_L4;
    Ok(())
}

// ---------------------------------------------------------------------------
// The verdict

/// Who decides a walked frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The rule of this index, the first that matches.
    Rule(usize),
    /// No rule matches: `--default`.
    Default,
    /// No rule is asked: non-IP passes, unjudgeable IP fails closed.
    Verdict(u8),
}

pub fn verdict_of(action: Action) -> u8 {
    match action {
        Action::Allow => XDP_PASS,
        Action::Deny => XDP_DROP,
    }
}

/// Who decides a walked `notice` under `set`. What the rules cannot judge
/// is settled first, as the spec says: non-IP passes; IP the walk could not
/// find or trust (no IP header behind the EtherType or VLAN tags, or a
/// malformed one) is dropped while any rule is in force, else the default
/// decides. Everything else is `policy::evaluate`'s.
pub fn decide(notice: &Notice, set: &Policy) -> Decision {
    let fail_closed = if set.rules.is_empty() {
        Decision::Verdict(set.default_verdict)
    } else {
        Decision::Verdict(XDP_DROP)
    };
    if notice.ip_version == 0 {
        return match notice.ether_type {
            ETH_P_IP | ETH_P_IPV6 | ETH_P_8021Q | ETH_P_8021AD => fail_closed,
            _ => Decision::Verdict(XDP_PASS),
        };
    }
    if notice.flags & FLAG_MALFORMED != 0 {
        return fail_closed;
    }
    let arrived = Notice {
        ifindex: set.ifindex,
        ..*notice
    };
    let packet = Packet::from_notice(&arrived).expect("an IP notice is a packet");
    match evaluate(&set.rules, &set.iface_of, &packet) {
        Some(index) => Decision::Rule(index),
        None => Decision::Default,
    }
}
