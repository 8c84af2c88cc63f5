//! `xdp-hello selftest` as a user runs it: every check passes on this
//! kernel, the last line is the tally, and it cleans up after itself.

mod common;

use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_xdp-hello");

#[test]
fn selftest_passes_every_check_and_leaves_nothing_behind() {
    if !common::root("selftest_passes_every_check", "the selftest") {
        return;
    }
    let before = namespaces();
    let out = Command::new(BINARY).arg("selftest").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let lines: Vec<&str> = stdout.lines().collect();
    let checks: Vec<&&str> = lines.iter().filter(|l| l.starts_with("ok ")).collect();
    let failed = lines.iter().filter(|l| l.starts_with("FAIL")).count();
    assert_eq!(failed, 0, "{stdout}");
    assert_eq!(
        lines.last(),
        Some(&format!("{} passed, 0 failed", checks.len()).as_str()),
        "{stdout}"
    );
    for part in [
        "kernel features",
        "test_run ipv4-tcp-syn",
        "firewall: live swap",
        "native mode",
        "skb mode",
    ] {
        assert!(
            checks.iter().any(|l| l.contains(part)),
            "no '{part}' check: {stdout}"
        );
    }
    assert_eq!(
        namespaces(),
        before,
        "the selftest left network namespaces behind"
    );
}

#[test]
fn selftest_without_root_says_so() {
    if unsafe { libc::geteuid() } == 0 {
        // Drop to nobody for this one run: the refusal is what is tested.
        let out = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                BINARY,
                "selftest",
            ])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("selftest needs root"), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

fn namespaces() -> String {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("xdp-hello") && !l.contains("-demo-"))
        .map(str::to_string)
        .collect();
    names.sort();
    names.join("\n")
}
