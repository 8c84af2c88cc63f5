//! How a compiled rule set lies in one generation of the maps: the address
//! ranges and their buckets, the class arrays, the interface classes, the
//! entries of every shape, the plan; and the hash keys written, so that the
//! generation can be cleared again.

use std::ffi::c_void;
use std::io;
use std::ops::Range;
use std::os::fd::{AsRawFd, BorrowedFd};

use anyhow::{ensure, Context, Result};
use libbpf_rs::libbpf_sys;
use libbpf_rs::{MapCore, MapFlags};

use super::array_window::ArrayWindow;
use super::RuleMaps;
use crate::abi::*;
use crate::classify::{AddressTable, Compiled};
use crate::policy::Action;

/// The keys of one generation's hash entries. Arrays need no clearing: a
/// generation's plan says which of them its packets read, and a set that
/// needs one writes all it reads.
#[derive(Default)]
pub(super) struct Installed {
    ifaces: Vec<IfaceKey>,
    entries: Vec<ClassKey>,
}

impl Installed {
    /// Writes `compiled` into `generation` (empty: `self` holds no key),
    /// its plan last. `slots[i]` is the counter slot of rule `i`,
    /// `actions[i]` its verdict and `log`. Each map's keys are remembered
    /// before they are written, so that a failure half-way can be cleared.
    pub(super) fn write(
        &mut self,
        maps: &RuleMaps<'_>,
        generation: u32,
        compiled: &Compiled,
        slots: &[u32],
        actions: &[(u8, bool)],
    ) -> Result<()> {
        let installed = self;
        let entry_of = |order: u32| {
            if order == u32::MAX {
                return ClassEntry::NONE;
            }
            let (verdict, log) = actions[order as usize];
            ClassEntry {
                order,
                slot: slots[order as usize],
                verdict,
                log: log.into(),
                _pad: [0; 2],
            }
        };
        let filter = &compiled.filter;
        let address_class = |field: usize, class: u32| AddressClass {
            class,
            shapes: filter.address_shapes(field, class),
            alone: entry_of(filter.alone_of(field, class)),
        };
        write_addresses(maps, generation, compiled, &address_class)?;

        for (direction, classes, field, read) in [
            (
                DIRECTION_SRC,
                &compiled.sport,
                FILTER_SPORT,
                &filter.read_ports[0],
            ),
            (
                DIRECTION_DST,
                &compiled.dport,
                FILTER_DPORT,
                &filter.read_ports[1],
            ),
        ] {
            if let Some(classes) = classes {
                let first = port_class_slot(generation, direction, 0);
                // Every slot but the last holds a port the walk read.
                let values: Vec<ClassValue> = classes
                    .iter()
                    .enumerate()
                    .map(|(slot, &class)| ClassValue {
                        class,
                        shapes: if slot < PORT_UNKNOWN as usize {
                            read[class as usize]
                        } else {
                            filter.shapes[field][class as usize]
                        },
                    })
                    .collect();
                write_array(maps.ports, first, &values).context("writing port classes")?;
            }
        }
        for (map, domain, classes, what) in [
            (maps.proto, PROTO_DOMAIN, &compiled.proto, "protocol"),
            (maps.icmp, ICMP_DOMAIN, &compiled.icmp, "ICMP"),
            (maps.flags, FLAGS_DOMAIN, &compiled.flags, "TCP flag"),
        ] {
            if let Some(classes) = classes {
                let first = class_slot(generation, domain, 0);
                write_array(map, first, classes)
                    .with_context(|| format!("writing {what} classes"))?;
            }
        }

        installed.ifaces = compiled
            .ifaces
            .iter()
            .map(|&(ifindex, _)| IfaceKey {
                generation,
                ifindex,
            })
            .collect();
        let iface_classes: Vec<u32> = compiled.ifaces.iter().map(|&(_, c)| c.into()).collect();
        write_entries(maps.ifaces, &installed.ifaces, &iface_classes)
            .context("writing interface classes")?;

        // Shapes of one address field alone are answered by its class
        // value: their entries are never looked up, so they are not written.
        let table_base = (generation * SHAPES) as u8;
        let looked_up: Vec<&(ClassKey, u32)> = compiled
            .entries
            .iter()
            .filter(|(key, _)| compiled.plan.hashed & 1 << key.table != 0)
            .collect();
        installed.entries = looked_up
            .iter()
            .map(|(key, _)| ClassKey {
                table: table_base + key.table,
                ..*key
            })
            .collect();
        let values: Vec<ClassEntry> = looked_up
            .iter()
            .map(|&&(_, order)| entry_of(order))
            .collect();
        write_entries(maps.entries, &installed.entries, &values).context("writing the rules")?;

        maps.plans
            .update(
                &generation.to_ne_bytes(),
                bytes_of(&compiled.plan),
                MapFlags::ANY,
            )
            .context("writing the rule plan")
    }

    /// Whether this generation holds no hash key.
    pub(super) fn is_empty(&self) -> bool {
        self.ifaces.is_empty() && self.entries.is_empty()
    }

    /// Deletes every key this generation holds.
    pub(super) fn clear(&mut self, maps: &RuleMaps<'_>) -> Result<()> {
        delete_entries(maps.entries, &self.entries).context("clearing rules")?;
        delete_entries(maps.ifaces, &self.ifaces).context("clearing interface classes")?;
        *self = Installed::default();
        Ok(())
    }
}

/// The XDP action a rule's action stands for.
pub(super) fn verdict_of(action: Action) -> u8 {
    match action {
        Action::Allow => XDP_PASS,
        Action::Deny => XDP_DROP,
    }
}

/// Writes the ranges of the address tables and their buckets: a family's
/// tables share its ranges array, source first. `value(FILTER_*, class)` is
/// the class value a range holds.
fn write_addresses(
    maps: &RuleMaps<'_>,
    generation: u32,
    compiled: &Compiled,
    value: &dyn Fn(usize, u32) -> AddressClass,
) -> Result<()> {
    let v4_start = |table: &AddressTable, i: usize, value: AddressClass| V4Range {
        start: table.starts[i] as u32,
        value,
    };
    let v6_start = |table: &AddressTable, i: usize, value: AddressClass| V6Range {
        start_hi: (table.starts[i] >> 64) as u64,
        start_lo: table.starts[i] as u64,
        value,
        _pad: 0,
    };
    let tables = &compiled.addresses;
    write_family(
        maps,
        maps.v4_ranges,
        generation,
        [0, 1],
        tables,
        value,
        v4_start,
    )
    .context("writing IPv4 classes")?;
    write_family(
        maps,
        maps.v6_ranges,
        generation,
        [2, 3],
        tables,
        value,
        v6_start,
    )
    .context("writing IPv6 classes")
}

/// One family's tables (`tables[t]` for `t` in `family`, source first)
/// into `ranges` and the buckets. A table no rule needs is one range, one
/// bucket.
fn write_family<R: plain::Plain + Sync>(
    maps: &RuleMaps<'_>,
    ranges: &dyn MapCore,
    generation: u32,
    family: [usize; 2],
    tables: &[AddressTable],
    value: &dyn Fn(usize, u32) -> AddressClass,
    range: impl Fn(&AddressTable, usize, AddressClass) -> R,
) -> Result<()> {
    let mut first = generation * RANGES_PER_GENERATION;
    let room = first + RANGES_PER_GENERATION;
    for (field, t) in [FILTER_SRC, FILTER_DST].into_iter().zip(family) {
        let table = &tables[t];
        // classify keeps a family's networks to MAX_NETWORKS, which cannot
        // overflow its generation; this keeps it so should that change.
        ensure!(
            first as usize + table.starts.len() <= room as usize,
            "the address ranges overflow a generation's {RANGES_PER_GENERATION} slots"
        );
        let values: Vec<R> = (0..table.starts.len())
            .map(|i| range(table, i, value(field, table.classes[i])))
            .collect();
        write_array(ranges, first, &values)?;
        let buckets: Vec<Bucket> = table
            .buckets
            .iter()
            .map(|&(low, high)| Bucket {
                first: first + low,
                last: first + high,
            })
            .collect();
        write_array(maps.buckets, bucket_slot(generation, t as u32, 0), &buckets)?;
        first += values.len() as u32;
    }
    Ok(())
}

/// Writes `values` into consecutive slots of an array map from `first` on:
/// through a mapping of its values where it allows one, else in one batch.
fn write_array<V: plain::Plain + Sync>(map: &dyn MapCore, first: u32, values: &[V]) -> Result<()> {
    if values.is_empty() {
        return Ok(());
    }
    if let Some(mut window) = ArrayWindow::open(map, first, values.len()) {
        return window.write(values);
    }
    log::debug!(
        "map {}: no mapping of its values, {} slots written in a batch",
        map.name().to_string_lossy(),
        values.len()
    );
    let keys: Vec<u32> = (first..first + values.len() as u32).collect();
    write_entries(map, &keys, values)
}

/// Entries a hash batch takes before it is split between two threads: the
/// kernel inserts and deletes at about a microsecond each, and hash buckets
/// lock apart.
const PARALLEL_BATCH: usize = 16_384;

/// Runs `batch` over both halves of `0..len` at once, on two threads; true
/// where both went through. Short work, or a thread that cannot start (a
/// pids limit), runs nowhere (false): the caller does it all on its own.
fn in_halves(len: usize, batch: impl Fn(Range<usize>) -> io::Result<()> + Sync) -> bool {
    if len < PARALLEL_BATCH {
        return false;
    }
    let half = len / 2;
    std::thread::scope(|scope| {
        let Ok(other) = std::thread::Builder::new()
            .name("xdp-hello-write".into())
            .spawn_scoped(scope, || batch(half..len))
        else {
            return false;
        };
        let here = batch(0..half);
        here.is_ok() && matches!(other.join(), Ok(Ok(())))
    })
}

/// Puts `keys[i]` → `values[i]` into `map`: in batches where the kernel
/// has them for this map type (a long one halved between two threads),
/// else one by one.
fn write_entries<K: plain::Plain + Sync, V: plain::Plain + Sync>(
    map: &dyn MapCore,
    keys: &[K],
    values: &[V],
) -> Result<()> {
    let fd = map.as_fd();
    if keys.is_empty()
        || in_halves(keys.len(), |part| {
            batch(
                libbpf_sys::bpf_map_update_batch,
                fd,
                &keys[part.clone()],
                &values[part],
            )
        })
    {
        return Ok(());
    }
    let (key_bytes, value_bytes) = (slice_bytes(keys), slice_bytes(values));
    let batch = map.update_batch(
        key_bytes,
        value_bytes,
        keys.len() as u32,
        MapFlags::ANY,
        MapFlags::ANY,
    );
    if batch.is_ok() {
        return Ok(());
    }
    // Hash maps have no batch operations before 5.6.
    for (key, value) in keys.iter().zip(values) {
        map.update(bytes_of(key), bytes_of(value), MapFlags::ANY)?;
    }
    Ok(())
}

/// Deletes `keys` from `map`, in batches where the kernel has them (a long
/// one halved between two threads).
fn delete_entries<K: plain::Plain + Sync>(map: &dyn MapCore, keys: &[K]) -> Result<()> {
    let fd = map.as_fd();
    if keys.is_empty()
        || in_halves(keys.len(), |part| {
            batch(delete_batch, fd, &keys[part], &[0u8; 0])
        })
    {
        return Ok(());
    }
    let batch = map.delete_batch(
        slice_bytes(keys),
        keys.len() as u32,
        MapFlags::ANY,
        MapFlags::ANY,
    );
    if batch.is_ok() {
        return Ok(());
    }
    for key in keys {
        match map.delete(bytes_of(key)) {
            Err(err) if err.kind() == libbpf_rs::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

/// A libbpf batch operation: fd, keys, values, count, options.
type BatchOp = unsafe extern "C" fn(
    i32,
    *const c_void,
    *const c_void,
    *mut u32,
    *const libbpf_sys::bpf_map_batch_opts,
) -> i32;

/// `bpf_map_delete_batch` as a [`BatchOp`] (it takes no values).
unsafe extern "C" fn delete_batch(
    fd: i32,
    keys: *const c_void,
    _values: *const c_void,
    count: *mut u32,
    opts: *const libbpf_sys::bpf_map_batch_opts,
) -> i32 {
    // SAFETY: as the caller of a `BatchOp` promises.
    unsafe { libbpf_sys::bpf_map_delete_batch(fd, keys, count, opts) }
}

/// One batch operation over `keys` (and `values`, where it takes them).
fn batch<K: plain::Plain, V: plain::Plain>(
    op: BatchOp,
    fd: BorrowedFd<'_>,
    keys: &[K],
    values: &[V],
) -> io::Result<()> {
    let mut count = keys.len() as u32;
    let opts = libbpf_sys::bpf_map_batch_opts {
        sz: size_of::<libbpf_sys::bpf_map_batch_opts>() as _,
        ..Default::default()
    };
    // SAFETY: keys (and values) hold `count` plain entries each, as the map
    // takes them; libbpf reads them and writes back `count`.
    let ret = unsafe {
        op(
            fd.as_raw_fd(),
            keys.as_ptr().cast(),
            values.as_ptr().cast(),
            &mut count,
            &opts,
        )
    };
    if ret < 0 {
        return Err(io::Error::from_raw_os_error(-ret));
    }
    Ok(())
}

/// The bytes of a key or value shared with the BPF side.
pub(super) fn bytes_of<T: plain::Plain>(value: &T) -> &[u8] {
    // SAFETY: the shared types are repr(C) plain data with explicit padding.
    unsafe { plain::as_bytes(value) }
}

fn slice_bytes<T: plain::Plain>(values: &[T]) -> &[u8] {
    // SAFETY: as `bytes_of`, for a slice.
    unsafe { plain::as_bytes(values) }
}
