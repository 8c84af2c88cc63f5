//! The firewall's decision for one parsed packet: rules in order, the first
//! that matches decides, at a cost that does not grow with their number.
//!
//! Each field of the packet becomes a class (one lookup per field some rule
//! asks about); then, for each shape the rules have (the field groups they
//! ask about), one hash lookup of the packet's classes in that shape finds the
//! first rule of the shape that matches. The lowest rule order wins; where
//! none matches, the default policy decides. Non-IP traffic (ARP, LLDP, …)
//! always passes. User space (src/classify) builds the tables; its
//! `Compiled::decide` does what this file does, for the tests.
//!
//! Fail closed: while any rule is in force, an IP frame the walk could not
//! read (cut inside the IP header, malformed, VLAN tags past the limit) is
//! dropped. A field the walk could not read has its own "unknown" class,
//! which every deny rule asking about that field admits and no allow rule
//! does.

use core::ptr::{null, read_volatile, write_volatile};

use crate::abi::*;
use crate::maps::{
    address_buckets, class_at, class_rules, flag_classes, icmp_classes, iface_classes, lookup_or,
    lookup_ptr, packet_classes, plans, port_classes, proto_classes, rule_generation, v4_ranges,
    v6_ranges,
};

/// What decided a packet.
#[derive(Clone, Copy)]
pub struct Decision {
    pub verdict: u8,
    /// The deciding rule's counter slot, or `RULE_NONE`.
    pub rule_id: u32,
    /// The rule asks for a notice of every packet it decides.
    pub log: bool,
}

/// A verdict no rule gave.
#[inline(always)]
const fn by_policy(verdict: u8) -> Decision {
    Decision {
        verdict,
        rule_id: RULE_NONE,
        log: false,
    }
}

/// The verdict for `notice`, and the rule that gave it.
#[inline(always)]
pub fn decide(notice: &Notice, config: &Config) -> Decision {
    let default = by_policy(config.default_verdict as u8);
    // Both are array slots, which always exist.
    let generation = lookup_or(&rule_generation, &0u32, 0u32);
    let plan = lookup_ptr::<_, u32, Plan>(&plans, &generation);
    if plan.is_null() {
        return default; // never: an array slot
    }
    // In map memory: the shape loop indexes its lists.
    let plan = unsafe { &*plan };
    // What the stack may still deliver as IP, but no rule can judge.
    let unjudgeable = if config.classifier != 0 && plan.any_rule != 0 {
        by_policy(XDP_DROP)
    } else {
        default
    };
    if notice.ip_version == 0 {
        return match notice.ether_type {
            ETH_P_IP | ETH_P_IPV6 | ETH_P_8021Q | ETH_P_8021AD => unjudgeable,
            _ => by_policy(XDP_PASS),
        };
    }
    if notice.flags & FLAG_MALFORMED != 0 {
        return unjudgeable;
    }
    // Loaded for a run without rules (`Config::classifier`): a constant to
    // the verifier, which then checks none of what follows.
    if config.classifier == 0 || plan.shapes == 0 {
        return default;
    }
    let classes = lookup_ptr::<_, u32, PacketClasses>(&packet_classes, &0u32);
    if classes.is_null() {
        return unjudgeable; // never: slot 0 of a per-CPU array
    }
    let classes = unsafe { &mut *classes };
    classes_of(notice, generation, plan, classes);
    let first = first_match(classes, generation, plan);
    if first.verdict == 0 {
        return default;
    }
    Decision {
        verdict: first.verdict,
        rule_id: first.slot,
        log: first.log != 0,
    }
}

/// Writes the packet's class in every field (0 for fields no rule asks
/// about) into `out`, map memory: each written as soon as it is known, so
/// that no register carries it on through the other lookups. With them,
/// the shapes the class values leave to look up, and the first rule of the
/// address-alone shapes they answer.
#[inline(always)]
fn classes_of(notice: &Notice, generation: u32, plan: &Plan, out: &mut PacketClasses) {
    let fresh = PacketClasses {
        key: ClassKey::default(),
        shapes: plan.hashed,
        first: ClassEntry::NONE,
        slots: field_slots(notice),
    };
    // Each step below reads what it needs from map memory and leaves what it
    // found there: the paths through one step (protocols, families, fields
    // present or not) meet at the next in one state, instead of carrying
    // their differences through every later step.
    unsafe { write_volatile(out, fresh) };
    // The address tables of this family (`ADDRESS_TABLES` order).
    let src_table = if notice.ip_version == 4 { 0 } else { 2 };
    let src = address_class(notice, generation, plan, src_table);
    address_into(out, src, plan.absent[FILTER_SRC], DIRECTION_SRC);
    let dst = address_class(notice, generation, plan, src_table + 1);
    address_into(out, dst, plan.absent[FILTER_DST], DIRECTION_DST);
    if wants(plan, LOOKUP_IFACE) {
        let key = IfaceKey {
            generation,
            ifindex: notice.ifindex,
        };
        store(&mut out.key.iface, class_at(&iface_classes, &key) as u8);
    }
    if wants(plan, LOOKUP_PROTO) {
        let slot = unsafe { read_volatile(&out.slots.proto) };
        let class = small_class(&proto_classes, generation, PROTO_DOMAIN, slot);
        store(&mut out.key.proto, class);
    }
    if wants(plan, LOOKUP_SPORT) {
        port_into(out, plan, generation, DIRECTION_SRC);
    }
    if wants(plan, LOOKUP_DPORT) {
        port_into(out, plan, generation, DIRECTION_DST);
    }
    if wants(plan, LOOKUP_ICMP) {
        let slot = unsafe { read_volatile(&out.slots.icmp) };
        if slot != NO_SLOT {
            let class = small_class(&icmp_classes, generation, ICMP_DOMAIN, slot);
            store(&mut out.key.icmp, class);
        }
    }
    if wants(plan, LOOKUP_FLAGS) {
        let slot = unsafe { read_volatile(&out.slots.flags) };
        if slot != NO_SLOT {
            let class = small_class(&flag_classes, generation, FLAGS_DOMAIN, slot);
            store(&mut out.key.flags, class);
        }
    }
}

/// The class of the source or destination port at its slot into `out`, and
/// the shapes it leaves (those of no port where the packet has none).
#[inline(always)]
fn port_into(out: &mut PacketClasses, plan: &Plan, generation: u32, direction: u8) {
    let (slot, absent) = if direction == DIRECTION_SRC {
        (&out.slots.sport, plan.absent[FILTER_SPORT])
    } else {
        (&out.slots.dport, plan.absent[FILTER_DPORT])
    };
    let slot = unsafe { read_volatile(slot) };
    let shapes = if slot == NO_SLOT {
        absent
    } else {
        let value = port_class(generation, direction, slot);
        let class = if direction == DIRECTION_SRC {
            &mut out.key.sport
        } else {
            &mut out.key.dport
        };
        store(class, value.class as u16);
        value.shapes
    };
    keep_shapes(out, shapes);
}

/// Whether the plan looks up a field (`LOOKUP_*`), read afresh each time so
/// that no register carries what an earlier test learned.
#[inline(always)]
fn wants(plan: &Plan, lookup: u32) -> bool {
    let lookups = unsafe { read_volatile(&plan.lookups) };
    lookups & lookup != 0
}

/// The class array slots of the packet's protocol, ports, ICMP type and
/// code, and TCP flags.
#[inline(always)]
fn field_slots(notice: &Notice) -> FieldSlots {
    let proto = notice.l4_proto;
    let read = notice.depth >= DEPTH_L4;
    let v4 = notice.ip_version == 4;
    // Where the walk stopped inside the extension chain, no transport field
    // is known; a non-first fragment has none.
    let (proto_slot, transport) = if !read && is_extension_header(notice.ip_version, proto) {
        (PROTO_UNKNOWN, Transport::Unknown)
    } else if !read && notice.flags & FLAG_FRAGMENT != 0 {
        (proto as u32, Transport::Absent)
    } else if read {
        (proto as u32, Transport::Read)
    } else {
        (proto as u32, Transport::Unknown)
    };
    let (ports, icmp, flags) = match proto {
        _ if proto_slot == PROTO_UNKNOWN => (true, true, true),
        IPPROTO_TCP => (true, false, true),
        IPPROTO_UDP => (true, false, false),
        IPPROTO_ICMP if v4 => (false, true, false),
        IPPROTO_ICMPV6 if !v4 => (false, true, false),
        _ => (false, false, false),
    };
    let slot = |has: bool, value: u32, unknown: u32| match transport {
        _ if !has => NO_SLOT,
        Transport::Read => value,
        Transport::Unknown => unknown,
        Transport::Absent => NO_SLOT,
    };
    let icmp_value = (notice.icmp_type as u32) << 8 | notice.icmp_code as u32;
    FieldSlots {
        proto: proto_slot,
        sport: slot(ports, notice.src_port as u32, PORT_UNKNOWN),
        dport: slot(ports, notice.dst_port as u32, PORT_UNKNOWN),
        icmp: slot(icmp, icmp_value, ICMP_UNKNOWN),
        flags: slot(flags, notice.tcp_flags as u32, FLAGS_UNKNOWN),
    }
}

/// Writes `value` to map memory as it stands, for the verifier's sake (see
/// [`classes_of`]): LLVM may neither defer the write nor reuse the value.
#[inline(always)]
fn store<T>(field: &mut T, value: T) {
    unsafe { write_volatile(field, value) }
}

/// Narrows the shapes left to look up to `shapes`.
#[inline(always)]
fn keep_shapes(out: &mut PacketClasses, shapes: u32) {
    let now = unsafe { read_volatile(&out.shapes) };
    store(&mut out.shapes, now & shapes);
}

/// An address's class value (null: none, class 0 with `absent` shapes)
/// into `out`: its class, its shapes, the rule of its shape alone.
#[inline(always)]
fn address_into(out: &mut PacketClasses, found: *const AddressClass, absent: u32, direction: u8) {
    if found.is_null() {
        keep_shapes(out, absent);
        return;
    }
    let value = unsafe { read_volatile(found) };
    if direction == DIRECTION_SRC {
        store(&mut out.key.src, value.class);
    } else {
        store(&mut out.key.dst, value.class);
    }
    keep_shapes(out, value.shapes);
    let first = unsafe { read_volatile(&out.first) };
    if value.alone.order < first.order {
        store(&mut out.first, value.alone);
    }
}

/// How much of the transport header the walk read.
#[derive(Clone, Copy)]
enum Transport {
    Read,
    /// Cut short, past the extension limit, or behind an unknown protocol.
    Unknown,
    /// A non-first fragment: there is none.
    Absent,
}

/// The first rule over the plan's shapes that admits `classes`: the entry
/// with the lowest order, or one with verdict 0 where none does. Shapes come
/// by the order of their first rule, so the search ends at the first shape
/// that cannot hold a rule before the one found; a shape the class values
/// ruled out is skipped.
///
/// Everything it carries from one shape to the next lives in `classes`, map
/// memory read afresh each time: values the verifier knows nothing of, so
/// that skipped, missed and found shapes reach the next in one state.
#[inline(always)]
fn first_match(classes: &mut PacketClasses, generation: u32, plan: &Plan) -> ClassEntry {
    // Unrolled: the verifier checks each step once, where a loop of unknown
    // length has it check the body again and again in every state it was
    // entered in.
    macro_rules! steps {
        ($($i:literal)*) => {
            $(
                if !shape_step($i, classes, generation, plan) {
                    return unsafe { read_volatile(&classes.first) };
                }
            )*
        };
    }
    steps!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31);
    unsafe { read_volatile(&classes.first) }
}

/// Looks up the `i`th listed shape into `classes.first`; false once no
/// later shape can hold a rule before the one found.
#[inline(always)]
fn shape_step(i: usize, classes: &mut PacketClasses, generation: u32, plan: &Plan) -> bool {
    let first_order = unsafe { read_volatile(&classes.first.order) };
    if i as u32 >= plan.shape_count || plan.first_order[i % SHAPES as usize] > first_order {
        return false;
    }
    let shape = plan.shape_list[i % SHAPES as usize] as u32;
    let shapes = unsafe { read_volatile(&classes.shapes) };
    if shapes.wrapping_shr(shape) & 1 == 0 {
        return true;
    }
    let table = (generation * SHAPES + shape) as u8;
    let key =
        unsafe { read_volatile(&classes.key) }.masked(&plan.key_masks[i % SHAPES as usize], table);
    let entry = lookup_ptr::<_, _, ClassEntry>(&class_rules, &key);
    if !entry.is_null() {
        let entry = unsafe { read_volatile(entry) };
        if entry.order < first_order {
            store(&mut classes.first, entry);
        }
    }
    true
}

/// The class value of the source (`table` even) or destination address:
/// that of the range it lies in, its longest matching network's. Null where
/// no rule asks about the field in this family.
#[inline(always)]
fn address_class(notice: &Notice, generation: u32, plan: &Plan, table: u32) -> *const AddressClass {
    if plan.lookups & 1 << table == 0 {
        return null();
    }
    let addr = if table.is_multiple_of(2) {
        &notice.src_addr
    } else {
        &notice.dst_addr
    };
    let index = &plan.addresses[(table % ADDRESS_TABLES) as usize];
    if notice.ip_version == 4 {
        let key = u32::from_be_bytes([addr[0], addr[1], addr[2], addr[3]]);
        range_of::<_, V4Range>(&v4_ranges, generation, table, index, key as u64, 0)
    } else {
        let mut hi = [0u8; 8];
        let mut lo = [0u8; 8];
        hi.copy_from_slice(&addr[..8]);
        lo.copy_from_slice(&addr[8..]);
        let (hi, lo) = (u64::from_be_bytes(hi), u64::from_be_bytes(lo));
        range_of::<_, V6Range>(&v6_ranges, generation, table, index, hi, lo)
    }
}

/// What an address whose range cannot be read gets: the packet is dropped
/// before any rule (order 0, no rule's slot). It cannot happen while user
/// space writes the slots the search can reach; should that ever break, the
/// firewall fails closed instead of reading the address as "no network".
#[no_mangle]
#[link_section = ".rodata"]
static UNREADABLE: AddressClass = AddressClass {
    class: 0,
    shapes: 0,
    alone: ClassEntry {
        order: 0,
        slot: RULE_NONE,
        verdict: XDP_DROP,
        log: 0,
        _pad: [0; 2],
    },
};

/// A range of a sorted ranges array.
trait SortedRange {
    /// Whether the range starts at or below the address `hi`:`lo`.
    fn starts_at_or_below(&self, hi: u64, lo: u64) -> bool;
    fn value(&self) -> &AddressClass;
}

impl SortedRange for V4Range {
    #[inline(always)]
    fn starts_at_or_below(&self, hi: u64, _lo: u64) -> bool {
        self.start as u64 <= hi
    }

    #[inline(always)]
    fn value(&self) -> &AddressClass {
        &self.value
    }
}

impl SortedRange for V6Range {
    #[inline(always)]
    fn starts_at_or_below(&self, hi: u64, lo: u64) -> bool {
        self.start_hi < hi || (self.start_hi == hi && self.start_lo <= lo)
    }

    #[inline(always)]
    fn value(&self) -> &AddressClass {
        &self.value
    }
}

/// The value of the range address `hi`:`lo` lies in: its bucket, then a
/// binary search among the bucket's ranges (most hold none or one).
#[inline(always)]
fn range_of<M, R: SortedRange>(
    ranges: &'static M,
    generation: u32,
    table: u32,
    index: &AddressIndex,
    hi: u64,
    lo: u64,
) -> *const AddressClass {
    let slot = bucket_slot(generation, table, index.bucket(hi));
    let bucket = lookup_ptr::<_, u32, Bucket>(&address_buckets, &slot);
    if bucket.is_null() {
        return &UNREADABLE; // never: an array slot
    }
    let Bucket { first, last } = unsafe { read_volatile(bucket) };
    // The range is one of at..=at + left, and `at` starts at or below. (As
    // `AddressTable::class_of`; written out here, as a closure or a flag
    // carried through the steps doubles the verifier's work.)
    let (mut at, mut left) = (first, last.wrapping_sub(first));
    for _ in 0..MAX_SEARCH_STEPS {
        if left == 0 {
            break;
        }
        let half = left - left / 2;
        let middle = at.wrapping_add(half);
        let range = lookup_ptr::<_, u32, R>(ranges, &middle);
        if range.is_null() {
            return &UNREADABLE; // never: user space writes slots that exist
        }
        if unsafe { (*range).starts_at_or_below(hi, lo) } {
            at = middle;
            left -= half;
        } else {
            left = half - 1;
        }
    }
    let range = lookup_ptr::<_, u32, R>(ranges, &at);
    if range.is_null() {
        return &UNREADABLE;
    }
    unsafe { (*range).value() }
}

#[inline(always)]
fn port_class(generation: u32, direction: u8, slot: u32) -> ClassValue {
    let every = ClassValue {
        class: 0,
        shapes: u32::MAX,
    };
    lookup_or(
        &port_classes,
        &port_class_slot(generation, direction, slot),
        every,
    )
}

/// A class from one of the arrays of `domain` slots a generation.
#[inline(always)]
fn small_class<M>(map: &'static M, generation: u32, domain: u32, slot: u32) -> u16 {
    class_at(map, &class_slot(generation, domain, slot)) as u16
}
