//! Clashes in a rule set: a rule given twice, or two rules claiming the same
//! prefix, port, ICMP type or protocol.

use std::collections::HashMap;

use super::{Direction, Match, RuleError, SourcedRule, Transport};

/// Fails on a rule given twice, or on two rules claiming the same thing
/// (the same prefix, an overlapping port range, the same ICMP type or
/// protocol).
pub fn check_clashes(rules: &[SourcedRule]) -> Result<(), RuleError> {
    let mut seen: HashMap<Match, &SourcedRule> = HashMap::new();
    for rule in rules {
        if let Some(earlier) = seen.get(&rule.rule.matches) {
            return Err(clash(earlier, rule));
        }
        seen.insert(rule.rule.matches, rule);
    }
    // Port ranges own every port they cover: overlaps are clashes too.
    let mut ranges: Vec<(&SourcedRule, Transport, Direction, u16, u16)> = rules
        .iter()
        .filter_map(|r| match r.rule.matches {
            Match::Port {
                transport,
                direction,
                first,
                last,
            } => Some((r, transport, direction, first, last)),
            _ => None,
        })
        .collect();
    ranges.sort_by_key(|&(_, t, d, lo, _)| (t as u8, d as u8, lo));
    for pair in ranges.windows(2) {
        let (a, ta, da, _, a_hi) = pair[0];
        let (b, tb, db, b_lo, _) = pair[1];
        if ta == tb && da == db && b_lo <= a_hi {
            return Err(clash(a, b));
        }
    }
    Ok(())
}

fn clash(earlier: &SourcedRule, later: &SourcedRule) -> RuleError {
    let what = if earlier.rule == later.rule {
        "duplicates"
    } else if earlier.rule.action == later.rule.action {
        "overlaps"
    } else {
        "conflicts with"
    };
    RuleError(format!(
        "{}: '{}' {what} '{}' ({}); keep one",
        later.origin, later.rule, earlier.rule, earlier.origin
    ))
}

#[cfg(test)]
mod tests {
    use super::super::parse_flags;
    use super::*;

    #[test]
    fn duplicates_overlaps_and_conflicts_are_reported() {
        let flags = |texts: &[&str]| {
            let texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
            check_clashes(&parse_flags(&texts).unwrap())
        };
        let err = flags(&["deny icmp", "deny icmp"]).unwrap_err();
        assert!(
            err.0
                .contains("--rule #2: 'deny icmp' duplicates 'deny icmp' (--rule #1)"),
            "{err}"
        );
        let err = flags(&["deny src 10.0.0.0/8", "allow src 10.0.0.0/8"]).unwrap_err();
        assert!(err.0.contains("conflicts with"), "{err}");
        let err = flags(&["allow tcp dport 8000-8080", "deny tcp dport 8080"]).unwrap_err();
        assert!(err.0.contains("conflicts with"), "{err}");
        let err = flags(&["allow udp sport 1-10", "allow udp sport 5-20"]).unwrap_err();
        assert!(err.0.contains("overlaps"), "{err}");
        let err = flags(&["deny proto esp", "allow proto 50"]).unwrap_err();
        assert!(
            err.0
                .contains("'allow proto esp' conflicts with 'deny proto esp' (--rule #1)"),
            "{err}"
        );
        let err = flags(&["deny proto 47", "deny proto gre"]).unwrap_err();
        assert!(err.0.contains("duplicates"), "{err}");
        // Different kinds, directions or prefixes never clash.
        flags(&[
            "deny src 10.0.0.0/8",
            "allow src 10.1.2.3",
            "deny dst 10.0.0.0/8",
            "deny tcp dport 22",
            "deny udp dport 22",
            "deny tcp sport 22",
            "deny icmp",
            "allow icmp type 8",
            "deny icmpv6",
            "deny proto tcp",
            "deny proto icmp",
            "allow proto esp",
        ])
        .unwrap();
    }
}
