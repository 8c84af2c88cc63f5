//! Whether this process may load and attach XDP programs, and what to tell
//! the user when it may not.

use anyhow::{anyhow, Result};

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Fails early, with the fix, when the process lacks the capabilities: the
/// kernel's own EPERM comes with a misleading hint about RLIMIT_MEMLOCK.
pub fn check() -> Result<()> {
    let Some(effective) = effective_capabilities() else {
        return Ok(()); // cannot tell: let the kernel decide
    };
    let has = |cap: u32| effective & (1u64 << cap) != 0;
    // CAP_PERFMON lets the verifier accept the packet-pointer arithmetic.
    let bpf = has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON));
    if bpf && has(CAP_NET_ADMIN) {
        Ok(())
    } else {
        Err(denied())
    }
}

/// The one-line error for missing privileges.
pub fn denied() -> anyhow::Error {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "xdp-hello".into());
    anyhow!(
        "not allowed to load XDP programs: run as root (sudo), or grant the capabilities once \
         with `sudo setcap cap_bpf,cap_net_admin,cap_perfmon+ep {exe}`"
    )
}

/// CapEff of /proc/self/status.
fn effective_capabilities() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}
