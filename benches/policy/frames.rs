//! The probe frames every program is timed on: a 64-byte IPv4/UDP frame and
//! an IPv6 TCP SYN, each from a source the last rule of every set denies
//! ("late") and from one no rule matches ("none").

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::PacketBuilder;

pub const LATE_V4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
pub const NONE_V4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 8);
pub const DST_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 99);
pub const LATE_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 7);
pub const NONE_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 8);
pub const DST_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xfffe, 0, 0, 0, 0, 0x99);
pub const SPORT_V4: u16 = 40000;
pub const DPORT_V4: u16 = 4789;
pub const SPORT_V6: u16 = 40001;
pub const DPORT_V6: u16 = 8443;

/// A frame to time, and its source (which the rules may deny).
pub struct Probe {
    pub name: &'static str,
    pub frame: Vec<u8>,
    pub src: IpAddr,
}

pub fn probes() -> Vec<Probe> {
    vec![
        Probe {
            name: "udp4-64 late",
            frame: udp_v4(LATE_V4),
            src: LATE_V4.into(),
        },
        Probe {
            name: "udp4-64 none",
            frame: udp_v4(NONE_V4),
            src: NONE_V4.into(),
        },
        Probe {
            name: "tcp6-syn late",
            frame: tcp_syn_v6(LATE_V6),
            src: LATE_V6.into(),
        },
        Probe {
            name: "tcp6-syn none",
            frame: tcp_syn_v6(NONE_V6),
            src: NONE_V6.into(),
        },
    ]
}

const MACS: ([u8; 6], [u8; 6]) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);

/// 64 bytes on the wire without the FCS: 14 + 20 + 8 + 22 of payload.
fn udp_v4(src: Ipv4Addr) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2(MACS.0, MACS.1)
        .ipv4(src.octets(), DST_V4.octets(), 64)
        .udp(SPORT_V4, DPORT_V4);
    let payload = [0u8; 22];
    let mut frame = Vec::with_capacity(builder.size(payload.len()));
    builder.write(&mut frame, &payload).expect("a UDP frame");
    frame
}

/// 74 bytes: 14 + 40 + 20, no options.
fn tcp_syn_v6(src: Ipv6Addr) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2(MACS.0, MACS.1)
        .ipv6(src.octets(), DST_V6.octets(), 64)
        .tcp(SPORT_V6, DPORT_V6, 1, 64240)
        .syn();
    let mut frame = Vec::with_capacity(builder.size(0));
    builder.write(&mut frame, &[]).expect("a TCP SYN");
    frame
}
