//! `--rules FILE` is watched: the built binary, attached in skb mode to a
//! veth pair in namespaces of the test's own, reloads once for each way a
//! file is changed — written in place, `cp` over it, an editor's rename, a
//! ConfigMap's `..data` symlink swap — says why a bad file is refused and
//! keeps the rules in force, and still stops at once on Ctrl-C. Root only:
//! ignored as anyone else; `make test` runs them.

use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::symlink;
use std::path::PathBuf;
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
    let run = Watched::start("in-place", |folder| plain_file(folder, "deny icmp\n"));
    assert!(!run.pinged(), "ping got through 'deny icmp'");
    fs::write(&run.rules, "deny udp dport 9\n").unwrap();
    run.reloaded(1, ": 1 rule in force", Ping::Answered);

    let copy = run.folder.path("next.rules");
    fs::write(&copy, "deny icmp\ndeny udp dport 9\n").unwrap();
    // What cp(1) does: open the file with O_TRUNC and write it.
    fs::copy(&copy, &run.rules).unwrap();
    run.reloaded(2, ": 2 rules in force", Ping::Denied);
    run.stop_after(2);
}

/// An editor's save: the old file renamed to a backup, the new one
/// written, the backup removed (vim), and a new file renamed over the old
/// one (most others); one reload each.
#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn an_editors_save_reloads_once() {
    let run = Watched::start("editor", |folder| plain_file(folder, "deny icmp\n"));
    let backup = run.folder.path("fw.rules~");
    fs::rename(&run.rules, &backup).unwrap();
    fs::write(&run.rules, "deny udp dport 9\n").unwrap();
    fs::remove_file(&backup).unwrap();
    run.reloaded(1, ": 1 rule in force", Ping::Answered);

    let swap = run.folder.path(".fw.rules.swp");
    fs::write(&swap, "deny icmp\ndeny udp dport 9\n").unwrap();
    fs::rename(&swap, &run.rules).unwrap();
    run.reloaded(2, ": 2 rules in force", Ping::Denied);
    run.stop_after(2);
}

/// A ConfigMap mounted as a folder, as the kubelet lays it out and updates
/// it: `rules` → `..data/rules`, `..data` → a timestamped folder; an update
/// writes a new timestamped folder, points `..data_tmp` at it, renames
/// `..data_tmp` over `..data` and removes the old folder. One reload, and
/// the new rules are in force.
#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn a_configmap_symlink_swap_reloads_once() {
    let first = "..2026_12_01_10_00_00.000000001";
    let run = Watched::start("configmap", |folder| {
        fs::create_dir(folder.path(first)).unwrap();
        fs::write(folder.path(first).join("rules"), "deny icmp\n").unwrap();
        symlink(first, folder.path("..data")).unwrap();
        symlink("..data/rules", folder.path("rules")).unwrap();
        folder.path("rules")
    });
    assert!(!run.pinged(), "ping got through 'deny icmp'");

    let (folder, second) = (&run.folder, "..2026_12_01_10_05_00.000000002");
    fs::create_dir(folder.path(second)).unwrap();
    fs::write(folder.path(second).join("rules"), "deny udp dport 9\n").unwrap();
    symlink(second, folder.path("..data_tmp")).unwrap();
    fs::rename(folder.path("..data_tmp"), folder.path("..data")).unwrap();
    fs::remove_dir_all(folder.path(first)).unwrap();
    run.reloaded(1, ": 1 rule in force", Ping::Answered);
    run.stop_after(1);
}

/// A bad file is refused with the reason, the rules in force stay; a file
/// gone for a moment is a failed reload, and the next change reloads.
#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn a_bad_or_missing_file_keeps_the_rules_in_force() {
    let run = Watched::start("bad", |folder| plain_file(folder, "deny icmp\n"));
    let path = run.rules.display().to_string();
    fs::write(&run.rules, "deny icmp\nbogus\n").unwrap();
    let kept = " failed, keeping the 1 rule in force: ";
    let why = format!("{path}:2: bad rule 'bogus': starts with 'bogus'");
    run.reloaded(1, &format!("{kept}{why}"), Ping::Denied);

    fs::remove_file(&run.rules).unwrap();
    let why = format!("cannot read rules file {path}: No such file or directory");
    run.reloaded(2, &format!("{kept}{why}"), Ping::Denied);

    fs::write(&run.rules, "deny udp dport 9\n").unwrap();
    run.reloaded(3, ": 1 rule in force", Ping::Answered);
    run.stop_after(3);
}

/// Ctrl-C while the file keeps changing: the run stops as promptly as
/// without a watch, and SIGHUP still reloads.
#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn ctrl_c_stops_at_once_while_the_file_changes() {
    let run = Watched::start("stop", |folder| plain_file(folder, "deny udp dport 9\n"));
    let line = run.observer.reload(1, RELOAD_TIMEOUT).unwrap();
    let path = run.rules.display();
    assert_eq!(
        line,
        format!("xdp-hello: reload 1 of {path}: 1 rule in force")
    );

    // A burst the watch is waiting out when the signal comes.
    for n in 0..5 {
        fs::write(&run.rules, format!("deny udp dport {}\n", 10 + n)).unwrap();
        thread::sleep(Duration::from_millis(20));
    }
    let asked = Instant::now();
    let done = run.observer.stop(libc::SIGINT).unwrap();
    let took = asked.elapsed();
    assert_eq!(done.status.code(), Some(0), "{:?}", done.stderr);
    // A batch (100 ms), the grace period and the summary; the watch adds
    // nothing to wait for.
    assert!(took < Duration::from_millis(500), "took {took:?} to stop");
}

/// `fw.rules` holding `text` in `folder`.
fn plain_file(folder: &Folder, text: &str) -> PathBuf {
    let rules = folder.path("fw.rules");
    fs::write(&rules, text).unwrap();
    rules
}

/// What a ping from B to A must come to after a reload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ping {
    Answered,
    Denied,
}

/// xdp-hello attached to side A, watching a rules file in a folder of the
/// test's own. (Fields drop in order: the process before its namespaces.)
struct Watched {
    observer: Observer,
    net: TestNet,
    folder: Folder,
    rules: PathBuf,
}

impl Watched {
    /// Lays out the folder (`lay_out` returns the path for `--rules`), then
    /// starts xdp-hello on it.
    fn start(name: &str, lay_out: impl FnOnce(&Folder) -> PathBuf) -> Watched {
        common::require_root(NEEDS_ROOT);
        let net = TestNet::new().unwrap();
        let folder = Folder::new(name);
        let rules = lay_out(&folder);
        let observer = net
            .observe(
                BINARY.as_ref(),
                Mode::Skb,
                &["--notices", "none", "--rules", rules.to_str().unwrap()],
            )
            .unwrap();
        Watched {
            observer,
            net,
            folder,
            rules,
        }
    }

    /// Waits for the line of reload `n`, which must go on with `rest` after
    /// `reload N of FILE`; then a ping must come to `ping`.
    fn reloaded(&self, n: usize, rest: &str, ping: Ping) {
        let prefix = format!("xdp-hello: reload {n} ");
        let find = || {
            self.observer
                .stderr()
                .into_iter()
                .find(|line| line.starts_with(&prefix))
        };
        assert!(
            eventually(RELOAD_TIMEOUT, || find().is_some()),
            "no reload {n}: {:?}",
            self.observer.stderr()
        );
        let want = format!("{prefix}of {}{rest}", self.rules.display());
        let line = find().unwrap();
        assert!(line.starts_with(&want), "{line}\nwant {want}…");
        let got = if self.pinged() {
            Ping::Answered
        } else {
            Ping::Denied
        };
        assert_eq!(got, ping, "after reload {n}: {line}");
    }

    /// Two echo requests from B to A, each waited for at most a second:
    /// whether both were answered.
    fn pinged(&self) -> bool {
        let to = IpAddr::from(A_V4).to_string();
        let args = ["-n", "-q", "-c", "2", "-i", "0.05", "-W", "1", &to];
        let out = self.net.exec(Side::B, "ping", &args).expect("running ping");
        out.status.success()
    }

    /// Stops it with SIGINT once [`NO_SECOND_RELOAD`] has passed with no
    /// reload after `n`; it must end well.
    fn stop_after(self, n: usize) {
        thread::sleep(NO_SECOND_RELOAD);
        let next = format!("xdp-hello: reload {} ", n + 1);
        let stderr = self.observer.stderr();
        assert!(
            !stderr.iter().any(|line| line.starts_with(&next)),
            "a second reload for one change: {stderr:?}"
        );
        let done = self.observer.stop(libc::SIGINT).unwrap();
        assert_eq!(done.status.code(), Some(0), "{:?}", done.stderr);
    }
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
