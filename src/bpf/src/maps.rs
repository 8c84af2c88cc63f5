//! BTF-defined maps, the layout libbpf reads from section `.maps`.
//!
//! C's `__uint(name, N)` is a field `int (*name)[N]`, `__type(key, T)` is a
//! field `T *key`: the values live in the BTF of these pointer types, never in
//! memory. One concrete struct per map keeps the BTF names readable (generic
//! structs get mangled names, and those reach the skeleton).

use core::ffi::c_void;
use core::ptr::{null, read_volatile};

use crate::abi::*;
use crate::helpers::map_lookup_elem;

const BPF_MAP_TYPE_HASH: usize = 1;
const BPF_MAP_TYPE_ARRAY: usize = 2;
const BPF_MAP_TYPE_PERCPU_ARRAY: usize = 6;
const BPF_MAP_TYPE_RINGBUF: usize = 27;
/// The rule hash need not be preallocated (its memory is taken as rules
/// come, not all at start-up).
const BPF_F_NO_PREALLOC: usize = 1;
/// Arrays user space writes through a mapping of their values (Linux 5.5):
/// a copy in memory instead of a syscall's worth of work per slot.
const BPF_F_MMAPABLE: usize = 1 << 10;

/// Default ring buffer size; user space resizes it before load.
const EVENTS_BYTES: usize = 256 * 1024;

/// Defines a map: its BTF struct (`Def`) and its `.maps` static (`name`).
macro_rules! btf_map {
    ($(#[$doc:meta])* $name:ident: $def:ident {
        $($field:ident: $field_ty:ty),* $(,)?
    }) => {
        #[repr(C)]
        pub struct $def {
            $($field: $field_ty),*
        }

        // Only libbpf ever reads the definition.
        unsafe impl Sync for $def {}

        $(#[$doc])*
        #[no_mangle]
        #[link_section = ".maps"]
        #[allow(non_upper_case_globals)]
        pub static $name: $def = $def { $($field: null()),* };
    };
}

btf_map!(
    /// One notice per packet, for user space.
    events: RingBufDef {
        r#type: *const [i32; BPF_MAP_TYPE_RINGBUF],
        max_entries: *const [i32; EVENTS_BYTES],
    }
);

btf_map!(
    /// Per-CPU packet and notice counters, a block of `abi::COUNTER_*` per
    /// interface (`counter_block`).
    counters: CounterArrayDef {
        r#type: *const [i32; BPF_MAP_TYPE_PERCPU_ARRAY],
        max_entries: *const [i32; COUNTER_BLOCKS as usize],
        key: *const u32,
        value: *const CounterBlock,
    }
);

btf_map!(
    /// This CPU's `--sample` countdown and `--max-rate` bucket (rate.rs).
    rate_state: RateStateDef {
        r#type: *const [i32; BPF_MAP_TYPE_PERCPU_ARRAY],
        max_entries: *const [i32; 1],
        key: *const u32,
        value: *const RateState,
    }
);

btf_map!(
    /// Per-CPU packets and bytes of each rule, by counter slot, in pages
    /// (`abi::HitPage`).
    rule_hits: RuleHitsDef {
        r#type: *const [i32; BPF_MAP_TYPE_PERCPU_ARRAY],
        max_entries: *const [i32; HIT_PAGES as usize],
        key: *const u32,
        value: *const HitPage,
    }
);

btf_map!(
    /// Slot 0: the rule generation packets use now (0 or 1).
    rule_generation: RuleGenerationDef {
        r#type: *const [i32; BPF_MAP_TYPE_ARRAY],
        max_entries: *const [i32; 1],
        key: *const u32,
        value: *const u32,
    }
);

btf_map!(
    /// Per generation: which shapes and class lookups its rules need.
    plans: PlansDef {
        r#type: *const [i32; BPF_MAP_TYPE_ARRAY],
        max_entries: *const [i32; GENERATIONS as usize],
        key: *const u32,
        value: *const Plan,
    }
);

btf_map!(
    /// Per generation and address table: the buckets of its sorted ranges
    /// (`bucket_slot`, `Plan::addresses`).
    address_buckets: AddressBucketsDef {
        r#type: *const [i32; BPF_MAP_TYPE_ARRAY],
        max_entries: *const [i32; (GENERATIONS * ADDRESS_TABLES * MAX_BUCKETS) as usize],
        map_flags: *const [i32; BPF_F_MMAPABLE],
        key: *const u32,
        value: *const Bucket,
    }
);

btf_map!(
    /// Per generation: the IPv4 ranges of both directions, each sorted by
    /// start, with the class value of their longest matching network.
    v4_ranges: V4RangesDef {
        r#type: *const [i32; BPF_MAP_TYPE_ARRAY],
        max_entries: *const [i32; (GENERATIONS * RANGES_PER_GENERATION) as usize],
        map_flags: *const [i32; BPF_F_MMAPABLE],
        key: *const u32,
        value: *const V4Range,
    }
);

btf_map!(
    /// As `v4_ranges`, for IPv6.
    v6_ranges: V6RangesDef {
        r#type: *const [i32; BPF_MAP_TYPE_ARRAY],
        max_entries: *const [i32; (GENERATIONS * RANGES_PER_GENERATION) as usize],
        map_flags: *const [i32; BPF_F_MMAPABLE],
        key: *const u32,
        value: *const V6Range,
    }
);

btf_map!(
    /// The class of each source and destination port (`port_class_slot`).
    port_classes: PortClassesDef {
        r#type: *const [i32; BPF_MAP_TYPE_ARRAY],
        max_entries: *const [i32; (GENERATIONS * 2 * PORT_DOMAIN) as usize],
        map_flags: *const [i32; BPF_F_MMAPABLE],
        key: *const u32,
        value: *const ClassValue,
    }
);

btf_map!(
    /// The class of each IP protocol number (`class_slot`, `PROTO_DOMAIN`).
    proto_classes: ProtoClassesDef {
        r#type: *const [i32; BPF_MAP_TYPE_ARRAY],
        max_entries: *const [i32; (GENERATIONS * PROTO_DOMAIN) as usize],
        map_flags: *const [i32; BPF_F_MMAPABLE],
        key: *const u32,
        value: *const u32,
    }
);

btf_map!(
    /// The class of each ICMP or ICMPv6 type and code (`ICMP_DOMAIN`).
    icmp_classes: IcmpClassesDef {
        r#type: *const [i32; BPF_MAP_TYPE_ARRAY],
        max_entries: *const [i32; (GENERATIONS * ICMP_DOMAIN) as usize],
        map_flags: *const [i32; BPF_F_MMAPABLE],
        key: *const u32,
        value: *const u32,
    }
);

btf_map!(
    /// The class of each TCP flags byte (`FLAGS_DOMAIN`).
    flag_classes: FlagClassesDef {
        r#type: *const [i32; BPF_MAP_TYPE_ARRAY],
        max_entries: *const [i32; (GENERATIONS * FLAGS_DOMAIN) as usize],
        map_flags: *const [i32; BPF_F_MMAPABLE],
        key: *const u32,
        value: *const u32,
    }
);

btf_map!(
    /// The class of each interface `on` rules name; others are class 0.
    iface_classes: IfaceClassesDef {
        r#type: *const [i32; BPF_MAP_TYPE_HASH],
        max_entries: *const [i32; (GENERATIONS * MAX_IFACE_CLASSES) as usize],
        key: *const IfaceKey,
        value: *const u32,
    }
);

btf_map!(
    /// This CPU's notice of the packet in hand (see `xdp_hello`), with room
    /// behind it for the frame's bytes when capturing (`capture.rs`).
    notice_scratch: NoticeScratchDef {
        r#type: *const [i32; BPF_MAP_TYPE_PERCPU_ARRAY],
        max_entries: *const [i32; 1],
        key: *const u32,
        value: *const crate::capture::NoticeScratch,
    }
);

btf_map!(
    /// This CPU's packet classes while the shapes are looked up. In map
    /// memory, which the verifier does not track, every path through the
    /// class lookups reaches the shape loop in the same state, so it checks
    /// that loop once instead of once per combination of lookups.
    packet_classes: PacketClassesDef {
        r#type: *const [i32; BPF_MAP_TYPE_PERCPU_ARRAY],
        max_entries: *const [i32; 1],
        key: *const u32,
        value: *const PacketClasses,
    }
);

btf_map!(
    /// Per generation and shape: the packet's classes → the first rule of
    /// that shape admitting them.
    class_rules: ClassRulesDef {
        r#type: *const [i32; BPF_MAP_TYPE_HASH],
        max_entries: *const [i32; MAX_CLASS_ENTRIES as usize],
        map_flags: *const [i32; BPF_F_NO_PREALLOC],
        key: *const ClassKey,
        value: *const ClassEntry,
    }
);

/// Load-time settings, written by user space between open and load.
#[no_mangle]
#[link_section = ".rodata"]
pub static CONFIG: Config = Config::DEFAULT;

/// 0xffff, read at run time: see [`length_field`].
#[no_mangle]
#[link_section = ".rodata"]
pub static LENGTH_FIELD_MASK: u32 = 0xffff;

/// An IP header's 16-bit length field (network order) as a number the
/// verifier knows is at most 65535. Verifiers before 6.18 forget every bound
/// after a byte swap and then refuse to add the length to a packet pointer;
/// a mask LLVM cannot see through (it is read at run time) and the verifier
/// can (frozen .rodata reads as constants) restores the bound.
#[inline(always)]
pub fn length_field(network_order: u16) -> usize {
    (u16::from_be(network_order) as u32 & unsafe { read_volatile(&LENGTH_FIELD_MASK) }) as usize
}

/// Always 0; in `.bss`, which stays writable, so neither LLVM nor the
/// verifier can know it: see [`merged`]. Nothing writes it; only root could
/// (through the map's id), and root can as well detach the program.
#[no_mangle]
#[link_section = ".bss"]
pub static mut UNKNOWN_ZERO: u32 = 0;

/// `value` as is, in a form the verifier tracks only as "somewhere in
/// 0..=mask" (`mask` a power of two less one, and `value` no larger). Paths
/// that reach one point with different constants in `value` then look the
/// same to the verifier, which checks the rest of the program once instead
/// of once per constant.
#[inline(always)]
pub fn merged(value: usize, mask: usize) -> usize {
    let zero = unsafe { read_volatile(core::ptr::addr_of!(UNKNOWN_ZERO)) } as usize;
    (value + zero) & mask
}

/// `CONFIG` as user space set it. A plain read would be folded at compile
/// time, and a volatile copy would load every field, the interface table
/// included, for every packet: the pointer is read volatile instead, so
/// LLVM cannot see where it points and loads only the fields used.
#[inline(always)]
pub fn config() -> &'static Config {
    let at: *const Config = &CONFIG;
    unsafe { &*read_volatile(&at) }
}

/// This CPU's counter block of the interface `ifindex`: that of its place
/// in the `-i` list, or block `MAX_IFACES` for any other. Null never (a
/// per-CPU array has every slot), but checked where it is used.
#[inline(always)]
pub fn counter_block(config: &Config, ifindex: u32) -> *mut CounterBlock {
    let mut block = MAX_IFACES;
    let mut i = 0;
    // The verifier reads iface_count and the table as constants (frozen
    // .rodata): it walks only the entries set.
    while i < MAX_IFACES {
        if i >= config.iface_count {
            break;
        }
        if config.ifindexes[i as usize] == ifindex {
            block = i;
            break;
        }
        i += 1;
    }
    // One state for the verifier, whichever entry matched.
    let block = merged(block as usize, 31) as u32;
    lookup_ptr::<_, u32, CounterBlock>(&counters, &block)
}

#[inline(always)]
pub fn map_ptr<T>(map: &'static T) -> *mut c_void {
    map as *const T as *mut c_void
}

/// A pointer to `key`'s value in `map`, null where there is no entry.
#[inline(always)]
pub fn lookup_ptr<M, K, V>(map: &'static M, key: &K) -> *mut V {
    unsafe { map_lookup_elem(map_ptr(map), key as *const K as *const c_void) as *mut V }
}

/// A copy of `key`'s value in `map`, or `absent` where there is no entry.
///
/// A plain value, never an `Option`: LLVM may copy an `Option`'s payload
/// even when it is `None`, and the verifiers of older kernels (6.1) refuse
/// the read of a stack slot nothing wrote.
#[inline(always)]
pub fn lookup_or<M, K, V: Copy>(map: &'static M, key: &K, absent: V) -> V {
    let value = lookup_ptr::<M, K, V>(map, key);
    if value.is_null() {
        absent
    } else {
        unsafe { *value }
    }
}

/// `key`'s class in `map`; where there is none, class 0.
#[inline(always)]
pub fn class_at<M, K>(map: &'static M, key: &K) -> u32 {
    lookup_or(map, key, 0u32)
}

/// Adds `amount` to slot `slot` (`abi::COUNTER_*`) of this CPU's `block`.
#[inline(always)]
pub fn add(block: *mut CounterBlock, slot: u32, amount: u64) {
    if !block.is_null() {
        // Per-CPU: nothing else writes this CPU's block meanwhile.
        unsafe { (*block).slots[(slot % COUNTER_SLOTS) as usize] += amount };
    }
}

/// Adds one to slot `slot` of this CPU's `block`.
#[inline(always)]
pub fn count(block: *mut CounterBlock, slot: u32) {
    add(block, slot, 1);
}

/// Adds a packet of `bytes` to this CPU's hits of rule `slot`.
#[inline(always)]
pub fn count_hit(slot: u32, bytes: u32) {
    let page = lookup_ptr::<RuleHitsDef, u32, HitPage>(&rule_hits, &(slot / HITS_PER_PAGE));
    if !page.is_null() {
        let hits = unsafe { &mut (*page).hits[(slot % HITS_PER_PAGE) as usize] };
        hits.packets += 1;
        hits.bytes += bytes as u64;
    }
}
