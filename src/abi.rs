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

/// EtherTypes and IP protocol numbers both sides name.
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_IPV6: u16 = 0x86DD;
pub const ETH_P_8021AD: u16 = 0x88A8;
pub const IPPROTO_HOPOPTS: u8 = 0;
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_ROUTING: u8 = 43;
pub const IPPROTO_FRAGMENT: u8 = 44;
pub const IPPROTO_ESP: u8 = 50;
pub const IPPROTO_AH: u8 = 51;
pub const IPPROTO_ICMPV6: u8 = 58;
pub const IPPROTO_DSTOPTS: u8 = 60;

/// ARP over Ethernet for IPv4 (RFC 826), the only ARP the walk reads.
pub const ARPHRD_ETHER: u16 = 1;

/// Header lengths the walk steps over, for the tests that cut frames at them:
/// Ethernet, one VLAN tag, an IPv4 header without options, the fixed IPv6
/// header.
pub const ETH_HLEN: usize = 14;
pub const VLAN_HLEN: usize = 4;
pub const IPV4_HLEN: usize = 20;
pub const IPV6_HLEN: usize = 40;

/// Parser limits. The kernel's stack walks any number of VLAN tags (priority
/// tags, nested VLAN devices) and IPv6 extension headers; the program walks
/// this many and fails closed beyond (`FLAG_VLAN_LIMIT`, `FLAG_EXT_LIMIT`).
pub const MAX_VLAN_TAGS: usize = 8;
/// Extension headers walked: IPv6 hop-by-hop, routing, fragment, destination
/// options and AH; AH in IPv4.
pub const MAX_EXT_HEADERS: usize = 8;

/// Whether `proto` names an extension header rather than a transport in IP
/// version `ip_version`: where the walk stopped on one, the transport behind
/// it is unknown.
#[inline(always)]
pub const fn is_extension_header(ip_version: u8, proto: u8) -> bool {
    match proto {
        IPPROTO_AH => true,
        IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_FRAGMENT | IPPROTO_DSTOPTS => ip_version == 6,
        _ => false,
    }
}

/// Bits of [`Notice::tcp_flags`]: byte 13 of the TCP header, FIN in bit 0.
pub mod tcp_flag {
    pub const FIN: u8 = 1 << 0;
    pub const SYN: u8 = 1 << 1;
    pub const RST: u8 = 1 << 2;
    pub const PSH: u8 = 1 << 3;
    pub const ACK: u8 = 1 << 4;
    pub const URG: u8 = 1 << 5;
    pub const ECE: u8 = 1 << 6;
    pub const CWR: u8 = 1 << 7;
}

/// How far the header walk got.
pub const DEPTH_NONE: u8 = 0; // shorter than an Ethernet header
pub const DEPTH_L2: u8 = 1; // Ethernet (and VLAN tags)
pub const DEPTH_L3: u8 = 2; // IPv4 or IPv6 header (or a whole ARP body)
pub const DEPTH_L4: u8 = 3; // TCP, UDP, ICMP or ICMPv6 header

/// Why the walk stopped short, as bits in [`Notice::flags`].
/// A header ran past the end of the frame, or past the end of the datagram
/// its IP length field gives (a tiny first fragment).
pub const FLAG_TRUNCATED: u8 = 1 << 0;
/// A header field made no sense: IHL < 5, a length field longer than the
/// frame or shorter than the headers, an AH shorter than its fixed part, a
/// TCP fragment overlapping the first one's header.
pub const FLAG_MALFORMED: u8 = 1 << 1;
/// A non-first fragment: no transport header in it.
pub const FLAG_FRAGMENT: u8 = 1 << 2;
/// More extension headers than [`MAX_EXT_HEADERS`].
pub const FLAG_EXT_LIMIT: u8 = 1 << 3;
/// More VLAN tags than [`MAX_VLAN_TAGS`].
pub const FLAG_VLAN_LIMIT: u8 = 1 << 4;

/// `rule_id` of a notice that no rule decided: the default policy did.
pub const RULE_NONE: u32 = u32::MAX;

/// Rule hit counters, and so the kernel's rule ids (0 to MAX_RULES - 1):
/// room for a full rule set in each generation at once, so that any two
/// sets that each fit can replace each other live.
pub const MAX_RULES: u32 = GENERATIONS * 65536;
/// Distinct networks per address family a rule set may name (both
/// directions together).
pub const MAX_NETWORKS: u32 = 65536;

/// Where an address or port rule looks.
pub const DIRECTION_SRC: u8 = 0;
pub const DIRECTION_DST: u8 = 1;

/// What streams to user space (`Config::notice_mode`).
pub const NOTICES_ALL: u32 = 0;
pub const NOTICES_DENIED: u32 = 1;
pub const NOTICES_NONE: u32 = 2;

/// Settings fixed at load time (the program's `.rodata`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Config {
    /// XDP_PASS or XDP_DROP for IP packets no rule matches.
    pub default_verdict: u32,
    /// One of `NOTICES_*`.
    pub notice_mode: u32,
    /// Non-zero: every verdict is computed, counted and reported, and every
    /// packet passes (`--dry-run`).
    pub dry_run: u32,
    /// `--sample N`: a notice for one packet in N the notice mode asks for
    /// (0 and 1: every one). `log` rules are never sampled.
    pub sample_every: u32,
    /// `--max-rate R`: a notice costs 1e9 / R nanoseconds of a per-CPU
    /// budget (0: no limit), which refills with time up to `bucket_ns`.
    pub notice_cost_ns: u64,
    pub bucket_ns: u64,
    /// The interfaces (`-i`) whose packets are counted apart, in order:
    /// counter block `i` is `ifindexes[i]`'s; any other interface's packets
    /// (BPF_PROG_TEST_RUN's loopback) go to block `MAX_IFACES`
    /// (`counters` key).
    pub iface_count: u32,
    pub ifindexes: [u32; MAX_IFACES as usize],
    /// Capture (`-w`): each notice carries the frame's first `snaplen`
    /// bytes (at most [`MAX_SNAPLEN`]); 0: plain notices, no copy.
    pub snaplen: u32,
    /// Non-zero: the program judges packets by rules. 0: it is loaded for
    /// a run with none (an observer's), and the verifier, reading this as
    /// a constant, never checks the classifier: start-up is quicker. A run
    /// that later gets rules loads the program again with this set.
    pub classifier: u32,
    pub _pad: u32,
}

impl Config {
    /// Allow by default, every notice, no dry run, no sampling or rate
    /// limit, no interface counted apart.
    pub const DEFAULT: Config = Config {
        default_verdict: XDP_PASS as u32,
        notice_mode: NOTICES_ALL,
        dry_run: 0,
        sample_every: 0,
        notice_cost_ns: 0,
        bucket_ns: 0,
        iface_count: 0,
        ifindexes: [0; MAX_IFACES as usize],
        snaplen: 0,
        classifier: 1,
        _pad: 0,
    };
}

impl Config {
    /// These settings under `--max-rate per_second` (at least 1): a notice
    /// costs 1e9 / R ns of the budget, and the bucket holds one second's
    /// worth.
    pub const fn with_max_rate(self, per_second: u32) -> Config {
        let cost_ns = 1_000_000_000 / per_second as u64;
        Config {
            notice_cost_ns: cost_ns,
            bucket_ns: cost_ns * per_second as u64,
            ..self
        }
    }
}

/// Interfaces one run attaches to (`-i`), each with its own counters.
pub const MAX_IFACES: u32 = 16;

/// Per-CPU state of `--sample` and `--max-rate` (`rate_state`, one entry).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RateState {
    /// Packets still to skip before the next sampled one.
    pub skip: u64,
    /// Nanoseconds of notices the bucket holds now, and when it was filled.
    pub budget_ns: u64,
    pub last_ns: u64,
}

/// With [`Config::snaplen`] > 0 a ring record is a [`Notice`], this header,
/// then the first `captured_len` bytes of the frame (its length, the
/// snaplen, or less); with 0 it is the notice alone.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CaptureHeader {
    pub captured_len: u32,
    pub _pad: u32,
}

/// The most bytes of a frame one record carries: the program assembles the
/// record in a per-CPU map value, which the kernel caps at 32 KiB
/// (PCPU_MIN_UNIT_SIZE), the notice and its capture header included.
pub const MAX_SNAPLEN: u32 =
    (32768 - core::mem::size_of::<Notice>() - core::mem::size_of::<CaptureHeader>()) as u32;

/// Ranges an address table may hold, over its family's two directions, in
/// one generation: `MAX_NETWORKS` networks split the address space into at
/// most twice as many ranges, plus one a direction.
pub const RANGES_PER_GENERATION: u32 = 2 * MAX_NETWORKS + 2;

/// The address tables, in the order of their `LOOKUP_*` bits: source and
/// destination IPv4, then IPv6.
pub const ADDRESS_TABLES: u32 = 4;
/// The most buckets a table has: its index into the sorted ranges.
pub const MAX_BUCKETS: u32 = 1 << 16;
/// Steps of the search within a bucket: enough for every range of a
/// generation (2^18 > `RANGES_PER_GENERATION`).
pub const MAX_SEARCH_STEPS: u32 = 18;
const _: () = assert!(RANGES_PER_GENERATION < 1 << MAX_SEARCH_STEPS);

/// How an address finds its bucket in one table: a key (IPv4: the address
/// as a number; IPv6: its upper 64 bits) below `base` is in bucket 0, any
/// other in `(key - base) >> shift`, at most `last_bucket`.
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct AddressIndex {
    pub base: u64,
    pub shift: u32,
    pub last_bucket: u32,
}

impl AddressIndex {
    /// The bucket of `key`, as the program finds it.
    #[inline(always)]
    pub fn bucket(&self, key: u64) -> u32 {
        if key < self.base {
            return 0;
        }
        let bucket = (key - self.base) >> (self.shift & 63);
        let bucket = if bucket > self.last_bucket as u64 {
            self.last_bucket
        } else {
            bucket as u32
        };
        // Never into the next table's buckets, whatever the plan says.
        bucket & (MAX_BUCKETS - 1)
    }
}

/// One bucket of `address_buckets`: the ranges (slots of the family's
/// ranges array) an address of the bucket can be in. Its range is the last
/// of `first..=last` that starts at or below it; `first` starts below every
/// address of the bucket.
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Bucket {
    pub first: u32,
    pub last: u32,
}

/// The slot of a bucket in `address_buckets`.
#[inline(always)]
pub const fn bucket_slot(generation: u32, table: u32, bucket: u32) -> u32 {
    (generation * ADDRESS_TABLES + table) * MAX_BUCKETS + bucket
}

/// One range of IPv4 addresses, from `start` up to the next range's start:
/// the class value of its longest matching network (class 0: none).
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct V4Range {
    pub start: u32,
    pub value: AddressClass,
}

/// As [`V4Range`], for IPv6: the start's upper and lower 64 bits.
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct V6Range {
    pub start_hi: u64,
    pub start_lo: u64,
    pub value: AddressClass,
    pub _pad: u32,
}

/// Rule sets live in two generations; one index says which one packets use.
pub const GENERATIONS: u32 = 2;

// ---- The classifier (ordered rules): see HACKING.md, "The classifier".
//
// Each field of a packet is first reduced to a *class*: values in one class
// are admitted by exactly the same rules. Class 0 of every field is "no rule
// that asks about this field admits it" (also: the packet has no such
// field). A rule's *shape* is the set of field groups it asks about; for
// each shape the set has, one hash lookup of the packet's classes in those
// groups (zero elsewhere) finds the first rule of that shape that matches,
// and the lowest rule order over all shapes decides.

/// Field groups, the bits of a shape (0..32).
pub const GROUP_SRC: u32 = 1 << 0;
pub const GROUP_DST: u32 = 1 << 1;
pub const GROUP_SPORT: u32 = 1 << 2;
pub const GROUP_DPORT: u32 = 1 << 3;
/// Protocol, ICMP type and code, TCP flags and interface.
pub const GROUP_PROTO: u32 = 1 << 4;
/// Tables a generation has for shapes: as many as subsets of the five
/// groups.
pub const SHAPES: u32 = 32;

/// An address slot of a key holds one of two classes of the address: the
/// *narrow* class (its longest matching network among most networks) in the
/// low `NARROW_CLASS_BITS`, or the *wide* class (among the networks that hold
/// many others, for rules that pair them with other fields) above them. A
/// range's value holds both; a shape's key mask keeps the one its table is
/// keyed by, so that a rule of a wide network has a key per wide class it
/// admits, not one per network inside it.
pub const NARROW_CLASS_BITS: u32 = 18;
pub const NARROW_CLASS_MASK: u32 = (1 << NARROW_CLASS_BITS) - 1;
/// Wide classes an address field may have, 0 included.
pub const MAX_WIDE_CLASSES: u32 = 1 << (32 - NARROW_CLASS_BITS);
const _: () = assert!(2 * MAX_NETWORKS < NARROW_CLASS_MASK);
/// Shape bits beside the groups (user space only): the source or
/// destination group is keyed by its wide class. A shape without them
/// takes the table of its own number; one with them a table no such shape
/// of the set takes.
pub const GROUP_SRC_WIDE: u32 = 1 << 5;
pub const GROUP_DST_WIDE: u32 = 1 << 6;
/// Every group bit (a shape less its wide bits).
pub const GROUPS: u32 = SHAPES - 1;

/// Which class lookups a generation needs (`Plan::lookups`); a field no rule
/// asks about is class 0 without a lookup.
pub const LOOKUP_SRC_V4: u32 = 1 << 0;
pub const LOOKUP_DST_V4: u32 = 1 << 1;
pub const LOOKUP_SRC_V6: u32 = 1 << 2;
pub const LOOKUP_DST_V6: u32 = 1 << 3;
pub const LOOKUP_SPORT: u32 = 1 << 4;
pub const LOOKUP_DPORT: u32 = 1 << 5;
pub const LOOKUP_PROTO: u32 = 1 << 6;
pub const LOOKUP_ICMP: u32 = 1 << 7;
pub const LOOKUP_FLAGS: u32 = 1 << 8;
pub const LOOKUP_IFACE: u32 = 1 << 9;

/// Class arrays: one slot per value, then one for "unknown" (the walk could
/// not read the field: a cut transport header, a non-first fragment, or, for
/// the protocol, a stop inside the extension chain).
pub const PORT_DOMAIN: u32 = 65536 + 1;
pub const PORT_UNKNOWN: u32 = 65536;
pub const PROTO_DOMAIN: u32 = 256 + 1;
pub const PROTO_UNKNOWN: u32 = 256;
/// ICMP and ICMPv6: slot `type << 8 | code`.
pub const ICMP_DOMAIN: u32 = 65536 + 1;
pub const ICMP_UNKNOWN: u32 = 65536;
pub const FLAGS_DOMAIN: u32 = 256 + 1;
pub const FLAGS_UNKNOWN: u32 = 256;

/// The class array slot of `value` (or its `*_UNKNOWN`) in `generation`.
#[inline(always)]
pub const fn class_slot(generation: u32, domain: u32, value: u32) -> u32 {
    generation * domain + value
}

/// The `port_classes` slot of a source or destination port (or
/// `PORT_UNKNOWN`) in `generation`.
#[inline(always)]
pub const fn port_class_slot(generation: u32, direction: u8, port: u32) -> u32 {
    class_slot(generation * 2 + direction as u32, PORT_DOMAIN, port)
}

/// The most classes of the port and ICMP fields (the key has 16 bits).
pub const MAX_SMALL_CLASSES: u32 = 65535;
/// The most interfaces rules may name (the key has 8 bits).
pub const MAX_IFACE_CLASSES: u32 = 255;

/// What a generation holds, for the program to skip what it does not need.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Plan {
    /// Bit `s` set: some rule has shape `s` (a set of `GROUP_*`).
    pub shapes: u32,
    /// `LOOKUP_*` bits.
    pub lookups: u32,
    /// Non-zero while any rule is in force: IP the walk cannot judge drops.
    pub any_rule: u32,
    /// How many of `shape_list` are in use.
    pub shape_count: u32,
    /// The shapes of `shapes`, by the order of their first rule: once a
    /// packet has matched a rule before the next shape's first, no later
    /// shape can decide it.
    pub shape_list: [u8; SHAPES as usize],
    /// The order of each listed shape's first rule.
    pub first_order: [u32; SHAPES as usize],
    /// The shapes a packet looks up in `class_rules`: all but those of one
    /// address group alone, which the address's class value answers.
    pub hashed: u32,
    /// `ClassValue::shapes` of class 0 (no lookup, or none found) in the
    /// source, destination, source port and destination port (`FILTER_*`).
    pub absent: [u32; 4],
    pub _pad: u32,
    /// Per address table (`ADDRESS_TABLES` order): how to find a bucket.
    pub addresses: [AddressIndex; ADDRESS_TABLES as usize],
    /// Per listed shape: `ClassKey::mask_of` it, which makes a packet's
    /// classes its key with one AND a field.
    pub key_masks: [ClassKey; SHAPES as usize],
}

/// Indices of `Plan::absent`.
pub const FILTER_SRC: usize = 0;
pub const FILTER_DST: usize = 1;
pub const FILTER_SPORT: usize = 2;
pub const FILTER_DPORT: usize = 3;

impl Plan {
    /// No rules: nothing to look up.
    pub const NONE: Plan = Plan {
        shapes: 0,
        lookups: 0,
        any_rule: 0,
        shape_count: 0,
        shape_list: [0; SHAPES as usize],
        first_order: [0; SHAPES as usize],
        hashed: 0,
        absent: [0; 4],
        _pad: 0,
        addresses: [AddressIndex {
            base: 0,
            shift: 0,
            last_bucket: 0,
        }; ADDRESS_TABLES as usize],
        key_masks: [ClassKey::ZERO; SHAPES as usize],
    };
}

impl Default for Plan {
    fn default() -> Self {
        Plan::NONE
    }
}

/// The key of one shape's table of the hash map `class_rules`: the packet's
/// classes in the shape's groups, zero in the others.
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Debug)]
pub struct ClassKey {
    pub src: u32,
    pub dst: u32,
    pub sport: u16,
    pub dport: u16,
    pub proto: u16,
    pub icmp: u16,
    pub flags: u16,
    pub iface: u8,
    /// `generation * SHAPES + shape`.
    pub table: u8,
}

impl ClassKey {
    pub const ZERO: ClassKey = ClassKey {
        src: 0,
        dst: 0,
        sport: 0,
        dport: 0,
        proto: 0,
        icmp: 0,
        flags: 0,
        iface: 0,
        table: 0,
    };

    /// All ones in the fields of `shape`'s groups, zero in the others (and
    /// in `table`); an address group's narrow or wide class bits only.
    pub const fn mask_of(shape: u32) -> ClassKey {
        const fn ones(shape: u32, group: u32) -> u32 {
            if shape & group != 0 {
                u32::MAX
            } else {
                0
            }
        }
        const fn address(shape: u32, group: u32, wide: u32) -> u32 {
            let class = if shape & wide != 0 {
                !NARROW_CLASS_MASK
            } else {
                NARROW_CLASS_MASK
            };
            ones(shape, group) & class
        }
        let proto = ones(shape, GROUP_PROTO);
        ClassKey {
            src: address(shape, GROUP_SRC, GROUP_SRC_WIDE),
            dst: address(shape, GROUP_DST, GROUP_DST_WIDE),
            sport: ones(shape, GROUP_SPORT) as u16,
            dport: ones(shape, GROUP_DPORT) as u16,
            proto: proto as u16,
            icmp: proto as u16,
            flags: proto as u16,
            iface: proto as u8,
            table: 0,
        }
    }

    /// These classes as the key of table `table`, the fields `mask` clears
    /// (`mask_of` its shape) zero.
    #[inline(always)]
    pub fn masked(&self, mask: &ClassKey, table: u8) -> ClassKey {
        ClassKey {
            src: self.src & mask.src,
            dst: self.dst & mask.dst,
            sport: self.sport & mask.sport,
            dport: self.dport & mask.dport,
            proto: self.proto & mask.proto,
            icmp: self.icmp & mask.icmp,
            flags: self.flags & mask.flags,
            iface: self.iface & mask.iface,
            table,
        }
    }
}

/// The first rule of a shape that admits a key's classes.
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct ClassEntry {
    /// The rule's place in the set (0 first): the lowest over all shapes
    /// decides.
    pub order: u32,
    /// The rule's hit counter slot, and `Notice::rule_id`.
    pub slot: u32,
    /// XDP_PASS (allow) or XDP_DROP (deny).
    pub verdict: u8,
    /// Non-zero: a notice for every packet this rule decides.
    pub log: u8,
    pub _pad: [u8; 2],
}

impl ClassEntry {
    /// No rule: what a shape without an entry for a key gives.
    pub const NONE: ClassEntry = ClassEntry {
        order: u32::MAX,
        slot: RULE_NONE,
        verdict: 0,
        log: 0,
        _pad: [0; 2],
    };
}

/// A port's class, and the shapes whose tables a packet of that class may
/// find an entry in: every shape without the field's group, and those with
/// an entry of this class. The program skips the lookups of the others.
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct ClassValue {
    pub class: u32,
    pub shapes: u32,
}

/// An address's class, as [`ClassValue`], and the first rule of the shape
/// that asks about this address alone (`order` u32::MAX: none), so that
/// such rules cost no hash lookup.
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct AddressClass {
    pub class: u32,
    pub shapes: u32,
    pub alone: ClassEntry,
}

/// A packet's classes while the program decides (per-CPU map memory): the
/// key, the shapes its classes may find entries in, and the first rule of
/// the address shapes their class values answered.
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct PacketClasses {
    pub key: ClassKey,
    pub shapes: u32,
    pub first: ClassEntry,
    pub slots: FieldSlots,
}

/// The slot each class array is looked up at for the packet (`*_UNKNOWN`
/// where the walk could not read the field), `NO_SLOT` where the packet has
/// no such field: class 0, and no lookup.
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct FieldSlots {
    pub proto: u32,
    pub sport: u32,
    pub dport: u32,
    pub icmp: u32,
    pub flags: u32,
}

/// A field the packet does not have (`FieldSlots`).
pub const NO_SLOT: u32 = u32::MAX;

/// Per-CPU hits of one rule.
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct RuleHits {
    pub packets: u64,
    /// Frame lengths as XDP sees them.
    pub bytes: u64,
}

/// The key of `iface_classes`: an interface's class in a generation.
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct IfaceKey {
    pub generation: u32,
    pub ifindex: u32,
}

/// Per-CPU rule counters come in pages, the largest value a per-CPU array
/// takes (32 KiB): a per-CPU array allocates each of its values apart, and
/// 131,072 of them took 180 ms to create, 64 pages take none to speak of.
pub const HITS_PER_PAGE: u32 = 2048;
pub const HIT_PAGES: u32 = MAX_RULES / HITS_PER_PAGE;

/// One page of rule counters: slot `s` is `hits[s % HITS_PER_PAGE]` of page
/// `s / HITS_PER_PAGE`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct HitPage {
    pub hits: [RuleHits; HITS_PER_PAGE as usize],
}

/// Entries `class_rules` can hold, over both generations. Its bucket array
/// (16 bytes an entry, zeroed at creation) is most of start-up's map work.
pub const MAX_CLASS_ENTRIES: u32 = 1 << 19;

/// Slots of the per-CPU `counters` array.
pub const COUNTER_ABORTED: u32 = XDP_ABORTED as u32;
pub const COUNTER_DROP: u32 = XDP_DROP as u32;
pub const COUNTER_PASS: u32 = XDP_PASS as u32;
/// Notices not delivered because the ring buffer was full.
pub const COUNTER_NOTICES_LOST: u32 = 5;
/// Notices handed to the ring buffer.
pub const COUNTER_NOTICES_SENT: u32 = 6;
/// Packets the notice mode asked for, left without one by `--sample`.
pub const COUNTER_SAMPLED_OUT: u32 = 7;
/// Bytes (frame lengths) per verdict: `COUNTER_BYTES + verdict`.
pub const COUNTER_BYTES: u32 = 8;
/// Packets left without a notice by `--max-rate`.
pub const COUNTER_OVER_RATE: u32 = 13;
/// Packets neither `--notices` nor a `log` rule asked a notice for.
pub const COUNTER_NOT_ASKED: u32 = 14;
pub const COUNTER_SLOTS: u32 = 16;
/// Counter blocks: one per `-i` interface, and one for any other.
pub const COUNTER_BLOCKS: u32 = MAX_IFACES + 1;

/// One interface's counters, a value of `counters`: slot `COUNTER_*`. A
/// block, so that a packet costs one lookup whatever it counts.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CounterBlock {
    pub slots: [u64; COUNTER_SLOTS as usize],
}

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
    /// The ids of the first two VLAN tags, outer first (`vlan_count` says
    /// how many tags there are: id 0 is a priority tag).
    pub vlan_outer: u16,
    pub vlan_inner: u16,
    pub src_port: u16,
    pub dst_port: u16,
    /// 4, 6, or 0 for non-IP traffic.
    pub ip_version: u8,
    /// IP protocol number of the transport, behind any extension headers;
    /// where the walk stopped inside the chain, the header it stopped on.
    pub l4_proto: u8,
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// FIN, SYN, RST, PSH, ACK, URG, ECE, CWR from bit 0 up.
    pub tcp_flags: u8,
    pub verdict: u8,
    pub depth: u8,
    pub flags: u8,
    /// VLAN tags walked, up to [`MAX_VLAN_TAGS`].
    pub vlan_count: u8,
    /// ARP operation (1 request, 2 reply) for Ethernet/IPv4 ARP, else 0.
    /// Such ARP also fills `src_addr` with the sender's IPv4 address (bytes
    /// 0..4) and MAC (4..10), `dst_addr` with the target's.
    pub arp_op: u8,
    /// Ethernet source and destination addresses.
    pub eth_src: [u8; 6],
    pub eth_dst: [u8; 6],
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
        vlan_count: 0,
        arp_op: 0,
        eth_src: [0; 6],
        eth_dst: [0; 6],
    };
}
