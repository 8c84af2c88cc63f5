//! The differential fuzzer (issues 7 and 9): frames from
//! `support/frames.rs` run through the real XDP program with
//! BPF_PROG_TEST_RUN under ordered rule sets and both default policies, and
//! each notice — every field but the run-dependent timestamp and rx queue —
//! and the XDP return value are compared with what the reference model
//! `support/model.rs` says (its walk, then `policy::evaluate`).
//!
//! Fixed rule sets use every field the language has (combined fields,
//! lists, ranges, flags, ICMP codes, `on`, `log`); a dry-run lab and a
//! `--notices none` lab check what reaches the ring and what the program
//! returns; and two labs (one for each default) get a new random rule set
//! every `FUZZ_SET_FRAMES` frames (default 250), so the classifier is
//! exercised on sets nobody wrote.
//!
//! `FUZZ_PACKETS` frames (default 20,000; `make fuzz` runs 100,000), each
//! under every lab; `FUZZ_SEED` picks the stream and the random sets
//! (printed, default 1). Prints `N frames, M mismatches` and fails on any
//! mismatch, each shown with its frame, its rules and both answers. Every
//! mismatch ever found is also a fixed fixture below. Root only: ignored
//! as anyone else; `make test` runs them. The whole run is in a network
//! namespace of its own, where `on lo` matches what BPF_PROG_TEST_RUN
//! delivers and `on` the veth end does not.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::mem::{size_of, MaybeUninit};
use std::rc::Rc;
use std::time::Instant;

use fastrand::Rng;
use libbpf_rs::{OpenObject, ProgramInput, RingBuffer, RingBufferBuilder};
use xdp_hello::abi::*;
use xdp_hello::firewall::{Firewall, RuleMaps, RuleSet};
use xdp_hello::iface;
use xdp_hello::loader;
use xdp_hello::policy::{self, Rule};
use xdp_hello::selftest::veth::{Side, TestNet};
use xdp_hello::skel::XdpHelloSkel;

mod common;

/// What the tests marked `needs root` need it for.
const NEEDS_ROOT: &str = "loading XDP programs";
#[path = "support/frames.rs"]
mod frames;
#[path = "support/model.rs"]
mod model;

use frames::{Frame, Frames};
use model::{Decision, Policy};

/// Each run leaves at most one notice in the ring, drained right after.
const RING_BYTES: u32 = 64 * 1024;
const DEFAULT_PACKETS: usize = 20_000;
const DEFAULT_SEED: u64 = 1;
const DEFAULT_SET_FRAMES: usize = 250;
/// Mismatches shown in full; the rest are only counted.
const SHOWN: usize = 20;
/// Where `on VETH` in a rule set stands for the veth end of the lab's
/// namespace: an interface the frames never arrive on.
const VETH: &str = "VETH";

/// The ordered rule sets every frame runs under, each with `--default
/// allow` and `--default deny`. Their addresses, ports, types and flags
/// are the ones the frame generator favours.
const RULE_SETS: &[(&str, &[&str])] = &[
    ("no rules", &[]),
    (
        // The policy, on the generator's addresses.
        "host policy",
        &[
            "allow tcp dport 22 src 10.1.2.0/24",
            "deny tcp dport 22",
            "allow tcp dport 80,443,8000-8080",
            "allow udp dport 53 src 192.168.0.0/16,2001:db8::/32",
            "allow icmp type 0,3,8,11",
            "allow icmpv6 type 1-4,128,129,133-136",
            "deny src 172.16.0.0/12 log",
            "allow proto 47",
            "deny tcp flags S/SA dport 1-1023",
        ],
    ),
    (
        "addresses",
        &[
            "deny src 10.1.2.3 dst 172.16.0.0/12",
            "allow src 10.0.0.0/8,2001:db8::/32",
            "deny dst 192.168.1.0/24,fd00::/8",
            "allow dst 192.168.0.0/16 src 8.8.8.8,fe80::/10",
            "allow src 2001:db8::1 dst fe80::/10,172.31.0.0/16",
            "deny src 0.0.0.0/0 dst 8.8.8.8",
            "allow dst ::/0",
        ],
    ),
    (
        "ports",
        &[
            "deny tcp sport 1-1023 dport 22",
            "allow proto tcp,udp dport 53,80,443",
            "deny udp sport 53 dport 4789",
            "allow udp dport 4000-5000,8081",
            "deny tcp dport 8000-8080,65535",
            "allow tcp sport 0",
            "deny udp dport 0-10",
            "allow proto tcp,udp sport 22,8000-8080 dport 1024-65535",
        ],
    ),
    (
        "icmp",
        &[
            "deny icmp type 8 code 1-255",
            "allow icmp type 0,8",
            "deny icmp type 3 code 0,1,3",
            "allow icmp code 0",
            "deny icmpv6 type 128 code 0",
            "allow icmpv6 type 128-136",
            "allow proto icmp,icmpv6 type 11 code 0-1",
            "deny icmpv6",
        ],
    ),
    (
        "flags",
        &[
            "allow tcp flags A/A dport 22",
            "deny tcp flags S/SA",
            "deny tcp flags FPU",
            "allow tcp flags R/R sport 80,443",
            "deny tcp flags SF/SF",
            "allow tcp dport 80,443",
            "deny tcp flags /A sport 0-1023",
        ],
    ),
    (
        "protocols",
        &[
            "deny proto esp",
            "allow proto gre,sctp,210",
            "deny proto 59,253",
            "allow proto udp src 10.0.0.0/8",
            "deny proto udp,tcp dst 192.168.0.0/16,2001:db8:1::/48",
            "deny icmp",
            "allow proto 41,89,icmpv6",
        ],
    ),
    (
        "mix, on, log",
        &[
            "allow tcp dport 22 on lo src 10.1.2.0/24,2001:db8::/32 log",
            "deny src 10.0.0.0/8,fd00::/8 dst 2001:db8::/32",
            "deny udp dport 4789 dst 172.16.0.0/12,fd00::1 log",
            "allow icmpv6 type 135,136 src fe80::/10",
            "deny tcp flags S/SA sport 40000-65535 on lo",
            "allow on VETH",
            "allow dst 192.168.0.0/16 log",
            "allow udp sport 53",
            "deny log",
        ],
    ),
    (
        // Networks that hold 8 or more others, paired with other fields:
        // keyed by their wide class, the same /8 narrow for the rules of it
        // alone, hosts before and after their wide networks.
        "wide networks",
        &[
            "allow udp dport 53 src 10.1.2.3,10.1.2.5,10.1.2.6,10.1.2.7,10.1.3.0/24,10.2.0.0/16,\
             10.3.0.1,10.4.0.1,2001:db8::1,2001:db8::3,2001:db8::4,2001:db8::5,2001:db8:1::/48,\
             2001:db8:2::1,2001:db8:3::1,2001:db8:4::1",
            "deny udp src 10.0.0.0/8,2001:db8::/32",
            "allow tcp dport 22,80 src 10.1.2.4,2001:db8::2 dst 192.168.1.7,fd00::1",
            "deny tcp dport 1-1023 src 10.0.0.0/8,2001:db8::/32 dst 192.168.0.0/16,fd00::/8",
            "allow tcp sport 40000 dst 192.168.1.1,192.168.1.2,192.168.1.3,192.168.1.4,\
             192.168.2.0/24,192.168.3.1,192.168.4.1,192.168.5.1,fd00::2,fd00::3,fd00::4,\
             fd00::5,fd00::6,fd00::7,fd00::8,fd00::1:0/112",
            "deny icmp src 8.8.8.8,10.0.0.0/8",
            "allow src 10.0.0.0/8,2001:db8::/32",
            "deny dst 192.168.0.0/16,fd00::/8 log",
            "allow tcp dst 0.0.0.0/0 dport 8000-8080",
        ],
    ),
];

/// The set of the dry-run lab and of the `--notices none` one.
const HOST_POLICY: usize = 1;
const MIX: usize = 7;

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a number; unset it or give one")),
        Err(_) => default,
    }
}

/// The ifindex of `name` in this thread's namespace.
fn iface_of(name: &str) -> Option<u32> {
    iface::index_of(name).ok()
}

// ---------------------------------------------------------------------------
// Random rule sets

/// Random ordered rule sets in the language's text, from the values the
/// frame generator favours (and some it never makes), of every shape.
struct RandomRules {
    rng: Rng,
    veth: String,
}

const PROTOCOLS: &[&str] = &["esp", "gre", "sctp", "47", "59", "89", "210", "253", "41"];
const FLAG_LETTERS: &[u8] = b"FSRPAUEW";

impl RandomRules {
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.rng.usize(..from.len())]
    }

    fn chance(&mut self, percent: u8) -> bool {
        self.rng.u8(..100) < percent
    }

    /// A comma list of 1 to `most` items.
    fn list(&mut self, most: usize, mut item: impl FnMut(&mut Self) -> String) -> String {
        let n = self.rng.usize(1..=most);
        (0..n).map(|_| item(self)).collect::<Vec<_>>().join(",")
    }

    /// A network around one of the favoured addresses (or anywhere), its
    /// host bits cleared.
    fn network(&mut self) -> String {
        let net: ipnet::IpNet = if self.chance(55) {
            let addr = std::net::Ipv4Addr::from(self.pick(&frames::V4));
            let addr = if self.chance(10) {
                self.rng.u32(..).into()
            } else {
                addr
            };
            ipnet::Ipv4Net::new(addr, self.pick(&[0, 8, 12, 16, 24, 30, 32, 32]))
                .unwrap()
                .into()
        } else {
            let addr: std::net::Ipv6Addr = self.pick(&frames::V6).parse().unwrap();
            ipnet::Ipv6Net::new(addr, self.pick(&[0, 8, 10, 32, 48, 64, 127, 128, 128]))
                .unwrap()
                .into()
        };
        net.trunc().to_string()
    }

    fn range(&mut self, values: &[u16], top: u16) -> String {
        let first = if self.chance(80) {
            self.pick(values)
        } else {
            self.rng.u16(..=top)
        };
        if self.chance(30) {
            let last = first.saturating_add(self.rng.u16(..=64)).min(top);
            format!("{first}-{last}")
        } else {
            first.to_string()
        }
    }

    fn flags(&mut self) -> String {
        let letters = |bits: u8| -> String {
            (0..8)
                .filter(|b| bits & (1 << b) != 0)
                .map(|b| FLAG_LETTERS[b] as char)
                .collect()
        };
        let mask = match self.rng.u8(..4) {
            0 => 0xff,
            1 => 0x12, // SA
            _ => self.rng.u8(1..),
        };
        let value = self.rng.u8(..) & mask;
        if mask == 0xff && value != 0 {
            letters(value)
        } else {
            format!("{}/{}", letters(value), letters(mask))
        }
    }

    fn rule(&mut self) -> String {
        let mut words = vec![if self.chance(50) { "allow" } else { "deny" }.to_string()];
        // The protocol decides which transport fields may follow.
        let (protos, ports, icmp, flags) = match self.rng.u8(..12) {
            0..=2 => (Some("tcp".to_string()), true, false, true),
            3..=4 => (Some("udp".to_string()), true, false, false),
            5 => (Some("proto tcp,udp".to_string()), true, false, false),
            6 => (Some("icmp".to_string()), false, true, false),
            7 => (Some("icmpv6".to_string()), false, true, false),
            8 => (Some("proto icmp,icmpv6".to_string()), false, true, false),
            9 => {
                let list = self.list(3, |r| r.pick(PROTOCOLS).to_string());
                (Some(format!("proto {list}")), false, false, false)
            }
            _ => (None, false, false, false),
        };
        let mut fields: Vec<String> = Vec::new();
        for direction in ["src", "dst"] {
            if self.chance(35) {
                let nets = self.list(3, |r| r.network());
                fields.push(format!("{direction} {nets}"));
            }
        }
        if ports {
            for direction in ["sport", "dport"] {
                if self.chance(40) {
                    let list = self.list(3, |r| r.range(&frames::PORTS, u16::MAX));
                    fields.push(format!("{direction} {list}"));
                }
            }
        }
        if icmp {
            for field in ["type", "code"] {
                if self.chance(if field == "type" { 60 } else { 30 }) {
                    let values: Vec<u16> = frames::ICMP_TYPES
                        .iter()
                        .chain(&frames::ICMP_CODES)
                        .map(|&v| v.into())
                        .collect();
                    let list = self.list(3, |r| r.range(&values, 255));
                    fields.push(format!("{field} {list}"));
                }
            }
        }
        if flags && self.chance(40) {
            fields.push(format!("flags {}", self.flags()));
        }
        if self.chance(8) {
            let iface = if self.chance(60) {
                "lo".to_string()
            } else {
                self.veth.clone()
            };
            fields.push(format!("on {iface}"));
        }
        // The protocol first (`tcp`, `udp`, … only go there), the rest in
        // any order.
        self.rng.shuffle(&mut fields);
        words.extend(protos);
        words.extend(fields);
        if self.chance(10) {
            words.push("log".to_string());
        }
        words.join(" ")
    }

    /// A set of 1 to 40 rules, now and then up to 150.
    fn set(&mut self) -> Vec<String> {
        let n = if self.chance(10) {
            self.rng.usize(40..=150)
        } else {
            self.rng.usize(1..=40)
        };
        (0..n).map(|_| self.valid_rule()).collect()
    }

    /// A rule the parser takes: it refuses some combinations outright (a
    /// src of one family with a dst of the other), so those are drawn again.
    fn valid_rule(&mut self) -> String {
        loop {
            let text = self.rule();
            if text.parse::<Rule>().is_ok() {
                return text;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// A loaded program and the rule set in it

struct Lab<'obj> {
    name: String,
    skel: XdpHelloSkel<'obj>,
    firewall: Firewall,
    set: Policy,
    rule_texts: Vec<String>,
    dry_run: bool,
    notice_mode: u32,
    /// The veth end of the namespace, for `on VETH`.
    veth: String,
}

impl<'obj> Lab<'obj> {
    /// `classifier`: loaded with it (`Config::classifier`), as every run
    /// with rules is; without, as a run that starts with none.
    fn load(
        object: &'obj mut MaybeUninit<OpenObject>,
        name: &str,
        default_verdict: u8,
        dry_run: bool,
        notice_mode: u32,
        veth: &str,
        classifier: bool,
    ) -> Self {
        let config = Config {
            default_verdict: default_verdict as u32,
            notice_mode,
            dry_run: dry_run.into(),
            classifier: classifier.into(),
            ..Config::DEFAULT
        };
        let skel = loader::load(object, RING_BYTES, config).expect("loading the XDP program");
        let default = if default_verdict == XDP_DROP {
            "deny"
        } else {
            "allow"
        };
        let mut name = format!("{name}, --default {default}");
        if dry_run {
            name.push_str(", --dry-run");
        }
        if notice_mode == NOTICES_NONE {
            name.push_str(", --notices none");
        }
        Lab {
            name,
            skel,
            firewall: Firewall::new(),
            set: Policy {
                rules: Vec::new(),
                slots: Vec::new(),
                default_verdict,
                iface_of,
                ifindex: iface_of("lo").expect("a loopback interface"),
            },
            rule_texts: Vec::new(),
            dry_run,
            notice_mode,
            veth: veth.to_string(),
        }
    }

    /// Makes `texts` the rule set in force (`on VETH` names the veth end);
    /// a set that does not compile is an error, and nothing changes.
    fn install(&mut self, texts: &[&str]) -> Result<(), String> {
        let texts: Vec<String> = texts.iter().map(|t| t.replace(VETH, &self.veth)).collect();
        let rules = policy::parse_flags(&texts).map_err(|e| e.to_string())?;
        let compiled = RuleSet::of(rules).map_err(|e| e.to_string())?;
        self.firewall
            .install(&RuleMaps::of(&self.skel.maps), &compiled)
            .unwrap_or_else(|e| panic!("installing {texts:?}: {e:#}"));
        let active = self.firewall.rules();
        self.set.rules = active.iter().map(|a| a.rule.rule.clone()).collect();
        self.set.slots = active
            .iter()
            .map(|a| self.firewall.slot_of(a.id).expect("a rule in force"))
            .collect();
        self.rule_texts = texts;
        Ok(())
    }

    /// A reader of the ring that collects into `into`.
    fn ring(&self, into: Rc<RefCell<Vec<Notice>>>) -> RingBuffer<'_> {
        let mut builder = RingBufferBuilder::new();
        builder
            .add(&self.skel.maps.events, move |bytes: &[u8]| {
                assert_eq!(bytes.len(), size_of::<Notice>(), "a record of another size");
                let mut notice = Notice::ZERO;
                plain::copy_from_bytes(&mut notice, bytes).expect("a notice");
                into.borrow_mut().push(notice);
                0
            })
            .expect("setting up the ring buffer");
        builder.build().expect("setting up the ring buffer")
    }

    /// Runs `frame` once: the XDP return value and the notices it left.
    fn run(
        &self,
        ring: &RingBuffer,
        notices: &RefCell<Vec<Notice>>,
        frame: &[u8],
    ) -> (u32, Vec<Notice>) {
        let input = ProgramInput {
            data_in: Some(frame),
            repeat: 1,
            ..Default::default()
        };
        let output = self
            .skel
            .progs
            .xdp_hello
            .test_run(input)
            .unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN of a {}-byte frame: {e}", frame.len()));
        ring.consume().expect("reading the ring buffer");
        (output.return_value, notices.take())
    }

    /// What the program must do with a frame the model decided so: return
    /// this, and leave a notice or not.
    fn wanted(&self, want: &Notice, decision: Decision) -> Expected {
        let logged = matches!(decision, Decision::Rule(i) if self.set.rules[i].log);
        Expected {
            return_value: if self.dry_run { XDP_PASS } else { want.verdict },
            notice: logged
                || match self.notice_mode {
                    NOTICES_ALL => true,
                    NOTICES_DENIED => want.verdict == XDP_DROP,
                    _ => false,
                },
        }
    }

    /// The rule whose counter slot the program reported, as text, for a
    /// mismatch report.
    fn rule_of_slot(&self, slot: u32) -> String {
        match self.set.slots.iter().position(|&s| s == slot) {
            Some(i) => format!("rule {i} '{}'", self.rule_texts[i]),
            None if slot == RULE_NONE => "no rule".to_string(),
            None => format!("slot {slot}, no rule of the set"),
        }
    }

    /// The rule that decided, as text, for a mismatch report.
    fn decided_by(&self, decision: Decision) -> String {
        match decision {
            Decision::Rule(i) => format!("rule {i} '{}'", self.rule_texts[i]),
            Decision::Default => "the default".to_string(),
            Decision::Verdict(_) => "no rule (not IP, or not judgeable)".to_string(),
        }
    }
}

/// What a run must give besides the notice's fields.
struct Expected {
    return_value: u8,
    /// Whether a notice must reach the ring.
    notice: bool,
}

// ---------------------------------------------------------------------------
// Comparing

/// Every field but the run-dependent ones, named, as text.
fn fields(n: &Notice) -> Vec<(&'static str, String)> {
    let addr = |a: &[u8; 16]| a.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mac = |m: &[u8; 6]| {
        m.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    let rule = |id: u32| {
        if id == RULE_NONE {
            "none".to_string()
        } else {
            id.to_string()
        }
    };
    vec![
        ("ifindex", n.ifindex.to_string()),
        ("packet_len", n.packet_len.to_string()),
        (
            "verdict",
            xdp_hello::output::verdict_name(n.verdict).to_string(),
        ),
        ("rule_id", rule(n.rule_id)),
        ("depth", n.depth.to_string()),
        ("flags", format!("{:#07b}", n.flags)),
        ("eth_dst", mac(&n.eth_dst)),
        ("eth_src", mac(&n.eth_src)),
        ("ether_type", format!("{:#06x}", n.ether_type)),
        ("vlan_count", n.vlan_count.to_string()),
        ("vlan_outer", n.vlan_outer.to_string()),
        ("vlan_inner", n.vlan_inner.to_string()),
        ("arp_op", n.arp_op.to_string()),
        ("ip_version", n.ip_version.to_string()),
        ("l4_proto", n.l4_proto.to_string()),
        ("src_addr", addr(&n.src_addr)),
        ("dst_addr", addr(&n.dst_addr)),
        ("src_port", n.src_port.to_string()),
        ("dst_port", n.dst_port.to_string()),
        ("icmp_type", n.icmp_type.to_string()),
        ("icmp_code", n.icmp_code.to_string()),
        ("tcp_flags", format!("{:#010b}", n.tcp_flags)),
    ]
}

/// The fields where `got` and `want` differ, with both values.
fn differences(got: &Notice, want: &Notice) -> Vec<(&'static str, String, String)> {
    fields(got)
        .into_iter()
        .zip(fields(want))
        .filter(|((_, g), (_, w))| g != w)
        .map(|((name, g), (_, w))| (name, g, w))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One notice as `name=value` words.
fn notice_line(n: &Notice) -> String {
    fields(n)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What was wrong with one run, or nothing: the program returned
/// `return_value` and left `notices`; the model says `want`, and `expected`
/// says what the program must return and whether the notice reaches the
/// ring.
fn check(
    return_value: u32,
    notices: &[Notice],
    want: &Notice,
    expected: &Expected,
) -> Result<(), String> {
    let mut out = String::new();
    if return_value != u32::from(expected.return_value) {
        let _ = writeln!(
            out,
            "  XDP return value {return_value}, want {}",
            expected.return_value
        );
    }
    if !expected.notice {
        if !notices.is_empty() {
            let _ = writeln!(out, "  {} notices, want none", notices.len());
            for got in notices {
                let _ = writeln!(out, "  program: {}", notice_line(got));
            }
        }
        if out.is_empty() {
            return Ok(());
        }
        let _ = writeln!(out, "  model:   {}", notice_line(want));
        return Err(out);
    }
    let [got] = notices else {
        let _ = writeln!(out, "  {} notices, want exactly one", notices.len());
        let _ = writeln!(out, "  model:   {}", notice_line(want));
        return Err(out);
    };
    let diffs = differences(got, want);
    if diffs.is_empty() && out.is_empty() {
        return Ok(());
    }
    for (name, g, w) in &diffs {
        let _ = writeln!(out, "  {name}: got {g}, want {w}");
    }
    let _ = writeln!(out, "  program: {}", notice_line(got));
    let _ = writeln!(out, "  model:   {}", notice_line(want));
    Err(out)
}

/// The differing field names of a mismatch, to tell distinct ones apart.
fn signature(report: &str) -> String {
    report
        .lines()
        .filter_map(|l| l.trim().split(':').next())
        .filter(|f| !f.starts_with("program") && !f.starts_with("model"))
        .collect::<Vec<_>>()
        .join(",")
}

// ---------------------------------------------------------------------------
// The run

/// How the model decided a lab's frames.
#[derive(Default)]
struct Verdicts {
    allowed_by_rule: usize,
    denied_by_rule: usize,
    /// Dropped with no rule: fail closed, or `--default deny`.
    dropped_otherwise: usize,
    passed_otherwise: usize,
}

impl Verdicts {
    fn count(&mut self, want: &Notice) {
        *match (want.verdict, want.rule_id) {
            (XDP_PASS, RULE_NONE) => &mut self.passed_otherwise,
            (XDP_PASS, _) => &mut self.allowed_by_rule,
            (_, RULE_NONE) => &mut self.dropped_otherwise,
            _ => &mut self.denied_by_rule,
        } += 1;
    }

    /// Whether a rule set's frames met an allow, a deny and a drop by no rule.
    fn all_seen(&self) -> bool {
        self.allowed_by_rule > 0 && self.denied_by_rule > 0 && self.dropped_otherwise > 0
    }
}

impl std::fmt::Display for Verdicts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} allowed by a rule, {} denied by a rule, {} dropped and {} passed by no rule",
            self.allowed_by_rule,
            self.denied_by_rule,
            self.dropped_otherwise,
            self.passed_otherwise
        )
    }
}

type Outcome = (&'static str, fn(&Notice) -> bool);

/// Outcomes of the walk the frames must reach, as the model sees them.
const OUTCOMES: &[Outcome] = &[
    ("depth L2", |n| n.depth == DEPTH_L2),
    ("depth L3", |n| n.depth == DEPTH_L3),
    ("depth L4", |n| n.depth == DEPTH_L4),
    ("truncated", |n| n.flags & FLAG_TRUNCATED != 0),
    ("malformed", |n| n.flags & FLAG_MALFORMED != 0),
    ("fragment", |n| n.flags & FLAG_FRAGMENT != 0),
    ("malformed fragment", |n| {
        n.flags & (FLAG_MALFORMED | FLAG_FRAGMENT) == FLAG_MALFORMED | FLAG_FRAGMENT
    }),
    ("ext-limit", |n| n.flags & FLAG_EXT_LIMIT != 0),
    ("vlan-limit", |n| n.flags & FLAG_VLAN_LIMIT != 0),
    ("3+ VLAN tags", |n| n.vlan_count >= 3),
    ("ARP", |n| n.arp_op != 0),
    ("IPv4 TCP", |n| {
        n.ip_version == 4 && n.l4_proto == IPPROTO_TCP && n.depth == DEPTH_L4
    }),
    ("IPv4 stopped at AH", |n| {
        n.ip_version == 4 && n.l4_proto == IPPROTO_AH
    }),
    ("malformed at AH", |n| {
        n.l4_proto == IPPROTO_AH && n.flags & FLAG_MALFORMED != 0 && n.depth == DEPTH_L3
    }),
    ("IPv6 ICMPv6", |n| {
        n.ip_version == 6 && n.l4_proto == IPPROTO_ICMPV6 && n.depth == DEPTH_L4
    }),
    ("IPv6 UDP", |n| {
        n.ip_version == 6 && n.l4_proto == IPPROTO_UDP && n.depth == DEPTH_L4
    }),
    ("ESP", |n| n.l4_proto == IPPROTO_ESP),
    ("GRE", |n| n.l4_proto == 47),
    ("SCTP", |n| n.l4_proto == 132),
];

/// How often each outcome came up; fails if the frames missed one.
fn check_coverage(frames: &[Frame]) {
    let walked: Vec<Notice> = frames.iter().map(|f| model::walk(&f.bytes)).collect();
    let mut missed = Vec::new();
    let mut line = String::from("fuzz: outcomes:");
    for (name, reached) in OUTCOMES {
        let count = walked.iter().filter(|n| reached(n)).count();
        let _ = write!(line, " {name} {count};");
        if count == 0 {
            missed.push(*name);
        }
    }
    eprintln!("{line}");
    assert!(
        missed.is_empty(),
        "the frame generator never reached {missed:?}: widen it"
    );
}

/// The labs every frame runs through: each fixed set under both defaults,
/// the host policy as a dry run, the mix with `--notices none` (only `log`
/// rules leave notices), the program without its classifier (a run that
/// starts with no rules) under both defaults, and the random sets under
/// both defaults.
fn labs<'obj>(
    objects: &'obj mut [MaybeUninit<OpenObject>],
    veth: &str,
) -> Vec<(Lab<'obj>, Option<RandomRules>)> {
    let mut objects = objects.iter_mut();
    let mut labs = Vec::new();
    let mut fixed = |name: &str, texts: &[&str], default, dry_run, mode| {
        let mut lab = Lab::load(
            objects.next().unwrap(),
            name,
            default,
            dry_run,
            mode,
            veth,
            true,
        );
        lab.install(texts)
            .unwrap_or_else(|e| panic!("the fuzz set '{name}' is refused: {e}"));
        labs.push((lab, None));
    };
    for &(name, texts) in RULE_SETS {
        for default in [XDP_PASS, XDP_DROP] {
            fixed(name, texts, default, false, NOTICES_ALL);
        }
    }
    let (name, texts) = RULE_SETS[HOST_POLICY];
    fixed(name, texts, XDP_DROP, true, NOTICES_ALL);
    let (name, texts) = RULE_SETS[MIX];
    fixed(name, texts, XDP_PASS, false, NOTICES_NONE);
    // A run that starts with no rules: the program without its classifier.
    for default in [XDP_PASS, XDP_DROP] {
        let name = "no rules, without the classifier";
        let lab = Lab::load(
            objects.next().unwrap(),
            name,
            default,
            false,
            NOTICES_ALL,
            veth,
            false,
        );
        labs.push((lab, None));
    }
    labs
}

/// How many labs `labs` makes, random ones included.
const LABS: usize = RULE_SETS.len() * 2 + 2 + 2 + 2;

#[test]
#[ignore = "needs root: loading XDP programs"]
fn fuzz_program_against_model() {
    common::require_root(NEEDS_ROOT);
    let packets = env_number("FUZZ_PACKETS", DEFAULT_PACKETS);
    let seed = env_number("FUZZ_SEED", DEFAULT_SEED);
    let set_frames = env_number("FUZZ_SET_FRAMES", DEFAULT_SET_FRAMES).max(1);
    eprintln!(
        "fuzz: seed {seed} (FUZZ_SEED={seed} repeats it), {packets} frames, a new random \
         rule set every {set_frames}"
    );
    let frames: Vec<Frame> = Frames::new(seed).take(packets).collect();
    if packets >= DEFAULT_PACKETS {
        check_coverage(&frames);
    }
    // `on lo` and `on VETH` mean something only in a namespace of our own.
    let net = TestNet::new().expect("a namespace for the fuzzer");
    let veth = net.veth(Side::A).to_string();
    net.within(Side::A, || {
        fuzz(&frames, seed, set_frames, &veth);
        Ok(())
    })
    .unwrap();
}

fn fuzz(frames: &[Frame], seed: u64, set_frames: usize, veth: &str) {
    let mut objects: Vec<MaybeUninit<OpenObject>> = Vec::new();
    objects.resize_with(LABS, MaybeUninit::uninit);
    let (fixed_objects, random_objects) = objects.split_at_mut(LABS - 2);
    let mut labs = labs(fixed_objects, veth);
    for (default, object) in [XDP_PASS, XDP_DROP].into_iter().zip(random_objects) {
        let lab = Lab::load(
            object,
            "random sets",
            default,
            false,
            NOTICES_ALL,
            veth,
            true,
        );
        let rules = RandomRules {
            rng: Rng::with_seed(seed ^ (u64::from(default) << 32)),
            veth: veth.to_string(),
        };
        labs.push((lab, Some(rules)));
    }

    let started = Instant::now();
    let mut mismatches = 0usize;
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    let mut bad = vec![false; frames.len()];
    let mut undecided = Vec::new();
    let (mut random_sets, mut refused_sets) = (0usize, 0usize);
    for (lab, random) in &mut labs {
        let mut verdicts = Verdicts::default();
        let mut decided = vec![0usize; lab.set.rules.len()];
        let chunk = if random.is_some() {
            set_frames
        } else {
            frames.len().max(1)
        };
        for (number, chunk_frames) in frames.chunks(chunk).enumerate() {
            if let Some(random) = random {
                // A set the classifier refuses (too many entries) is
                // skipped, and counted.
                loop {
                    let texts = random.set();
                    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
                    match lab.install(&texts) {
                        Ok(()) => break,
                        Err(error) => {
                            refused_sets += 1;
                            if refused_sets <= 3 {
                                eprintln!("fuzz: a random set refused: {error}");
                            }
                        }
                    }
                }
                random_sets += 1;
            }
            let notices = Rc::new(RefCell::new(Vec::new()));
            let ring = lab.ring(notices.clone());
            for (offset, frame) in chunk_frames.iter().enumerate() {
                let index = number * chunk + offset;
                let (mut want, decision) = model::expect(&frame.bytes, &lab.set);
                want.ifindex = lab.set.ifindex;
                verdicts.count(&want);
                if let (Decision::Rule(i), None) = (decision, &random) {
                    decided[i] += 1;
                }
                let expected = lab.wanted(&want, decision);
                let (return_value, got) = lab.run(&ring, &notices, &frame.bytes);
                if let Err(report) = check(return_value, &got, &want, &expected) {
                    mismatches += 1;
                    bad[index] = true;
                    *kinds.entry(signature(&report)).or_default() += 1;
                    if mismatches <= SHOWN {
                        let program: Vec<String> =
                            got.iter().map(|n| lab.rule_of_slot(n.rule_id)).collect();
                        eprintln!(
                            "mismatch #{mismatches}: frame {index} ({}) under {}\n  rules: \
                             {:?}\n  model: decided by {}\n  program: decided by {}\n  \
                             frame: {}\n{report}",
                            frame.label,
                            lab.name,
                            lab.rule_texts,
                            lab.decided_by(decision),
                            program.join(", "),
                            hex(&frame.bytes)
                        );
                    }
                }
            }
        }
        eprintln!("fuzz: {}: {verdicts}", lab.name);
        let never: Vec<&String> = decided
            .iter()
            .zip(&lab.rule_texts)
            .filter(|(n, _)| **n == 0)
            .map(|(_, text)| text)
            .collect();
        if !never.is_empty() {
            eprintln!("fuzz:   rules that decided no frame: {never:?}");
        }
        let has_rules = random.is_some() || !lab.set.rules.is_empty();
        if frames.len() >= DEFAULT_PACKETS && has_rules && !verdicts.all_seen() {
            undecided.push(lab.name.clone());
        }
    }
    let bad_frames = bad.iter().filter(|&&b| b).count();
    let elapsed = started.elapsed();
    let runs = frames.len() * labs.len();
    eprintln!(
        "fuzz: {runs} runs ({} frames × {} labs) in {:.1} s, {:.0} runs/s; {random_sets} \
         random rule sets ({refused_sets} refused and replaced); {bad_frames} frames mismatched",
        frames.len(),
        labs.len(),
        elapsed.as_secs_f64(),
        runs as f64 / elapsed.as_secs_f64()
    );
    for (kind, count) in &kinds {
        eprintln!("fuzz: {count} mismatches in {kind}");
    }
    println!("{} frames, {mismatches} mismatches", frames.len());
    assert!(
        undecided.is_empty(),
        "under {undecided:?} the frames missed a way of deciding (see the counts above): widen \
         the generator"
    );
    assert_eq!(
        mismatches, 0,
        "the program and the model disagree (FUZZ_SEED={seed}); see above"
    );
}

// ---------------------------------------------------------------------------
// Fixtures: every mismatch the fuzzer found, and the frames of the issue's
// bypasses, each with the notice the spec gives for it written out by hand.

/// One frame under one rule set and the notice the spec says it gets.
struct Fixture {
    frame: &'static str,
    rules: &'static [&'static str],
    default_verdict: u8,
    /// The rule that decides, as written in `rules`; `None` when the
    /// default or a fail-closed drop does.
    decided_by: Option<&'static str>,
    /// `rule_id` is filled in from `decided_by`.
    want: Notice,
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn v4(addr: [u8; 4]) -> [u8; 16] {
    let mut out = [0; 16];
    out[..4].copy_from_slice(&addr);
    out
}

fn v6(text: &str) -> [u8; 16] {
    text.parse::<std::net::Ipv6Addr>().expect("IPv6").octets()
}

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// The notice `fixture` expects, its rule id the slot `set` gives it.
fn wanted(fixture: &Fixture, set: &Policy) -> Notice {
    let rule_id = fixture.decided_by.map_or(RULE_NONE, |text| {
        let rule: Rule = text.parse().expect("a rule");
        let index = set
            .rules
            .iter()
            .position(|r| *r == rule)
            .expect("a rule of the set");
        set.slots[index]
    });
    Notice {
        rule_id,
        ifindex: set.ifindex,
        ..fixture.want
    }
}

/// What a fixture's run must give besides the notice: the verdict, and a
/// notice (the labs of the fixtures show every packet).
fn every_notice(want: &Notice) -> Expected {
    Expected {
        return_value: want.verdict,
        notice: true,
    }
}

/// Checks the model against the fixture; needs no root.
fn model_half(test: &str, fixture: &Fixture) {
    let frame = unhex(fixture.frame);
    let texts: Vec<String> = fixture.rules.iter().map(|t| t.to_string()).collect();
    let parsed = policy::parse_flags(&texts).expect("rules");
    let by_order = Policy {
        rules: parsed.into_iter().map(|r| r.rule).collect(),
        slots: (0..fixture.rules.len() as u32).collect(),
        default_verdict: fixture.default_verdict,
        iface_of,
        ifindex: 1,
    };
    let want = wanted(fixture, &by_order);
    let (mut modelled, _) = model::expect(&frame, &by_order);
    modelled.ifindex = by_order.ifindex;
    if let Err(report) = check(
        want.verdict.into(),
        &[modelled],
        &want,
        &every_notice(&want),
    ) {
        panic!("{test}: the model disagrees with the spec\n{report}");
    }
}

/// Checks the model against the fixture, then the program (root).
fn fixture(test: &str, fixture: Fixture) {
    model_half(test, &fixture);
    common::require_root(NEEDS_ROOT);
    let frame = unhex(fixture.frame);
    let mut object = MaybeUninit::uninit();
    let mut lab = Lab::load(
        &mut object,
        test,
        fixture.default_verdict,
        false,
        NOTICES_ALL,
        "lo",
        true,
    );
    lab.install(fixture.rules)
        .unwrap_or_else(|e| panic!("{test}: {e}"));
    let want = wanted(&fixture, &lab.set);
    let notices = Rc::new(RefCell::new(Vec::new()));
    let ring = lab.ring(notices.clone());
    let (return_value, got) = lab.run(&ring, &notices, &frame);
    if let Err(report) = check(return_value, &got, &want, &every_notice(&want)) {
        panic!(
            "{test}: the program disagrees with the spec\n  rules: {:?}\n  frame: {}\n{report}",
            fixture.rules, fixture.frame
        );
    }
}

/// The spec fixtures: frames from the bypasses of issue 7, each with the
/// notice it must give.
mod spec {
    use super::*;

    /// Issue 7, bypass 1: three priority tags (VLAN id 0) in front of an echo
    /// request from a denied host. The spec walks up to MAX_VLAN_TAGS tags.
    pub fn fixture_three_priority_tags_deny_src() -> Fixture {
        Fixture {
            frame: "02000000000202000000000181000000810000008100000008004500001c00004000400126190a6300020a6300010800000012340001",
            rules: &["deny src 10.99.0.2"],
            default_verdict: XDP_PASS,
            decided_by: Some("deny src 10.99.0.2"),
            want: Notice {
                packet_len: 54,
                verdict: XDP_DROP,
                depth: DEPTH_L4,
                eth_dst: MAC_B,
                eth_src: MAC_A,
                ether_type: ETH_P_IP,
                vlan_count: 3,
                ip_version: 4,
                l4_proto: IPPROTO_ICMP,
                src_addr: v4([10, 99, 0, 2]),
                dst_addr: v4([10, 99, 0, 1]),
                icmp_type: 8,
                ..Notice::ZERO
            },
        }
    }

    /// Issue 7, bypass 2: a SYN to port 22 behind an IPv6 AH (RFC 4302: its
    /// length in 4-octet units) under `deny tcp dport 22`.
    pub fn fixture_ipv6_ah_tcp_syn_deny_dport() -> Fixture {
        Fixture {
            frame: "02000000000202000000000186dd60000000002c334020010db800000000000000000000000120010db8000000000000000000000002060400000000010000000001a5a5a5a5a5a5a5a5a5a5a5a59c40001601020304000000005002faf000000000",
            rules: &["deny tcp dport 22"],
            default_verdict: XDP_PASS,
            decided_by: Some("deny tcp dport 22"),
            want: Notice {
                packet_len: 98,
                verdict: XDP_DROP,
                depth: DEPTH_L4,
                eth_dst: MAC_B,
                eth_src: MAC_A,
                ether_type: ETH_P_IPV6,
                ip_version: 6,
                l4_proto: IPPROTO_TCP,
                src_addr: v6("2001:db8::1"),
                dst_addr: v6("2001:db8::2"),
                src_port: 40000,
                dst_port: 22,
                tcp_flags: tcp_flag::SYN,
                ..Notice::ZERO
            },
        }
    }

    /// Issue 7, bypass 3: a tiny first fragment, 8 bytes of TCP (Total Length
    /// 28) padded to 60 bytes. The TCP header does not fit in the datagram:
    /// TRUNCATED, its ports unknown, and so a deny that asks for ports
    /// matches it (fail closed) before the allow behind it can.
    pub fn fixture_tiny_first_fragment_padded() -> Fixture {
        Fixture {
            frame: "02000000000202000000000108004500001c00006000400606080a6300020a6300019c40001601020304000000000000000000000000000000000000",
            rules: &["deny tcp dport 22", "allow tcp"],
            default_verdict: XDP_PASS,
            decided_by: Some("deny tcp dport 22"),
            want: Notice {
                packet_len: 60,
                verdict: XDP_DROP,
                depth: DEPTH_L3,
                flags: FLAG_TRUNCATED,
                eth_dst: MAC_B,
                eth_src: MAC_A,
                ether_type: ETH_P_IP,
                ip_version: 4,
                l4_proto: IPPROTO_TCP,
                src_addr: v4([10, 99, 0, 2]),
                dst_addr: v4([10, 99, 0, 1]),
                ..Notice::ZERO
            },
        }
    }

    /// Found by the fuzzer; the model was wrong. The fragment word 0x0080 is
    /// offset 16 (RFC 8200 4.5: the top 13 bits), a later fragment, but
    /// etherparse 0.19 reads it as a first fragment with M set (its issue #150).
    /// The walk stops at the fragment header naming what follows it (AH).
    pub fn fixture_ipv6_fragment_word_0080_is_a_later_fragment() -> Fixture {
        Fixture {
            frame: "02000000000202000000000186dd600000000028004020010db8000000000000000000000001fd0000000000000000000000000000013c000000000000002b0100000000000000000000000000002c000000000000003300008000001234",
            rules: &[],
            default_verdict: XDP_PASS,
            decided_by: None,
            want: Notice {
                packet_len: 94,
                verdict: XDP_PASS,
                depth: DEPTH_L3,
                flags: FLAG_FRAGMENT,
                eth_dst: MAC_B,
                eth_src: MAC_A,
                ether_type: ETH_P_IPV6,
                ip_version: 6,
                l4_proto: IPPROTO_AH,
                src_addr: v6("2001:db8::1"),
                dst_addr: v6("fd00::1"),
                ..Notice::ZERO
            },
        }
    }

    /// The other side of the same fault: the word 0x0001 is offset 0 with M
    /// set, a first fragment, walked on to its UDP header.
    pub fn fixture_ipv6_first_fragment_with_m_is_walked() -> Fixture {
        Fixture {
            frame: "02000000000202000000000186dd6000000000102c4020010db800000000000000000000000120010db80000000000000000000000021100000100001234003512b500080000",
            rules: &["deny udp dport 4789"],
            default_verdict: XDP_PASS,
            decided_by: Some("deny udp dport 4789"),
            want: Notice {
                packet_len: 70,
                verdict: XDP_DROP,
                depth: DEPTH_L4,
                eth_dst: MAC_B,
                eth_src: MAC_A,
                ether_type: ETH_P_IPV6,
                ip_version: 6,
                l4_proto: IPPROTO_UDP,
                src_addr: v6("2001:db8::1"),
                dst_addr: v6("2001:db8::2"),
                src_port: 53,
                dst_port: 4789,
                ..Notice::ZERO
            },
        }
    }

    /// A non-first IPv4 fragment (offset 100, 800 bytes in) of TCP whose
    /// bytes look like a SYN from port 40000 to 22.
    const NON_FIRST_TCP_FRAGMENT: &str = "02000000000202000000000108004500002812340064400653700a6300020a6300019c40001601020304000000005002faf000000000";

    /// Its notice, with `verdict`.
    fn non_first_tcp_fragment(verdict: u8) -> Notice {
        Notice {
            packet_len: 54,
            verdict,
            depth: DEPTH_L3,
            flags: FLAG_FRAGMENT,
            eth_dst: MAC_B,
            eth_src: MAC_A,
            ether_type: ETH_P_IP,
            ip_version: 4,
            l4_proto: IPPROTO_TCP,
            src_addr: v4([10, 99, 0, 2]),
            dst_addr: v4([10, 99, 0, 1]),
            ..Notice::ZERO
        }
    }

    /// Issue 9: a non-first fragment has no transport header:
    /// a rule asking for ports never matches it (as in iptables and
    /// nftables), one asking for the protocol alone does.
    pub fn fixture_non_first_fragment_skips_port_rules() -> Fixture {
        Fixture {
            frame: NON_FIRST_TCP_FRAGMENT,
            rules: &["deny tcp dport 22", "allow tcp"],
            default_verdict: XDP_DROP,
            decided_by: Some("allow tcp"),
            want: non_first_tcp_fragment(XDP_PASS),
        }
    }

    /// Found by the random sets (shrunk): the same non-first fragment, where
    /// rules ask for flags of every value. Its flags are absent (class 0),
    /// and `deny tcp on lo`, which does not ask for flags, must still match
    /// it; the program let it pass by the default.
    pub fn fixture_non_first_fragment_meets_a_deny_that_asks_no_flags() -> Fixture {
        Fixture {
            frame: NON_FIRST_TCP_FRAGMENT,
            rules: &[
                "deny tcp on lo",
                "allow tcp sport 0 dport 22,8000-8038 flags S/SA log",
                "deny tcp flags /SA dst 0.0.0.0/0",
                "deny tcp dport 40000-40004 flags SA/SA src fe80::/10,0.0.0.0/0 sport 80-119,80 log",
                "deny tcp dport 65473,80-119 flags A/SA dst 172.0.0.0/8",
            ],
            default_verdict: XDP_PASS,
            decided_by: Some("deny tcp on lo"),
            want: non_first_tcp_fragment(XDP_DROP),
        }
    }
}

/// A fixture of `spec`, built on demand.
type Spec = fn() -> Fixture;

/// Every fixture of `spec`, by name: the model half needs no root.
const FIXTURES: &[(&str, Spec)] = &[
    (
        "fixture_three_priority_tags_deny_src",
        spec::fixture_three_priority_tags_deny_src,
    ),
    (
        "fixture_ipv6_ah_tcp_syn_deny_dport",
        spec::fixture_ipv6_ah_tcp_syn_deny_dport,
    ),
    (
        "fixture_tiny_first_fragment_padded",
        spec::fixture_tiny_first_fragment_padded,
    ),
    (
        "fixture_ipv6_fragment_word_0080_is_a_later_fragment",
        spec::fixture_ipv6_fragment_word_0080_is_a_later_fragment,
    ),
    (
        "fixture_ipv6_first_fragment_with_m_is_walked",
        spec::fixture_ipv6_first_fragment_with_m_is_walked,
    ),
    (
        "fixture_non_first_fragment_skips_port_rules",
        spec::fixture_non_first_fragment_skips_port_rules,
    ),
    (
        "fixture_non_first_fragment_meets_a_deny_that_asks_no_flags",
        spec::fixture_non_first_fragment_meets_a_deny_that_asks_no_flags,
    ),
];

/// The model alone against every fixture; unprivileged, so the spec is
/// checked by a plain `cargo test` too.
#[test]
fn model_agrees_with_every_fixture() {
    for (name, spec) in FIXTURES {
        model_half(name, &spec());
    }
}

/// A #[test] per fixture: the model, then the program (root).
macro_rules! fixture_tests {
    ($($name:ident),+ $(,)?) => {
        $(
            #[test]
            #[ignore = "needs root: loading XDP programs"]
            fn $name() {
                fixture(stringify!($name), spec::$name());
            }
        )+
    };
}

fixture_tests!(
    fixture_three_priority_tags_deny_src,
    fixture_ipv6_ah_tcp_syn_deny_dport,
    fixture_tiny_first_fragment_padded,
    fixture_ipv6_fragment_word_0080_is_a_later_fragment,
    fixture_ipv6_first_fragment_with_m_is_walked,
    fixture_non_first_fragment_skips_port_rules,
    fixture_non_first_fragment_meets_a_deny_that_asks_no_flags,
);
