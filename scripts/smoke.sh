#!/usr/bin/env bash
# Smoke test on real Debian kernels: boots each in a VM (virtme-ng, qemu) and runs
# `BINARY selftest` inside, plus once on the host kernel, then prints a table.
#
#   scripts/smoke.sh [--setup | --fetch] BINARY
#
#   --setup   only install the host packages and the virtme-ng venv, then stop
#   --fetch   only set up and fetch the kernels into the cache, then stop
#
# Environment (all optional):
#   SMOKE_GUEST_CMD  shell command to run instead of `BINARY selftest` (guests and host);
#                    with it, BINARY may be left out (and is ignored)
#   SMOKE_SUITES     Debian suites whose current `linux-image-amd64` is tested
#                    (default: "bullseye-security bookworm bookworm-backports trixie-backports")
#   SMOKE_TIMEOUT    seconds one kernel may take to boot and run the command (default 600)
#   SMOKE_KVM        auto | 1 | 0: use KVM if it can run a stock kernel (default auto: probe)
#   SMOKE_HOST       0 skips the run on the host kernel (default 1)
#   SMOKE_REFRESH    1 asks the archive again for each suite's current kernel (default: use
#                    the kernels already in the cache; a fresh cache always asks)
#   SMOKE_CACHE      cache folder (default: <repo>/.cache/smoke)
#   SMOKE_VERBOSE    1 shows each guest's output as it comes (it always goes to the logs)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${SMOKE_CACHE:-$ROOT/.cache/smoke}
read -ra SUITES <<<"${SMOKE_SUITES:-bullseye-security bookworm bookworm-backports trixie-backports}"
TIMEOUT=${SMOKE_TIMEOUT:-600}
VIRTME_NG_VERSION=1.42
MIRROR=http://deb.debian.org/debian
SECURITY_MIRROR=http://deb.debian.org/debian-security
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
# Modules kept in each slim kernel tree: what virtme-ng loads to boot (9p, virtio, overlay,
# fuse), veth for the selftest's namespaces, and a few cheap extras a test may want.
# Built-in or absent ones are skipped.
GUEST_MODULES=(veth dummy tun overlay 9p 9pnet_virtio virtio_pci virtio_console
    virtiofs fuse af_packet sch_ingress cls_bpf act_bpf i8042 atkbd)

say() { printf 'smoke: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

# --- host packages and virtme-ng --------------------------------------------
# qemu comes from bookworm-backports: bookworm's qemu 7.2 would remove the preinstalled
# qemu-utils 10.0. Only qemu and what its backport needs from there are taken from it, each
# named with its backport's version (apt will not pick a backported dependency by itself
# and ends in "held broken packages"); nothing else: `-t bookworm-backports` would also
# pull systemd/udev 254 from backports.
BACKPORTS=bookworm-backports
BACKPORTS_LIST=/etc/apt/sources.list.d/$BACKPORTS.sources
HOST_PACKAGES=(busybox-static kmod udev file xz-utils zstd python3-venv iproute2 iputils-ping)

# The packages to install from bookworm-backports so that apt can install PKG's backport,
# as PKG=VERSION with the version that suite has: PKG itself, then every dependency
# (Depends, Pre-Depends; the first of alternatives; recursively) whose version from the
# machine's other suites (apt's candidate) does not satisfy the backport's versioned
# dependency but whose backport does. For qemu-system-x86 that is qemu-system-common (the
# exact version), qemu-system-data and seabios. Versions are read from the archive, never
# written here. Needs the suite in apt's lists.
# PKG=VERSION, not PKG/bookworm-backports: given a suite, apt also switches dependencies
# that are not installed yet to that suite when it has them (libbpf1 1.4 on a machine
# without libbpf1), although bookworm's would do.
backport_closure() {
    local -A seen=() candidate=()
    local queue=("$@") pkg stanza deps name op version backport
    while ((${#queue[@]})); do
        pkg=${queue[0]} && queue=("${queue[@]:1}")
        [[ -z ${seen[$pkg]:-} ]] || continue
        seen[$pkg]=1
        stanza=$(apt-cache show "$pkg/$BACKPORTS" 2>/dev/null) || true
        version=$(sed -n 's/^Version: //p' <<<"$stanza" | head -n1)
        [[ -n $version ]] || die "$BACKPORTS has no $pkg (is $BACKPORTS_LIST read? apt-get update)"
        echo "$pkg=$version"
        deps=$(sed -n 's/^\(Pre-\)\?Depends: //p' <<<"$stanza" | tr ',' '\n' | sed 's/|.*//' |
            sed -n 's/^ *\([^ :(]*\)[^ (]* *(\([<>=]*\) *\([^)]*\)).*/\1 \2 \3/p')
        [[ -n $deps ]] || continue
        # One apt-cache call for all of them: "name candidate" a line.
        while read -r name version; do candidate[$name]=$version; done < <(
            # shellcheck disable=SC2046 # one name a word
            LC_ALL=C apt-cache policy $(cut -d' ' -f1 <<<"$deps") 2>/dev/null |
                awk '/^[^ ].*:$/ { n = $0; sub(/(:[a-z0-9]+)?:$/, "", n) } /^  Candidate: / { print n, $2 }')
        while read -r name op version; do
            if [[ ${candidate[$name]:-(none)} != "(none)" ]] &&
                dpkg --compare-versions "${candidate[$name]}" "$op" "$version"; then
                continue
            fi
            backport=$(apt-cache show "$name/$BACKPORTS" 2>/dev/null | sed -n 's/^Version: //p' | head -n1)
            if [[ -n $backport ]] && dpkg --compare-versions "$backport" "$op" "$version"; then
                queue+=("$name")
            fi # else apt says what is wrong
        done <<<"$deps"
    done
}

smoke_setup() {
    local missing=() pkg
    for pkg in qemu-system-x86 "${HOST_PACKAGES[@]}"; do
        [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) == *'ok installed'* ]] || missing+=("$pkg")
    done
    # qemu older than 8 means bookworm's, which must be replaced by the backport.
    if dpkg --compare-versions "$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null || echo 0)" lt 1:8; then
        [[ " ${missing[*]} " == *" qemu-system-x86 "* ]] || missing+=(qemu-system-x86)
    fi
    if ((${#missing[@]})); then
        local want=() pkg qemu
        local apt="apt-get -o DPkg::Lock::Timeout=600"
        if [[ $EUID -ne 0 ]]; then
            say "missing host packages: ${missing[*]}"
            say "as root, run: bash $0 --setup   (it adds $BACKPORTS_LIST if missing and"
            say "  installs qemu-system-x86 and what it needs from $BACKPORTS, by name)"
            exit 2
        fi
        if [[ ! -e $BACKPORTS_LIST ]]; then
            # Backports are NotAutomatic (priority 100): adding the suite changes nothing
            # else on the machine; packages come from it only when asked by name.
            say "adding $BACKPORTS_LIST (for qemu)"
            printf '# Added by xdp-hello scripts/smoke.sh, for qemu-system-x86.\n%s\n%s\n%s\n%s\n%s\n' \
                'Types: deb' "URIs: $MIRROR" "Suites: $BACKPORTS" 'Components: main' \
                "Signed-By: $KEYRING" >"$BACKPORTS_LIST"
        fi
        $apt update -qq
        for pkg in "${missing[@]}"; do
            if [[ $pkg == qemu-system-x86 ]]; then
                qemu=$(backport_closure qemu-system-x86) # exits (set -e) when it dies
                mapfile -t -O "${#want[@]}" want <<<"$qemu"
            else
                want+=("$pkg")
            fi
        done
        say "installing ${want[*]}"
        DEBIAN_FRONTEND=noninteractive $apt install -y -qq --no-install-recommends "${want[@]}" >/dev/null
    fi
    if [[ ! -x $CACHE/venv/bin/vng ]] ||
        [[ $("$CACHE/venv/bin/vng" --version 2>/dev/null) != *"$VIRTME_NG_VERSION"* ]]; then
        say "installing virtme-ng $VIRTME_NG_VERSION into $CACHE/venv"
        rm -rf "$CACHE/venv"
        # Debian's python, not whatever python3 is first on PATH: its venv module is known.
        /usr/bin/python3 -m venv "$CACHE/venv"
        "$CACHE/venv/bin/pip" install -q --disable-pip-version-check "virtme-ng==$VIRTME_NG_VERSION"
    fi
}

# --- kernels from Debian's archive ------------------------------------------
# A private apt configuration (own sources, lists and cache under $CACHE/apt) so the
# machine's /etc/apt stays as it is. Only used to look names up and download.
APT_DIR=$CACHE/apt
apt_private() { apt-get -c "$APT_DIR/apt.conf" "$@"; }
cache_private() { apt-cache -c "$APT_DIR/apt.conf" "$@"; }

apt_private_update() {
    mkdir -p "$APT_DIR"/{lists/partial,archives/partial,etc/preferences.d,etc/sources.list.d}
    touch "$APT_DIR/status"
    cat >"$APT_DIR/apt.conf" <<EOF
Dir::State "$APT_DIR";
Dir::State::Lists "$APT_DIR/lists";
Dir::State::status "$APT_DIR/status";
Dir::Cache "$APT_DIR";
Dir::Cache::archives "$APT_DIR/archives";
Dir::Etc::SourceList "$APT_DIR/sources.list";
Dir::Etc::SourceParts "$APT_DIR/etc/sources.list.d";
Dir::Etc::Preferences "$APT_DIR/etc/preferences";
Dir::Etc::PreferencesParts "$APT_DIR/etc/preferences.d";
APT::Architectures { "amd64"; };
# Files land in the repo, where apt's _apt user may not write: download as the caller.
APT::Sandbox::User "root";
Acquire::Languages "none";
Acquire::IndexTargets::deb::DEP-11::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons-large::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons-large-hidpi::DefaultEnabled "false";
EOF
    local suite
    for suite in "$@"; do
        if [[ $suite == *-security ]]; then
            echo "deb [signed-by=$KEYRING] $SECURITY_MIRROR $suite main"
        else
            echo "deb [signed-by=$KEYRING] $MIRROR $suite main"
        fi
    done >"$APT_DIR/sources.list"
    say "reading the package lists of: $*"
    # A suite that fails here (gone from the mirror, no network) shows up as FAIL (fetch).
    apt_private update -qq >"$APT_DIR/update.log" 2>&1 || sed 's/^/  /' "$APT_DIR/update.log" >&2
}

# The packages that make up the current kernel of a suite: the linux-image-<release> that
# the suite's linux-image-amd64 depends on, plus that image's own parts named after the same
# release (7.x splits into linux-binary-*, linux-modules-*, linux-base-*). Prints one
# name=version a line, the image first.
depends_of() { # PACKAGE[=VERSION|/SUITE] -> "name version" per versioned dependency
    cache_private show "$1" 2>/dev/null | sed -n 's/^Depends: //p' | head -n1 | tr ',|' '\n' |
        sed -n 's/^ *\([^ ]*\) *(= *\([^)]*\)).*/\1 \2/p'
}
kernel_packages() {
    local suite=$1 image version name
    read -r image version < <(depends_of "linux-image-amd64/$suite" | grep '^linux-image-') || return 1
    echo "$image=$version"
    depends_of "$image=$version" | while read -r name version; do
        if [[ $name == linux-*-"${image#linux-image-}" ]]; then echo "$name=$version"; fi
    done
}

# Fetch one suite's kernel into a slim tree $CACHE/kernels/<release>/{boot,lib/modules}
# and record the release in $CACHE/kernels/<suite>.release.
fetch_kernel() {
    local suite=$1 unpack=$CACHE/unpack/$1 pkgs release tree moddir mod deb
    pkgs=$(kernel_packages "$suite") || { say "$suite: no linux-image-amd64 in the archive"; return 1; }
    release=${pkgs%%=*} && release=${release#linux-image-}
    rm -rf "$unpack" && mkdir -p "$unpack/fs"
    say "$suite: downloading ${pkgs//$'\n'/ }"
    # shellcheck disable=SC2086 # one package a word
    (cd "$unpack" && apt_private download -qq $pkgs >/dev/null) || return 1
    for deb in "$unpack"/*.deb; do dpkg-deb -x "$deb" "$unpack/fs" || return 1; done
    # kmod 30's depmod/modprobe only look in <base>/lib/modules; 7.x packages use /usr.
    [[ -e $unpack/fs/lib ]] || ln -s usr/lib "$unpack/fs/lib"
    moddir=$unpack/fs/lib/modules/$release
    tree=$CACHE/kernels/$release
    rm -rf "$tree" && mkdir -p "$tree/boot" "$tree/lib/modules/$release"
    # Up to 6.12 the image lives in /boot; 7.x keeps vmlinuz and config in the modules folder.
    cp "$unpack/fs/boot/vmlinuz-$release" "$tree/boot/" 2>/dev/null ||
        cp "$moddir/vmlinuz" "$tree/boot/vmlinuz-$release" || return 1
    cp "$unpack/fs/boot/config-$release" "$tree/boot/" 2>/dev/null ||
        cp "$moddir/config" "$tree/boot/config-$release" || return 1
    cp "$moddir"/modules.{order,builtin,builtin.modinfo} "$tree/lib/modules/$release/" || return 1
    # Keep only the wanted modules and what they depend on (modprobe resolves that from
    # the full tree): the whole tree would be 100-400 MB per kernel.
    depmod -b "$unpack/fs" "$release" || return 1
    for mod in "${GUEST_MODULES[@]}"; do
        modprobe -C /var/empty -d "$unpack/fs" -S "$release" --show-depends "$mod" 2>/dev/null |
            sed -n 's/^insmod \([^ ]*\).*/\1/p'
    done | sort -u >"$unpack/modules"
    [[ -s $unpack/modules ]] || { say "$suite: found none of the guest modules"; return 1; }
    while read -r mod; do
        local rel=${mod#"$moddir"/}
        mkdir -p "$tree/lib/modules/$release/$(dirname "$rel")"
        # busybox insmod in virtme-ng's initramfs cannot read compressed modules.
        case $mod in
        *.xz) xz -dc "$mod" >"$tree/lib/modules/$release/${rel%.xz}" ;;
        *.zst) zstd -qdc "$mod" >"$tree/lib/modules/$release/${rel%.zst}" ;;
        *) cp "$mod" "$tree/lib/modules/$release/$rel" ;;
        esac || return 1
    done <"$unpack/modules"
    sed -i 's/\.ko\.\(xz\|zst\)$/.ko/' "$tree/lib/modules/$release/modules.order"
    depmod -b "$tree" "$release" || return 1
    echo "$release" >"$CACHE/kernels/$suite.release"
    say "$suite: $release ($(du -sh "$tree" | cut -f1), $(wc -l <"$unpack/modules") modules)"
    rm -rf "$unpack"
}

fetch_kernels() {
    local suite need=()
    mkdir -p "$CACHE/kernels"
    for suite in "${SUITES[@]}"; do
        local rel_file=$CACHE/kernels/$suite.release
        if [[ ${SMOKE_REFRESH:-0} == 1 || ! -s $rel_file || ! -d $CACHE/kernels/$(cat "$rel_file") ]]; then
            need+=("$suite")
        fi
    done
    ((${#need[@]})) || return 0
    apt_private_update "${need[@]}"
    for suite in "${need[@]}"; do
        local want have
        have=$(cat "$CACHE/kernels/$suite.release" 2>/dev/null || true)
        # With SMOKE_REFRESH, fetch only when the suite's kernel changed.
        if [[ -n $have && -d $CACHE/kernels/$have ]] && want=$(kernel_packages "$suite") &&
            [[ $want == "linux-image-$have="* ]]; then
            say "$suite: $have is still current"
            continue
        fi
        if ! fetch_kernel "$suite"; then
            rm -rf "$CACHE/kernels/$suite.release" "$CACHE/unpack/$suite"
        elif [[ -n $have ]] && ! grep -qxF "$have" "$CACHE"/kernels/*.release; then
            rm -rf "${CACHE:?}/kernels/$have" # replaced by a newer kernel of the same suite
        fi
    done
    rmdir "$CACHE/unpack" 2>/dev/null || true
}

# --- running ------------------------------------------------------------------
# Does KVM run this stock kernel? Here /dev/kvm is a paravirtual KVM on which qemu aborts
# at once (or the decompressor dies), so ask per kernel with a short boot: ~1 s when it
# fails fast, a few seconds when it works.
kvm_works() {
    local kimg=$1
    case ${SMOKE_KVM:-auto} in 0) return 1 ;; 1) return 0 ;; esac
    [[ -r /dev/kvm && -w /dev/kvm ]] || return 1
    timeout --kill-after=5 30 vng --cpus 2 --memory 1G -r "$kimg" -- true </dev/null >/dev/null 2>&1
}

# The script each VM (and the host) runs: makes sure veth is there, then the command.
write_guest_script() {
    cat >"$RUN_DIR/guest.sh" <<EOF
#!/bin/bash
# Written by scripts/smoke.sh; runs inside each VM and once on the host.
# Load veth up front: a missing module should say so here, not as a puzzling test error.
if [[ -d /lib/modules/\$(uname -r) ]] && ! modprobe veth; then
    echo "smoke: could not load the veth module in \$(uname -r)" >&2
fi
echo "smoke: running on \$(uname -r)"
$GUEST_CMD
EOF
}

RESULTS=() FAILED=()
record() { # KERNEL SECONDS RESULT
    RESULTS+=("$1|$2|$3")
    [[ $3 == PASS* ]] || FAILED+=("$1")
    if [[ $2 == - ]]; then say "$1: $3"; else say "$1: $3 in ${2}s"; fi
}
# Classify an exit status: timeout(1) says 124 (137 when it had to kill).
verdict() {
    case $1 in
    0) echo PASS ;; 124 | 137) echo "FAIL (timeout ${TIMEOUT}s)" ;; *) echo "FAIL (exit $1)" ;;
    esac
}
# Guest output goes through a pipe, never straight to a file: qemu reopens vng's stdout and
# stderr by path with O_TRUNC, so the two streams would overwrite each other in a file.
to_log() { if [[ ${SMOKE_VERBOSE:-0} == 1 ]]; then tee "$1" >&2; else cat >"$1"; fi; }
show_tail() { say "last lines of ${1#"$ROOT"/}:" && tail -n 30 "$1" | sed 's/^/  | /' >&2; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

run_host() {
    local log start rc=0
    log=$RUN_DIR/host-$(uname -r).log
    say "host kernel $(uname -r): running"
    start=$(date +%s.%N)
    timeout --kill-after=10 "$TIMEOUT" bash "$RUN_DIR/guest.sh" </dev/null 2>&1 | to_log "$log" ||
        rc=${PIPESTATUS[0]}
    record "host $(uname -r)" "$(elapsed "$start")" "$(verdict "$rc")"
    ((rc == 0)) || show_tail "$log"
}

run_vm() {
    local release=$1 kimg=$CACHE/kernels/$1/boot/vmlinuz-$1 log=$RUN_DIR/$1.log start rc=0
    local accel=(--disable-kvm --qemu-opts="-accel tcg,thread=multi") mode=tcg
    if kvm_works "$kimg"; then accel=() mode=kvm; fi
    say "$release: booting ($mode)"
    start=$(date +%s.%N)
    local attempt note=""
    for attempt in 1 2 3; do
        rc=0
        # timeout(1) signals its whole process group, so qemu under vng goes too.
        # The guest sees the host's files, but its own /boot (config-<release>, as tools
        # expect). -v puts the kernel's console in the log: where a failed boot explains itself.
        timeout --kill-after=10 "$TIMEOUT" vng -v "${accel[@]}" --cpus 2 --memory 1G -r "$kimg" \
            --rodir="/boot=$CACHE/kernels/$release/boot" -- bash "$RUN_DIR/guest.sh" \
            </dev/null 2>&1 | to_log "$log" || rc=${PIPESTATUS[0]}
        # qemu itself sometimes dies on an internal assertion under TCG (seen once with 6.12:
        # msix_table_mmio_write, while the guest probed PCI). That is the emulator failing,
        # not the kernel or xdp-hello: boot again (twice at most), keep the log, say so.
        if ((rc != 0 && attempt < 3)) && grep -q '^qemu-system-x86_64: .*Assertion' "$log"; then
            mv "$log" "$log.qemu-crash-$attempt"
            say "$release: qemu crashed ($(grep -m1 -o 'Assertion.*' "$log.qemu-crash-$attempt")); booting again"
            note=" (after a qemu crash)"
            continue
        fi
        break
    done
    record "$release" "$(elapsed "$start")" "$(verdict "$rc")$note"
    ((rc == 0)) || show_tail "$log"
}

print_table() {
    local row k t r w=6
    for row in "${RESULTS[@]}"; do k=${row%%|*}; ((${#k} > w)) && w=${#k}; done
    printf '\n%-*s | %-18s | %s\n' "$w" kernel "boot+test seconds" result
    printf '%s-|-%s-|-%s\n' "$(printf '%*s' "$w" '' | tr ' ' -)" "$(printf '%18s' '' | tr ' ' -)" ------
    for row in "${RESULTS[@]}"; do
        IFS='|' read -r k t r <<<"$row"
        printf '%-*s | %18s | %s\n' "$w" "$k" "$t" "$r"
    done
}

main() {
    local mode=run
    case ${1:-} in
    --setup | --fetch) mode=${1#--} && shift ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" && exit 0 ;;
    esac
    if [[ -n ${SMOKE_GUEST_CMD:-} ]]; then
        GUEST_CMD=$SMOKE_GUEST_CMD
    elif [[ $mode == run ]]; then
        [[ $# -eq 1 ]] || die "usage: $0 [--setup|--fetch] BINARY   (or set SMOKE_GUEST_CMD)"
        [[ $1 == /* && -x $1 ]] || die "BINARY must be an absolute path to an executable: $1"
        GUEST_CMD="$(printf '%q' "$1") selftest"
    fi

    # One run at a time per cache: two would fetch into the same folders, and VMs side by
    # side would share the 2 cores and skew the times.
    mkdir -p "$CACHE"
    exec 9>"$CACHE/lock"
    flock -n 9 || { say "waiting for another smoke run on $CACHE"; flock 9; }

    smoke_setup
    [[ $mode == setup ]] && return 0
    export PATH=$CACHE/venv/bin:$PATH # vng calls virtme-run from PATH
    fetch_kernels
    [[ $mode == fetch ]] && return 0

    RUN_DIR=$CACHE/logs/$(date +%Y%m%d-%H%M%S)
    mkdir -p "$RUN_DIR"
    # Keep the logs of the last 10 runs (folder names sort by time).
    find "$CACHE/logs" -mindepth 1 -maxdepth 1 -type d | sort | head -n -10 | xargs -r rm -rf
    write_guest_script
    cd "$ROOT" # the guests start in the same folder (they see the host's files)
    local total_start suite release
    total_start=$(date +%s.%N)
    [[ ${SMOKE_HOST:-1} == 0 ]] || run_host
    for suite in "${SUITES[@]}"; do
        release=$(cat "$CACHE/kernels/$suite.release" 2>/dev/null || true)
        if [[ -z $release ]]; then
            record "$suite (no kernel)" - "FAIL (fetch)"
            continue
        fi
        run_vm "$release"
    done
    print_table
    # The tally CI reads: one per kernel (the host included).
    printf 'smoke: %d passed, %d failed\n' $((${#RESULTS[@]} - ${#FAILED[@]})) "${#FAILED[@]}"
    say "total $(elapsed "$total_start")s; logs in ${RUN_DIR#"$ROOT"/}"
    if ((${#FAILED[@]})); then
        say "FAILED: ${FAILED[*]}"
        exit 1
    fi
}

main "$@"
