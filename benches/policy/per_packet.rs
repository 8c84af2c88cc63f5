//! Per packet, BPF_PROG_TEST_RUN: the same frames through the floor (an
//! empty program), xdp-hello (notices off, delivered, ring full; no rule and
//! one), its C twin (benches/c) in the same four, xdp-filter with the same
//! one rule, and the seed (the Aya book's Hello XDP, benches/seed): program
//! after program, round after round, instruction counts beside each; then
//! `ratio rust/c FRAME CONFIG` and `ratio ours/seed notice`.
//!
//! Before any timing, the twin must give ours's verdict, ours's notice and
//! ours's counters, byte for byte, on every frame of the selftest matrix and
//! the fuzzer's templates, under the setups' own rules and under the rule
//! sets of twin_rules, which reach the classifier: a twin that does less
//! would make the ratios lie.

use std::cell::RefCell;
use std::collections::HashSet;
use std::mem::{size_of, MaybeUninit};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;

use anyhow::{bail, ensure, Context, Result};
use etherparse::{PacketBuilder, TcpOptionElement};
use libbpf_rs::{libbpf_sys, MapCore, Object, ObjectBuilder, OpenObject, RingBuffer};
use xdp_hello::abi::{
    Config, Notice, COUNTER_BLOCKS, ETH_HLEN, FLAG_MALFORMED, NOTICES_ALL, NOTICES_NONE, RULE_NONE,
    XDP_PASS,
};
use xdp_hello::firewall::{Firewall, RuleMaps, RuleSet};
use xdp_hello::loader;
use xdp_hello::selftest::packets;
use xdp_hello::selftest::veth::{Side, TestNet};
use xdp_hello::stats::{sum_block, Counters};

use crate::c_objects::{as_invoking_user, build_c_object};
use crate::fuzz_frames;
use crate::prog_run::Prog;
use crate::report::{Report, Samples};
use crate::rulegen::Rule;
use crate::support::xdp_on;
use crate::twin_rules::{self, CheckSet};
use crate::xdp_filter;

/// Runs per BPF_PROG_TEST_RUN call, and rounds of calls: 12 programs × 7
/// frames a round, 1 to 2.5 minutes in all on 2 shared cores (more rounds
/// steady the medians; the part must stay within about 4 minutes).
const REPEAT: u32 = 200_000;
const ROUNDS: usize = 9;
/// Room for every notice of a call (88 bytes and the ring's 8-byte header
/// each), so that none is lost: "delivered" means delivered.
const ROOMY_RING: u32 = (REPEAT * 96).next_power_of_two();
/// The smallest ring there is: full after 42 notices, and then every
/// reserve fails.
const FULL_RING: u32 = 4096;
/// The one rule: a source none of the frames has, so every frame is looked
/// up and passes.
const RULE_SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1));

/// xdp-hello and its twin are timed in these; the names go into the ratio
/// lines.
struct Setup {
    name: &'static str,
    ring_bytes: u32,
    notice_mode: u32,
    rules: usize,
}

const SETUPS: [Setup; 4] = [
    Setup {
        name: "notices-off",
        ring_bytes: FULL_RING,
        notice_mode: NOTICES_NONE,
        rules: 0,
    },
    Setup {
        name: "notices-delivered",
        ring_bytes: ROOMY_RING,
        notice_mode: NOTICES_ALL,
        rules: 0,
    },
    Setup {
        name: "ring-full",
        ring_bytes: FULL_RING,
        notice_mode: NOTICES_ALL,
        rules: 0,
    },
    Setup {
        name: "1-rule",
        ring_bytes: FULL_RING,
        notice_mode: NOTICES_NONE,
        rules: 1,
    },
];

/// A frame every program is timed on.
struct Probe {
    name: &'static str,
    frame: Vec<u8>,
}

/// The three, then four of the fuzzer's odd ones.
fn probes() -> Result<Vec<Probe>> {
    let template = |label: &str| {
        fuzz_frames::templates()
            .into_iter()
            .find(|frame| frame.label.starts_with(label))
            .map(|frame| frame.bytes)
            .with_context(|| format!("the fuzzer has no template {label:?} any more"))
    };
    let syn_v4 = template("IPv4 TCP SYN")?;
    Ok(vec![
        Probe {
            name: "udp64",
            frame: packets::udp64(),
        },
        Probe {
            name: "tcp74",
            frame: syn_with_options(false),
        },
        Probe {
            name: "tcp6-94",
            frame: syn_with_options(true),
        },
        Probe {
            name: "qinq-tcp6",
            frame: template("QinQ 0/7 IPv6 TCP")?,
        },
        Probe {
            name: "v6-ext-chain",
            frame: template("template: IPv6")?,
        },
        Probe {
            name: "ah-tcp4",
            frame: template("IPv4 AH TCP")?,
        },
        Probe {
            name: "tcp4-cut",
            // Cut inside the TCP header: the walk stops, truncated.
            frame: syn_v4[..ETH_HLEN + 20 + 10].to_vec(),
        },
    ])
}

/// A SYN as Linux sends it: MSS, SACK permitted, timestamps, window scale
/// (20 bytes of options); 74 bytes over IPv4, 94 over IPv6.
fn syn_with_options(v6: bool) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let ip = if v6 {
        eth.ipv6(
            std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets(),
            std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2).octets(),
            64,
        )
    } else {
        eth.ipv4([192, 0, 2, 1], [198, 51, 100, 2], 64)
    };
    let builder = ip
        .tcp(40000, 443, 1, 64240)
        .syn()
        .options(&[
            TcpOptionElement::MaximumSegmentSize(1460),
            TcpOptionElement::SelectiveAcknowledgementPermitted,
            TcpOptionElement::Timestamp(1, 0),
            TcpOptionElement::Noop,
            TcpOptionElement::WindowScale(7),
        ])
        .expect("20 bytes of TCP options");
    let mut frame = Vec::with_capacity(builder.size(0));
    builder.write(&mut frame, &[]).expect("a TCP SYN");
    frame
}

/// Notices a ring held, and the last one's bytes.
#[derive(Default)]
struct Seen {
    records: u64,
    last: Vec<u8>,
}

/// A libbpf ring buffer read after every call.
struct Ring {
    buffer: RingBuffer<'static>,
    seen: Rc<RefCell<Seen>>,
}

impl Ring {
    fn of(map: &dyn MapCore) -> Result<Ring> {
        let seen = Rc::new(RefCell::new(Seen::default()));
        let sink = Rc::clone(&seen);
        let mut builder = libbpf_rs::RingBufferBuilder::new();
        builder.add(map, move |data: &[u8]| {
            let mut seen = sink.borrow_mut();
            seen.records += 1;
            seen.last.clear();
            seen.last.extend_from_slice(data);
            0
        })?;
        Ok(Ring {
            buffer: builder.build()?,
            seen,
        })
    }

    /// Takes what is in the ring: how many records, and the last one.
    fn drain(&self) -> Result<Seen> {
        self.buffer.consume().context("reading a ring buffer")?;
        Ok(std::mem::take(&mut *self.seen.borrow_mut()))
    }
}

/// What happens to the records a timed program leaves behind.
enum Records {
    /// None are made, or they stay where they are (a full ring).
    Kept,
    /// Every one is read after the call; there must be one per run.
    Libbpf(Ring),
    Aya(aya::maps::RingBuf<aya::maps::MapData>),
}

/// One program as it is timed: a row of the table per frame.
struct Subject {
    what: String,
    prog: Prog,
    records: Records,
}

impl Subject {
    /// ns per packet and the verdict, with the records of the call read
    /// and counted.
    fn time(&mut self, frame: &[u8], repeat: u32) -> Result<(f64, u32)> {
        let (ns, verdict) = self.prog.time(frame, repeat)?;
        let records = match &mut self.records {
            Records::Kept => return Ok((ns, verdict)),
            Records::Libbpf(ring) => ring.drain()?.records,
            Records::Aya(ring) => {
                let mut count = 0;
                while ring.next().is_some() {
                    count += 1;
                }
                count
            }
        };
        ensure!(
            records == u64::from(repeat),
            "{}: {records} records for {repeat} packets: the ring is too small",
            self.what
        );
        Ok((ns, verdict))
    }
}

pub fn run(report: &mut Report) -> Result<()> {
    let objects = build_c()?;
    let probes = probes()?;

    // Ours, as xdp-hello loads it; its twin, through the same firewall code.
    let mut our_storage: [MaybeUninit<OpenObject>; SETUPS.len()] =
        std::array::from_fn(|_| MaybeUninit::uninit());
    let mut ours = Vec::new();
    for (storage, setup) in our_storage.iter_mut().zip(&SETUPS) {
        let skel = loader::load(storage, setup.ring_bytes, config(setup))
            .with_context(|| format!("loading xdp_hello, {}", setup.name))?;
        ours.push(skel);
    }
    let twins: Vec<Object> = SETUPS
        .iter()
        .map(|setup| load_twin(&objects.twin, setup))
        .collect::<Result<_>>()?;
    let twin_maps: Vec<_> = twins.iter().map(named_maps).collect();
    let mut pairs = Vec::new();
    for ((setup, skel), maps) in SETUPS.iter().zip(&ours).zip(&twin_maps) {
        let rust = Checked::new(RuleMaps::of(&skel.maps), &skel.maps.counters, setup)?;
        let c = Checked::new(rule_maps(maps)?, by_name(maps, "counters")?, setup)?;
        pairs.push(Pair { setup, rust, c });
    }
    let twin_events: Vec<_> = twins
        .iter()
        .map(|twin| find_map(twin, "events"))
        .collect::<Result<_>>()?;

    let mut subjects = Vec::new();
    let empty = load_object(&objects.empty)?;
    subjects.push(Subject {
        what: "empty XDP program (C)".into(),
        prog: only_prog(&empty)?,
        records: Records::Kept,
    });
    for (s, setup) in SETUPS.iter().enumerate() {
        let ring = |map: &dyn MapCore| -> Result<Records> {
            Ok(if setup.ring_bytes == ROOMY_RING {
                Records::Libbpf(Ring::of(map)?)
            } else {
                Records::Kept
            })
        };
        subjects.push(Subject {
            what: format!("xdp-hello (Rust), {}", setup.name),
            prog: prog_of(ours[s].progs.xdp_hello.as_fd())?,
            records: ring(&ours[s].maps.events)?,
        });
        subjects.push(Subject {
            what: format!("C twin, {}", setup.name),
            prog: only_prog(&twins[s])?,
            records: ring(&twin_events[s])?,
        });
    }
    check_twin(&mut subjects, &mut pairs, &probes)?;

    let filter_net = TestNet::new()?;
    xdp_filter::load_xdp_filter(&filter_net, &[RULE_SOURCE])?;
    let ids = xdp_on(&filter_net, Side::A)?;
    let [filter_id] = ids[..] else {
        bail!("expected xdp-filter's program on the bench veth, found {ids:?}");
    };
    subjects.push(Subject {
        what: format!("xdp-filter -f {}, 1 `ip -m src`", xdp_filter::FEATURES),
        prog: Prog::by_id(filter_id)?,
        records: Records::Kept,
    });
    let seed = match Seed::load() {
        Ok(seed) => Some(seed),
        Err(why) => {
            let why = format!("{why:#}").replace('|', "/");
            eprintln!("policy bench: per-packet: the seed: {why}");
            report.row_of(
                "seed (Aya book's Hello XDP)",
                "all",
                (f64::NAN, f64::NAN),
                "ns/packet",
                &format!("not measured: {why}"),
            );
            None
        }
    };
    let mut seed_keep = None;
    if let Some(seed) = seed {
        subjects.push(Subject {
            what: "seed: Aya book's Hello XDP, `info!` delivered".into(),
            prog: seed.prog,
            records: Records::Aya(seed.ring),
        });
        seed_keep = Some(seed.ebpf);
    }

    // A first call each: fills the full rings, warms what there is to warm.
    for subject in &mut subjects {
        subject.time(&probes[0].frame, 1_000.min(REPEAT))?;
    }
    // costs[subject][probe], interleaved so drift hits all alike.
    let mut costs = vec![vec![Vec::new(); probes.len()]; subjects.len()];
    let mut verdicts = vec![vec![None; probes.len()]; subjects.len()];
    for _ in 0..ROUNDS {
        for (p, probe) in probes.iter().enumerate() {
            for (s, subject) in subjects.iter_mut().enumerate() {
                let (ns, verdict) = subject
                    .time(&probe.frame, REPEAT)
                    .with_context(|| format!("timing {} on {}", subject.what, probe.name))?;
                let first = *verdicts[s][p].get_or_insert(verdict);
                ensure!(
                    verdict == first,
                    "{} on {}: verdict {verdict}, before {first}",
                    subject.what,
                    probe.name
                );
                costs[s][p].push(ns);
            }
        }
    }
    let cost = |s: usize, p: usize| Samples(costs[s][p].clone());
    for (s, subject) in subjects.iter().enumerate() {
        let (xlated, jited) = subject.prog.size()?;
        for (p, probe) in probes.iter().enumerate() {
            let note = format!(
                "{xlated} xlated insns, {jited} B jited; verdict {}",
                verdicts[s][p].unwrap_or(u32::MAX)
            );
            report.row(&subject.what, probe.name, &cost(s, p), "ns/packet", &note);
        }
    }

    for (i, setup) in SETUPS.iter().enumerate() {
        let (rust, c) = (ours_at(i), twin_at(i));
        for (p, probe) in probes.iter().enumerate() {
            let ratio = cost(rust, p).median() / cost(c, p).median();
            report.ratio(&format!("rust/c {} {}", probe.name, setup.name), ratio);
        }
    }
    let filter = ours_at(SETUPS.len());
    report.ratio(
        "ours/xdp-filter 1-rule",
        worst(&cost, ours_at(setup_at("1-rule")), filter, probes.len()),
    );
    if seed_keep.is_some() {
        report.ratio(
            "ours/seed notice",
            worst(
                &cost,
                ours_at(setup_at("notices-delivered")),
                filter + 1,
                probes.len(),
            ),
        );
    }
    // Lost notices would have made "delivered" a lie.
    let lost = Counters::read(&ours[setup_at("notices-delivered")].maps.counters)?.notices_lost;
    ensure!(lost == 0, "xdp-hello lost {lost} notices with a roomy ring");
    drop(subjects);
    drop(seed_keep);
    drop(filter_net);
    drop(pairs);
    Ok(())
}

// The subjects: the floor first, then ours and the twin of each setup in
// turn, then xdp-filter and the seed.
fn ours_at(setup: usize) -> usize {
    1 + 2 * setup
}

fn twin_at(setup: usize) -> usize {
    2 + 2 * setup
}

fn setup_at(name: &str) -> usize {
    SETUPS
        .iter()
        .position(|setup| setup.name == name)
        .expect("a setup of SETUPS")
}

/// The largest ratio of medians, subject `ours` over `theirs`, over the frames.
fn worst(cost: &dyn Fn(usize, usize) -> Samples, ours: usize, theirs: usize, frames: usize) -> f64 {
    (0..frames)
        .map(|p| cost(ours, p).median() / cost(theirs, p).median())
        .fold(0.0, f64::max)
}

fn config(setup: &Setup) -> Config {
    Config {
        default_verdict: u32::from(XDP_PASS),
        notice_mode: setup.notice_mode,
        ..Config::DEFAULT
    }
}

/// The setup's own rules: none, or the one rule.
fn setup_rules(setup: &Setup) -> Result<RuleSet> {
    let texts = if setup.rules > 0 {
        vec![Rule::deny_src(RULE_SOURCE).ours()]
    } else {
        Vec::new()
    };
    rule_set(&texts)
}

/// `texts` read and compiled as xdp-hello reads and compiles `--rule` flags.
fn rule_set(texts: &[String]) -> Result<RuleSet> {
    RuleSet::load(texts, None).map_err(|err| anyhow::anyhow!("{}", err.0))
}

/// One program of a setup as the twin check reaches it: the maps its rules
/// are written to, the firewall that writes them, its counters.
struct Checked<'a> {
    maps: RuleMaps<'a>,
    firewall: Firewall,
    counters: &'a dyn MapCore,
}

impl<'a> Checked<'a> {
    /// The side with the setup's rules written the way xdp-hello writes them.
    fn new(maps: RuleMaps<'a>, counters: &'a dyn MapCore, setup: &Setup) -> Result<Checked<'a>> {
        let mut firewall = Firewall::new();
        if setup.rules > 0 {
            firewall.install(&maps, &setup_rules(setup)?)?;
        }
        Ok(Checked {
            maps,
            firewall,
            counters,
        })
    }
}

/// Ours and the twin in one setup: every rule set goes to both.
struct Pair<'a> {
    setup: &'a Setup,
    rust: Checked<'a>,
    c: Checked<'a>,
}

impl Pair<'_> {
    fn install(&mut self, set: &RuleSet) -> Result<()> {
        for (side, what) in [(&mut self.rust, "xdp_hello"), (&mut self.c, "the C twin")] {
            side.firewall
                .install(&side.maps, set)
                .with_context(|| format!("installing rules into {what}, {}", self.setup.name))?;
        }
        Ok(())
    }
}

/// The twin must give ours's verdict, notice and counters in every setup on
/// every frame of the selftest matrix, the fuzzer's templates and the
/// probes: under the setups' own rules, then under each set of twin_rules,
/// made from what ours read in those frames; then the setups' own rules
/// are put back, so that the timed setups are what their names say.
fn check_twin(subjects: &mut [Subject], pairs: &mut [Pair<'_>], probes: &[Probe]) -> Result<()> {
    let frames = check_frames(probes);
    let notices = check_frames_under(subjects, pairs, &frames, "the setups' own rules")?;
    let sets = twin_rules::sets(&notices);
    for set in &sets {
        check_set(subjects, pairs, &frames, set)?;
    }
    for pair in pairs.iter_mut() {
        pair.install(&setup_rules(pair.setup)?)?;
    }
    eprintln!(
        "policy bench: per-packet: the C twin matches xdp_hello on {} frames under the \
         setups' own rules and {} more sets",
        frames.len(),
        sets.len()
    );
    Ok(())
}

/// The selftest matrix, the fuzzer's templates and the probes, by name.
fn check_frames(probes: &[Probe]) -> Vec<(String, Vec<u8>)> {
    let mut frames: Vec<(String, Vec<u8>)> = packets::cases()
        .into_iter()
        .map(|case| (case.name, case.frame))
        .chain(
            fuzz_frames::templates()
                .into_iter()
                .map(|f| (f.label, f.bytes)),
        )
        .chain(probes.iter().map(|p| (p.name.to_string(), p.frame.clone())))
        .filter(|(_, frame)| frame.len() >= ETH_HLEN)
        .collect();
    frames.dedup_by(|a, b| a.1 == b.1);
    frames
}

/// `set` in every setup, the frames through it, the rules' hits compared;
/// every judgeable frame must be decided by one of its rules, or the set
/// no longer reaches the classifier.
fn check_set(
    subjects: &mut [Subject],
    pairs: &mut [Pair<'_>],
    frames: &[(String, Vec<u8>)],
    set: &CheckSet,
) -> Result<()> {
    let rules = rule_set(&set.rules).with_context(|| format!("the set of {}", set.name))?;
    for pair in pairs.iter_mut() {
        pair.install(&rules)?;
    }
    let notices = check_frames_under(subjects, pairs, frames, &set.name)?;
    for pair in pairs.iter() {
        check_hits(pair, &set.name)?;
    }
    let undecided: Vec<&str> = frames
        .iter()
        .zip(&notices)
        .filter(|(_, n)| n.ip_version != 0 && n.flags & FLAG_MALFORMED == 0)
        .filter(|(_, n)| n.rule_id == RULE_NONE)
        .map(|((name, _), _)| name.as_str())
        .collect();
    ensure!(
        undecided.is_empty(),
        "under {}, no rule decides {undecided:?}: the set misses the frames",
        set.name
    );
    let deciding: HashSet<u32> = notices.iter().map(|n| n.rule_id).collect();
    eprintln!(
        "policy bench: per-packet: the C twin matches xdp_hello under {}: {} of {} frames \
         decided by {} rules",
        set.name,
        notices.iter().filter(|n| n.rule_id != RULE_NONE).count(),
        frames.len(),
        deciding.len() - usize::from(deciding.contains(&RULE_NONE))
    );
    Ok(())
}

/// Every frame through ours and the twin of every setup, one run each:
/// same verdict, same notice, same counters after it. Returns ours's
/// notice of each frame (from a setup whose ring is read).
fn check_frames_under(
    subjects: &mut [Subject],
    pairs: &[Pair<'_>],
    frames: &[(String, Vec<u8>)],
    rules: &str,
) -> Result<Vec<Notice>> {
    let mut notices = Vec::with_capacity(frames.len());
    for (name, frame) in frames {
        let mut read = None;
        for (i, pair) in pairs.iter().enumerate() {
            let setup = pair.setup.name;
            let ours = once(&mut subjects[ours_at(i)], frame)?;
            let twin = once(&mut subjects[twin_at(i)], frame)?;
            ensure!(
                ours.0 == twin.0,
                "the C twin gave {name} verdict {}, xdp_hello {} ({setup}, {rules})",
                twin.0,
                ours.0,
            );
            ensure!(
                ours.1 == twin.1,
                "the C twin's notice of {name} differs from xdp_hello's ({setup}, {rules}){}:\n  \
                 rust {:02x?}\n  c    {:02x?}",
                notice_of(&ours.1)
                    .zip(notice_of(&twin.1))
                    .map(|(rust, c)| format!(" in {}", notice_diff(&rust, &c)))
                    .unwrap_or_default(),
                ours.1,
                twin.1
            );
            check_counters(pair, &format!("after {name} ({setup}, {rules})"))?;
            read = read.or_else(|| notice_of(&ours.1));
        }
        notices.push(read.with_context(|| format!("no setup read xdp_hello's notice of {name}"))?);
    }
    Ok(notices)
}

/// The twin's counters must be ours, block by block (per interface) and
/// slot by slot (verdicts, bytes, notices sent, lost, not asked for).
fn check_counters(pair: &Pair<'_>, when: &str) -> Result<()> {
    for block in 0..COUNTER_BLOCKS {
        let rust = sum_block(pair.rust.counters, block)?;
        let c = sum_block(pair.c.counters, block)?;
        ensure!(
            rust == c,
            "the C twin's counter block {block} differs from xdp_hello's {when}:\n  \
             rust {rust:?}\n  c    {c:?}"
        );
    }
    Ok(())
}

/// The twin's hits must be ours, rule by rule.
fn check_hits(pair: &Pair<'_>, rules: &str) -> Result<()> {
    let rust = pair.rust.firewall.hits(&pair.rust.maps)?;
    let c = pair.c.firewall.hits(&pair.c.maps)?;
    for ((rule, ours), (_, twin)) in rust.iter().zip(&c) {
        ensure!(
            ours == twin,
            "the C twin's hits of rule {} '{}' differ from xdp_hello's ({}, {rules}): \
             rust {ours:?}, c {twin:?}",
            rule.id,
            rule.rule.rule,
            pair.setup.name
        );
    }
    Ok(())
}

/// The fields two notices differ in, named, with both values.
fn notice_diff(rust: &Notice, c: &Notice) -> String {
    macro_rules! fields {
        ($n:expr; $($field:ident),*) => {
            [$((stringify!($field), format!("{:?}", $n.$field))),*]
        };
    }
    let fields = |n: &Notice| {
        fields!(n; src_addr, dst_addr, ifindex, rx_queue, packet_len, rule_id, ether_type,
            vlan_outer, vlan_inner, src_port, dst_port, ip_version, l4_proto, icmp_type,
            icmp_code, tcp_flags, verdict, depth, flags, vlan_count, arp_op, eth_src, eth_dst)
    };
    let differing: Vec<String> = fields(rust)
        .into_iter()
        .zip(fields(c))
        .filter(|(ours, twin)| ours.1 != twin.1)
        .map(|((field, ours), (_, twin))| format!("{field} (rust {ours}, c {twin})"))
        .collect();
    if differing.is_empty() {
        "padding".into()
    } else {
        differing.join(", ")
    }
}

/// A notice as it came out of a ring, without its time stamp.
fn notice_of(bytes: &[u8]) -> Option<Notice> {
    (bytes.len() == size_of::<Notice>()).then(|| {
        // SAFETY: as many bytes as a Notice, which is plain data (repr(C),
        // integers and byte arrays: every bit pattern is one).
        unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<Notice>()) }
    })
}

/// One run of `frame`: the verdict, and the notice's bytes without the time
/// stamp (empty where the setup reads no ring).
fn once(subject: &mut Subject, frame: &[u8]) -> Result<(u32, Vec<u8>)> {
    let (_, verdict) = subject.prog.time(frame, 1)?;
    let mut notice = match &subject.records {
        Records::Libbpf(ring) => {
            let seen = ring.drain()?;
            ensure!(
                seen.records == 1,
                "{}: {} notices",
                subject.what,
                seen.records
            );
            seen.last
        }
        _ => Vec::new(),
    };
    if notice.len() == size_of::<Notice>() {
        notice[..8].fill(0); // timestamp_ns
    }
    Ok((verdict, notice))
}

/// The objects of benches/c, built for this run.
struct CObjects {
    twin: PathBuf,
    empty: PathBuf,
}

/// The C side of the comparison: the twin and the floor.
fn build_c() -> Result<CObjects> {
    Ok(CObjects {
        twin: build_c_object("xdp_hello_twin")?,
        empty: build_c_object("empty")?,
    })
}

fn load_object(path: &Path) -> Result<Object> {
    ObjectBuilder::default()
        .open_file(path)
        .and_then(|open| open.load())
        .with_context(|| format!("loading {}", path.display()))
}

/// The twin, set up as `loader::load` sets up ours: ring size and CONFIG.
fn load_twin(path: &Path, setup: &Setup) -> Result<Object> {
    let mut open = ObjectBuilder::default()
        .open_file(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let wanted = config(setup);
    for mut map in open.maps_mut() {
        let name = map.name().to_string_lossy().into_owned();
        if name == "events" {
            map.set_max_entries(setup.ring_bytes)?;
        } else if name.ends_with(".rodata") {
            let rodata = map.initial_value_mut().context("the twin's .rodata")?;
            // CONFIG is alone in .rodata (the C file keeps it so).
            ensure!(
                rodata.len() == size_of::<Config>(),
                "the twin's .rodata holds {} bytes, not CONFIG alone",
                rodata.len()
            );
            rodata.copy_from_slice(&config_bytes(&wanted));
        }
    }
    open.load()
        .with_context(|| format!("loading {}", path.display()))
}

/// `config` as it lies in memory (src/abi.rs: `repr(C)`, fields in this
/// order, no padding), for the twin's .rodata. Destructured, so that a new
/// field of Config does not build until it is written here too.
fn config_bytes(config: &Config) -> Vec<u8> {
    let Config {
        default_verdict,
        notice_mode,
        dry_run,
        sample_every,
        notice_cost_ns,
        bucket_ns,
        iface_count,
        ifindexes,
        snaplen,
        classifier,
        _pad,
    } = *config;
    let mut bytes = Vec::with_capacity(size_of::<Config>());
    for word in [default_verdict, notice_mode, dry_run, sample_every] {
        bytes.extend_from_slice(&word.to_ne_bytes());
    }
    bytes.extend_from_slice(&notice_cost_ns.to_ne_bytes());
    bytes.extend_from_slice(&bucket_ns.to_ne_bytes());
    for word in std::iter::once(iface_count)
        .chain(ifindexes)
        .chain([snaplen, classifier, _pad])
    {
        bytes.extend_from_slice(&word.to_ne_bytes());
    }
    assert_eq!(bytes.len(), size_of::<Config>(), "Config has padding now");
    bytes
}

fn named_maps(object: &Object) -> Vec<libbpf_rs::Map<'_>> {
    object.maps().collect()
}

fn find_map<'a>(object: &'a Object, name: &str) -> Result<libbpf_rs::Map<'a>> {
    object
        .maps()
        .find(|map| map.name() == name)
        .with_context(|| format!("the twin has no map {name}"))
}

/// The twin's maps as xdp_hello::firewall takes them: by the same names.
fn rule_maps<'a>(maps: &'a [libbpf_rs::Map<'a>]) -> Result<RuleMaps<'a>> {
    let by_name = |name: &str| by_name(maps, name);
    Ok(RuleMaps {
        buckets: by_name("address_buckets")?,
        v4_ranges: by_name("v4_ranges")?,
        v6_ranges: by_name("v6_ranges")?,
        ports: by_name("port_classes")?,
        proto: by_name("proto_classes")?,
        icmp: by_name("icmp_classes")?,
        flags: by_name("flag_classes")?,
        ifaces: by_name("iface_classes")?,
        entries: by_name("class_rules")?,
        plans: by_name("plans")?,
        generation: by_name("rule_generation")?,
        hits: by_name("rule_hits")?,
    })
}

fn by_name<'a>(maps: &'a [libbpf_rs::Map<'a>], name: &str) -> Result<&'a dyn MapCore> {
    maps.iter()
        .find(|map| map.name() == name)
        .map(|map| map as &dyn MapCore)
        .with_context(|| format!("the twin has no map {name}"))
}

/// The object's one program, as a [`Prog`].
fn only_prog(object: &Object) -> Result<Prog> {
    let prog = object
        .progs()
        .next()
        .context("an object without a program")?;
    prog_of(prog.as_fd())
}

/// A program we loaded, opened again by its id as the others are.
fn prog_of(fd: BorrowedFd<'_>) -> Result<Prog> {
    // SAFETY: bpf_prog_info is plain data; all zeros is a valid request.
    let mut info: libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libbpf_sys::bpf_prog_info>() as u32;
    // SAFETY: `info` is `len` bytes long and lives across the call.
    let ret = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) };
    ensure!(ret == 0, "reading a program's info: errno {}", -ret);
    Prog::by_id(info.id)
}

/// The seed, loaded by aya as its book does, with a log ring sized so that
/// no record of a call is dropped.
struct Seed {
    ebpf: aya::Ebpf,
    prog: Prog,
    ring: aya::maps::RingBuf<aya::maps::MapData>,
}

impl Seed {
    fn load() -> Result<Seed> {
        let object = build_seed()?;
        let bytes =
            std::fs::read(&object).with_context(|| format!("reading {}", object.display()))?;
        // One record tells its size; then a ring for REPEAT of them.
        let record = {
            let mut seed = Seed::with_ring(&bytes, 1 << 17)?;
            seed.prog.time(&packets::udp64(), 1)?;
            let item = seed.ring.next().context("the seed logged nothing")?;
            item.len()
        };
        let slot = (record + 8).next_multiple_of(8) as u32;
        Seed::with_ring(&bytes, (slot * REPEAT).next_power_of_two())
    }

    fn with_ring(bytes: &[u8], ring_bytes: u32) -> Result<Seed> {
        let mut ebpf = aya::EbpfLoader::new()
            .map_max_entries("AYA_LOGS", ring_bytes)
            .load(bytes)
            .context("aya loading the seed")?;
        let program: &mut aya::programs::Xdp = ebpf
            .program_mut("xdp_hello")
            .context("the seed has no program xdp_hello")?
            .try_into()?;
        program.load().context("loading the seed's program")?;
        let id = program.info()?.id();
        let map = ebpf
            .take_map("AYA_LOGS")
            .context("the seed has no AYA_LOGS")?;
        let ring = aya::maps::RingBuf::try_from(map)?;
        Ok(Seed {
            prog: Prog::by_id(id)?,
            ebpf,
            ring,
        })
    }
}

/// benches/seed built with the nightly pinned for src/bpf, by the
/// bpf-linker scripts/setup.sh installs; the reason where it cannot be.
fn build_seed() -> Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pinned = std::fs::read_to_string(root.join("src/bpf/rust-toolchain.toml"))?;
    let toolchain = pinned
        .lines()
        .find_map(|line| line.strip_prefix("channel = "))
        .map(|quoted| quoted.trim_matches('"'))
        .context("src/bpf/rust-toolchain.toml names no channel")?;
    let target_dir = root.join("target/seed");
    let mut cargo = as_invoking_user(Command::new("rustup"));
    cargo.args(["run", toolchain, "cargo", "build"]);
    cargo.args(["--release", "--locked", "-q", "--target-dir"]);
    cargo
        .arg(&target_dir)
        .current_dir(root.join("benches/seed"));
    // What the outer cargo or the user set for host builds is not for this one.
    for key in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cargo.env_remove(key);
    }
    let out = cargo.output().context("running rustup for benches/seed")?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let why = stderr
            .lines()
            .find(|line| line.starts_with("error"))
            .unwrap_or("see `cargo build` in benches/seed");
        bail!("cannot be built with {toolchain}: {why}");
    }
    Ok(target_dir.join("bpfel-unknown-none/release/xdp_hello_seed"))
}
