//! Puts compiled rule sets into the program's maps, and swaps them live.
//!
//! Rules live in two generations; the `rule_generation` map says which one
//! packets use. A new set is written into the idle generation while packets
//! keep using the old one, then one map update switches every later packet
//! over: no packet ever sees half a set. After the switch we wait for an RCU
//! grace period — every packet that read the old generation number is done —
//! and only then clear the old generation and zero the counters of rules that
//! are gone, so the idle generation is always empty and no late packet
//! counts on a counter that is handed out again. A switch that leaves
//! nothing to clear (the first) waits before the next write instead.
//!
//! Two numbers name a rule. Its *id*, shown to the user, names one rule for
//! the whole run: a rule that stays keeps it, a new rule gets one never used
//! before. Its *slot* is the index of its hit counter, and what the kernel
//! puts in a notice's `rule_id`: there are [`MAX_RULES`] slots, enough for a
//! full set in each generation at once, so any two sets that each fit can
//! replace each other. A rule that stays keeps its slot too (and so its
//! counter); the slots of rules gone are handed out again, the longest-free
//! first, once never-used ones run out. Until then slot and id are the same
//! number; [`Firewall::rule_of_slot`] translates either way.

mod array_window;
mod hits;
mod tables;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

// Rules are hashed several times each per install: FxHash, not SipHash
// (the keys are our own rules, not input an attacker picks per packet).
use rustc_hash::FxHashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use libbpf_rs::{MapCore, MapFlags};

use crate::abi::*;
use crate::classify::Compiled;
use crate::grace::GracePeriod;
use crate::iface;
use crate::policy::{self, Rule, RuleError, SourcedRule, Unparsed, MAX_RULES_PER_SET};
use crate::skel::XdpHelloMaps;
pub use hits::HitCounters;
use tables::{verdict_of, Installed};

/// The maps a rule set lives in.
pub struct RuleMaps<'a> {
    pub buckets: &'a dyn MapCore,
    pub v4_ranges: &'a dyn MapCore,
    pub v6_ranges: &'a dyn MapCore,
    pub ports: &'a dyn MapCore,
    pub proto: &'a dyn MapCore,
    pub icmp: &'a dyn MapCore,
    pub flags: &'a dyn MapCore,
    pub ifaces: &'a dyn MapCore,
    pub entries: &'a dyn MapCore,
    pub plans: &'a dyn MapCore,
    pub generation: &'a dyn MapCore,
    pub hits: &'a dyn MapCore,
}

impl<'a> RuleMaps<'a> {
    pub fn of(maps: &'a XdpHelloMaps<'_>) -> Self {
        RuleMaps {
            buckets: &maps.address_buckets,
            v4_ranges: &maps.v4_ranges,
            v6_ranges: &maps.v6_ranges,
            ports: &maps.port_classes,
            proto: &maps.proto_classes,
            icmp: &maps.icmp_classes,
            flags: &maps.flag_classes,
            ifaces: &maps.iface_classes,
            entries: &maps.class_rules,
            plans: &maps.plans,
            generation: &maps.rule_generation,
            hits: &maps.rule_hits,
        }
    }
}

/// A rule set read and compiled: all that can be wrong with it is found
/// before the kernel sees any of it.
pub struct RuleSet {
    /// Shared with the firewall's bookkeeping while they are in force.
    pub rules: Vec<Arc<SourcedRule>>,
    pub compiled: Compiled,
}

impl RuleSet {
    /// The rules of the `--rule` flags, then of the file, compiled, with
    /// interface names as this network namespace knows them.
    pub fn load(flags: &[String], file: Option<&Path>) -> Result<RuleSet, RuleError> {
        let rules = policy::load(flags, file)?;
        RuleSet::of(rules)
    }

    /// Parses and compiles `rules` on a thread of its own while `meanwhile`
    /// runs on this one, and returns both outcomes, for the caller to tell
    /// the rules' first: the user hears of their input before anything
    /// else. At start-up `meanwhile` is the program's load, whose verifier
    /// takes about as long as parsing and compiling 10,000 rules, so their
    /// time hides behind it.
    pub fn compile_during<T>(
        rules: Unparsed,
        meanwhile: impl FnOnce() -> Result<T>,
    ) -> Result<(Result<RuleSet, RuleError>, Result<T>)> {
        std::thread::scope(|scope| {
            let compiling = std::thread::Builder::new()
                .name("xdp-hello-compile".into())
                .spawn_scoped(scope, || RuleSet::of(rules.parse(&mut Err)?))
                .context("starting the rule compiler's thread")?;
            let done = meanwhile();
            match compiling.join() {
                Ok(set) => Ok((set, done)),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    pub fn of(rules: Vec<SourcedRule>) -> Result<RuleSet, RuleError> {
        let compiled = Compiled::new(&rules, &|name| iface::index_of(name).ok())
            .map_err(|err| with_origin(err, &rules))?;
        let rules = rules.into_iter().map(Arc::new).collect();
        Ok(RuleSet { rules, compiled })
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// The compiler names a rule by its number ("rule 3: …"); users know it
/// by where they wrote it.
pub fn with_origin(err: RuleError, rules: &[SourcedRule]) -> RuleError {
    let numbered = err.0.strip_prefix("rule ").and_then(|rest| {
        let (number, why) = rest.split_once(": ")?;
        let rule = rules.get(number.parse::<usize>().ok()?.checked_sub(1)?)?;
        Some(format!(
            "{}: {}: {why}",
            rule.origin,
            policy::quote(&rule.rule.to_string())
        ))
    });
    numbered.map_or(err, RuleError)
}

/// A rule in force, with its id: the number that names it to the user for
/// the whole run.
#[derive(Clone, Debug)]
pub struct ActiveRule {
    pub id: u32,
    pub rule: Arc<SourcedRule>,
}

/// A rule in force as the firewall knows it across sets: by its text (not
/// where it was written), and which copy of it (a rule may be given twice).
#[derive(Clone, Debug)]
struct RuleKey(Arc<SourcedRule>, usize);

impl PartialEq for RuleKey {
    fn eq(&self, other: &Self) -> bool {
        self.1 == other.1 && self.0.rule == other.0.rule
    }
}

impl Eq for RuleKey {}

impl std::hash::Hash for RuleKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.rule.hash(state);
        self.1.hash(state);
    }
}

/// Where a rule in force is: its id and its counter slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Place {
    id: u32,
    slot: u32,
}

/// A set placed but not yet in force: its rules' places, and what placing
/// them takes from the free slots and ids.
struct Placing {
    rules: Vec<(ActiveRule, RuleKey, Place)>,
    /// Never-used slots taken, from `next_slot` on.
    fresh: u32,
    /// Freed slots taken, from the front of `free_slots`.
    reused: usize,
    next_id: u32,
}

/// The rule sets in the kernel, and which rule has which id and slot.
#[derive(Default)]
pub struct Firewall {
    /// The generation packets use now.
    generation: u32,
    /// The keys each generation holds, to clear it when it goes idle.
    installed: [Installed; 2],
    /// The rules in force, in the order they were given, and their slots.
    active: Vec<ActiveRule>,
    active_slots: Vec<u32>,
    /// The rules in force by rule (and which copy of it: a rule may be
    /// given twice): one that stays keeps its place.
    places: FxHashMap<RuleKey, Place>,
    /// What each slot the kernel may still report stands for: the rules in
    /// force, and rules gone whose slot is not handed out again yet (their
    /// notices may still be in the ring).
    by_slot: HashMap<u32, ActiveRule>,
    /// Slots free again, the longest-free first.
    free_slots: VecDeque<u32>,
    /// Slots from here to MAX_RULES were never used.
    next_slot: u32,
    /// The id the next new rule gets.
    next_id: u32,
    /// Made at the first swap (creating it needs the same privileges).
    grace: Option<GracePeriod>,
    /// The last switch did not wait its grace period: packets may still be
    /// reading the idle generation.
    idle_maybe_read: bool,
    counters: HitCounters,
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

    /// The rule a notice's `rule_id` (a counter slot) stands for, with the
    /// id to show for it; `None` for `RULE_NONE`. Call it for every notice
    /// before showing its rule: slots are reused across reloads, ids never.
    pub fn rule_of_slot(&self, slot: u32) -> Option<&ActiveRule> {
        self.by_slot.get(&slot)
    }

    /// The id to show for a notice's `rule_id`: [`RULE_NONE`] stays itself,
    /// a slot no rule ever had too.
    pub fn shown_rule_id(&self, slot: u32) -> u32 {
        self.rule_of_slot(slot).map_or(slot, |active| active.id)
    }

    /// The counter slot of the rule in force with id `id`.
    pub fn slot_of(&self, id: u32) -> Option<u32> {
        self.active
            .iter()
            .position(|active| active.id == id)
            .map(|index| self.active_slots[index])
    }

    /// Makes `set` the rule set packets see, in one atomic switch.
    pub fn install(&mut self, maps: &RuleMaps<'_>, set: &RuleSet) -> Result<()> {
        let (rules, compiled) = (&set.rules, &set.compiled);
        if rules.len() > MAX_RULES_PER_SET {
            bail!(
                "{} rules, more than the {MAX_RULES_PER_SET} a rule set may hold",
                rules.len()
            );
        }
        let idle = 1 - self.generation;
        let plan = self.plan(rules)?;
        if self.idle_maybe_read {
            self.wait_grace()?;
            self.idle_maybe_read = false;
        }
        // Left over only where an earlier write failed half-way.
        self.installed[idle as usize].clear(maps)?;
        let slots: Vec<u32> = plan.rules.iter().map(|(_, _, place)| place.slot).collect();
        let actions: Vec<(u8, bool)> = rules
            .iter()
            .map(|rule| (verdict_of(rule.rule.action), rule.rule.log))
            .collect();
        self.installed[idle as usize].write(maps, idle, compiled, &slots, &actions)?;
        maps.generation
            .update(&0u32.to_ne_bytes(), &idle.to_ne_bytes(), MapFlags::ANY)
            .context("switching to the new rule generation")?;
        let old = std::mem::replace(&mut self.generation, idle);
        let gone = self.commit(plan);

        if self.installed[old as usize].is_empty() && gone.is_empty() {
            // Nothing to clear or free (the first install, or one after an
            // empty set): the wait can be left to the next install, before
            // it writes into the generation packets may still be reading.
            self.idle_maybe_read = true;
            return Ok(());
        }
        // Should the wait fail, the next install waits before it writes.
        self.idle_maybe_read = true;
        self.wait_grace()?;
        self.idle_maybe_read = false;
        // From here on no packet can still be using the old generation.
        self.installed[old as usize].clear(maps)?;
        self.release(maps, gone)
    }

    /// Returns once no packet can still be using a generation it read
    /// before the call.
    fn wait_grace(&mut self) -> Result<()> {
        let grace = match self.grace.take() {
            Some(grace) => grace,
            None => GracePeriod::new()?,
        };
        grace.wait()?;
        self.grace = Some(grace);
        Ok(())
    }

    /// Places every rule: the one it has, else a new id and a free slot
    /// (never-used slots first). Changes nothing yet.
    fn plan(&self, rules: &[Arc<SourcedRule>]) -> Result<Placing> {
        let mut fresh = self.next_slot..MAX_RULES;
        let mut free = self.free_slots.iter();
        let mut plan = Placing {
            rules: Vec::with_capacity(rules.len()),
            fresh: 0,
            reused: 0,
            next_id: self.next_id,
        };
        // A rule given twice is two keys, (rule, 0) and (rule, 1): no key
        // comes twice in one set.
        let mut copies: FxHashMap<&Rule, usize> = FxHashMap::default();
        for rule in rules {
            let copy = copies.entry(&rule.rule).or_default();
            let key = RuleKey(rule.clone(), *copy);
            *copy += 1;
            let place = match self.places.get(&key) {
                Some(&place) => place,
                None => {
                    let slot = if let Some(slot) = fresh.next() {
                        plan.fresh += 1;
                        slot
                    } else if let Some(&slot) = free.next() {
                        plan.reused += 1;
                        slot
                    } else {
                        bail!("no free rule counter left (all {MAX_RULES} in use)");
                    };
                    let place = Place {
                        id: plan.next_id,
                        slot,
                    };
                    plan.next_id += 1;
                    place
                }
            };
            let active = ActiveRule {
                id: place.id,
                rule: rule.clone(),
            };
            plan.rules.push((active, key, place));
        }
        Ok(plan)
    }

    /// Makes `plan` the set in force (it is in the kernel now); returns the
    /// slots of the rules that are gone.
    fn commit(&mut self, plan: Placing) -> Vec<u32> {
        self.next_slot += plan.fresh;
        self.free_slots.drain(..plan.reused);
        self.next_id = plan.next_id;
        let mut places = FxHashMap::with_capacity_and_hasher(plan.rules.len(), Default::default());
        self.active.clear();
        self.active_slots.clear();
        for (active, key, place) in plan.rules {
            self.by_slot.insert(place.slot, active.clone());
            places.insert(key, place);
            self.active_slots.push(place.slot);
            self.active.push(active);
        }
        let old = std::mem::replace(&mut self.places, places);
        old.into_iter()
            .filter(|(rule, _)| !self.places.contains_key(rule))
            .map(|(_, place)| place.slot)
            .collect()
    }

    /// Frees the slots of rules gone (no packet can count on them any
    /// more), their counters from zero again.
    fn release(&mut self, maps: &RuleMaps<'_>, gone: Vec<u32>) -> Result<()> {
        self.counters.reset(maps.hits, &gone)?;
        self.free_slots.extend(gone);
        Ok(())
    }

    /// Each rule in force with its hits so far, summed over CPUs.
    pub fn hits(&self, maps: &RuleMaps<'_>) -> Result<Vec<(ActiveRule, RuleHits)>> {
        let hits = self.counters.read(maps.hits, &self.active_slots)?;
        Ok(self.active.iter().cloned().zip(hits).collect())
    }

    /// How the hits are read, for a thread with a handle of its own on the
    /// counter map (metrics, status): taken again after each install.
    pub fn hit_counters(&self) -> &HitCounters {
        &self.counters
    }

    /// The hits on counter slot `slot` since it was last freed, whether a
    /// rule holds it or not.
    pub fn slot_hits(&self, maps: &RuleMaps<'_>, slot: u32) -> Result<RuleHits> {
        Ok(self.counters.read(maps.hits, &[slot])?[0])
    }
}
