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
    icmp_rules, lookup_or, port_rules, proto_rules, rule_at, rule_generation, rule_kinds, rules_v4,
    rules_v6,
};

/// Flags of a packet whose transport header could not be read.
const UNREADABLE: u8 = FLAG_TRUNCATED | FLAG_EXT_LIMIT;
/// Every kind of rule that needs the transport header.
const TRANSPORT_KINDS: u32 = KIND_TCP_PORTS | KIND_UDP_PORTS | KIND_ICMP | KIND_ICMPV6;

/// The verdict for `notice` and the rule that decided it (or `RULE_NONE`).
#[inline(always)]
pub fn decide(notice: &Notice, config: &Config) -> (u8, u32) {
    let default = (config.default_verdict as u8, RULE_NONE);
    // Both are array slots, which always exist.
    let generation = lookup_or(&rule_generation, &0u32, 0u32);
    // Kinds without rules cost nothing: no lookup at all.
    let kinds = lookup_or(&rule_kinds, &generation, u32::MAX);
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
        ControlFlow::Continue(matches) if matches.allowed != RULE_NONE => {
            (XDP_PASS, matches.allowed)
        }
        ControlFlow::Continue(_) => default,
    }
}

/// What the lookups found: a deny ends them, the first allow counts if no
/// deny comes.
///
/// Plain values, no `Option`s: LLVM may copy an `Option`'s payload even when
/// it is `None`, and the verifiers of older kernels (6.1) refuse the read of
/// a stack slot nothing wrote.
struct Matches {
    /// The first allowing rule's id; RULE_NONE is no rule's id.
    allowed: u32,
}

impl Matches {
    /// Takes one kind's match, if any: breaks with the rule's id on a deny,
    /// remembers the first allow.
    #[inline(always)]
    fn consider(&mut self, action: RuleAction) -> ControlFlow<u32> {
        if action.verdict == XDP_DROP as u32 {
            return ControlFlow::Break(action.rule_id);
        }
        if action.verdict == XDP_PASS as u32 && self.allowed == RULE_NONE {
            self.allowed = action.rule_id;
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
    let mut matches = Matches { allowed: RULE_NONE };
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

/// The longest prefix's rule for the source or destination address, or
/// none (verdict 0).
#[inline(always)]
fn address_rule(notice: &Notice, generation: u32, direction: u8) -> RuleAction {
    let addr = if direction == DIRECTION_SRC {
        &notice.src_addr
    } else {
        &notice.dst_addr
    };
    if notice.ip_version == 4 {
        let addr = [addr[0], addr[1], addr[2], addr[3]];
        rule_at(
            &rules_v4,
            &Ipv4RuleKey::new(generation, direction, addr, 32),
        )
    } else {
        rule_at(
            &rules_v6,
            &Ipv6RuleKey::new(generation, direction, *addr, 128),
        )
    }
}

#[inline(always)]
fn port_rule(generation: u32, udp: bool, direction: u8, port: u16) -> RuleAction {
    rule_at(&port_rules, &port_slot(generation, udp, direction, port))
}

#[inline(always)]
fn proto_rule(generation: u32, proto: u8) -> RuleAction {
    rule_at(&proto_rules, &proto_slot(generation, proto))
}

/// The rule for this exact ICMP type, else the one for any type.
#[inline(always)]
fn icmp_rule(generation: u32, v6: bool, icmp_type: u8) -> RuleAction {
    let exact = rule_at(&icmp_rules, &icmp_slot(generation, v6, icmp_type as u32));
    if exact.verdict != 0 {
        return exact;
    }
    rule_at(&icmp_rules, &icmp_slot(generation, v6, ICMP_ANY_TYPE))
}
