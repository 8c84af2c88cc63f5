//! Ordered policies on the built binary, end to end (issue 9): the issue's
//! "SSH from the admin network only" in a rules file over a real veth, with
//! real TCP connections from an admitted and a refused source; `--dry-run`
//! under a policy that denies everything; a live swap between two
//! 10,000-rule sets under traffic in which no packet sees a mixed set; and
//! `xdp-hello check`. Root only: ignored as anyone else; `make test` runs
//! them. All traffic stays inside the test's namespaces.

use std::io::{self, Read, Write};
use std::mem::size_of;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::Context;
use xdp_hello::loader::Mode;
use xdp_hello::selftest::attach::eventually;
use xdp_hello::selftest::command;
use xdp_hello::selftest::veth::{in_netns, Side, TestNet, A_V4, B_V4};

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
/// How long a refused connection is tried: SYN, and one retransmission
/// after a second.
const REFUSED_WAIT: Duration = Duration::from_millis(1500);

// ---------------------------------------------------------------------------
// Notices, summaries

impl Line {
    /// TCP from `src` to A's `port`.
    fn is_tcp(&self, src: Ipv4Addr, port: u16) -> bool {
        self.proto == "TCP"
            && self.src == src.to_string()
            && self.dst == A_V4.to_string()
            && self.dport == Some(port)
    }
}

fn lines(stdout: &[String]) -> Vec<Line> {
    stdout.iter().filter_map(|l| Line::parse(l)).collect()
}

/// The summary's per-rule lines: (id, packets, bytes, rule).
fn rule_hits(done: &Finished) -> Vec<(u64, u64, u64, String)> {
    done.stderr
        .iter()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match &words[..] {
                ["xdp-hello:", "rule", id, packets, "hits", bytes, "bytes", rule @ ..] => Some((
                    id.parse().ok()?,
                    packets.parse().ok()?,
                    bytes.parse().ok()?,
                    rule.join(" "),
                )),
                _ => None,
            }
        })
        .collect()
}

fn dump(done: &Finished) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        done.stdout.join("\n"),
        done.stderr.join("\n")
    )
}

/// xdp-hello attached in skb mode to A's veth with `extra` arguments.
fn observe(net: &TestNet, extra: &[&str]) -> Observer {
    net.observe(BINARY.as_ref(), Mode::Skb, extra).unwrap()
}

/// Stopped with SIGINT: exit status 0, nothing left attached.
fn stop(observer: Observer, net: &TestNet) -> Finished {
    let done = observer.stop(libc::SIGINT).expect("stopping xdp-hello");
    assert_eq!(done.status.code(), Some(0), "{}", dump(&done));
    assert_eq!(net.xdp(Side::A).unwrap(), [], "still attached");
    done
}

// ---------------------------------------------------------------------------
// Real TCP

/// A listener on A's address and `port` in A's namespace, answering every
/// connection with "hello" until dropped.
struct Listener {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    fn start(net: &TestNet, port: u16) -> Listener {
        // A socket stays in the namespace it was made in.
        let listener = in_netns(net.ns(Side::A), || {
            TcpListener::bind((A_V4, port)).with_context(|| format!("listening on {A_V4}:{port}"))
        })
        .unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.write_all(b"hello");
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Listener {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A TCP connection from B's address `src` to A's `port`, tried for at
/// most `timeout`: the greeting it read, or why it failed.
fn connect_from(net: &TestNet, src: Ipv4Addr, port: u16, timeout: Duration) -> io::Result<String> {
    in_netns(net.ns(Side::B), || {
        Ok(connect_in_this_netns(src, port, timeout))
    })
    .expect("a thread in B's namespace")
}

fn connect_in_this_netns(src: Ipv4Addr, port: u16, timeout: Duration) -> io::Result<String> {
    // std's TcpStream cannot bind before it connects: socket(2) by hand.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let address = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
    let from = address(src, 0);
    if unsafe { libc::bind(socket.as_raw_fd(), &from as *const _ as *const _, len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // A blocking connect(2) gives up after SO_SNDTIMEO.
    let limit = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    let set = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            &limit as *const _ as *const _,
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if set != 0 {
        return Err(io::Error::last_os_error());
    }
    let to = address(A_V4, port);
    if unsafe { libc::connect(socket.as_raw_fd(), &to as *const _ as *const _, len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut stream = TcpStream::from(socket);
    stream.set_read_timeout(Some(timeout))?;
    let mut greeting = String::new();
    stream.read_to_string(&mut greeting)?;
    Ok(greeting)
}

// ---------------------------------------------------------------------------
// (a) SSH from the admin network only

/// The admin network: B's own address is in it, its second one is not.
const ADMIN_NET: &str = "10.211.0.0/28";
const OUTSIDER: Ipv4Addr = Ipv4Addr::new(10, 211, 0, 100);

/// The policy, as a new user would write it, with --default deny:
/// SSH from the admin network connects, SSH from elsewhere times out, the
/// web ports are open to all, a port no rule opens is closed, ping works;
/// every notice names the rule that decided it, and the summary counts them.
#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn ssh_from_the_admin_network_only() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let veth_b = net.veth(Side::B).to_string();
    net.ip(
        Side::B,
        &["addr", "add", &format!("{OUTSIDER}/24"), "dev", &veth_b],
    )
    .unwrap();
    let file = RulesFile::new("ssh-admin");
    file.write(&format!(
        "# SSH from the admin network only\n\
         allow tcp dport 22 src {ADMIN_NET}\n\
         deny  tcp dport 22\n\
         allow tcp dport 80,443,8000-8080\n\
         allow icmp type 0,3,8,11\n\
         deny  src 203.0.113.0/24 log\n"
    ));
    let _listeners: Vec<Listener> = [22, 8080, 2222]
        .into_iter()
        .map(|port| Listener::start(&net, port))
        .collect();
    let observer = net
        .observe(
            BINARY.as_ref(),
            Mode::Native,
            &["-j", "--default", "deny", "--rules", file.path()],
        )
        .unwrap();

    let admitted = connect_from(&net, B_V4, 22, NOTICE_WAIT);
    assert_eq!(admitted.as_deref().ok(), Some("hello"), "{admitted:?}");
    let refused = connect_from(&net, OUTSIDER, 22, REFUSED_WAIT);
    assert!(
        refused.is_err(),
        "SSH from {OUTSIDER} got through: {refused:?}"
    );
    let web = connect_from(&net, OUTSIDER, 8080, NOTICE_WAIT);
    assert_eq!(web.as_deref().ok(), Some("hello"), "{web:?}");
    let closed = connect_from(&net, B_V4, 2222, REFUSED_WAIT);
    assert!(closed.is_err(), "port 2222 is open: {closed:?}");
    net.ping(A_V4.into(), 2).unwrap();
    let echo =
        |line: &str| Line::parse(line).is_some_and(|l| l.proto == "ICMP" && l.rule == Some(3));
    observer.wait_for_lines(2, echo, NOTICE_WAIT);

    let done = stop(observer, &net);
    let notices = lines(&done.stdout);
    let of = |src: Ipv4Addr, port: u16| -> Vec<(String, Option<u32>)> {
        notices
            .iter()
            .filter(|l| l.is_tcp(src, port))
            .map(|l| (l.verdict.clone(), l.rule))
            .collect()
    };
    let all = |seen: &[(String, Option<u32>)], verdict: &str, rule: Option<u32>| {
        !seen.is_empty() && seen.iter().all(|(v, r)| v == verdict && *r == rule)
    };
    // The handshake and the greeting's ACKs and FINs: all the first rule's.
    let ssh_admitted = of(B_V4, 22);
    assert!(ssh_admitted.len() >= 3, "{}", dump(&done));
    assert!(all(&ssh_admitted, "PASS", Some(0)), "{}", dump(&done));
    // The SYN and its retransmission: the second rule's.
    let ssh_refused = of(OUTSIDER, 22);
    assert!(all(&ssh_refused, "DROP", Some(1)), "{}", dump(&done));
    assert!(all(&of(OUTSIDER, 8080), "PASS", Some(2)), "{}", dump(&done));
    assert!(all(&of(B_V4, 2222), "DROP", None), "{}", dump(&done));

    let hits = rule_hits(&done);
    let packets: Vec<(u64, u64)> = hits.iter().map(|h| (h.0, h.1)).collect();
    let count = |rule: u64| {
        let rule = u32::try_from(rule).ok();
        notices.iter().filter(|l| l.rule == rule).count() as u64
    };
    assert_eq!(
        packets,
        (0..5).map(|id| (id, count(id))).collect::<Vec<_>>(),
        "{}",
        dump(&done)
    );
    assert!(hits.iter().all(|h| h.2 >= 60 * h.1), "{hits:?}");
    assert_eq!(hits[0].3, format!("allow tcp dport 22 src {ADMIN_NET}"));
}

// ---------------------------------------------------------------------------
// (b) --dry-run

/// The words of the summary line before "would have been dropped".
fn would_have_been_dropped(done: &Finished) -> Option<u64> {
    done.stderr.iter().find_map(|line| {
        let (before, _) = line.split_once(" would have been dropped (dry run)")?;
        before.rsplit(' ').next()?.parse().ok()
    })
}

/// `--dry-run` under a policy that denies everything: every ping is
/// answered, every IP packet's notice says DROP with `"dry_run": true` and
/// the rule, and the summary counts them as would-have-been-dropped; as
/// text, the lines say `would DROP`.
#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn dry_run_drops_nothing_and_counts_what_it_would() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let observer = observe(
        &net,
        &["-j", "--dry-run", "--default", "deny", "--rule", "deny"],
    );
    net.ping(A_V4.into(), 3).unwrap();
    let to = SocketAddr::V4(SocketAddrV4::new(A_V4, 50001));
    net.send_udp(40001, to, &[b"x".as_slice(); 2]).unwrap();
    let dropped_udp = |line: &str| {
        Line::parse(line).is_some_and(|l| {
            l.proto == "UDP" && l.dport == Some(50001) && l.verdict == "DROP" && l.rule == Some(0)
        })
    };
    assert_eq!(observer.wait_for_lines(2, dropped_udp, NOTICE_WAIT), 2);

    let done = stop(observer, &net);
    let notices = lines(&done.stdout);
    assert_eq!(notices.len(), done.stdout.len(), "{}", dump(&done));
    assert!(notices.iter().all(|l| l.dry_run), "{}", dump(&done));
    let echoes: Vec<&Line> = notices
        .iter()
        .filter(|l| l.proto == "ICMP" && l.src == B_V4.to_string())
        .collect();
    assert!(echoes.len() >= 3, "{}", dump(&done));
    assert!(
        echoes
            .iter()
            .all(|l| l.verdict == "DROP" && l.rule == Some(0)),
        "{}",
        dump(&done)
    );
    let drops = notices.iter().filter(|l| l.verdict == "DROP").count() as u64;
    assert_eq!(
        would_have_been_dropped(&done),
        Some(drops),
        "{}",
        dump(&done)
    );
    assert_eq!(rule_hits(&done)[0].1, drops, "{}", dump(&done));

    // As text.
    let observer = observe(&net, &["--dry-run", "--rule", "deny icmp"]);
    net.ping(A_V4.into(), 2).unwrap();
    let would_drop = |line: &str| line.contains(" ICMP ") && line.contains(" would DROP ");
    assert_eq!(observer.wait_for_lines(2, would_drop, NOTICE_WAIT), 2);
    let done = stop(observer, &net);
    assert_eq!(would_have_been_dropped(&done).map(|n| n >= 2), Some(true));
}

/// `log` shows what its rule decides even under `--notices none`, and
/// nothing else shows.
#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn log_rules_notice_under_notices_none() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let observer = observe(
        &net,
        &[
            "-j",
            "--notices",
            "none",
            "--rule",
            "deny udp dport 50002 log",
            "--rule",
            "allow udp",
        ],
    );
    let to = |port| SocketAddr::V4(SocketAddrV4::new(A_V4, port));
    net.send_udp(40001, to(50001), &[b"x".as_slice(); 2])
        .unwrap();
    net.send_udp(40002, to(50002), &[b"x".as_slice(); 3])
        .unwrap();
    net.ping(A_V4.into(), 1).unwrap();
    let logged = |line: &str| {
        Line::parse(line).is_some_and(|l| {
            l.proto == "UDP" && l.dport == Some(50002) && l.verdict == "DROP" && l.rule == Some(0)
        })
    };
    assert_eq!(observer.wait_for_lines(3, logged, NOTICE_WAIT), 3);
    let done = stop(observer, &net);
    assert_eq!(done.stdout.len(), 3, "{}", dump(&done));
    let hits: Vec<(u64, u64)> = rule_hits(&done).iter().map(|h| (h.0, h.1)).collect();
    assert_eq!(hits, [(0, 3), (1, 2)], "{}", dump(&done));

    // As text, the column header comes before the first such line, and
    // not at all before it.
    let observer = observe(
        &net,
        &["--notices", "none", "--rule", "deny udp dport 50002 log"],
    );
    net.send_udp(40001, to(50001), &[b"x".as_slice()]).unwrap();
    thread::sleep(Duration::from_millis(300));
    assert_eq!(observer.wait_for_lines(1, |_| true, Duration::ZERO), 0);
    net.send_udp(40002, to(50002), &[b"x".as_slice()]).unwrap();
    let logged = |line: &str| line.contains("DROP") && line.contains(":50002");
    assert_eq!(observer.wait_for_lines(1, logged, NOTICE_WAIT), 1);
    let done = stop(observer, &net);
    assert_eq!(done.stdout.len(), 2, "{}", dump(&done));
    assert!(done.stdout[0].starts_with("TIME "), "{}", dump(&done));
}

// ---------------------------------------------------------------------------
// (c) A live swap between two 10,000-rule sets

const BIG: usize = 10_000;

/// Two sets of BIG rules that decide the probe flow (B:40000 → A:9 over
/// UDP, `support::Sender`'s) by their last rule, one allowing and one
/// denying it, and otherwise as unlike as they can be: the first asks for
/// source addresses, the second for source ports, so that a packet that
/// saw the classes of one set and the entries of the other would not find
/// its rule.
fn big_sets() -> [String; 2] {
    let mut allowing = String::new();
    let mut denying = String::new();
    for i in 0..BIG - 1 {
        allowing.push_str(&format!(
            "deny udp dport 9 src 10.50.{}.{}\n",
            i / 250,
            i % 250
        ));
        denying.push_str(&format!("allow udp sport {}\n", 1000 + i));
    }
    allowing.push_str("allow udp dport 9\n");
    denying.push_str(&format!("deny udp dport 9 src {B_V4}\n"));
    [allowing, denying]
}

/// Steady probe traffic while SIGHUP swaps between the two sets several
/// times: every probe notice has the verdict and the rule id of the set in
/// force at one moment (new ids each time, as the sets share no rule), and
/// every set in turn decided some.
#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn live_swap_between_two_10000_rule_sets() {
    common::require_root(NEEDS_ROOT);
    const SWAPS: usize = 6;
    let net = TestNet::new().unwrap();
    let file = RulesFile::new("big-swap");
    let sets = big_sets();
    file.write(&sets[0]);
    let observer = observe(&net, &["-j", "--rules", file.path()]);
    let probe = |line: &String| {
        Line::parse(line)
            .filter(|l| l.proto == "UDP" && l.src == B_V4.to_string() && l.dport == Some(9))
    };
    let probes_seen = || observer.stdout().iter().filter_map(probe).count();
    let sender = support::Sender::start(&net, Some(2000));
    for swap in 1..=SWAPS {
        let before = probes_seen();
        assert!(
            eventually(NOTICE_WAIT, || probes_seen() >= before + 100),
            "the probe flow stalled before swap {swap}"
        );
        file.write(&sets[swap % 2]);
        let reloaded = observer.reload(swap, Duration::from_secs(10)).unwrap();
        assert!(reloaded.ends_with(": 10000 rules in force"), "{reloaded}");
    }
    let before = probes_seen();
    assert!(eventually(NOTICE_WAIT, || probes_seen() >= before + 100));
    let sent = sender.stop().unwrap();
    let done = stop(observer, &net);

    // Set k (from 0) is in force after swap k; its rules have ids from
    // BIG * k, its last rule decides the probes.
    let mut per_set = [0usize; SWAPS + 1];
    let mut wrong = Vec::new();
    for line in done.stdout.iter().filter_map(probe) {
        let decided = line.rule.map(u64::from).and_then(|id| {
            let set = (id / BIG as u64) as usize;
            let verdict = if set % 2 == 0 { "PASS" } else { "DROP" };
            (id % BIG as u64 == BIG as u64 - 1 && set <= SWAPS && line.verdict == verdict)
                .then_some(set)
        });
        match decided {
            Some(set) => per_set[set] += 1,
            None => wrong.push(line),
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of the probe notices belong to no one set, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert!(
        per_set.iter().all(|&n| n > 0),
        "some sets decided no probe: {per_set:?} ({sent} sent)"
    );
    let summary = done.summary().unwrap();
    assert_eq!((summary.aborted, summary.lost), (0, 0), "{summary:?}");
}

// ---------------------------------------------------------------------------
// (d) xdp-hello check

/// `xdp-hello check ARGS…` without the capabilities to load or attach
/// anything: whatever it does, it cannot have loaded a thing.
fn check(args: &[&str]) -> Output {
    let caps = "-sys_admin,-bpf,-net_admin,-perfmon";
    let mut command = Command::new("setpriv");
    command
        .arg(format!("--bounding-set={caps}"))
        .arg(format!("--inh-caps={caps}"))
        .arg(BINARY)
        .arg("check")
        .args(args);
    command::output_within(&mut command, Duration::from_secs(10)).unwrap()
}

/// A shadowed rule and one no packet can match are warnings naming their
/// FILE:LINE (exit 0); a bad rule is an error naming its FILE:LINE (exit 2).
/// Nothing is loaded: it runs without the privileges to.
#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn check_flags_shadowed_and_never_matching_rules() {
    common::require_root(NEEDS_ROOT);
    let file = RulesFile::new("check");
    file.write(
        "# what earlier rules decide\n\
         allow tcp dport 22\n\
         allow tcp dport 22 src 10.0.0.0/8\n\
         \n\
         allow icmp type 8 src 2001:db8::/32\n\
         deny tcp dport 22 src 10.0.0.0/8\n",
    );
    let path = file.path();
    let out = check(&["--rules", path]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let warnings: Vec<&str> = stdout.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 2, "{stdout}");
    assert!(
        warnings[0].starts_with(&format!("{path}:3: warning: "))
            && warnings[0].contains("can never match")
            && warnings[0].contains(&format!("{path}:2")),
        "{stdout}"
    );
    assert!(
        warnings[1].starts_with(&format!("{path}:5: warning: "))
            && warnings[1].contains("can never match"),
        "{stdout}"
    );
    // A deny behind an allow still decides what the allow cannot judge (a
    // TCP header cut short): not shadowed.
    assert!(!stdout.contains(&format!("{path}:6")), "{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("4 rules, 2 can never match; "), "{stdout}");

    file.write("allow icmp\n# a typo\ndeny tcp dport 22-x\n");
    let out = check(&["--rule", "deny udp dport 53", "--rules", path]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains(&format!("{path}:3")) && stderr.contains("deny tcp dport 22-x"),
        "{stderr}"
    );
}

/// How long a check of BIG rules takes, as a smoke figure: it compiles
/// what a run would load.
#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn check_takes_a_10000_rule_set() {
    common::require_root(NEEDS_ROOT);
    let file = RulesFile::new("check-big");
    for (n, set) in big_sets().iter().enumerate() {
        file.write(set);
        let started = Instant::now();
        let out = check(&["--rules", file.path()]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "set {n}: {stdout}");
        let last = stdout.lines().last().unwrap_or_default();
        assert!(last.starts_with("10000 rules, 0 can never match"), "{last}");
        eprintln!("check of set {n}: {:?}", started.elapsed());
    }
}

/// A reader that stops early (`check … | head`) ends the report quietly:
/// no panic, exit 0, far more warnings than a pipe holds.
#[test]
fn check_into_a_pipe_closed_early_exits_quietly() {
    let file = RulesFile::new("check-head");
    file.write(&"allow tcp dport 22\n".repeat(5000));
    let mut child = Command::new(BINARY)
        .args(["check", "--rules", file.path()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 64];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The read end is closed here; the rest cannot be written.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        String::from_utf8_lossy(&first).contains("warning"),
        "{first:?}"
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}
