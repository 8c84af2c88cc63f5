//! Builds the XDP program in src/bpf (a no_std crate for bpfel-unknown-none,
//! compiled by the pinned nightly and linked by bpf-linker), then generates the
//! libbpf skeleton from the finished object. No clang, no C.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

use libbpf_cargo::SkeletonBuilder;

const BPF_CRATE: &str = "src/bpf";
const BPF_BINARY: &str = "xdp_hello";
/// The skeleton takes its name from the object's file name up to the first dot.
const OBJECT_NAME: &str = "xdp_hello.bpf.o";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let bpf_dir = manifest_dir.join(BPF_CRATE);

    for path in [BPF_CRATE, "src/abi.rs", "vmlinux"] {
        println!("cargo:rerun-if-changed={path}");
    }

    let toolchain = pinned_toolchain(&bpf_dir);
    check_tools(&toolchain);

    // Shared by every profile of the outer build, so `core` is compiled once;
    // it must not be the outer target dir itself (nested cargo would deadlock).
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("target"))
        .join("bpf");
    let object = build_bpf(&bpf_dir, &toolchain, &target_dir);

    let object_copy = out_dir.join(OBJECT_NAME);
    fs::copy(&object, &object_copy).unwrap_or_else(|e| fail(&format!("copy {object:?}: {e}")));
    // Where the object is, for tests that hand it to other loaders.
    println!("cargo:rustc-env=XDP_HELLO_OBJECT={}", object_copy.display());
    SkeletonBuilder::new()
        .obj(&object_copy)
        .generate(out_dir.join("xdp_hello.skel.rs"))
        .unwrap_or_else(|e| fail(&format!("generating the skeleton failed: {e:#}")));
}

/// The `channel` of src/bpf/rust-toolchain.toml.
fn pinned_toolchain(bpf_dir: &Path) -> String {
    let text = fs::read_to_string(bpf_dir.join("rust-toolchain.toml"))
        .unwrap_or_else(|e| fail(&format!("reading src/bpf/rust-toolchain.toml: {e}")));
    text.lines()
        .find_map(|line| {
            let value = line
                .trim()
                .strip_prefix("channel")?
                .trim()
                .strip_prefix('=')?;
            Some(value.trim().trim_matches('"').to_string())
        })
        .unwrap_or_else(|| fail("src/bpf/rust-toolchain.toml names no channel"))
}

fn check_tools(toolchain: &str) {
    let nightly_ok = Command::new("rustup")
        .args(["run", toolchain, "rustc", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !nightly_ok {
        fail(&format!(
            "Rust {toolchain} (pinned in src/bpf/rust-toolchain.toml) is not installed: run `make setup`"
        ));
    }
    let linker_ok = Command::new("bpf-linker")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !linker_ok {
        fail("bpf-linker is missing or cannot load its LLVM: run `make setup`");
    }
}

fn build_bpf(bpf_dir: &Path, toolchain: &str, target_dir: &Path) -> PathBuf {
    let mut cargo = Command::new("rustup");
    cargo
        .args([
            "run",
            toolchain,
            "cargo",
            "build",
            "--release",
            "--target-dir",
        ])
        .arg(target_dir)
        .current_dir(bpf_dir);
    // The outer cargo's settings (rustc, flags, target, wrappers) are for the
    // host build; the inner one must see none of them.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        let outer = (key.starts_with("CARGO") && key != "CARGO_HOME")
            || key.starts_with("RUSTC")
            || key.starts_with("RUSTDOC")
            || key == "RUSTFLAGS"
            || key == "RUSTUP_TOOLCHAIN";
        if outer {
            cargo.env_remove(key.as_ref());
        }
    }
    let status = cargo
        .status()
        .unwrap_or_else(|e| fail(&format!("running cargo for src/bpf: {e}")));
    if !status.success() {
        fail("building the XDP program in src/bpf failed (see above)");
    }
    target_dir
        .join("bpfel-unknown-none/release")
        .join(BPF_BINARY)
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    exit(1)
}
