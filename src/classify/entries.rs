//! The entries of a rule: every combination of classes it admits that a
//! packet can bring to its shape's table.
//!
//! Combinations no packet can have are left out: the protocol decides which
//! transport fields have values (a UDP packet has no flags, an unknown
//! protocol goes with unknown ports), and an address class only pairs with
//! classes of its own family.

use std::borrow::Cow;
use std::collections::HashSet;

use super::classes::{AddressField, SlotField, REACH_V4, REACH_V6};
use crate::abi::{
    self, ClassKey, GROUPS, GROUP_DPORT, GROUP_DST, GROUP_DST_WIDE, GROUP_PROTO, GROUP_SPORT,
    GROUP_SRC, GROUP_SRC_WIDE,
};

/// The classes a transport field takes in one situation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Classes {
    One(u32),
    /// The class of any value the walk read.
    Values,
}

/// One kind of packet as the classes see it: a family and what its
/// protocol gives the transport fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Situation {
    /// `REACH_*`, or 0 when the shape has no address group.
    family: u8,
    sport: Classes,
    dport: Classes,
    proto: u32,
    icmp: Classes,
    flags: Classes,
}

/// The classes of every field, and what each rule admits of them.
pub struct Fields {
    pub src: AddressField,
    pub dst: AddressField,
    /// The networks of each address field that wide shapes key by.
    pub src_wide: AddressField,
    pub dst_wide: AddressField,
    pub sport: SlotField,
    pub dport: SlotField,
    pub proto: SlotField,
    pub icmp: SlotField,
    pub flags: SlotField,
    /// Interface classes there are, 0 included.
    pub iface_classes: u32,
}

/// What one rule asks of each field: `None` where it gives no such field.
pub struct Asks {
    /// Narrow, then wide: the classes of its networks of each kind.
    pub src: [Option<AddressAsk>; 2],
    pub dst: [Option<AddressAsk>; 2],
    pub sport: Option<Vec<u32>>,
    pub dport: Option<Vec<u32>>,
    pub proto: Option<Vec<u32>>,
    pub icmp: Option<Vec<u32>>,
    pub flags: Option<Vec<u32>>,
    pub iface: Option<u32>,
}

/// The address classes a rule admits in one field, as its key holds them,
/// also split by family: a situation of one family meets only that
/// family's.
pub struct AddressAsk {
    all: Vec<u32>,
    v4: Vec<u32>,
    v6: Vec<u32>,
}

impl AddressAsk {
    /// `classes`, whose families `reach` gives (`REACH_*` bits by class),
    /// shifted to their bits of the key (`NARROW_CLASS_BITS` for wide ones).
    pub fn new(classes: Vec<u32>, reach: &[u8], shift: u32) -> AddressAsk {
        let of = |family: u8| {
            classes
                .iter()
                .filter(|&&c| reach[c as usize] & family != 0)
                .map(|&c| c << shift)
                .collect()
        };
        let (v4, v6) = (of(REACH_V4), of(REACH_V6));
        let mut all = classes;
        all.iter_mut().for_each(|c| *c <<= shift);
        AddressAsk { all, v4, v6 }
    }

    /// Those a packet of `family` (`REACH_*`, or both) may have.
    fn of(&self, family: u8) -> &[u32] {
        match family {
            REACH_V4 => &self.v4,
            REACH_V6 => &self.v6,
            _ => &self.all,
        }
    }
}

/// The situations of each shape, and the per-field facts they need.
pub struct Enumerator<'a> {
    fields: &'a Fields,
    /// The situations of each shape, by protocol class.
    by_shape: Vec<Vec<Vec<Situation>>>,
    is_value: [Vec<bool>; 4],
    values: [Vec<u32>; 4],
}

const SPORT: usize = 0;
const DPORT: usize = 1;
const ICMP: usize = 2;
const FLAGS: usize = 3;

impl<'a> Enumerator<'a> {
    pub fn new(fields: &'a Fields) -> Enumerator<'a> {
        let slot_fields = [&fields.sport, &fields.dport, &fields.icmp, &fields.flags];
        let values = slot_fields.map(SlotField::value_classes);
        let is_value = std::array::from_fn(|i| {
            let mut is = vec![false; slot_fields[i].classes.rules.len()];
            for &class in &values[i] {
                is[class as usize] = true;
            }
            is
        });
        let all = situations(fields);
        let by_shape = (0..=GROUPS)
            .map(|shape| {
                let mut seen = HashSet::new();
                let mut by_proto = vec![Vec::new(); fields.proto.classes.rules.len()];
                for s in all.iter().map(|s| project(s, shape)) {
                    if seen.insert(s) {
                        by_proto[s.proto as usize].push(s);
                    }
                }
                by_proto
            })
            .collect();
        Enumerator {
            fields,
            by_shape,
            is_value,
            values,
        }
    }

    /// Calls `each` with every key of `shape` (in `table`) rule `rule`
    /// admits; stops early when `each` returns false.
    pub fn each_key(
        &self,
        rule: u32,
        shape: u32,
        table: u32,
        asks: &Asks,
        each: &mut dyn FnMut(ClassKey) -> bool,
    ) -> bool {
        for s in self.situations(shape, asks) {
            let c = self.choices(s, rule, shape, asks);
            for &src in c.src.iter() {
                for &dst in c.dst.iter() {
                    for &sport in c.sport.iter() {
                        for &dport in c.dport.iter() {
                            for &icmp in c.icmp.iter() {
                                for &flag in c.flags.iter() {
                                    for &iface in c.iface.iter() {
                                        let key = ClassKey {
                                            src,
                                            dst,
                                            sport: sport as u16,
                                            dport: dport as u16,
                                            proto: s.proto as u16,
                                            icmp: icmp as u16,
                                            flags: flag as u16,
                                            iface: iface as u8,
                                            table: table as u8,
                                        };
                                        if !each(key) {
                                            return false;
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        true
    }

    /// How many keys `each_key` would give: the same choices, multiplied
    /// out instead of walked.
    pub fn count_keys(&self, rule: u32, shape: u32, asks: &Asks) -> usize {
        self.situations(shape, asks)
            .map(|s| self.choices(s, rule, shape, asks).count())
            .sum()
    }

    /// The situations of `shape` a rule meets: a rule that asks the
    /// protocol only those of the protocol classes it admits.
    fn situations<'s>(
        &'s self,
        shape: u32,
        asks: &'s Asks,
    ) -> Box<dyn Iterator<Item = &'s Situation> + 's> {
        let by_proto = &self.by_shape[(shape & GROUPS) as usize];
        match &asks.proto {
            Some(classes) => Box::new(classes.iter().flat_map(move |&c| &by_proto[c as usize])),
            None => Box::new(by_proto.iter().flatten()),
        }
    }

    /// The classes of each field a rule admits in one situation.
    fn choices<'c>(&'c self, s: &Situation, rule: u32, shape: u32, asks: &'c Asks) -> Choices<'c> {
        let f = self.fields;
        // The shape's view of an address field: the rule's classes of it.
        let in_family = |asked: &'c [Option<AddressAsk>; 2], group: u32, wide: u32| {
            if shape & group == 0 {
                return &ONE[..];
            }
            match &asked[usize::from(shape & wide != 0)] {
                Some(asked) => asked.of(s.family),
                None => &[],
            }
        };
        Choices {
            src: Picked::Many(Cow::Borrowed(in_family(
                &asks.src,
                GROUP_SRC,
                GROUP_SRC_WIDE,
            ))),
            dst: Picked::Many(Cow::Borrowed(in_family(
                &asks.dst,
                GROUP_DST,
                GROUP_DST_WIDE,
            ))),
            sport: self.pick(SPORT, s.sport, &asks.sport, rule, &f.sport),
            dport: self.pick(DPORT, s.dport, &asks.dport, rule, &f.dport),
            icmp: self.pick(ICMP, s.icmp, &asks.icmp, rule, &f.icmp),
            flags: self.pick(FLAGS, s.flags, &asks.flags, rule, &f.flags),
            iface: match asks.iface {
                Some(class) => Picked::One([class]),
                None if shape & GROUP_PROTO != 0 => Picked::Many((0..f.iface_classes).collect()),
                None => Picked::One(ONE),
            },
        }
    }

    /// The classes of one transport field in a situation that the rule admits.
    fn pick(
        &self,
        field: usize,
        classes: Classes,
        asked: &Option<Vec<u32>>,
        rule: u32,
        slots: &SlotField,
    ) -> Picked<'_> {
        match (classes, asked) {
            (Classes::One(class), None) => Picked::One([class]),
            (Classes::One(class), Some(_)) if slots.classes.admits(class, rule) => {
                Picked::One([class])
            }
            (Classes::One(_), Some(_)) => Picked::Many(Cow::Borrowed(&[])),
            (Classes::Values, None) => Picked::Many(Cow::Borrowed(&self.values[field])),
            (Classes::Values, Some(asked)) => Picked::Many(
                asked
                    .iter()
                    .copied()
                    .filter(|&c| self.is_value[field][c as usize])
                    .collect(),
            ),
        }
    }
}

/// The only class of a field a shape does not ask about.
const ONE: [u32; 1] = [0];

/// The classes one field may be in keys: most often one, kept without an
/// allocation.
enum Picked<'a> {
    One([u32; 1]),
    Many(Cow<'a, [u32]>),
}

impl std::ops::Deref for Picked<'_> {
    type Target = [u32];

    fn deref(&self) -> &[u32] {
        match self {
            Picked::One(one) => one,
            Picked::Many(many) => many,
        }
    }
}

/// What each field may be in the keys of one rule in one situation.
struct Choices<'a> {
    src: Picked<'a>,
    dst: Picked<'a>,
    sport: Picked<'a>,
    dport: Picked<'a>,
    icmp: Picked<'a>,
    flags: Picked<'a>,
    iface: Picked<'a>,
}

impl Choices<'_> {
    /// The keys they make: every combination.
    fn count(&self) -> usize {
        [
            &self.src,
            &self.dst,
            &self.sport,
            &self.dport,
            &self.icmp,
            &self.flags,
            &self.iface,
        ]
        .iter()
        .fold(1usize, |keys, choices| keys.saturating_mul(choices.len()))
    }
}

/// Every kind of packet, per family and protocol class, with the classes of
/// the transport fields that kind can have (as the program looks them up).
fn situations(f: &Fields) -> Vec<Situation> {
    use Classes::{One, Values};
    let unknown = |field: &SlotField, slot: u32| One(field.class_of(slot));
    let sport_unknown = unknown(&f.sport, abi::PORT_UNKNOWN);
    let dport_unknown = unknown(&f.dport, abi::PORT_UNKNOWN);
    let icmp_unknown = unknown(&f.icmp, abi::ICMP_UNKNOWN);
    let flags_unknown = unknown(&f.flags, abi::FLAGS_UNKNOWN);
    let none = One(0);
    let mut all = Vec::new();
    for (family, icmp_proto) in [
        (REACH_V4, abi::IPPROTO_ICMP),
        (REACH_V6, abi::IPPROTO_ICMPV6),
    ] {
        let mut push = |proto, sport, dport, icmp, flags| {
            all.push(Situation {
                family,
                sport,
                dport,
                proto,
                icmp,
                flags,
            })
        };
        let proto_of = |value: u8| f.proto.class_of(value as u32);
        // Stopped inside the extension chain: everything after is unknown.
        let proto_unknown = f.proto.class_of(abi::PROTO_UNKNOWN);
        push(
            proto_unknown,
            sport_unknown,
            dport_unknown,
            icmp_unknown,
            flags_unknown,
        );
        let tcp = proto_of(abi::IPPROTO_TCP);
        push(tcp, Values, Values, none, Values);
        push(tcp, sport_unknown, dport_unknown, none, flags_unknown);
        let udp = proto_of(abi::IPPROTO_UDP);
        push(udp, Values, Values, none, none);
        push(udp, sport_unknown, dport_unknown, none, none);
        let icmp = proto_of(icmp_proto);
        push(icmp, none, none, Values, none);
        push(icmp, none, none, icmp_unknown, none);
        // A non-first fragment: no transport field at all.
        for fragment in [tcp, udp, icmp] {
            push(fragment, none, none, none, none);
        }
        for value in 0..=255u8 {
            if ![abi::IPPROTO_TCP, abi::IPPROTO_UDP, icmp_proto].contains(&value) {
                push(proto_of(value), none, none, none, none);
            }
        }
    }
    all
}

/// A situation as a table of `shape` sees it: groups outside the shape are 0.
fn project(s: &Situation, shape: u32) -> Situation {
    let keep = |group: u32, classes: Classes| {
        if shape & group != 0 {
            classes
        } else {
            Classes::One(0)
        }
    };
    Situation {
        family: if shape & (GROUP_SRC | GROUP_DST) != 0 {
            s.family
        } else {
            REACH_V4 | REACH_V6
        },
        sport: keep(GROUP_SPORT, s.sport),
        dport: keep(GROUP_DPORT, s.dport),
        proto: if shape & GROUP_PROTO != 0 { s.proto } else { 0 },
        icmp: keep(GROUP_PROTO, s.icmp),
        flags: keep(GROUP_PROTO, s.flags),
    }
}

/// `key` as `table`, of `shape` (`inside` the key's own), sees it.
pub fn project_key(key: &ClassKey, shape: u32, table: u32) -> ClassKey {
    key.masked(&ClassKey::mask_of(shape), table as u8)
}
