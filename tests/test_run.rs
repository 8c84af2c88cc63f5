//! Every crafted frame of `selftest::packets` through the real XDP program
//! with BPF_PROG_TEST_RUN, one #[test] each; and all of them through a dry
//! run of `deny`, the rule that matches every IP packet. Needs root: ignored
//! otherwise, run by `make test`.
//!
//! Each test loads its own copy of the program: tests run in parallel, and a
//! shared ring buffer would hand one test's notice to another.

use std::mem::MaybeUninit;

use libbpf_rs::ProgramInput;
use xdp_hello::abi::{
    Config, Notice, ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q, ETH_P_IP, ETH_P_IPV6, FLAG_MALFORMED,
    RULE_NONE, XDP_DROP, XDP_PASS,
};
use xdp_hello::firewall::{Firewall, RuleMaps, RuleSet};
use xdp_hello::loader;
use xdp_hello::selftest::packets::{self, cases, Case};
use xdp_hello::selftest::test_run::{self, CONFIG, RING_BYTES};
use xdp_hello::stats::Counters;

mod common;

/// What the tests marked `needs root` need it for.
const NEEDS_ROOT: &str = "loading XDP programs";

/// Runs the case named like the test (`_` for `-`).
fn run(test_name: &str) {
    common::require_root(NEEDS_ROOT);
    let name = test_name.replace('_', "-");
    let case = cases()
        .into_iter()
        .find(|case| case.name == name)
        .unwrap_or_else(|| panic!("no case named {name} in selftest::packets"));
    let mut object = MaybeUninit::uninit();
    let skel = loader::load(&mut object, RING_BYTES, CONFIG).expect("loading the XDP program");
    if let Err(err) = test_run::run_case(&skel, &case) {
        panic!("case {name}: {err:#}\n  frame: {}", hex(&case));
    }
}

fn hex(case: &Case) -> String {
    case.frame.iter().map(|b| format!("{b:02x}")).collect()
}

macro_rules! case_tests {
    ($($name:ident),+ $(,)?) => {
        $(
            #[test]
            #[ignore = "needs root: loading XDP programs"]
            fn $name() {
                run(stringify!($name));
            }
        )+
        const TESTED: &[&str] = &[$(stringify!($name)),+];
    };
}

case_tests!(
    ipv4_tcp_syn,
    ipv4_tcp_all_flags,
    ipv4_udp,
    ipv4_icmp_echo_request,
    ipv4_sctp,
    ipv6_tcp_fin_psh_ack,
    ipv6_udp,
    ipv6_icmpv6_echo_request,
    vlan_ipv4_udp,
    qinq_ipv6_tcp_syn,
    vlan_three_tags,
    vlan_four_priority_tags,
    vlan_tags_at_limit,
    vlan_tags_over_limit,
    arp_request,
    ipv4_options_udp,
    ipv4_fragment_first_udp,
    ipv4_fragment_later_udp,
    ipv4_ihl_4,
    ipv4_version_6,
    ipv4_udp_padded,
    ipv4_total_length_past_frame,
    ipv4_total_length_in_header,
    ipv4_tcp_fragment_offset_1,
    ipv6_ext_fragment_first_udp,
    ipv6_ext_fragment_later_udp,
    ipv6_ext_chain_at_limit_udp,
    ipv6_ext_chain_over_limit_udp,
    ipv6_payload_length_past_frame,
    ipv6_jumbogram,
    ipv4_ah_tcp_syn,
    ipv6_ah_tcp_syn,
    ipv6_ah_too_short,
    ipv4_esp,
    ipv6_esp,
    ipv4_tcp_syn_cut_0_empty,
    ipv4_tcp_syn_cut_6_in_ethernet,
    ipv4_tcp_syn_cut_13_in_ethernet,
    ipv4_tcp_syn_cut_14_after_ethernet,
    ipv4_tcp_syn_cut_24_in_ipv4,
    ipv4_tcp_syn_cut_34_after_ipv4,
    ipv4_tcp_syn_cut_47_in_tcp,
    ipv4_tcp_syn_ends_34_after_ipv4,
    ipv4_tcp_syn_ends_42_in_tcp,
    ipv4_tcp_syn_ends_53_in_tcp,
    ipv4_udp_ends_38_in_udp,
    ipv4_icmp_echo_request_ends_38_in_icmp,
    ipv4_options_udp_cut_38_in_options,
    ipv4_options_udp_ends_38_in_options,
    vlan_ipv4_udp_cut_16_in_vlan_tag,
    vlan_ipv4_udp_cut_18_after_vlan_tag,
    qinq_ipv6_tcp_syn_cut_20_in_inner_tag,
    ipv6_udp_cut_34_in_ipv6,
    ipv6_udp_cut_54_after_ipv6,
    ipv6_udp_ends_54_after_ipv6,
    ipv6_udp_ends_58_in_udp,
    ipv6_tcp_fin_psh_ack_ends_64_in_tcp,
    ipv6_icmpv6_echo_request_ends_58_in_icmpv6,
    ipv6_ext_fragment_first_udp_ends_55_in_hop_by_hop,
    ipv6_ext_fragment_first_udp_ends_64_in_hop_by_hop,
    ipv6_ext_fragment_first_udp_ends_106_in_fragment_header,
    ipv6_ah_tcp_syn_ends_70_in_ah,
);

/// A case added to `selftest::packets` must get a test here too.
#[test]
fn every_case_has_a_test() {
    let all = cases();
    let missing: Vec<&str> = all
        .iter()
        .map(|case| case.name.as_str())
        .filter(|name| !TESTED.contains(&name.replace('-', "_").as_str()))
        .collect();
    assert!(missing.is_empty(), "cases without a test: {missing:?}");
    let mut names: Vec<&str> = all.iter().map(|case| case.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len(), "two cases share a name");
}

/// The timing helper of the benchmark, on a short run.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn ns_per_packet_counts_the_notices() {
    common::require_root(NEEDS_ROOT);
    let mut object = MaybeUninit::uninit();
    let skel = loader::load(&mut object, RING_BYTES, CONFIG).expect("loading the XDP program");
    let timing =
        test_run::ns_per_packet(&skel, &packets::udp64(), 1000).expect("timing the program");
    assert!(timing.ns_per_packet > 0, "{timing:?}");
    assert_eq!(
        timing.notices_sent + timing.notices_lost,
        1000,
        "{timing:?}"
    );
}

/// What `deny` alone decides for a frame the walk leaves as `seen`: every
/// IP packet it can judge is its; IP it cannot judge is dropped before any
/// rule; everything else passes.
fn under_deny(seen: &Notice, deny_slot: u32) -> (u8, u32) {
    let ip_ether_type = matches!(
        seen.ether_type,
        ETH_P_IP | ETH_P_IPV6 | ETH_P_8021Q | ETH_P_8021AD
    );
    if seen.ip_version != 0 && seen.flags & FLAG_MALFORMED == 0 {
        (XDP_DROP, deny_slot)
    } else if seen.ip_version != 0 || ip_ether_type {
        (XDP_DROP, RULE_NONE)
    } else {
        (XDP_PASS, RULE_NONE)
    }
}

/// `--dry-run` drops nothing: every frame passes, while its notice says
/// what `deny` would have done, and the counters count that.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn a_dry_run_of_deny_passes_every_frame() {
    common::require_root(NEEDS_ROOT);
    let mut object = MaybeUninit::uninit();
    let config = Config {
        dry_run: 1,
        ..CONFIG
    };
    let skel = loader::load(&mut object, RING_BYTES, config).expect("loading the XDP program");
    let mut firewall = Firewall::new();
    let deny = RuleSet::load(&["deny".to_string()], None).expect("compiling deny");
    firewall
        .install(&RuleMaps::of(&skel.maps), &deny)
        .expect("installing deny");
    let deny_slot = firewall.slot_of(firewall.rules()[0].id).unwrap();
    let mut failures = Vec::new();
    let mut would_drop = 0;
    // Frames shorter than Ethernet need the selftest's tricks to run at
    // all; they are not IP, and their own tests above cover them.
    let all: Vec<Case> = cases()
        .into_iter()
        .filter(|case| case.frame.len() >= ETH_HLEN)
        .collect();
    for case in &all {
        let input = ProgramInput {
            data_in: Some(&case.frame),
            repeat: 1,
            ..Default::default()
        };
        let output = skel
            .progs
            .xdp_hello
            .test_run(input)
            .expect("BPF_PROG_TEST_RUN");
        let mut notices = Vec::new();
        test_run::drain(&skel.maps.events, |notice| notices.push(notice)).unwrap();
        let want = under_deny(&case.expect, deny_slot);
        would_drop += u64::from(want.0 == XDP_DROP);
        let got = match notices[..] {
            [notice] => (notice.verdict, notice.rule_id),
            _ => {
                failures.push(format!("{}: {} notices", case.name, notices.len()));
                continue;
            }
        };
        if output.return_value != XDP_PASS as u32 || got != want {
            failures.push(format!(
                "{}: returned {}, notice (verdict, rule) {got:?}; want {XDP_PASS}, {want:?}",
                case.name, output.return_value
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let counters = xdp_hello::stats::Counters::read(&skel.maps.counters).unwrap();
    assert_eq!(
        (counters.dropped, counters.passed),
        (would_drop, all.len() as u64 - would_drop),
        "{counters:?}"
    );
    assert!(
        would_drop > all.len() as u64 / 2,
        "{would_drop} of {}",
        all.len()
    );
}

/// `frame` through the program `repeat` times in one BPF_PROG_TEST_RUN
/// (one CPU throughout); returns the notices that came out of the ring.
fn run_repeated(skel: &xdp_hello::skel::XdpHelloSkel<'_>, frame: &[u8], repeat: u32) -> usize {
    let input = ProgramInput {
        data_in: Some(frame),
        repeat,
        ..Default::default()
    };
    skel.progs
        .xdp_hello
        .test_run(input)
        .expect("BPF_PROG_TEST_RUN");
    let mut notices = 0;
    test_run::drain(&skel.maps.events, |_| notices += 1).unwrap();
    notices
}

/// A frame of the cases by name.
fn frame(name: &str) -> Vec<u8> {
    cases()
        .into_iter()
        .find(|case| case.name == name)
        .unwrap_or_else(|| panic!("no case {name}"))
        .frame
}

/// The settings of `--max-rate rate`.
fn max_rate(rate: u32) -> Config {
    CONFIG.with_max_rate(rate)
}

/// The program under `config` and `rules`, each of `runs` (a frame, how
/// many times) through it in turn: the notices of each run, and the
/// counters after the last.
fn counted(config: Config, rules: &[&str], runs: &[(&[u8], u32)]) -> (Vec<usize>, Counters) {
    // Sampling and the rate are per CPU, and the counters summed over CPUs
    // hide nothing but the state does: every run must be on one CPU.
    pin_to_this_cpu();
    let mut object = MaybeUninit::uninit();
    let skel = loader::load(&mut object, RING_BYTES, config).expect("loading the XDP program");
    let texts: Vec<String> = rules.iter().map(|rule| rule.to_string()).collect();
    let rules = RuleSet::load(&texts, None).expect("compiling the rules");
    Firewall::new()
        .install(&RuleMaps::of(&skel.maps), &rules)
        .expect("installing the rules");
    let notices = runs
        .iter()
        .map(|(frame, repeat)| run_repeated(&skel, frame, *repeat))
        .collect();
    let counters = Counters::read(&skel.maps.counters).unwrap();
    assert_eq!(counters.accounted(), counters.packets(), "{counters:?}");
    (notices, counters)
}

/// Keeps this thread on the CPU it runs on now, so that BPF_PROG_TEST_RUN
/// meets the same per-CPU state (`rate_state`) call after call.
fn pin_to_this_cpu() {
    // SAFETY: sched_getcpu has no preconditions; the set is plain data,
    // filled by CPU_SET, and handed to the kernel for this thread (pid 0).
    unsafe {
        let cpu = libc::sched_getcpu();
        assert!(
            cpu >= 0,
            "sched_getcpu: {}",
            std::io::Error::last_os_error()
        );
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        let pinned = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(
            pinned,
            0,
            "sched_setaffinity: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// `--sample 10` over 1000 packets: exactly 100 notices, 900 sampled out,
/// every packet counted. Later runs count on where it stopped (a run of
/// its own would start with a notice again): packets 1001, then none of
/// 1006-1010, then 1011.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn sampling_keeps_exactly_one_packet_in_n() {
    common::require_root(NEEDS_ROOT);
    let udp = packets::udp64();
    let config = Config {
        sample_every: 10,
        ..CONFIG
    };
    let (notices, counters) = counted(
        config,
        &[],
        &[(&udp, 1000), (&udp, 5), (&udp, 5), (&udp, 1)],
    );
    assert_eq!(notices, [100, 1, 0, 1]);
    assert_eq!(
        (counters.passed, counters.notices_sent, counters.sampled_out),
        (1011, 102, 909),
        "{counters:?}"
    );
}

/// A `log` rule asked for each of its packets: sampling leaves them all,
/// and samples only what the notice mode asks for.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn a_log_rule_is_never_sampled() {
    common::require_root(NEEDS_ROOT);
    let config = Config {
        sample_every: 10,
        ..CONFIG
    };
    let (udp, tcp) = (packets::udp64(), frame("ipv4-tcp-syn"));
    let (notices, counters) = counted(config, &["allow udp log"], &[(&udp, 100), (&tcp, 100)]);
    assert_eq!(notices, [100, 10]);
    assert_eq!(
        (counters.notices_sent, counters.sampled_out),
        (110, 90),
        "{counters:?}"
    );
}

/// `--max-rate 10`: a burst far faster than the refill gets exactly the
/// bucket (one second's worth, 10) and the rest is over the rate; a second
/// later the bucket is full again, never fuller.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn the_rate_limit_lets_exactly_the_bucket_through() {
    common::require_root(NEEDS_ROOT);
    pin_to_this_cpu();
    let mut object = MaybeUninit::uninit();
    let skel = loader::load(&mut object, RING_BYTES, max_rate(10)).expect("loading");
    // 1000 runs take well under the 100 ms one token takes to refill.
    assert_eq!(run_repeated(&skel, &packets::udp64(), 1000), 10);
    let counters = Counters::read(&skel.maps.counters).unwrap();
    assert_eq!(
        (counters.notices_sent, counters.over_rate),
        (10, 990),
        "{counters:?}"
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(run_repeated(&skel, &packets::udp64(), 1000), 10);
    let counters = Counters::read(&skel.maps.counters).unwrap();
    assert_eq!(
        (counters.passed, counters.notices_sent, counters.over_rate),
        (2000, 20, 1980),
        "{counters:?}"
    );
    assert_eq!(counters.accounted(), counters.packets(), "{counters:?}");
}

/// Sampling first, then the rate: of 1000 packets 1 in 10 is sampled in,
/// and of those 100 the bucket of 5 lets 5 through.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn sampling_comes_before_the_rate_limit() {
    common::require_root(NEEDS_ROOT);
    let config = Config {
        sample_every: 10,
        ..max_rate(5)
    };
    let (notices, counters) = counted(config, &[], &[(&packets::udp64(), 1000)]);
    assert_eq!(notices, [5]);
    let held = (counters.sampled_out, counters.over_rate);
    assert_eq!(held, (900, 95), "{counters:?}");
}

/// `--notices denied`: what passes is counted as not asked for, so the
/// accounting adds up in every mode.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn packets_not_asked_for_are_counted() {
    common::require_root(NEEDS_ROOT);
    let config = Config {
        notice_mode: xdp_hello::abi::NOTICES_DENIED,
        ..CONFIG
    };
    let (notices, counters) = counted(config, &[], &[(&packets::udp64(), 50)]);
    assert_eq!(notices, [0]);
    assert_eq!((counters.passed, counters.not_asked), (50, 50));
}

/// Counters go to the block of the packet's interface: BPF_PROG_TEST_RUN
/// runs on loopback, second in this table; the other blocks stay at zero.
#[test]
#[ignore = "needs root: loading XDP programs"]
fn counters_go_to_the_block_of_their_interface() {
    common::require_root(NEEDS_ROOT);
    let lo = xdp_hello::iface::index_of("lo").unwrap();
    let mut ifindexes = [0; xdp_hello::abi::MAX_IFACES as usize];
    ifindexes[..2].copy_from_slice(&[lo + 1000, lo]);
    let config = Config {
        iface_count: 2,
        ifindexes,
        ..CONFIG
    };
    let mut object = MaybeUninit::uninit();
    let skel = loader::load(&mut object, RING_BYTES, config).expect("loading");
    assert_eq!(run_repeated(&skel, &packets::udp64(), 7), 7);
    let block = |block| Counters::read_block(&skel.maps.counters, block).unwrap();
    assert_eq!((block(1).passed, block(1).notices_sent), (7, 7));
    assert_eq!(block(0), Counters::default());
    assert_eq!(block(xdp_hello::abi::MAX_IFACES), Counters::default());
}
