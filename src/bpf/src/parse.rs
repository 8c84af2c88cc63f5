//! A bounds-checked walk over the headers of one frame: Ethernet, up to two
//! VLAN tags, IPv4 or IPv6 (with extension headers), then TCP, UDP, ICMP or
//! ICMPv6. It fills in a [`Notice`] as far as it gets and never fails: where
//! the frame ends early or makes no sense, `depth` and `flags` say so.

use core::mem::size_of;

use crate::abi::*;
use crate::vmlinux::{
    ethhdr, frag_hdr, icmp6hdr, icmphdr, iphdr, ipv6_opt_hdr, ipv6hdr, tcphdr, udphdr, vlan_hdr,
    xdp_md,
};

const MAX_VLAN_TAGS: usize = 2;
/// Extension headers walked before giving up (FLAG_EXT_LIMIT).
const MAX_IPV6_EXT_HEADERS: usize = 6;

/// A read position inside the packet. Every read checks against `end` first,
/// in the form the verifier can follow.
struct Cursor {
    pos: usize,
    end: usize,
}

impl Cursor {
    /// Reads a `T` at the position and steps past it.
    #[inline(always)]
    fn read<T: Copy>(&mut self) -> Option<T> {
        let value = self.peek::<T>()?;
        self.pos += size_of::<T>();
        Some(value)
    }

    #[inline(always)]
    fn peek<T: Copy>(&self) -> Option<T> {
        if self.pos + size_of::<T>() > self.end {
            return None;
        }
        // Headers are not aligned in the frame.
        Some(unsafe { (self.pos as *const T).read_unaligned() })
    }

    #[inline(always)]
    fn skip(&mut self, len: usize) -> Option<()> {
        if self.pos + len > self.end {
            return None;
        }
        self.pos += len;
        Some(())
    }
}

/// Walks the frame behind `ctx` and records what it finds in `notice`.
#[inline(always)]
pub fn parse_packet(ctx: &xdp_md, notice: &mut Notice) {
    let mut cursor = Cursor {
        pos: ctx.data as usize,
        end: ctx.data_end as usize,
    };
    notice.packet_len = (cursor.end - cursor.pos) as u32;
    if walk(&mut cursor, notice).is_none() {
        notice.flags |= FLAG_TRUNCATED;
    }
}

/// `None` means the frame ended inside a header.
#[inline(always)]
fn walk(cursor: &mut Cursor, notice: &mut Notice) -> Option<()> {
    let eth = cursor.read::<ethhdr>()?;
    notice.depth = DEPTH_L2;
    let mut ether_type = u16::from_be(eth.h_proto);
    // Set as we go, so a frame cut inside a VLAN tag still shows its TPID.
    notice.ether_type = ether_type;

    for tag in 0..MAX_VLAN_TAGS {
        if ether_type != ETH_P_8021Q && ether_type != ETH_P_8021AD {
            break;
        }
        let vlan = cursor.read::<vlan_hdr>()?;
        let id = u16::from_be(vlan.h_vlan_TCI) & 0x0fff;
        if tag == 0 {
            notice.vlan_outer = id;
        } else {
            notice.vlan_inner = id;
        }
        ether_type = u16::from_be(vlan.h_vlan_encapsulated_proto);
        notice.ether_type = ether_type;
    }

    let l4_proto = match ether_type {
        ETH_P_IP => walk_ipv4(cursor, notice)?,
        ETH_P_IPV6 => walk_ipv6(cursor, notice)?,
        _ => return Some(()),
    };
    match l4_proto {
        Some(proto) => walk_l4(cursor, notice, proto),
        None => Some(()),
    }
}

/// Returns the transport protocol to walk next, or `Some(None)` where there is
/// no transport header to look at (fragment, malformed).
#[inline(always)]
fn walk_ipv4(cursor: &mut Cursor, notice: &mut Notice) -> Option<Option<u8>> {
    let ip = cursor.read::<iphdr>()?;
    let header_len = ip.ihl() as usize * 4;
    if ip.version() != 4 || header_len < size_of::<iphdr>() {
        notice.flags |= FLAG_MALFORMED;
        return Some(None);
    }
    notice.ip_version = 4;
    notice.l4_proto = ip.protocol;
    let addrs = unsafe { ip.__bindgen_anon_1.addrs };
    notice.src_addr[..4].copy_from_slice(&addrs.saddr.to_ne_bytes());
    notice.dst_addr[..4].copy_from_slice(&addrs.daddr.to_ne_bytes());
    notice.depth = DEPTH_L3;

    cursor.skip(header_len - size_of::<iphdr>())?; // options
    let fragment_offset = u16::from_be(ip.frag_off) & 0x1fff;
    if fragment_offset == 1 && ip.protocol == IPPROTO_TCP {
        // Overlaps the TCP header of the first fragment: an attack, never
        // traffic (RFC 1858, 3.2).
        notice.flags |= FLAG_MALFORMED | FLAG_FRAGMENT;
        return Some(None);
    }
    if fragment_offset != 0 {
        notice.flags |= FLAG_FRAGMENT;
        return Some(None);
    }
    Some(Some(ip.protocol))
}

#[inline(always)]
fn walk_ipv6(cursor: &mut Cursor, notice: &mut Notice) -> Option<Option<u8>> {
    let ip = cursor.read::<ipv6hdr>()?;
    if ip.version() != 6 {
        notice.flags |= FLAG_MALFORMED;
        return Some(None);
    }
    notice.ip_version = 6;
    let addrs = unsafe { ip.__bindgen_anon_1.addrs };
    notice.src_addr = unsafe { addrs.saddr.in6_u.u6_addr8 };
    notice.dst_addr = unsafe { addrs.daddr.in6_u.u6_addr8 };
    notice.depth = DEPTH_L3;

    let mut next = ip.nexthdr;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        notice.l4_proto = next;
        match next {
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => {
                let ext = cursor.peek::<ipv6_opt_hdr>()?;
                cursor.skip((ext.hdrlen as usize + 1) * 8)?;
                next = ext.nexthdr;
            }
            IPPROTO_FRAGMENT => {
                let frag = cursor.read::<frag_hdr>()?;
                next = frag.nexthdr;
                if u16::from_be(frag.frag_off) & 0xfff8 != 0 {
                    notice.l4_proto = next;
                    notice.flags |= FLAG_FRAGMENT;
                    return Some(None);
                }
            }
            _ => return Some(Some(next)),
        }
    }
    notice.l4_proto = next;
    if matches!(
        next,
        IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS | IPPROTO_FRAGMENT
    ) {
        notice.flags |= FLAG_EXT_LIMIT;
        return Some(None);
    }
    Some(Some(next))
}

#[inline(always)]
fn walk_l4(cursor: &mut Cursor, notice: &mut Notice, proto: u8) -> Option<()> {
    match proto {
        IPPROTO_TCP => {
            let tcp = cursor.read::<tcphdr>()?;
            notice.src_port = u16::from_be(tcp.source);
            notice.dst_port = u16::from_be(tcp.dest);
            notice.tcp_flags = tcp_flags(&tcp);
        }
        IPPROTO_UDP => {
            let udp = cursor.read::<udphdr>()?;
            notice.src_port = u16::from_be(udp.source);
            notice.dst_port = u16::from_be(udp.dest);
        }
        IPPROTO_ICMP if notice.ip_version == 4 => {
            let icmp = cursor.read::<icmphdr>()?;
            notice.icmp_type = icmp.type_;
            notice.icmp_code = icmp.code;
        }
        IPPROTO_ICMPV6 if notice.ip_version == 6 => {
            let icmp = cursor.read::<icmp6hdr>()?;
            notice.icmp_type = icmp.icmp6_type;
            notice.icmp_code = icmp.icmp6_code;
        }
        _ => return Some(()),
    }
    notice.depth = DEPTH_L4;
    Some(())
}

/// The eight flag bits of byte 13 of the TCP header, FIN in bit 0.
#[inline(always)]
fn tcp_flags(tcp: &tcphdr) -> u8 {
    (tcp.fin() | tcp.syn() << 1 | tcp.rst() << 2 | tcp.psh() << 3 | tcp.ack() << 4) as u8
        | ((tcp.urg() | tcp.ece() << 1 | tcp.cwr() << 2) << 5) as u8
}
