//! The types the XDP program and user space share, defined once.
//!
//! The BPF crate includes this very file (`#[path]`), and user space checks at
//! compile time that every field sits where the skeleton's BTF-generated twin
//! says it does, so the two sides cannot drift apart.
//!
//! `no_std`-clean on purpose: nothing here may need an allocator or `std`.

/// The XDP actions the program returns (`enum xdp_action`).
pub const XDP_ABORTED: u8 = 0;
pub const XDP_DROP: u8 = 1;
pub const XDP_PASS: u8 = 2;

/// How far the header walk got.
pub const DEPTH_NONE: u8 = 0; // shorter than an Ethernet header
pub const DEPTH_L2: u8 = 1; // Ethernet (and VLAN tags)
pub const DEPTH_L3: u8 = 2; // IPv4 or IPv6 header
pub const DEPTH_L4: u8 = 3; // TCP, UDP, ICMP or ICMPv6 header

/// Why the walk stopped short, as bits in [`Notice::flags`].
pub const FLAG_TRUNCATED: u8 = 1 << 0; // a header ran past the end of the frame
pub const FLAG_MALFORMED: u8 = 1 << 1; // a header field made no sense (IHL < 5, …)
pub const FLAG_FRAGMENT: u8 = 1 << 2; // a non-first fragment: no L4 header in it
pub const FLAG_EXT_LIMIT: u8 = 1 << 3; // more IPv6 extension headers than we walk

/// `rule_id` of a notice that no rule decided: the default policy did.
pub const RULE_NONE: u32 = u32::MAX;

/// Slots of the per-CPU `counters` array.
pub const COUNTER_ABORTED: u32 = XDP_ABORTED as u32;
pub const COUNTER_DROP: u32 = XDP_DROP as u32;
pub const COUNTER_PASS: u32 = XDP_PASS as u32;
/// Notices not delivered because the ring buffer was full.
pub const COUNTER_NOTICES_LOST: u32 = 5;
/// Notices handed to the ring buffer.
pub const COUNTER_NOTICES_SENT: u32 = 6;
pub const COUNTER_SLOTS: u32 = 8;

/// One packet, as the XDP program saw it. Multi-byte numbers are in host
/// order; addresses are raw network-order bytes (IPv4 in the first four).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Notice {
    /// `bpf_ktime_get_ns()`, i.e. CLOCK_MONOTONIC, when the packet was seen.
    pub timestamp_ns: u64,
    pub src_addr: [u8; 16],
    pub dst_addr: [u8; 16],
    pub ifindex: u32,
    pub rx_queue: u32,
    /// Length of the frame on the wire, as XDP sees it.
    pub packet_len: u32,
    /// The rule that decided the verdict, or [`RULE_NONE`].
    pub rule_id: u32,
    /// The innermost EtherType (after any VLAN tags).
    pub ether_type: u16,
    /// VLAN ids, outer first; 0 where there is no tag.
    pub vlan_outer: u16,
    pub vlan_inner: u16,
    pub src_port: u16,
    pub dst_port: u16,
    /// 4, 6, or 0 for non-IP traffic.
    pub ip_version: u8,
    /// IP protocol number of the transport (after IPv6 extension headers).
    pub l4_proto: u8,
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// FIN, SYN, RST, PSH, ACK, URG, ECE, CWR from bit 0 up.
    pub tcp_flags: u8,
    pub verdict: u8,
    pub depth: u8,
    pub flags: u8,
    pub _reserved: [u8; 6],
}

impl Notice {
    pub const ZERO: Notice = Notice {
        timestamp_ns: 0,
        src_addr: [0; 16],
        dst_addr: [0; 16],
        ifindex: 0,
        rx_queue: 0,
        packet_len: 0,
        rule_id: RULE_NONE,
        ether_type: 0,
        vlan_outer: 0,
        vlan_inner: 0,
        src_port: 0,
        dst_port: 0,
        ip_version: 0,
        l4_proto: 0,
        icmp_type: 0,
        icmp_code: 0,
        tcp_flags: 0,
        verdict: XDP_PASS,
        depth: DEPTH_NONE,
        flags: 0,
        _reserved: [0; 6],
    };
}
