//! The rules' hit counters in the kernel: per-CPU pages of packets and
//! bytes, read whole; a slot counts from the moment it was last freed.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::mem::size_of;

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, MapFlags};

use crate::abi::{RuleHits, HITS_PER_PAGE};

/// What the counters said when each freed slot was freed. The kernel's
/// counters are never written from here: a page holds the counters of
/// other rules, which packets keep counting on while we would write.
#[derive(Default)]
pub(super) struct HitCounters {
    baselines: HashMap<u32, RuleHits>,
}

impl HitCounters {
    /// The hits of each of `slots` since it was last freed, summed over CPUs.
    pub(super) fn read(&self, map: &dyn MapCore, slots: &[u32]) -> Result<Vec<RuleHits>> {
        let mut pages: HashMap<u32, Vec<RuleHits>> = HashMap::new();
        slots
            .iter()
            .map(|&slot| {
                let page = match pages.entry(slot / HITS_PER_PAGE) {
                    Entry::Occupied(read) => read.into_mut(),
                    Entry::Vacant(unread) => {
                        let page = read_page(map, *unread.key())?;
                        unread.insert(page)
                    }
                };
                let raw = page[(slot % HITS_PER_PAGE) as usize];
                let base = self.baselines.get(&slot).copied().unwrap_or_default();
                Ok(RuleHits {
                    packets: raw.packets.wrapping_sub(base.packets),
                    bytes: raw.bytes.wrapping_sub(base.bytes),
                })
            })
            .collect()
    }

    /// From now on `slots` count from zero: their rules are gone, and no
    /// packet counts on them any more.
    pub(super) fn reset(&mut self, map: &dyn MapCore, slots: &[u32]) -> Result<()> {
        let raw = HitCounters::default().read(map, slots)?;
        self.baselines.extend(slots.iter().copied().zip(raw));
        Ok(())
    }
}

/// One page of counters, summed over CPUs.
fn read_page(map: &dyn MapCore, page: u32) -> Result<Vec<RuleHits>> {
    let per_cpu = map
        .lookup_percpu(&page.to_ne_bytes(), MapFlags::ANY)
        .context("reading rule counters")?
        .unwrap_or_default();
    let mut sum = vec![RuleHits::default(); HITS_PER_PAGE as usize];
    for bytes in per_cpu {
        for (total, counter) in sum
            .iter_mut()
            .zip(bytes.chunks_exact(size_of::<RuleHits>()))
        {
            let mut hits = RuleHits::default();
            plain::copy_from_bytes(&mut hits, counter).expect("a counter is a RuleHits");
            total.packets += hits.packets;
            total.bytes += hits.bytes;
        }
    }
    Ok(sum)
}
