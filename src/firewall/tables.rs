//! How a compiled rule set lies in one generation of the maps: the class
//! tries and arrays, the interface classes, the entries of every shape, the
//! plan; and the keys written, so that the generation can be cleared again.

use anyhow::{Context, Result};
use ipnet::IpNet;
use libbpf_rs::{MapCore, MapFlags};

use super::RuleMaps;
use crate::abi::*;
use crate::classify::{is_host, Compiled};
use crate::policy::Action;

/// The keys of one generation's hash and trie entries. Arrays need no
/// clearing: a generation's plan says which of them its packets read, and a
/// set that needs one writes all of it.
#[derive(Default)]
pub(super) struct Installed {
    v4: Vec<Ipv4RuleKey>,
    v6: Vec<Ipv6RuleKey>,
    v4_hosts: Vec<Ipv4HostKey>,
    v6_hosts: Vec<Ipv6HostKey>,
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
            shapes: filter.shapes[field][class as usize],
            alone: entry_of(filter.alone[field][class as usize]),
        };
        let lookups = compiled.plan.lookups;
        let g = generation as u8;
        let mut v4 = Networks::default();
        v4.add(
            [
                (DIRECTION_SRC, &compiled.src_v4, LOOKUP_HOSTS_SRC_V4),
                (DIRECTION_DST, &compiled.dst_v4, LOOKUP_HOSTS_DST_V4),
            ],
            lookups,
            &address_class,
            |direction, net| {
                Ipv4RuleKey::new(
                    generation,
                    direction,
                    net.network().octets(),
                    net.prefix_len().into(),
                )
            },
            |direction, net| Ipv4HostKey {
                generation: g,
                direction,
                _pad: [0; 2],
                addr: net.addr().octets(),
            },
        );
        let mut v6 = Networks::default();
        v6.add(
            [
                (DIRECTION_SRC, &compiled.src_v6, LOOKUP_HOSTS_SRC_V6),
                (DIRECTION_DST, &compiled.dst_v6, LOOKUP_HOSTS_DST_V6),
            ],
            lookups,
            &address_class,
            |direction, net| {
                Ipv6RuleKey::new(
                    generation,
                    direction,
                    net.network().octets(),
                    net.prefix_len().into(),
                )
            },
            |direction, net| Ipv6HostKey {
                generation: g,
                direction,
                _pad: [0; 2],
                addr: net.addr().octets(),
            },
        );
        installed.v4 = v4.trie_keys;
        write_entries(maps.v4, &installed.v4, &v4.trie_values).context("writing IPv4 classes")?;
        installed.v4_hosts = v4.host_keys;
        write_entries(maps.v4_hosts, &installed.v4_hosts, &v4.host_values)
            .context("writing IPv4 hosts")?;
        installed.v6 = v6.trie_keys;
        write_entries(maps.v6, &installed.v6, &v6.trie_values).context("writing IPv6 classes")?;
        installed.v6_hosts = v6.host_keys;
        write_entries(maps.v6_hosts, &installed.v6_hosts, &v6.host_values)
            .context("writing IPv6 hosts")?;

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

        let table_base = (generation * SHAPES) as u8;
        installed.entries = compiled
            .entries
            .iter()
            .map(|(key, _)| ClassKey {
                table: table_base + key.table,
                ..*key
            })
            .collect();
        let values: Vec<ClassEntry> = compiled
            .entries
            .iter()
            .map(|&(_, order)| entry_of(order))
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

    /// Whether this generation holds no hash or trie key.
    pub(super) fn is_empty(&self) -> bool {
        self.v4.is_empty()
            && self.v6.is_empty()
            && self.v4_hosts.is_empty()
            && self.v6_hosts.is_empty()
            && self.ifaces.is_empty()
            && self.entries.is_empty()
    }

    /// Deletes every key this generation holds.
    pub(super) fn clear(&mut self, maps: &RuleMaps<'_>) -> Result<()> {
        delete_entries(maps.entries, &self.entries).context("clearing rules")?;
        delete_entries(maps.ifaces, &self.ifaces).context("clearing interface classes")?;
        delete_entries(maps.v4, &self.v4).context("clearing IPv4 classes")?;
        delete_entries(maps.v6, &self.v6).context("clearing IPv6 classes")?;
        delete_entries(maps.v4_hosts, &self.v4_hosts).context("clearing IPv4 hosts")?;
        delete_entries(maps.v6_hosts, &self.v6_hosts).context("clearing IPv6 hosts")?;
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

/// One direction's networks of a family: (direction, networks and
/// classes, its `LOOKUP_HOSTS_*` bit).
type AddressList<'a, N> = (u8, &'a Vec<(N, u32)>, u32);

/// One family's networks as they go into its trie and its host table.
struct Networks<TrieKey, HostKey> {
    trie_keys: Vec<TrieKey>,
    trie_values: Vec<AddressClass>,
    host_keys: Vec<HostKey>,
    host_values: Vec<AddressClass>,
}

impl<T, H> Networks<T, H> {
    /// The networks of both directions (`(direction, list, LOOKUP_HOSTS_*)`):
    /// hosts into the host table where `lookups` has its bit, the rest into
    /// the trie; `value(FILTER_*, class)` is what either holds.
    fn add<N: Copy + Into<IpNet>>(
        &mut self,
        lists: [AddressList<'_, N>; 2],
        lookups: u32,
        value: &dyn Fn(usize, u32) -> AddressClass,
        trie_key: impl Fn(u8, N) -> T,
        host_key: impl Fn(u8, N) -> H,
    ) {
        for (field, (direction, list, hosts)) in [FILTER_SRC, FILTER_DST].into_iter().zip(lists) {
            for &(net, class) in list {
                if lookups & hosts != 0 && is_host(&net.into()) {
                    self.host_keys.push(host_key(direction, net));
                    self.host_values.push(value(field, class));
                } else {
                    self.trie_keys.push(trie_key(direction, net));
                    self.trie_values.push(value(field, class));
                }
            }
        }
    }
}

impl<T, H> Default for Networks<T, H> {
    fn default() -> Self {
        Networks {
            trie_keys: Vec::new(),
            trie_values: Vec::new(),
            host_keys: Vec::new(),
            host_values: Vec::new(),
        }
    }
}

/// Writes `values` into consecutive slots of an array map from `first` on,
/// in one batch.
fn write_array<V: plain::Plain>(map: &dyn MapCore, first: u32, values: &[V]) -> Result<()> {
    let keys: Vec<u32> = (first..first + values.len() as u32).collect();
    write_entries(map, &keys, values)
}

/// Puts `keys[i]` → `values[i]` into `map`: in batches where the kernel
/// has them for this map type, else one by one.
fn write_entries<K: plain::Plain, V: plain::Plain>(
    map: &dyn MapCore,
    keys: &[K],
    values: &[V],
) -> Result<()> {
    if keys.is_empty() {
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
    // LPM tries have no batch operations before 6.x.
    for (key, value) in keys.iter().zip(values) {
        map.update(bytes_of(key), bytes_of(value), MapFlags::ANY)?;
    }
    Ok(())
}

/// Deletes `keys` from `map`, in batches where the kernel has them.
fn delete_entries<K: plain::Plain>(map: &dyn MapCore, keys: &[K]) -> Result<()> {
    if keys.is_empty() {
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

/// The bytes of a key or value shared with the BPF side.
pub(super) fn bytes_of<T: plain::Plain>(value: &T) -> &[u8] {
    // SAFETY: the shared types are repr(C) plain data with explicit padding.
    unsafe { plain::as_bytes(value) }
}

fn slice_bytes<T: plain::Plain>(values: &[T]) -> &[u8] {
    // SAFETY: as `bytes_of`, for a slice.
    unsafe { plain::as_bytes(values) }
}
