//! What the built binary checks about the interface before it attaches, and
//! what it says when one is taken — against real devices in namespaces of
//! each test's own (xdp_hello::selftest::veth): a tun device is refused, an
//! interface that is down gets a warning, the interfaces listed are those of
//! the network namespace it runs in, and a program in the way is described
//! as it is (no "other mode" for `-m auto`, the pin that keeps a link).
//! Root only:
//! ignored as anyone else; `make test` runs them.

mod common;
#[allow(dead_code)]
mod support;
use support::observer::Observe;
use support::{attach, refusal};

/// What the tests marked `needs root` need it for.
const NEEDS_ROOT: &str = "devices in namespaces of its own (netns, veth, tun, bpf())";

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use xdp_hello::loader::Mode;
use xdp_hello::selftest::attach::eventually;
use xdp_hello::selftest::command;
use xdp_hello::selftest::veth::{Side, TestNet};

const BINARY: &str = env!("CARGO_BIN_EXE_xdp-hello");

fn binary() -> &'static Path {
    Path::new(BINARY)
}

/// Runs `command` with a time limit (a binary that should have refused but
/// runs on must not hang the test).
fn run(command: &mut Command) -> Output {
    command::output_within(command, Duration::from_secs(10)).unwrap()
}

/// Whether any interface of `side`'s namespace has an XDP program.
fn anything_attached(net: &TestNet, side: Side) -> bool {
    net.ip(side, &["-d", "link", "show"])
        .unwrap()
        .contains("prog/xdp")
}

/// Issue 7 item 4: a tun device has no Ethernet header (`link/none`); the
/// program would read its IP header as Ethernet and no rule would apply.
/// Refused in one line before anything is loaded; nothing attached.
#[test]
#[ignore = "needs root: devices in namespaces of its own (netns, veth, tun, bpf())"]
fn tun_device_is_refused_naming_its_type() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let tun = "xhtun0";
    net.ip(Side::A, &["tuntap", "add", "mode", "tun", "name", tun])
        .unwrap();
    net.ip(Side::A, &["link", "set", "dev", tun, "up"]).unwrap();
    for mode in ["auto", "skb"] {
        let out = net
            .exec(
                Side::A,
                binary(),
                &["-i", tun, "-m", mode, "--rule", "deny src 10.0.0.0/8"],
            )
            .unwrap();
        let error = refusal(&out);
        assert!(
            error.starts_with(&format!(
                "xdp-hello: {tun} is a link/none device without an Ethernet header"
            )),
            "{error}"
        );
        assert!(error.contains("supports Ethernet devices"), "{error}");
        assert!(!anything_attached(&net, Side::A), "attached to {tun}");
    }
}

/// Issue 7 item 16: under `nsenter --net` (the mount namespace, and with it
/// /sys/class/net, stays the host's) the interfaces listed for an unknown
/// name are those of the network namespace, not the host's.
#[test]
#[ignore = "needs root: devices in namespaces of its own (netns, veth, tun, bpf())"]
fn interfaces_listed_are_those_of_the_network_namespace() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let out = run(Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", net.ns(Side::A)))
        .arg(binary())
        .args(["-i", "nosuch0", "-m", "skb"]));
    let error = refusal(&out);
    let listed = error
        .split_once("interfaces here: ")
        .and_then(|(_, rest)| rest.split_once(" (pick one"))
        .map(|(names, _)| names.split(", ").collect::<Vec<&str>>())
        .unwrap_or_else(|| panic!("no list of interfaces: {error}"));
    let mut want = vec!["lo", net.veth(Side::A)];
    want.sort();
    assert_eq!(listed, want, "{error}");
}

/// Issue 7 item 20: attaching to an interface that is down works, with a
/// warning (as tcpdump's "That device is not up").
#[test]
#[ignore = "needs root: devices in namespaces of its own (netns, veth, tun, bpf())"]
fn interface_down_is_attached_with_a_warning() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let veth = net.veth(Side::A);
    net.ip(Side::A, &["link", "set", "dev", veth, "down"])
        .unwrap();
    let observer = net.observe(binary(), Mode::Skb, &[]).unwrap();
    let warning = format!(
        "xdp-hello: warning: {veth} is down: attaching anyway, but no packet arrives until \
         `ip link set dev {veth} up`"
    );
    assert!(
        observer.stderr().contains(&warning),
        "{:?}",
        observer.stderr()
    );
    attach::attached(&net, Mode::Skb).unwrap();
    let done = observer.stop(libc::SIGINT).unwrap();
    assert_eq!(done.status.code(), Some(0), "{:?}", done.stderr);

    // Up, no warning.
    net.ip(Side::A, &["link", "set", "dev", veth, "up"])
        .unwrap();
    let observer = net.observe(binary(), Mode::Skb, &[]).unwrap();
    assert!(
        !observer.stderr().iter().any(|l| l.contains("is down")),
        "{:?}",
        observer.stderr()
    );
    observer.stop(libc::SIGINT).unwrap();
}

/// Issue 7 item 22: with a program in skb mode in the way, `-m auto` (which
/// tries native mode first) is refused without "in another mode": the user
/// asked for none. The program in the way is named with its mode.
#[test]
#[ignore = "needs root: devices in namespaces of its own (netns, veth, tun, bpf())"]
fn auto_mode_refusal_names_no_other_mode() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let observer = net.observe(binary(), Mode::Skb, &[]).unwrap();
    let prog = attach::attached(&net, Mode::Skb).unwrap();
    let out = net
        .exec(Side::A, binary(), &["-i", net.veth(Side::A), "-m", "auto"])
        .unwrap();
    let error = refusal(&out);
    assert!(!error.contains("another mode"), "{error}");
    assert!(
        error.contains(&format!(
            "already has an XDP program (program id {}, skb mode) held by bpf_link id",
            prog.id
        )),
        "{error}"
    );
    // Asking for native mode explicitly is a mode of one's own.
    let out = net
        .exec(
            Side::A,
            binary(),
            &["-i", net.veth(Side::A), "-m", "native"],
        )
        .unwrap();
    assert!(refusal(&out).contains("in another mode"));
    observer.stop(libc::SIGINT).unwrap();
}

/// A process holding a mount namespace of its own (private propagation)
/// with a bpffs mounted at `dir`: pins made there are seen by processes that
/// enter it, and all go when it is killed (on drop).
struct PrivateBpffs {
    holder: Child,
    dir: PathBuf,
}

impl PrivateBpffs {
    fn new(dir: PathBuf) -> PrivateBpffs {
        std::fs::create_dir_all(&dir).unwrap();
        let mut holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(r#"mount -t bpf bpf "$0" && echo ready && exec sleep 120"#)
            .arg(&dir)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        let bpffs = PrivateBpffs { holder, dir };
        assert_eq!(ready.trim(), "ready", "mounting bpffs failed");
        bpffs
    }

    /// `nsenter` into the holder's mount namespace, then `program args…`.
    fn enter(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("nsenter");
        command
            .args(["-t", &self.holder.id().to_string(), "-m", "--"])
            .arg(program);
        command
    }
}

impl Drop for PrivateBpffs {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// The id of the XDP bpf_link of program `prog_id`, as bpftool lists it.
fn xdp_link_of(prog_id: u32) -> u64 {
    let out = run(Command::new("bpftool").args(["-j", "link", "show"]));
    assert!(out.status.success(), "bpftool link show: {out:?}");
    let links: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<u64> = links
        .iter()
        .filter(|link| link["type"] == "xdp" && link["prog_id"] == prog_id)
        .filter_map(|link| link["id"].as_u64())
        .collect();
    assert_eq!(ids.len(), 1, "{links:?}");
    ids[0]
}

/// Issue 7 item 23: a link that only a pin keeps alive is refused naming
/// the pin and the command that removes it; run, that command frees the
/// interface.
#[test]
#[ignore = "needs root: devices in namespaces of its own (netns, veth, tun, bpf())"]
fn link_kept_by_a_pin_is_named_with_the_pin() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let observer = net.observe(binary(), Mode::Native, &[]).unwrap();
    let prog = attach::attached(&net, Mode::Native).unwrap();
    let link = xdp_link_of(prog.id);
    let bpffs = PrivateBpffs::new(
        std::env::temp_dir().join(format!("xdp-hello-pins-{}", std::process::id())),
    );
    let pin = bpffs.dir.join("held-link");
    let out = run(bpffs
        .enter("bpftool")
        .args(["link", "pin", "id", &link.to_string()])
        .arg(&pin));
    assert!(out.status.success(), "bpftool link pin: {out:?}");
    // Its process gone, the pin keeps the program attached.
    let done = observer.stop(libc::SIGINT).unwrap();
    assert_eq!(done.status.code(), Some(0), "{:?}", done.stderr);
    assert_eq!(net.xdp(Side::A).unwrap(), [prog]);

    let out = run(bpffs
        .enter("ip")
        .args(["netns", "exec", net.ns(Side::A)])
        .arg(binary())
        .args(["-i", net.veth(Side::A), "-m", "native"]));
    let error = refusal(&out);
    let pin = pin.display();
    assert!(
        error.contains(&format!(
            "held by bpf_link id {link} pinned at {pin}: remove the pin (`rm {pin}`)"
        )),
        "{error}"
    );
    // What it says to run frees the interface.
    let rm = run(bpffs.enter("rm").arg(pin.to_string()));
    assert!(rm.status.success(), "{rm:?}");
    let freed = eventually(Duration::from_secs(5), || !anything_attached(&net, Side::A));
    assert!(freed, "still attached after `rm {pin}`");
}
