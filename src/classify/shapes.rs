//! Shapes and the tables they take: a shape is a rule's groups plus, per
//! address group, whether its table is keyed by the wide class; a
//! generation has `SHAPES` tables.
//!
//! A shape without wide bits takes the table of its own number, as every
//! set without wide networks always has; one with them takes a table no
//! shape of the set takes by number.

use crate::abi::{GROUPS, GROUP_DST, GROUP_DST_WIDE, GROUP_SRC, GROUP_SRC_WIDE, SHAPES};

/// Every value a shape can have: five groups and two wide bits.
pub const SHAPE_VALUES: u32 = 1 << 7;

/// The shape of each table of one set.
#[derive(Clone, Debug)]
pub struct ShapeTables {
    shapes: [Option<u32>; SHAPES as usize],
}

impl ShapeTables {
    /// Tables for `shapes` (distinct values, any order); `None` when there
    /// are more than `SHAPES`.
    pub fn new(shapes: &[u32]) -> Option<ShapeTables> {
        let mut tables = ShapeTables {
            shapes: [None; SHAPES as usize],
        };
        for &shape in shapes.iter().filter(|&&s| s < SHAPES) {
            tables.shapes[shape as usize] = Some(shape);
        }
        for &shape in shapes.iter().filter(|&&s| s >= SHAPES) {
            let free = tables.shapes.iter().position(Option::is_none)?;
            tables.shapes[free] = Some(shape);
        }
        Some(tables)
    }

    /// The table of `shape`, one of the set's.
    pub fn table_of(&self, shape: u32) -> u32 {
        self.shapes
            .iter()
            .position(|&s| s == Some(shape))
            .expect("a shape of the set") as u32
    }

    /// The shape of `table`, `None` for a table no shape takes.
    pub fn shape_of(&self, table: u32) -> Option<u32> {
        self.shapes[table as usize]
    }
}

/// Whether every key of `outer` projects onto a key of `inner`: `inner`'s
/// groups are among `outer`'s, and each address group is keyed by the same
/// class, or by the wide class in `inner` where `outer` has the narrow one.
/// `Some`: the address groups (`GROUP_SRC`, `GROUP_DST`) whose narrow class
/// a projection turns into the wide classes it meets.
pub fn inside(inner: u32, outer: u32) -> Option<u32> {
    if inner & GROUPS & !outer != 0 {
        return None;
    }
    let mut translated = 0;
    for (group, wide) in [(GROUP_SRC, GROUP_SRC_WIDE), (GROUP_DST, GROUP_DST_WIDE)] {
        match (inner & group != 0, inner & wide != 0, outer & wide != 0) {
            (false, ..) => {}
            (true, true, false) => translated |= group,
            (true, false, true) => return None,
            (true, ..) => {}
        }
    }
    Some(translated)
}
