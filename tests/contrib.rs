//! What contrib/ ships, tried for real: the systemd unit passes
//! `systemd-analyze verify`, and its command, run under exactly the user
//! and capabilities the unit grants, attaches to a veth of the test's own,
//! filters by its rules file and detaches on SIGTERM; the Kubernetes
//! manifests validate against the Kubernetes schemas with no network.
//!
//! The root tests are ignored as anyone else; `make test` runs them.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use xdp_hello::selftest::command::output_within;
use xdp_hello::selftest::veth::{Side, TestNet, A_V4};

mod common;
#[path = "support/rules_file.rs"]
mod rules_file;
#[allow(dead_code)]
mod support;
#[path = "support/unit.rs"]
mod unit;

use rules_file::RulesFile;
use support::observer::Observer;
use unit::Unit;

const NEEDS_ROOT: &str = "network namespaces, veth, bpf(), setpriv to another user";
const BINARY: &str = env!("CARGO_BIN_EXE_xdp-hello");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// Where the unit expects the binary (the README installs it there).
const INSTALLED: &str = "/usr/local/bin/xdp-hello";
/// What the unit must grant: no more, no less (src/privileges.rs).
const CAPABILITIES: [&str; 3] = ["bpf", "net_admin", "perfmon"];
/// The Kubernetes versions the manifests are checked against: the oldest
/// and the newest the validator's schemas cover (kubernetes-validate 1.37).
const KUBERNETES_VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];
const MANIFESTS: [&str; 3] = ["namespace.yaml", "rules.yaml", "daemonset.yaml"];

fn unit_path() -> String {
    format!("{ROOT}/contrib/systemd/xdp-hello@.service")
}

/// A folder of the test's own under the temporary folder, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("xdp-hello-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(command: &mut Command) -> Output {
    let out = output_within(command, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("running {command:?}: {e:#}"));
    assert_ne!(
        out.status.code(),
        Some(127),
        "{command:?}: not installed; run make setup"
    );
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `systemd-analyze verify` accepts the template and an instance of it,
/// saying nothing. It wants the command to exist: the copies it reads run
/// the built binary where the unit has /usr/local/bin/xdp-hello.
#[test]
fn unit_passes_systemd_analyze_verify() {
    let unit = std::fs::read_to_string(unit_path()).unwrap();
    assert!(unit.contains(INSTALLED), "the unit runs {INSTALLED}");
    let scratch = Scratch::new("verify");
    for name in ["xdp-hello@.service", "xdp-hello@veth0.service"] {
        let copy = scratch.0.join(name);
        std::fs::write(&copy, unit.replace(INSTALLED, BINARY)).unwrap();
        let out = run(Command::new("systemd-analyze").arg("verify").arg(&copy));
        let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(out.status.success() && said.is_empty(), "{name}: {said}");
    }
}

/// The exposure `systemd-analyze security` gives the unit is the one the
/// README states (measured offline: no running systemd needed).
#[test]
fn unit_exposure_is_the_readmes() {
    let out = run(Command::new("systemd-analyze")
        .args(["security", "--offline=true"])
        .arg(unit_path()));
    let said = text(&out.stdout);
    let level = said
        .lines()
        .find_map(|line| {
            line.split_once("Overall exposure level for ")?
                .1
                .split_once(": ")
        })
        .map(|(_, level)| {
            level
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| panic!("no overall exposure level: {said}"));
    let readme = std::fs::read_to_string(format!("{ROOT}/README.md")).unwrap();
    let claim = format!("rates the unit's exposure **{level}**");
    assert!(readme.contains(&claim), "README should say {claim:?}");
}

/// The least privilege the unit promises, read from the file: a dynamic
/// user, exactly the three capabilities as ambient and bounding sets, no
/// new privileges, and no ExecStart prefix (`+`, `!`) that would lift any
/// of it.
#[test]
fn unit_grants_exactly_the_three_capabilities() {
    let unit = Unit::read(&unit_path());
    let want: BTreeSet<String> = CAPABILITIES.iter().map(|c| c.to_string()).collect();
    assert_eq!(unit.capabilities("AmbientCapabilities"), want);
    assert_eq!(unit.capabilities("CapabilityBoundingSet"), want);
    for key in ["DynamicUser", "NoNewPrivileges", "PrivateTmp"] {
        assert!(unit.yes(key), "{key}=yes");
    }
    assert_eq!(unit.value("ProtectSystem"), Some("strict"));
    assert_eq!(unit.value("Restart"), Some("on-failure"));
    assert_eq!(unit.value("User"), None, "DynamicUser, not a named user");
    let command = unit.exec_start("eth0");
    assert_eq!(command[0], INSTALLED, "no prefix such as + or !");
    let flag = |name: &str| {
        command
            .iter()
            .position(|w| w == name)
            .map(|i| &command[i + 1])
    };
    assert_eq!(flag("--iface").map(String::as_str), Some("eth0"));
    assert_eq!(flag("--notices").map(String::as_str), Some("none"));
    assert_eq!(
        flag("--rules").map(String::as_str),
        Some("/etc/xdp-hello/eth0.rules")
    );
    // Metrics on, on loopback (IPAddressAllow=localhost lets nothing else in).
    let metrics = flag("--metrics").expect("--metrics");
    assert!(metrics.starts_with("127.0.0.1:"), "{metrics}");
    assert_eq!(unit.value("IPAddressAllow"), Some("localhost"));
}

/// setpriv's arguments for what the unit grants: the three capabilities
/// inheritable, ambient and bounding, no_new_privs, and an unprivileged
/// user. DynamicUser picks a fresh uid at start; nobody stands in for it.
fn setpriv_arguments(unit: &Unit) -> Vec<String> {
    let caps = |key: &str| -> String {
        let caps: Vec<String> = unit
            .capabilities(key)
            .iter()
            .map(|c| format!("+{c}"))
            .collect();
        format!("-all,{}", caps.join(","))
    };
    let mut args = vec![
        "--reuid=nobody".to_string(),
        "--regid=nogroup".into(),
        "--init-groups".into(),
        format!("--inh-caps={}", caps("AmbientCapabilities")),
        format!("--ambient-caps={}", caps("AmbientCapabilities")),
        format!("--bounding-set={}", caps("CapabilityBoundingSet")),
        // The kernel clears the parent-death signal Observer sets when the
        // uid changes; setpriv sets it again after the change.
        "--pdeathsig=TERM".into(),
    ];
    if unit.yes("NoNewPrivileges") {
        args.push("--no-new-privs".into());
    }
    args
}

/// The value of `flag` in the unit's ExecStart for `instance`.
fn unit_flag(unit: &Unit, instance: &str, flag: &str) -> String {
    let words = unit.exec_start(instance);
    let at = words.iter().position(|w| w == flag);
    at.map(|i| words[i + 1].clone())
        .unwrap_or_else(|| panic!("no {flag} in ExecStart"))
}

/// `count` echo requests from B to A, 50 ms apart, each waited for a
/// second at most.
fn ping_a(net: &TestNet, count: u32) -> Output {
    let (count, to) = (count.to_string(), A_V4.to_string());
    let args = ["-n", "-q", "-c", &count, "-i", "0.05", "-W", "1", &to];
    net.exec(Side::B, "ping", &args).unwrap()
}

/// The text at http://ADDRESS/metrics, fetched inside A's namespace.
fn scrape(net: &TestNet, address: &str) -> String {
    let url = format!("http://{address}/metrics");
    let out = net
        .exec(Side::A, "curl", &["-sS", "--max-time", "5", &url])
        .unwrap();
    assert!(out.status.success(), "curl {url}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// A rules file for the unit's command: nobody must be able to read it.
fn readable_rules(text: &str) -> RulesFile {
    let rules = RulesFile::new("unit");
    rules.write(text);
    // Written by root under its umask.
    std::fs::set_permissions(rules.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    rules
}

/// The arguments of `ip` that run the unit's ExecStart in A's namespace
/// under setpriv as the unit would: %i A's veth, the built binary for
/// /usr/local/bin/xdp-hello, `rules` for /etc/xdp-hello/%i.rules.
fn unit_command(unit: &Unit, net: &TestNet, rules: &RulesFile) -> Vec<String> {
    let veth = net.veth(Side::A);
    let mut words = unit.exec_start(veth);
    assert_eq!(words[0], INSTALLED);
    words[0] = BINARY.to_string();
    let at = words.iter().position(|w| w == "--rules").expect("--rules") + 1;
    assert_eq!(words[at], format!("/etc/xdp-hello/{veth}.rules"));
    words[at] = rules.path().to_string();
    let mut args: Vec<String> = ["netns", "exec", net.ns(Side::A), "setpriv"]
        .map(String::from)
        .into();
    args.extend(setpriv_arguments(unit));
    args.extend(words);
    args
}

/// /proc/PID/status's `Name:\tvalue` lines of the fields asked for.
fn proc_status(pid: u32, fields: &[&str]) -> Vec<(String, String)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    fields
        .iter()
        .map(|field| {
            let value = status
                .lines()
                .find_map(|line| line.strip_prefix(&format!("{field}:")))
                .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
            (field.to_string(), value.trim().to_string())
        })
        .collect()
}

/// The unit's ExecStart, %i a veth of the test's own (and its rules file
/// the test's own rather than /etc/xdp-hello/%i.rules), run as nobody with
/// only the unit's capabilities: it attaches, its rules drop pings, and
/// SIGTERM detaches it with exit 0 and the drops counted.
#[test]
#[ignore = "needs root: network namespaces, veth, bpf(), setpriv to another user"]
fn unit_command_filters_under_the_units_capabilities() {
    common::require_root(NEEDS_ROOT);
    let unit = Unit::read(&unit_path());
    let net = TestNet::new().unwrap();
    let (ns, veth) = (net.ns(Side::A), net.veth(Side::A));
    let rules = readable_rules("deny icmp\n");

    let mut command = Command::new("ip");
    command
        .args(unit_command(&unit, &net, &rules))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut observer = Observer::start_command(command).unwrap();
    observer.wait_attached(ns, veth).unwrap();

    let mask = CAPABILITIES.iter().fold(0u64, |mask, cap| {
        mask | 1
            << match *cap {
                "net_admin" => 12,
                "perfmon" => 38,
                "bpf" => 39,
                other => unreachable!("{other}"),
            }
    });
    let mask = format!("{mask:016x}");
    let nobody = "65534\t65534\t65534\t65534";
    let fields = [
        "Uid",
        "Gid",
        "CapEff",
        "CapPrm",
        "CapBnd",
        "CapAmb",
        "NoNewPrivs",
    ];
    let expected = [nobody, nobody, &mask, &mask, &mask, &mask, "1"];
    let got = proc_status(observer.pid(), &fields);
    for ((field, value), want) in got.iter().zip(expected) {
        assert_eq!(value, want, "{field} of xdp-hello");
    }

    let ping = ping_a(&net, 3);
    assert!(
        !ping.status.success(),
        "pings got through `deny icmp`: {}",
        text(&ping.stdout)
    );
    // Metrics on, as the unit says, and counting what it dropped.
    let address = unit_flag(&unit, veth, "--metrics");
    let metrics = scrape(&net, &address);
    let dropped = format!("xdp_hello_packets_total{{interface=\"{veth}\",verdict=\"drop\"}} 3");
    assert!(metrics.contains(&dropped), "{dropped} not in: {metrics}");

    let finished = observer.stop(libc::SIGTERM).unwrap();
    let stderr = finished.stderr.join("\n");
    assert_eq!(finished.status.code(), Some(0), "{stderr}");
    let summary = finished
        .summary()
        .unwrap_or_else(|| panic!("no summary: {stderr}"));
    assert_eq!(summary.dropped, 3, "{stderr}");
    assert!(
        support::xdp_on(&net, Side::A).unwrap().is_empty(),
        "still attached"
    );
    net.ping(A_V4.into(), 1)
        .expect("pings pass once it is gone");
}

/// The unit's sandbox lets through everything its command does: run under
/// strace, attached, filtering, serving metrics and status, reloading on a
/// change of its rules file and on SIGHUP, and detaching on
/// SIGTERM, it makes no system call outside SystemCallFilter= and opens no
/// socket outside RestrictAddressFamilies= (systemd would refuse them with
/// EPERM, where this run has no filter to refuse them).
#[test]
#[ignore = "needs root: network namespaces, veth, bpf(), setpriv, strace"]
fn unit_sandbox_allows_every_call_its_command_makes() {
    common::require_root(NEEDS_ROOT);
    let unit = Unit::read(&unit_path());
    let allowed = unit
        .allowed_syscalls()
        .expect("the unit has a SystemCallFilter");
    let families = unit.address_families();
    let net = TestNet::new().unwrap();
    let rules = readable_rules("deny icmp\n");
    let scratch = Scratch::new("strace");
    let trace = scratch.0.join("trace");
    let mut command = Command::new("strace");
    command
        .args(["-f", "-qq", "-o"])
        .arg(&trace)
        .arg("ip")
        .args(unit_command(&unit, &net, &rules))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut observer = Observer::start_command(command).unwrap();
    observer
        .wait_attached(net.ns(Side::A), net.veth(Side::A))
        .unwrap();
    // strace's one child is ip, then setpriv, then xdp-hello: signals go
    // to it (strace would detach on one of its own).
    let strace = observer.pid();
    let children =
        std::fs::read_to_string(format!("/proc/{strace}/task/{strace}/children")).unwrap();
    let xdp_hello: libc::pid_t = children.trim().parse().expect("one child of strace");
    // Each path of a service's life: filtering, metrics, status, a reload
    // by the file watch, then one by SIGHUP.
    let _ = ping_a(&net, 2);
    scrape(&net, &unit_flag(&unit, net.veth(Side::A), "--metrics"));
    let status = net.exec(Side::A, BINARY, &["status"]).unwrap();
    assert!(status.status.success(), "status: {}", text(&status.stderr));
    rules.write("deny icmp\ndeny udp dport 9\n");
    wait_for_reload(&observer, 1);
    rules.write("deny icmp\n");
    assert_eq!(unsafe { libc::kill(xdp_hello, libc::SIGHUP) }, 0);
    wait_for_reload(&observer, 2);
    assert_eq!(unsafe { libc::kill(xdp_hello, libc::SIGTERM) }, 0);
    let finished = observer.exit_within(Duration::from_secs(10)).unwrap();
    assert_eq!(
        finished.status.code(),
        Some(0),
        "{}",
        finished.stderr.join("\n")
    );

    let trace = std::fs::read_to_string(&trace).unwrap();
    let exec = format!("execve(\"{BINARY}\"");
    let start = trace
        .find(&exec)
        .unwrap_or_else(|| panic!("no {exec} in the trace"));
    let lines = || trace[start..].lines();
    let calls: BTreeSet<&str> = lines().filter_map(syscall_name).collect();
    let refused: Vec<&&str> = calls.iter().filter(|c| !allowed.contains(**c)).collect();
    assert!(
        refused.is_empty(),
        "SystemCallFilter= would refuse {refused:?}"
    );
    let opened: BTreeSet<&str> = lines()
        .filter_map(|line| {
            line.split_once("socket(")?
                .1
                .split_once(',')
                .map(|(f, _)| f)
        })
        .collect();
    let refused: Vec<&&str> = opened.iter().filter(|f| !families.contains(**f)).collect();
    assert!(
        refused.is_empty(),
        "RestrictAddressFamilies= would refuse {refused:?}"
    );
}

/// Waits up to five seconds for xdp-hello's line about reload `n`.
fn wait_for_reload(observer: &Observer, n: usize) {
    let prefix = format!("xdp-hello: reload {n} ");
    let reloaded = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        observer.stderr().iter().any(|l| l.starts_with(&prefix))
    });
    assert!(reloaded, "no '{prefix}…': {:?}", observer.stderr());
}

/// The system call of a line of `strace -f`: `PID name(…`, or `PID <...
/// name resumed>`; None for signals and exits (`---`, `+++`).
fn syscall_name(line: &str) -> Option<&str> {
    let rest = line.split_once(' ')?.1.trim_start();
    let rest = rest.strip_prefix("<... ").unwrap_or(rest);
    let name = rest
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()?;
    (!name.is_empty()).then_some(name)
}

/// The venv scripts/setup.sh makes for kubernetes-validate.
fn validator() -> PathBuf {
    let path = Path::new(ROOT).join(".cache/kubernetes-validate/bin/kubernetes-validate");
    assert!(
        path.exists(),
        "{} is missing: run make setup",
        path.display()
    );
    path
}

/// The DaemonSet, its ConfigMap and namespace validate strictly (unknown
/// fields are errors) against the schemas of the oldest and newest
/// Kubernetes the validator knows, in a network namespace with no network:
/// the schemas come with the package.
#[test]
#[ignore = "needs root: an empty network namespace (unshare --net)"]
fn kubernetes_manifests_validate_offline() {
    common::require_root("an empty network namespace");
    let dir = Path::new(ROOT).join("contrib/kubernetes");
    for version in KUBERNETES_VERSIONS {
        let out = run(Command::new("unshare")
            .args(["--net", "--"])
            .arg(validator())
            .args(["--strict", "--kubernetes-version", version])
            .args(MANIFESTS.iter().map(|m| dir.join(m))));
        let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(out.status.success(), "Kubernetes {version}: {said}");
        assert_eq!(
            said.matches(" passed for resource ").count(),
            MANIFESTS.len(),
            "{said}"
        );
    }
}

/// A manifest with a mistake in it fails: the validator does check.
#[test]
fn kubernetes_validation_catches_a_mistake() {
    let daemonset =
        std::fs::read_to_string(format!("{ROOT}/contrib/kubernetes/daemonset.yaml")).unwrap();
    let scratch = Scratch::new("manifests");
    let bad = scratch.0.join("daemonset.yaml");
    std::fs::write(
        &bad,
        daemonset.replace("hostNetwork: true", "hostNetwork: yes-please"),
    )
    .unwrap();
    let out = run(Command::new(validator())
        .args(["--strict", "--kubernetes-version", KUBERNETES_VERSIONS[0]])
        .arg(&bad));
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        !out.status.success() && said.contains("hostNetwork"),
        "{said}"
    );
}

/// The rules the ConfigMap ships pass `xdp-hello check`.
#[test]
fn configmap_rules_pass_check() {
    let out = run(Command::new(validator().with_file_name("python")).args([
        "-c",
        "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['data']['rules'], end='')",
        &format!("{ROOT}/contrib/kubernetes/rules.yaml"),
    ]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let scratch = Scratch::new("configmap");
    let rules = scratch.0.join("rules");
    std::fs::write(&rules, &out.stdout).unwrap();
    let check = run(Command::new(BINARY).arg("check").arg("--rules").arg(&rules));
    let said = text(&check.stderr) + &text(&check.stdout);
    assert!(check.status.success(), "{said}");
    assert!(said.contains("3 rules, 0 can never match"), "{said}");
}
