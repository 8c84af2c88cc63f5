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

use core::ptr::{read_volatile, write_volatile};

use crate::abi::*;
use crate::maps::{
    class_at, class_rules, flag_classes, icmp_classes, iface_classes, lookup_or, lookup_ptr,
    packet_classes, plans, port_classes, proto_classes, rule_generation, v4_classes, v6_classes,
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
    let unjudgeable = if plan.any_rule != 0 {
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
    if plan.shapes == 0 {
        return default;
    }
    let classes = lookup_ptr::<_, u32, ClassKey>(&packet_classes, &0u32);
    if classes.is_null() {
        return unjudgeable; // never: slot 0 of a per-CPU array
    }
    let classes = unsafe { &mut *classes };
    classes_of(notice, generation, plan.lookups, classes);
    // Read back from map memory: values the verifier knows nothing of.
    let classes = unsafe { read_volatile(classes) };
    let first = first_match(&classes, generation, plan);
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
/// about) into `classes`, map memory: each written as soon as it is known,
/// so that no register carries it on through the other lookups.
#[inline(always)]
fn classes_of(notice: &Notice, generation: u32, lookups: u32, classes: &mut ClassKey) {
    unsafe { write_volatile(classes, ClassKey::default()) };
    let v4 = notice.ip_version == 4;
    let (src_lookup, dst_lookup) = if v4 {
        (LOOKUP_SRC_V4, LOOKUP_DST_V4)
    } else {
        (LOOKUP_SRC_V6, LOOKUP_DST_V6)
    };
    if lookups & src_lookup != 0 {
        store(
            &mut classes.src,
            address_class(notice, generation, DIRECTION_SRC),
        );
    }
    if lookups & dst_lookup != 0 {
        store(
            &mut classes.dst,
            address_class(notice, generation, DIRECTION_DST),
        );
    }
    if lookups & LOOKUP_IFACE != 0 {
        let key = IfaceKey {
            generation,
            ifindex: notice.ifindex,
        };
        store(&mut classes.iface, class_at(&iface_classes, &key) as u8);
    }

    let proto = notice.l4_proto;
    let read = notice.depth >= DEPTH_L4;
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
    if lookups & LOOKUP_PROTO != 0 {
        store(
            &mut classes.proto,
            small_class(&proto_classes, generation, PROTO_DOMAIN, proto_slot),
        );
    }
    let (ports, icmp, flags) = match proto {
        _ if proto_slot == PROTO_UNKNOWN => (true, true, true),
        IPPROTO_TCP => (true, false, true),
        IPPROTO_UDP => (true, false, false),
        IPPROTO_ICMP if v4 => (false, true, false),
        IPPROTO_ICMPV6 if !v4 => (false, true, false),
        _ => (false, false, false),
    };
    let slot_of = |value: u32, unknown: u32| match transport {
        Transport::Read => Some(value),
        Transport::Unknown => Some(unknown),
        Transport::Absent => None,
    };
    if ports {
        if lookups & LOOKUP_SPORT != 0 {
            if let Some(slot) = slot_of(notice.src_port as u32, PORT_UNKNOWN) {
                store(
                    &mut classes.sport,
                    port_class(generation, DIRECTION_SRC, slot),
                );
            }
        }
        if lookups & LOOKUP_DPORT != 0 {
            if let Some(slot) = slot_of(notice.dst_port as u32, PORT_UNKNOWN) {
                store(
                    &mut classes.dport,
                    port_class(generation, DIRECTION_DST, slot),
                );
            }
        }
    }
    if icmp && lookups & LOOKUP_ICMP != 0 {
        let value = (notice.icmp_type as u32) << 8 | notice.icmp_code as u32;
        if let Some(slot) = slot_of(value, ICMP_UNKNOWN) {
            store(
                &mut classes.icmp,
                small_class(&icmp_classes, generation, ICMP_DOMAIN, slot),
            );
        }
    }
    if flags && lookups & LOOKUP_FLAGS != 0 {
        if let Some(slot) = slot_of(notice.tcp_flags as u32, FLAGS_UNKNOWN) {
            store(
                &mut classes.flags,
                small_class(&flag_classes, generation, FLAGS_DOMAIN, slot),
            );
        }
    }
}

/// Writes `value` to map memory as it stands, for the verifier's sake (see
/// [`classes_of`]): LLVM may neither defer the write nor reuse the value.
#[inline(always)]
fn store<T>(field: &mut T, value: T) {
    unsafe { write_volatile(field, value) }
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
/// that cannot hold a rule before the one found.
#[inline(always)]
fn first_match(classes: &ClassKey, generation: u32, plan: &Plan) -> ClassEntry {
    let mut first = NO_ENTRY;
    for i in 0..SHAPES as usize {
        if i as u32 >= plan.shape_count || plan.first_order[i] > first.order {
            break;
        }
        let key = in_shape(classes, plan.shape_list[i] as u32, generation);
        let entry = lookup_or(&class_rules, &key, NO_ENTRY);
        if entry.order < first.order {
            first = entry;
        }
    }
    first
}

/// What [`first_match`] reads where a shape has no entry.
const NO_ENTRY: ClassEntry = ClassEntry {
    order: u32::MAX,
    slot: RULE_NONE,
    verdict: 0,
    log: 0,
    _pad: [0; 2],
};

/// `classes` as the key of `shape`'s table: zero outside its groups.
#[inline(always)]
fn in_shape(classes: &ClassKey, shape: u32, generation: u32) -> ClassKey {
    let keep = |group: u32| shape & group != 0;
    let proto_group = keep(GROUP_PROTO);
    ClassKey {
        src: if keep(GROUP_SRC) { classes.src } else { 0 },
        dst: if keep(GROUP_DST) { classes.dst } else { 0 },
        sport: if keep(GROUP_SPORT) { classes.sport } else { 0 },
        dport: if keep(GROUP_DPORT) { classes.dport } else { 0 },
        proto: if proto_group { classes.proto } else { 0 },
        icmp: if proto_group { classes.icmp } else { 0 },
        flags: if proto_group { classes.flags } else { 0 },
        iface: if proto_group { classes.iface } else { 0 },
        table: (generation * SHAPES + shape) as u8,
    }
}

/// The class of the source or destination address: that of its longest
/// matching network, 0 where none matches.
#[inline(always)]
fn address_class(notice: &Notice, generation: u32, direction: u8) -> u32 {
    let addr = if direction == DIRECTION_SRC {
        &notice.src_addr
    } else {
        &notice.dst_addr
    };
    if notice.ip_version == 4 {
        let addr = [addr[0], addr[1], addr[2], addr[3]];
        class_at(
            &v4_classes,
            &Ipv4RuleKey::new(generation, direction, addr, 32),
        )
    } else {
        class_at(
            &v6_classes,
            &Ipv6RuleKey::new(generation, direction, *addr, 128),
        )
    }
}

#[inline(always)]
fn port_class(generation: u32, direction: u8, slot: u32) -> u16 {
    class_at(&port_classes, &port_class_slot(generation, direction, slot)) as u16
}

/// A class from one of the arrays of `domain` slots a generation.
#[inline(always)]
fn small_class<M>(map: &'static M, generation: u32, domain: u32, slot: u32) -> u16 {
    class_at(map, &class_slot(generation, domain, slot)) as u16
}
