//! Capture end to end: the built binary on a veth of the test's own writes
//! pcapng (-w FILE, -w -) that tcpdump, tshark and pcap-file read back with
//! the bytes that were sent, their lengths and the verdict comments; -c
//! stops the run; --stats lines carry a date; bad capture flags are
//! refused before anything is attached. Root only, but for the flag checks.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use xdp_hello::loader::Mode;
use xdp_hello::selftest::attach::eventually;
use xdp_hello::selftest::command;
use xdp_hello::selftest::veth::{Side, TestNet, A_V4, B_V4};

mod common;
#[allow(dead_code)]
mod support;
use support::observer::{Observe, Observer};
use support::refusal;

/// What the tests marked `needs root` need it for.
const NEEDS_ROOT: &str = "network namespaces, veth, bpf()";
const BINARY: &str = env!("CARGO_BIN_EXE_xdp-hello");

/// The snap length the file tests capture with: less than the long frame.
const SNAPLEN: usize = 128;
/// Ethernet + IPv4 + UDP headers in front of each payload.
const HEADERS: usize = 14 + 20 + 8;
/// The ports B sends to: the rule drops the one, the default passes the other.
const DENIED_PORT: u16 = 9;
const PASSED_PORT: u16 = 10;
const SOURCE_PORT: u16 = 40000;

fn binary() -> &'static Path {
    Path::new(BINARY)
}

/// A file in the temporary folder, unique to this test and process; removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> TempFile {
        TempFile(std::env::temp_dir().join(format!("xdp-hello-{}-{name}", std::process::id())))
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `count` bytes that differ from packet to packet and from byte to byte.
fn payload(seed: u8, count: usize) -> Vec<u8> {
    (0..count).map(|i| seed.wrapping_add(i as u8 * 7)).collect()
}

/// The UDP payload a captured IPv4 frame carries, if it is B's to `port`.
fn udp_to(frame: &[u8], port: u16) -> Option<&[u8]> {
    let is_ours = frame.len() >= HEADERS
        && frame[12..14] == [0x08, 0x00]
        && frame[23] == 17
        && frame[26..30] == B_V4.octets()
        && frame[30..34] == A_V4.octets()
        && frame[34..36] == SOURCE_PORT.to_be_bytes()
        && frame[36..38] == port.to_be_bytes();
    is_ours.then(|| &frame[HEADERS..])
}

/// Sends each of `payloads` as a UDP datagram from B to A's `port`.
fn send_to_a(net: &TestNet, port: u16, payloads: &[Vec<u8>]) {
    let payloads: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    net.send_udp(SOURCE_PORT, SocketAddr::from((A_V4, port)), &payloads)
        .unwrap();
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Runs `program args` to the end (10 s at most); its stdout, which must
/// come with success.
fn stdout_of(program: &str, args: &[&str]) -> String {
    let out =
        command::output_within(Command::new(program).args(args), Duration::from_secs(10)).unwrap();
    assert!(out.status.success(), "{program} {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn pcapng_file_reads_back_with_tcpdump_tshark_and_the_bytes_sent() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let file = TempFile::new("capture.pcapng");
    let snaplen = SNAPLEN.to_string();
    let started = now_ns();
    let observer = net
        .observe(
            binary(),
            Mode::Native,
            &[
                "-w",
                file.path(),
                "--snaplen",
                &snaplen,
                "--rule",
                &format!("deny udp dport {DENIED_PORT}"),
            ],
        )
        .unwrap();
    let short = payload(1, 10);
    let long = payload(2, 1000);
    send_to_a(&net, DENIED_PORT, &[short.clone(), long.clone()]);
    send_to_a(&net, PASSED_PORT, std::slice::from_ref(&short));
    thread::sleep(Duration::from_millis(300));
    let finished = observer.stop(libc::SIGINT).unwrap();
    let ended = now_ns();
    assert!(finished.status.success(), "{finished:?}");
    // tcpdump -w prints nothing per packet; neither does -w FILE.
    assert!(finished.stdout.is_empty(), "{:?}", finished.stdout);
    let summary = finished.summary().expect("a summary");

    // pcap-file: the blocks, and the bytes against what was sent.
    let bytes = std::fs::read(&file.0).unwrap();
    let mut reader = PcapNgReader::new(&bytes[..]).expect("a pcapng section header");
    let mut descriptions = Vec::new();
    let mut packets: Vec<EnhancedPacketBlock<'static>> = Vec::new();
    while let Some(block) = reader.next_block() {
        match block.expect("a valid block").into_owned() {
            Block::InterfaceDescription(idb) => descriptions.push(idb),
            Block::EnhancedPacket(epb) => packets.push(epb),
            other => panic!("an unexpected block: {other:?}"),
        }
    }
    assert_eq!(descriptions.len(), 1, "{descriptions:?}");
    assert_eq!(descriptions[0].snaplen as usize, SNAPLEN);
    assert!(descriptions[0]
        .options
        .contains(&InterfaceDescriptionOption::IfName(
            net.veth(Side::A).to_string().into()
        )));
    assert_eq!(packets.len() as u64, summary.shown, "{summary:?}");
    let ours: Vec<(u16, &EnhancedPacketBlock)> = packets
        .iter()
        .filter_map(|p| {
            [DENIED_PORT, PASSED_PORT]
                .into_iter()
                .find(|&port| udp_to(&p.data, port).is_some())
                .map(|port| (port, p))
        })
        .collect();
    assert_eq!(ours.len(), 3, "B's three datagrams");
    let sent = [
        (DENIED_PORT, &short, "DROP rule 0 'deny udp dport 9'"),
        (DENIED_PORT, &long, "DROP rule 0 'deny udp dport 9'"),
        (PASSED_PORT, &short, "PASS default"),
    ];
    for ((port, packet), (want_port, payload, comment)) in ours.iter().zip(sent) {
        assert_eq!(*port, want_port);
        let original = HEADERS + payload.len();
        assert_eq!(packet.original_len as usize, original);
        let captured = original.min(SNAPLEN);
        assert_eq!(packet.data.len(), captured, "cut at the snap length");
        assert_eq!(
            udp_to(&packet.data, *port).unwrap(),
            &payload[..captured - HEADERS],
            "the bytes sent"
        );
        assert!(packet
            .options
            .contains(&EnhancedPacketOption::Comment(comment.into())));
        assert!(packet.options.contains(&EnhancedPacketOption::Flags(1)));
        let at = packet.timestamp.as_nanos();
        assert!(
            (started..=ended).contains(&at),
            "{at} not in {started}..{ended}"
        );
    }

    // tcpdump: as many packets, B's three with their addresses.
    let tcpdump = stdout_of("tcpdump", &["-nr", file.path()]);
    assert_eq!(tcpdump.lines().count(), packets.len(), "{tcpdump}");
    let udp_lines: Vec<&str> = tcpdump
        .lines()
        .filter(|l| l.contains(&format!("IP {B_V4}.{SOURCE_PORT} > {A_V4}.")))
        .collect();
    assert_eq!(udp_lines.len(), 3, "{tcpdump}");
    assert!(udp_lines[1].ends_with("UDP, length 1000"), "{tcpdump}");

    // tshark: lengths and comments, field by field.
    let tshark = stdout_of(
        "tshark",
        &[
            "-r",
            file.path(),
            "-Y",
            "udp",
            "-T",
            "fields",
            "-e",
            "frame.len",
            "-e",
            "frame.cap_len",
            "-e",
            "frame.comment",
            "-e",
            "frame.interface_name",
        ],
    );
    let veth = net.veth(Side::A);
    let want: Vec<String> = sent
        .iter()
        .map(|(_, payload, comment)| {
            let len = HEADERS + payload.len();
            format!("{len}\t{}\t{comment}\t{veth}", len.min(SNAPLEN))
        })
        .collect();
    assert_eq!(tshark.lines().collect::<Vec<_>>(), want, "{tshark}");
}

#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn pcapng_on_stdout_reaches_tcpdump_as_packets_come() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let mut tcpdump = Command::new("tcpdump")
        .args(["-l", "-nr", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let printed = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let (stdout, printed) = (tcpdump.stdout.take().unwrap(), printed.clone());
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                printed.lock().unwrap().push(line);
            }
        })
    };
    let (ns, iface) = (net.ns(Side::A), net.veth(Side::A));
    let into_tcpdump = Stdio::from(tcpdump.stdin.take().unwrap());
    let mut observer = Observer::start(
        binary(),
        ns,
        iface,
        Mode::Native,
        &["-w", "-"],
        into_tcpdump,
        Stdio::piped(),
    )
    .unwrap();
    observer.wait_attached(ns, iface).unwrap();
    send_to_a(
        &net,
        PASSED_PORT,
        &[payload(3, 20), payload(4, 30), payload(5, 40)],
    );
    // Shown while xdp-hello still runs: it flushes every batch.
    let from_b = format!("IP {B_V4}.{SOURCE_PORT} > {A_V4}.{PASSED_PORT}: UDP");
    let seen = eventually(Duration::from_secs(5), || {
        let lines = printed.lock().unwrap();
        lines.iter().filter(|l| l.contains(&from_b)).count() >= 3
    });
    let lines = printed.lock().unwrap().clone();
    assert!(seen, "tcpdump printed {lines:?}");
    let finished = observer.stop(libc::SIGINT).unwrap();
    assert!(finished.status.success(), "{finished:?}");
    let status = tcpdump.wait().unwrap();
    reader.join().unwrap();
    assert!(
        status.success(),
        "tcpdump at the end of the stream: {status}"
    );
}

#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn count_stops_after_ten_notices_with_the_summary() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let observer = net.observe(binary(), Mode::Native, &["-c", "10"]).unwrap();
    let payloads: Vec<Vec<u8>> = (0..30).map(|seed| payload(seed, 16)).collect();
    send_to_a(&net, PASSED_PORT, &payloads);
    let finished = observer
        .exit_within(Duration::from_secs(10))
        .expect("-c 10 ends the run by itself");
    assert!(finished.status.success(), "{finished:?}");
    // The column header, then ten lines.
    assert_eq!(finished.stdout.len(), 1 + 10, "{:?}", finished.stdout);
    let summary = finished.summary().expect("a summary");
    assert_eq!(summary.shown, 10, "{summary:?}");
    assert!(summary.passed >= 10, "{summary:?}");
}

#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn stats_lines_start_with_the_date() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let observer = net
        .observe(
            binary(),
            Mode::Native,
            &["--stats", "1", "--notices", "none"],
        )
        .unwrap();
    let stats_line = |lines: &[String]| lines.iter().find(|l| l.contains(" pkt/s passed")).cloned();
    eventually(Duration::from_secs(5), || {
        stats_line(&observer.stderr()).is_some()
    });
    let finished = observer.stop(libc::SIGINT).unwrap();
    let line = stats_line(&finished.stderr)
        .unwrap_or_else(|| panic!("no --stats line: {:?}", finished.stderr));
    // xdp-hello: 2026-12-01T20:11:42+00:00 0 pkt/s passed, …
    let date = line
        .strip_prefix("xdp-hello: ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap();
    let shape: String = date
        .chars()
        .map(|c| if c.is_ascii_digit() { 'd' } else { c })
        .collect();
    assert!(
        ["dddd-dd-ddTdd:dd:dd+dd:dd", "dddd-dd-ddTdd:dd:dd-dd:dd"].contains(&shape.as_str()),
        "{line}"
    );
    // date(1)'s local date and time, to the minute, now and a minute ago.
    let minute = |ago: &str| stdout_of("date", &["-d", ago, "+%Y-%m-%dT%H:%M"]);
    let (now, before) = (minute("now"), minute("1 minute ago"));
    assert!(
        date.starts_with(now.trim()) || date.starts_with(before.trim()),
        "{line} (date(1): {now})"
    );
}

#[test]
#[ignore = "needs root: loading XDP programs"]
fn the_program_sends_captured_bytes_through_test_run() {
    common::require_root(NEEDS_ROOT);
    xdp_hello::selftest::test_run::check_capture().unwrap();
}

#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn unwritable_files_and_small_rings_are_refused_before_attaching() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let iface = net.veth(Side::A);
    for (args, says) in [
        (
            &["-w", "/nonexistent-folder/x.pcapng"][..],
            "cannot write the capture to /nonexistent-folder/x.pcapng",
        ),
        (
            &["-w", "-", "--ring-size", "4K", "--snaplen", "4000"],
            "raise --ring-size or lower --snaplen",
        ),
    ] {
        let out = net
            .exec(Side::A, binary(), &[&["-i", iface][..], args].concat())
            .unwrap();
        let error = refusal(&out);
        assert!(error.contains(says), "{args:?}: {error}");
        assert!(
            net.xdp(Side::A).unwrap().is_empty(),
            "{args:?}: left attached"
        );
    }
}

#[test]
fn too_large_a_snaplen_is_refused_in_one_line() {
    let out = Command::new(binary())
        .args(["-w", "-", "--snaplen", "40000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr.lines().next().unwrap();
    assert!(
        first.contains("'40000'") && first.contains("at most 32672 bytes"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn a_full_disk_names_the_capture_file_and_ends_a_pure_observer() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let observer = net
        .observe(binary(), Mode::Native, &["-w", "/dev/full"])
        .unwrap();
    // The section header alone fills the "disk" at the first flush.
    let finished = observer
        .exit_within(Duration::from_secs(5))
        .expect("no rules in force: the run ends");
    assert!(!finished.status.success(), "{finished:?}");
    assert!(
        finished.stderr.iter().any(|line| line.contains(
            "writing notices to /dev/full failed (No space left on device (os error 28)): \
             stopping, as no rules are in force"
        )),
        "{:?}",
        finished.stderr
    );
}
