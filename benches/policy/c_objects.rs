//! The bench's C programs (benches/c/): built with clang -O2 -g -target bpf
//! into target/bench-c/, as the user sudo was called by.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{ensure, Context, Result};

/// benches/c/NAME.bpf.c, built (scripts/bench-tools.sh installs clang).
pub fn build_c_object(name: &str) -> Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("target/bench-c");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    // The uapi headers' <asm/types.h> lives in the host's multiarch folder.
    let multiarch = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let source = root.join(format!("benches/c/{name}.bpf.c"));
    let object = out.join(format!("{name}.bpf.o"));
    let status = as_invoking_user(Command::new("clang"))
        .args([
            "-O2", "-g", "-Wall", "-Werror", "-target", "bpf", &multiarch, "-c",
        ])
        .arg(&source)
        .arg("-o")
        .arg(&object)
        .status()
        .context("running clang: run scripts/bench-tools.sh (make bench does)")?;
    ensure!(
        status.success(),
        "clang could not build {}",
        source.display()
    );
    Ok(object)
}

/// Under sudo, builds run as the user who called it, so that target/ holds
/// no files of root's (as the Makefile keeps it).
pub fn as_invoking_user(mut command: Command) -> Command {
    let id = |name: &str| std::env::var(name).ok()?.parse::<u32>().ok();
    if let (Some(uid), Some(gid)) = (id("SUDO_UID"), id("SUDO_GID")) {
        command.uid(uid).gid(gid);
    }
    command
}
