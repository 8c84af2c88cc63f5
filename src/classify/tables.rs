//! The `class_rules` entries: each key keeps the first rule that admits it,
//! and what adding a rule finds out about it (shadowed, never matching).

use rustc_hash::FxHashMap;

use super::entries::project_key;
use crate::abi::{self, ClassKey};
use crate::policy::RuleError;

/// Entries one rule set may have: the other generation needs room too.
pub const MAX_SET_ENTRIES: usize = abi::MAX_CLASS_ENTRIES as usize / 2;
/// Keys the compiler looks at, kept or covered, before it gives up: a bound
/// on its time.
const MAX_EXAMINED: usize = 4 * MAX_SET_ENTRIES;

#[derive(Default)]
pub struct Tables {
    /// Key (table = shape) → rule order.
    pub index: FxHashMap<ClassKey, u32>,
    /// The same, in the order rules added them.
    pub entries: Vec<(ClassKey, u32)>,
    /// Bit `s`: table `s` has an entry.
    pub shapes: u32,
    pub shadowed: Vec<(usize, usize)>,
    pub never_matches: Vec<usize>,
    examined: usize,
}

impl Tables {
    /// Tables with room for `entries` keys.
    pub fn with_room(entries: usize) -> Tables {
        Tables {
            index: FxHashMap::with_capacity_and_hasher(entries, Default::default()),
            entries: Vec::with_capacity(entries),
            ..Tables::default()
        }
    }

    /// Adds rule `rule` (rules come in order) of `shape`, whose keys `keys`
    /// hands to its argument until that returns false. A key a lower rule
    /// decides already, in this table or one of a shape inside this one, is
    /// left out: this rule could never win it.
    pub fn add(
        &mut self,
        rule: usize,
        shape: u32,
        keys: impl FnOnce(&mut dyn FnMut(ClassKey) -> bool),
    ) -> Result<(), RuleError> {
        let order = rule as u32;
        let tables: Vec<u32> = (0..abi::SHAPES)
            .filter(|&s| s == shape || (self.shapes & (1 << s) != 0 && s & !shape == 0))
            .collect();
        let mut yielded = false;
        let mut kept = false;
        let mut full = false;
        // Lower rules that decide some of this one's keys, and how many.
        let mut covers: FxHashMap<u32, usize> = FxHashMap::default();
        keys(&mut |key| {
            yielded = true;
            self.examined += 1;
            let lowest = tables
                .iter()
                .filter_map(|&s| self.index.get(&project_key(&key, s)).copied())
                .min();
            match lowest {
                // The same key twice from this rule.
                Some(lowest) if lowest == order => {}
                Some(lowest) => *covers.entry(lowest).or_default() += 1,
                None => {
                    kept = true;
                    self.index.insert(key, order);
                    self.entries.push((key, order));
                }
            }
            full = self.entries.len() > MAX_SET_ENTRIES || self.examined > MAX_EXAMINED;
            !full
        });
        if full {
            return Err(RuleError(format!(
                "rule {}: the classifier would need more than {MAX_SET_ENTRIES} entries; its \
                 lists cut across too many others: use fewer distinct ranges and networks",
                rule + 1
            )));
        }
        if kept {
            self.shapes |= 1 << shape;
        } else if !yielded {
            self.never_matches.push(rule);
        } else {
            // Name the rule that covers the most of it.
            let (&by, _) = covers
                .iter()
                .max_by_key(|&(&order, &count)| (count, std::cmp::Reverse(order)))
                .expect("a covered rule has a cover");
            self.shadowed.push((rule, by as usize));
        }
        Ok(())
    }
}
