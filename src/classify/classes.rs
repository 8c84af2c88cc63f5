//! Per-field classes: the values that exactly the same rules admit share one.
//!
//! A class is named by its set of rules (indices, ascending); class 0 is the
//! empty set. Slot fields (ports, protocol, ICMP, flags) are a sweep over the
//! sorted range boundaries; address fields a walk over the sorted networks
//! with their ancestors on a stack.

use std::collections::BTreeSet;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rustc_hash::FxHashMap;

/// Classes numbered by their rule sets, class 0 the empty one.
#[derive(Debug)]
pub struct Numbering {
    ids: FxHashMap<Vec<u32>, u32>,
    /// The rules of each class.
    pub rules: Vec<Vec<u32>>,
}

impl Numbering {
    pub fn new() -> Numbering {
        Numbering {
            ids: FxHashMap::from_iter([(Vec::new(), 0)]),
            rules: vec![Vec::new()],
        }
    }

    /// The class of `rules` (ascending), numbered anew if it has none yet.
    pub fn id(&mut self, rules: &[u32]) -> u32 {
        if let Some(&id) = self.ids.get(rules) {
            return id;
        }
        let id = self.rules.len() as u32;
        self.rules.push(rules.to_vec());
        self.ids.insert(rules.to_vec(), id);
        id
    }

    pub fn admits(&self, class: u32, rule: u32) -> bool {
        self.rules[class as usize].binary_search(&rule).is_ok()
    }

    /// The classes that admit each of `rule_count` rules, ascending.
    pub fn by_rule(&self, rule_count: usize) -> Vec<Vec<u32>> {
        let mut by_rule = vec![Vec::new(); rule_count];
        for (class, rules) in self.rules.iter().enumerate() {
            for &rule in rules {
                by_rule[rule as usize].push(class as u32);
            }
        }
        by_rule
    }
}

/// A field looked up in an array of `domain` slots, the last for "unknown".
#[derive(Debug)]
pub struct SlotField {
    /// The class of each slot; `None` when no rule asks about the field.
    pub slots: Option<Vec<u32>>,
    pub classes: Numbering,
}

impl SlotField {
    /// `admitted`: (rule, first slot, last slot), slots in `0..domain`.
    pub fn new(domain: u32, admitted: &[(u32, u32, u32)]) -> SlotField {
        let mut classes = Numbering::new();
        if admitted.is_empty() {
            return SlotField {
                slots: None,
                classes,
            };
        }
        // (boundary, +1 starts / -1 ends, rule)
        let mut events: Vec<(u32, i32, u32)> = Vec::with_capacity(admitted.len() * 2);
        for &(rule, first, last) in admitted {
            events.push((first, 1, rule));
            events.push((last + 1, -1, rule));
        }
        events.sort_unstable();
        let mut slots = vec![0; domain as usize];
        // Within one rule ranges may overlap: count them.
        let rule_count = admitted.iter().map(|&(rule, _, _)| rule).max().unwrap_or(0) + 1;
        let mut depth = vec![0u32; rule_count as usize];
        let mut active = BTreeSet::new();
        // `active` as a list, for `classes.id`: one buffer for all slots.
        let mut listed = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i < events.len() {
            let at = events[i].0;
            if at > start && !active.is_empty() {
                listed.clear();
                listed.extend(active.iter().copied());
                let class = classes.id(&listed);
                slots[start as usize..at as usize].fill(class);
            }
            while i < events.len() && events[i].0 == at {
                let (_, step, rule) = events[i];
                let count = &mut depth[rule as usize];
                *count = count.wrapping_add_signed(step);
                if *count == 0 {
                    active.remove(&rule);
                } else {
                    active.insert(rule);
                }
                i += 1;
            }
            start = at;
        }
        SlotField {
            slots: Some(slots),
            classes,
        }
    }

    /// The class of `slot` (0 when there is no array).
    pub fn class_of(&self, slot: u32) -> u32 {
        self.slots.as_ref().map_or(0, |slots| slots[slot as usize])
    }

    /// The classes of the known values (every slot but the last), ascending.
    pub fn value_classes(&self) -> Vec<u32> {
        let Some(slots) = &self.slots else {
            return vec![0];
        };
        let mut seen = vec![false; self.classes.rules.len()];
        for &class in &slots[..slots.len() - 1] {
            seen[class as usize] = true;
        }
        (0..seen.len() as u32)
            .filter(|&c| seen[c as usize])
            .collect()
    }
}

/// Slots of a flags byte that `value/mask` admits, as ranges.
pub fn flag_ranges(value: u8, mask: u8) -> Vec<(u32, u32)> {
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for byte in (0..=255u8).filter(|b| b & mask == value) {
        match ranges.last_mut() {
            Some((_, last)) if *last + 1 == byte as u32 => *last = byte as u32,
            _ => ranges.push((byte as u32, byte as u32)),
        }
    }
    ranges
}

/// Bits of [`AddressField::reach`]: the families a class can occur in.
pub const REACH_V4: u8 = 1;
pub const REACH_V6: u8 = 2;

/// A src or dst field: its networks and their classes in both families, one numbering.
#[derive(Debug)]
pub struct AddressField {
    pub v4: Vec<(Ipv4Net, u32)>,
    pub v6: Vec<(Ipv6Net, u32)>,
    pub classes: Numbering,
    /// `REACH_*` bits of each class.
    pub reach: Vec<u8>,
}

impl AddressField {
    /// `networks`: (network, rule) for every network of every rule's list.
    pub fn new(mut networks: Vec<(IpNet, u32)>) -> AddressField {
        let mut classes = Numbering::new();
        let mut written = Vec::new();
        let mut reach_zero = REACH_V4 | REACH_V6;
        // Parents sort before the networks they hold.
        networks.sort_unstable_by_key(|&(net, rule)| (sort_key(&net), rule));
        let mut stack: Vec<(IpNet, u32, Vec<u32>)> = Vec::new();
        let mut i = 0;
        while i < networks.len() {
            let net = networks[i].0;
            let mut rules = Vec::new();
            while i < networks.len() && networks[i].0 == net {
                rules.push(networks[i].1);
                i += 1;
            }
            while stack
                .last()
                .is_some_and(|(parent, _, _)| !parent.contains(&net))
            {
                stack.pop();
            }
            let parent_class = stack.last().map(|(_, class, _)| *class);
            if let Some((_, _, parent_rules)) = stack.last() {
                rules.extend_from_slice(parent_rules);
            }
            rules.sort_unstable();
            rules.dedup();
            let class = classes.id(&rules);
            // Addresses in a network with its parent's class get that class
            // from the parent already.
            if parent_class != Some(class) {
                written.push((net, class));
            }
            if net.prefix_len() == 0 {
                reach_zero &= !family_bit(&net);
            }
            stack.push((net, class, rules));
        }
        let mut reach = vec![0; classes.rules.len()];
        reach[0] = reach_zero;
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for (net, class) in written {
            reach[class as usize] |= family_bit(&net);
            match net {
                IpNet::V4(net) => v4.push((net, class)),
                IpNet::V6(net) => v6.push((net, class)),
            }
        }
        AddressField {
            v4,
            v6,
            classes,
            reach,
        }
    }
}

/// A network holding this many others of its field is wide, for the rules
/// that pair it with other fields: in a narrow table such a rule needs a key
/// for each class inside it.
pub const WIDE_NETWORK_HOLDS: usize = 8;

/// (network, rule) pairs of one address field.
pub type Networks = Vec<(IpNet, u32)>;

/// `networks` split into narrow and wide: a pair is wide when its network
/// holds `WIDE_NETWORK_HOLDS` networks of other rules than its own (a
/// rule's own hosts inside its network share its class already) and
/// `may_be_wide(rule)`.
pub fn split_wide(
    mut networks: Networks,
    may_be_wide: impl Fn(u32) -> bool,
) -> (Networks, Networks) {
    // Sorted as `AddressField::new` sorts them, which then finds them so.
    networks.sort_unstable_by_key(|&(net, rule)| (sort_key(&net), rule));
    // Each distinct network with its rule, or `None` when several have it;
    // and the distinct network of each pair.
    let mut distinct: Vec<(IpNet, Option<u32>)> = Vec::new();
    let mut of_pair = Vec::with_capacity(networks.len());
    for &(net, rule) in &networks {
        match distinct.last_mut() {
            Some((last, sole)) if *last == net => {
                if *sole != Some(rule) {
                    *sole = None;
                }
            }
            _ => distinct.push((net, Some(rule))),
        }
        of_pair.push(distinct.len() - 1);
    }
    // Sorted so, a network's descendants follow it, up to the first
    // network outside it.
    let mut ends = vec![distinct.len(); distinct.len()];
    let mut stack: Vec<usize> = Vec::new();
    for (at, (net, _)) in distinct.iter().enumerate() {
        while let Some(&open) = stack
            .last()
            .filter(|&&open| !distinct[open].0.contains(net))
        {
            ends[open] = at;
            stack.pop();
        }
        stack.push(at);
    }
    let wide = |at: usize, rule: u32| {
        let inside = &distinct[at + 1..ends[at]];
        inside.len() >= WIDE_NETWORK_HOLDS
            && inside
                .iter()
                .filter(|&&(_, sole)| sole != Some(rule))
                .nth(WIDE_NETWORK_HOLDS - 1)
                .is_some()
    };
    let (mut narrow_pairs, mut wide_pairs) = (Vec::new(), Vec::new());
    for ((net, rule), at) in networks.into_iter().zip(of_pair) {
        if may_be_wide(rule) && wide(at, rule) {
            wide_pairs.push((net, rule));
        } else {
            narrow_pairs.push((net, rule));
        }
    }
    (narrow_pairs, wide_pairs)
}

/// Networks by family, start, then length (parents first): a key quick to
/// compare. The networks are truncated to their prefix already.
fn sort_key(net: &IpNet) -> (bool, u128, u8) {
    match net {
        IpNet::V4(net) => (false, u32::from(net.addr()).into(), net.prefix_len()),
        IpNet::V6(net) => (true, net.addr().into(), net.prefix_len()),
    }
}

fn family_bit(net: &IpNet) -> u8 {
    match net {
        IpNet::V4(_) => REACH_V4,
        IpNet::V6(_) => REACH_V6,
    }
}
