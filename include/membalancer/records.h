/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Record layouts shared by the BPF programs (bpf/) and user space
 * (membalancer/, profiler/, tests/). Defined once, here. Constants are enums
 * so that they reach BTF; layouts are pinned with static asserts at the end.
 */
#ifndef MEMBALANCER_RECORDS_H
#define MEMBALANCER_RECORDS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

enum mb_limits {
	MB_PAGE_SHIFT = 12,
	/* A page key packs tgid (22 bits: pid_max can be 4M) and the virtual
	 * page number (42 bits: 16 PiB of address space, more than x86-64
	 * user space with 4- or 5-level paging uses below 2^54). */
	MB_KEY_VPN_BITS = 42,
	MB_KEY_TGID_BITS = 22,
	/* Per-page access counts per CPU node: 8 lanes of 16 bits, added to
	 * atomically as two 64-bit words. Node -> lane comes from user space. */
	MB_CPU_LANES = 8,
	MB_LANE_SATURATE = 0xff00, /* leave room so racing adds never carry */
	/* Set-associative page slots: the table is an array of sets of this
	 * many slots. Pages of one 32 KiB group share a home set (page i of the
	 * group starts probing at way i), so neighbouring pages share cache
	 * lines; a full home set spills into the next set. */
	MB_PAGE_WAYS = 8,
	MB_PAGE_GROUP_SHIFT = 3, /* log2(pages per group) == log2(MB_PAGE_WAYS) */
	MB_PAGE_REGION_SHIFT = 9, /* 2 MiB regions: 64 groups in consecutive sets */
	MB_PAGE_SPILL_SETS = 16,  /* sets tried after a full home set */
	/* The thread table is an array indexed by tid modulo its (power of two)
	 * size: a thread's entry is the first of this many entries from its
	 * home that carries its tid, or the first free one. */
	MB_TASK_PROBES = 8,
	/* Node ids we keep per-task counts for (ids above are folded into
	 * MB_CTR_NODE_OUT_OF_RANGE). */
	MB_MAX_NODES = 64,
	MB_NODE_UNKNOWN = 0xffff,
	MB_SLOT_NODE_MASK = 0x7fff, /* mb_page_slot.mem_node1: node + 1 */
	MB_SLOT_HUGE = 0x8000,      /* mb_page_slot.mem_node1: a 2 MiB page */
	MB_HUGE_PAGE_SHIFT = 21,
	MB_HUGE_BASE_PAGES = 1 << (MB_HUGE_PAGE_SHIFT - MB_PAGE_SHIFT), /* 512 */
	MB_LANE_NONE = 0xff,
};

/* Where a sample came from; recorded in profiles and reports. */
enum mb_sampler_kind {
	MB_SAMPLER_NONE = 0,
	MB_SAMPLER_IBS = 1,
	MB_SAMPLER_PEBS = 2,
	MB_SAMPLER_FAULT = 3,
	MB_SAMPLER_ABIT = 4,
	MB_SAMPLER_REPLAY = 5,
	MB_SAMPLER_CPU_CLOCK = 6, /* profiler only: cpu-clock timer, ip and no data address */
	MB_SAMPLER_SYNTHETIC = 7, /* tests and benchmarks: synth_samples (BPF_PROG_TEST_RUN) */
};

/* Data source of an access, common to IBS and PEBS decoding. */
enum mb_data_source {
	MB_SRC_UNKNOWN = 0,
	MB_SRC_L1 = 1,
	MB_SRC_L2 = 2,
	MB_SRC_L3 = 3,          /* local last-level cache */
	MB_SRC_PEER_CACHE = 4,  /* another core's cache, same socket */
	MB_SRC_REMOTE_CACHE = 5,
	MB_SRC_LOCAL_DRAM = 6,
	MB_SRC_REMOTE_DRAM = 7,
	MB_SRC_CXL = 8,         /* extension / far memory */
	MB_SRC_PMEM = 9,
	MB_SRC_IO = 10,
	MB_SRC_UNCACHED = 11,
	MB_SRC_NR = 12,
};

/* Flags of a decoded access (struct mb_access.flags, mb_sample.flags). */
enum mb_access_flags {
	MB_ACC_VADDR = 1 << 0,   /* vaddr valid */
	MB_ACC_PADDR = 1 << 1,   /* paddr valid */
	MB_ACC_LOAD = 1 << 2,
	MB_ACC_STORE = 1 << 3,
	MB_ACC_LATENCY = 1 << 4, /* latency valid (cycles) */
	MB_ACC_SRC = 1 << 5,     /* data_source valid */
	MB_ACC_IP = 1 << 6,      /* ip valid */
	MB_ACC_HUGE = 1 << 7,    /* reported at huge-page granularity */
	MB_ACC_REMOTE = 1 << 8,  /* the hardware said: remote node */
	MB_ACC_BASE_PAGE = 1 << 9, /* the sampler saw a 4 KiB page (a page-table
	                            * walk, a TLB hit of that size); with neither
	                            * this nor MB_ACC_HUGE the size is unknown */
};

/* One access, decoded from whatever the sampler delivered. */
struct mb_access {
	__u64 vaddr;
	__u64 paddr;
	__u64 ip;
	__u32 latency;     /* cycles, when MB_ACC_LATENCY */
	__u16 data_source; /* enum mb_data_source, when MB_ACC_SRC */
	__u16 flags;       /* enum mb_access_flags */
};

/* Global counters: a per-CPU array indexed by this enum. */
enum mb_counter {
	MB_CTR_SAMPLES = 0,        /* handler runs: not counted by BPF (one add per
	                            * sample saved); user space sums the outcomes
	                            * accepted + filtered + no_address +
	                            * decode_invalid, one of which every run ends in */
	MB_CTR_ACCEPTED,           /* samples of tracked tasks counted */
	MB_CTR_FILTERED,           /* not a tracked task */
	MB_CTR_NO_ADDRESS,         /* tracked, but no data address */
	MB_CTR_KERNEL_ADDRESS,     /* data address outside user space */
	MB_CTR_PAGE_TABLE_FULL,    /* all ways of a page set taken */
	MB_CTR_TASK_TABLE_FULL,
	MB_CTR_TRACKED_FULL,       /* a new process could not be tracked */
	MB_CTR_EVENTS_LOST,        /* process event ring buffer full */
	MB_CTR_SAMPLES_LOST,       /* sample ring buffer full */
	MB_CTR_LANE_SATURATED,     /* per-CPU-node lane at its ceiling */
	MB_CTR_LANE_NONE,          /* CPU node has no lane (> 8 CPU nodes) */
	MB_CTR_NODE_OUT_OF_RANGE,  /* node id >= MB_MAX_NODES in task stats */
	MB_CTR_DECODE_INVALID,     /* raw record too short or flagged invalid */
	MB_CTR_ABIT_REFUSED,       /* tracked processes the helper module would
	                            * not scan (its 4096 pids per file): counted
	                            * by user space, not BPF */
	MB_NR_COUNTERS,
};

/*
 * One slot of the in-kernel page table (an array used as a set-associative
 * hash). The BPF side fills the active table; every interval user space
 * swaps in the other table and drains this one. 32 bytes: with two tables
 * that is 64 bytes of BPF memory per tracked page.
 */
struct mb_page_slot {
	__u64 key;           /* mb_page_key(tgid, vpn); 0 = free */
	__u64 lanes[2];      /* 8 x u16 accesses per CPU-node lane */
	__u32 accesses;      /* accesses this interval */
	__u16 last_seen;     /* low 16 bits of jiffies at the last access */
	__u16 mem_node1;     /* bits 14..0: node + 1 of the physical page, 0:
	                      * unknown (a cleared slot must read as unknown, not
	                      * node 0); MB_SLOT_HUGE: the key is the first base
	                      * page of an accessed 2 MiB page */
};

/* One element of the in-kernel page table array: a set of slots, so that
 * one map lookup serves every probe within the set. */
struct mb_page_set {
	struct mb_page_slot way[MB_PAGE_WAYS];
};

/* Per-thread statistics: one entry of the thread table (see MB_TASK_PROBES). */
struct mb_task_stats {
	__u32 tgid;
	__u32 last_cpu;
	__u64 accesses;
	__u32 flags; /* enum mb_task_flags */
	__u32 tid;   /* the thread owning the entry; 0: free */
	__u32 cpu_node_accesses[MB_MAX_NODES];
	__u32 mem_node_accesses[MB_MAX_NODES];
};

enum mb_task_flags {
	MB_TASK_EXITED = 1 << 0, /* user space frees it after its last drain */
};

/* Value of the tracked-process hash (key: tgid). */
struct mb_tracked {
	__u32 parent_tgid;
	__u32 flags; /* enum mb_tracked_flags */
	/* execs since it was tracked, counted whether or not their event
	 * reached user space: an exec whose event was lost is found by it. */
	__u32 execs;
	__u32 reserved;
	/* The first sample taken in the address space an exec is building
	 * (mb_exec_building_mm), 0 if none: the exec event is timed there. */
	__u64 exec_sample_ns;
};

enum mb_tracked_flags {
	MB_TRACKED_ROOT = 1 << 0,  /* given on the command line */
	MB_TRACKED_FORKED = 1 << 1, /* added by the fork tracepoint */
};

/* Process events sent to user space (ring buffer). */
enum mb_proc_event_type {
	MB_PROC_FORK = 1,
	MB_PROC_EXIT = 2,
	MB_PROC_EXEC = 3,
	/* A recorder's tracked process made its first maps change since the
	 * recorder last read its maps (time_ns: that system call's return):
	 * the recorder looks at them soon, so that a later change in the same
	 * period is not timed here. */
	MB_PROC_MAPS = 4,
};

struct mb_proc_event {
	__u64 time_ns;
	__u32 type; /* enum mb_proc_event_type */
	__u32 tgid;
	__u32 parent_tgid;
	/* MB_PROC_EXEC: the thread that called exec, by its id before it (a
	 * thread other than the leader takes the leader's id, tgid, and its
	 * own is gone); 0 in the other events. */
	__u32 tid;
};

/* One sample, as streamed to the profiler (ring buffer), 64 bytes. */
struct mb_sample {
	__u64 time_ns;
	__u32 tgid;
	__u32 tid;
	__u32 cpu;
	__u16 cpu_node;
	__u16 mem_node;
	__u64 vaddr;
	__u64 paddr;
	__u64 ip;
	__u32 latency;
	__u16 data_source;
	__u16 flags;
	__u8 sampler; /* enum mb_sampler_kind */
	__u8 reserved[7];
};

/* Context of the synth_samples test program (BPF_PROG_TEST_RUN ctx_in):
 * streams `count` made-up samples of tgid through the real ring-buffer path. */
struct mb_synth_args {
	__u32 count;
	__u32 tgid;
	__u64 vaddr;  /* first sample's address; each next one is a page further */
	__u64 pages;  /* addresses wrap after this many pages (0: never) */
};

/* The node recorded in a page slot, or MB_NODE_UNKNOWN. */
static inline __u16 mb_slot_node(const struct mb_page_slot *s)
{
	__u16 n = s->mem_node1 & MB_SLOT_NODE_MASK;

	return n ? (__u16)(n - 1) : (__u16)MB_NODE_UNKNOWN;
}

/* Whether the slot stands for a whole 2 MiB page (512 base pages). */
static inline int mb_slot_huge(const struct mb_page_slot *s)
{
	return (s->mem_node1 & MB_SLOT_HUGE) != 0;
}

static inline __u64 mb_page_key(__u32 tgid, __u64 vpn)
{
	return ((__u64)tgid << MB_KEY_VPN_BITS) |
	       (vpn & ((1ULL << MB_KEY_VPN_BITS) - 1));
}

/* The key of the 2 MiB page holding a page: its first base page's. */
static inline __u64 mb_huge_page_key(__u64 key)
{
	return key & ~((__u64)MB_HUGE_BASE_PAGES - 1);
}

static inline __u32 mb_key_tgid(__u64 key)
{
	return (__u32)(key >> MB_KEY_VPN_BITS);
}

static inline __u64 mb_key_vpn(__u64 key)
{
	return key & ((1ULL << MB_KEY_VPN_BITS) - 1);
}

/*
 * Home set of a page key: the groups (32 KiB) of one 2 MiB region occupy 64
 * consecutive sets from a hashed base, so a region's slots lie in 16 KiB of
 * the table (few TLB entries, sequential lines) rather than 64 random places.
 */
static inline __u32 mb_key_set(__u64 key, __u32 bits)
{
	__u64 region = key >> MB_PAGE_REGION_SHIFT;
	__u32 base = (__u32)((region * 0x9E3779B97F4A7C15ULL) >> (64 - bits));
	__u32 group = (__u32)(key >> MB_PAGE_GROUP_SHIFT) & ((1U << (MB_PAGE_REGION_SHIFT - MB_PAGE_GROUP_SHIFT)) - 1);

	return (base + group) & ((1U << bits) - 1);
}

/* The i-th set a page key tries when its home set is full (another region's
 * run overlaps it): a hash of its group and i. Each try is hashed anew: a
 * fixed stride from one hashed start made neighbouring groups share most of
 * their tries, and they failed together. */
static inline __u32 mb_key_spill_set(__u64 key, __u32 i, __u32 bits)
{
	__u64 group = (key >> MB_PAGE_GROUP_SHIFT) ^ ((__u64)(i + 1) * 0x9E3779B97F4A7C15ULL);

	return (__u32)((group * 0xC2B2AE3D27D4EB4FULL) >> (64 - bits));
}

/* Mixes a page key into a slot index (fibonacci hashing, top bits). */
static inline __u32 mb_key_hash(__u64 key, __u32 bits)
{
	return (__u32)((key * 0x9E3779B97F4A7C15ULL) >> (64 - bits));
}

#ifdef __cplusplus
static_assert(sizeof(struct mb_page_slot) == 32, "page slot layout");
static_assert(sizeof(struct mb_page_set) == 32 * MB_PAGE_WAYS, "page set layout");
static_assert(sizeof(struct mb_sample) == 64, "sample layout");
static_assert(sizeof(struct mb_proc_event) == 24, "proc event layout");
static_assert(sizeof(struct mb_access) == 32, "access layout");
static_assert(sizeof(struct mb_synth_args) == 24, "synth args layout");
#elif !defined(__VMLINUX_H__)
_Static_assert(sizeof(struct mb_page_slot) == 32, "page slot layout");
_Static_assert(sizeof(struct mb_page_set) == 32 * MB_PAGE_WAYS, "page set layout");
_Static_assert(sizeof(struct mb_sample) == 64, "sample layout");
_Static_assert(sizeof(struct mb_proc_event) == 24, "proc event layout");
_Static_assert(sizeof(struct mb_access) == 32, "access layout");
_Static_assert(sizeof(struct mb_synth_args) == 24, "synth args layout");
#endif

/* Per-CPU facts the BPF side needs: its node and that node's lane. */
struct mb_cpu_info {
	__u16 node;
	__u8 lane; /* MB_LANE_NONE when the node has no lane */
	__u8 pad;
};

#endif /* MEMBALANCER_RECORDS_H */
