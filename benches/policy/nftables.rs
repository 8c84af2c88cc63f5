//! An nftables `netdev` ingress chain on a bench veth: the rules as
//! rulegen translates them, loaded with `nft -f` in side A's namespace
//! (the veth part times packets/s through it beside ours).

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use xdp_hello::selftest::veth::{Side, TestNet};

use crate::rulegen::Rule;

const TABLE: &str = "xdp_hello_bench";

/// Fails with what to do when nft is not installed.
pub fn require() -> Result<()> {
    if Command::new("nft").arg("--version").output().is_err() {
        bail!("nft is not installed: run scripts/bench-tools.sh (make bench does)");
    }
    Ok(())
}

/// Loads `rules`, in order, as the ingress chain of side A's veth; it goes
/// with the namespace.
pub fn load(net: &TestNet, rules: &[Rule]) -> Result<()> {
    nft(net, &["-f", "-"], Some(&ruleset(net.veth(Side::A), rules)))
}

/// The rules in order as a netdev ingress chain on `iface`.
fn ruleset(iface: &str, rules: &[Rule]) -> String {
    let mut text = format!(
        "table netdev {TABLE} {{\n  chain ingress {{\n    type filter hook ingress device \"{iface}\" priority 0; policy accept;\n"
    );
    for line in rules.iter().flat_map(Rule::nft) {
        text.push_str(&format!("    {line}\n"));
    }
    text.push_str("  }\n}\n");
    text
}

/// `nft ARGS…` in side A's namespace, `input` on its stdin.
fn nft(net: &TestNet, args: &[&str], input: Option<&str>) -> Result<()> {
    let mut child = Command::new("ip")
        .args(["netns", "exec", net.ns(Side::A), "nft"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running nft")?;
    let mut stdin = child.stdin.take().expect("a piped stdin");
    if let Some(input) = input {
        stdin
            .write_all(input.as_bytes())
            .context("writing to nft")?;
    }
    drop(stdin);
    let out = child.wait_with_output().context("waiting for nft")?;
    if !out.status.success() {
        bail!(
            "nft {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
