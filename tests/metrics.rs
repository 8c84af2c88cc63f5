//! `--metrics` of the built binary attached over a veth: `/metrics` counts
//! what was sent and what the exit summary says, `promtool check metrics`
//! accepts it, reloads are counted, and a bad address fails before anything
//! is attached. Root only, but for the parse errors.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use xdp_hello::loader::Mode;
use xdp_hello::selftest::attach::eventually;
use xdp_hello::selftest::veth::{in_netns, Side, TestNet, A_V4, B_V4};

mod common;
#[path = "support/rules_file.rs"]
mod rules_file;
#[allow(dead_code)]
mod support;
use rules_file::RulesFile;
use support::observer::Observe;

const BINARY: &str = env!("CARGO_BIN_EXE_xdp-hello");
const NEEDS_ROOT: &str = "attaching in namespaces of its own (netns, veth, bpf())";
/// In namespace A, which is the test's own: any port is free.
const LISTEN: &str = "127.0.0.1:9435";
/// Ethernet, IPv4 and UDP headers, and "ping".
const DATAGRAM_BYTES: u64 = 14 + 20 + 8 + 4;

/// `/metrics` from inside namespace A, with curl.
fn scrape(net: &TestNet) -> String {
    let out = net
        .exec(
            Side::A,
            "curl",
            &[
                "-sS",
                "--fail",
                "--max-time",
                "5",
                &format!("http://{LISTEN}/metrics"),
            ],
        )
        .unwrap();
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The samples of a scrape, `name{labels}` → value: enough to read the
/// values a test wants once promtool has judged the format.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .map(|(series, value)| (series.to_string(), value.parse().unwrap()))
        .collect()
}

fn value(samples: &BTreeMap<String, f64>, series: &str) -> u64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in {samples:#?}")) as u64
}

/// `promtool check metrics` on `text`: the format and the naming guide.
fn promtool_accepts(text: &str) {
    // make setup unpacks it here; one on PATH does as well.
    let unpacked = Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/tools/promtool");
    let promtool = if unpacked.exists() {
        unpacked
    } else {
        PathBuf::from("promtool")
    };
    let mut promtool = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (make setup unpacks it into .cache/tools)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn metrics_count_what_was_sent_and_what_the_summary_says() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let observer = net
        .observe(
            BINARY.as_ref(),
            Mode::Skb,
            &[
                "--metrics",
                LISTEN,
                "--rule",
                "deny udp dport 9",
                "--rule",
                "allow udp dport 10",
            ],
        )
        .unwrap();
    let (denied, allowed) = (7u64, 5u64);
    let send = |port: u16, count: u64| {
        let payloads = vec![&b"ping"[..]; count as usize];
        net.send_udp(40000, SocketAddr::from((A_V4, port)), &payloads)
            .unwrap()
    };
    send(9, denied);
    send(10, allowed);
    let rule_packets = |id: u32| format!("xdp_hello_rule_packets_total{{rule_id=\"{id}\"}}");
    assert!(
        eventually(Duration::from_secs(3), || {
            let now = samples(&scrape(&net));
            now.get(&rule_packets(1)) == Some(&(allowed as f64))
        }),
        "the datagrams never showed in the metrics: {}",
        scrape(&net)
    );
    let attached = net.xdp(Side::A).unwrap();
    promtool_accepts(&scrape(&net));
    // Other traffic (neighbour discovery) may still come: stop once two
    // scrapes a moment apart agree.
    let mut last = scrape(&net);
    assert!(eventually(Duration::from_secs(5), || {
        std::thread::sleep(Duration::from_millis(200));
        let now = scrape(&net);
        std::mem::replace(&mut last, now) == last
    }));
    let done = observer.stop(libc::SIGINT).unwrap();
    assert_eq!(done.status.code(), Some(0), "{:?}", done.stderr);

    let got = samples(&last);
    let iface = net.veth(Side::A);
    let verdict = |what: &str, verdict: &str| {
        value(
            &got,
            &format!("xdp_hello_{what}_total{{interface=\"{iface}\",verdict=\"{verdict}\"}}"),
        )
    };
    // What was sent.
    assert_eq!(value(&got, &rule_packets(0)), denied);
    assert_eq!(value(&got, &rule_packets(1)), allowed);
    assert_eq!(
        value(&got, "xdp_hello_rule_bytes_total{rule_id=\"0\"}"),
        denied * DATAGRAM_BYTES
    );
    assert_eq!(verdict("packets", "drop"), denied);
    assert_eq!(verdict("bytes", "drop"), denied * DATAGRAM_BYTES);
    assert!(got.contains_key("xdp_hello_rule_info{rule_id=\"0\",rule=\"deny udp dport 9\"}"));
    assert!(got.contains_key("xdp_hello_rule_info{rule_id=\"1\",rule=\"allow udp dport 10\"}"));
    // What the summary says.
    let summary = done.summary().expect("a summary");
    assert_eq!(
        (
            verdict("packets", "pass"),
            verdict("packets", "drop"),
            verdict("packets", "aborted"),
            value(&got, "xdp_hello_notices_total{outcome=\"shown\"}"),
            value(&got, "xdp_hello_notices_total{outcome=\"lost\"}"),
        ),
        (
            summary.passed,
            summary.dropped,
            summary.aborted,
            summary.shown,
            summary.lost
        ),
        "{:?}",
        done.stderr
    );
    for (id, packets) in [(0, denied), (1, allowed)] {
        let line = format!(
            "xdp-hello:   rule {id:>3} {packets:>10} hits {:>12} bytes",
            packets * DATAGRAM_BYTES
        );
        assert!(
            done.stderr.iter().any(|l| l.starts_with(&line)),
            "{line}: {:?}",
            done.stderr
        );
    }
    // Who it is, and since when.
    let info = got
        .keys()
        .find(|series| series.starts_with("xdp_hello_program_info{"))
        .expect("xdp_hello_program_info");
    assert!(
        info.contains(&format!("interface=\"{iface}\",mode=\"skb\"")),
        "{info}"
    );
    let program_id = format!("program_id=\"{}\"", attached[0].id);
    assert!(info.contains(&program_id), "{info}");
    assert!(got["xdp_hello_start_time_seconds"] > 1.0e9);
}

#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn reloads_are_counted_by_result_and_rules_follow() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let file = RulesFile::new("metrics-reload");
    file.write("deny udp dport 9\n");
    let observer = net
        .observe(
            BINARY.as_ref(),
            Mode::Skb,
            &[
                "--notices",
                "none",
                "--metrics",
                LISTEN,
                "--rules",
                file.path(),
            ],
        )
        .unwrap();
    file.write("deny udp dport 10\n");
    observer.reload(1, Duration::from_secs(5)).unwrap();
    file.write("bogus\n");
    observer.reload(2, Duration::from_secs(5)).unwrap();
    let got = samples(&scrape(&net));
    assert_eq!(value(&got, "xdp_hello_reloads_total{result=\"ok\"}"), 1);
    assert_eq!(value(&got, "xdp_hello_reloads_total{result=\"failed\"}"), 1);
    // The rule that went is gone from the metrics; the new one has a new id.
    let rules: Vec<&String> = got
        .keys()
        .filter(|series| series.starts_with("xdp_hello_rule_info"))
        .collect();
    assert_eq!(
        rules,
        ["xdp_hello_rule_info{rule_id=\"1\",rule=\"deny udp dport 10\"}"]
    );
    observer.stop(libc::SIGINT).unwrap();
}

#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn an_address_in_use_fails_before_the_attach() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    // Held by the test in namespace A while xdp-hello tries it there.
    let taken = in_netns(net.ns(Side::A), || Ok(TcpListener::bind(LISTEN)?)).unwrap();
    for (addr, why) in [
        (LISTEN, "Address already in use"),
        (
            &format!("{B_V4}:9435")[..],
            "Cannot assign requested address",
        ),
    ] {
        let out = net
            .exec(
                Side::A,
                BINARY,
                &["-i", net.veth(Side::A), "--metrics", addr],
            )
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.starts_with(&format!("xdp-hello: --metrics {addr}: cannot listen there"))
                && stderr.contains(why),
            "{stderr}"
        );
        assert!(net.xdp(Side::A).unwrap().is_empty());
    }
    drop(taken);
}

#[test]
fn an_unparsable_address_is_a_usage_error() {
    for addr in ["localhost:9435", "127.0.0.1", "9435", "127.0.0.1:99999"] {
        let out = Command::new(BINARY)
            .args(["-i", "lo", "--metrics", addr])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{addr}: {stderr}");
        assert!(
            stderr.contains("not an IP address and port (e.g. 127.0.0.1:9435, [::]:9435)"),
            "{stderr}"
        );
    }
}
