//! The `class_rules` entries: each key keeps the first rule that admits it,
//! and what adding a rule finds out about it (shadowed, never matching).

use rustc_hash::FxHashMap;

use super::entries::project_key;
use super::shapes::{inside, ShapeTables};
use crate::abi::{self, ClassKey, GROUP_DST, GROUP_SRC};
use crate::policy::RuleError;

/// Entries one rule set may have: the other generation needs room too.
pub const MAX_SET_ENTRIES: usize = abi::MAX_CLASS_ENTRIES as usize / 2;
/// Keys the compiler looks at, kept or covered, before it gives up: a bound
/// on its time.
const MAX_EXAMINED: usize = 4 * MAX_SET_ENTRIES;

/// Takes one key; false: stop.
pub type KeySink<'a> = dyn FnMut(ClassKey) -> bool + 'a;

pub struct Tables {
    /// Key (table = shape) → rule order.
    pub index: FxHashMap<ClassKey, u32>,
    /// The same, in the order rules added them.
    pub entries: Vec<(ClassKey, u32)>,
    /// Bit `t`: table `t` has an entry.
    pub shapes: u32,
    /// (rule, the earlier rules that decide it: one, where one alone does).
    pub shadowed: Vec<(usize, Vec<usize>)>,
    pub never_matches: Vec<usize>,
    pub shape_tables: ShapeTables,
    /// Per address field, per narrow class: the wide classes (as keys hold
    /// them) its addresses have, 0 for those in no wide network.
    wide_of: [Vec<Vec<u32>>; 2],
    examined: usize,
}

impl Tables {
    /// Tables of `shape_tables` with room for `entries` keys; `wide_of` as
    /// [`Tables::wide_of`].
    pub fn with_room(
        entries: usize,
        shape_tables: ShapeTables,
        wide_of: [Vec<Vec<u32>>; 2],
    ) -> Tables {
        Tables {
            index: FxHashMap::with_capacity_and_hasher(entries, Default::default()),
            entries: Vec::with_capacity(entries),
            shapes: 0,
            shadowed: Vec::new(),
            never_matches: Vec::new(),
            shape_tables,
            wide_of,
            examined: 0,
        }
    }

    /// Adds rule `rule` (rules come in order) of `shapes` (one, or one per
    /// view of its networks), whose keys `keys(shape, table, each)` hands to
    /// `each` until that returns false. A key a lower rule decides already,
    /// in this table or one of a shape inside this one, is left out: this
    /// rule could never win it.
    pub fn add(
        &mut self,
        rule: usize,
        shapes: &[u32],
        keys: &mut dyn FnMut(u32, u32, &mut KeySink),
    ) -> Result<(), RuleError> {
        let order = rule as u32;
        let mut yielded = false;
        let mut kept = false;
        let mut full = false;
        // While no key is kept: the lowest rule of each key (which rules
        // decide it between them), and the rules that decide every key seen
        // so far (any of which decides it alone).
        let mut firsts: Vec<u32> = Vec::new();
        let mut alone: Option<Vec<u32>> = None;
        for &shape in shapes {
            let table = self.shape_tables.table_of(shape);
            // (table, shape, translated groups) of this one and of the
            // shapes inside it.
            let tables: Vec<(u32, u32, u32)> = (0..abi::SHAPES)
                .filter_map(|t| Some((t, self.shape_tables.shape_of(t)?)))
                .filter_map(|(t, s)| match t == table {
                    true => Some((t, s, 0)),
                    false if self.shapes & (1 << t) != 0 => Some((t, s, inside(s, shape)?)),
                    false => None,
                })
                .collect();
            keys(shape, table, &mut |key| {
                yielded = true;
                self.examined += 1;
                let mut deciders = tables
                    .iter()
                    .filter_map(|&(t, s, translated)| self.decided_by(&key, s, t, translated));
                let decided = if kept {
                    // Past its first kept key, a rule is not shadowed: all
                    // that matters is whether a rule (a lower one, or this
                    // one, giving the key twice) has the key already.
                    deciders.next().is_some()
                } else {
                    let mut all = [0u32; abi::SHAPES as usize];
                    let mut found = 0;
                    for by in deciders {
                        all[found] = by;
                        found += 1;
                    }
                    let all = &all[..found];
                    if let Some(&lowest) = all.iter().min() {
                        firsts.push(lowest);
                        match &mut alone {
                            Some(common) => common.retain(|by| all.contains(by)),
                            None => alone = Some(all.to_vec()),
                        }
                    }
                    found > 0
                };
                if !decided {
                    kept = true;
                    self.index.insert(key, order);
                    self.entries.push((key, order));
                    self.shapes |= 1 << table;
                }
                full = self.entries.len() > MAX_SET_ENTRIES || self.examined > MAX_EXAMINED;
                !full
            });
            if full {
                break;
            }
        }
        if full {
            return Err(RuleError(format!(
                "rule {}: the classifier would need more than {MAX_SET_ENTRIES} entries; its \
                 lists cut across too many others: use fewer distinct ranges and networks",
                rule + 1
            )));
        }
        if !yielded {
            self.never_matches.push(rule);
        } else if !kept {
            // The first rule that decides all of it alone, or else those
            // that decide it between them. (None is this rule: it kept no key.)
            let by = match alone.and_then(|common| common.into_iter().min()) {
                Some(by) => vec![by as usize],
                None => {
                    firsts.sort_unstable();
                    firsts.dedup();
                    firsts.into_iter().map(|by| by as usize).collect()
                }
            };
            self.shadowed.push((rule, by));
        }
        Ok(())
    }

    /// The rule of table `table` (of `shape`) that decides every packet of
    /// `key` (of a shape it is inside), if one does: through the wide
    /// classes of `translated` groups, the last of those that decide them.
    fn decided_by(&self, key: &ClassKey, shape: u32, table: u32, translated: u32) -> Option<u32> {
        let srcs = match translated & GROUP_SRC {
            0 => std::slice::from_ref(&key.src),
            _ => &self.wide_of[0][key.src as usize][..],
        };
        let dsts = match translated & GROUP_DST {
            0 => std::slice::from_ref(&key.dst),
            _ => &self.wide_of[1][key.dst as usize][..],
        };
        // A class no range has (its network all covered by narrower ones)
        // meets no wide class: nothing to say it is decided, as before.
        if srcs.is_empty() || dsts.is_empty() {
            return None;
        }
        let mut last = 0;
        for &src in srcs {
            for &dst in dsts {
                let each = ClassKey { src, dst, ..*key };
                last = last.max(*self.index.get(&project_key(&each, shape, table))?);
            }
        }
        Some(last)
    }
}
