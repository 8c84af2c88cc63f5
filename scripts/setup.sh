#!/usr/bin/env bash
# Installs everything xdp-hello's build and tests need; safe to run again.
#   Debian packages · the nightly pinned in src/bpf/rust-toolchain.toml (+ rust-src)
#   · bpf-linker built against that nightly's own libLLVM (no system LLVM)
#   · kubernetes-validate in a venv under .cache/ (the manifests' test).
set -euo pipefail
cd "$(dirname "$0")/.."

BPF_LINKER_VERSION=0.13.0
# Its schemas ship inside the package: validating needs no network.
KUBERNETES_VALIDATE_VERSION=1.37.0
KUBERNETES_VALIDATE_VENV=.cache/kubernetes-validate
# curl: the tests scrape --metrics (promtool, which judges the text format,
# comes out of Debian's prometheus package below, without the server).
# systemd: systemd-analyze for the unit's test; python3-venv: the venv below.
# xdp-tools: xdp-loader (libxdp) loads the object in tests/loaders.rs; make
# bench's xdp-filter comes with it. tcpdump, tshark: the capture tests read
# -w's pcapng back with both (noninteractive: wireshark-common's dumpcap
# question keeps its default, no setuid).
APT_PACKAGES=(make gcc pkg-config libelf-dev zlib1g-dev bpftool iproute2 iputils-ping strace curl
    systemd python3-venv xdp-tools tcpdump tshark)

say() { printf 'setup: %s\n' "$*" >&2; }

# --- Debian packages -------------------------------------------------------
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) == *'ok installed'* ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [[ $EUID -ne 0 ]]; then
        say "missing Debian packages; run: sudo apt-get update && sudo apt-get install -y ${missing[*]}"
        exit 1
    fi
    say "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- promtool, for the metrics tests ---------------------------------------
# Only the one binary, unpacked from the package into .cache/tools:
# installing the package would also enable a Prometheus server on :9090.
PROMTOOL=.cache/tools/promtool
if [[ ! -x $PROMTOOL ]]; then
    say "unpacking promtool from Debian's prometheus package into $PROMTOOL"
    unpack=$(mktemp -d)
    (cd "$unpack" && apt-get download -qq prometheus >/dev/null 2>&1) ||
        { apt-get update -qq && (cd "$unpack" && apt-get download -qq prometheus >/dev/null); }
    dpkg-deb -x "$unpack"/prometheus_*.deb "$unpack/files"
    mkdir -p "$(dirname "$PROMTOOL")"
    install -m 0755 "$unpack/files/usr/bin/promtool" "$PROMTOOL"
    rm -rf "$unpack"
fi

# --- the pinned nightly ----------------------------------------------------
command -v rustup >/dev/null || { say "rustup not found; install it from https://rustup.rs, then run make setup again"; exit 1; }
toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' src/bpf/rust-toolchain.toml)
if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
    say "installing Rust $toolchain with rust-src"
    rustup toolchain install "$toolchain" --profile minimal --component rust-src,rustfmt,clippy
fi
# rust-src builds core for the BPF target; rustfmt formats the generated
# skeleton; clippy lints both crates. A no-op when they are there.
rustup component add --toolchain "$toolchain" rust-src rustfmt clippy 2>/dev/null
rustup component add rustfmt clippy 2>/dev/null
sysroot=$(rustup run "$toolchain" rustc --print sysroot)
libllvm=$(cd "$sysroot/lib" && ls libLLVM.so.* 2>/dev/null | head -n1)
[[ -n "$libllvm" ]] || { say "no libLLVM in $sysroot/lib; reinstall $toolchain"; exit 1; }
llvm_major=${libllvm#libLLVM.so.}; llvm_major=${llvm_major%%.*}

# --- bpf-linker, tied to that nightly's libLLVM ---------------------------
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
linker_ok() {
    local bin="$cargo_bin/bpf-linker"
    [[ -x "$bin" ]] || return 1
    # Captured, not piped into grep -q: under pipefail, grep quitting early
    # can kill the writer with SIGPIPE and fail a check that held.
    local version libs
    version=$("$bin" --version 2>/dev/null) || return 1
    [[ $version == *"$BPF_LINKER_VERSION"* ]] || return 1
    # It must resolve libLLVM to the pinned toolchain, not to another one.
    libs=$(ldd "$bin") || return 1
    [[ $libs == *"$sysroot/lib/$libllvm"* ]]
}
if ! linker_ok; then
    [[ -x "$cargo_bin/bpf-linker" ]] && say "bpf-linker there is not built for $toolchain's LLVM $llvm_major; rebuilding"
    prefix=$(mktemp -d)
    trap 'rm -rf "$prefix"' EXIT
    mkdir -p "$prefix/lib"
    ln -s "$sysroot/lib/$libllvm" "$prefix/lib/libLLVM.so"
    ln -s "$sysroot/lib/$libllvm" "$prefix/lib/$libllvm"
    say "building bpf-linker $BPF_LINKER_VERSION for LLVM $llvm_major (about 80 s)"
    LLVM_PREFIX="$prefix" RUSTFLAGS="-C link-args=-Wl,-rpath,$sysroot/lib" \
        cargo install bpf-linker --version "$BPF_LINKER_VERSION" --locked --force \
        --no-default-features --features "llvm-$llvm_major" --root "${CARGO_HOME:-$HOME/.cargo}"
    linker_ok || { say "bpf-linker was built but does not load $sysroot/lib/$libllvm"; exit 1; }
fi
# --- kubernetes-validate, for tests/contrib.rs -----------------------------
# Debian's python3 (python3-venv is for it), not whichever is first on PATH.
validator="$KUBERNETES_VALIDATE_VENV/bin/kubernetes-validate"
if [[ $("$validator" --version 2>/dev/null) != "$KUBERNETES_VALIDATE_VERSION" ]]; then
    say "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION into $KUBERNETES_VALIDATE_VENV"
    rm -rf "$KUBERNETES_VALIDATE_VENV"
    /usr/bin/python3 -m venv "$KUBERNETES_VALIDATE_VENV"
    "$KUBERNETES_VALIDATE_VENV/bin/pip" install -q --disable-pip-version-check \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi
say "ready: $toolchain (LLVM $llvm_major), bpf-linker $BPF_LINKER_VERSION, kubernetes-validate $KUBERNETES_VALIDATE_VERSION"
