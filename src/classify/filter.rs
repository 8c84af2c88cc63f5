//! What the class values tell the program besides the class: the shapes a
//! packet of that class can find an entry in (it skips the lookups of the
//! others), and for an address, the first rule of the shape that asks about
//! that address alone (so such rules cost no hash lookup at all).
//!
//! Computed from the entries themselves, so the filter only ever skips a
//! table that has no entry the packet could match.

use rustc_hash::FxHashMap;

use super::shapes::ShapeTables;
use crate::abi::{
    self, ClassKey, FILTER_DPORT, FILTER_DST, FILTER_SPORT, FILTER_SRC, GROUP_DPORT, GROUP_DST,
    GROUP_DST_WIDE, GROUP_PROTO, GROUP_SPORT, GROUP_SRC, GROUP_SRC_WIDE, NARROW_CLASS_BITS,
    NARROW_CLASS_MASK,
};

/// The fields with a filter, in `FILTER_*` order, and their groups.
const GROUPS: [u32; 4] = [GROUP_SRC, GROUP_DST, GROUP_SPORT, GROUP_DPORT];
/// The wide bit of each address field's group.
const WIDE: [u32; 2] = [GROUP_SRC_WIDE, GROUP_DST_WIDE];
/// The shapes class values answer: one address group alone.
pub const ALONE: [u32; 2] = [GROUP_SRC, GROUP_DST];

/// Per filtered field (`FILTER_*`), per class: the shapes to look up.
#[derive(Debug, Default)]
pub struct Filter {
    /// Address fields: per narrow class, those without the field's group
    /// and those keyed by the narrow class.
    pub shapes: [Vec<u32>; 4],
    /// Per address field, per wide class: the shapes keyed by it.
    pub wide: [Vec<u32>; 2],
    /// Per port field (sport, dport), per class: the shapes to look up for
    /// a port the walk read, in TCP or UDP. Narrower than `shapes`: entries
    /// of other protocols (ICMP's, whose ports are class 0) cannot match.
    pub read_ports: [Vec<u32>; 2],
    /// Per address field (src, dst), per narrow class: the order of the
    /// first rule of `ALONE`'s shape that admits it, `u32::MAX` where none
    /// does.
    pub alone: [Vec<u32>; 2],
    /// The shapes that need a hash lookup at all.
    pub hashed: u32,
}

impl Filter {
    /// `tables`: the tables with entries, of `shape_tables`; `classes[f]`:
    /// how many classes field `f` has, `wide_classes` how many wide ones;
    /// `port_protos`: the protocol classes of TCP and UDP.
    pub fn new(
        tables: u32,
        shape_tables: &ShapeTables,
        classes: [usize; 4],
        wide_classes: [usize; 2],
        port_protos: [u32; 2],
        entries: &[(ClassKey, u32)],
        index: &FxHashMap<ClassKey, u32>,
    ) -> Filter {
        let shape_of = |table: u8| shape_tables.shape_of(table.into()).unwrap_or(0);
        // A shape of no wide bit has the table of its number.
        let alone_shapes = ALONE
            .iter()
            .filter(|&&s| tables & (1 << s) != 0 && shape_of(s as u8) == s)
            .fold(0, |bits, &s| bits | 1 << s);
        let hashed = tables & !alone_shapes;
        let wide_of =
            |f: usize, key: &ClassKey| f < WIDE.len() && shape_of(key.table) & WIDE[f] != 0;
        let by_class = |f: usize, counts: &dyn Fn(&ClassKey) -> bool| {
            let without_group = (0..abi::SHAPES)
                .filter(|&t| shape_of(t as u8) & GROUPS[f] == 0)
                .fold(0u32, |bits, t| bits | 1 << t);
            let mut by_class = vec![hashed & without_group; classes[f]];
            for (key, _) in entries
                .iter()
                .filter(|(key, _)| counts(key) && !wide_of(f, key))
            {
                let class = field_of(key, f) as usize;
                by_class[class] |= hashed & 1 << key.table;
            }
            by_class
        };
        let filter_shapes = std::array::from_fn(|f| by_class(f, &|_| true));
        let wide = std::array::from_fn(|a| {
            let mut by_class = vec![0; wide_classes[a]];
            for (key, _) in entries.iter().filter(|(key, _)| wide_of(a, key)) {
                let class = field_of(key, a) >> NARROW_CLASS_BITS;
                by_class[class as usize] |= hashed & 1 << key.table;
            }
            by_class
        });
        // Where the shape has the protocol group, the entry's protocol class
        // says whether a packet with ports can meet it.
        let with_ports = |key: &ClassKey| {
            shape_of(key.table) & GROUP_PROTO == 0 || port_protos.contains(&(key.proto as u32))
        };
        let read_ports = [
            by_class(FILTER_SPORT, &with_ports),
            by_class(FILTER_DPORT, &with_ports),
        ];
        let alone = std::array::from_fn(|a| {
            let answers = alone_shapes & 1 << ALONE[a] != 0;
            (0..classes[a] as u32)
                .map(|class| {
                    if !answers {
                        return u32::MAX;
                    }
                    let mut key = ClassKey {
                        table: ALONE[a] as u8,
                        ..ClassKey::default()
                    };
                    set_field(&mut key, a, class);
                    index.get(&key).copied().unwrap_or(u32::MAX)
                })
                .collect()
        });
        Filter {
            shapes: filter_shapes,
            wide,
            read_ports,
            alone,
            hashed,
        }
    }

    /// The shapes of class 0 of each field: the plan's `absent`.
    pub fn absent(&self) -> [u32; 4] {
        std::array::from_fn(|f| {
            let wide = self.wide.get(f).and_then(|w| w.first()).copied();
            self.shapes[f].first().copied().unwrap_or(self.hashed) | wide.unwrap_or(0)
        })
    }

    /// The shapes an address of `class` (narrow and wide, as a range holds
    /// them) in field `a` (`FILTER_SRC` or `FILTER_DST`) looks up.
    pub fn address_shapes(&self, a: usize, class: u32) -> u32 {
        self.shapes[a][(class & NARROW_CLASS_MASK) as usize]
            | self.wide[a][(class >> NARROW_CLASS_BITS) as usize]
    }

    /// The first rule of `ALONE`'s shape admitting an address of `class`.
    pub fn alone_of(&self, a: usize, class: u32) -> u32 {
        self.alone[a][(class & NARROW_CLASS_MASK) as usize]
    }
}

/// Field `f` (`FILTER_*`) of `key`.
pub fn field_of(key: &ClassKey, f: usize) -> u32 {
    match f {
        FILTER_SRC => key.src,
        FILTER_DST => key.dst,
        FILTER_SPORT => key.sport.into(),
        FILTER_DPORT => key.dport.into(),
        _ => unreachable!("four filtered fields"),
    }
}

fn set_field(key: &mut ClassKey, f: usize, class: u32) {
    match f {
        FILTER_SRC => key.src = class,
        FILTER_DST => key.dst = class,
        _ => unreachable!("two address fields"),
    }
}
