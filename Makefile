# xdp-hello — `make help` lists the targets. V=1 shows the commands.

IFACE ?= eth0
ARGS  ?=
# Where cargo puts it, CARGO_TARGET_DIR included.
BIN   := $(or $(CARGO_TARGET_DIR),target)/release/xdp-hello
# Root runs directly; anyone else goes through sudo.
SUDO  := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
Q     := $(if $(V),,@)
# Tests and benches are built as you and run as root: cargo hands each test
# binary to sudo (so target/ never fills with root-owned files).
HOST   = $(shell rustc -vV | sed -n 's/^host: //p')
AS_ROOT = $(if $(SUDO),--config 'target.$(HOST).runner="sudo -E"',)

.DEFAULT_GOAL := help
.PHONY: help setup build run demo test fuzz lint smoke soak bench vmlinux clean

help: ## Show this list
	@awk 'BEGIN {FS = ":.*## "} /^[a-z]+:.*## / {printf "  make %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  (V=1 shows the commands; IFACE=eth0 and ARGS='...' go to make run)"

setup: ## Install what the build needs: Debian packages, the pinned nightly, bpf-linker
	$(Q)bash scripts/setup.sh

build: setup ## Build the XDP program and xdp-hello (release)
	$(Q)cargo build --release

run: build ## Run on IFACE (default eth0) as root: make run IFACE=eth0 ARGS='-m skb'
	$(Q)$(SUDO) $(BIN) -i $(IFACE) $(ARGS)

demo: build ## Watch notices on a veth pair in namespaces of its own (no real interface touched)
	$(Q)$(SUDO) bash scripts/demo.sh $(BIN)

# Tests that need root are #[ignore = "needs root: ..."]: a plain `cargo test`
# as anyone lists them as ignored. make test runs them as root with
# --include-ignored, where one that cannot get root fails. The only one left
# ignored is the soak (tests/soak.rs), for its length: make soak runs it.
test: build lint ## Lint, then every test as root: unit, BPF_PROG_TEST_RUN, veth attach
	$(Q)cargo test --release $(AS_ROOT) -- --include-ignored --skip soak_rss_and_fds_stay_flat

# make fuzz: frames run, and the stream's seed (a new one each run unless given).
FUZZ_PACKETS ?= 100000
FUZZ_SEED    ?= $(shell date +%s)
fuzz: build ## Differential fuzzer: FUZZ_PACKETS=100000 frames, program vs. reference model (root)
	$(Q)FUZZ_PACKETS=$(FUZZ_PACKETS) FUZZ_SEED=$(FUZZ_SEED) cargo test --release -q $(AS_ROOT) --test fuzz fuzz_program_against_model -- --include-ignored --nocapture

lint: setup ## cargo fmt --check and clippy -D warnings on both crates
	$(Q)cargo fmt --check
	$(Q)cargo clippy --release --all-targets -- -D warnings
	$(Q)cd src/bpf && cargo fmt --check && cargo clippy --release --target-dir ../../target/bpf -- -D warnings

smoke: build ## Run `xdp-hello selftest` on the host and on several kernels in VMs
	$(Q)$(SUDO) bash scripts/smoke.sh $(abspath $(BIN))

SOAK_SECONDS ?= 600
soak: build ## Ten minutes of steady traffic into xdp-hello (SOAK_SECONDS=N): RSS and fds flat?
	$(Q)SOAK_SECONDS=$(SOAK_SECONDS) cargo test --release $(AS_ROOT) --test soak -- --ignored --nocapture

# The comparisons need nftables and clang: installed here, not by setup
# (which brings xdp-tools). One bench binary, one table (benches/policy/main.rs lists its parts).
bench: build ## One table: per packet, rule-set scale, a real veth, start-up, vs C, xdp-filter, nftables (root)
	$(Q)$(SUDO) bash scripts/bench-tools.sh
	$(Q)cargo bench --bench policy $(AS_ROOT)

vmlinux: ## Regenerate vmlinux/vmlinux.rs from kernel BTF (BTF=path for another kernel)
	$(Q)bash scripts/gen-vmlinux.sh

clean: ## Remove build output (keeps the kernel cache of make smoke)
	$(Q)cargo clean
