//! `xdp-hello status` against the built binary attached over a veth: the
//! instance with its ids, rules and hits while it runs, nothing for a user
//! it does not answer, and nothing at all after a SIGKILL. Root only.

use std::net::SocketAddr;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use xdp_hello::loader::Mode;
use xdp_hello::selftest::attach::eventually;
use xdp_hello::selftest::veth::{Side, TestNet, A_V4};

mod common;
#[allow(dead_code)]
mod support;
use support::links_of;
use support::observer::Observe;

const BINARY: &str = env!("CARGO_BIN_EXE_xdp-hello");
const NEEDS_ROOT: &str = "attaching in namespaces of its own (netns, veth, bpf())";

/// `xdp-hello status ARGS…` run in namespace A.
fn status(net: &TestNet, args: &[&str]) -> Output {
    let mut all = vec!["status"];
    all.extend(args);
    net.exec(Side::A, BINARY, &all).unwrap()
}

/// `status -j`'s instances.
fn instances(net: &TestNet) -> (Option<i32>, Vec<Value>) {
    let out = status(net, &["-j"]);
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}", String::from_utf8_lossy(&out.stdout)));
    let list = doc["instances"].as_array().expect("instances").clone();
    (out.status.code(), list)
}

/// The status sockets namespace A's /proc/net/unix lists.
fn status_sockets(net: &TestNet) -> Vec<String> {
    let out = net.exec(Side::A, "cat", &["/proc/net/unix"]).unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| line.contains("@xdp-hello/"))
        .map(str::to_string)
        .collect()
}

#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn status_shows_the_running_instance_and_nothing_after_sigkill() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let observer = net
        .observe(
            BINARY.as_ref(),
            Mode::Skb,
            &[
                "--notices",
                "none",
                "--rule",
                "deny udp dport 9",
                "--rule",
                "allow icmp",
            ],
        )
        .unwrap();
    let sent = 4;
    net.send_udp(
        40000,
        SocketAddr::from((A_V4, 9)),
        &vec![&b"ping"[..]; sent],
    )
    .unwrap();
    let [prog] = net.xdp(Side::A).unwrap()[..] else {
        panic!("want one program attached");
    };

    let hits_of_rule_0 = |list: &[Value]| list.first().map(|i| i["rules"][0]["packets"].clone());
    assert!(
        eventually(Duration::from_secs(3), || hits_of_rule_0(
            &instances(&net).1
        ) == Some(sent.into())),
        "{:?}",
        instances(&net)
    );
    let (code, list) = instances(&net);
    assert_eq!(code, Some(0));
    let [instance] = &list[..] else {
        panic!("want one instance: {list:?}");
    };
    assert_eq!(instance["pid"], observer.pid());
    let attached = &instance["interfaces"][0];
    assert_eq!(attached["name"], net.veth(Side::A));
    assert_eq!(attached["mode"], "skb");
    assert_eq!(instance["interfaces"].as_array().unwrap().len(), 1);
    assert_eq!(instance["program_id"], prog.id);
    assert_eq!(
        links_of(prog.id),
        [attached["link_id"].as_u64().unwrap() as u32]
    );
    assert_eq!(instance["accounting"][0]["interface"], net.veth(Side::A));
    assert_eq!(instance["accounting"][0]["dropped"], sent);
    assert_eq!(instance["counts"]["dropped"], sent);
    let rules: Vec<(u64, &str)> = instance["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| (rule["id"].as_u64().unwrap(), rule["rule"].as_str().unwrap()))
        .collect();
    assert_eq!(rules, [(0, "deny udp dport 9"), (1, "allow icmp")]);
    assert!(instance["uptime_seconds"].as_f64().unwrap() > 0.0);

    let text = status(&net, &[]);
    let text_out = String::from_utf8_lossy(&text.stdout);
    assert_eq!(text.status.code(), Some(0));
    assert!(
        text_out.starts_with(&format!(
            "xdp-hello {} (pid {}) on {}: skb mode, program {} tag ",
            env!("CARGO_PKG_VERSION"),
            observer.pid(),
            net.veth(Side::A),
            prog.id
        )) && text_out.contains("rule   0          4 hits          184 bytes  deny udp dport 9"),
        "{text_out}"
    );

    // Another user gets nothing.
    let nobody = net
        .exec(
            Side::A,
            "setpriv",
            &[
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                BINARY,
                "status",
            ],
        )
        .unwrap();
    let refused = String::from_utf8_lossy(&nobody.stderr);
    assert_eq!(nobody.status.code(), Some(1), "{refused}");
    assert!(
        refused.contains("no answer: an instance answers root and the user it runs as only"),
        "{refused}"
    );

    assert_eq!(status_sockets(&net).len(), 1, "{:?}", status_sockets(&net));
    let done = observer.stop(libc::SIGKILL).unwrap();
    assert_eq!(done.status.code(), None);
    assert_eq!(status_sockets(&net), Vec::<String>::new());
    assert_eq!(instances(&net), (Some(1), vec![]));
    let none = status(&net, &[]);
    assert_eq!(
        String::from_utf8_lossy(&none.stderr),
        "xdp-hello: no xdp-hello instance is running in this network namespace\n"
    );
    assert!(
        eventually(Duration::from_secs(2), || net
            .xdp(Side::A)
            .unwrap()
            .is_empty()),
        "still attached after SIGKILL"
    );
}
