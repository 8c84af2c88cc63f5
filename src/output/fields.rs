//! What a notice's fields say, read out for both writers and written
//! straight into the output buffer: whether it has ports, its numbers and
//! addresses as text, its ARP body, MACs and VLAN ids.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::abi::*;

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

pub(super) fn has_ports(notice: &Notice) -> bool {
    notice.depth >= DEPTH_L4 && matches!(notice.l4_proto, IPPROTO_TCP | IPPROTO_UDP)
}

/// A number in decimal, through itoa: no core::fmt on the hot path.
pub(super) fn push_num(out: &mut Vec<u8>, number: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(number).as_bytes());
}

/// `value` in lowercase hex, at least `digits` digits (`{:0digits$x}`).
pub(super) fn push_hex(out: &mut Vec<u8>, value: u16, digits: u32) {
    let needed = (u16::BITS - value.leading_zeros()).div_ceil(4).max(digits);
    for shift in (0..needed).rev() {
        out.push(HEX_DIGITS[usize::from(value >> (shift * 4)) & 0xf]);
    }
}

/// The address as text, for IP packets and Ethernet/IPv4 ARP; false (and
/// nothing written) for other packets.
pub(super) fn write_address(out: &mut Vec<u8>, notice: &Notice, addr: &[u8; 16]) -> bool {
    match notice.ip_version {
        4 => write_ipv4(out, ipv4(addr)),
        6 => write_ipv6(out, Ipv6Addr::from(*addr)),
        _ if arp(notice).is_some() => write_ipv4(out, ipv4(addr)),
        _ => return false,
    }
    true
}

pub(super) fn ipv4(addr: &[u8; 16]) -> Ipv4Addr {
    Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3])
}

/// `10.0.0.1`, as std's Display writes it: each byte's digits from a
/// table, built on the stack and copied once (a third of the text writer's
/// time went to IPv4 addresses written digit by digit).
pub(super) fn write_ipv4(out: &mut Vec<u8>, ip: Ipv4Addr) {
    let mut text = [0u8; 16];
    let mut len = 0;
    for byte in ip.octets() {
        let (digits, count) = BYTE_DIGITS[usize::from(byte)];
        text[len..len + 4].copy_from_slice(&digits);
        len += usize::from(count);
    }
    // Each byte's digits end in a dot; the last one's is not wanted.
    out.extend_from_slice(&text[..len - 1]);
}

/// For each byte: its decimal digits then a dot, and how many of those.
const BYTE_DIGITS: [([u8; 4], u8); 256] = {
    let mut table = [([0u8; 4], 0u8); 256];
    let mut byte = 0;
    while byte < 256 {
        let (hundreds, tens, ones) = (
            (byte / 100) as u8,
            (byte / 10 % 10) as u8,
            (byte % 10) as u8,
        );
        table[byte] = if byte >= 100 {
            ([b'0' + hundreds, b'0' + tens, b'0' + ones, b'.'], 4)
        } else if byte >= 10 {
            ([b'0' + tens, b'0' + ones, b'.', 0], 3)
        } else {
            ([b'0' + ones, b'.', 0, 0], 2)
        };
        byte += 1;
    }
    table
};

/// `2001:db8::1`, `::ffff:10.0.0.1`, as std's Display writes it (RFC 5952:
/// the first longest run of two or more zero groups becomes `::`), without
/// its Formatter (18 % of the text writer's time went there).
pub(super) fn write_ipv6(out: &mut Vec<u8>, ip: Ipv6Addr) {
    if let Some(v4) = ip.to_ipv4_mapped() {
        out.extend_from_slice(b"::ffff:");
        return write_ipv4(out, v4);
    }
    let groups = ip.segments();
    let (mut zeros_at, mut zeros) = (0, 0);
    let mut run = 0;
    for (i, &group) in groups.iter().enumerate() {
        run = if group == 0 { run + 1 } else { 0 };
        if run > zeros {
            (zeros_at, zeros) = (i + 1 - run, run);
        }
    }
    if zeros > 1 {
        write_groups(out, &groups[..zeros_at]);
        out.extend_from_slice(b"::");
        write_groups(out, &groups[zeros_at + zeros..]);
    } else {
        write_groups(out, &groups);
    }
}

fn write_groups(out: &mut Vec<u8>, groups: &[u16]) {
    for (i, &group) in groups.iter().enumerate() {
        if i > 0 {
            out.push(b':');
        }
        push_hex(out, group, 1);
    }
}

/// An Ethernet/IPv4 ARP body, as the notice carries it.
pub(super) struct Arp {
    pub(super) op: u8,
    pub(super) sender_ip: Ipv4Addr,
    pub(super) sender_mac: [u8; 6],
    pub(super) target_ip: Ipv4Addr,
    pub(super) target_mac: [u8; 6],
}

/// The ARP body of `notice`, where the walk read one (depth L3): the
/// sender's IPv4 address and MAC in `src_addr`, the target's in `dst_addr`.
pub(super) fn arp(notice: &Notice) -> Option<Arp> {
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
pub(super) fn write_mac(out: &mut Vec<u8>, bytes: &[u8; 6]) {
    let mut text = [b':'; 17];
    for (i, &byte) in bytes.iter().enumerate() {
        text[i * 3] = HEX_DIGITS[usize::from(byte >> 4)];
        text[i * 3 + 1] = HEX_DIGITS[usize::from(byte & 0xf)];
    }
    out.extend_from_slice(&text);
}

/// The ids of the VLAN tags the notice names: the first two at most.
pub(super) fn vlan_ids(notice: &Notice) -> impl Iterator<Item = u16> {
    [notice.vlan_outer, notice.vlan_inner]
        .into_iter()
        .take(notice.vlan_count.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::text_of;

    /// std's Display is the reference: every address shape RFC 5952 cares
    /// about, and many random ones with runs of zero groups.
    #[test]
    fn addresses_read_as_std_writes_them() {
        let mut rng = fastrand::Rng::with_seed(5952);
        let mut shapes: Vec<Ipv6Addr> = [
            "::",
            "::1",
            "1::",
            "1:0:0:1:0:0:0:1",
            "1:0:1:0:1:0:1:0",
            "0:0:1:0:0:1:0:0",
            "::ffff:10.0.0.1",
            "::10.0.0.1",
            "64:ff9b::1.2.3.4",
            "fe80::1:2:3:4",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ]
        .iter()
        .map(|text| text.parse().unwrap())
        .collect();
        shapes.extend((0..50_000).map(|_| {
            let mut groups = [0u16; 8];
            for group in &mut groups {
                // Mostly zeros and small groups: the cases that compress.
                *group = match rng.u8(0..4) {
                    0 | 1 => 0,
                    2 => rng.u16(0..0x100),
                    _ => rng.u16(..),
                };
            }
            Ipv6Addr::from(groups)
        }));
        for ip in shapes {
            assert_eq!(text_of(|out| write_ipv6(out, ip)), ip.to_string());
        }
        for _ in 0..10_000 {
            let ip = Ipv4Addr::from(rng.u32(..));
            assert_eq!(text_of(|out| write_ipv4(out, ip)), ip.to_string());
        }
    }

    #[test]
    fn hex_and_macs_are_lowercase_and_padded() {
        assert_eq!(text_of(|out| push_hex(out, 0x88cc, 4)), "88cc");
        assert_eq!(text_of(|out| push_hex(out, 0x0806, 4)), "0806");
        assert_eq!(text_of(|out| push_hex(out, 0, 1)), "0");
        assert_eq!(text_of(|out| push_hex(out, 0xabc, 1)), "abc");
        let mac = [0x02, 0, 0x5e, 0xff, 0x0a, 0x01];
        assert_eq!(text_of(|out| write_mac(out, &mac)), "02:00:5e:ff:0a:01");
    }
}
