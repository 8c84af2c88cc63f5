// SPDX-License-Identifier: GPL-2.0-only
/*
 * xdp_hello_twin: xdp_hello (src/bpf) written again in C, for the policy
 * bench only (benches/policy/per_packet.rs), so that one run shows what
 * Rust costs next to clang -O2 on the same work. The same walk as
 * src/bpf/src/parse.rs, the same decision as src/bpf/src/rules.rs, the same
 * notice and per-interface counters as src/bpf/src/main.rs, the same
 * --sample/--max-rate (rate.rs), wake-up flags (wakeup.rs) and capture
 * (capture.rs), and the same maps, types and .rodata CONFIG as
 * src/bpf/src/maps.rs and src/abi.rs: the bench fills its rule tables with
 * xdp_hello::firewall, the code xdp-hello itself uses.
 * The two verifier aids of maps.rs (LENGTH_FIELD_MASK, UNKNOWN_ZERO) are
 * kept too, so that the two programs differ in language only.
 *
 * Built by the bench: clang -O2 -g -target bpf -c xdp_hello_twin.bpf.c
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/icmpv6.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* ---- src/abi.rs */
#define ETH_P_8021AD_ 0x88A8
#define IPPROTO_HOPOPTS_ 0
#define IPPROTO_ROUTING_ 43
#define IPPROTO_FRAGMENT_ 44
#define IPPROTO_AH_ 51
#define IPPROTO_ICMPV6_ 58
#define IPPROTO_DSTOPTS_ 60

#define MAX_VLAN_TAGS 8
#define MAX_EXT_HEADERS 8

#define DEPTH_L2 1
#define DEPTH_L3 2
#define DEPTH_L4 3

#define FLAG_TRUNCATED (1 << 0)
#define FLAG_MALFORMED (1 << 1)
#define FLAG_FRAGMENT (1 << 2)
#define FLAG_EXT_LIMIT (1 << 3)
#define FLAG_VLAN_LIMIT (1 << 4)

#define RULE_NONE 0xffffffffu
#define GENERATIONS 2
#define MAX_RULES (GENERATIONS * 65536)
#define MAX_NETWORKS 65536
#define DIRECTION_SRC 0
#define DIRECTION_DST 1
#define NOTICES_ALL 0
#define NOTICES_DENIED 1

#define GROUP_SRC (1u << 0)
#define GROUP_DST (1u << 1)
#define GROUP_SPORT (1u << 2)
#define GROUP_DPORT (1u << 3)
#define GROUP_PROTO (1u << 4)
#define SHAPES 32

#define LOOKUP_SRC_V4 (1u << 0)
#define LOOKUP_DST_V4 (1u << 1)
#define LOOKUP_SRC_V6 (1u << 2)
#define LOOKUP_DST_V6 (1u << 3)
#define LOOKUP_SPORT (1u << 4)
#define LOOKUP_DPORT (1u << 5)
#define LOOKUP_PROTO (1u << 6)
#define LOOKUP_ICMP (1u << 7)
#define LOOKUP_FLAGS (1u << 8)
#define LOOKUP_IFACE (1u << 9)

#define RANGES_PER_GENERATION (2 * MAX_NETWORKS + 2)
#define ADDRESS_TABLES 4
#define MAX_BUCKETS (1 << 16)
#define MAX_SEARCH_STEPS 18

#define FILTER_SRC 0
#define FILTER_DST 1
#define FILTER_SPORT 2
#define FILTER_DPORT 3

#define PORT_DOMAIN (65536 + 1)
#define PORT_UNKNOWN 65536
#define PROTO_DOMAIN (256 + 1)
#define PROTO_UNKNOWN 256
#define ICMP_DOMAIN (65536 + 1)
#define ICMP_UNKNOWN 65536
#define FLAGS_DOMAIN (256 + 1)
#define FLAGS_UNKNOWN 256
#define MAX_IFACE_CLASSES 255
#define NO_SLOT 0xffffffffu

#define HITS_PER_PAGE 2048
#define HIT_PAGES (MAX_RULES / HITS_PER_PAGE)
#define MAX_CLASS_ENTRIES (1 << 19)

#define COUNTER_NOTICES_LOST 5
#define COUNTER_NOTICES_SENT 6
#define COUNTER_SAMPLED_OUT 7
#define COUNTER_BYTES 8
#define COUNTER_OVER_RATE 13
#define COUNTER_NOT_ASKED 14
#define COUNTER_SLOTS 16
#define MAX_IFACES 16
#define COUNTER_BLOCKS (MAX_IFACES + 1)

#define AH_FIXED_LEN 12
#define L2_OFFSET_MASK 63

struct Config {
	__u32 default_verdict;
	__u32 notice_mode;
	__u32 dry_run;
	__u32 sample_every;
	__u64 notice_cost_ns;
	__u64 bucket_ns;
	__u32 iface_count;
	__u32 ifindexes[MAX_IFACES];
	__u32 snaplen;
	__u32 classifier;
	__u32 _pad;
};

struct RateState {
	__u64 skip;
	__u64 budget_ns;
	__u64 last_ns;
};

struct CounterBlock {
	__u64 slots[COUNTER_SLOTS];
};

struct AddressIndex {
	__u64 base;
	__u32 shift;
	__u32 last_bucket;
};

struct Bucket {
	__u32 first;
	__u32 last;
};

struct ClassKey {
	__u32 src;
	__u32 dst;
	__u16 sport;
	__u16 dport;
	__u16 proto;
	__u16 icmp;
	__u16 flags;
	__u8 iface;
	__u8 table;
};

struct Plan {
	__u32 shapes;
	__u32 lookups;
	__u32 any_rule;
	__u32 shape_count;
	__u8 shape_list[SHAPES];
	__u32 first_order[SHAPES];
	__u32 hashed;
	__u32 absent[4];
	__u32 _pad;
	struct AddressIndex addresses[ADDRESS_TABLES];
	struct ClassKey key_masks[SHAPES];
};

struct ClassEntry {
	__u32 order;
	__u32 slot;
	__u8 verdict;
	__u8 log;
	__u8 _pad[2];
};

struct ClassValue {
	__u32 class;
	__u32 shapes;
};

struct AddressClass {
	__u32 class;
	__u32 shapes;
	struct ClassEntry alone;
};

struct V4Range {
	__u32 start;
	struct AddressClass value;
};

struct V6Range {
	__u64 start_hi;
	__u64 start_lo;
	struct AddressClass value;
	__u32 _pad;
};

struct FieldSlots {
	__u32 proto;
	__u32 sport;
	__u32 dport;
	__u32 icmp;
	__u32 flags;
};

struct PacketClasses {
	struct ClassKey key;
	__u32 shapes;
	struct ClassEntry first;
	struct FieldSlots slots;
};

struct RuleHits {
	__u64 packets;
	__u64 bytes;
};

struct HitPage {
	struct RuleHits hits[HITS_PER_PAGE];
};

struct IfaceKey {
	__u32 generation;
	__u32 ifindex;
};

struct Notice {
	__u64 timestamp_ns;
	__u8 src_addr[16];
	__u8 dst_addr[16];
	__u32 ifindex;
	__u32 rx_queue;
	__u32 packet_len;
	__u32 rule_id;
	__u16 ether_type;
	__u16 vlan_outer;
	__u16 vlan_inner;
	__u16 src_port;
	__u16 dst_port;
	__u8 ip_version;
	__u8 l4_proto;
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 tcp_flags;
	__u8 verdict;
	__u8 depth;
	__u8 flags;
	__u8 vlan_count;
	__u8 arp_op;
	__u8 eth_src[6];
	__u8 eth_dst[6];
};

struct CaptureHeader {
	__u32 captured_len;
	__u32 _pad;
};

#define MAX_SNAPLEN (32768 - sizeof(struct Notice) - sizeof(struct CaptureHeader))

/* capture.rs: the notice, then what capture sends behind it. */
struct NoticeScratch {
	struct Notice notice;
	struct CaptureHeader capture;
	__u8 bytes[MAX_SNAPLEN];
};

_Static_assert(sizeof(struct Notice) == 88, "Notice as in src/abi.rs");
_Static_assert(sizeof(struct Config) == 112, "Config as in src/abi.rs");
_Static_assert(sizeof(struct NoticeScratch) == 32768, "NoticeScratch as in capture.rs");
_Static_assert(sizeof(struct ClassKey) == 20, "ClassKey as in src/abi.rs");
_Static_assert(sizeof(struct ClassEntry) == 12, "ClassEntry as in src/abi.rs");
_Static_assert(sizeof(struct Plan) == 904, "Plan as in src/abi.rs");
_Static_assert(sizeof(struct AddressClass) == 20, "AddressClass as in src/abi.rs");
_Static_assert(sizeof(struct PacketClasses) == 56, "PacketClasses as in src/abi.rs");
_Static_assert(sizeof(struct AddressIndex) == 16, "AddressIndex as in src/abi.rs");
_Static_assert(sizeof(struct Bucket) == 8, "Bucket as in src/abi.rs");
_Static_assert(sizeof(struct V4Range) == 24, "V4Range as in src/abi.rs");
_Static_assert(sizeof(struct V6Range) == 40, "V6Range as in src/abi.rs");

/* Headers the uapi does not have. */
struct vlan_hdr {
	__be16 h_vlan_TCI;
	__be16 h_vlan_encapsulated_proto;
};

struct frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 identification;
};

/* linux/if_arp.h and linux/icmp.h have these, but pull in the C library's
 * headers (through linux/if.h), which a BPF target has none of. */
#define ARPHRD_ETHER 1
struct arphdr {
	__be16 ar_hrd;
	__be16 ar_pro;
	__u8 ar_hln;
	__u8 ar_pln;
	__be16 ar_op;
};

struct icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 rest;
};

struct arp_eth_ipv4 {
	__u8 sender_mac[6];
	__u8 sender_ip[4];
	__u8 target_mac[6];
	__u8 target_ip[4];
};

/* ---- src/bpf/src/maps.rs */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_BLOCKS);
	__type(key, __u32);
	__type(value, struct CounterBlock);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct RateState);
} rate_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HIT_PAGES);
	__type(key, __u32);
	__type(value, struct HitPage);
} rule_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} rule_generation SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GENERATIONS);
	__type(key, __u32);
	__type(value, struct Plan);
} plans SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GENERATIONS * ADDRESS_TABLES * MAX_BUCKETS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct Bucket);
} address_buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GENERATIONS * RANGES_PER_GENERATION);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct V4Range);
} v4_ranges SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GENERATIONS * RANGES_PER_GENERATION);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct V6Range);
} v6_ranges SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GENERATIONS * 2 * PORT_DOMAIN);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct ClassValue);
} port_classes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GENERATIONS * PROTO_DOMAIN);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u32);
} proto_classes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GENERATIONS * ICMP_DOMAIN);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u32);
} icmp_classes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GENERATIONS * FLAGS_DOMAIN);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u32);
} flag_classes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GENERATIONS * MAX_IFACE_CLASSES);
	__type(key, struct IfaceKey);
	__type(value, __u32);
} iface_classes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct NoticeScratch);
} notice_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct PacketClasses);
} packet_classes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_CLASS_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ClassKey);
	__type(value, struct ClassEntry);
} class_rules SEC(".maps");

/* Alone in .rodata, so that it sits at offset 0 there, as the bench writes it. */
const volatile struct Config CONFIG = {
	.default_verdict = XDP_PASS,
	.notice_mode = NOTICES_ALL,
	.classifier = 1,
};

/* maps.rs's length_field and merged: see there. */
const volatile __u32 LENGTH_FIELD_MASK SEC(".rodata.mask") = 0xffff;
volatile __u32 UNKNOWN_ZERO = 0;

char LICENSE[] SEC("license") = "GPL";

static __always_inline __u32 length_field(__be16 network_order)
{
	return bpf_ntohs(network_order) & LENGTH_FIELD_MASK;
}

static __always_inline __u64 merged(__u64 value, __u64 mask)
{
	return (value + UNKNOWN_ZERO) & mask;
}

static __always_inline __u32 class_at(void *map, const void *key)
{
	__u32 *class = bpf_map_lookup_elem(map, key);
	return class ? *class : 0;
}

/* maps.rs's config(): the pointer read volatile, so that only the fields
 * used are loaded, each where it is used. */
static __always_inline const struct Config *config(void)
{
	const struct Config *at = (const struct Config *)&CONFIG;
	return *(const struct Config *volatile *)&at;
}

static __always_inline struct CounterBlock *counter_block(const struct Config *config,
							  __u32 ifindex)
{
	__u32 block = MAX_IFACES;
	for (__u32 i = 0; i < MAX_IFACES; i++) {
		if (i >= config->iface_count)
			break;
		if (config->ifindexes[i] == ifindex) {
			block = i;
			break;
		}
	}
	block = merged(block, 31);
	return bpf_map_lookup_elem(&counters, &block);
}

static __always_inline void add(struct CounterBlock *block, __u32 slot, __u64 amount)
{
	if (block)
		block->slots[slot % COUNTER_SLOTS] += amount;
}

static __always_inline void count(struct CounterBlock *block, __u32 slot)
{
	add(block, slot, 1);
}

static __always_inline void count_hit(__u32 slot, __u32 bytes)
{
	__u32 page_index = slot / HITS_PER_PAGE;
	struct HitPage *page = bpf_map_lookup_elem(&rule_hits, &page_index);
	if (page) {
		struct RuleHits *hits = &page->hits[slot % HITS_PER_PAGE];
		hits->packets += 1;
		hits->bytes += bytes;
	}
}

/* ---- src/bpf/src/parse.rs */
#define CUT (-1)
#define STOP 256

struct cursor {
	void *pos;
	void *end;
	void *limit;
};

static __always_inline void *peek(struct cursor *c, __u64 len)
{
	if (c->pos + len > c->end || c->pos + len > c->limit)
		return NULL;
	return c->pos;
}

static __always_inline void *take(struct cursor *c, __u64 len)
{
	void *at = peek(c, len);
	if (at)
		c->pos += len;
	return at;
}

static __always_inline int is_vlan(__u16 ether_type)
{
	return ether_type == ETH_P_8021Q || ether_type == ETH_P_8021AD_;
}

static __always_inline int is_extension_header(__u8 ip_version, __u8 proto)
{
	switch (proto) {
	case IPPROTO_AH_:
		return 1;
	case IPPROTO_HOPOPTS_:
	case IPPROTO_ROUTING_:
	case IPPROTO_FRAGMENT_:
	case IPPROTO_DSTOPTS_:
		return ip_version == 6;
	default:
		return 0;
	}
}

static __always_inline int walk_arp(struct cursor *c, struct Notice *n)
{
	struct arphdr *arp = take(c, sizeof(*arp));
	if (!arp)
		return CUT;
	if (bpf_ntohs(arp->ar_hrd) != ARPHRD_ETHER || bpf_ntohs(arp->ar_pro) != ETH_P_IP ||
	    arp->ar_hln != 6 || arp->ar_pln != 4)
		return 0;
	struct arp_eth_ipv4 *body = take(c, sizeof(*body));
	if (!body)
		return CUT;
	__u16 op = bpf_ntohs(arp->ar_op);
	n->arp_op = op <= 255 ? op : 0;
	__builtin_memcpy(n->src_addr, body->sender_ip, 4);
	__builtin_memcpy(n->src_addr + 4, body->sender_mac, 6);
	__builtin_memcpy(n->dst_addr, body->target_ip, 4);
	__builtin_memcpy(n->dst_addr + 4, body->target_mac, 6);
	n->depth = DEPTH_L3;
	return 0;
}

/* The protocol after the IPv4 header, STOP, or CUT. */
static __always_inline int walk_ipv4(struct cursor *c, struct Notice *n)
{
	void *start = c->pos;
	struct iphdr *ip = take(c, sizeof(*ip));
	if (!ip)
		return CUT;
	__u32 header_len = ip->ihl * 4;
	if (ip->version != 4 || header_len < sizeof(*ip)) {
		n->flags |= FLAG_MALFORMED;
		return STOP;
	}
	n->ip_version = 4;
	n->l4_proto = ip->protocol;
	__builtin_memcpy(n->src_addr, &ip->saddr, 4);
	__builtin_memcpy(n->dst_addr, &ip->daddr, 4);
	n->depth = DEPTH_L3;

	__u32 total_len = length_field(ip->tot_len);
	if (total_len < header_len || total_len > (__u64)(c->end - start)) {
		n->flags |= FLAG_MALFORMED;
		return STOP;
	}
	c->limit = start + total_len;
	if (!take(c, header_len - sizeof(*ip)))
		return CUT;

	__u16 fragment_offset = bpf_ntohs(ip->frag_off) & 0x1fff;
	if (fragment_offset == 1 && ip->protocol == IPPROTO_TCP) {
		n->flags |= FLAG_MALFORMED | FLAG_FRAGMENT;
		return STOP;
	}
	if (fragment_offset != 0) {
		n->flags |= FLAG_FRAGMENT;
		return STOP;
	}
	return ip->protocol;
}

static __always_inline int walk_ipv6(struct cursor *c, struct Notice *n)
{
	void *start = c->pos;
	struct ipv6hdr *ip = take(c, sizeof(*ip));
	if (!ip)
		return CUT;
	if (ip->version != 6) {
		n->flags |= FLAG_MALFORMED;
		return STOP;
	}
	n->ip_version = 6;
	n->l4_proto = ip->nexthdr;
	__builtin_memcpy(n->src_addr, &ip->saddr, 16);
	__builtin_memcpy(n->dst_addr, &ip->daddr, 16);
	n->depth = DEPTH_L3;

	__u32 payload_len = length_field(ip->payload_len);
	if (sizeof(*ip) + payload_len > (__u64)(c->end - start) ||
	    (payload_len == 0 && ip->nexthdr == IPPROTO_HOPOPTS_)) {
		n->flags |= FLAG_MALFORMED;
		return STOP;
	}
	c->limit = start + sizeof(*ip) + payload_len;
	return ip->nexthdr;
}

static __always_inline int walk_extensions(struct cursor *c, struct Notice *n, __u8 next)
{
	__u8 ip_version = n->ip_version;
	for (int i = 0; i < MAX_EXT_HEADERS; i++) {
		n->l4_proto = next;
		if (!is_extension_header(ip_version, next))
			return next;
		if (next == IPPROTO_FRAGMENT_) {
			struct frag_hdr *frag = take(c, sizeof(*frag));
			if (!frag)
				return CUT;
			next = frag->nexthdr;
			if (bpf_ntohs(frag->frag_off) & 0xfff8) {
				n->l4_proto = next;
				n->flags |= FLAG_FRAGMENT;
				return STOP;
			}
		} else if (next == IPPROTO_AH_) {
			struct ipv6_opt_hdr *ah = peek(c, sizeof(*ah));
			if (!ah)
				return CUT;
			__u32 len = (ah->hdrlen + 2) * 4;
			if (len < AH_FIXED_LEN) {
				n->flags |= FLAG_MALFORMED;
				return STOP;
			}
			next = ah->nexthdr;
			if (!take(c, len))
				return CUT;
		} else {
			struct ipv6_opt_hdr *ext = peek(c, sizeof(*ext));
			if (!ext)
				return CUT;
			next = ext->nexthdr;
			if (!take(c, (ext->hdrlen + 1) * 8))
				return CUT;
		}
	}
	n->l4_proto = next;
	if (is_extension_header(ip_version, next)) {
		n->flags |= FLAG_EXT_LIMIT;
		return STOP;
	}
	return next;
}

static __always_inline int walk_l4(struct cursor *c, struct Notice *n, __u8 proto)
{
	if (proto == IPPROTO_TCP) {
		struct tcphdr *tcp = take(c, sizeof(*tcp));
		if (!tcp)
			return CUT;
		n->src_port = bpf_ntohs(tcp->source);
		n->dst_port = bpf_ntohs(tcp->dest);
		/* Byte 13: FIN in bit 0 to CWR in bit 7. */
		n->tcp_flags = ((__u8 *)tcp)[13];
	} else if (proto == IPPROTO_UDP) {
		struct udphdr *udp = take(c, sizeof(*udp));
		if (!udp)
			return CUT;
		n->src_port = bpf_ntohs(udp->source);
		n->dst_port = bpf_ntohs(udp->dest);
	} else if (proto == IPPROTO_ICMP && n->ip_version == 4) {
		struct icmphdr *icmp = take(c, sizeof(*icmp));
		if (!icmp)
			return CUT;
		n->icmp_type = icmp->type;
		n->icmp_code = icmp->code;
	} else if (proto == IPPROTO_ICMPV6_ && n->ip_version == 6) {
		struct icmp6hdr *icmp = take(c, sizeof(*icmp));
		if (!icmp)
			return CUT;
		n->icmp_type = icmp->icmp6_type;
		n->icmp_code = icmp->icmp6_code;
	} else {
		return 0;
	}
	n->depth = DEPTH_L4;
	return 0;
}

static __always_inline int walk(struct cursor *c, struct Notice *n)
{
	void *frame = c->pos;
	struct ethhdr *eth = take(c, sizeof(*eth));
	if (!eth)
		return CUT;
	n->depth = DEPTH_L2;
	__u16 ether_type = bpf_ntohs(eth->h_proto);
	n->ether_type = ether_type;

	for (int i = 0; i < MAX_VLAN_TAGS; i++) {
		if (!is_vlan(ether_type))
			break;
		struct vlan_hdr *vlan = take(c, sizeof(*vlan));
		if (!vlan)
			return CUT;
		__u16 id = bpf_ntohs(vlan->h_vlan_TCI) & 0x0fff;
		if (n->vlan_count == 0)
			n->vlan_outer = id;
		else if (n->vlan_count == 1)
			n->vlan_inner = id;
		n->vlan_count += 1;
		ether_type = bpf_ntohs(vlan->h_vlan_encapsulated_proto);
		n->ether_type = ether_type;
	}
	if (is_vlan(ether_type)) {
		n->flags |= FLAG_VLAN_LIMIT;
		return 0;
	}
	c->pos = frame + merged(c->pos - frame, L2_OFFSET_MASK);

	int next;
	switch (ether_type) {
	case ETH_P_ARP:
		return walk_arp(c, n);
	case ETH_P_IP:
		next = walk_ipv4(c, n);
		break;
	case ETH_P_IPV6:
		next = walk_ipv6(c, n);
		break;
	default:
		return 0;
	}
	if (next == CUT)
		return CUT;
	if (next == STOP)
		return 0;
	next = walk_extensions(c, n, next);
	if (next == CUT)
		return CUT;
	if (next == STOP)
		return 0;
	return walk_l4(c, n, next);
}

static __always_inline void parse_packet(struct xdp_md *ctx, struct Notice *n)
{
	struct cursor c = {
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
		.limit = (void *)(long)ctx->data_end,
	};
	n->packet_len = c.end - c.pos;
	if (walk(&c, n) == CUT)
		n->flags |= FLAG_TRUNCATED;
}

static __always_inline void copy_ethernet_addresses(struct xdp_md *ctx, struct Notice *n)
{
	void *data = (void *)(long)ctx->data;
	struct ethhdr *eth = data;
	if (data + sizeof(*eth) <= (void *)(long)ctx->data_end) {
		__builtin_memcpy(n->eth_dst, eth->h_dest, 6);
		__builtin_memcpy(n->eth_src, eth->h_source, 6);
	}
}

/* ---- src/bpf/src/rules.rs */
struct Decision {
	__u32 rule_id;
	__u8 verdict;
	__u8 log;
};

static __always_inline struct Decision by_policy(__u8 verdict)
{
	return (struct Decision){ .rule_id = RULE_NONE, .verdict = verdict, .log = 0 };
}

enum transport { READ, UNKNOWN, ABSENT };

/* Whether the range starts at or below the address hi:lo (IPv4: hi alone). */
static __always_inline int starts_at_or_below(const void *range, int v6, __u64 hi, __u64 lo)
{
	if (!v6)
		return ((const struct V4Range *)range)->start <= hi;
	const struct V6Range *r = range;
	return r->start_hi < hi || (r->start_hi == hi && r->start_lo <= lo);
}

/* AddressIndex::bucket: a key below base is in bucket 0, any other in
 * (key - base) >> shift, at most last_bucket. */
static __always_inline __u32 bucket_of(const struct AddressIndex *index, __u64 key)
{
	if (key < index->base)
		return 0;
	__u64 bucket = (key - index->base) >> (index->shift & 63);
	return bucket > index->last_bucket ? index->last_bucket : bucket;
}

/* The value of the range address hi:lo lies in: its bucket, then a binary
 * search among the bucket's ranges (most hold none or one). */
static __always_inline struct AddressClass *range_of(void *ranges, int v6, __u32 generation,
						     __u32 table,
						     const struct AddressIndex *index,
						     __u64 hi, __u64 lo)
{
	__u32 slot = (generation * ADDRESS_TABLES + table) * MAX_BUCKETS + bucket_of(index, hi);
	struct Bucket *bucket = bpf_map_lookup_elem(&address_buckets, &slot);
	if (!bucket)
		return NULL;
	struct Bucket b = *(volatile struct Bucket *)bucket;
	/* The range is one of at..=at + left, and at starts at or below. */
	__u32 at = b.first, left = b.last - b.first;
	for (int step = 0; step < MAX_SEARCH_STEPS; step++) {
		if (left == 0)
			break;
		__u32 half = left - left / 2;
		__u32 middle = at + half;
		void *range = bpf_map_lookup_elem(ranges, &middle);
		if (!range)
			return NULL;
		if (starts_at_or_below(range, v6, hi, lo)) {
			at = middle;
			left -= half;
		} else {
			left = half - 1;
		}
	}
	void *range = bpf_map_lookup_elem(ranges, &at);
	if (!range)
		return NULL;
	return v6 ? &((struct V6Range *)range)->value : &((struct V4Range *)range)->value;
}

/* The class value of the source (table even) or destination address: that
 * of the range it lies in. Null where no rule asks about the field in this
 * family (table: the LOOKUP_* bit, src v4, dst v4, src v6, dst v6). */
static __always_inline struct AddressClass *address_class(struct Notice *n, __u32 generation,
							  const struct Plan *plan, __u32 table)
{
	if (!(plan->lookups & (1u << table)))
		return NULL;
	__u8 *addr = table % 2 == 0 ? n->src_addr : n->dst_addr;
	const struct AddressIndex *index = &plan->addresses[table % ADDRESS_TABLES];
	if (n->ip_version == 4) {
		__u32 key;
		__builtin_memcpy(&key, addr, 4);
		return range_of(&v4_ranges, 0, generation, table, index, bpf_ntohl(key), 0);
	}
	__u64 hi, lo;
	__builtin_memcpy(&hi, addr, 8);
	__builtin_memcpy(&lo, addr + 8, 8);
	return range_of(&v6_ranges, 1, generation, table, index, bpf_be64_to_cpu(hi),
			bpf_be64_to_cpu(lo));
}

static __always_inline __u16 small_class(void *map, __u32 generation, __u32 domain, __u32 slot)
{
	__u32 key = generation * domain + slot;
	return class_at(map, &key);
}

static __always_inline struct ClassValue port_class(__u32 generation, __u8 direction, __u32 slot)
{
	__u32 key = (generation * 2 + direction) * PORT_DOMAIN + slot;
	struct ClassValue *value = bpf_map_lookup_elem(&port_classes, &key);
	return value ? *value : (struct ClassValue){ .class = 0, .shapes = 0xffffffffu };
}

/* Each class written to map memory as soon as it is known, and what is
 * carried from one step to the next read back from there (see rules.rs). */
#define STORE(field, value) (*(volatile typeof(field) *)&(field) = (value))
#define LOAD(field) (*(volatile typeof(field) *)&(field))

/* Whether the plan looks up a field, read afresh each time (see rules.rs). */
static __always_inline int wants(const struct Plan *plan, __u32 lookup)
{
	return LOAD(plan->lookups) & lookup;
}

static __always_inline void keep_shapes(struct PacketClasses *out, __u32 shapes)
{
	__u32 now = LOAD(out->shapes);
	STORE(out->shapes, now & shapes);
}

static __always_inline void address_into(struct PacketClasses *out, struct AddressClass *found,
					 __u32 absent, __u8 direction)
{
	if (!found) {
		keep_shapes(out, absent);
		return;
	}
	struct AddressClass value = *(volatile struct AddressClass *)found;
	if (direction == DIRECTION_SRC)
		STORE(out->key.src, value.class);
	else
		STORE(out->key.dst, value.class);
	keep_shapes(out, value.shapes);
	struct ClassEntry first = *(volatile struct ClassEntry *)&out->first;
	if (value.alone.order < first.order)
		*(volatile struct ClassEntry *)&out->first = value.alone;
}

static __always_inline __u32 field_slot(int has, enum transport transport, __u32 value,
					__u32 unknown)
{
	if (!has || transport == ABSENT)
		return NO_SLOT;
	return transport == READ ? value : unknown;
}

/* The class array slots of the packet's protocol, ports, ICMP type and code,
 * and TCP flags; NO_SLOT where it has no such field. */
static __always_inline struct FieldSlots field_slots(struct Notice *n)
{
	__u8 proto = n->l4_proto;
	int read = n->depth >= DEPTH_L4;
	int v4 = n->ip_version == 4;
	__u32 proto_slot = proto;
	enum transport transport;
	if (!read && is_extension_header(n->ip_version, proto)) {
		proto_slot = PROTO_UNKNOWN;
		transport = UNKNOWN;
	} else if (!read && (n->flags & FLAG_FRAGMENT)) {
		transport = ABSENT;
	} else {
		transport = read ? READ : UNKNOWN;
	}
	int ports = 0, icmp = 0, flags = 0;
	if (proto_slot == PROTO_UNKNOWN) {
		ports = icmp = flags = 1;
	} else if (proto == IPPROTO_TCP) {
		ports = flags = 1;
	} else if (proto == IPPROTO_UDP) {
		ports = 1;
	} else if ((proto == IPPROTO_ICMP && v4) || (proto == IPPROTO_ICMPV6_ && !v4)) {
		icmp = 1;
	}
	__u32 icmp_value = (__u32)n->icmp_type << 8 | n->icmp_code;
	return (struct FieldSlots){
		.proto = proto_slot,
		.sport = field_slot(ports, transport, n->src_port, PORT_UNKNOWN),
		.dport = field_slot(ports, transport, n->dst_port, PORT_UNKNOWN),
		.icmp = field_slot(icmp, transport, icmp_value, ICMP_UNKNOWN),
		.flags = field_slot(flags, transport, n->tcp_flags, FLAGS_UNKNOWN),
	};
}

/* The packet's classes, shapes left and address-alone answer into out; each
 * step reads its slot back from there (see rules.rs). */
static __always_inline void classes_of(struct Notice *n, __u32 generation,
				       const struct Plan *plan, struct PacketClasses *out)
{
	*(volatile struct PacketClasses *)out = (struct PacketClasses){
		.shapes = plan->hashed,
		.first = { .order = 0xffffffffu, .slot = RULE_NONE },
		.slots = field_slots(n),
	};
	/* The address tables of this family (LOOKUP_* order). */
	__u32 src_table = n->ip_version == 4 ? 0 : 2;
	struct AddressClass *src = address_class(n, generation, plan, src_table);
	address_into(out, src, plan->absent[FILTER_SRC], DIRECTION_SRC);
	struct AddressClass *dst = address_class(n, generation, plan, src_table + 1);
	address_into(out, dst, plan->absent[FILTER_DST], DIRECTION_DST);
	if (wants(plan, LOOKUP_IFACE)) {
		struct IfaceKey key = { .generation = generation, .ifindex = n->ifindex };
		STORE(out->key.iface, class_at(&iface_classes, &key));
	}
	if (wants(plan, LOOKUP_PROTO)) {
		__u32 slot = LOAD(out->slots.proto);
		STORE(out->key.proto, small_class(&proto_classes, generation, PROTO_DOMAIN, slot));
	}
	/* A port no header holds (a fragment, a protocol without ports) has
	 * class 0 and the shapes of class 0. */
	if (wants(plan, LOOKUP_SPORT)) {
		__u32 slot = LOAD(out->slots.sport);
		__u32 shapes = plan->absent[FILTER_SPORT];
		if (slot != NO_SLOT) {
			struct ClassValue value = port_class(generation, DIRECTION_SRC, slot);
			STORE(out->key.sport, value.class);
			shapes = value.shapes;
		}
		keep_shapes(out, shapes);
	}
	if (wants(plan, LOOKUP_DPORT)) {
		__u32 slot = LOAD(out->slots.dport);
		__u32 shapes = plan->absent[FILTER_DPORT];
		if (slot != NO_SLOT) {
			struct ClassValue value = port_class(generation, DIRECTION_DST, slot);
			STORE(out->key.dport, value.class);
			shapes = value.shapes;
		}
		keep_shapes(out, shapes);
	}
	if (wants(plan, LOOKUP_ICMP)) {
		__u32 slot = LOAD(out->slots.icmp);
		if (slot != NO_SLOT)
			STORE(out->key.icmp, small_class(&icmp_classes, generation, ICMP_DOMAIN, slot));
	}
	if (wants(plan, LOOKUP_FLAGS)) {
		__u32 slot = LOAD(out->slots.flags);
		if (slot != NO_SLOT)
			STORE(out->key.flags,
			      small_class(&flag_classes, generation, FLAGS_DOMAIN, slot));
	}
}

/* The lowest-order entry over the shapes the class values left, all it
 * carries from shape to shape kept in map memory (see rules.rs). Unrolled,
 * as there: the verifier checks each step once. */
static __always_inline struct ClassEntry first_match(struct PacketClasses *classes,
						     __u32 generation, const struct Plan *plan)
{
#pragma unroll
	for (int i = 0; i < SHAPES; i++) {
		__u32 first_order = LOAD(classes->first.order);
		if (i >= plan->shape_count || plan->first_order[i] > first_order)
			break;
		__u32 shape = plan->shape_list[i];
		__u32 shapes = LOAD(classes->shapes);
		if (((shapes >> shape) & 1) == 0)
			continue;
		struct ClassKey at = *(volatile struct ClassKey *)&classes->key;
		/* The shape's mask, as rules.rs: it keeps an address group's
		 * narrow or wide class bits (abi::NARROW_CLASS_BITS). */
		const struct ClassKey *mask = &plan->key_masks[i];
		struct ClassKey key = {
			.src = at.src & mask->src,
			.dst = at.dst & mask->dst,
			.sport = at.sport & mask->sport,
			.dport = at.dport & mask->dport,
			.proto = at.proto & mask->proto,
			.icmp = at.icmp & mask->icmp,
			.flags = at.flags & mask->flags,
			.iface = at.iface & mask->iface,
			.table = generation * SHAPES + shape,
		};
		struct ClassEntry *entry = bpf_map_lookup_elem(&class_rules, &key);
		if (entry) {
			struct ClassEntry found = *(volatile struct ClassEntry *)entry;
			if (found.order < first_order)
				*(volatile struct ClassEntry *)&classes->first = found;
		}
	}
	return *(volatile struct ClassEntry *)&classes->first;
}

static __always_inline struct Decision decide(struct Notice *n, const struct Config *config)
{
	struct Decision by_default = by_policy(config->default_verdict);
	__u32 zero = 0;
	__u32 *generation_slot = bpf_map_lookup_elem(&rule_generation, &zero);
	__u32 generation = generation_slot ? *generation_slot : 0;
	struct Plan *plan = bpf_map_lookup_elem(&plans, &generation);
	if (!plan)
		return by_default;
	struct Decision unjudgeable =
		config->classifier && plan->any_rule ? by_policy(XDP_DROP) : by_default;

	if (n->ip_version == 0) {
		switch (n->ether_type) {
		case ETH_P_IP:
		case ETH_P_IPV6:
		case ETH_P_8021Q:
		case ETH_P_8021AD_:
			return unjudgeable;
		default:
			return by_policy(XDP_PASS);
		}
	}
	if (n->flags & FLAG_MALFORMED)
		return unjudgeable;
	/* Loaded for a run without rules: the verifier checks none of the rest. */
	if (config->classifier == 0 || plan->shapes == 0)
		return by_default;
	struct PacketClasses *classes = bpf_map_lookup_elem(&packet_classes, &zero);
	if (!classes)
		return unjudgeable;
	classes_of(n, generation, plan, classes);
	struct ClassEntry first = first_match(classes, generation, plan);
	if (first.verdict == 0)
		return by_default;
	return (struct Decision){ .rule_id = first.slot, .verdict = first.verdict, .log = first.log };
}

/* ---- src/bpf/src/rate.rs */
static __always_inline int admit(const struct Config *config, struct CounterBlock *block,
				 struct Notice *n, int logged, int asked)
{
	if (!logged && !asked) {
		count(block, COUNTER_NOT_ASKED);
		return 0;
	}
	__u64 sample_every = config->sample_every;
	__u64 cost_ns = config->notice_cost_ns;
	if (sample_every <= 1 && cost_ns == 0)
		return 1;
	__u32 zero = 0;
	struct RateState *state = bpf_map_lookup_elem(&rate_state, &zero);
	if (!state)
		return 1;
	if (sample_every > 1 && !logged) {
		if (state->skip != 0) {
			state->skip -= 1;
			count(block, COUNTER_SAMPLED_OUT);
			return 0;
		}
		state->skip = sample_every - 1;
	}
	if (cost_ns != 0) {
		__u64 now = bpf_ktime_get_ns();
		n->timestamp_ns = now;
		/* A bucket never used is filled by the time since boot. */
		__u64 since = now > state->last_ns ? now - state->last_ns : 0;
		__u64 refilled = state->budget_ns + since;
		__u64 budget = refilled > config->bucket_ns ? config->bucket_ns : refilled;
		state->last_ns = now;
		if (budget < cost_ns) {
			state->budget_ns = budget;
			count(block, COUNTER_OVER_RATE);
			return 0;
		}
		state->budget_ns = budget - cost_ns;
	}
	return 1;
}

/* ---- src/bpf/src/wakeup.rs */
#define MARK_SHIFT 3
#define RECORD_HEADER 8

static __always_inline __u64 record_bytes(__u64 len)
{
	return (len + RECORD_HEADER + 7) & ~7ull;
}

static __always_inline __u64 wake_if_crossed(__u64 before, __u64 after, __u64 mark)
{
	return after > mark && (after ^ before) >= mark ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static __always_inline __u64 submit_flags(void *ring, __u64 len)
{
	__u64 waiting = bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA);
	__u64 size = bpf_ringbuf_query(ring, BPF_RB_RING_SIZE);
	__u64 record = record_bytes(len);
	__u64 before = waiting > record ? waiting - record : 0;
	return wake_if_crossed(before, waiting, size >> MARK_SHIFT);
}

static __always_inline __u64 output_flags(void *ring, __u64 len)
{
	__u64 waiting = bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA);
	__u64 size = bpf_ringbuf_query(ring, BPF_RB_RING_SIZE);
	return wake_if_crossed(waiting, waiting + record_bytes(len), size >> MARK_SHIFT);
}

/* ---- src/bpf/src/capture.rs */
#define HEADER_BYTES (sizeof(struct Notice) + sizeof(struct CaptureHeader))

static __always_inline int send_captured(struct xdp_md *ctx, struct Notice *n, __u32 snaplen)
{
	__u32 captured = n->packet_len < snaplen ? n->packet_len : snaplen;
	if (captured > MAX_SNAPLEN)
		captured = MAX_SNAPLEN;
	if (n->timestamp_ns == 0)
		n->timestamp_ns = bpf_ktime_get_ns();
	copy_ethernet_addresses(ctx, n);
	struct NoticeScratch *scratch = (struct NoticeScratch *)n;
	scratch->capture = (struct CaptureHeader){ .captured_len = captured };
	void *from = (void *)(long)ctx->data;
	if (bpf_probe_read_kernel(scratch->bytes, captured, from) != 0) {
		scratch->capture.captured_len = 0;
		captured = 0;
	}
	__u64 len = HEADER_BYTES + captured;
	return bpf_ringbuf_output(&events, scratch, len, output_flags(&events, len)) == 0;
}

/* ---- src/bpf/src/main.rs */
static __always_inline void send_notice(struct xdp_md *ctx, struct Notice *n,
					struct CounterBlock *block)
{
	/* With snaplen 0 (frozen .rodata) the verifier drops the capture branch. */
	__u32 snaplen = config()->snaplen;
	if (snaplen != 0) {
		int sent = send_captured(ctx, n, snaplen);
		count(block, sent ? COUNTER_NOTICES_SENT : COUNTER_NOTICES_LOST);
		return;
	}
	struct Notice *slot = bpf_ringbuf_reserve(&events, sizeof(*n), 0);
	if (!slot) {
		count(block, COUNTER_NOTICES_LOST);
		return;
	}
	if (n->timestamp_ns == 0)
		n->timestamp_ns = bpf_ktime_get_ns();
	copy_ethernet_addresses(ctx, n);
	*slot = *n;
	__u64 flags = submit_flags(&events, sizeof(*n));
	bpf_ringbuf_submit(slot, flags);
	count(block, COUNTER_NOTICES_SENT);
}

SEC("xdp")
int xdp_hello(struct xdp_md *ctx)
{
	const struct Config *conf = config();
	__u32 zero = 0;
	struct Notice *n = bpf_map_lookup_elem(&notice_scratch, &zero);
	if (!n)
		return XDP_PASS;
	*n = (struct Notice){ .rule_id = RULE_NONE, .verdict = XDP_PASS };
	parse_packet(ctx, n);
	n->ifindex = ctx->ingress_ifindex;
	n->rx_queue = ctx->rx_queue_index;
	struct Decision decision = decide(n, conf);
	__u8 verdict = decision.verdict;
	n->verdict = verdict;
	n->rule_id = decision.rule_id;

	struct CounterBlock *block = counter_block(conf, n->ifindex);
	count(block, verdict);
	add(block, COUNTER_BYTES + verdict, n->packet_len);
	if (decision.rule_id != RULE_NONE)
		count_hit(decision.rule_id, n->packet_len);
	int asked;
	switch (conf->notice_mode) {
	case NOTICES_ALL:
		asked = 1;
		break;
	case NOTICES_DENIED:
		asked = verdict == XDP_DROP;
		break;
	default:
		asked = 0;
	}
	if (admit(conf, block, n, decision.log, asked))
		send_notice(ctx, n, block);
	/* A dry run reports every verdict and enforces none. */
	return conf->dry_run ? XDP_PASS : verdict;
}
