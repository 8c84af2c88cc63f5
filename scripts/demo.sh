#!/usr/bin/env bash
# make demo: xdp-hello on one end of a veth pair between two network namespaces
# of its own, while the other end sends ping, ping -6, UDP and TCP for a few
# seconds; then Ctrl-C (SIGINT) so its summary shows. Everything is removed on
# the way out, also on Ctrl-C or failure. No real interface is touched and
# nothing is sent outside the two namespaces.
#
#   scripts/demo.sh [BINARY]     (default target/release/xdp-hello; builds nothing)
#
# Environment: DEMO_SECONDS (default 5) how long traffic flows; DEMO_MODE
# (default auto) the --mode to attach in.
set -euo pipefail

BIN=${1:-target/release/xdp-hello}
DURATION=${DEMO_SECONDS:-5}
MODE=${DEMO_MODE:-auto}

say() { echo "demo: $*" >&2; }

if [[ $EUID -ne 0 ]]; then
    say "needs root (network namespaces, XDP): sudo $0 $*"
    exit 1
fi
if [[ ! -x $BIN ]]; then
    say "no binary at $BIN: run 'make build' first"
    exit 1
fi

# Unique per run, so a demo never meets another one's leftovers.
NS_A="xdp-hello-demo-$$-a"
NS_B="xdp-hello-demo-$$-b"
VETH_A="xhdemo$$a"
VETH_B="xhdemo$$b"
A4=10.212.0.1 B4=10.212.0.2
A6=fd00:212::1 B6=fd00:212::2

observer=""
# shellcheck disable=SC2317  # called by the traps
cleanup() {
    trap - EXIT INT TERM
    # SIGINT rather than a kill: xdp-hello detaches and prints its summary.
    if [[ -n $observer ]] && kill -0 "$observer" 2>/dev/null; then
        kill -INT "$observer" 2>/dev/null || true
        wait "$observer" 2>/dev/null || true
    fi
    # Deleting a namespace destroys its veth end, and with it the peer.
    ip netns del "$NS_A" 2>/dev/null || true
    ip netns del "$NS_B" 2>/dev/null || true
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

say "namespaces $NS_A and $NS_B, veth $VETH_A ($A4, $A6) <-> $VETH_B ($B4, $B6)"
ip netns add "$NS_A"
ip netns add "$NS_B"
# Both ends are created inside their namespaces: the host never sees them.
ip link add "$VETH_A" netns "$NS_A" type veth peer name "$VETH_B" netns "$NS_B"
for side in A B; do
    ns=NS_$side veth=VETH_$side v4=${side}4 v6=${side}6
    ip -n "${!ns}" addr add "${!v4}/24" dev "${!veth}"
    # nodad: the IPv6 address is usable at once instead of "tentative".
    ip -n "${!ns}" addr add "${!v6}/64" dev "${!veth}" nodad
    ip -n "${!ns}" link set dev "${!veth}" up
    ip -n "${!ns}" link set dev lo up
done

# In the background, so this script can send traffic meanwhile; its stdout
# and stderr are the terminal's, so the notices show as they come.
# One rule, so the firewall shows too: the TCP SYNs to port 8080 are dropped.
ip netns exec "$NS_A" "$BIN" -i "$VETH_A" -m "$MODE" --rule 'deny tcp dport 8080' &
observer=$!

# Wait until the program is on the interface (or xdp-hello gave up).
for _ in $(seq 100); do
    kill -0 "$observer" 2>/dev/null || { wait "$observer" || true; say "xdp-hello did not start"; exit 1; }
    ip -n "$NS_A" link show dev "$VETH_A" | grep -qE ' xdp(generic)? ' && break
    sleep 0.1
done

in_b() { ip netns exec "$NS_B" "$@"; }

say "sending ping, ping -6, UDP to port 5353 and TCP to port 8080 (denied) for ${DURATION}s"
end=$((SECONDS + DURATION))
while ((SECONDS < end)); do
    in_b ping -n -q -c 1 -W 1 "$A4" >/dev/null || true
    in_b ping -n -q -c 1 -W 1 "$A6" >/dev/null || true
    # bash's /dev/udp and /dev/tcp: no netcat needed.
    in_b bash -c "echo hello >/dev/udp/$A4/5353" || true
    # Dropped by the rule: the connect gives up after a second.
    in_b timeout 1 bash -c "exec 3<>/dev/tcp/$A4/8080" 2>/dev/null || true
done

say "stopping xdp-hello with SIGINT"
kill -INT "$observer"
status=0
wait "$observer" || status=$?
observer=""
exit "$status"
