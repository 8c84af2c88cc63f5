//! A run that starts with no rules loads the program without its
//! classifier; its first rules put the whole program in that one's place on
//! the same link, and then hold. The built binary, attached in skb mode to
//! a veth pair in namespaces of the test's own, with real datagrams. Root
//! only: ignored as anyone else; `make test` runs them.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use xdp_hello::loader::Mode;
use xdp_hello::selftest::attach::eventually;
use xdp_hello::selftest::veth::{Side, TestNet, A_V4};

mod common;

#[path = "support/rules_file.rs"]
mod rules_file;
#[allow(dead_code)]
mod support;
use rules_file::RulesFile;
use support::observer::Observe;
use support::{links_of, prog_info, xdp_on};

const BINARY: &str = env!("CARGO_BIN_EXE_xdp-hello");
const NEEDS_ROOT: &str = "attaching in namespaces of its own (netns, veth, bpf())";

#[test]
#[ignore = "needs root: attaching in namespaces of its own (netns, veth, bpf())"]
fn the_first_rules_bring_the_classifier_onto_the_same_link() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    let file = RulesFile::new("classifier-swap");
    file.write("# no rules yet\n");
    let observer = net
        .observe(BINARY.as_ref(), Mode::Skb, &["--rules", file.path()])
        .unwrap();
    let discard = SocketAddr::from((A_V4, 9));
    let send = || net.send_udp(40000, discard, &[b"ping"]).unwrap();
    let verdicts = || -> Vec<String> {
        let to = format!("{A_V4}:9");
        observer
            .stdout()
            .iter()
            .filter(|line| line.contains(" UDP ") && line.split_whitespace().any(|w| w == to))
            .map(|line| verdict_of(line).to_string())
            .collect()
    };
    let [without] = xdp_on(&net, Side::A).unwrap()[..] else {
        panic!("not one program on {}", net.veth(Side::A));
    };
    let link = links_of(without);
    assert_eq!(link.len(), 1, "links of program {without}: {link:?}");
    assert_eq!(program_of_status(&net), without);
    // The 4 MiB ring and 4 MiB of the rest; the classifier's maps alone
    // are 31 MiB.
    let small = map_memory(observer.pid());
    assert!(
        small < 12 << 20,
        "{small} bytes of maps with no rules: the classifier's maps were made full size"
    );
    send();
    assert!(
        eventually(Duration::from_secs(3), || verdicts() == ["PASS"]),
        "{:?}",
        observer.stdout()
    );

    file.write("deny udp dport 9\n");
    assert_eq!(
        observer.reload(1, Duration::from_secs(5)).unwrap(),
        format!("xdp-hello: reload 1 of {}: 1 rule in force", file.path())
    );
    let [with] = xdp_on(&net, Side::A).unwrap()[..] else {
        panic!("not one program on {}", net.veth(Side::A));
    };
    assert_ne!(with, without, "the program was not replaced");
    let size = |id| prog_info(id).expect("a loaded program").xlated_prog_len;
    assert!(
        size(with) > 2 * size(without),
        "program {with} ({} bytes) is not the one with the classifier ({} bytes without)",
        size(with),
        size(without)
    );
    assert_eq!(links_of(with), link, "not replaced on the same bpf_link");
    let full = map_memory(observer.pid());
    assert!(
        full > small + (24 << 20),
        "{full} bytes of maps with rules, {small} without: the classifier's maps did not come"
    );
    assert_eq!(program_of_status(&net), with);
    send();
    assert!(
        eventually(Duration::from_secs(3), || verdicts() == ["PASS", "DROP"]),
        "{:?}",
        observer.stdout()
    );

    let done = observer.stop(libc::SIGINT).unwrap();
    assert_eq!(done.status.code(), Some(0), "{:?}", done.stderr);
    assert!(
        done.stderr
            .iter()
            .any(|line| line.contains("1 hits") && line.ends_with("deny udp dport 9")),
        "{:?}",
        done.stderr
    );
    assert!(xdp_on(&net, Side::A).unwrap().is_empty(), "left attached");
}

/// The program id `xdp-hello status -j` gives for the one instance.
fn program_of_status(net: &TestNet) -> u32 {
    let out = net.exec(Side::A, BINARY, &["status", "-j"]).unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}", String::from_utf8_lossy(&out.stdout)));
    doc["instances"][0]["program_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no program_id in {doc}")) as u32
}

/// The kernel memory of the BPF maps process `pid` holds, each map once
/// (`memlock` of its descriptors' fdinfo).
fn map_memory(pid: u32) -> u64 {
    let mut maps = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fdinfo")).unwrap() {
        let Ok(info) = std::fs::read_to_string(entry.unwrap().path()) else {
            continue; // closed meanwhile
        };
        let field = |name: &str| {
            info.lines()
                .find_map(|line| line.strip_prefix(name)?.trim().parse::<u64>().ok())
        };
        if let (Some(id), Some(memlock)) = (field("map_id:"), field("memlock:")) {
            maps.insert(id, memlock);
        }
    }
    maps.values().sum()
}

/// The verdict word of a notice line.
fn verdict_of(line: &str) -> &str {
    line.split_whitespace()
        .find(|word| ["PASS", "DROP"].contains(word))
        .unwrap_or("")
}
