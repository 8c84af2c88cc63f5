//! The built binary, attached for real to a veth pair in namespaces of each
//! test's own (xdp_hello::selftest::veth), in native and skb mode: traffic
//! from the other end shows as notices, signals detach, bad input is refused
//! without side effects. Root only: as anyone else each test says why and
//! passes.

use std::net::IpAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use xdp_hello::loader::Mode;
use xdp_hello::selftest::attach::{self, NOTICE_WAIT};
use xdp_hello::selftest::veth::{self as veth, Finished, Side, TestNet, XdpMode, A_V4, A_V6, B_V6};

const BINARY: &str = env!("CARGO_BIN_EXE_xdp-hello");

fn binary() -> &'static Path {
    Path::new(BINARY)
}

/// True as root; otherwise says why the test does nothing.
fn root() -> bool {
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    eprintln!("skipped: attach tests need root (network namespaces, veth, bpf()); run with sudo");
    false
}

/// stderr of a run that must have failed, checked to be a single line.
fn refusal(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "should have failed; stderr: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "want a one-line error: {stderr}");
    assert!(out.stdout.is_empty(), "stdout: {:?}", out.stdout);
    stderr
}

/// `xdp-hello -i A's veth -m MODE` in namespace A, expected to give up.
fn run_once(net: &TestNet, mode: Mode) -> Output {
    net.exec(
        Side::A,
        binary(),
        &["-i", net.veth(Side::A), "-m", &mode.to_string()],
    )
    .unwrap()
}

/// The commands an error suggests, `in backquotes`.
fn suggested(error: &str) -> Vec<&str> {
    error.split('`').skip(1).step_by(2).collect()
}

/// Runs `command` as suggested (whitespace-separated, no quoting) in
/// namespace `side`; returns its stdout, which must come with success.
fn run_suggested(net: &TestNet, side: Side, command: &str) -> String {
    let words: Vec<&str> = command.split_whitespace().collect();
    let out = net.exec(side, words[0], &words[1..]).unwrap();
    assert!(out.status.success(), "`{command}`: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The ids of the XDP bpf_links of program `prog_id`, as bpftool lists them.
fn xdp_links_of(prog_id: u32) -> Vec<u64> {
    let out = veth::output_within(
        std::process::Command::new("bpftool").args(["-j", "link", "show"]),
        Duration::from_secs(5),
    )
    .unwrap();
    assert!(out.status.success(), "bpftool link show: {out:?}");
    let links: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    links
        .iter()
        .filter(|link| link["type"] == "xdp" && link["prog_id"] == prog_id)
        .filter_map(|link| link["id"].as_u64())
        .collect()
}

fn reports_traffic(mode: Mode) {
    if root() {
        attach::check(binary(), mode).unwrap();
    }
}

/// The summary counts at least `sent` packets and agrees with stdout.
fn assert_summary(done: &Finished, sent: u64) {
    attach::summary_agrees(done, sent).unwrap();
}

#[test]
fn native_mode_reports_ping_and_udp() {
    reports_traffic(Mode::Native);
}

#[test]
fn skb_mode_reports_ping_and_udp() {
    reports_traffic(Mode::Skb);
}

/// Attaches in `mode`, pings three times, stops with `signal`; checks that
/// nothing stays attached and returns how it ended.
fn stop_with(mode: Mode, signal: libc::c_int) -> Option<Finished> {
    if !root() {
        return None;
    }
    let net = TestNet::new().unwrap();
    let observer = net.observe(binary(), mode, &[]).unwrap();
    let prog = attach::attached(&net, XdpMode::of(mode).unwrap()).unwrap();
    net.ping(A_V4.into(), 3).unwrap();
    let echo = |line: &str| line.contains("echo-request");
    assert_eq!(observer.wait_for_lines(3, echo, NOTICE_WAIT), 3);

    let done = observer.stop(signal).unwrap();
    attach::detached(&net, prog).unwrap();
    Some(done)
}

#[test]
fn sigint_detaches_with_summary_and_exit_0() {
    let Some(done) = stop_with(Mode::Native, libc::SIGINT) else {
        return;
    };
    assert_eq!(done.status.code(), Some(0), "{:?}", done.stderr);
    assert_summary(&done, 3);
}

#[test]
fn sigterm_detaches_with_summary_and_exit_0() {
    let Some(done) = stop_with(Mode::Skb, libc::SIGTERM) else {
        return;
    };
    assert_eq!(done.status.code(), Some(0), "{:?}", done.stderr);
    assert_summary(&done, 3);
}

#[test]
fn sigkill_still_detaches() {
    let Some(done) = stop_with(Mode::Native, libc::SIGKILL) else {
        return;
    };
    // A shell reports this as 137 (128 + 9).
    assert_eq!(
        done.status.signal(),
        Some(libc::SIGKILL),
        "{:?}",
        done.status
    );
    assert_eq!(done.summary(), None);
}

#[test]
fn unknown_interface_is_refused_naming_the_real_ones() {
    if !root() {
        return;
    }
    let net = TestNet::new().unwrap();
    let out = net
        .exec(Side::A, binary(), &["-i", "nosuch0", "-m", "skb"])
        .unwrap();
    let error = refusal(&out);
    for name in ["nosuch0", "lo", net.veth(Side::A)] {
        assert!(error.contains(name), "should name {name}: {error}");
    }
    assert_eq!(net.xdp_by_ip_link(Side::A).unwrap(), []);
}

/// With xdp-hello attached in `first` mode, a second one in `second` mode
/// is refused with a message containing `says`, the first one's id and the
/// bpf_link and process that hold it — and no `ip link ... off`, which the
/// kernel would refuse for a link; the first stays attached and keeps
/// reporting.
fn second_is_refused(first: Mode, second: Mode, says: &str) {
    if !root() {
        return;
    }
    let net = TestNet::new().unwrap();
    let observer = net.observe(binary(), first, &[]).unwrap();
    let prog = attach::attached(&net, XdpMode::of(first).unwrap()).unwrap();
    let links = xdp_links_of(prog.id);
    assert_eq!(links.len(), 1, "{links:?}");

    let error = refusal(&run_once(&net, second));
    let parts = [
        says.to_string(),
        format!("program id {}", prog.id),
        format!("held by bpf_link id {}", links[0]),
        format!(
            "of process {} (xdp-hello): stop that process",
            observer.pid()
        ),
    ];
    for part in &parts {
        assert!(
            error.contains(part.as_str()),
            "should say '{part}': {error}"
        );
    }
    assert!(!error.contains("ip link"), "suggests ip link: {error}");
    // What it suggests shows that link, and it is the first one's.
    let show = format!("bpftool link show id {}", links[0]);
    assert_eq!(suggested(&error), [show.as_str()], "{error}");
    let shown = run_suggested(&net, Side::A, &show);
    assert!(shown.contains(&format!("prog {}", prog.id)), "{shown}");

    assert_eq!(net.xdp_by_ip_link(Side::A).unwrap(), [prog]);
    net.ping(A_V4.into(), 1).unwrap();
    let echo = |line: &str| line.contains("echo-request");
    assert_eq!(observer.wait_for_lines(1, echo, NOTICE_WAIT), 1);
    let done = observer.stop(libc::SIGINT).unwrap();
    assert_eq!(done.status.code(), Some(0), "{:?}", done.stderr);
}

#[test]
fn second_xdp_hello_in_native_mode_is_refused() {
    second_is_refused(
        Mode::Native,
        Mode::Native,
        "already has an XDP program (program id",
    );
}

#[test]
fn second_xdp_hello_in_skb_mode_is_refused() {
    second_is_refused(
        Mode::Skb,
        Mode::Skb,
        "already has an XDP program (program id",
    );
}

// The kernel refuses a second mode with EEXIST ("Native and generic XDP
// can't be active at the same time").
#[test]
fn skb_mode_is_refused_while_native_is_attached() {
    second_is_refused(
        Mode::Native,
        Mode::Skb,
        "already has an XDP program in another mode (program id",
    );
}

#[test]
fn native_mode_is_refused_while_skb_is_attached() {
    second_is_refused(Mode::Skb, Mode::Native, "in another mode");
}

/// A program attached by iproute2 (the netlink way, no link) stays where it
/// is, whatever mode xdp-hello asks for.
#[test]
fn program_attached_by_iproute2_is_kept() {
    if !root() {
        return;
    }
    // build.rs leaves the object next to the skeleton.
    let object = concat!(env!("OUT_DIR"), "/xdp_hello.bpf.o");
    let net = TestNet::new().unwrap();
    let veth = net.veth(Side::A);
    if let Err(err) = net.ip(
        Side::A,
        &[
            "link",
            "set",
            "dev",
            veth,
            "xdpgeneric",
            "obj",
            object,
            "sec",
            "xdp",
        ],
    ) {
        eprintln!("skipped: iproute2 cannot attach {object}: {err:#}");
        return;
    }
    let theirs = net.xdp_by_ip_link(Side::A).unwrap();
    assert!(
        matches!(theirs[..], [prog] if prog.mode == XdpMode::Generic),
        "{theirs:?}"
    );

    let removal = format!("ip link set dev {veth} xdpgeneric off");
    for mode in [Mode::Skb, Mode::Native, Mode::Auto] {
        let error = refusal(&run_once(&net, mode));
        let id = format!("program id {}, skb mode", theirs[0].id);
        assert!(error.contains(&id), "{mode}: should say '{id}': {error}");
        assert!(!error.contains("bpf_link id"), "{mode}: {error}");
        assert_eq!(suggested(&error), [removal.as_str()], "{mode}: {error}");
        assert_eq!(net.xdp_by_ip_link(Side::A).unwrap(), theirs, "{mode}");
    }

    // Doing as told removes it; then xdp-hello attaches.
    run_suggested(&net, Side::A, &removal);
    assert_eq!(net.xdp_by_ip_link(Side::A).unwrap(), []);
    let observer = net.observe(binary(), Mode::Skb, &[]).unwrap();
    attach::attached(&net, XdpMode::Generic).unwrap();
    let done = observer.stop(libc::SIGINT).unwrap();
    assert_eq!(done.status.code(), Some(0), "{:?}", done.stderr);
}

/// As root without CAP_PERFMON (and CAP_SYS_ADMIN, which would stand in for
/// it), CAP_BPF is not enough: the verifier would reject the packet-pointer
/// arithmetic with EACCES. The up-front check says which capability is
/// missing and why, not "run as root"; likewise without CAP_NET_ADMIN.
#[test]
fn root_without_a_needed_capability_is_told_which() {
    if !root() {
        return;
    }
    let net = TestNet::new().unwrap();
    let veth = net.veth(Side::A);
    let cases = [
        (
            "-perfmon,-sys_admin",
            "running as root, but without CAP_PERFMON (the verifier accepts the program's \
             `data_end - data` pointer arithmetic only with CAP_PERFMON)",
        ),
        (
            "-net_admin,-sys_admin",
            "running as root, but without CAP_NET_ADMIN;",
        ),
        (
            "-bpf,-perfmon,-sys_admin",
            "running as root, but without CAP_BPF and CAP_PERFMON;",
        ),
    ];
    for (dropped, says) in cases {
        let bounding = format!("--bounding-set={dropped}");
        let out = net
            .exec(
                Side::A,
                "setpriv",
                &[
                    "--inh-caps=-all",
                    &bounding,
                    BINARY,
                    "-i",
                    veth,
                    "-m",
                    "skb",
                ],
            )
            .unwrap();
        if out.status.code() == Some(127) {
            eprintln!("skipped: no setpriv (util-linux)");
            return;
        }
        let error = refusal(&out);
        assert!(
            error.contains(says),
            "{dropped}: should say '{says}': {error}"
        );
        assert!(!error.contains("run as root"), "{dropped}: {error}");
        assert_eq!(net.xdp_by_ip_link(Side::A).unwrap(), [], "{dropped}");
    }
}

/// CAP_SYS_ADMIN stands in for CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN: the
/// check does not refuse what the kernel allows.
#[test]
fn cap_sys_admin_alone_is_enough() {
    if !root() {
        return;
    }
    let net = TestNet::new().unwrap();
    let veth = net.veth(Side::A);
    let out = net
        .exec(
            Side::A,
            "setpriv",
            &[
                "--inh-caps=-all",
                "--bounding-set=-bpf,-perfmon,-net_admin",
                "timeout",
                "--preserve-status",
                "-s",
                "INT",
                "1",
                BINARY,
                "-i",
                veth,
                "-m",
                "skb",
            ],
        )
        .unwrap();
    if out.status.code() == Some(127) {
        eprintln!("skipped: no setpriv (util-linux)");
        return;
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains(" attached to "), "{stderr}");
}

/// Dropping an observer and its network leaves no process, namespace or
/// interface behind.
#[test]
fn testnet_leaves_nothing_behind() {
    if !root() {
        return;
    }
    let net = TestNet::new().unwrap();
    let names = [net.ns(Side::A).to_string(), net.ns(Side::B).to_string()];
    let observer = net.observe(binary(), Mode::Skb, &[]).unwrap();
    let pid = observer.pid();
    drop(observer);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "pid {pid} lives on"
    );
    drop(net);
    let list = veth::output_within(
        std::process::Command::new("ip").args(["netns", "list"]),
        Duration::from_secs(5),
    )
    .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    for name in names {
        assert!(!list.contains(&name), "{name} is still there: {list}");
    }
}

/// The addresses the traffic helpers use are the ones the network has.
#[test]
fn testnet_addresses_are_reachable_both_ways() {
    if !root() {
        return;
    }
    let net = TestNet::new().unwrap();
    for to in [IpAddr::from(A_V4), A_V6.into()] {
        net.ping(to, 1).unwrap();
    }
    let out = net
        .exec(
            Side::A,
            "ping",
            &["-n", "-c", "1", "-w", "5", &B_V6.to_string()],
        )
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// Under a ping flood (tens of thousands of packets a second), SIGINT ends
/// xdp-hello promptly, and every packet it counted was shown.
#[test]
fn stops_promptly_under_a_flood_and_shows_every_counted_packet() {
    if !root() {
        return;
    }
    let net = TestNet::new().unwrap();
    let observer = net.observe(binary(), Mode::Native, &[]).unwrap();
    let (done, took) = std::thread::scope(|scope| {
        let flood = scope.spawn(|| {
            let target = A_V4.to_string();
            net.exec(Side::B, "timeout", &["3", "ping", "-f", "-q", &target])
        });
        // Stop in the middle of the flood.
        let flooding = |line: &str| line.contains("echo-request");
        observer.wait_for_lines(5000, flooding, Duration::from_secs(3));
        let asked = std::time::Instant::now();
        let done = observer.stop(libc::SIGINT).unwrap();
        let took = asked.elapsed();
        let _ = flood.join();
        (done, took)
    });
    assert_eq!(done.status.code(), Some(0), "{:?}", done.stderr);
    assert!(took < Duration::from_secs(1), "took {took:?} to stop");
    let summary = done.summary().expect("a summary");
    assert!(summary.shown >= 5000, "{summary:?}");
    assert_eq!(summary.passed, summary.shown, "{summary:?}");
    assert_eq!(summary.shown as usize, done.stdout.len() - 1, "{summary:?}");
}
