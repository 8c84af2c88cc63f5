//! How a rule set lies in the maps: the port, ICMP and protocol tables of a
//! generation, LPM trie keys, `KIND_*` bits, and the bytes written.

use std::ops::RangeInclusive;

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, MapFlags};

use super::{ActiveRule, RuleMaps};
use crate::abi::*;
use crate::rules::{Action, Direction, Match, Transport};

/// A generation's slots of the port, ICMP and protocol tables, built whole
/// and written in one batch each.
pub(super) struct Tables {
    generation: u32,
    ports: Vec<RuleAction>,
    icmp: Vec<RuleAction>,
    proto: Vec<RuleAction>,
}

impl Tables {
    /// Every slot of `generation` empty.
    pub(super) fn new(generation: u32) -> Self {
        let empty = |slots: u32| vec![RuleAction::default(); (slots / GENERATIONS) as usize];
        Tables {
            generation,
            ports: empty(PORT_SLOTS),
            icmp: empty(ICMP_SLOTS),
            proto: empty(PROTO_SLOTS),
        }
    }

    fn first_port(&self) -> u32 {
        port_slot(self.generation, false, 0, 0)
    }

    fn first_icmp(&self) -> u32 {
        icmp_slot(self.generation, false, 0)
    }

    fn first_proto(&self) -> u32 {
        proto_slot(self.generation, 0)
    }

    /// Puts `action` in the slot of every port in `ports`.
    pub(super) fn set_ports(
        &mut self,
        transport: Transport,
        direction: Direction,
        ports: RangeInclusive<u16>,
        action: RuleAction,
    ) {
        let (udp, direction) = (transport == Transport::Udp, direction_code(direction));
        let first_slot = self.first_port();
        for port in ports {
            let slot = port_slot(self.generation, udp, direction, port);
            self.ports[(slot - first_slot) as usize] = action;
        }
    }

    /// Puts `action` in the slot of `icmp_type` (`None`: any type).
    pub(super) fn set_icmp(&mut self, v6: bool, icmp_type: Option<u8>, action: RuleAction) {
        let icmp_type = icmp_type.map_or(ICMP_ANY_TYPE, u32::from);
        let slot = icmp_slot(self.generation, v6, icmp_type);
        let first_slot = self.first_icmp();
        self.icmp[(slot - first_slot) as usize] = action;
    }

    /// Puts `action` in the slot of IP protocol `number`.
    pub(super) fn set_proto(&mut self, number: u8, action: RuleAction) {
        let slot = proto_slot(self.generation, number);
        let first_slot = self.first_proto();
        self.proto[(slot - first_slot) as usize] = action;
    }

    pub(super) fn write(&self, maps: &RuleMaps<'_>) -> Result<()> {
        write_array(maps.ports, self.first_port(), &self.ports)
            .context("writing the port rules")?;
        write_array(maps.icmp, self.first_icmp(), &self.icmp).context("writing the ICMP rules")?;
        write_array(maps.proto, self.first_proto(), &self.proto)
            .context("writing the protocol rules")
    }
}

/// The XDP action a rule's action stands for.
pub(super) fn verdict_of(action: Action) -> u32 {
    match action {
        Action::Allow => XDP_PASS as u32,
        Action::Deny => XDP_DROP as u32,
    }
}

/// Adds one key to an LPM trie and remembers it.
pub(super) fn add_key<K: plain::Plain>(
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
pub(super) fn direction_code(dir: Direction) -> u8 {
    match dir {
        Direction::Src => DIRECTION_SRC,
        Direction::Dst => DIRECTION_DST,
    }
}

/// The `KIND_*` bit of a rule, which tells packets to look up its map.
pub(super) fn kind_bit(matches: &Match) -> u32 {
    match *matches {
        Match::Address(dir, net) => match (net.addr().is_ipv6(), dir) {
            (false, Direction::Src) => KIND_V4_SRC,
            (false, Direction::Dst) => KIND_V4_DST,
            (true, Direction::Src) => KIND_V6_SRC,
            (true, Direction::Dst) => KIND_V6_DST,
        },
        Match::Port { transport, .. } => match transport {
            Transport::Tcp => KIND_TCP_PORTS,
            Transport::Udp => KIND_UDP_PORTS,
        },
        Match::Icmp { v6: false, .. } => KIND_ICMP,
        Match::Icmp { v6: true, .. } => KIND_ICMPV6,
        Match::Proto(_) => KIND_PROTO,
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
pub(super) fn bytes_of<T: plain::Plain>(value: &T) -> &[u8] {
    // SAFETY: the shared types are repr(C) plain data with explicit padding.
    unsafe { plain::as_bytes(value) }
}
