//! Fewer shapes, fewer lookups: a shape whose rules would take few more
//! entries in a wider shape the set already has is looked up there instead.
//!
//! A rule in a wider shape admits every class of the groups it does not ask
//! about, so it matches the same packets; each shape merged away saves every
//! packet one hash lookup, paid for in entries. Only the port and protocol
//! groups are added: they have few classes, where addresses have thousands.

use std::cell::RefCell;

use rustc_hash::FxHashMap;

use super::shapes::SHAPE_VALUES;
use crate::abi::{GROUP_DPORT, GROUP_PROTO, GROUP_SPORT};

/// Groups a merge may add to a shape.
const CHEAP_GROUPS: u32 = GROUP_SPORT | GROUP_DPORT | GROUP_PROTO;
/// A merge may multiply a shape's entries by this much…
const MAX_GROWTH: usize = 8;
/// …and the whole set may grow by this many entries for merges.
const MAX_ADDED: usize = 1 << 16;

/// The shape each rule (or view of a rule's networks) is looked up in: its
/// own, or a wider one the set has; and how many keys the rules take in
/// them. `keys(rule, shape)` counts a rule's keys in a shape. Wide bits are
/// never added nor taken away.
pub fn merged_shapes(
    shapes: &[u32],
    count_keys: &dyn Fn(usize, u32) -> usize,
) -> (Vec<u32>, usize) {
    // Each round asks again for the counts of the shapes that stayed.
    let counted = RefCell::new(FxHashMap::default());
    let keys = |rule: usize, shape: u32| {
        *counted
            .borrow_mut()
            .entry((rule, shape))
            .or_insert_with(|| count_keys(rule, shape))
    };
    let mut assigned = shapes.to_vec();
    let mut budget = MAX_ADDED;
    loop {
        let present = present(&assigned);
        // The narrowest shapes first: they are the likeliest to fold away.
        let mut candidates: Vec<u32> = (0..SHAPE_VALUES)
            .filter(|&s| present & (1 << s) != 0)
            .collect();
        candidates.sort_by_key(|&s| s.count_ones());
        let merge = candidates.iter().find_map(|&from| {
            let rules: Vec<usize> = (0..assigned.len())
                .filter(|&r| assigned[r] == from)
                .collect();
            let now: usize = rules.iter().map(|&r| keys(r, from)).sum();
            let limit = (now * MAX_GROWTH).min(now + budget);
            wider_shapes(from, present)
                .into_iter()
                .filter_map(|to| {
                    let mut then = 0;
                    for &r in &rules {
                        then += keys(r, to);
                        if then > limit {
                            return None;
                        }
                    }
                    Some((from, to, then - now.min(then)))
                })
                .min_by_key(|&(_, _, added)| added)
        });
        let Some((from, to, added)) = merge else {
            // Every rule's shape was a candidate just now: its count is kept.
            let total = (0..assigned.len())
                .map(|r| keys(r, assigned[r]))
                .fold(0, usize::saturating_add);
            return (assigned, total);
        };
        budget -= added.min(budget);
        for shape in assigned.iter_mut().filter(|s| **s == from) {
            *shape = to;
        }
    }
}

/// The shapes present among `assigned`, as bits.
fn present(assigned: &[u32]) -> u128 {
    assigned.iter().fold(0, |bits, &s| bits | 1 << s)
}

/// Shapes in `present` that are `from` plus cheap groups only.
fn wider_shapes(from: u32, present: u128) -> Vec<u32> {
    (0..SHAPE_VALUES)
        .filter(|&to| {
            to != from
                && present & (1 << to) != 0
                && to & from == from
                && (to & !from) & !CHEAP_GROUPS == 0
        })
        .collect()
}
