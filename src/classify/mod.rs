//! The classifier's compiler: ordered rules into class tables and entries,
//! and an emulation of what the XDP program does with them.
//!
//! Each field of a packet is reduced to a class (`classes`); each rule
//! becomes the combinations of classes it admits in the field groups of its
//! shape (`entries`); a packet's verdict is the lowest rule order over one
//! lookup per shape. See the section "The classifier" of `crate::abi`.

mod classes;
mod entries;
mod filter;
mod merge;
mod ranges;
mod shapes;
mod tables;
#[cfg(test)]
mod tests;

use std::mem::take;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rustc_hash::FxHashMap;

use self::classes::{flag_ranges, split_wide, AddressField, SlotField};
use self::entries::{AddressAsk, Asks, Enumerator, Fields};
pub use self::filter::Filter;
pub use self::ranges::AddressTable;
use self::shapes::ShapeTables;
use self::tables::Tables;
pub use self::tables::MAX_SET_ENTRIES;
use crate::abi::{
    self, ClassKey, Plan, GROUP_DST, GROUP_DST_WIDE, GROUP_SRC, GROUP_SRC_WIDE, MAX_WIDE_CLASSES,
    NARROW_CLASS_BITS,
};
use crate::policy::evaluate::{Field, Packet};
use crate::policy::{Action, Rule, RuleError};

/// A rule set compiled into what the program's maps hold.
#[derive(Debug)]
pub struct Compiled {
    pub plan: Plan,
    /// Each address field's narrow networks and their classes.
    pub src_v4: Vec<(Ipv4Net, u32)>,
    pub dst_v4: Vec<(Ipv4Net, u32)>,
    pub src_v6: Vec<(Ipv6Net, u32)>,
    pub dst_v6: Vec<(Ipv6Net, u32)>,
    /// The same as the program searches them, in `ADDRESS_TABLES` order.
    pub addresses: [AddressTable; abi::ADDRESS_TABLES as usize],
    /// Class arrays of their full `*_DOMAIN` length; `None`: no lookup.
    pub sport: Option<Vec<u32>>,
    pub dport: Option<Vec<u32>>,
    pub proto: Option<Vec<u32>>,
    pub icmp: Option<Vec<u32>>,
    pub flags: Option<Vec<u32>>,
    /// (ifindex, class).
    pub ifaces: Vec<(u32, u8)>,
    /// `class_rules`: key (table = shape, generation 0), rule order.
    pub entries: Vec<(ClassKey, u32)>,
    /// (rule, the earlier rules that decide all it could match: one, where
    /// one alone does).
    pub shadowed: Vec<(usize, Vec<usize>)>,
    /// Rules no packet can match.
    pub never_matches: Vec<usize>,
    /// Per class: the shapes to look up, the answer of address-alone shapes.
    pub filter: Filter,
    /// `entries` by key, for `decide`.
    index: FxHashMap<ClassKey, u32>,
}

impl Compiled {
    /// `rules`: rules, or what holds them (a file's, with their lines).
    pub fn new<R: AsRef<Rule>>(
        rules: &[R],
        iface_of: &dyn Fn(&str) -> Option<u32>,
    ) -> Result<Compiled, RuleError> {
        let rules: Vec<&Rule> = rules.iter().map(AsRef::as_ref).collect();
        // Every network narrow takes at most one table per group set, and
        // as many classes as networks: that always fits.
        match Compiled::compile(&rules, iface_of, true)? {
            Some(compiled) => Ok(compiled),
            None => Ok(Compiled::compile(&rules, iface_of, false)?.expect("narrow networks fit")),
        }
    }

    /// `wide`: networks that hold many others are wide for rules that pair
    /// them with other fields; `None` when those take more tables, wide
    /// classes or entries than a generation has.
    fn compile(
        rules: &[&Rule],
        iface_of: &dyn Fn(&str) -> Option<u32>,
        wide: bool,
    ) -> Result<Option<Compiled>, RuleError> {
        let own: Vec<u32> = rules.iter().map(|rule| shape_of(rule)).collect();
        let (fields, ifaces, iface_class) = field_classes(rules, iface_of, &own, wide)?;
        let wide_classes = [&fields.src_wide, &fields.dst_wide].map(|f| f.classes.rules.len());
        if wide_classes.iter().any(|&n| n > MAX_WIDE_CLASSES as usize) {
            return Ok(None);
        }
        if let Err(error) = networks_fit(&fields) {
            return if wide { Ok(None) } else { Err(error) };
        }
        let enumerator = Enumerator::new(&fields);
        // The classes each rule admits, per field, each taken once below.
        let by_rule = |field: &classes::Numbering| field.by_rule(rules.len());
        let mut src = by_rule(&fields.src.classes);
        let mut dst = by_rule(&fields.dst.classes);
        let mut src_wide = by_rule(&fields.src_wide.classes);
        let mut dst_wide = by_rule(&fields.dst_wide.classes);
        let mut sport = by_rule(&fields.sport.classes);
        let mut dport = by_rule(&fields.dport.classes);
        let mut proto = by_rule(&fields.proto.classes);
        let mut icmp = by_rule(&fields.icmp.classes);
        let mut flags = by_rule(&fields.flags.classes);
        // A rule's classes of one kind of its networks, if it has any.
        let address = |classes: Vec<u32>, field: &AddressField, shift: u32| {
            (!classes.is_empty()).then(|| AddressAsk::new(classes, &field.reach, shift))
        };

        let asks: Vec<Asks> = (0..rules.len())
            .map(|i| {
                let m = &rules[i].matches;
                let take_if =
                    |given: bool, classes: &mut [Vec<u32>]| given.then(|| take(&mut classes[i]));
                Asks {
                    src: [
                        address(take(&mut src[i]), &fields.src, 0),
                        address(take(&mut src_wide[i]), &fields.src_wide, NARROW_CLASS_BITS),
                    ],
                    dst: [
                        address(take(&mut dst[i]), &fields.dst, 0),
                        address(take(&mut dst_wide[i]), &fields.dst_wide, NARROW_CLASS_BITS),
                    ],
                    sport: take_if(m.sport.is_some(), &mut sport),
                    dport: take_if(m.dport.is_some(), &mut dport),
                    proto: take_if(m.protos.is_some(), &mut proto),
                    icmp: take_if(m.icmp_types.is_some() || m.icmp_codes.is_some(), &mut icmp),
                    flags: take_if(m.tcp_flags.is_some(), &mut flags),
                    iface: iface_class[i],
                }
            })
            .collect();
        // A part of a rule per view of its networks: (rule, shape).
        let parts: Vec<(usize, u32)> = (0..rules.len())
            .flat_map(|i| {
                view_shapes(own[i], &asks[i])
                    .into_iter()
                    .map(move |s| (i, s))
            })
            .collect();
        let count_keys = |part: usize, shape: u32| {
            let rule = parts[part].0;
            enumerator.count_keys(rule as u32, shape, &asks[rule])
        };
        let part_shapes: Vec<u32> = parts.iter().map(|&(_, shape)| shape).collect();
        let (shapes, keys) = merge::merged_shapes(&part_shapes, &count_keys);
        let mut distinct = shapes.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let Some(shape_tables) = ShapeTables::new(&distinct) else {
            return Ok(None);
        };

        // Room for every key the rules give (some are covered, none more):
        // the index never grows on the way.
        let addresses = address_tables(&fields);
        let wide_of = [0, 1].map(|a| wide_of_narrow(&addresses, a, &fields));
        let mut tables = Tables::with_room(keys.min(MAX_SET_ENTRIES), shape_tables, wide_of);
        let mut first = 0;
        while first < parts.len() {
            let rule = parts[first].0;
            let end = first + parts[first..].iter().take_while(|p| p.0 == rule).count();
            let added = tables.add(rule, &shapes[first..end], &mut |shape, table, each| {
                enumerator.each_key(rule as u32, shape, table, &asks[rule], each);
            });
            // Too many entries: every network narrow may take fewer.
            match added {
                Err(_) if wide => return Ok(None),
                added => added?,
            }
            first = end;
        }
        let Tables {
            index,
            entries,
            shapes,
            shadowed,
            never_matches,
            shape_tables,
            ..
        } = tables;

        let class_counts = [
            fields.src.classes.rules.len(),
            fields.dst.classes.rules.len(),
            fields.sport.classes.rules.len(),
            fields.dport.classes.rules.len(),
        ];
        let port_protos =
            [abi::IPPROTO_TCP, abi::IPPROTO_UDP].map(|p| fields.proto.class_of(p.into()));
        let filter = Filter::new(
            shapes,
            &shape_tables,
            class_counts,
            wide_classes,
            port_protos,
            &entries,
            &index,
        );
        let lookups = lookups(&fields);
        let mut plan = plan(shapes, &shape_tables, lookups, !rules.is_empty(), &entries);
        plan.hashed = filter.hashed;
        plan.absent = filter.absent();
        plan.addresses = std::array::from_fn(|t| addresses[t].index);
        Ok(Some(Compiled {
            plan,
            addresses,
            src_v4: fields.src.v4,
            dst_v4: fields.dst.v4,
            src_v6: fields.src.v6,
            dst_v6: fields.dst.v6,
            sport: fields.sport.slots,
            dport: fields.dport.slots,
            proto: fields.proto.slots,
            icmp: fields.icmp.slots,
            flags: fields.flags.slots,
            ifaces,
            entries,
            shadowed,
            never_matches,
            filter,
            index,
        }))
    }

    /// The rule that decides `packet`, as the XDP program finds it with
    /// these tables; `None`: the default decides.
    pub fn decide(&self, packet: &Packet) -> Option<usize> {
        let lookups = self.plan.lookups;
        let slot = |bit: u32, array: &Option<Vec<u32>>, slot: u32| match array {
            Some(array) if lookups & bit != 0 => array[slot as usize],
            _ => 0,
        };
        // The slot the program looks up; `None` (class 0) where the field
        // is absent, as from a non-first fragment.
        let port = |field: Field<u16>| match field {
            Field::Known(port) => Some(port as u32),
            Field::Unknown => Some(abi::PORT_UNKNOWN),
            Field::Absent => None,
        };
        let v6 = packet.src.is_ipv6();
        let table = usize::from(v6) * 2;
        let src = self.address_class(table, packet.src);
        let dst = self.address_class(table + 1, packet.dst);
        let icmp_proto = if v6 {
            abi::IPPROTO_ICMPV6
        } else {
            abi::IPPROTO_ICMP
        };
        let (sport_slot, dport_slot, icmp_slot, flags_slot, proto_slot);
        (sport_slot, dport_slot, icmp_slot, flags_slot) = match packet.proto {
            None => (
                Some(abi::PORT_UNKNOWN),
                Some(abi::PORT_UNKNOWN),
                Some(abi::ICMP_UNKNOWN),
                Some(abi::FLAGS_UNKNOWN),
            ),
            Some(p @ (abi::IPPROTO_TCP | abi::IPPROTO_UDP)) => {
                let flags = match packet.flags {
                    Field::Known(flags) => Some(flags as u32),
                    Field::Unknown => Some(abi::FLAGS_UNKNOWN),
                    Field::Absent => None,
                };
                (
                    port(packet.sport),
                    port(packet.dport),
                    None,
                    flags.filter(|_| p == abi::IPPROTO_TCP),
                )
            }
            Some(p) if p == icmp_proto => {
                let icmp = match packet.icmp {
                    Field::Known((t, c)) => Some((t as u32) << 8 | c as u32),
                    Field::Unknown => Some(abi::ICMP_UNKNOWN),
                    Field::Absent => None,
                };
                (None, None, icmp, None)
            }
            Some(_) => (None, None, None, None),
        };
        proto_slot = packet.proto.map_or(abi::PROTO_UNKNOWN, u32::from);
        let class = |bit, array, value: Option<u32>| value.map_or(0, |v| slot(bit, array, v));
        let iface = if lookups & abi::LOOKUP_IFACE != 0 {
            self.ifaces
                .iter()
                .find(|&&(ifindex, _)| ifindex == packet.ifindex)
                .map_or(0, |&(_, class)| class)
        } else {
            0
        };
        let key = ClassKey {
            src,
            dst,
            sport: class(abi::LOOKUP_SPORT, &self.sport, sport_slot) as u16,
            dport: class(abi::LOOKUP_DPORT, &self.dport, dport_slot) as u16,
            proto: slot(abi::LOOKUP_PROTO, &self.proto, proto_slot) as u16,
            icmp: class(abi::LOOKUP_ICMP, &self.icmp, icmp_slot) as u16,
            flags: class(abi::LOOKUP_FLAGS, &self.flags, flags_slot) as u16,
            iface,
            table: 0,
        };
        // What the program reads: the class values' shapes and answers.
        let mut hashed = self.plan.hashed;
        for a in [abi::FILTER_SRC, abi::FILTER_DST] {
            hashed &= self.filter.address_shapes(a, filter::field_of(&key, a));
        }
        for p in [abi::FILTER_SPORT, abi::FILTER_DPORT] {
            hashed &= self.filter.shapes[p][filter::field_of(&key, p) as usize];
        }
        // A port the walk read has the narrower shapes of `read_ports`.
        for (p, slot) in [sport_slot, dport_slot].into_iter().enumerate() {
            if slot.is_some_and(|slot| slot < abi::PORT_UNKNOWN) {
                let class = filter::field_of(&key, abi::FILTER_SPORT + p);
                hashed &= self.filter.read_ports[p][class as usize];
            }
        }
        let alone = [key.src, key.dst]
            .into_iter()
            .enumerate()
            .map(|(a, class)| self.filter.alone_of(a, class))
            .filter(|&order| order != u32::MAX);
        // The plan's shapes, each key made with its mask, as the program does.
        let plan = &self.plan;
        (0..plan.shape_count as usize)
            .map(|i| (plan.shape_list[i], &plan.key_masks[i]))
            .filter(|&(s, _)| hashed & (1 << s) != 0)
            .filter_map(|(s, mask)| self.index.get(&key.masked(mask, s)).copied())
            .chain(alone)
            .min()
            .map(|order| order as usize)
    }
}

impl Compiled {
    /// The class of `addr` in address table `table`, as the program finds
    /// it; 0 where no rule asks about the field in this family.
    fn address_class(&self, table: usize, addr: IpAddr) -> u32 {
        if self.plan.lookups & 1 << table == 0 {
            return 0;
        }
        let addr = match addr {
            IpAddr::V4(addr) => u32::from(addr).into(),
            IpAddr::V6(addr) => u128::from(addr),
        };
        self.addresses[table].class_of(addr)
    }
}

/// The plan of a set: its tables (bits of `shapes`), listed by the order of
/// their first rule.
fn plan(
    shapes: u32,
    shape_tables: &ShapeTables,
    lookups: u32,
    any_rule: bool,
    entries: &[(ClassKey, u32)],
) -> Plan {
    let mut first = [u32::MAX; abi::SHAPES as usize];
    for &(key, order) in entries {
        let slot = &mut first[key.table as usize];
        *slot = (*slot).min(order);
    }
    let mut listed: Vec<u32> = (0..abi::SHAPES)
        .filter(|&s| shapes & (1 << s) != 0)
        .collect();
    listed.sort_by_key(|&s| first[s as usize]);
    let mut plan = Plan {
        shapes,
        lookups,
        any_rule: any_rule.into(),
        shape_count: listed.len() as u32,
        ..Plan::NONE
    };
    for (i, &shape) in listed.iter().enumerate() {
        plan.shape_list[i] = shape as u8;
        plan.first_order[i] = first[shape as usize];
        let shape = shape_tables
            .shape_of(shape)
            .expect("a table with entries has a shape");
        plan.key_masks[i] = ClassKey::mask_of(shape);
    }
    plan
}

/// Each address field's networks as sorted ranges, in `ADDRESS_TABLES`
/// order.
fn address_tables(f: &Fields) -> [AddressTable; abi::ADDRESS_TABLES as usize] {
    fn table<N: Copy + Into<IpNet>>(
        narrow: &[(N, u32)],
        wide: &[(N, u32)],
        v6: bool,
    ) -> AddressTable {
        let ends = |net: IpNet| match net {
            IpNet::V4(net) => (
                u32::from(net.network()).into(),
                u32::from(net.broadcast()).into(),
            ),
            IpNet::V6(net) => (net.network().into(), net.broadcast().into()),
        };
        let networks = |list: &[(N, u32)], wide: bool| {
            list.iter()
                .map(|&(net, class)| {
                    let (first, last) = ends(net.into());
                    (first, last, class, wide)
                })
                .collect::<Vec<_>>()
        };
        let mut all = networks(narrow, false);
        all.extend(networks(wide, true));
        AddressTable::new(all, v6)
    }
    [
        table(&f.src.v4, &f.src_wide.v4, false),
        table(&f.dst.v4, &f.dst_wide.v4, false),
        table(&f.src.v6, &f.src_wide.v6, true),
        table(&f.dst.v6, &f.dst_wide.v6, true),
    ]
}

/// The shapes of a rule's parts: one for each view (narrow, wide) of its
/// networks it has, in each address field it asks about.
fn view_shapes(shape: u32, asks: &Asks) -> Vec<u32> {
    let views = |asked: &[Option<AddressAsk>; 2], group: u32, wide: u32| -> Vec<u32> {
        if shape & group == 0 {
            return vec![0];
        }
        [0, wide]
            .into_iter()
            .zip(asked)
            .filter(|(_, ask)| ask.is_some())
            .map(|(bit, _)| bit)
            .collect()
    };
    let dst = views(&asks.dst, GROUP_DST, GROUP_DST_WIDE);
    views(&asks.src, GROUP_SRC, GROUP_SRC_WIDE)
        .into_iter()
        .flat_map(|src| dst.iter().map(move |dst| shape | src | dst))
        .collect()
}

/// Per narrow class of address field `a` (0 source, 1 destination): the
/// wide classes its ranges have, shifted as keys hold them.
fn wide_of_narrow(addresses: &[AddressTable], a: usize, fields: &Fields) -> Vec<Vec<u32>> {
    let classes = [&fields.src, &fields.dst][a].classes.rules.len();
    let mut wide_of = vec![Vec::new(); classes];
    // The field's IPv4 table, then its IPv6 one (`ADDRESS_TABLES` order).
    for table in [&addresses[a], &addresses[a + 2]] {
        for &class in &table.classes {
            wide_of[(class & abi::NARROW_CLASS_MASK) as usize]
                .push(class & !abi::NARROW_CLASS_MASK);
        }
    }
    for wide in &mut wide_of {
        wide.sort_unstable();
        wide.dedup();
    }
    wide_of
}

/// A rule's shape: the `GROUP_*` bits of the fields it gives.
fn shape_of(rule: &Rule) -> u32 {
    let m = &rule.matches;
    let mut shape = 0;
    for (given, group) in [
        (m.src.is_some(), abi::GROUP_SRC),
        (m.dst.is_some(), abi::GROUP_DST),
        (m.sport.is_some(), abi::GROUP_SPORT),
        (m.dport.is_some(), abi::GROUP_DPORT),
        (
            m.protos.is_some()
                || m.icmp_types.is_some()
                || m.icmp_codes.is_some()
                || m.tcp_flags.is_some()
                || m.iface.is_some(),
            abi::GROUP_PROTO,
        ),
    ] {
        if given {
            shape |= group;
        }
    }
    shape
}

/// The `LOOKUP_*` bits: every field some rule asks about, addresses per
/// family.
fn lookups(f: &Fields) -> u32 {
    let mut bits = 0;
    for (empty, bit) in [
        (
            f.src.v4.is_empty() && f.src_wide.v4.is_empty(),
            abi::LOOKUP_SRC_V4,
        ),
        (
            f.dst.v4.is_empty() && f.dst_wide.v4.is_empty(),
            abi::LOOKUP_DST_V4,
        ),
        (
            f.src.v6.is_empty() && f.src_wide.v6.is_empty(),
            abi::LOOKUP_SRC_V6,
        ),
        (
            f.dst.v6.is_empty() && f.dst_wide.v6.is_empty(),
            abi::LOOKUP_DST_V6,
        ),
    ] {
        if !empty {
            bits |= bit;
        }
    }
    for (needed, bit) in [
        (f.sport.slots.is_some(), abi::LOOKUP_SPORT),
        (f.dport.slots.is_some(), abi::LOOKUP_DPORT),
        (f.proto.slots.is_some(), abi::LOOKUP_PROTO),
        (f.icmp.slots.is_some(), abi::LOOKUP_ICMP),
        (f.flags.slots.is_some(), abi::LOOKUP_FLAGS),
        (f.iface_classes > 1, abi::LOOKUP_IFACE),
    ] {
        if needed {
            bits |= bit;
        }
    }
    bits
}

type FieldClasses = (Fields, Vec<(u32, u8)>, Vec<Option<u32>>);

/// The classes of every field, the interface classes, and each rule's
/// interface class.
/// `shapes`: each rule's own; `wide`: whether networks may be wide.
fn field_classes(
    rules: &[&Rule],
    iface_of: &dyn Fn(&str) -> Option<u32>,
    shapes: &[u32],
    wide: bool,
) -> Result<FieldClasses, RuleError> {
    let unknown = |rule: &Rule, r: u32, domain_unknown: u32, out: &mut Vec<(u32, u32, u32)>| {
        // Fail closed: a deny admits what the walk could not read.
        if rule.action == Action::Deny {
            out.push((r, domain_unknown, domain_unknown));
        }
    };
    let (mut src, mut dst) = (Vec::new(), Vec::new());
    let (mut sport, mut dport, mut proto, mut icmp, mut flags) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut ifaces: Vec<(u32, u8)> = Vec::new();
    let mut iface_class = Vec::with_capacity(rules.len());
    for (i, rule) in rules.iter().enumerate() {
        let r = i as u32;
        let m = &rule.matches;
        let nets = |list: &Option<Vec<IpNet>>, out: &mut Vec<(IpNet, u32)>| {
            out.extend(list.iter().flatten().map(|&net| (net.trunc(), r)));
        };
        nets(&m.src, &mut src);
        nets(&m.dst, &mut dst);
        for (list, out) in [(&m.sport, &mut sport), (&m.dport, &mut dport)] {
            if let Some(ports) = list {
                out.extend(
                    ports
                        .iter()
                        .map(|p| (r, *p.start() as u32, *p.end() as u32)),
                );
                unknown(rule, r, abi::PORT_UNKNOWN, out);
            }
        }
        if let Some(protos) = &m.protos {
            proto.extend(protos.iter().map(|&p| (r, p as u32, p as u32)));
            unknown(rule, r, abi::PROTO_UNKNOWN, &mut proto);
        }
        if m.icmp_types.is_some() || m.icmp_codes.is_some() {
            let every = [0..=255u8];
            let types = m.icmp_types.as_deref().unwrap_or(&every);
            let codes = m.icmp_codes.as_deref().unwrap_or(&every);
            for t in types.iter().flat_map(|t| t.clone()) {
                let t = (t as u32) << 8;
                icmp.extend(
                    codes
                        .iter()
                        .map(|c| (r, t | *c.start() as u32, t | *c.end() as u32)),
                );
            }
            unknown(rule, r, abi::ICMP_UNKNOWN, &mut icmp);
        }
        if let Some(f) = m.tcp_flags {
            flags.extend(
                flag_ranges(f.value, f.mask)
                    .into_iter()
                    .map(|(a, b)| (r, a, b)),
            );
            unknown(rule, r, abi::FLAGS_UNKNOWN, &mut flags);
        }
        iface_class.push(match &m.iface {
            None => None,
            Some(name) => {
                let ifindex = iface_of(name)
                    .ok_or_else(|| RuleError(format!("on {name}: no interface {name} here")))?;
                let class = match ifaces.iter().find(|&&(index, _)| index == ifindex) {
                    Some(&(_, class)) => class,
                    None if ifaces.len() < abi::MAX_IFACE_CLASSES as usize => {
                        ifaces.push((ifindex, ifaces.len() as u8 + 1));
                        ifaces.len() as u8
                    }
                    None => {
                        return Err(RuleError(format!(
                            "rule {}: rules may name at most {} interfaces",
                            i + 1,
                            abi::MAX_IFACE_CLASSES
                        )))
                    }
                };
                Some(class as u32)
            }
        });
    }
    // A rule of one address field alone needs no key: it stays narrow,
    // where the address's class value answers it.
    let split = |networks, alone: u32| {
        let (narrow, wide) = split_wide(networks, |r| wide && shapes[r as usize] != alone);
        (AddressField::new(narrow), AddressField::new(wide))
    };
    let (src, src_wide) = split(src, GROUP_SRC);
    let (dst, dst_wide) = split(dst, GROUP_DST);
    let fields = Fields {
        src,
        dst,
        src_wide,
        dst_wide,
        sport: small("sport", SlotField::new(abi::PORT_DOMAIN, &sport))?,
        dport: small("dport", SlotField::new(abi::PORT_DOMAIN, &dport))?,
        proto: SlotField::new(abi::PROTO_DOMAIN, &proto),
        icmp: small("type and code", SlotField::new(abi::ICMP_DOMAIN, &icmp))?,
        flags: SlotField::new(abi::FLAGS_DOMAIN, &flags),
        iface_classes: ifaces.len() as u32 + 1,
    };
    Ok((fields, ifaces, iface_class))
}

/// A generation's ranges arrays have room for `MAX_NETWORKS` networks of
/// each family.
fn networks_fit(fields: &Fields) -> Result<(), RuleError> {
    let room = abi::MAX_NETWORKS as usize;
    let [src, dst, src_wide, dst_wide] =
        [&fields.src, &fields.dst, &fields.src_wide, &fields.dst_wide];
    for (family, count) in [
        (
            "IPv4",
            src.v4.len() + dst.v4.len() + src_wide.v4.len() + dst_wide.v4.len(),
        ),
        (
            "IPv6",
            src.v6.len() + dst.v6.len() + src_wide.v6.len() + dst_wide.v6.len(),
        ),
    ] {
        if count > room {
            return Err(RuleError(format!(
                "the rules name {count} distinct {family} networks, more than the {room} a set \
                 may hold: merge hosts into wider prefixes"
            )));
        }
    }
    Ok(())
}

/// A 16-bit key field's classes must fit it.
fn small(name: &str, field: SlotField) -> Result<SlotField, RuleError> {
    if field.classes.rules.len() > abi::MAX_SMALL_CLASSES as usize {
        return Err(RuleError(format!(
            "the rules split {name} into more than {} classes: use fewer distinct ranges",
            abi::MAX_SMALL_CLASSES
        )));
    }
    Ok(field)
}
