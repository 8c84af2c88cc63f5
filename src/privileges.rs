//! Whether this process may load and attach XDP programs, and what to tell
//! the user when it may not.

use anyhow::{anyhow, Result};

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Why the verifier wants CAP_PERFMON: without it (or CAP_SYS_ADMIN) it
/// refuses to subtract one packet pointer from another, "R8 pointer -=
/// pointer prohibited", with EACCES.
const PERFMON_REASON: &str =
    "the verifier accepts the program's `data_end - data` pointer arithmetic only with CAP_PERFMON";

/// Fails early, with the fix, when the process lacks the capabilities: the
/// kernel's own EPERM comes with a misleading hint about RLIMIT_MEMLOCK, and
/// a missing CAP_PERFMON shows only as a verifier rejection (EACCES).
pub fn check() -> Result<()> {
    match missing() {
        Some(missing) if !missing.is_empty() => Err(denied()),
        _ => Ok(()), // all there, or cannot tell: let the kernel decide
    }
}

/// The capabilities the process lacks for loading and attaching the
/// program; `None` when that cannot be told.
fn missing() -> Option<Vec<&'static str>> {
    effective_capabilities().map(missing_from)
}

/// Of the capability set `effective`: CAP_BPF, CAP_PERFMON and
/// CAP_NET_ADMIN if absent, unless CAP_SYS_ADMIN stands in for all three.
fn missing_from(effective: u64) -> Vec<&'static str> {
    let has = |cap: u32| effective & (1u64 << cap) != 0;
    if has(CAP_SYS_ADMIN) {
        return Vec::new();
    }
    // CAP_PERFMON lets the verifier accept the packet-pointer arithmetic;
    // CAP_NET_ADMIN lets BPF_PROG_LOAD take an XDP program.
    [
        (CAP_BPF, "CAP_BPF"),
        (CAP_PERFMON, "CAP_PERFMON"),
        (CAP_NET_ADMIN, "CAP_NET_ADMIN"),
    ]
    .into_iter()
    .filter(|&(cap, _)| !has(cap))
    .map(|(_, name)| name)
    .collect()
}

/// The one-line error for missing privileges: names what is missing where
/// that can be told, and does not tell root to run as root.
pub fn denied() -> anyhow::Error {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "xdp-hello".into());
    let root = unsafe { libc::geteuid() } == 0;
    anyhow!(denied_message(root, missing().as_deref(), &exe))
}

fn denied_message(root: bool, missing: Option<&[&str]>, exe: &str) -> String {
    let setcap = format!(
        "run as root (sudo), or grant the capabilities once with \
         `sudo setcap cap_bpf,cap_net_admin,cap_perfmon+ep {exe}`"
    );
    let start = "not allowed to load XDP programs";
    let missing = match missing {
        None => return format!("{start}: {setcap}"),
        Some([]) => {
            return format!(
                "{start}: the kernel refused although this process has the capabilities; in a \
                 user namespace (a rootless container) they do not count for bpf(), and a \
                 security module (lockdown, SELinux) may forbid it"
            )
        }
        Some(missing) => missing,
    };
    // Worth explaining where CAP_BPF alone looks as if it should do.
    let why = if missing.contains(&"CAP_PERFMON") && !missing.contains(&"CAP_BPF") {
        format!(" ({PERFMON_REASON})")
    } else {
        String::new()
    };
    let names = match missing.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    };
    if root {
        format!(
            "{start}: running as root, but without {names}{why}; a container, setpriv or capsh \
             may have dropped {}: keep CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN (or CAP_SYS_ADMIN \
             alone)",
            if missing.len() == 1 { "it" } else { "them" }
        )
    } else {
        format!("{start}: this process lacks {names}{why}; {setcap}")
    }
}

/// Why the verifier may have rejected the program (EACCES), when the
/// capabilities explain it: CAP_BPF without CAP_PERFMON or CAP_SYS_ADMIN.
/// `check` refuses that case up front, so this matters only where the
/// capabilities could not be read then.
pub fn verifier_hint() -> Option<String> {
    verifier_hint_for(&missing()?)
}

fn verifier_hint_for(missing: &[&str]) -> Option<String> {
    (missing.contains(&"CAP_PERFMON") && !missing.contains(&"CAP_BPF")).then(|| {
        format!(
            "this process has CAP_BPF but neither CAP_PERFMON nor CAP_SYS_ADMIN, the likely \
             cause: {PERFMON_REASON}"
        )
    })
}

/// CapEff of /proc/self/status.
fn effective_capabilities() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: u64 = (1 << CAP_BPF) | (1 << CAP_PERFMON) | (1 << CAP_NET_ADMIN);

    #[test]
    fn sys_admin_stands_in_for_the_rest() {
        assert_eq!(missing_from(1 << CAP_SYS_ADMIN), Vec::<&str>::new());
        assert_eq!(missing_from(ALL), Vec::<&str>::new());
        assert_eq!(missing_from(0), ["CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN"]);
    }

    #[test]
    fn cap_bpf_without_cap_perfmon_is_not_enough() {
        let missing = missing_from(ALL & !(1 << CAP_PERFMON));
        assert_eq!(missing, ["CAP_PERFMON"]);
        let root = denied_message(true, Some(&missing), "/x");
        assert!(
            root.contains("running as root, but without CAP_PERFMON (the verifier"),
            "{root}"
        );
        assert!(!root.contains("run as root"), "{root}");
        let user = denied_message(false, Some(&missing), "/x");
        assert!(user.contains("lacks CAP_PERFMON (the verifier"), "{user}");
        assert!(
            user.contains("setcap cap_bpf,cap_net_admin,cap_perfmon+ep /x"),
            "{user}"
        );
        assert!(verifier_hint_for(&missing).is_some());
    }

    #[test]
    fn names_everything_missing_in_one_line() {
        let missing = missing_from(0);
        let message = denied_message(false, Some(&missing), "/x");
        assert!(
            message.contains("lacks CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN; run as root"),
            "{message}"
        );
        assert_eq!(message.lines().count(), 1);
        assert_eq!(verifier_hint_for(&missing), None);
    }

    #[test]
    fn a_refusal_despite_the_capabilities_does_not_blame_them() {
        let message = denied_message(true, Some(&[]), "/x");
        assert!(
            message.contains("although this process has the capabilities"),
            "{message}"
        );
        assert!(!message.contains("run as root"), "{message}");
    }
}
