//! The firewall's decision for one parsed packet.
//!
//! Each kind of rule gives at most one match: the longest source prefix, the
//! longest destination prefix, the exact protocol, the exact source and
//! destination port, the exact ICMP type (else "any type"). A deny among them
//! wins; else an allow does; else the default policy. Non-IP traffic (ARP,
//! LLDP, …) always passes.
//!
//! Fail closed: while any rule is in force, an IP frame the walk could not
//! read (cut inside the IP header, malformed, VLAN tags past the limit) is
//! dropped, and a packet whose transport header cannot be read (a tiny
//! fragment, an extension chain past the limit) is dropped when rules that
//! need that header are in force.

use core::ops::ControlFlow;

use crate::abi::*;
use crate::maps::{
    icmp_rules, lookup, port_rules, proto_rules, rule_generation, rule_kinds, rules_v4, rules_v6,
};

/// Flags of a packet whose transport header could not be read.
const UNREADABLE: u8 = FLAG_TRUNCATED | FLAG_EXT_LIMIT;
/// Every kind of rule that needs the transport header.
const TRANSPORT_KINDS: u32 = KIND_TCP_PORTS | KIND_UDP_PORTS | KIND_ICMP | KIND_ICMPV6;

/// The verdict for `notice` and the rule that decided it (or `RULE_NONE`).
#[inline(always)]
pub fn decide(notice: &Notice, config: &Config) -> (u8, u32) {
    let default = (config.default_verdict as u8, RULE_NONE);
    let Some(generation) = lookup::<_, u32, u32>(&rule_generation, &0) else {
        return default;
    };
    // Kinds without rules cost nothing: no lookup at all.
    let kinds = lookup::<_, u32, u32>(&rule_kinds, &generation).unwrap_or(u32::MAX);
    // What the stack may still deliver as IP, but no rule can judge.
    let unjudgeable = if kinds != 0 {
        (XDP_DROP, RULE_NONE)
    } else {
        default
    };

    if notice.ip_version == 0 {
        return match notice.ether_type {
            ETH_P_IP | ETH_P_IPV6 | ETH_P_8021Q | ETH_P_8021AD => unjudgeable,
            _ => (XDP_PASS, RULE_NONE),
        };
    }
    if notice.flags & FLAG_MALFORMED != 0 {
        return unjudgeable;
    }

    match look_up_rules(notice, generation, kinds) {
        ControlFlow::Break(denied_by) => (XDP_DROP, denied_by),
        ControlFlow::Continue(matches) => match matches.allowed {
            Some(rule_id) => (XDP_PASS, rule_id),
            None => default,
        },
    }
}

/// What the lookups found: a deny ends them, the first allow counts if no
/// deny comes.
struct Matches {
    allowed: Option<u32>,
}

impl Matches {
    /// Takes one kind's match, if any: breaks with the rule's id on a deny,
    /// remembers the first allow.
    #[inline(always)]
    fn consider(&mut self, action: Option<RuleAction>) -> ControlFlow<u32> {
        if let Some(action) = action {
            if action.verdict == XDP_DROP as u32 {
                return ControlFlow::Break(action.rule_id);
            }
            if action.verdict == XDP_PASS as u32 && self.allowed.is_none() {
                self.allowed = Some(action.rule_id);
            }
        }
        ControlFlow::Continue(())
    }
}

/// Looks up every kind of rule `kinds` has for the fields of the IP packet
/// `notice`, and returns what they found; breaks on a deny with its rule's
/// id, or with `RULE_NONE` on a transport header that rules in force need
/// and the walk could not read.
#[inline(always)]
fn look_up_rules(notice: &Notice, generation: u32, kinds: u32) -> ControlFlow<u32, Matches> {
    let mut matches = Matches { allowed: None };
    let (src_kind, dst_kind) = if notice.ip_version == 4 {
        (KIND_V4_SRC, KIND_V4_DST)
    } else {
        (KIND_V6_SRC, KIND_V6_DST)
    };
    if kinds & src_kind != 0 {
        matches.consider(address_rule(notice, generation, DIRECTION_SRC))?;
    }
    if kinds & dst_kind != 0 {
        matches.consider(address_rule(notice, generation, DIRECTION_DST))?;
    }
    let inside_chain = is_extension_header(notice.ip_version, notice.l4_proto);
    if notice.depth < DEPTH_L4 && notice.flags & UNREADABLE != 0 {
        let needed = match notice.l4_proto {
            IPPROTO_TCP => KIND_TCP_PORTS,
            IPPROTO_UDP => KIND_UDP_PORTS,
            IPPROTO_ICMP if notice.ip_version == 4 => KIND_ICMP,
            IPPROTO_ICMPV6 if notice.ip_version == 6 => KIND_ICMPV6,
            // Stopped inside the extension chain: the transport is unknown.
            _ if inside_chain => TRANSPORT_KINDS | KIND_PROTO,
            _ => 0,
        };
        if kinds & needed != 0 {
            return ControlFlow::Break(RULE_NONE);
        }
    }
    if !inside_chain && kinds & KIND_PROTO != 0 {
        matches.consider(proto_rule(generation, notice.l4_proto))?;
    }
    if notice.depth >= DEPTH_L4 {
        match notice.l4_proto {
            IPPROTO_TCP if kinds & KIND_TCP_PORTS != 0 => {
                matches.consider(port_rule(generation, false, DIRECTION_SRC, notice.src_port))?;
                matches.consider(port_rule(generation, false, DIRECTION_DST, notice.dst_port))?;
            }
            IPPROTO_UDP if kinds & KIND_UDP_PORTS != 0 => {
                matches.consider(port_rule(generation, true, DIRECTION_SRC, notice.src_port))?;
                matches.consider(port_rule(generation, true, DIRECTION_DST, notice.dst_port))?;
            }
            IPPROTO_ICMP if notice.ip_version == 4 && kinds & KIND_ICMP != 0 => {
                matches.consider(icmp_rule(generation, false, notice.icmp_type))?;
            }
            IPPROTO_ICMPV6 if notice.ip_version == 6 && kinds & KIND_ICMPV6 != 0 => {
                matches.consider(icmp_rule(generation, true, notice.icmp_type))?;
            }
            _ => {}
        }
    }
    ControlFlow::Continue(matches)
}

#[inline(always)]
fn address_rule(notice: &Notice, generation: u32, direction: u8) -> Option<RuleAction> {
    let addr = if direction == DIRECTION_SRC {
        &notice.src_addr
    } else {
        &notice.dst_addr
    };
    if notice.ip_version == 4 {
        let addr = [addr[0], addr[1], addr[2], addr[3]];
        let key = Ipv4RuleKey::new(generation, direction, addr, 32);
        lookup::<_, _, RuleAction>(&rules_v4, &key)
    } else {
        let key = Ipv6RuleKey::new(generation, direction, *addr, 128);
        lookup::<_, _, RuleAction>(&rules_v6, &key)
    }
}

#[inline(always)]
fn port_rule(generation: u32, udp: bool, direction: u8, port: u16) -> Option<RuleAction> {
    let slot = port_slot(generation, udp, direction, port);
    occupied(lookup::<_, u32, RuleAction>(&port_rules, &slot))
}

#[inline(always)]
fn proto_rule(generation: u32, proto: u8) -> Option<RuleAction> {
    let slot = proto_slot(generation, proto);
    occupied(lookup::<_, u32, RuleAction>(&proto_rules, &slot))
}

#[inline(always)]
fn icmp_rule(generation: u32, v6: bool, icmp_type: u8) -> Option<RuleAction> {
    let exact = icmp_slot(generation, v6, icmp_type as u32);
    let any = icmp_slot(generation, v6, ICMP_ANY_TYPE);
    occupied(lookup::<_, u32, RuleAction>(&icmp_rules, &exact))
        .or_else(|| occupied(lookup::<_, u32, RuleAction>(&icmp_rules, &any)))
}

/// Array slots always exist; a zero verdict means no rule is there.
#[inline(always)]
fn occupied(action: Option<RuleAction>) -> Option<RuleAction> {
    action.filter(|a| a.verdict != 0)
}
