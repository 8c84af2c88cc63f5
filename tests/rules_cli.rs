//! Rules the built binary refuses before it touches the kernel: files too
//! big, not text, or with more rules than a set holds, each with exit
//! status 2 and one line naming the file and the limit; and the limits in
//! `--help`. Needs no privileges: rules are checked first, and the
//! interface named does not exist, so nothing could be attached anyway.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use xdp_hello::rules::{MAX_FILE_SIZE, MAX_RULES_PER_SET};
use xdp_hello::selftest::command::output_within;

const BINARY: &str = env!("CARGO_BIN_EXE_xdp-hello");

/// `xdp-hello -i NO-SUCH-INTERFACE --rules FILE`: its exit status and stderr,
/// and how long it took.
fn run_with_rules(file: &str) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let out = output_within(
        Command::new(BINARY).args(["-i", "xh-no-such-if", "--rules", file]),
        Duration::from_secs(20),
    )
    .expect("running xdp-hello");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.stdout.is_empty(), "stdout: {:?}", out.stdout);
    (out.status.code(), stderr, started.elapsed())
}

/// A file of the test's own, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let file = format!("xdp-hello-{}-{name}.rules", std::process::id());
        let path = std::env::temp_dir().join(file);
        fs::write(&path, text).unwrap();
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

#[test]
fn a_100000_rule_file_exits_2_naming_the_file_and_the_limit() {
    let text: String = (0..100_000u32)
        .map(|i| format!("deny src 10.{}.{}.{}\n", i >> 16, (i >> 8) & 255, i & 255))
        .collect();
    let file = TempFile::new("100k", &text);
    let (code, stderr, _) = run_with_rules(file.path());
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "xdp-hello: {}: 100000 rules, more than the {MAX_RULES_PER_SET} a rule set may \
             hold; merge address rules into wider prefixes or port rules into ranges\n",
            file.path()
        )
    );
}

#[test]
fn endless_or_binary_rules_files_exit_2_at_once() {
    let (code, stderr, took) = run_with_rules("/dev/zero");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "xdp-hello: rules file /dev/zero is larger than {MAX_FILE_SIZE}"
        )),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let (code, stderr, _) = run_with_rules("/dev/urandom");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.starts_with("xdp-hello: /dev/urandom:") && stderr.contains(": not UTF-8 text"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(took < Duration::from_secs(10), "/dev/zero took {took:?}");
}

#[test]
fn a_long_bad_line_is_echoed_short() {
    let file = TempFile::new(
        "long-line",
        &format!("deny tcp dport {}\n", "9".repeat(10 << 20)),
    );
    let (code, stderr, _) = run_with_rules(file.path());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.len() < 500, "{} bytes of stderr", stderr.len());
    assert!(stderr.contains("…"), "{stderr}");
}

#[test]
fn help_states_the_rule_limits() {
    let out = Command::new(BINARY).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for limit in [
        format!("at most {MAX_RULES_PER_SET} rules"),
        format!("at most {MAX_FILE_SIZE}"),
        "allow|deny proto NAME|NUMBER".to_string(),
    ] {
        assert!(
            help.contains(&limit),
            "--help should say '{limit}':\n{help}"
        );
    }
}
