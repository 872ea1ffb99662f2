/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Intel PEBS (and generic perf) memory sample decoding, shared by the BPF
 * sample handler and user space (replay, unit tests). Header only, no libc,
 * no loops, no globals: it compiles as BPF C (after vmlinux.h), C and C++.
 *
 * Input is what perf puts in a sample when the event asks for it:
 * PERF_SAMPLE_ADDR (data linear address), PERF_SAMPLE_PHYS_ADDR,
 * PERF_SAMPLE_DATA_SRC (union perf_mem_data_src) and PERF_SAMPLE_WEIGHT or
 * PERF_SAMPLE_WEIGHT_STRUCT (access latency). Layouts and values are from the
 * kernel's include/uapi/linux/perf_event.h; they are copied here with an MB_
 * prefix so that this header needs neither <linux/perf_event.h> nor clashes
 * with the same names in vmlinux.h. See docs/sampling-formats.md.
 */
#ifndef MEMBALANCER_PEBS_H
#define MEMBALANCER_PEBS_H

#include "membalancer/records.h"

#ifndef __always_inline
#define __always_inline __inline __attribute__ ((__always_inline__))
#endif

/* perf_event_attr.sample_type bits used here (enum perf_event_sample_format). */
enum mb_perf_sample_bits {
	MB_PERF_SAMPLE_ADDR = 1u << 3,
	MB_PERF_SAMPLE_WEIGHT = 1u << 14,
	MB_PERF_SAMPLE_DATA_SRC = 1u << 15,
	MB_PERF_SAMPLE_PHYS_ADDR = 1u << 19,
	MB_PERF_SAMPLE_WEIGHT_STRUCT = 1u << 24,
};

/* union perf_mem_data_src: field shifts and widths (little-endian bitfields). */
enum mb_perf_mem_fields {
	MB_PERF_MEM_OP_SHIFT = 0,        /* mem_op:5 */
	MB_PERF_MEM_OP_WIDTH = 5,
	MB_PERF_MEM_LVL_SHIFT = 5,       /* mem_lvl:14 (older, bit mask) */
	MB_PERF_MEM_LVL_WIDTH = 14,
	MB_PERF_MEM_SNOOP_SHIFT = 19,    /* mem_snoop:5 */
	MB_PERF_MEM_SNOOP_WIDTH = 5,
	MB_PERF_MEM_LOCK_SHIFT = 24,     /* mem_lock:2 */
	MB_PERF_MEM_LOCK_WIDTH = 2,
	MB_PERF_MEM_DTLB_SHIFT = 26,     /* mem_dtlb:7 */
	MB_PERF_MEM_DTLB_WIDTH = 7,
	MB_PERF_MEM_LVLNUM_SHIFT = 33,   /* mem_lvl_num:4 (level number) */
	MB_PERF_MEM_LVLNUM_WIDTH = 4,
	MB_PERF_MEM_REMOTE_SHIFT = 37,   /* mem_remote:1 */
	MB_PERF_MEM_REMOTE_WIDTH = 1,
	MB_PERF_MEM_SNOOPX_SHIFT = 38,   /* mem_snoopx:2 */
	MB_PERF_MEM_SNOOPX_WIDTH = 2,
	MB_PERF_MEM_BLK_SHIFT = 40,      /* mem_blk:3 */
	MB_PERF_MEM_BLK_WIDTH = 3,
	MB_PERF_MEM_HOPS_SHIFT = 43,     /* mem_hops:3 */
	MB_PERF_MEM_HOPS_WIDTH = 3,
};

/* mem_op values (PERF_MEM_OP_*), a bit mask. */
enum mb_perf_mem_op {
	MB_PERF_MEM_OP_NA = 0x01,
	MB_PERF_MEM_OP_LOAD = 0x02,
	MB_PERF_MEM_OP_STORE = 0x04,
	MB_PERF_MEM_OP_PFETCH = 0x08,
	MB_PERF_MEM_OP_EXEC = 0x10,
};

/* mem_lvl values (PERF_MEM_LVL_*), a bit mask: HIT/MISS qualify the levels. */
enum mb_perf_mem_lvl {
	MB_PERF_MEM_LVL_NA = 0x01,
	MB_PERF_MEM_LVL_HIT = 0x02,
	MB_PERF_MEM_LVL_MISS = 0x04,
	MB_PERF_MEM_LVL_L1 = 0x08,
	MB_PERF_MEM_LVL_LFB = 0x10,
	MB_PERF_MEM_LVL_L2 = 0x20,
	MB_PERF_MEM_LVL_L3 = 0x40,
	MB_PERF_MEM_LVL_LOC_RAM = 0x80,
	MB_PERF_MEM_LVL_REM_RAM1 = 0x100,
	MB_PERF_MEM_LVL_REM_RAM2 = 0x200,
	MB_PERF_MEM_LVL_REM_CCE1 = 0x400,
	MB_PERF_MEM_LVL_REM_CCE2 = 0x800,
	MB_PERF_MEM_LVL_IO = 0x1000,
	MB_PERF_MEM_LVL_UNC = 0x2000,
};

/* mem_lvl_num values (PERF_MEM_LVLNUM_*). 0 means "not filled in". */
enum mb_perf_mem_lvlnum {
	MB_PERF_MEM_LVLNUM_L1 = 0x01,
	MB_PERF_MEM_LVLNUM_L2 = 0x02,
	MB_PERF_MEM_LVLNUM_L3 = 0x03,
	MB_PERF_MEM_LVLNUM_L4 = 0x04,
	MB_PERF_MEM_LVLNUM_L2_MHB = 0x05, /* L2 miss handling buffer */
	MB_PERF_MEM_LVLNUM_MSC = 0x06,    /* memory-side cache */
	MB_PERF_MEM_LVLNUM_L0 = 0x07,
	MB_PERF_MEM_LVLNUM_UNC = 0x08,    /* uncached */
	MB_PERF_MEM_LVLNUM_CXL = 0x09,
	MB_PERF_MEM_LVLNUM_IO = 0x0a,
	MB_PERF_MEM_LVLNUM_ANY_CACHE = 0x0b,
	MB_PERF_MEM_LVLNUM_LFB = 0x0c,    /* line fill buffer / L1 MHB */
	MB_PERF_MEM_LVLNUM_RAM = 0x0d,
	MB_PERF_MEM_LVLNUM_PMEM = 0x0e,
	MB_PERF_MEM_LVLNUM_NA = 0x0f,
};

/* mem_hops values (PERF_MEM_HOPS_*). 0 means "not filled in". */
enum mb_perf_mem_hops {
	MB_PERF_MEM_HOPS_0 = 0x01, /* remote core, same node */
	MB_PERF_MEM_HOPS_1 = 0x02, /* remote node, same socket */
	MB_PERF_MEM_HOPS_2 = 0x03, /* remote socket, same board */
	MB_PERF_MEM_HOPS_3 = 0x04, /* remote board */
};

static __always_inline __u32 mb_perf_mem_field(__u64 data_src,
					       unsigned int shift,
					       unsigned int width)
{
	return (__u32)((data_src >> shift) & ((1ULL << width) - 1));
}

/* A cache level (L3, L4, memory-side cache, "any cache"), by hops/remote. */
static __always_inline __u16 mb_perf_cache_src(__u32 lvl, __u32 remote,
					       __u32 hops)
{
	if (hops == MB_PERF_MEM_HOPS_0)
		return MB_SRC_PEER_CACHE;
	if (hops >= MB_PERF_MEM_HOPS_1)
		return MB_SRC_REMOTE_CACHE;
	if (remote) {
		/* Some Intel encodings (e.g. "L3 miss, shared, remote DRAM")
		 * pair a cache level number with REM_RAM in mem_lvl: trust
		 * the older field's DRAM there. */
		if (lvl & (MB_PERF_MEM_LVL_REM_RAM1 | MB_PERF_MEM_LVL_REM_RAM2))
			return MB_SRC_REMOTE_DRAM;
		return MB_SRC_REMOTE_CACHE;
	}
	return MB_SRC_L3;
}

/* The older mem_lvl bit mask, farthest level first. */
static __always_inline __u16 mb_perf_lvl_src(__u32 lvl)
{
	if (lvl & (MB_PERF_MEM_LVL_REM_RAM1 | MB_PERF_MEM_LVL_REM_RAM2))
		return MB_SRC_REMOTE_DRAM;
	if (lvl & MB_PERF_MEM_LVL_LOC_RAM)
		return MB_SRC_LOCAL_DRAM;
	if (lvl & (MB_PERF_MEM_LVL_REM_CCE1 | MB_PERF_MEM_LVL_REM_CCE2))
		return MB_SRC_REMOTE_CACHE;
	if (lvl & MB_PERF_MEM_LVL_IO)
		return MB_SRC_IO;
	if (lvl & MB_PERF_MEM_LVL_UNC)
		return MB_SRC_UNCACHED;
	if (lvl & MB_PERF_MEM_LVL_L3)
		return MB_SRC_L3;
	if (lvl & MB_PERF_MEM_LVL_L2)
		return MB_SRC_L2;
	if (lvl & MB_PERF_MEM_LVL_L1)
		return MB_SRC_L1;
	return MB_SRC_UNKNOWN; /* NA, or LFB: an earlier miss in flight */
}

/*
 * union perf_mem_data_src -> enum mb_data_source.
 * - mem_lvl with MISS and not HIT: the levels named are where the access
 *   missed, the source is unknown.
 * - mem_lvl_num (with mem_remote and mem_hops) when filled in; otherwise
 *   (0 or NA) the older mem_lvl bits.
 * - LFB / L2 miss handling buffer hits (a miss already in flight) are unknown.
 */
static __always_inline __u16 mb_perf_data_src_classify(__u64 data_src)
{
	__u32 lvl = mb_perf_mem_field(data_src, MB_PERF_MEM_LVL_SHIFT,
				      MB_PERF_MEM_LVL_WIDTH);
	__u32 num = mb_perf_mem_field(data_src, MB_PERF_MEM_LVLNUM_SHIFT,
				      MB_PERF_MEM_LVLNUM_WIDTH);
	__u32 remote = mb_perf_mem_field(data_src, MB_PERF_MEM_REMOTE_SHIFT,
					 MB_PERF_MEM_REMOTE_WIDTH);
	__u32 hops = mb_perf_mem_field(data_src, MB_PERF_MEM_HOPS_SHIFT,
				       MB_PERF_MEM_HOPS_WIDTH);

	if ((lvl & MB_PERF_MEM_LVL_MISS) && !(lvl & MB_PERF_MEM_LVL_HIT))
		return MB_SRC_UNKNOWN;

	switch (num) {
	case MB_PERF_MEM_LVLNUM_L0:
	case MB_PERF_MEM_LVLNUM_L1:
		return MB_SRC_L1;
	case MB_PERF_MEM_LVLNUM_L2:
		return MB_SRC_L2;
	case MB_PERF_MEM_LVLNUM_L3:
	case MB_PERF_MEM_LVLNUM_L4:
	case MB_PERF_MEM_LVLNUM_MSC:
	case MB_PERF_MEM_LVLNUM_ANY_CACHE:
		return mb_perf_cache_src(lvl, remote, hops);
	case MB_PERF_MEM_LVLNUM_RAM:
		return (remote || hops >= MB_PERF_MEM_HOPS_1) ?
			       MB_SRC_REMOTE_DRAM : MB_SRC_LOCAL_DRAM;
	case MB_PERF_MEM_LVLNUM_CXL:
		return MB_SRC_CXL;
	case MB_PERF_MEM_LVLNUM_PMEM:
		return MB_SRC_PMEM;
	case MB_PERF_MEM_LVLNUM_IO:
		return MB_SRC_IO;
	case MB_PERF_MEM_LVLNUM_UNC:
		return MB_SRC_UNCACHED;
	case MB_PERF_MEM_LVLNUM_LFB:
	case MB_PERF_MEM_LVLNUM_L2_MHB:
		return MB_SRC_UNKNOWN;
	default: /* 0 (not filled in) or NA */
		return mb_perf_lvl_src(lvl);
	}
}

/*
 * Decodes the memory fields of one perf sample into *out (always fully
 * written; ip is left 0, the caller has it from PERF_SAMPLE_IP). sample_type
 * says which of the arguments were present; absent ones are ignored.
 * - addr / phys_addr: valid when present and non-zero (perf reports 0 when
 *   the hardware gave no address).
 * - data_src: load/store from mem_op; data_source from
 *   mb_perf_data_src_classify; MB_ACC_REMOTE when the source is on another
 *   node (remote DRAM/cache, or mem_remote on CXL/PMEM/IO).
 * - weight: with PERF_SAMPLE_WEIGHT_STRUCT the latency is var1_dw (low 32
 *   bits); with PERF_SAMPLE_WEIGHT the whole value (saturated to 32 bits).
 *   0 means no latency (e.g. stores on most PEBS versions).
 */
static __always_inline void mb_perf_mem_decode(__u64 sample_type, __u64 addr,
					       __u64 phys_addr, __u64 data_src,
					       __u64 weight,
					       struct mb_access *out)
{
	__u16 flags = 0;

	out->vaddr = 0;
	out->paddr = 0;
	out->ip = 0;
	out->latency = 0;
	out->data_source = MB_SRC_UNKNOWN;

	if ((sample_type & MB_PERF_SAMPLE_ADDR) && addr) {
		out->vaddr = addr;
		flags |= MB_ACC_VADDR;
	}
	if ((sample_type & MB_PERF_SAMPLE_PHYS_ADDR) && phys_addr) {
		out->paddr = phys_addr;
		flags |= MB_ACC_PADDR;
	}
	if (sample_type & MB_PERF_SAMPLE_DATA_SRC) {
		__u32 op = mb_perf_mem_field(data_src, MB_PERF_MEM_OP_SHIFT,
					     MB_PERF_MEM_OP_WIDTH);
		__u32 remote = mb_perf_mem_field(data_src,
						 MB_PERF_MEM_REMOTE_SHIFT,
						 MB_PERF_MEM_REMOTE_WIDTH);
		__u16 src = mb_perf_data_src_classify(data_src);

		if (op & MB_PERF_MEM_OP_LOAD)
			flags |= MB_ACC_LOAD;
		if (op & MB_PERF_MEM_OP_STORE)
			flags |= MB_ACC_STORE;
		if (src != MB_SRC_UNKNOWN) {
			out->data_source = src;
			flags |= MB_ACC_SRC;
		}
		if (src == MB_SRC_REMOTE_DRAM || src == MB_SRC_REMOTE_CACHE ||
		    (remote && (src == MB_SRC_CXL || src == MB_SRC_PMEM ||
				src == MB_SRC_IO)))
			flags |= MB_ACC_REMOTE;
	}
	if (sample_type & MB_PERF_SAMPLE_WEIGHT_STRUCT) {
		out->latency = (__u32)(weight & 0xffffffffULL);
	} else if (sample_type & MB_PERF_SAMPLE_WEIGHT) {
		out->latency = weight > 0xffffffffULL ? 0xffffffffU :
							  (__u32)weight;
	}
	if (out->latency)
		flags |= MB_ACC_LATENCY;
	out->flags = flags;
}

#endif /* MEMBALANCER_PEBS_H */
