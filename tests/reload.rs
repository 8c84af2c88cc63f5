//! SIGHUP reloads of the built binary, attached in skb mode to a veth pair
//! in namespaces of the test's own: what each reload says (counted, in
//! plain words), and rule ids that keep their meaning for the whole run in
//! notices and in the summary. Root only:
//! ignored as anyone else; `make test` runs them.

use std::net::SocketAddr;
use std::time::Duration;

use xdp_hello::loader::Mode;
use xdp_hello::selftest::attach::eventually;
use xdp_hello::selftest::veth::{TestNet, A_V4};

mod common;

/// What the tests marked `needs root` need it for.
const NEEDS_ROOT: &str = "attaching in namespaces of its own (netns, veth, bpf())";
#[path = "support/rules_file.rs"]
mod rules_file;
#[allow(dead_code)]
mod support;
use rules_file::RulesFile;
use support::observer::Observe;

const BINARY: &str = env!("CARGO_BIN_EXE_xdp-hello");

/// Issue 7 item 15: reloads are counted, never named by generation; one
/// rule is "1 rule"; a rule that goes and comes back is a new rule with a
/// new id, in notices and in the summary, and a rule that stays keeps its id.
#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn reloads_are_counted_and_rule_ids_keep_their_meaning() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let file = RulesFile::new("reload-ids");
    file.write("deny udp dport 9\n");
    let observer = net
        .observe(BINARY.as_ref(), Mode::Skb, &["--rules", file.path()])
        .unwrap();
    let path = file.path();
    let discard = SocketAddr::from((A_V4, 9));
    let echo = SocketAddr::from((A_V4, 10));
    let send = |to: SocketAddr| net.send_udp(40000, to, &[b"ping"]).unwrap();
    let wait_for = |port: u16, count: usize| {
        assert!(
            eventually(Duration::from_secs(3), || rules_of(
                &observer.stdout(),
                port
            )
            .len()
                >= count),
            "no notice {count} for port {port}: {:?}",
            observer.stdout()
        );
    };

    send(discard);
    wait_for(9, 1);
    file.write("deny udp dport 10\n");
    assert_eq!(
        observer.reload(1, Duration::from_secs(5)).unwrap(),
        format!("xdp-hello: reload 1 of {path}: 1 rule in force")
    );
    file.write("deny udp dport 10\nbogus\n");
    let refused = observer.reload(2, Duration::from_secs(5)).unwrap();
    let want = format!(
        "xdp-hello: reload 2 of {path} failed, keeping the 1 rule in force: {path}:2: bad rule \
         'bogus': starts with 'bogus'"
    );
    assert!(refused.starts_with(&want), "{refused}\nwant {want}…");
    send(echo);
    wait_for(10, 1);
    file.write("deny udp dport 9\ndeny udp dport 10\n");
    assert_eq!(
        observer.reload(3, Duration::from_secs(5)).unwrap(),
        format!("xdp-hello: reload 3 of {path}: 2 rules in force")
    );
    send(discard);
    send(echo);
    wait_for(9, 2);
    wait_for(10, 2);

    let done = observer.stop(libc::SIGINT).unwrap();
    assert_eq!(done.status.code(), Some(0), "{:?}", done.stderr);
    for line in &done.stderr {
        assert!(
            !line.contains("generation") && !line.contains(" 1 rules"),
            "{line}"
        );
    }
    // 'deny udp dport 9' was rule 0, then gone; back, it is rule 2.
    // 'deny udp dport 10' is rule 1 all along.
    let notices = (rules_of(&done.stdout, 9), rules_of(&done.stdout, 10));
    assert_eq!(
        notices,
        (vec![Some(0), Some(2)], vec![Some(1), Some(1)]),
        "{:?}",
        done.stdout
    );
    let summary: Vec<&str> = done
        .stderr
        .iter()
        .filter(|line| line.starts_with("xdp-hello:   rule"))
        .map(String::as_str)
        .collect();
    assert_eq!(
        summary,
        [
            // 46 bytes a datagram: Ethernet, IPv4, UDP and "ping".
            "xdp-hello:   rule   2          1 hits           46 bytes  deny udp dport 9",
            "xdp-hello:   rule   1          2 hits           92 bytes  deny udp dport 10",
        ],
        "{:?}",
        done.stderr
    );
}

/// `rule N` of the notice lines for UDP to A's `port`, in order (`None`:
/// no rule).
fn rules_of(stdout: &[String], port: u16) -> Vec<Option<u32>> {
    let to = format!("→ {A_V4}:{port} ");
    stdout
        .iter()
        .filter(|line| line.contains(" UDP ") && line.contains(&to))
        .map(
            |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                [.., "rule", id] => id.parse().ok(),
                _ => None,
            },
        )
        .collect()
}
