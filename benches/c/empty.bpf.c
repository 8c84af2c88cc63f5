// SPDX-License-Identifier: GPL-2.0
// The floor of every comparison: an XDP program that passes every frame
// and does nothing else. Built by the bench with clang (make bench only).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_empty(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
