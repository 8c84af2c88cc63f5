//! The fuzzer's frames: a fixed sweep (one valid frame of every kind, cut at
//! every offset, padded), then an endless seeded stream of valid, broken and
//! random frames. The same seed gives the same frames.
//!
//! No frame is shorter than 14 bytes: BPF_PROG_TEST_RUN on this kernel
//! (6.18) refuses XDP input shorter than an Ethernet header with EINVAL, so
//! such a frame cannot reach the program at all.

use std::collections::VecDeque;

use etherparse::{
    ip_number, ArpHardwareId, ArpOperation, ArpPacket, EtherType, IpAuthHeader, IpFragOffset,
    IpHeaders, IpNumber, Ipv4Extensions, Ipv4Header, Ipv4Options, Ipv6FragmentHeader, Ipv6Header,
    Ipv6RawExtHeader, PacketBuilder, SingleVlanHeader, TcpHeader, UdpHeader, VlanId, VlanPcp,
};
use fastrand::Rng;

/// The shortest frame BPF_PROG_TEST_RUN takes here.
pub const MIN_FRAME: usize = 14;
/// Ethernet pads every shorter frame to this (without the FCS).
const ETH_MIN_FRAME: usize = 60;

/// A frame and how it was made, for a failure message.
#[derive(Clone, Debug)]
pub struct Frame {
    pub label: String,
    pub bytes: Vec<u8>,
}

impl Frame {
    fn new(label: impl Into<String>, bytes: Vec<u8>) -> Self {
        Frame {
            label: label.into(),
            bytes,
        }
    }

    fn relabel(mut self, more: impl AsRef<str>) -> Self {
        self.label = format!("{}, {}", self.label, more.as_ref());
        self
    }
}

/// Addresses, ports and ICMP types the fuzz rule sets mention, so that
/// frames hit rules as often as they miss them.
pub const V4: [[u8; 4]; 8] = [
    [10, 0, 0, 1],
    [10, 1, 2, 3],
    [10, 1, 2, 4],
    [192, 168, 1, 7],
    [192, 168, 2, 7],
    [172, 16, 0, 1],
    [172, 31, 255, 255],
    [8, 8, 8, 8],
];
pub const V6: [&str; 6] = [
    "2001:db8::1",
    "2001:db8::2",
    "2001:db8:1::5",
    "fd00::1",
    "fe80::1",
    "2001:4860::8888",
];
pub const PORTS: [u16; 11] = [22, 53, 80, 443, 4789, 8000, 8080, 8081, 0, 65535, 40000];
pub const ICMP_TYPES: [u8; 8] = [0, 3, 8, 11, 128, 129, 135, 136];
pub const ICMP_CODES: [u8; 5] = [0, 1, 3, 4, 13];
/// TCP flag bytes the rule sets' `flags` tell apart: SYN, SYN-ACK, ACK,
/// RST, FIN-PSH-URG, SYN-FIN, none.
const TCP_FLAGS: [u8; 7] = [0x02, 0x12, 0x10, 0x04, 0x29, 0x03, 0x00];
const TPIDS: [u16; 2] = [0x8100, 0x88a8];
const MACS: [[u8; 6]; 3] = [
    [0x02, 0, 0, 0, 0, 0x01],
    [0x02, 0, 0, 0, 0, 0x02],
    [0xff; 6],
];

/// What follows the IP header (behind any extension headers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    Tcp,
    Udp,
    /// ICMP in IPv4, ICMPv6 in IPv6.
    Icmp,
    Esp,
    Gre,
    Sctp,
    /// No next header (59).
    NoNext,
    /// The other family's ICMP (ICMPv6 in IPv4, ICMP in IPv6).
    WrongIcmp,
    /// Any other protocol number.
    Other(u8),
}

/// One extension header in front of the transport.
#[derive(Clone, Copy, Debug)]
pub enum Ext {
    /// Hop-by-hop (0), routing (43) or destination options (60), with
    /// this many 8-octet units after the first 8.
    Raw(u8, u8),
    /// A fragment header at this offset (8-octet units), with M set or not
    /// (a first fragment without M is an atomic fragment, RFC 6946).
    Fragment(u16, bool),
    /// AH with this many 4-octet words of ICV.
    Auth(u8),
    /// An AH whose length field says 0: 8 bytes, shorter than its own
    /// fixed part (RFC 4302 2.2), followed by the 4 it ought to have.
    ShortAuth,
}

/// An IP packet to build.
#[derive(Clone, Debug)]
pub struct Ip {
    pub v6: bool,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub exts: Vec<Ext>,
    pub payload: Payload,
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// IPv4 options bytes (a multiple of 4, at most 40).
    pub options: Vec<u8>,
    /// Bytes after the transport header.
    pub data: Vec<u8>,
}

impl Ip {
    fn protocol_number(&self) -> u8 {
        match self.payload {
            Payload::Tcp => 6,
            Payload::Udp => 17,
            Payload::Icmp if self.v6 => 58,
            Payload::Icmp => 1,
            Payload::WrongIcmp if self.v6 => 1,
            Payload::WrongIcmp => 58,
            Payload::Esp => 50,
            Payload::Gre => 47,
            Payload::Sctp => 132,
            Payload::NoNext => 59,
            Payload::Other(n) => n,
        }
    }

    /// The transport header and data.
    fn transport_bytes(&self) -> Vec<u8> {
        let mut out = match self.payload {
            Payload::Tcp => {
                let mut tcp = TcpHeader::new(self.sport, self.dport, 0x0102_0304, 64240);
                let flags = self.tcp_flags;
                tcp.fin = flags & 1 != 0;
                tcp.syn = flags & 2 != 0;
                tcp.rst = flags & 4 != 0;
                tcp.psh = flags & 8 != 0;
                tcp.ack = flags & 16 != 0;
                tcp.urg = flags & 32 != 0;
                tcp.ece = flags & 64 != 0;
                tcp.cwr = flags & 128 != 0;
                tcp.to_bytes().to_vec()
            }
            Payload::Udp => UdpHeader {
                source_port: self.sport,
                destination_port: self.dport,
                length: (8 + self.data.len()) as u16,
                checksum: 0,
            }
            .to_bytes()
            .to_vec(),
            Payload::Icmp | Payload::WrongIcmp => {
                vec![self.icmp_type, self.icmp_code, 0, 0, 0x12, 0x34, 0, 1]
            }
            // SPI, sequence number.
            Payload::Esp => vec![0, 0, 0x10, 0x01, 0, 0, 0, 1],
            // GRE: no flags, version 0, protocol IPv4.
            Payload::Gre => vec![0, 0, 0x08, 0x00],
            // SCTP common header: ports, verification tag, checksum.
            Payload::Sctp => {
                let mut h = Vec::with_capacity(12);
                h.extend_from_slice(&self.sport.to_be_bytes());
                h.extend_from_slice(&self.dport.to_be_bytes());
                h.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
                h
            }
            Payload::NoNext | Payload::Other(_) => Vec::new(),
        };
        out.extend_from_slice(&self.data);
        out
    }

    /// The extension headers, chained, then the transport.
    fn upper_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, ext) in self.exts.iter().enumerate() {
            let next = match self.exts.get(i + 1) {
                Some(ext) => ext_number(ext),
                None => self.protocol_number(),
            };
            let next = IpNumber(next);
            match *ext {
                Ext::Raw(_, units) => {
                    let payload = vec![0u8; 6 + 8 * units as usize];
                    let header = Ipv6RawExtHeader::new_raw(next, &payload).expect("6 + 8k bytes");
                    out.extend_from_slice(&header.to_bytes());
                }
                Ext::Fragment(offset, more) => {
                    let fragment_offset = IpFragOffset::try_new(offset).expect("13 bits");
                    let header = Ipv6FragmentHeader::new(next, fragment_offset, more, 0x1234);
                    let mut bytes = header.to_bytes();
                    // etherparse 0.19 puts the offset's low bits and M in
                    // the wrong bits (its issue #150, fixed in 0.20): write
                    // the word as RFC 8200 4.5 lays it out.
                    let word = offset << 3 | u16::from(more);
                    bytes[2..4].copy_from_slice(&word.to_be_bytes());
                    out.extend_from_slice(&bytes);
                }
                Ext::Auth(words) => {
                    let icv = vec![0xa5u8; 4 * words as usize];
                    let header = IpAuthHeader::new(next, 0x100, 1, &icv).expect("4k bytes");
                    out.extend_from_slice(&header.to_bytes());
                }
                Ext::ShortAuth => {
                    out.extend_from_slice(&[next.0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
                }
            }
        }
        out.extend(self.transport_bytes());
        out
    }

    /// The IP header (v4: fragment `offset`, more fragments `more`) and
    /// everything after it.
    pub fn bytes(&self, offset: u16, more: bool) -> Vec<u8> {
        let upper = self.upper_bytes();
        let first = self.exts.first().map_or(self.protocol_number(), ext_number);
        let mut out = if self.v6 {
            Ipv6Header {
                payload_length: upper.len() as u16,
                next_header: IpNumber(first),
                hop_limit: 64,
                source: self.src,
                destination: self.dst,
                ..Default::default()
            }
            .to_bytes()
            .to_vec()
        } else {
            let mut ip = Ipv4Header::new(
                upper.len() as u16,
                64,
                IpNumber(first),
                self.src[..4].try_into().unwrap(),
                self.dst[..4].try_into().unwrap(),
            )
            .expect("a datagram that fits");
            ip.options = Ipv4Options::try_from(&self.options[..]).expect("options of 4k bytes");
            ip.total_len = (ip.header_len() + upper.len()) as u16;
            ip.fragment_offset = IpFragOffset::try_new(offset).expect("13 bits");
            ip.more_fragments = more;
            ip.header_checksum = ip.calc_header_checksum();
            ip.to_bytes().to_vec()
        };
        out.extend(upper);
        out
    }
}

fn ext_number(ext: &Ext) -> u8 {
    match *ext {
        Ext::Raw(kind, _) => kind,
        Ext::Fragment(..) => 44,
        Ext::Auth(_) | Ext::ShortAuth => 51,
    }
}

/// Ethernet with `tags` (TPID, TCI), outer first, in front of `ether_type`
/// and `body`.
pub fn ethernet(tags: &[(u16, u16)], ether_type: u16, body: &[u8]) -> Vec<u8> {
    // Each EtherType field names what follows it: the TPIDs, then the type.
    let types: Vec<u16> = tags
        .iter()
        .map(|&(tpid, _)| tpid)
        .chain([ether_type])
        .collect();
    let mut out = Vec::with_capacity(14 + 4 * tags.len() + body.len());
    out.extend_from_slice(&MACS[1]);
    out.extend_from_slice(&MACS[0]);
    out.extend_from_slice(&types[0].to_be_bytes());
    for (&(_, tci), &inner) in tags.iter().zip(&types[1..]) {
        let tag = SingleVlanHeader {
            pcp: VlanPcp::try_new((tci >> 13) as u8).expect("3 bits"),
            drop_eligible_indicator: tci & 0x1000 != 0,
            vlan_id: VlanId::try_new(tci & 0x0fff).expect("12 bits"),
            ether_type: EtherType(inner),
        };
        out.extend_from_slice(&tag.to_bytes());
    }
    out.extend_from_slice(body);
    out
}

/// `bytes` cut to `len`.
fn cut(frame: &Frame, len: usize) -> Frame {
    Frame::new(
        format!("{}, cut to {len}", frame.label),
        frame.bytes[..len].to_vec(),
    )
}

/// `frame` cut to `len` with its IP length field set to match, so the
/// datagram itself ends at the cut (a tiny fragment, a short datagram);
/// `None` if the cut is not past a whole IP header.
fn cut_datagram(frame: &Frame, len: usize) -> Option<Frame> {
    let at = ip_at(&frame.bytes)?;
    let mut bytes = frame.bytes[..len].to_vec();
    match bytes.get(at)? >> 4 {
        4 => {
            let header = usize::from(bytes[at] & 0x0f) * 4;
            let total = len.checked_sub(at).filter(|&t| t >= header)? as u16;
            bytes[at + 2..at + 4].copy_from_slice(&total.to_be_bytes());
        }
        6 => {
            let payload = len.checked_sub(at + 40)? as u16;
            bytes[at + 4..at + 6].copy_from_slice(&payload.to_be_bytes());
        }
        _ => return None,
    }
    let label = format!("{}, datagram cut to {len}", frame.label);
    Some(Frame::new(label, bytes))
}

/// Where the IP header of an Ethernet frame starts, behind any VLAN tags.
fn ip_at(bytes: &[u8]) -> Option<usize> {
    let mut at = 12;
    loop {
        match bytes.get(at..at + 2)? {
            [0x81, 0x00] | [0x88, 0xa8] => at += 4,
            [0x08, 0x00] | [0x86, 0xdd] => return Some(at + 2),
            _ => return None,
        }
    }
}

/// `frame` padded to the Ethernet minimum with zeros, if shorter.
fn pad(frame: &Frame, fill: u8) -> Frame {
    if frame.bytes.len() >= ETH_MIN_FRAME {
        return frame.clone();
    }
    let mut bytes = frame.bytes.clone();
    bytes.resize(ETH_MIN_FRAME, fill);
    Frame::new(
        format!("{}, padded to 60 with {fill:#04x}", frame.label),
        bytes,
    )
}

fn v6_addr(text: &str) -> [u8; 16] {
    text.parse::<std::net::Ipv6Addr>().unwrap().octets()
}

fn v4(addr: [u8; 4]) -> [u8; 16] {
    let mut out = [0; 16];
    out[..4].copy_from_slice(&addr);
    out
}

fn addr_text(v6: bool, addr: &[u8; 16]) -> String {
    if v6 {
        std::net::Ipv6Addr::from(*addr).to_string()
    } else {
        std::net::Ipv4Addr::from(<[u8; 4]>::try_from(&addr[..4]).unwrap()).to_string()
    }
}

fn ip_frame(ip: &Ip, tags: &[(u16, u16)], label: &str) -> Frame {
    let ether_type = if ip.v6 { 0x86dd } else { 0x0800 };
    Frame::new(
        format!(
            "{label}: {} {:?} {} → {} exts {:?}",
            if ip.v6 { "IPv6" } else { "IPv4" },
            ip.payload,
            addr_text(ip.v6, &ip.src),
            addr_text(ip.v6, &ip.dst),
            ip.exts
        ),
        ethernet(tags, ether_type, &ip.bytes(0, false)),
    )
}

/// One valid frame of every kind, the first ones built by etherparse's
/// PacketBuilder as a sender would.
pub fn templates() -> Vec<Frame> {
    let (src4, dst4) = (V4[1], V4[5]);
    let (src6, dst6) = (v6_addr(V6[0]), v6_addr(V6[3]));
    let builder = || PacketBuilder::ethernet2(MACS[0], MACS[1]);
    let mut out = Vec::new();
    let mut built = |label: &str, write: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = Vec::new();
        write(&mut bytes);
        out.push(Frame::new(label, bytes));
    };
    built("IPv4 TCP SYN", &|f| {
        builder()
            .ipv4(src4, dst4, 64)
            .tcp(40000, 22, 1, 64240)
            .syn()
            .write(f, &[])
            .unwrap()
    });
    built("IPv4 UDP", &|f| {
        builder()
            .ipv4(src4, dst4, 64)
            .udp(53, 4789)
            .write(f, b"payload")
            .unwrap()
    });
    built("IPv4 ICMP echo", &|f| {
        builder()
            .ipv4(src4, dst4, 64)
            .icmpv4_echo_request(1, 1)
            .write(f, b"ping")
            .unwrap()
    });
    built("IPv6 TCP SYN-ACK", &|f| {
        builder()
            .ipv6(src6, dst6, 64)
            .tcp(443, 40000, 1, 64240)
            .syn()
            .ack(2)
            .write(f, &[])
            .unwrap()
    });
    built("IPv6 UDP", &|f| {
        builder()
            .ipv6(src6, dst6, 64)
            .udp(4789, 53)
            .write(f, b"payload")
            .unwrap()
    });
    built("IPv6 ICMPv6 echo", &|f| {
        builder()
            .ipv6(src6, dst6, 64)
            .icmpv6_echo_request(1, 1)
            .write(f, b"ping")
            .unwrap()
    });
    for (name, proto, payload) in [
        (
            "ESP",
            ip_number::ENCAP_SEC,
            &[0, 0, 0x10, 1, 0, 0, 0, 1][..],
        ),
        ("GRE", ip_number::GRE, &[0, 0, 8, 0][..]),
        (
            "SCTP",
            ip_number::SCTP,
            &[0, 80, 0, 81, 0, 0, 0, 1, 0, 0, 0, 0][..],
        ),
    ] {
        built(&format!("IPv4 {name}"), &|f| {
            builder()
                .ipv4(src4, dst4, 64)
                .write(f, proto, payload)
                .unwrap()
        });
        built(&format!("IPv6 {name}"), &|f| {
            builder()
                .ipv6(src6, dst6, 64)
                .write(f, proto, payload)
                .unwrap()
        });
    }
    built("VLAN 100 IPv4 UDP", &|f| {
        builder()
            .single_vlan(VlanId::try_new(100).unwrap())
            .ipv4(src4, dst4, 64)
            .udp(53, 53)
            .write(f, b"x")
            .unwrap()
    });
    built("QinQ 0/7 IPv6 TCP", &|f| {
        builder()
            .double_vlan(VlanId::try_new(0).unwrap(), VlanId::try_new(7).unwrap())
            .ipv6(src6, dst6, 64)
            .tcp(1, 8080, 1, 1000)
            .psh()
            .write(f, &[])
            .unwrap()
    });
    built("IPv4 AH TCP", &|f| {
        let ah = IpAuthHeader::new(ip_number::TCP, 0x100, 1, &[0xa5; 12]).unwrap();
        let ip = IpHeaders::Ipv4(
            Ipv4Header::new(0, 64, ip_number::AUTH, src4, dst4).unwrap(),
            Ipv4Extensions { auth: Some(ah) },
        );
        builder()
            .ip(ip)
            .tcp(40000, 22, 1, 1000)
            .syn()
            .write(f, &[])
            .unwrap()
    });
    for (operation, name) in [
        (ArpOperation::REQUEST, "ARP request"),
        (ArpOperation::REPLY, "ARP reply"),
    ] {
        built(name, &|f| {
            let arp = ArpPacket::new(
                ArpHardwareId::ETHERNET,
                EtherType::IPV4,
                operation,
                &MACS[0],
                &src4,
                &MACS[1],
                &dst4,
            )
            .unwrap();
            builder().arp(arp).write(f).unwrap()
        });
    }
    // LLDP: a chassis TLV, port TLV, TTL TLV, end.
    let lldp_body = [
        2, 7, 4, 2, 0, 0, 0, 0, 1, 4, 3, 5, 101, 116, 104, 6, 2, 0, 120, 0, 0,
    ];
    out.push(Frame::new("LLDP", ethernet(&[], 0x88cc, &lldp_body)));

    // The crafted ones: every extension header, in both families.
    let chain = Ip {
        v6: true,
        src: src6,
        dst: dst6,
        exts: vec![
            Ext::Raw(0, 0),
            Ext::Raw(60, 1),
            Ext::Raw(43, 0),
            Ext::Fragment(0, true),
            Ext::Auth(3),
        ],
        payload: Payload::Udp,
        sport: 53,
        dport: 4789,
        tcp_flags: 0,
        icmp_type: 0,
        icmp_code: 0,
        options: Vec::new(),
        data: b"abc".to_vec(),
    };
    out.push(ip_frame(&chain, &[], "template"));
    let ah_tcp = Ip {
        exts: vec![Ext::Auth(3)],
        payload: Payload::Tcp,
        tcp_flags: 2,
        dport: 22,
        ..chain.clone()
    };
    out.push(ip_frame(&ah_tcp, &[], "template"));
    let options = Ip {
        v6: false,
        src: v4(src4),
        dst: v4(dst4),
        exts: Vec::new(),
        options: vec![1, 1, 1, 0, 0x94, 4, 0, 0],
        ..ah_tcp.clone()
    };
    out.push(ip_frame(&options, &[], "template, IPv4 options"));
    out
}

/// The frames: the sweep first, then the seeded stream.
pub struct Frames {
    rng: Rng,
    pending: VecDeque<Frame>,
}

impl Frames {
    pub fn new(seed: u64) -> Self {
        let mut pending = VecDeque::new();
        for frame in templates() {
            for len in MIN_FRAME..frame.bytes.len() {
                pending.push_back(cut(&frame, len));
                if let Some(short) = cut_datagram(&frame, len) {
                    pending.push_back(pad(&short, 0));
                }
            }
            if frame.bytes.len() < ETH_MIN_FRAME {
                pending.push_back(pad(&frame, 0));
            }
            pending.push_back(frame);
        }
        Frames {
            rng: Rng::with_seed(seed),
            pending,
        }
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.rng.usize(..from.len())]
    }

    fn chance(&mut self, percent: u8) -> bool {
        self.rng.u8(..100) < percent
    }

    fn port(&mut self) -> u16 {
        if self.chance(70) {
            self.pick(&PORTS)
        } else {
            self.rng.u16(..)
        }
    }

    fn address(&mut self, v6: bool) -> [u8; 16] {
        match (v6, self.chance(85)) {
            (false, true) => v4(self.pick(&V4)),
            (false, false) => v4(self.rng.u32(..).to_be_bytes()),
            (true, true) => v6_addr(self.pick(&V6)),
            (true, false) => self.rng.u128(..).to_be_bytes(),
        }
    }

    /// 0–10 VLAN tags, mostly none; ids 0 (priority tags) and others.
    fn tags(&mut self) -> Vec<(u16, u16)> {
        let count = match self.rng.u8(..10) {
            0..=4 => 0,
            5..=6 => self.rng.usize(1..=2),
            _ => self.rng.usize(0..=10),
        };
        (0..count)
            .map(|_| {
                let tpid = self.pick(&TPIDS);
                let id = match self.rng.u8(..4) {
                    0 => 0,
                    1 => 4095,
                    _ => self.rng.u16(1..4095),
                };
                (tpid, (self.rng.u16(..8) << 13) | id)
            })
            .collect()
    }

    fn payload(&mut self) -> Payload {
        match self.rng.u8(..21) {
            0..=4 => Payload::Tcp,
            5..=8 => Payload::Udp,
            9..=11 => Payload::Icmp,
            12 => Payload::Esp,
            13 => Payload::Gre,
            14 => Payload::Sctp,
            15 => Payload::NoNext,
            16 => Payload::WrongIcmp,
            17 => Payload::Other(self.pick(&[2, 4, 41, 89, 210, 253])),
            _ => Payload::Other(self.rng.u8(..)),
        }
    }

    fn ext(&mut self, v6: bool) -> Ext {
        if self.chance(3) {
            return Ext::ShortAuth;
        }
        if !v6 {
            return Ext::Auth(self.rng.u8(1..=4));
        }
        match self.rng.u8(..10) {
            0..=1 => Ext::Raw(0, self.rng.u8(..3)),
            2..=3 => Ext::Raw(43, self.rng.u8(..3)),
            4..=5 => Ext::Raw(60, self.rng.u8(..3)),
            6 => Ext::Fragment(0, self.chance(80)),
            7 => Ext::Fragment(self.rng.u16(1..0x2000), self.chance(50)),
            _ => Ext::Auth(self.rng.u8(1..=4)),
        }
    }

    /// A valid IP packet of a random kind: IPv6 with 0–10 extension
    /// headers, IPv4 with options and sometimes AH.
    fn ip(&mut self) -> Ip {
        let v6 = self.chance(50);
        let ext_count = match self.rng.u8(..10) {
            0..=5 => 0,
            6..=7 => self.rng.usize(1..=3),
            _ => self.rng.usize(0..=10),
        };
        let options = if !v6 && self.chance(20) {
            (0..4 * self.rng.usize(1..=10))
                .map(|_| self.rng.u8(..))
                .collect()
        } else {
            Vec::new()
        };
        let data_len = self.rng.usize(..24);
        Ip {
            v6,
            src: self.address(v6),
            dst: self.address(v6),
            exts: (0..ext_count).map(|_| self.ext(v6)).collect(),
            payload: self.payload(),
            sport: self.port(),
            dport: self.port(),
            tcp_flags: if self.chance(60) {
                self.pick(&TCP_FLAGS)
            } else {
                self.rng.u8(..)
            },
            icmp_type: if self.chance(70) {
                self.pick(&ICMP_TYPES)
            } else {
                self.rng.u8(..)
            },
            icmp_code: match self.rng.u8(..10) {
                0..=5 => 0,
                6..=8 => self.pick(&ICMP_CODES),
                _ => self.rng.u8(..),
            },
            options,
            data: (0..data_len).map(|_| self.rng.u8(..)).collect(),
        }
    }

    fn arp(&mut self, tags: &[(u16, u16)]) -> Frame {
        let mut body = vec![0, 1, 8, 0, 6, 4, 0, self.pick(&[1, 2, 3, 0])];
        if self.chance(10) {
            // An op above 255, or another hardware type.
            body[self.pick(&[0, 1, 6])] = self.rng.u8(..);
        }
        body.extend_from_slice(&MACS[0]);
        body.extend_from_slice(&self.pick(&V4));
        body.extend_from_slice(&[0; 6]);
        body.extend_from_slice(&self.pick(&V4));
        Frame::new("ARP", ethernet(tags, 0x0806, &body))
    }

    /// A valid frame of any kind.
    fn valid(&mut self) -> Frame {
        let tags = self.tags();
        match self.rng.u8(..20) {
            0 => self.arp(&tags),
            1 => Frame::new(
                "LLDP",
                ethernet(&tags, 0x88cc, &[2, 7, 4, 0, 0, 0, 0, 0, 1, 0, 0]),
            ),
            _ => {
                let ip = self.ip();
                ip_frame(&ip, &tags, "valid")
            }
        }
    }

    /// IPv4 with a wrong IHL or Total Length.
    fn bad_ipv4_lengths(&mut self) -> Frame {
        let ip = Ip {
            v6: false,
            ..self.ip()
        };
        let tags = self.tags();
        let frame = ip_frame(&ip, &tags, "IPv4");
        let at = ip_at(&frame.bytes).expect("IPv4");
        let mut bytes = frame.bytes.clone();
        let header = usize::from(bytes[at] & 0x0f) * 4;
        let label = match self.rng.u8(..4) {
            0 => {
                let ihl = self.rng.u8(..16);
                bytes[at] = 0x40 | ihl;
                format!("IHL {ihl}")
            }
            1 => {
                let total = (bytes.len() - at + self.rng.usize(1..100)) as u16;
                bytes[at + 2..at + 4].copy_from_slice(&total.to_be_bytes());
                format!("Total Length {total} past the frame")
            }
            2 => {
                let total = self.rng.usize(..header) as u16;
                bytes[at + 2..at + 4].copy_from_slice(&total.to_be_bytes());
                format!("Total Length {total} under the header")
            }
            _ => {
                let total = self.rng.u16(..);
                bytes[at + 2..at + 4].copy_from_slice(&total.to_be_bytes());
                format!("Total Length {total}")
            }
        };
        let frame = Frame::new(frame.label, bytes).relabel(label);
        if self.chance(50) {
            pad(&frame, self.rng.u8(..))
        } else {
            frame
        }
    }

    /// IPv6 with a wrong Payload Length, or a jumbogram's 0.
    fn bad_ipv6_lengths(&mut self) -> Frame {
        let mut ip = Ip {
            v6: true,
            ..self.ip()
        };
        let jumbo = self.chance(30);
        if jumbo {
            ip.exts.insert(0, Ext::Raw(0, 0));
        }
        let tags = self.tags();
        let frame = ip_frame(&ip, &tags, "IPv6");
        let at = ip_at(&frame.bytes).expect("IPv6");
        let mut bytes = frame.bytes.clone();
        let len = if jumbo {
            0
        } else if self.chance(50) {
            (bytes.len() - at - 40 + self.rng.usize(1..50)) as u16
        } else {
            self.rng.u16(..)
        };
        bytes[at + 4..at + 6].copy_from_slice(&len.to_be_bytes());
        let frame = Frame::new(frame.label, bytes).relabel(format!("Payload Length {len}"));
        if self.chance(50) {
            pad(&frame, self.rng.u8(..))
        } else {
            frame
        }
    }

    /// IPv4 and IPv6 fragments: first, tiny first, later, offset 1.
    fn fragment(&mut self) -> Frame {
        let mut ip = self.ip();
        let tags = self.tags();
        if ip.v6 {
            let offset = if self.chance(50) {
                0
            } else {
                self.rng.u16(1..0x2000)
            };
            let at = self.rng.usize(..=ip.exts.len());
            ip.exts
                .insert(at, Ext::Fragment(offset, offset == 0 || self.chance(50)));
            return ip_frame(&ip, &tags, "IPv6 fragment");
        }
        ip.exts.clear();
        let (offset, more, label) = match self.rng.u8(..5) {
            0 => (0, true, "first fragment".to_string()),
            1 => {
                // 8 bytes of TCP: the ports and sequence number, no flags.
                ip.payload = Payload::Tcp;
                ip.data.clear();
                (0, true, "tiny first fragment".to_string())
            }
            2 => (1, true, "fragment at offset 1".to_string()),
            3 => {
                ip.payload = Payload::Tcp;
                (1, self.chance(50), "TCP fragment at offset 1".to_string())
            }
            _ => {
                let offset = self.rng.u16(2..0x2000);
                (
                    offset,
                    self.chance(50),
                    format!("fragment at offset {offset}"),
                )
            }
        };
        let mut bytes = ip.bytes(offset, more);
        if label == "tiny first fragment" {
            let header = usize::from(bytes[0] & 0x0f) * 4;
            bytes.truncate(header + 8);
            let total = bytes.len() as u16;
            bytes[2..4].copy_from_slice(&total.to_be_bytes());
        }
        let ether = ethernet(&tags, 0x0800, &bytes);
        let frame = Frame::new(format!("IPv4 {:?} {label}", ip.payload), ether);
        if self.chance(60) {
            pad(&frame, self.pick(&[0, 0xff, 0x12]))
        } else {
            frame
        }
    }

    /// A valid frame with 1–4 bytes changed, mostly in the headers.
    fn flipped(&mut self) -> Frame {
        let frame = self.valid();
        let mut bytes = frame.bytes.clone();
        let mut changed = Vec::new();
        for _ in 0..self.rng.usize(1..=4) {
            let at = self.rng.usize(..bytes.len().min(96));
            let value = match self.rng.u8(..4) {
                0 => bytes[at] ^ (1 << self.rng.u8(..8)),
                1 => self.pick(&[
                    0x00, 0xff, 0x81, 0x88, 0x86, 0x08, 0x06, 0x33, 0x2c, 0x3c, 0x2b, 0x45, 0x60,
                ]),
                _ => self.rng.u8(..),
            };
            bytes[at] = value;
            changed.push((at, value));
        }
        Frame::new(frame.label, bytes).relabel(format!("bytes set {changed:?}"))
    }

    /// Random bytes, half of them behind an EtherType worth walking.
    fn random(&mut self) -> Frame {
        let len = self.rng.usize(MIN_FRAME..160);
        let mut bytes: Vec<u8> = (0..len).map(|_| self.rng.u8(..)).collect();
        if self.chance(50) {
            let ether_type: u16 = self.pick(&[0x0800, 0x86dd, 0x8100, 0x88a8, 0x0806]);
            bytes[12..14].copy_from_slice(&ether_type.to_be_bytes());
            if let Some(version) = bytes.get_mut(14) {
                match ether_type {
                    0x0800 => *version = 0x40 | (*version & 0x0f),
                    0x86dd => *version = 0x60 | (*version & 0x0f),
                    _ => {}
                }
            }
        }
        Frame::new("random bytes", bytes)
    }

    /// A random valid frame cut at every offset: the frame, or the
    /// datagram in it (then padded as Ethernet pads it).
    fn all_cuts(&mut self) {
        let frame = self.valid();
        let datagram = self.chance(50);
        for len in MIN_FRAME..frame.bytes.len() {
            let short = match datagram {
                true => cut_datagram(&frame, len).map(|short| pad(&short, 0)),
                false => Some(cut(&frame, len)),
            };
            self.pending.extend(short);
        }
    }
}

impl Iterator for Frames {
    type Item = Frame;

    fn next(&mut self) -> Option<Frame> {
        if let Some(frame) = self.pending.pop_front() {
            return Some(frame);
        }
        // Per mille; a series of cuts yields some hundred frames at once.
        let frame = match self.rng.u16(..1000) {
            0..=249 => self.valid(),
            250..=289 => {
                let frame = self.valid();
                let len = self.rng.usize(MIN_FRAME..=frame.bytes.len());
                cut(&frame, len)
            }
            290..=339 => {
                let frame = self.valid();
                let len = self.rng.usize(MIN_FRAME..=frame.bytes.len());
                match cut_datagram(&frame, len) {
                    Some(short) if self.chance(50) => pad(&short, self.rng.u8(..)),
                    Some(short) => short,
                    None => cut(&frame, len),
                }
            }
            340..=342 => {
                self.all_cuts();
                return self.next();
            }
            343..=389 => {
                let frame = self.valid();
                pad(&frame, self.pick(&[0, 0xff, 0x45]))
            }
            390..=569 => self.flipped(),
            570..=619 => self.random(),
            620..=719 => self.bad_ipv4_lengths(),
            720..=819 => self.bad_ipv6_lengths(),
            _ => self.fragment(),
        };
        Some(frame)
    }
}
