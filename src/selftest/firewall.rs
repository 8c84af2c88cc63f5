//! The firewall on this kernel: a few crafted frames through
//! BPF_PROG_TEST_RUN under real rule sets — a deny, an exception written
//! first, fields combined, a port rule, default deny, ARP under default deny
//! — and a live swap of the rule set. The exact notice is checked each time.

use std::mem::MaybeUninit;
use std::net::Ipv4Addr;

use anyhow::{anyhow, Context, Result};

use crate::abi::*;
use crate::firewall::{Firewall, RuleMaps, RuleSet};
use crate::loader;
use crate::selftest::packets::{self, Case};
use crate::selftest::test_run::{run_case, RING_BYTES};
use crate::selftest::Report;

/// What a frame must come out as under a rule set.
struct Expectation {
    frame: &'static str,
    verdict: u8,
    /// The deciding rule's index in the set, or `None` for the default.
    rule: Option<usize>,
}

/// Runs every firewall check.
pub fn run_all(report: &mut Report) {
    let cases = packets::cases();
    let udp = cases.iter().find(|c| c.name == "ipv4-udp");
    let Some(udp) = udp else {
        return report.check("firewall: fixtures", Err(anyhow!("no ipv4-udp fixture")));
    };
    let source = Ipv4Addr::from(<[u8; 4]>::try_from(&udp.expect.src_addr[..4]).unwrap());
    let network = Ipv4Addr::from(u32::from(source) & 0xffff_ff00);
    let port = udp.expect.dst_port;

    let checks: [(&str, u8, Vec<String>, Vec<Expectation>); 5] = [
        (
            "deny the source",
            XDP_PASS,
            vec![format!("deny src {source}")],
            vec![
                pass_or_drop("ipv4-udp", XDP_DROP, Some(0)),
                by_default("ipv6-udp", XDP_PASS),
            ],
        ),
        (
            "first match: a host allowed before its network is denied",
            XDP_PASS,
            vec![
                format!("allow src {source}"),
                format!("deny src {network}/24"),
            ],
            vec![pass_or_drop("ipv4-udp", XDP_PASS, Some(0))],
        ),
        (
            "fields combined: a port only from one network",
            XDP_PASS,
            vec![
                format!("allow udp dport {port} src 203.0.113.0/24,2001:db8::/32"),
                format!("deny udp dport {port}"),
                format!("allow udp dport {port} src {network}/24"),
            ],
            vec![
                pass_or_drop("ipv4-udp", XDP_DROP, Some(1)),
                pass_or_drop("ipv6-udp", XDP_PASS, Some(0)),
                by_default("ipv4-icmp-echo-request", XDP_PASS),
            ],
        ),
        (
            "deny a UDP port",
            XDP_PASS,
            vec![
                format!("deny udp dport {port}"),
                format!("deny tcp dport {port}"),
            ],
            vec![
                pass_or_drop("ipv4-udp", XDP_DROP, Some(0)),
                by_default("ipv4-icmp-echo-request", XDP_PASS),
            ],
        ),
        (
            "default deny: IP dropped, ARP passes",
            XDP_DROP,
            vec!["allow icmp type 8".into()],
            vec![
                by_default("ipv4-udp", XDP_DROP),
                pass_or_drop("ipv4-icmp-echo-request", XDP_PASS, Some(0)),
                by_default("arp-request", XDP_PASS),
            ],
        ),
    ];
    for (name, default_verdict, rules, expectations) in checks {
        let outcome = check_rule_set(&cases, default_verdict, &rules, &expectations);
        report.check(&format!("firewall: {name}"), outcome);
    }
    report.check(
        "firewall: live swap between two rule sets",
        live_swap(udp, source),
    );
}

fn pass_or_drop(frame: &'static str, verdict: u8, rule: Option<usize>) -> Expectation {
    Expectation {
        frame,
        verdict,
        rule,
    }
}

fn by_default(frame: &'static str, verdict: u8) -> Expectation {
    Expectation {
        frame,
        verdict,
        rule: None,
    }
}

/// Loads the program with `default_verdict`, installs `rule_texts` and checks
/// each expectation's verdict, deciding rule and notice.
fn check_rule_set(
    cases: &[Case],
    default_verdict: u8,
    rule_texts: &[String],
    expectations: &[Expectation],
) -> Result<()> {
    let config = Config {
        default_verdict: default_verdict as u32,
        notice_mode: NOTICES_ALL,
        dry_run: 0,
        snaplen: 0,
    };
    let mut object = MaybeUninit::uninit();
    let skel = loader::load(&mut object, RING_BYTES, config)?;
    let mut firewall = Firewall::new();
    firewall.install(&RuleMaps::of(&skel.maps), &RuleSet::load(rule_texts, None)?)?;
    for expectation in expectations {
        let case = cases
            .iter()
            .find(|c| c.name == expectation.frame)
            .with_context(|| format!("no fixture {}", expectation.frame))?;
        let rule_id = match expectation.rule {
            Some(index) => firewall.rules()[index].id,
            None => RULE_NONE,
        };
        let under_rules = Case {
            name: case.name.clone(),
            frame: case.frame.clone(),
            expect: Notice {
                verdict: expectation.verdict,
                rule_id,
                ..case.expect
            },
        };
        run_case(&skel, &under_rules).with_context(|| case.name.clone())?;
    }
    Ok(())
}

/// Swaps between "deny the source" and "allow it" and checks that every run
/// in between gets the verdict of the set in force, with its rule.
fn live_swap(udp: &Case, source: Ipv4Addr) -> Result<()> {
    let config = Config {
        default_verdict: XDP_PASS as u32,
        notice_mode: NOTICES_ALL,
        dry_run: 0,
        snaplen: 0,
    };
    let mut object = MaybeUninit::uninit();
    let skel = loader::load(&mut object, RING_BYTES, config)?;
    let maps = RuleMaps::of(&skel.maps);
    let mut firewall = Firewall::new();
    let deny = RuleSet::load(&[format!("deny src {source}")], None)?;
    let allow = RuleSet::load(&[format!("allow src {source}")], None)?;
    for round in 0..20 {
        let (rules, verdict) = if round % 2 == 0 {
            (&deny, XDP_DROP)
        } else {
            (&allow, XDP_PASS)
        };
        firewall.install(&maps, rules)?;
        let expected = Case {
            name: udp.name.clone(),
            frame: udp.frame.clone(),
            expect: Notice {
                verdict,
                rule_id: firewall.rules()[0].id,
                ..udp.expect
            },
        };
        run_case(&skel, &expected).with_context(|| format!("after swap {round}"))?;
    }
    Ok(())
}
