//! A reload where no thread can start (a pids limit reached, as under
//! systemd's TasksMax): the long hash batches that go to two threads when
//! they can must then go on one, and the set must still go in. A file of
//! its own: the whole test process goes into the limited cgroup.

mod common;

use std::fs;
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};

use libbpf_rs::ProgramInput;
use xdp_hello::abi::{Config, XDP_DROP, XDP_PASS};
use xdp_hello::firewall::{Firewall, RuleMaps, RuleSet};
use xdp_hello::loader;
use xdp_hello::policy;

/// A set whose src × dport shape takes 128 × 128 entries, more than a
/// batch that goes to two threads.
fn wide_set() -> Vec<String> {
    let mut rules = vec!["deny tcp src 10.0.0.0/8 dport 1000-1127".to_string()];
    rules.extend((0..128).map(|i| format!("allow src 10.{i}.0.0/16")));
    rules.extend((0..128).map(|j| format!("allow tcp dport {}", 1000 + j)));
    rules
}

/// A pids cgroup of our own, holding this process with no room for one
/// more task; the process goes back where it was when it is dropped.
struct NoMoreTasks {
    dir: PathBuf,
    home: PathBuf,
}

impl NoMoreTasks {
    fn new() -> NoMoreTasks {
        // cgroup v1 mounts the controller apart; v2 has one hierarchy.
        let (root, home) = if Path::new("/sys/fs/cgroup/pids/cgroup.procs").exists() {
            let root = PathBuf::from("/sys/fs/cgroup/pids");
            (root.clone(), root)
        } else {
            let root = PathBuf::from("/sys/fs/cgroup");
            let own = fs::read_to_string("/proc/self/cgroup").expect("reading /proc/self/cgroup");
            let path = own
                .lines()
                .find_map(|line| line.strip_prefix("0::"))
                .expect("a cgroup v2 line in /proc/self/cgroup: no pids controller to test with");
            let _ = fs::write(root.join("cgroup.subtree_control"), "+pids");
            (root.clone(), root.join(path.trim_start_matches('/')))
        };
        let dir = root.join(format!("xdp-hello-test-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("creating a pids cgroup");
        let limited = NoMoreTasks { dir, home };
        limited.write("cgroup.procs", &std::process::id().to_string());
        let tasks = fs::read_dir("/proc/self/task")
            .expect("listing tasks")
            .count();
        limited.write("pids.max", &tasks.to_string());
        limited
    }

    fn write(&self, file: &str, value: &str) {
        let path = self.dir.join(file);
        fs::write(&path, value).unwrap_or_else(|err| panic!("writing {}: {err}", path.display()));
    }
}

impl Drop for NoMoreTasks {
    fn drop(&mut self) {
        let _ = fs::write(self.dir.join("pids.max"), "max");
        let _ = fs::write(
            self.home.join("cgroup.procs"),
            std::process::id().to_string(),
        );
        let _ = fs::remove_dir(&self.dir);
    }
}

#[test]
#[ignore = "needs root: loading XDP programs, making a cgroup"]
fn a_set_goes_in_when_no_thread_can_start() {
    common::require_root("loading the XDP program and limiting tasks");
    let mut object = MaybeUninit::uninit();
    let skel = loader::load(&mut object, 64 * 1024, Config::DEFAULT).expect("loading");
    let maps = RuleMaps::of(&skel.maps);
    let mut firewall = Firewall::new();
    let small = RuleSet::of(policy::parse_flags(&["deny src 10.1.2.3".into()]).unwrap()).unwrap();
    firewall.install(&maps, &small).expect("the small set");
    let wide = RuleSet::of(policy::parse_flags(&wide_set()).unwrap()).unwrap();

    let limit = NoMoreTasks::new();
    assert!(
        std::thread::Builder::new().spawn(|| ()).is_err(),
        "the pids limit lets a thread start: the test would prove nothing"
    );
    let installed = firewall.install(&maps, &wide);
    drop(limit);
    installed.expect("the wide set goes in on one thread");

    // Its first rule decides: TCP from 10/8 to port 1000 is denied, to 2000
    // allowed by the source's /16.
    for (dport, want) in [(1000, XDP_DROP), (2000, XDP_PASS)] {
        let mut frame = Vec::new();
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 5, 0, 1], [192, 0, 2, 1], 64)
            .tcp(40000, dport, 1, 64240)
            .syn()
            .write(&mut frame, &[])
            .unwrap();
        let out = skel
            .progs
            .xdp_hello
            .test_run(ProgramInput {
                data_in: Some(&frame),
                repeat: 1,
                ..Default::default()
            })
            .expect("BPF_PROG_TEST_RUN");
        assert_eq!(out.return_value, u32::from(want), "dport {dport}");
    }
}
