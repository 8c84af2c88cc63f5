//! Puts rule sets into the program's maps, and swaps them live.
//!
//! Rules live in two generations; the `rule_generation` map says which one
//! packets use. A new set is written into the idle generation while packets
//! keep using the old one, then one map update switches every later packet
//! over: no packet ever sees half a set. After the switch we wait for an RCU
//! grace period — every packet that read the old generation number is done —
//! and only then clear the old generation and zero the counters of rules that
//! are gone, so the idle generation is always empty and no late packet counts
//! on a rule id that is handed out again.

use std::collections::HashMap;
use std::net::IpAddr;

use anyhow::{bail, Context, Result};
use libbpf_rs::{MapCore, MapFlags};

use crate::abi::*;
use crate::grace::GracePeriod;
use crate::rules::{Action, Direction, Match, Rule, SourcedRule, Transport};
use crate::skel::XdpHelloMaps;

/// The maps a rule set lives in.
pub struct RuleMaps<'a> {
    pub v4: &'a dyn MapCore,
    pub v6: &'a dyn MapCore,
    pub ports: &'a dyn MapCore,
    pub icmp: &'a dyn MapCore,
    pub generation: &'a dyn MapCore,
    pub kinds: &'a dyn MapCore,
    pub hits: &'a dyn MapCore,
}

impl<'a> RuleMaps<'a> {
    pub fn of(maps: &'a XdpHelloMaps<'_>) -> Self {
        RuleMaps {
            v4: &maps.rules_v4,
            v6: &maps.rules_v6,
            ports: &maps.port_rules,
            icmp: &maps.icmp_rules,
            generation: &maps.rule_generation,
            kinds: &maps.rule_kinds,
            hits: &maps.rule_hits,
        }
    }
}

/// A rule in force, with its id (the index of its hit counter).
#[derive(Clone, Debug)]
pub struct ActiveRule {
    pub id: u32,
    pub rule: SourcedRule,
}

/// The rule sets in the kernel, and which rule has which id.
#[derive(Default)]
pub struct Firewall {
    /// The generation packets use now.
    generation: u32,
    v4_keys: [Vec<Ipv4RuleKey>; 2],
    v6_keys: [Vec<Ipv6RuleKey>; 2],
    /// Ids stay with a rule across swaps, so its counter keeps counting.
    ids: HashMap<Rule, u32>,
    free_ids: Vec<u32>,
    /// Made at the first swap (creating it needs the same privileges).
    grace: Option<GracePeriod>,
    next_id: u32,
    active: Vec<ActiveRule>,
}

impl Firewall {
    pub fn new() -> Self {
        Self::default()
    }

    /// The rules in force, in the order they were given.
    pub fn rules(&self) -> &[ActiveRule] {
        &self.active
    }

    /// The generation packets use now.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Makes `rules` the rule set packets see, in one atomic switch.
    pub fn install(&mut self, maps: &RuleMaps<'_>, rules: &[SourcedRule]) -> Result<()> {
        let idle = 1 - self.generation;
        let address_rules = |v6: bool| {
            rules
                .iter()
                .filter(|r| matches!(r.rule.matches, Match::Address(_, net) if net.addr().is_ipv6() == v6))
                .count()
        };
        let per_generation = (MAX_ADDRESS_RULES / GENERATIONS) as usize;
        if address_rules(false) > per_generation || address_rules(true) > per_generation {
            bail!("at most {per_generation} IPv4 and {per_generation} IPv6 address rules fit");
        }

        let active = self.assign_ids(rules)?;
        self.write_generation(maps, idle, &active)?;
        maps.generation
            .update(&0u32.to_ne_bytes(), &idle.to_ne_bytes(), MapFlags::ANY)
            .context("switching to the new rule generation")?;
        let old = std::mem::replace(&mut self.generation, idle);
        self.active = active;

        // From here on no packet can still be using the old generation.
        let grace = match self.grace.take() {
            Some(grace) => grace,
            None => GracePeriod::new()?,
        };
        grace.wait()?;
        self.grace = Some(grace);
        self.clear_generation(maps, old)?;
        self.release_ids(maps)
    }

    /// Gives every rule its id: the one it had, else a free one.
    fn assign_ids(&mut self, rules: &[SourcedRule]) -> Result<Vec<ActiveRule>> {
        let mut active = Vec::with_capacity(rules.len());
        for rule in rules {
            let id = match self.ids.get(&rule.rule) {
                Some(&id) => id,
                None => {
                    let id = match self.free_ids.pop() {
                        Some(id) => id,
                        None if self.next_id < MAX_RULES => {
                            self.next_id += 1;
                            self.next_id - 1
                        }
                        None => bail!("more than {MAX_RULES} rules"),
                    };
                    self.ids.insert(rule.rule, id);
                    id
                }
            };
            active.push(ActiveRule {
                id,
                rule: rule.clone(),
            });
        }
        Ok(active)
    }

    /// Frees the ids of rules that are gone, zeroing their counters so the
    /// next rule to get one starts from nothing.
    fn release_ids(&mut self, maps: &RuleMaps<'_>) -> Result<()> {
        let kept: HashMap<Rule, u32> = self.active.iter().map(|a| (a.rule.rule, a.id)).collect();
        let zeros = vec![vec![0u8; 8]; libbpf_rs::num_possible_cpus()?];
        for (rule, id) in self.ids.drain() {
            if !kept.contains_key(&rule) {
                maps.hits
                    .update_percpu(&id.to_ne_bytes(), &zeros, MapFlags::ANY)
                    .context("resetting a rule counter")?;
                self.free_ids.push(id);
            }
        }
        self.ids = kept;
        Ok(())
    }

    fn clear_generation(&mut self, maps: &RuleMaps<'_>, generation: u32) -> Result<()> {
        let g = generation as usize;
        for key in self.v4_keys[g].drain(..) {
            maps.v4
                .delete(bytes_of(&key))
                .context("clearing IPv4 rules")?;
        }
        for key in self.v6_keys[g].drain(..) {
            maps.v6
                .delete(bytes_of(&key))
                .context("clearing IPv6 rules")?;
        }
        Ok(())
    }

    /// Writes the set into the idle `generation`: address rules key by key
    /// into the (empty) tries, the port and ICMP tables whole.
    fn write_generation(
        &mut self,
        maps: &RuleMaps<'_>,
        generation: u32,
        rules: &[ActiveRule],
    ) -> Result<()> {
        let first_port = port_slot(generation, false, 0, 0);
        let mut ports = vec![RuleAction::default(); (PORT_SLOTS / GENERATIONS) as usize];
        let first_icmp = icmp_slot(generation, false, 0);
        let mut icmp = vec![RuleAction::default(); (ICMP_SLOTS / GENERATIONS) as usize];

        for active in rules {
            let action = RuleAction {
                rule_id: active.id,
                verdict: match active.rule.rule.action {
                    Action::Allow => XDP_PASS as u32,
                    Action::Deny => XDP_DROP as u32,
                },
            };
            match active.rule.rule.matches {
                Match::Address(dir, net) => {
                    let prefixlen = RULE_KEY_PREFIX_BITS + net.prefix_len() as u32;
                    let (generation_byte, direction) = (generation as u8, direction_code(dir));
                    let g = generation as usize;
                    match net.network() {
                        IpAddr::V4(addr) => {
                            let key = Ipv4RuleKey {
                                prefixlen,
                                generation: generation_byte,
                                direction,
                                addr: addr.octets(),
                                _pad: [0; 2],
                            };
                            add_address(maps.v4, &mut self.v4_keys[g], key, &action, active)?;
                        }
                        IpAddr::V6(addr) => {
                            let key = Ipv6RuleKey {
                                prefixlen,
                                generation: generation_byte,
                                direction,
                                addr: addr.octets(),
                                _pad: [0; 2],
                            };
                            add_address(maps.v6, &mut self.v6_keys[g], key, &action, active)?;
                        }
                    }
                }
                Match::Port(transport, dir, lo, hi) => {
                    for port in lo..=hi {
                        let slot = port_slot(
                            generation,
                            transport == Transport::Udp,
                            direction_code(dir),
                            port,
                        );
                        ports[(slot - first_port) as usize] = action;
                    }
                }
                Match::Icmp(v6, kind) => {
                    let kind = kind.map_or(ICMP_ANY_TYPE, u32::from);
                    icmp[(icmp_slot(generation, v6, kind) - first_icmp) as usize] = action;
                }
            }
        }
        write_array(maps.ports, first_port, &ports).context("writing the port rules")?;
        write_array(maps.icmp, first_icmp, &icmp).context("writing the ICMP rules")?;
        let kinds = rules.iter().fold(0, |kinds, active| {
            kinds | kind_bit(&active.rule.rule.matches)
        });
        maps.kinds
            .update(
                &generation.to_ne_bytes(),
                &kinds.to_ne_bytes(),
                MapFlags::ANY,
            )
            .context("writing the rule kinds")?;
        Ok(())
    }

    /// Each rule in force with its hits so far, summed over CPUs.
    pub fn hits(&self, maps: &RuleMaps<'_>) -> Result<Vec<(ActiveRule, u64)>> {
        self.active
            .iter()
            .map(|active| {
                let per_cpu = maps
                    .hits
                    .lookup_percpu(&active.id.to_ne_bytes(), MapFlags::ANY)
                    .context("reading rule counters")?
                    .unwrap_or_default();
                let hits = per_cpu
                    .iter()
                    .filter_map(|b| b.get(..8))
                    .map(|b| u64::from_ne_bytes(b.try_into().unwrap()))
                    .sum();
                Ok((active.clone(), hits))
            })
            .collect()
    }
}

/// Adds one address rule to an LPM trie and remembers its key, so the next
/// swap can clear it.
fn add_address<K: plain::Plain>(
    map: &dyn MapCore,
    installed: &mut Vec<K>,
    key: K,
    action: &RuleAction,
    active: &ActiveRule,
) -> Result<()> {
    map.update(bytes_of(&key), bytes_of(action), MapFlags::ANY)
        .with_context(|| format!("adding '{}'", active.rule.rule))?;
    installed.push(key);
    Ok(())
}

/// The direction as the BPF side spells it.
fn direction_code(dir: Direction) -> u8 {
    match dir {
        Direction::Src => DIRECTION_SRC,
        Direction::Dst => DIRECTION_DST,
    }
}

/// The `KIND_*` bit of a rule, which tells packets to look up its map.
fn kind_bit(matches: &Match) -> u32 {
    match *matches {
        Match::Address(dir, net) => match (net.addr().is_ipv6(), dir) {
            (false, Direction::Src) => KIND_V4_SRC,
            (false, Direction::Dst) => KIND_V4_DST,
            (true, Direction::Src) => KIND_V6_SRC,
            (true, Direction::Dst) => KIND_V6_DST,
        },
        Match::Port(Transport::Tcp, ..) => KIND_TCP_PORTS,
        Match::Port(Transport::Udp, ..) => KIND_UDP_PORTS,
        Match::Icmp(false, _) => KIND_ICMP,
        Match::Icmp(true, _) => KIND_ICMPV6,
    }
}

/// Writes `values` into consecutive slots of an array map from `first` on,
/// in one batch.
fn write_array(map: &dyn MapCore, first: u32, values: &[RuleAction]) -> Result<()> {
    let keys: Vec<u8> = (first..first + values.len() as u32)
        .flat_map(u32::to_ne_bytes)
        .collect();
    // SAFETY: RuleAction is repr(C) plain data without padding.
    let values = unsafe { plain::as_bytes(values) };
    map.update_batch(
        &keys,
        values,
        (keys.len() / 4) as u32,
        MapFlags::ANY,
        MapFlags::ANY,
    )?;
    Ok(())
}

/// The bytes of a key or value shared with the BPF side.
fn bytes_of<T: plain::Plain>(value: &T) -> &[u8] {
    // SAFETY: the shared types are repr(C) plain data with explicit padding.
    unsafe { plain::as_bytes(value) }
}
