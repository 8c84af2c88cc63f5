//! What the class values tell the program besides the class: the shapes a
//! packet of that class can find an entry in (it skips the lookups of the
//! others), and for an address, the first rule of the shape that asks about
//! that address alone (so such rules cost no hash lookup at all).
//!
//! Computed from the entries themselves, so the filter only ever skips a
//! table that has no entry the packet could match.

use rustc_hash::FxHashMap;

use crate::abi::{
    self, ClassKey, FILTER_DPORT, FILTER_DST, FILTER_SPORT, FILTER_SRC, GROUP_DPORT, GROUP_DST,
    GROUP_PROTO, GROUP_SPORT, GROUP_SRC,
};

/// The fields with a filter, in `FILTER_*` order, and their groups.
const GROUPS: [u32; 4] = [GROUP_SRC, GROUP_DST, GROUP_SPORT, GROUP_DPORT];
/// The shapes class values answer: one address group alone.
pub const ALONE: [u32; 2] = [GROUP_SRC, GROUP_DST];

/// Per filtered field (`FILTER_*`), per class: the shapes to look up.
#[derive(Debug, Default)]
pub struct Filter {
    pub shapes: [Vec<u32>; 4],
    /// Per port field (sport, dport), per class: the shapes to look up for
    /// a port the walk read, in TCP or UDP. Narrower than `shapes`: entries
    /// of other protocols (ICMP's, whose ports are class 0) cannot match.
    pub read_ports: [Vec<u32>; 2],
    /// Per address field (src, dst), per class: the order of the first rule
    /// of `ALONE`'s shape that admits it, `u32::MAX` where none does.
    pub alone: [Vec<u32>; 2],
    /// The shapes that need a hash lookup at all.
    pub hashed: u32,
}

impl Filter {
    /// `classes[f]`: how many classes field `f` has; `port_protos`: the
    /// protocol classes of TCP and UDP.
    pub fn new(
        shapes: u32,
        classes: [usize; 4],
        port_protos: [u32; 2],
        entries: &[(ClassKey, u32)],
        index: &FxHashMap<ClassKey, u32>,
    ) -> Filter {
        let alone_shapes = ALONE
            .iter()
            .filter(|&&s| shapes & (1 << s) != 0)
            .fold(0, |bits, &s| bits | 1 << s);
        let hashed = shapes & !alone_shapes;
        let by_class = |f: usize, counts: &dyn Fn(&ClassKey) -> bool| {
            let without_group = (0..abi::SHAPES)
                .filter(|&s| s & GROUPS[f] == 0)
                .fold(0u32, |bits, s| bits | 1 << s);
            let mut by_class = vec![hashed & without_group; classes[f]];
            for (key, _) in entries.iter().filter(|(key, _)| counts(key)) {
                let class = field_of(key, f) as usize;
                by_class[class] |= hashed & 1 << key.table;
            }
            by_class
        };
        let filter_shapes = std::array::from_fn(|f| by_class(f, &|_| true));
        // Where the shape has the protocol group, the entry's protocol class
        // says whether a packet with ports can meet it.
        let with_ports = |key: &ClassKey| {
            key.table as u32 & GROUP_PROTO == 0 || port_protos.contains(&(key.proto as u32))
        };
        let read_ports = [
            by_class(FILTER_SPORT, &with_ports),
            by_class(FILTER_DPORT, &with_ports),
        ];
        let alone = std::array::from_fn(|a| {
            (0..classes[a] as u32)
                .map(|class| {
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
            read_ports,
            alone,
            hashed,
        }
    }

    /// The shapes of class 0 of each field: the plan's `absent`.
    pub fn absent(&self) -> [u32; 4] {
        std::array::from_fn(|f| self.shapes[f].first().copied().unwrap_or(self.hashed))
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
