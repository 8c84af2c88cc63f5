//! Rules the built binary refuses before it touches the kernel: files too
//! big, not text, or with more rules than a set holds, each with exit
//! status 2 and one line naming the file and the limit; the limits and the
//! first-match order in `--help`; and `xdp-hello check`, which compiles a
//! set without loading it, accepts duplicates and overlaps (a rule set is
//! ordered: they are no error) and names each rule that can never match.
//! Needs no privileges: rules are checked first, and the interface named
//! does not exist, so nothing could be attached anyway.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use xdp_hello::policy::{MAX_FILE_SIZE, MAX_RULES_PER_SET};
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
    assert!(
        stderr.starts_with(&format!(
            "xdp-hello: {}: 100000 rules, more than the {MAX_RULES_PER_SET} a rule set may \
             hold; merge ",
            file.path()
        )),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
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
        "the first that matches decides".to_string(),
        "allow tcp dport 22 src 10.0.0.0/24".to_string(),
        "xdp-hello check".to_string(),
    ] {
        assert!(
            help.contains(&limit),
            "--help should say '{limit}':\n{help}"
        );
    }
}

/// `xdp-hello check ARGS…`: its exit status, stdout and stderr.
fn check(args: &[&str]) -> (Option<i32>, String, String) {
    let out = output_within(
        Command::new(BINARY).arg("check").args(args),
        Duration::from_secs(20),
    )
    .expect("running xdp-hello check");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The policy, as a user would write it in a file.
const POLICY: &str = "\
# SSH from the admin network only
allow tcp dport 22 src 10.0.0.0/24
deny  tcp dport 22
allow tcp dport 80,443,8000-8080
allow udp dport 53 src 192.0.2.0/24,2001:db8::/32
allow icmp type 0,3,8,11
allow icmpv6 type 1-4,128,129,133-136
deny  src 203.0.113.0/24 log
allow proto 47
deny  tcp flags S/SA dport 1-1023
";

#[test]
fn check_counts_a_policy_without_warnings() {
    let file = TempFile::new("policy", POLICY);
    let (code, stdout, stderr) = check(&["--rules", file.path()]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert!(!stdout.contains("warning"), "{stdout}");
    assert!(
        stdout
            .lines()
            .last()
            .unwrap_or("")
            .starts_with("9 rules, 0 can never match"),
        "{stdout}"
    );
}

/// Duplicates and overlaps were errors while rules were unordered; now a
/// later rule an earlier one covers is a warning that names both, and the
/// exit status is 0.
#[test]
fn check_names_a_shadowed_rule_and_the_rule_before_it() {
    let file = TempFile::new(
        "shadowed",
        "deny tcp dport 22\nallow tcp dport 22 src 10.0.0.0/24\ndeny src 192.0.2.0/24\n",
    );
    let (code, stdout, stderr) =
        check(&["--rule", "deny src 192.0.2.0/24", "--rules", file.path()]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let warnings: Vec<&str> = stdout.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 2, "{stdout}");
    // The admin rule comes after the deny of all of port 22 …
    assert!(
        warnings[0].starts_with(&format!("{}:2: warning: ", file.path()))
            && warnings[0].contains("can never match")
            && warnings[0].contains(&format!("{}:1", file.path())),
        "{stdout}"
    );
    // … and the file's last line repeats the --rule given first.
    assert!(
        warnings[1].starts_with(&format!("{}:3: warning: ", file.path()))
            && warnings[1].contains("--rule #1"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .last()
            .unwrap_or("")
            .starts_with("4 rules, 2 can never match"),
        "{stdout}"
    );
}

/// A rule that two earlier ones decide between them is named with both,
/// and one that a later rule decides alone by that rule, not by an earlier
/// one that takes only a part of it.
#[test]
fn check_names_every_rule_a_shadowed_rule_needs_and_no_other() {
    let cases: [(&[&str], &str); 2] = [
        (
            &[
                "deny tcp dport 25",
                "allow tcp dport 80",
                "deny tcp dport 80",
            ],
            "--rule #3: warning: 'deny tcp dport 80' can never match: --rule #1 'deny tcp \
             dport 25' and --rule #2 'allow tcp dport 80' decide all of it between them",
        ),
        (
            &["deny tcp dport 9", "allow", "deny tcp dport 22"],
            "--rule #3: warning: 'deny tcp dport 22' can never match: --rule #2 'allow' \
             decides all of it first",
        ),
    ];
    for (rules, warning) in cases {
        let args: Vec<&str> = rules.iter().flat_map(|rule| ["--rule", rule]).collect();
        let (code, stdout, stderr) = check(&args);
        assert_eq!(code, Some(0), "{stdout}{stderr}");
        assert!(stdout.contains(warning), "{stdout}");
    }
}

#[test]
fn check_exits_2_naming_the_file_and_line_of_a_bad_rule() {
    let file = TempFile::new(
        "bad",
        "deny tcp dport 22\n\n# fine so far\ndeny tcp dport 70000\n",
    );
    let (code, stdout, stderr) = check(&["--rules", file.path()]);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with(&format!("xdp-hello: {}:4: ", file.path())),
        "{stderr}"
    );
    assert_eq!(lines[1], "xdp-hello: 1 bad rule: nothing else was checked");
}

/// Unlike a run, which stops at the first, `check` names every bad rule,
/// flags and file alike, in order.
#[test]
fn check_names_every_bad_rule_at_once() {
    let file = TempFile::new(
        "bad-lines",
        "allow tcp dport 22
deny dport 9
allow udp dport x
deny icmp
",
    );
    let (code, stdout, stderr) = check(&["--rule", "deny tcp sport y", "--rules", file.path()]);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    assert!(lines[0].starts_with("xdp-hello: --rule #1: "), "{stderr}");
    assert!(
        lines[1].starts_with(&format!("xdp-hello: {}:2: ", file.path()))
            && lines[1].contains("write tcp dport 9"),
        "{stderr}"
    );
    assert!(
        lines[2].starts_with(&format!("xdp-hello: {}:3: ", file.path())),
        "{stderr}"
    );
    assert_eq!(lines[3], "xdp-hello: 3 bad rules: nothing else was checked");
    assert!(stdout.is_empty(), "{stdout}");
}

/// A run takes the same duplicates: it gets past the rules to the
/// interface (which does not exist here).
#[test]
fn a_run_accepts_duplicate_and_overlapping_rules() {
    let file = TempFile::new(
        "duplicates",
        "deny src 10.0.0.0/8\ndeny src 10.0.0.0/8\nallow src 10.1.0.0/16\n",
    );
    let (code, stderr, _) = run_with_rules(file.path());
    assert_ne!(code, Some(0), "{stderr}");
    assert!(stderr.contains("xh-no-such-if"), "{stderr}");
    assert!(!stderr.contains(file.path()), "{stderr}");
}
