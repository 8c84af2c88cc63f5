//! One address field of one family as the program searches it: the address
//! space cut into ranges at the edges of the networks, each with the class
//! of its longest matching network (narrow and wide: see
//! `abi::NARROW_CLASS_BITS`), sorted, and found through buckets.
//!
//! A lookup costs one bucket read and a binary search among the ranges that
//! start inside the bucket: with as many buckets as ranges (up to
//! `MAX_BUCKETS`), most hold none or one, whatever the number of networks.
//! An LPM trie walks a node per prefix bit that tells its networks apart.

use crate::abi::{
    AddressIndex, MAX_BUCKETS, MAX_SEARCH_STEPS, NARROW_CLASS_BITS, NARROW_CLASS_MASK,
};

/// The sorted ranges of one address table, and its buckets.
#[derive(Debug, Clone)]
pub struct AddressTable {
    /// Where each range starts, ascending; the first at address 0.
    pub starts: Vec<u128>,
    /// The class of each range: its longest matching narrow network's in
    /// the low bits and wide network's above, 0 where none matches.
    pub classes: Vec<u32>,
    pub index: AddressIndex,
    /// Per bucket: the first and last range (indices into `starts`) an
    /// address of the bucket can lie in.
    pub buckets: Vec<(u32, u32)>,
    v6: bool,
}

impl AddressTable {
    /// The table of `networks` (first address, last address, class, wide),
    /// which nest or are disjoint, as prefixes do; `v6`: 128-bit addresses.
    pub fn new(
        networks: impl IntoIterator<Item = (u128, u128, u32, bool)>,
        v6: bool,
    ) -> AddressTable {
        let last_address = if v6 { u128::MAX } else { u32::MAX.into() };
        let mut networks: Vec<_> = networks.into_iter().collect();
        // Each network before those inside it.
        networks.sort_unstable_by_key(|&(first, last, ..)| (first, std::cmp::Reverse(last)));
        let mut table = AddressTable {
            starts: vec![0],
            classes: vec![0],
            index: AddressIndex::default(),
            buckets: Vec::new(),
            v6,
        };
        // The networks around the address reached: (last address, class),
        // a wide network's keeping the narrow class around it, and back.
        let mut open: Vec<(u128, u32)> = Vec::new();
        let close = |table: &mut AddressTable, open: &mut Vec<(u128, u32)>| {
            let (last, _) = open.pop().expect("an open network");
            if last < last_address {
                let around = open.last().map_or(0, |&(_, class)| class);
                table.cut(last + 1, around);
            }
        };
        for (first, last, class, wide) in networks {
            while open.last().is_some_and(|&(end, _)| end < first) {
                close(&mut table, &mut open);
            }
            let around = open.last().map_or(0, |&(_, class)| class);
            let class = if wide {
                around & NARROW_CLASS_MASK | class << NARROW_CLASS_BITS
            } else {
                around & !NARROW_CLASS_MASK | class
            };
            table.cut(first, class);
            open.push((last, class));
        }
        while !open.is_empty() {
            close(&mut table, &mut open);
        }
        table.index_buckets();
        table
    }

    /// A range of `class` from `at` on; a range that started there already
    /// gives way, and one of the same class as the range before is none.
    fn cut(&mut self, at: u128, class: u32) {
        if self.starts.last() == Some(&at) {
            self.starts.pop();
            self.classes.pop();
        }
        if self.classes.last() != Some(&class) {
            self.starts.push(at);
            self.classes.push(class);
        }
    }

    /// The bucket key of an address: IPv4's whole, IPv6's upper 64 bits.
    fn key(&self, addr: u128) -> u64 {
        if self.v6 {
            (addr >> 64) as u64
        } else {
            addr as u64
        }
    }

    /// As many buckets as ranges (a power of two), spread over the keys from
    /// the second range's start to the last's.
    fn index_buckets(&mut self) {
        let ranges = self.starts.len();
        let count = ranges.next_power_of_two().min(MAX_BUCKETS as usize) as u64;
        let base = self.starts.get(1).map_or(0, |&start| self.key(start));
        let span = self.key(self.starts[ranges - 1]) - base;
        let shift = (0..64).find(|&s| span >> s < count).unwrap_or(63);
        self.index = AddressIndex {
            base,
            shift,
            last_bucket: (count - 1) as u32,
        };
        let mut below = 0; // ranges starting in the buckets before this one
        self.buckets = (0..count as u32)
            .map(|bucket| {
                let first = below.max(1) - 1;
                while below < ranges && self.index.bucket(self.key(self.starts[below])) <= bucket {
                    below += 1;
                }
                (first as u32, (below - 1) as u32)
            })
            .collect();
    }

    /// The class of `addr`, found as the program finds it (`range_of` in
    /// src/bpf/src/rules.rs).
    pub fn class_of(&self, addr: u128) -> u32 {
        let (first, last) = self.buckets[self.index.bucket(self.key(addr)) as usize];
        let (mut at, mut left) = (first as usize, (last - first) as usize);
        for _ in 0..MAX_SEARCH_STEPS {
            if left == 0 {
                break;
            }
            let half = left - left / 2;
            if self.starts[at + half] <= addr {
                at += half;
                left -= half;
            } else {
                left = half - 1;
            }
        }
        self.classes[at]
    }
}

#[cfg(test)]
mod tests {
    use super::AddressTable;

    /// The longest match among the narrow or the wide networks, the slow way.
    fn longest(networks: &[(u128, u128, u32, bool)], wide: bool, addr: u128) -> u32 {
        networks
            .iter()
            .filter(|&&(first, last, _, w)| w == wide && first <= addr && addr <= last)
            .min_by_key(|&&(first, last, ..)| last - first)
            .map_or(0, |&(_, _, class, _)| class)
    }

    /// A prefix of `len` bits around `addr` in a `bits`-bit space.
    fn prefix(addr: u128, len: u32, bits: u32) -> (u128, u128) {
        let host_bits = bits - len;
        let mask = if host_bits == 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        (addr & !mask, addr | mask)
    }

    /// Narrow classes in the low bits, wide ones above, a network of each
    /// kind now and then the same.
    #[test]
    fn every_address_finds_its_longest_match_of_each_kind() {
        let mut rng = fastrand::Rng::with_seed(7);
        for round in 0..300 {
            let v6 = round % 2 == 1;
            let bits = if v6 { 128 } else { 32 };
            let space = |rng: &mut fastrand::Rng| {
                if v6 {
                    rng.u128(..)
                } else {
                    rng.u32(..).into()
                }
            };
            // Networks near a few anchors, so that they nest and touch.
            let anchors: Vec<u128> = (0..3).map(|_| space(&mut rng)).collect();
            let mut networks = Vec::new();
            for class in 1..=rng.u32(0..40) {
                let near = anchors[rng.usize(..anchors.len())] ^ rng.u128(..) >> rng.u32(96..128);
                let near = if v6 { near } else { near & u32::MAX as u128 };
                let (first, last) = prefix(near, rng.u32(0..=bits), bits);
                let wide = round % 3 != 0 && rng.u8(..4) == 0;
                if !networks
                    .iter()
                    .any(|&(f, l, _, w)| (f, l, w) == (first, last, wide))
                {
                    networks.push((first, last, class, wide));
                }
            }
            let table = AddressTable::new(networks.clone(), v6);
            assert_eq!(table.starts[0], 0);
            assert!(table.starts.windows(2).all(|w| w[0] < w[1]));
            let edges = networks.iter().flat_map(|&(first, last, ..)| {
                [first, first.wrapping_sub(1), last, last.wrapping_add(1)]
            });
            let probes: Vec<u128> = edges
                .chain(anchors.iter().copied())
                .chain((0..50).map(|_| space(&mut rng)))
                .filter(|&a| v6 || a <= u32::MAX as u128)
                .collect();
            for addr in probes {
                let both = longest(&networks, false, addr)
                    | longest(&networks, true, addr) << super::NARROW_CLASS_BITS;
                assert_eq!(table.class_of(addr), both, "{addr:#x} in {networks:x?}");
            }
        }
    }
}
