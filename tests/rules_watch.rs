//! `--rules FILE` is watched: the built binary, attached in skb mode to a
//! veth pair in namespaces of the test's own, reloads once for each way a
//! file is changed — written in place, `cp` over it, an editor's rename, a
//! ConfigMap's `..data` symlink swap — says why a bad file is refused and
//! keeps the rules in force, and still stops at once on Ctrl-C. Root only:
//! ignored as anyone else; `make test` runs them.

use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use xdp_hello::loader::Mode;
use xdp_hello::selftest::attach::eventually;
use xdp_hello::selftest::veth::{Side, TestNet, A_V4};

mod common;
#[allow(dead_code)]
mod support;
use support::observer::{Observe, Observer};

const BINARY: &str = env!("CARGO_BIN_EXE_xdp-hello");

/// What the tests marked `needs root` need it for.
const NEEDS_ROOT: &str = "attaching in namespaces of its own (netns, veth, bpf())";

/// How long a change may take to be reloaded: the watch waits 150 ms of
/// quiet, the session sees the request within a batch (100 ms).
const RELOAD_TIMEOUT: Duration = Duration::from_secs(5);

/// How long to wait for a second reload that must not come: well past the
/// watch's quiet time and its longest wait (1 s).
const NO_SECOND_RELOAD: Duration = Duration::from_millis(1500);

/// A write in place and `cp` over the file (the same file, truncated and
/// written) each reload once, and the new rules are in force.
#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn a_write_in_place_and_cp_over_the_file_each_reload_once() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let folder = Folder::new("in-place");
    let rules = folder.path("fw.rules");
    fs::write(&rules, "deny icmp\n").unwrap();
    let observer = watching(&net, &rules);
    assert!(!ping_answered(&net), "ping got through 'deny icmp'");

    fs::write(&rules, "deny udp dport 9\n").unwrap();
    reloaded(
        &observer,
        1,
        &format!("{}: 1 rule in force", rules.display()),
    );
    assert!(ping_answered(&net), "ping denied after the reload");

    let copy = folder.path("next.rules");
    fs::write(&copy, "deny icmp\ndeny udp dport 9\n").unwrap();
    // What cp(1) does: open the file with O_TRUNC and write it.
    fs::copy(&copy, &rules).unwrap();
    reloaded(
        &observer,
        2,
        &format!("{}: 2 rules in force", rules.display()),
    );
    assert!(!ping_answered(&net), "ping got through 'deny icmp'");
    no_reload_after(&observer, 2);
    stopped(observer);
}

/// An editor's save: the old file renamed to a backup, the new one
/// written, the backup removed (vim), and a new file renamed over the old
/// one (most others); one reload each.
#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn an_editors_save_reloads_once() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let folder = Folder::new("editor");
    let rules = folder.path("fw.rules");
    fs::write(&rules, "deny icmp\n").unwrap();
    let observer = watching(&net, &rules);

    let backup = folder.path("fw.rules~");
    fs::rename(&rules, &backup).unwrap();
    fs::write(&rules, "deny udp dport 9\n").unwrap();
    fs::remove_file(&backup).unwrap();
    reloaded(
        &observer,
        1,
        &format!("{}: 1 rule in force", rules.display()),
    );
    assert!(ping_answered(&net), "ping denied after the reload");

    let swap = folder.path(".fw.rules.swp");
    fs::write(&swap, "deny icmp\ndeny udp dport 9\n").unwrap();
    fs::rename(&swap, &rules).unwrap();
    reloaded(
        &observer,
        2,
        &format!("{}: 2 rules in force", rules.display()),
    );
    assert!(!ping_answered(&net), "ping got through 'deny icmp'");
    no_reload_after(&observer, 2);
    stopped(observer);
}

/// A ConfigMap mounted as a folder, as the kubelet lays it out and updates
/// it: `rules` → `..data/rules`, `..data` → a timestamped folder; an update
/// writes a new timestamped folder, points `..data_tmp` at it, renames
/// `..data_tmp` over `..data` and removes the old folder. One reload, and
/// the new rules are in force.
#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn a_configmap_symlink_swap_reloads_once() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let folder = Folder::new("configmap");
    let first = "..2026_12_01_10_00_00.000000001";
    fs::create_dir(folder.path(first)).unwrap();
    fs::write(folder.path(first).join("rules"), "deny icmp\n").unwrap();
    symlink(first, folder.path("..data")).unwrap();
    symlink("..data/rules", folder.path("rules")).unwrap();
    let rules = folder.path("rules");
    let observer = watching(&net, &rules);
    assert!(!ping_answered(&net), "ping got through 'deny icmp'");

    let second = "..2026_12_01_10_05_00.000000002";
    fs::create_dir(folder.path(second)).unwrap();
    fs::write(folder.path(second).join("rules"), "deny udp dport 9\n").unwrap();
    symlink(second, folder.path("..data_tmp")).unwrap();
    fs::rename(folder.path("..data_tmp"), folder.path("..data")).unwrap();
    fs::remove_dir_all(folder.path(first)).unwrap();
    reloaded(
        &observer,
        1,
        &format!("{}: 1 rule in force", rules.display()),
    );
    assert!(ping_answered(&net), "ping denied after the swap");
    no_reload_after(&observer, 1);
    stopped(observer);
}

/// A bad file is refused with the reason, the rules in force stay; a file
/// gone for a moment is a failed reload, and the next change reloads.
#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn a_bad_or_missing_file_keeps_the_rules_in_force() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let folder = Folder::new("bad");
    let rules = folder.path("fw.rules");
    let path = rules.display();
    fs::write(&rules, "deny icmp\n").unwrap();
    let observer = watching(&net, &rules);

    fs::write(&rules, "deny icmp\nbogus\n").unwrap();
    reloaded(
        &observer,
        1,
        &format!(
            "{path} failed, keeping the 1 rule in force: {path}:2: bad rule 'bogus': starts \
             with 'bogus'"
        ),
    );
    assert!(!ping_answered(&net), "ping got through the rules kept");

    fs::remove_file(&rules).unwrap();
    reloaded(
        &observer,
        2,
        &format!(
            "{path} failed, keeping the 1 rule in force: cannot read rules file {path}: No such \
             file or directory"
        ),
    );
    assert!(!ping_answered(&net), "ping got through the rules kept");

    fs::write(&rules, "deny udp dport 9\n").unwrap();
    reloaded(&observer, 3, &format!("{path}: 1 rule in force"));
    assert!(ping_answered(&net), "ping denied after the reload");
    no_reload_after(&observer, 3);
    stopped(observer);
}

/// Ctrl-C while the file keeps changing: the run stops as promptly as
/// without a watch, and SIGHUP still reloads.
#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn ctrl_c_stops_at_once_while_the_file_changes() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let folder = Folder::new("stop");
    let rules = folder.path("fw.rules");
    fs::write(&rules, "deny udp dport 9\n").unwrap();
    let observer = watching(&net, &rules);
    let line = observer.reload(1, RELOAD_TIMEOUT).unwrap();
    assert_eq!(
        line,
        format!(
            "xdp-hello: reload 1 of {}: 1 rule in force",
            rules.display()
        )
    );

    // A burst the watch is waiting out when the signal comes.
    for n in 0..5 {
        fs::write(&rules, format!("deny udp dport {}\n", 10 + n)).unwrap();
        thread::sleep(Duration::from_millis(20));
    }
    let asked = Instant::now();
    let done = observer.stop(libc::SIGINT).unwrap();
    let took = asked.elapsed();
    assert_eq!(done.status.code(), Some(0), "{:?}", done.stderr);
    // A batch (100 ms), the grace period and the summary; the watch adds
    // nothing to wait for.
    assert!(took < Duration::from_millis(500), "took {took:?} to stop");
}

/// xdp-hello watching `rules`, attached to side A.
fn watching(net: &TestNet, rules: &Path) -> Observer {
    net.observe(
        BINARY.as_ref(),
        Mode::Skb,
        &["--notices", "none", "--rules", rules.to_str().unwrap()],
    )
    .unwrap()
}

/// Waits for the line of reload `n`; it must go on with `rest` after
/// `reload N of `.
fn reloaded(observer: &Observer, n: usize, rest: &str) {
    let prefix = format!("xdp-hello: reload {n} ");
    let find = || {
        observer
            .stderr()
            .into_iter()
            .find(|line| line.starts_with(&prefix))
    };
    assert!(
        eventually(RELOAD_TIMEOUT, || find().is_some()),
        "no reload {n}: {:?}",
        observer.stderr()
    );
    let (line, want) = (find().unwrap(), format!("xdp-hello: reload {n} of {rest}"));
    assert!(line.starts_with(&want), "{line}\nwant {want}…");
}

/// No reload past `n` comes in [`NO_SECOND_RELOAD`].
fn no_reload_after(observer: &Observer, n: usize) {
    thread::sleep(NO_SECOND_RELOAD);
    let next = format!("xdp-hello: reload {} ", n + 1);
    let stderr = observer.stderr();
    assert!(
        !stderr.iter().any(|line| line.starts_with(&next)),
        "a second reload for one change: {stderr:?}"
    );
}

/// Stops it with SIGINT; it must end well.
fn stopped(observer: Observer) {
    let done = observer.stop(libc::SIGINT).unwrap();
    assert_eq!(done.status.code(), Some(0), "{:?}", done.stderr);
}

/// Two echo requests from B to A, each waited for at most a second:
/// whether both were answered.
fn ping_answered(net: &TestNet) -> bool {
    let to = IpAddr::from(A_V4).to_string();
    net.exec(
        Side::B,
        "ping",
        &["-n", "-q", "-c", "2", "-i", "0.05", "-W", "1", &to],
    )
    .expect("running ping")
    .status
    .success()
}

/// A folder of the test's own in the temporary folder, removed on drop:
/// the watch sees only the test's own changes.
struct Folder(PathBuf);

impl Folder {
    fn new(name: &str) -> Folder {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let folder = format!("xdp-hello-{}-{n}-watch-{name}", std::process::id());
        let path = std::env::temp_dir().join(folder);
        fs::create_dir(&path).unwrap();
        Folder(path)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
