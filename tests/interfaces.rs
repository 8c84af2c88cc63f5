//! Several interfaces in one run, and the accounting of rate control: the
//! built binary on two veth interfaces in one namespace (notices from each
//! with its own name, an `on IFACE` rule on one only, status naming both, a
//! refusal on the second leaving nothing on the first), and a flood under
//! `--sample` and `--max-rate` whose every packet the summary accounts for.
//! Root only: ignored as anyone else; `make test` runs them.

mod common;
#[allow(dead_code)]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::observer::{Observe, Observer};
use support::{refusal, Sender};
use xdp_hello::loader::Mode;
use xdp_hello::selftest::veth::{Side, TestNet};

const BINARY: &str = env!("CARGO_BIN_EXE_xdp-hello");
const NEEDS_ROOT: &str = "attaching in namespaces of its own (netns, veth, bpf())";

/// Two veth pairs whose A ends share one namespace (`first`'s A): the
/// second pair's A end is moved there. Each pair's B end sends into it.
struct TwoInterfaces {
    first: TestNet,
    second: TestNet,
}

impl TwoInterfaces {
    fn new() -> TwoInterfaces {
        let first = TestNet::new().unwrap();
        let second = TestNet::new().unwrap();
        let moved = second.veth(Side::A);
        second
            .ip(
                Side::A,
                &["link", "set", "dev", moved, "netns", first.ns(Side::A)],
            )
            .unwrap();
        first
            .ip(Side::A, &["link", "set", "dev", moved, "up"])
            .unwrap();
        TwoInterfaces { first, second }
    }

    fn names(&self) -> [&str; 2] {
        [self.first.veth(Side::A), self.second.veth(Side::A)]
    }

    /// `xdp-hello ARGS…` in the shared namespace, started and attached.
    fn observe(&self, args: &[&str]) -> Observer {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", self.first.ns(Side::A), BINARY])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut observer = Observer::start_command(command).unwrap();
        observer
            .wait_attached(self.first.ns(Side::A), &self.names().join(","))
            .unwrap();
        observer
    }

    /// Whether any interface of the shared namespace has an XDP program.
    fn anything_attached(&self) -> bool {
        let links = self.first.ip(Side::A, &["-d", "link", "show"]).unwrap();
        let net = self
            .first
            .exec(Side::A, "bpftool", &["net", "show"])
            .unwrap();
        links.contains("prog/xdp") || String::from_utf8_lossy(&net.stdout).contains("xdp_hello")
    }
}

/// One interface's accounting line of the summary: `NAME: P packets = N
/// notices + S sampled out + O over the rate + L lost (ring full) + A not
/// asked for`, as (P, [N, S, O, L, A]).
fn accounting(stderr: &[String], iface: &str) -> (u64, [u64; 5]) {
    let prefix = format!("xdp-hello:   {iface}: ");
    let line = stderr
        .iter()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no accounting line for {iface}: {stderr:?}"));
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    assert_eq!(numbers.len(), 6, "{line}");
    (
        numbers[0],
        [numbers[1], numbers[2], numbers[3], numbers[4], numbers[5]],
    )
}

/// `-i a -i b`: one program, a link on each, notices from both named by
/// their own interface, `deny udp on b` dropping on b only, status naming
/// both, and a summary with each one's accounting.
#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn notices_from_two_interfaces_carry_each_its_name() {
    common::require_root(NEEDS_ROOT);
    let net = TwoInterfaces::new();
    let [a, b] = net.names();
    let deny_on_b = format!("deny udp on {b}");
    let observer = net.observe(&["-i", a, "-i", b, "-m", "skb", "-j", "--rule", &deny_on_b]);
    let banner = observer.stderr().join("\n");
    assert!(
        banner.contains(&format!("attached to {a}, {b} (skb mode, 1 rule")),
        "{banner}"
    );
    // One program on both, each by a link of its own.
    let (on_a, on_b) = (net.first.xdp(Side::A).unwrap(), xdp_on(&net, b));
    assert_eq!(on_a.len(), 1, "{on_a:?}");
    assert_eq!(on_a, on_b);

    let status = net.first.exec(Side::A, BINARY, &["status", "-j"]).unwrap();
    let doc: Value = serde_json::from_slice(&status.stdout).unwrap();
    let names: Vec<&str> = doc["instances"][0]["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|iface| iface["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [a, b]);

    let senders = [
        Sender::start(&net.first, Some(200)),
        Sender::start(&net.second, Some(200)),
    ];
    std::thread::sleep(Duration::from_millis(500));
    let [sent_a, sent_b] = senders.map(|sender| sender.stop().unwrap());
    assert!(sent_a > 0 && sent_b > 0);
    let want = sent_a + sent_b;
    let udp9 = |line: &str| line.contains("\"dport\":9");
    observer.wait_for_lines(want as usize, udp9, Duration::from_secs(5));
    let done = observer.stop(libc::SIGINT).unwrap();
    assert!(done.status.success(), "{:?}", done.stderr);

    let notices: Vec<Value> = done
        .stdout
        .iter()
        .filter(|line| udp9(line))
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let of =
        |iface: &str| -> Vec<&Value> { notices.iter().filter(|n| n["iface"] == iface).collect() };
    assert_eq!(of(a).len() as u64, sent_a, "notices from {a}");
    assert_eq!(of(b).len() as u64, sent_b, "notices from {b}");
    assert_eq!(
        notices.len() as u64,
        want,
        "every notice names one of the two"
    );
    assert!(of(a).iter().all(|n| n["verdict"] == "PASS"), "{:?}", of(a));
    assert!(of(b).iter().all(|n| n["verdict"] == "DROP"), "{:?}", of(b));

    let summary = done.stderr.join("\n");
    assert!(
        summary.contains(&format!("detached from {a}, {b}.")),
        "{summary}"
    );
    for (iface, sent) in [(a, sent_a), (b, sent_b)] {
        let (packets, [shown, sampled, over, lost, not_asked]) = accounting(&done.stderr, iface);
        assert!(packets >= sent, "{iface}: {packets} < {sent}");
        assert_eq!(
            packets,
            shown + sampled + over + lost + not_asked,
            "{iface}"
        );
        assert_eq!((sampled, over, lost, not_asked), (0, 0, 0, 0), "{iface}");
    }
    assert!(!net.anything_attached());
}

/// The ids of the XDP programs on `iface` of the shared namespace.
fn xdp_on(net: &TwoInterfaces, iface: &str) -> Vec<xdp_hello::selftest::veth::XdpProg> {
    xdp_hello::selftest::veth::xdp_programs(net.first.ns(Side::A), iface).unwrap()
}

/// A refusal on the second interface (a program already there) detaches
/// the program from the first again, names the one that failed, exits
/// non-zero; an unknown second name is refused before anything is loaded.
#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn a_failure_on_the_second_interface_detaches_the_first() {
    common::require_root(NEEDS_ROOT);
    let net = TwoInterfaces::new();
    let [a, b] = net.names();
    // b is taken by another xdp-hello.
    let holder = net.observe(&["-i", b, "-m", "skb", "--notices", "none"]);
    let out = net
        .first
        .exec(Side::A, BINARY, &["-i", a, "-i", b, "-m", "skb"])
        .unwrap();
    let error = refusal(&out);
    assert!(
        error.contains(&format!("{b} already has an XDP program")),
        "{error}"
    );
    assert!(
        error.contains(&format!("detached again from {a}")),
        "{error}"
    );
    assert!(
        net.first.xdp(Side::A).unwrap().is_empty(),
        "{a} kept a program"
    );
    holder.stop(libc::SIGINT).unwrap();
    assert!(!net.anything_attached());

    let out = net
        .first
        .exec(
            Side::A,
            BINARY,
            &["-i", a, "-i", "no-such-iface", "-m", "skb"],
        )
        .unwrap();
    let error = refusal(&out);
    assert!(
        error.contains("no interface named 'no-such-iface'"),
        "{error}"
    );
    let out = net
        .first
        .exec(Side::A, BINARY, &["-i", &format!("{a},{a}"), "-m", "skb"])
        .unwrap();
    assert!(refusal(&out).contains("given twice"));
    assert!(!net.anything_attached());
}

/// A flood under `--sample 7 --max-rate 1000`: every packet is accounted
/// for (notices + sampled out + over the rate + lost + not asked for),
/// both limits did hold packets back, the notices shown are those the
/// kernel sent, and no more than the buckets allow.
#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn the_accounting_adds_up_after_a_flood() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let iface = net.veth(Side::A).to_string();
    let observer = net
        .observe(
            BINARY.as_ref(),
            Mode::Skb,
            &["-j", "--sample", "7", "--max-rate", "1000"],
        )
        .unwrap();
    let started = Instant::now();
    let sender = Sender::start(&net, None);
    std::thread::sleep(Duration::from_millis(1000));
    let sent = sender.stop().unwrap();
    let done = observer.stop(libc::SIGINT).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert!(done.status.success(), "{:?}", done.stderr);
    let (packets, [notices, sampled, over, lost, not_asked]) = accounting(&done.stderr, &iface);
    assert!(packets >= sent, "{packets} packets, {sent} sent");
    assert_eq!(packets, notices + sampled + over + lost + not_asked);
    assert_eq!(not_asked, 0);
    assert!(sampled > 0 && over > 0, "{:?}", done.stderr);
    let shown = done.summary().expect("a summary").shown;
    assert_eq!(shown, notices, "shown and sent by the kernel");
    assert_eq!(done.stdout.len() as u64, notices);
    // Each CPU's bucket: one second's worth to start, then 1000 a second.
    let cpus = std::thread::available_parallelism().unwrap().get() as f64;
    assert!(
        (notices as f64) <= cpus * 1000.0 * (seconds + 1.0),
        "{notices} notices in {seconds:.1} s"
    );
}
