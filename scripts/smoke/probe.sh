#!/usr/bin/env bash
# Stand-in for `xdp-hello selftest`: proves a kernel has what the selftest needs
# (bpf syscall with XDP and ring buffers, netns, veth, ping) without the product.
#   SMOKE_GUEST_CMD='bash scripts/smoke/probe.sh' scripts/smoke.sh
# Works on the host too. Everything it makes lives in its own namespaces and is removed.
set -euo pipefail

a=smoke_probe_a_$$ b=smoke_probe_b_$$
cleanup() { ip netns del "$a" 2>/dev/null || true; ip netns del "$b" 2>/dev/null || true; }
trap cleanup EXIT

echo "kernel: $(uname -r)"
# bpftool's probes load real programs and create real maps through bpf().
features=$(bpftool feature probe kernel)
for want in 'eBPF program_type xdp is available' 'eBPF map_type ringbuf is available'; do
    grep -q "$want" <<<"$features" || { echo "missing: $want" >&2; exit 1; }
    echo "ok: $want"
done

# Two namespaces joined by a veth pair; addresses from TEST-NET-1, never routed anywhere.
ip netns add "$a"
ip netns add "$b"
ip link add va netns "$a" type veth peer name vb netns "$b"
ip -n "$a" addr add 192.0.2.1/24 dev va
ip -n "$b" addr add 192.0.2.2/24 dev vb
ip -n "$a" link set va up
ip -n "$b" link set vb up
ip netns exec "$a" ping -c 2 -W 2 -q 192.0.2.2
echo "ok: netns + veth + ping"
