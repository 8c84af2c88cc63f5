//! Root gating shared by the test files: a test that needs root is
//! `#[ignore = "needs root: …"]` and calls `require_root` first.
//!
//! Unprivileged, `cargo test` lists those tests as ignored; `make test` runs
//! them as root with `--include-ignored`. Run with `--include-ignored` but
//! not as root, they fail: a test that did not run never reports ok.

/// Panics, saying why, unless running as root (`needs`: what root is
/// needed for).
pub fn require_root(needs: &str) {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert!(
        euid == 0,
        "{needs} needs root (euid is {euid}): run `make test`, or the test binary as root \
         with `-- --include-ignored`"
    );
}
