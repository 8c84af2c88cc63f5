//! What tests/firewall.rs and tests/firewall_attach.rs share.

/// True as root; otherwise says why `test` does nothing (`needs`: what
/// root is needed for), so the test passes trivially.
pub fn root(test: &str, needs: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid == 0 {
        return true;
    }
    eprintln!("{test}: skipped: {needs} needs root (euid {euid}); run with sudo");
    false
}
