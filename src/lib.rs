//! xdp-hello: a small XDP firewall and packet observer whose kernel side is
//! Rust (src/bpf), loaded through a libbpf skeleton.

pub mod abi;
pub mod attach;
pub mod capture;
pub mod check;
pub mod classifier_swap;
pub mod classify;
pub mod cli;
pub mod firewall;
pub mod grace;
pub mod iface;
pub mod instance;
pub mod kernel;
pub mod loader;
pub mod logging;
pub mod metrics;
pub mod notices;
pub mod occupants;
pub mod output;
pub mod policy;
pub mod privileges;
pub mod rules_watch;
pub mod selftest;
pub mod session;
pub mod sink;
pub mod skel;
pub mod stats;
pub mod status;
pub mod watch;
