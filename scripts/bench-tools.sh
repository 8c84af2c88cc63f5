#!/usr/bin/env bash
# Installs what `make bench` compares xdp-hello with, and only it: Debian's
# xdp-tools (xdp-filter), nftables (nft), and clang with libbpf's headers for
# the C twin and the empty program (benches/c/). Not part of `make setup`:
# the product and its tests need none of them. Safe to run again.
set -euo pipefail

say() { printf 'bench-tools: %s\n' "$*" >&2; }

# The commands the bench runs, and the packages they come in.
need=()
command -v xdp-filter >/dev/null || need+=(xdp-tools)
command -v nft >/dev/null || need+=(nftables)
command -v clang >/dev/null || need+=(clang)
[[ -e /usr/include/bpf/bpf_helpers.h ]] || need+=(libbpf-dev)
((${#need[@]})) || exit 0

if [[ $EUID -ne 0 ]]; then
    say "the bench needs ${need[*]}; run: sudo apt-get update && sudo apt-get install -y ${need[*]}"
    exit 1
fi
say "installing ${need[*]} for the comparisons"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
