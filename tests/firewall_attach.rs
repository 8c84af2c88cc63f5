//! The firewall of the built binary, attached for real in native and skb
//! mode to a veth pair in namespaces of each test's own
//! (xdp_hello::selftest::veth): deny rules stop pings and datagrams from the
//! other end, allow rules make exceptions, the summary counts what was sent,
//! SIGHUP swaps the rules without detaching, bad rules are refused before
//! anything is attached. Root only:
//! ignored as anyone else; `make test` runs them.
//!
//! All traffic stays inside the test's namespaces. One test runs the binary
//! in the host's namespace, without the capabilities to load or attach
//! anything, to see the --default deny warning.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use xdp_hello::loader::Mode;
use xdp_hello::output::HEADER;
use xdp_hello::selftest::command;
use xdp_hello::selftest::veth::{Side, TestNet, XdpProg, A_V4, A_V6, B_V4, B_V6};

mod common;

/// What the tests marked `needs root` need it for.
const NEEDS_ROOT: &str = "attaching in namespaces of its own (netns, veth, bpf())";
#[path = "support/rules_file.rs"]
mod rules_file;
#[allow(dead_code)]
mod support;
use rules_file::RulesFile;
use support::notice_line::Line;
use support::observer::{Finished, Observe, Observer};

const BINARY: &str = env!("CARGO_BIN_EXE_xdp-hello");
/// How long a notice may take to show after its packet was sent.
const NOTICE_WAIT: Duration = Duration::from_secs(3);
/// A second address of B's, inside the /24 of the veth pair.
const B2_V4: Ipv4Addr = Ipv4Addr::new(10, 211, 0, 3);

fn binary() -> &'static Path {
    Path::new(BINARY)
}

/// `count` echo requests from B (from `source`, else its own address) to
/// `to`, 50 ms apart, each waited for at most a second. Whether every one
/// was answered. Unlike `TestNet::ping` it gives up after the last request
/// instead of sending more until a deadline: the requests sent are exactly
/// `count`, and a blocked ping costs a second, not five.
fn ping_answered(net: &TestNet, source: Option<Ipv4Addr>, to: IpAddr, count: u32) -> bool {
    let count = count.to_string();
    let to = to.to_string();
    let source = source.map(|s| s.to_string());
    let mut args = vec!["-n", "-q", "-c", &count, "-i", "0.05", "-W", "1"];
    if let Some(source) = &source {
        args.extend(["-I", source]);
    }
    args.push(&to);
    net.exec(Side::B, "ping", &args)
        .expect("running ping")
        .status
        .success()
}

impl Line {
    /// The `rule` field, if any.
    fn rule(&self) -> Option<u32> {
        self.rule
    }
}

/// What to look for among the notice lines.
#[derive(Clone, Copy)]
struct Want<'a> {
    proto: &'a str,
    src: &'a str,
    dst: &'a str,
    verdict: &'a str,
    /// The deciding rule's id; None for the default.
    rule: Option<u32>,
}

impl Want<'_> {
    fn matches(&self, line: &str) -> bool {
        Line::parse(line).is_some_and(|l| {
            l.proto == self.proto
                && l.src == self.src
                && l.dst == self.dst
                && l.verdict == self.verdict
                && l.rule() == self.rule
        })
    }
}

fn echo_request(src: Ipv4Addr, verdict: &'static str, rule: Option<u32>) -> impl Fn(&str) -> bool {
    let (src, dst) = (src.to_string(), A_V4.to_string());
    move |line| {
        let want = Want {
            proto: "ICMP",
            src: &src,
            dst: &dst,
            verdict,
            rule,
        };
        want.matches(line) && Line::parse(line).is_some_and(|l| l.echo_request)
    }
}

/// How many of `lines` match `what`.
fn count(lines: &[String], what: impl Fn(&str) -> bool) -> usize {
    lines.iter().filter(|l| what(l)).count()
}

/// Stopped with SIGINT: exit status 0, every stdout line a JSON notice, a
/// summary that agrees with stdout, nothing aborted or lost, nothing left
/// attached.
fn stop(observer: Observer, net: &TestNet) -> Finished {
    let done = observer.stop(libc::SIGINT).expect("stopping xdp-hello");
    assert_eq!(done.status.code(), Some(0), "{:?}", done.stderr);
    let not_json: Vec<&String> = done
        .stdout
        .iter()
        .filter(|l| Line::parse(l).is_none())
        .collect();
    assert!(not_json.is_empty(), "not JSON notices: {not_json:?}");
    let summary = done
        .summary()
        .unwrap_or_else(|| panic!("no summary on stderr: {:?}", done.stderr));
    assert_eq!(summary.shown, done.stdout.len() as u64, "{summary:?}");
    assert_eq!((summary.aborted, summary.lost), (0, 0), "{summary:?}");
    let drops = count(&done.stdout, |l| {
        Line::parse(l).is_some_and(|l| l.verdict == "DROP")
    });
    assert_eq!(summary.dropped, drops as u64, "{summary:?}");
    assert_eq!(net.xdp(Side::A).unwrap(), [], "still attached");
    done
}

/// The summary's per-rule lines: (id, hits, rule). Each line also counts
/// bytes: at least a minimal Ethernet frame a hit, none without one.
fn rule_hits(done: &Finished) -> Vec<(u32, u64, String)> {
    done.stderr
        .iter()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match &words[..] {
                ["xdp-hello:", "rule", id, hits, "hits", bytes, "bytes", rule @ ..] => {
                    let (hits, bytes): (u64, u64) = (hits.parse().ok()?, bytes.parse().ok()?);
                    assert!(
                        (hits == 0) == (bytes == 0) && bytes >= 42 * hits,
                        "{hits} hits of {bytes} bytes: {line}"
                    );
                    Some((id.parse().ok()?, hits, rule.join(" ")))
                }
                _ => None,
            }
        })
        .collect()
}

/// The one program on A's veth, in `mode`, by the kernel.
fn attached(net: &TestNet, mode: Mode) -> XdpProg {
    support::attach::attached(net, mode).unwrap()
}

fn dump(done: &Finished) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        done.stdout.join("\n"),
        done.stderr.join("\n")
    )
}

// ---------------------------------------------------------------------------
// Deny, allow, counts

fn deny_src_blocks_ping(mode: Mode) {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let rule = format!("deny src {B_V4}");
    let observer = net
        .observe(binary(), mode, &["-j", "--rule", &rule])
        .unwrap();
    attached(&net, mode);

    assert!(
        !ping_answered(&net, None, A_V4.into(), 3),
        "ping got through '{rule}'"
    );
    // The rule is about IPv4: IPv6 from the same host is not its business.
    net.ping(A_V6.into(), 2).unwrap();
    let dropped = echo_request(B_V4, "DROP", Some(0));
    assert_eq!(observer.wait_for_lines(3, &dropped, NOTICE_WAIT), 3);

    let done = stop(observer, &net);
    // Nothing else comes from B's IPv4 address (ARP is not IP, and passes).
    let summary = done.summary().unwrap();
    assert_eq!(count(&done.stdout, &dropped), 3, "{}", dump(&done));
    assert_eq!(summary.dropped, 3, "{}", dump(&done));
    let (b6, a6) = (B_V6.to_string(), A_V6.to_string());
    let v6_echo = Want {
        proto: "ICMPv6",
        src: &b6,
        dst: &a6,
        verdict: "PASS",
        rule: None,
    };
    let v6_echo =
        |line: &str| v6_echo.matches(line) && Line::parse(line).is_some_and(|l| l.echo_request);
    assert_eq!(count(&done.stdout, v6_echo), 2, "{}", dump(&done));
    assert!(summary.passed >= 2, "{}", dump(&done));
    assert_eq!(rule_hits(&done), [(0, 3, rule)], "{}", dump(&done));
}

#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn native_deny_src_blocks_ping() {
    deny_src_blocks_ping(Mode::Native);
}

#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn skb_deny_src_blocks_ping() {
    deny_src_blocks_ping(Mode::Skb);
}

/// `allow src B` + `deny src 10.211.0.0/24`, the exception first (the
/// first rule that matches decides): B's pings get through, those from B's
/// second address in the same /24 do not.
fn allow_exception_lets_one_host_through(mode: Mode) {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let veth_b = net.veth(Side::B).to_string();
    net.ip(
        Side::B,
        &["addr", "add", &format!("{B2_V4}/24"), "dev", &veth_b],
    )
    .unwrap();
    let deny = "deny src 10.211.0.0/24".to_string();
    let allow = format!("allow src {B_V4}");
    let observer = net
        .observe(binary(), mode, &["-j", "--rule", &allow, "--rule", &deny])
        .unwrap();
    attached(&net, mode);

    net.ping(A_V4.into(), 3).unwrap();
    assert!(
        !ping_answered(&net, Some(B2_V4), A_V4.into(), 2),
        "ping from {B2_V4} got through '{deny}'"
    );
    let passed = echo_request(B_V4, "PASS", Some(0));
    let dropped = echo_request(B2_V4, "DROP", Some(1));
    assert_eq!(observer.wait_for_lines(3, &passed, NOTICE_WAIT), 3);
    assert_eq!(observer.wait_for_lines(2, &dropped, NOTICE_WAIT), 2);

    let done = stop(observer, &net);
    let summary = done.summary().unwrap();
    assert_eq!(count(&done.stdout, &passed), 3, "{}", dump(&done));
    assert_eq!(count(&done.stdout, &dropped), 2, "{}", dump(&done));
    assert_eq!(summary.dropped, 2, "{}", dump(&done));
    assert!(summary.passed >= 3, "{}", dump(&done));
    assert_eq!(
        rule_hits(&done),
        [(0, 3, allow), (1, 2, deny)],
        "{}",
        dump(&done)
    );
}

#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn native_allow_exception_lets_one_host_through() {
    allow_exception_lets_one_host_through(Mode::Native);
}

#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn skb_allow_exception_lets_one_host_through() {
    allow_exception_lets_one_host_through(Mode::Skb);
}

/// `deny udp dport 50001` drops datagrams to that port, over IPv4 and IPv6,
/// and not those to the port next to it.
fn udp_dport_rule_blocks_one_port(mode: Mode) {
    common::require_root(NEEDS_ROOT);
    const PAYLOAD: &[u8] = b"hello";
    let net = TestNet::new().unwrap();
    let observer = net
        .observe(binary(), mode, &["-j", "--rule", "deny udp dport 50001"])
        .unwrap();
    attached(&net, mode);

    let blocked_v4 = SocketAddr::new(A_V4.into(), 50001);
    let open_v4 = SocketAddr::new(A_V4.into(), 50002);
    let blocked_v6 = SocketAddr::new(A_V6.into(), 50001);
    net.send_udp(40001, blocked_v4, &[PAYLOAD; 4]).unwrap();
    net.send_udp(40002, open_v4, &[PAYLOAD; 3]).unwrap();
    net.send_udp(40003, blocked_v6, &[PAYLOAD; 2]).unwrap();

    let udp = |dst: SocketAddr, verdict: &'static str, rule: Option<u32>| {
        move |line: &str| {
            Line::parse(line).is_some_and(|l| {
                l.proto == "UDP"
                    && (l.dst.as_str(), l.dport)
                        == (dst.ip().to_string().as_str(), Some(dst.port()))
                    && l.verdict == verdict
                    && l.rule() == rule
            })
        }
    };
    let wants = [
        (udp(blocked_v4, "DROP", Some(0)), 4),
        (udp(open_v4, "PASS", None), 3),
        (udp(blocked_v6, "DROP", Some(0)), 2),
    ];
    for (what, n) in &wants {
        observer.wait_for_lines(*n, what, NOTICE_WAIT);
    }

    let done = stop(observer, &net);
    for (what, n) in &wants {
        assert_eq!(count(&done.stdout, what), *n, "{}", dump(&done));
    }
    let summary = done.summary().unwrap();
    assert_eq!(summary.dropped, 6, "{}", dump(&done));
    assert!(summary.passed >= 3, "{}", dump(&done));
    assert_eq!(
        rule_hits(&done),
        [(0, 6, "deny udp dport 50001".to_string())],
        "{}",
        dump(&done)
    );
}

#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn native_udp_dport_rule_blocks_one_port() {
    udp_dport_rule_blocks_one_port(Mode::Native);
}

#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn skb_udp_dport_rule_blocks_one_port() {
    udp_dport_rule_blocks_one_port(Mode::Skb);
}

/// In a namespace of its own, --default deny gives no warning, drops what no
/// rule allows and lets through what one does.
#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn default_deny_in_a_namespace_without_warning() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let observer = net
        .observe(
            binary(),
            Mode::Skb,
            &["-j", "--default", "deny", "--rule", "allow icmp type 8"],
        )
        .unwrap();
    net.ping(A_V4.into(), 2).unwrap();
    let to = SocketAddr::new(A_V4.into(), 50001);
    net.send_udp(40001, to, &[b"x".as_slice(); 2]).unwrap();
    let dropped = |line: &str| {
        Line::parse(line).is_some_and(|l| {
            l.proto == "UDP"
                && (l.dst.as_str(), l.dport) == (to.ip().to_string().as_str(), Some(to.port()))
                && l.verdict == "DROP"
                && l.rule().is_none()
        })
    };
    observer.wait_for_lines(2, dropped, NOTICE_WAIT);

    let done = stop(observer, &net);
    assert!(
        !done.stderr.iter().any(|l| l.contains("warning")),
        "{}",
        dump(&done)
    );
    assert_eq!(
        count(&done.stdout, echo_request(B_V4, "PASS", Some(0))),
        2,
        "{}",
        dump(&done)
    );
    assert_eq!(count(&done.stdout, dropped), 2, "{}", dump(&done));
    assert_eq!(
        rule_hits(&done),
        [(0, 2, "allow icmp type 8".to_string())],
        "{}",
        dump(&done)
    );
}

// ---------------------------------------------------------------------------
// Live reload

/// A deny in the rules file blocks the ping; an invalid file on SIGHUP is
/// refused, saying why, and the deny holds; the file without the deny on
/// SIGHUP lets the ping through. The program is never detached: same id
/// all along.
fn sighup_reloads_in_place(mode: Mode, test: &str) {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let file = RulesFile::new(test);
    let deny = format!("deny src {B_V4}");
    file.write(&format!("# {test}\ndeny udp dport 9\n{deny}\n"));
    let observer = net
        .observe(binary(), mode, &["-j", "--rules", file.path()])
        .unwrap();
    let prog = attached(&net, mode);
    let blocked = echo_request(B_V4, "DROP", Some(1));
    assert!(
        !ping_answered(&net, None, A_V4.into(), 3),
        "'{deny}' let the ping through"
    );
    assert_eq!(observer.wait_for_lines(3, &blocked, NOTICE_WAIT), 3);

    // Line 4 is bad: the whole file is refused.
    file.write("deny udp dport 9\nallow icmp\n\ndeny src 10.0.0.0/33\n");
    let refused = observer.reload(1, Duration::from_secs(3)).unwrap();
    for part in [
        "failed, keeping the 2 rules in force",
        &format!("{}:4", file.path()),
        "deny src 10.0.0.0/33",
    ] {
        assert!(refused.contains(part), "should say '{part}': {refused}");
    }
    assert!(
        !ping_answered(&net, None, A_V4.into(), 3),
        "the deny is gone after a failed reload"
    );
    assert_eq!(observer.wait_for_lines(6, &blocked, NOTICE_WAIT), 6);
    assert_eq!(attached(&net, mode), prog, "reattached");

    file.write("deny udp dport 9\n");
    let reloaded = observer.reload(2, Duration::from_secs(3)).unwrap();
    assert!(
        reloaded.contains(&format!("reload 2 of {}: 1 rule in force", file.path())),
        "{reloaded}"
    );
    net.ping(A_V4.into(), 3).unwrap();
    let passed = echo_request(B_V4, "PASS", None);
    assert_eq!(observer.wait_for_lines(3, &passed, NOTICE_WAIT), 3);
    assert_eq!(attached(&net, mode), prog, "reattached");
    assert!(
        support::prog_loaded(prog.id),
        "program {} is no longer loaded",
        prog.id
    );

    let done = stop(observer, &net);
    assert_eq!(count(&done.stdout, &blocked), 6, "{}", dump(&done));
    assert_eq!(count(&done.stdout, &passed), 3, "{}", dump(&done));
    assert_eq!(done.summary().unwrap().dropped, 6, "{}", dump(&done));
    // The rule that stayed kept its id; the one that went is not listed.
    assert_eq!(
        rule_hits(&done),
        [(0, 0, "deny udp dport 9".to_string())],
        "{}",
        dump(&done)
    );
}

#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn native_sighup_reloads_in_place() {
    sighup_reloads_in_place(Mode::Native, "native_sighup_reloads_in_place");
}

#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn skb_sighup_reloads_in_place() {
    sighup_reloads_in_place(Mode::Skb, "skb_sighup_reloads_in_place");
}

// ---------------------------------------------------------------------------
// Refusals

/// `xdp-hello -i A's veth -m skb EXTRA…` in namespace A, expected to refuse
/// with exit status 2 and a one-line message, attaching nothing.
fn refused_with_2(net: &TestNet, extra: &[&str]) -> String {
    let mut args = vec!["-i", net.veth(Side::A), "-m", "skb"];
    args.extend(extra);
    let out = net.exec(Side::A, binary(), &args).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "want a one-line error: {stderr}");
    assert!(out.stdout.is_empty(), "stdout: {:?}", out.stdout);
    assert_eq!(net.xdp(Side::A).unwrap(), [], "attached anyway");
    stderr
}

#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn bad_rule_flag_exits_2_naming_it() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let error = refused_with_2(
        &net,
        &["--rule", "deny icmp", "--rule", "deny src 10.0.0.0/33"],
    );
    for part in ["--rule #2", "'deny src 10.0.0.0/33'", "write /32 or less"] {
        assert!(error.contains(part), "should say '{part}': {error}");
    }
    let error = refused_with_2(&net, &["--rule", "deny icmp", "--rule", "deny dport 22"]);
    for part in ["--rule #2", "'deny dport 22'", "needs tcp or udp"] {
        assert!(error.contains(part), "should say '{part}': {error}");
    }
}

#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn bad_rules_file_exits_2_naming_file_and_line() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let file = RulesFile::new("bad-line-3");
    file.write("# line 1\ndeny icmp\ndeny tcp dport 22-x\nallow src 10.0.0.1\n");
    let error = refused_with_2(&net, &["--rules", file.path()]);
    for part in [
        &format!("{}:3", file.path()),
        "bad rule 'deny tcp dport 22-x'",
    ] {
        assert!(error.contains(part), "should say '{part}': {error}");
    }
    let missing = format!("{}.missing", file.path());
    let error = refused_with_2(&net, &["--rules", &missing]);
    assert!(error.contains("cannot read rules file"), "{error}");
}

/// Runs the binary with `--default deny -i lo` stripped of the capabilities
/// to load or attach BPF programs (CAP_SYS_PTRACE stays, so it can still
/// compare its network namespace with init's), in the host's namespace or
/// in `netns`. It warns (or not), then fails to load. Nothing is attached,
/// nothing is sent: it cannot.
fn default_deny_without_privileges(netns: Option<&str>) -> Output {
    let mut command = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "setpriv"]);
            c
        }
        None => Command::new("setpriv"),
    };
    let caps = "-sys_admin,-bpf,-net_admin,-perfmon";
    command
        .arg(format!("--bounding-set={caps}"))
        .arg(format!("--inh-caps={caps}"))
        .arg(BINARY)
        .args(["-i", "lo", "--default", "deny"]);
    let out = command::output_within(&mut command, Duration::from_secs(10)).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("not allowed to load XDP programs"),
        "{stderr}"
    );
    out
}

#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn default_deny_warns_in_the_host_namespace_only() {
    common::require_root(NEEDS_ROOT);
    let warning = "warning: --default deny on lo drops all IP traffic no rule allows";
    let host = default_deny_without_privileges(None);
    let host = String::from_utf8_lossy(&host.stderr);
    assert!(host.contains(warning), "{host}");
    let net = TestNet::new().unwrap();
    let inside = default_deny_without_privileges(Some(net.ns(Side::A)));
    let inside = String::from_utf8_lossy(&inside.stderr);
    assert!(!inside.contains("warning"), "{inside}");
}

// ---------------------------------------------------------------------------
// What a notice shows, from real traffic

/// The MAC address of `side`'s veth end, as `ip -j link` gives it.
fn mac_of(net: &TestNet, side: Side) -> String {
    let json = net
        .ip(side, &["-j", "link", "show", "dev", net.veth(side)])
        .unwrap();
    let links: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    links[0]["address"].as_str().unwrap().to_string()
}

/// Issue 7 item 25, end to end: B's first ping makes it ask for A's MAC
/// address; that ARP request shows as `who-has A tell B` in text, and in
/// JSON with its addresses and the Ethernet source (B's MAC), as the XDP
/// program fills them in.
#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn arp_request_shows_who_has_with_its_addresses() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let observer = net.observe(binary(), Mode::Skb, &[]).unwrap();
    net.ping(A_V4.into(), 1).unwrap();
    // The text line itself is what is tested here: its words, in columns.
    let who_has = format!("who-has {A_V4} tell {B_V4}");
    let text = |line: &str| {
        let words: Vec<&str> = line.split_whitespace().collect();
        matches!(
            words[..],
            [_time, _iface, _len, "ARP", "PASS", src, "→", dst, ..]
                if src == B_V4.to_string() && dst == A_V4.to_string()
        ) && line.ends_with(&who_has)
    };
    assert_eq!(
        observer.wait_for_lines(1, text, NOTICE_WAIT),
        1,
        "{:?}",
        observer.stdout()
    );
    let done = observer.stop(libc::SIGINT).expect("stopping xdp-hello");
    assert_eq!(done.status.code(), Some(0), "{:?}", done.stderr);
    assert_eq!(done.stdout.first().map(String::as_str), Some(HEADER));
    assert_eq!(net.xdp(Side::A).unwrap(), [], "still attached");

    // The same, as JSON (a fresh pair: B has not asked for A yet).
    let net = TestNet::new().unwrap();
    let b_mac = mac_of(&net, Side::B);
    let observer = net.observe(binary(), Mode::Skb, &["-j"]).unwrap();
    net.ping(A_V4.into(), 1).unwrap();
    let request = |line: &str| {
        serde_json::from_str::<serde_json::Value>(line)
            .is_ok_and(|v| v["proto"] == "ARP" && v["arp_op"] == 1)
    };
    assert_eq!(observer.wait_for_lines(1, request, NOTICE_WAIT), 1);
    let line = observer.stdout().into_iter().find(|l| request(l)).unwrap();
    let value: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(value["src"], B_V4.to_string(), "{line}");
    assert_eq!(value["dst"], A_V4.to_string(), "{line}");
    assert_eq!(value["eth_src"], b_mac.as_str(), "{line}");
    assert_eq!(value["eth_dst"], "ff:ff:ff:ff:ff:ff", "{line}");
    assert_eq!(value["arp_sender_mac"], b_mac.as_str(), "{line}");
    assert_eq!(value["arp_target_mac"], "00:00:00:00:00:00", "{line}");
    assert_eq!(value["vlan_tags"], 0, "{line}");
    observer.stop(libc::SIGINT).unwrap();
}
