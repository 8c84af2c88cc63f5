//! The per-CPU counters of the XDP program, summed over CPUs.

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, MapFlags};

use crate::abi::{
    COUNTER_ABORTED, COUNTER_DROP, COUNTER_NOTICES_LOST, COUNTER_NOTICES_SENT, COUNTER_PASS,
};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub passed: u64,
    pub dropped: u64,
    pub aborted: u64,
    pub notices_sent: u64,
    pub notices_lost: u64,
}

impl Counters {
    pub fn read(counters: &dyn MapCore) -> Result<Counters> {
        let slot = |index: u32| read_slot(counters, index);
        Ok(Counters {
            passed: slot(COUNTER_PASS)?,
            dropped: slot(COUNTER_DROP)?,
            aborted: slot(COUNTER_ABORTED)?,
            notices_sent: slot(COUNTER_NOTICES_SENT)?,
            notices_lost: slot(COUNTER_NOTICES_LOST)?,
        })
    }

    pub fn packets(&self) -> u64 {
        self.passed + self.dropped + self.aborted
    }
}

/// One slot of a per-CPU u64 array, added up over every CPU.
fn read_slot(map: &dyn MapCore, index: u32) -> Result<u64> {
    let per_cpu = map
        .lookup_percpu(&index.to_ne_bytes(), MapFlags::ANY)
        .with_context(|| format!("reading counter {index}"))?
        .unwrap_or_default();
    Ok(per_cpu
        .iter()
        .filter_map(|bytes| bytes.get(..8))
        .map(|bytes| u64::from_ne_bytes(bytes.try_into().unwrap()))
        .sum())
}
