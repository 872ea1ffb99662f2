/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * AMD IBS (Instruction-Based Sampling) op sample decoding, shared by the BPF
 * sample handler and user space (replay, unit tests). Header only, no libc,
 * no loops, no globals: it compiles as BPF C (after vmlinux.h), C and C++.
 *
 * Sources: AMD PPR for family 19h (IBS MSRs C001_1033..C001_103D), the Linux
 * kernel's arch/x86/include/asm/amd-ibs.h (register layouts),
 * arch/x86/include/asm/perf_event.h (IBS_CAPS_*) and
 * arch/x86/events/amd/ibs.c (raw record layout, data source handling,
 * errata). See docs/sampling-formats.md.
 *
 * Raw record. With PERF_SAMPLE_RAW, the perf "ibs_op" PMU attaches to each
 * sample (perf_ibs_handle_irq):
 *
 *   offset 0   u32 caps          the kernel's ibs_caps (CPUID 8000_001B EAX,
 *                                bit 0 forced to "IBS available")
 *   offset 4   u64 IbsOpCtl      MSR C001_1033
 *   offset 12  u64 IbsOpRip      MSR C001_1034
 *   offset 20  u64 IbsOpData     MSR C001_1035
 *   offset 28  u64 IbsOpData2    MSR C001_1036
 *   offset 36  u64 IbsOpData3    MSR C001_1037
 *   offset 44  u64 IbsDcLinAd    MSR C001_1038
 *   offset 52  u64 IbsDcPhysAd   MSR C001_1039
 *   offset 60  u64 IbsBrTarget   only if caps & IBS_CAPS_BRNTRGT
 *   then       u64 IbsOpData4    only if caps & IBS_CAPS_OPDATA4
 *
 * The registers are at byte offset 4 of the raw data, so they are not 8-byte
 * aligned relative to it: copy them out (mb_ibs_raw_regs in user space,
 * bpf_probe_read_kernel(&regs, sizeof(regs), raw + MB_IBS_RAW_REGS_OFFSET)
 * in BPF) before decoding.
 */
#ifndef MEMBALANCER_IBS_H
#define MEMBALANCER_IBS_H

#include "membalancer/records.h"

#ifndef __always_inline
#define __always_inline __inline __attribute__ ((__always_inline__))
#endif

/* Layout of the raw record (see above). */
enum mb_ibs_raw_layout {
	MB_IBS_RAW_CAPS_OFFSET = 0,
	MB_IBS_RAW_REGS_OFFSET = 4,
	MB_IBS_RAW_NR_REGS = 7, /* IbsOpCtl .. IbsDcPhysAd, always present */
	MB_IBS_RAW_MIN_SIZE = 4 + 7 * 8, /* 60 bytes */
	/* Optional registers follow at MB_IBS_RAW_MIN_SIZE, in this order:
	 * IbsBrTarget (caps BRNTRGT), IbsOpData4 (caps OPDATA4). */
	MB_IBS_RAW_OPT_OFFSET = 4 + 7 * 8,
};

/*
 * The registers decoded here, in raw-record (MSR) order. Layout is the raw
 * record's, so one copy of sizeof(struct mb_ibs_op_regs) bytes fills it.
 */
struct mb_ibs_op_regs {
	__u64 op_ctl;     /* IbsOpCtl,    MSR C001_1033 */
	__u64 op_rip;     /* IbsOpRip,    MSR C001_1034 */
	__u64 op_data;    /* IbsOpData,   MSR C001_1035 */
	__u64 op_data2;   /* IbsOpData2,  MSR C001_1036 */
	__u64 op_data3;   /* IbsOpData3,  MSR C001_1037 */
	__u64 dc_lin_ad;  /* IbsDcLinAd,  MSR C001_1038 */
	__u64 dc_phys_ad; /* IbsDcPhysAd, MSR C001_1039 */
};

/*
 * caps word (kernel IBS_CAPS_*, CPUID Fn8000_001B_EAX bit numbers). Only the
 * bits the decoder or a raw-record parser needs.
 */
enum mb_ibs_caps {
	MB_IBS_CAPS_AVAIL = 1u << 0,         /* IBS present (set by the kernel) */
	MB_IBS_CAPS_OPSAM = 1u << 2,         /* op sampling */
	MB_IBS_CAPS_BRNTRGT = 1u << 5,       /* IbsBrTarget in the raw record */
	MB_IBS_CAPS_RIPINVALIDCHK = 1u << 7, /* IbsOpData.IbsRipInvalid valid */
	MB_IBS_CAPS_OPDATA4 = 1u << 10,      /* IbsOpData4 in the raw record;
	                                      * family 19h and later */
	MB_IBS_CAPS_ZEN4 = 1u << 11,         /* Zen 4 extensions: DataSrc is
	                                      * 5 bits (DataSrcHi), L3MissOnly */
	MB_IBS_CAPS_OPDTLBPGSIZE = 1u << 19, /* Zen 5: IbsOpData3[5:4] is the
	                                      * DTLB page size */
};

/* Bit positions (and widths of multi-bit fields), per register. */
enum mb_ibs_op_data_bits {
	/* IbsOpData (C001_1035) */
	MB_IBS_OPDATA_RIP_INVALID = 38,       /* [38] IbsRipInvalid */
};

enum mb_ibs_op_data2_bits {
	/* IbsOpData2 (C001_1036); valid for load ops only */
	MB_IBS_OPDATA2_DATASRC_LO = 0,        /* [2:0] DataSrc (low bits) */
	MB_IBS_OPDATA2_DATASRC_LO_WIDTH = 3,
	MB_IBS_OPDATA2_RMT_NODE = 4,          /* [4]   RmtNode: other node */
	MB_IBS_OPDATA2_CACHE_HIT_ST = 5,      /* [5]   CacheHitSt: 0 M, 1 O */
	MB_IBS_OPDATA2_DATASRC_HI = 6,        /* [7:6] DataSrcHi (Zen 4+) */
	MB_IBS_OPDATA2_DATASRC_HI_WIDTH = 2,
};

enum mb_ibs_op_data3_bits {
	/* IbsOpData3 (C001_1037) */
	MB_IBS_OPDATA3_LD_OP = 0,             /* [0]  IbsLdOp */
	MB_IBS_OPDATA3_ST_OP = 1,             /* [1]  IbsStOp */
	MB_IBS_OPDATA3_DC_L1TLB_MISS = 2,     /* [2]  IbsDcL1tlbMiss */
	MB_IBS_OPDATA3_DC_L2TLB_MISS = 3,     /* [3]  IbsDcL2tlbMiss */
	MB_IBS_OPDATA3_DC_L1TLB_HIT_2M = 4,   /* [4]  IbsDcL1tlbHit2M (pre Zen 5) */
	MB_IBS_OPDATA3_DC_L1TLB_HIT_1G = 5,   /* [5]  IbsDcL1tlbHit1G (pre Zen 5) */
	MB_IBS_OPDATA3_DC_PAGE_SIZE = 4,      /* [5:4] page size 0 4K, 1 2M,
	                                       *  2 1G (caps OPDTLBPGSIZE, needs
	                                       *  IbsDcPhyAddrValid) */
	MB_IBS_OPDATA3_DC_PAGE_SIZE_WIDTH = 2,
	MB_IBS_OPDATA3_DC_L2TLB_HIT_2M = 6,   /* [6]  IbsDcL2tlbHit2M (pre Zen 5) */
	MB_IBS_OPDATA3_DC_MISS = 7,           /* [7]  IbsDcMiss */
	MB_IBS_OPDATA3_DC_UC_MEM_ACC = 14,    /* [14] IbsDcUcMemAcc: uncacheable */
	MB_IBS_OPDATA3_DC_MISS_NO_MAB = 16,   /* [16] IbsDcMissNoMabAlloc */
	MB_IBS_OPDATA3_DC_LIN_ADDR_VALID = 17, /* [17] IbsDcLinAddrValid */
	MB_IBS_OPDATA3_DC_PHY_ADDR_VALID = 18, /* [18] IbsDcPhyAddrValid */
	MB_IBS_OPDATA3_DC_L2TLB_HIT_1G = 19,  /* [19] IbsDcL2tlbHit1G (pre Zen 5) */
	MB_IBS_OPDATA3_L2_MISS = 20,          /* [20] IbsL2Miss (family 19h+) */
	MB_IBS_OPDATA3_SW_PF = 21,            /* [21] IbsSwPf: software prefetch */
	MB_IBS_OPDATA3_DC_MISS_LAT = 32,      /* [47:32] IbsDcMissLat, cycles */
	MB_IBS_OPDATA3_DC_MISS_LAT_WIDTH = 16,
};

enum mb_ibs_phys_addr {
	/* IbsDcPhysAd (C001_1039): [51:0] IbsDcPhysAd, [63:52] reserved */
	MB_IBS_DC_PHYS_AD_BITS = 52,
};

/* IbsOpData2 DataSrc encodings without the Zen 4 extension (3 bits). */
enum mb_ibs_data_src {
	MB_IBS_DATA_SRC_NONE = 0,      /* no valid status */
	MB_IBS_DATA_SRC_LOC_CACHE = 2, /* local node cache */
	MB_IBS_DATA_SRC_DRAM = 3,      /* DRAM (RmtNode: which node) */
	MB_IBS_DATA_SRC_REM_CACHE = 4, /* remote node cache */
	MB_IBS_DATA_SRC_IO = 7,        /* other: MMIO/config/PCI/APIC */
};

/* IbsOpData2 DataSrc encodings with the Zen 4 extension (DataSrcHi:lo). */
enum mb_ibs_data_src_ext {
	MB_IBS_DATA_SRC_EXT_NONE = 0,
	MB_IBS_DATA_SRC_EXT_LOC_CACHE = 1,      /* L3 or another L2 in the CCX */
	MB_IBS_DATA_SRC_EXT_NEAR_CCX_CACHE = 2, /* other CCX, same node */
	MB_IBS_DATA_SRC_EXT_DRAM = 3,           /* DRAM (RmtNode: which node) */
	MB_IBS_DATA_SRC_EXT_FAR_CCX_CACHE = 5,  /* other CCX, other node */
	MB_IBS_DATA_SRC_EXT_PMEM = 6,           /* long-latency DIMM */
	MB_IBS_DATA_SRC_EXT_IO = 7,             /* MMIO/config/PCI/APIC */
	MB_IBS_DATA_SRC_EXT_EXT_MEM = 8,        /* extension memory (CXL...) */
	MB_IBS_DATA_SRC_EXT_PEER_AGENT_MEM = 12, /* coherent memory of another
	                                          * processor type */
};

/* Return values of mb_ibs_op_decode. */
enum mb_ibs_decode_result {
	MB_IBS_OK = 0,
	MB_IBS_NOT_MEM_OP = -1,  /* neither IbsLdOp nor IbsStOp */
	MB_IBS_NO_LIN_ADDR = -2, /* memory op without IbsDcLinAddrValid */
};

static __always_inline __u64 mb_ibs_bits(__u64 v, unsigned int shift,
					 unsigned int width)
{
	return (v >> shift) & ((1ULL << width) - 1);
}

static __always_inline int mb_ibs_bit(__u64 v, unsigned int shift)
{
	return (int)((v >> shift) & 1);
}

/* DataSrc as the CPU reports it: 5 bits with the Zen 4 extension, else 3. */
static __always_inline __u32 mb_ibs_data_src(__u64 op_data2, __u32 caps)
{
	__u32 lo = (__u32)mb_ibs_bits(op_data2, MB_IBS_OPDATA2_DATASRC_LO,
				      MB_IBS_OPDATA2_DATASRC_LO_WIDTH);

	if (caps & MB_IBS_CAPS_ZEN4)
		return ((__u32)mb_ibs_bits(op_data2, MB_IBS_OPDATA2_DATASRC_HI,
					   MB_IBS_OPDATA2_DATASRC_HI_WIDTH) << 3) | lo;
	return lo;
}

/*
 * Data source of a memory op. *remote is set when the hardware says the data
 * came from another node (RmtNode on DRAM-like sources, far-CCX / remote-node
 * caches). Follows the kernel's perf_ibs_get_mem_lvl:
 *   - uncacheable (DcUcMemAcc) and DataSrc not I/O: uncached;
 *   - no DC miss: L1;
 *   - DC miss, no L2 miss: L2, when IbsL2Miss can be trusted (family 19h+,
 *     i.e. caps OPDATA4 or ZEN4, and not erratum 1293's case below);
 *   - otherwise DataSrc, loads only (IbsOpData2 is valid for loads only).
 * Erratum 1293 (family 19h models 0-0Fh): with IbsSwPf or IbsDcMissNoMabAlloc
 * set, IbsL2Miss and IbsOpData2 are wrong. The caps word cannot tell those
 * models apart, so pre-Zen 4 samples with either bit get no source past L1.
 */
static __always_inline __u16 mb_ibs_classify(__u64 op_data2, __u64 op_data3,
					     __u32 caps, int load, int *remote)
{
	__u32 src = mb_ibs_data_src(op_data2, caps);
	int rmt = mb_ibs_bit(op_data2, MB_IBS_OPDATA2_RMT_NODE);
	int zen4 = (caps & MB_IBS_CAPS_ZEN4) != 0;
	int l2_valid = (caps & (MB_IBS_CAPS_OPDATA4 | MB_IBS_CAPS_ZEN4)) != 0;
	int erratum = !zen4 && (mb_ibs_bit(op_data3, MB_IBS_OPDATA3_SW_PF) ||
				mb_ibs_bit(op_data3, MB_IBS_OPDATA3_DC_MISS_NO_MAB));

	*remote = 0;
	if (mb_ibs_bit(op_data3, MB_IBS_OPDATA3_DC_UC_MEM_ACC) &&
	    !(load && src == MB_IBS_DATA_SRC_IO))
		return MB_SRC_UNCACHED;
	if (!mb_ibs_bit(op_data3, MB_IBS_OPDATA3_DC_MISS))
		return MB_SRC_L1;
	if (erratum)
		return MB_SRC_UNKNOWN;
	if (l2_valid && !mb_ibs_bit(op_data3, MB_IBS_OPDATA3_L2_MISS))
		return MB_SRC_L2;
	if (!load)
		return MB_SRC_UNKNOWN;

	if (zen4) {
		switch (src) {
		case MB_IBS_DATA_SRC_EXT_LOC_CACHE:
			return MB_SRC_L3;
		case MB_IBS_DATA_SRC_EXT_NEAR_CCX_CACHE:
			return MB_SRC_PEER_CACHE;
		case MB_IBS_DATA_SRC_EXT_DRAM:
			*remote = rmt;
			return rmt ? MB_SRC_REMOTE_DRAM : MB_SRC_LOCAL_DRAM;
		case MB_IBS_DATA_SRC_EXT_FAR_CCX_CACHE:
			*remote = 1;
			return MB_SRC_REMOTE_CACHE;
		case MB_IBS_DATA_SRC_EXT_PMEM:
			*remote = rmt;
			return MB_SRC_PMEM;
		case MB_IBS_DATA_SRC_EXT_IO:
			return MB_SRC_IO;
		case MB_IBS_DATA_SRC_EXT_EXT_MEM:
			*remote = rmt;
			return MB_SRC_CXL;
		case MB_IBS_DATA_SRC_EXT_PEER_AGENT_MEM:
			/* memory behind another agent (e.g. an accelerator):
			 * far memory, reported with extension memory */
			return MB_SRC_CXL;
		default:
			return MB_SRC_UNKNOWN;
		}
	}
	switch (src) {
	case MB_IBS_DATA_SRC_LOC_CACHE:
		return MB_SRC_L3;
	case MB_IBS_DATA_SRC_DRAM:
		*remote = rmt;
		return rmt ? MB_SRC_REMOTE_DRAM : MB_SRC_LOCAL_DRAM;
	case MB_IBS_DATA_SRC_REM_CACHE:
		*remote = 1;
		return MB_SRC_REMOTE_CACHE;
	case MB_IBS_DATA_SRC_IO:
		return MB_SRC_IO;
	default:
		return MB_SRC_UNKNOWN;
	}
}

/* The page size the DC TLB reports: MB_ACC_HUGE (a 2M or 1G page),
 * MB_ACC_BASE_PAGE (4K), or 0 when it says none (a miss in both TLBs, or on
 * Zen 5 no valid physical address). */
static __always_inline __u16 mb_ibs_page_size(__u64 op_data3, __u32 caps)
{
	int hit_huge;

	if (caps & MB_IBS_CAPS_OPDTLBPGSIZE) {
		/* Zen 5: [5:4] page size, valid with IbsDcPhyAddrValid */
		if (!mb_ibs_bit(op_data3, MB_IBS_OPDATA3_DC_PHY_ADDR_VALID))
			return 0;
		__u64 sz = mb_ibs_bits(op_data3, MB_IBS_OPDATA3_DC_PAGE_SIZE,
				       MB_IBS_OPDATA3_DC_PAGE_SIZE_WIDTH);
		return sz == 1 || sz == 2 ? MB_ACC_HUGE : sz == 0 ? MB_ACC_BASE_PAGE : 0;
	}
	if (!mb_ibs_bit(op_data3, MB_IBS_OPDATA3_DC_L1TLB_MISS))
		hit_huge = mb_ibs_bit(op_data3, MB_IBS_OPDATA3_DC_L1TLB_HIT_2M) ||
			   mb_ibs_bit(op_data3, MB_IBS_OPDATA3_DC_L1TLB_HIT_1G);
	else if (!mb_ibs_bit(op_data3, MB_IBS_OPDATA3_DC_L2TLB_MISS))
		hit_huge = mb_ibs_bit(op_data3, MB_IBS_OPDATA3_DC_L2TLB_HIT_2M) ||
			   mb_ibs_bit(op_data3, MB_IBS_OPDATA3_DC_L2TLB_HIT_1G);
	else
		return 0; /* missed both TLBs: the page size is not reported */
	return hit_huge ? MB_ACC_HUGE : MB_ACC_BASE_PAGE;
}

/*
 * Decodes one IBS op sample into *out (always fully written).
 * Returns MB_IBS_OK (0) for a load or store with a valid linear address,
 * MB_IBS_NOT_MEM_OP (-1) when the op is neither (out is zeroed), or
 * MB_IBS_NO_LIN_ADDR (-2) for a memory op without a linear address (out holds
 * whatever else was valid: physical address, ip, source...).
 */
static __always_inline int mb_ibs_op_decode(const struct mb_ibs_op_regs *r,
					    __u32 caps, struct mb_access *out)
{
	__u64 d3 = r->op_data3;
	int load = mb_ibs_bit(d3, MB_IBS_OPDATA3_LD_OP);
	int store = mb_ibs_bit(d3, MB_IBS_OPDATA3_ST_OP);
	int remote = 0;
	__u16 flags = 0;
	__u16 src;

	out->vaddr = 0;
	out->paddr = 0;
	out->ip = 0;
	out->latency = 0;
	out->data_source = MB_SRC_UNKNOWN;
	out->flags = 0;
	if (!load && !store)
		return MB_IBS_NOT_MEM_OP;

	if (load)
		flags |= MB_ACC_LOAD;
	if (store)
		flags |= MB_ACC_STORE;

	/* IbsOpRip is the op's address unless IbsOpData[38] IbsRipInvalid,
	 * which is only defined when caps has RIPINVALIDCHK. */
	if (!((caps & MB_IBS_CAPS_RIPINVALIDCHK) &&
	      mb_ibs_bit(r->op_data, MB_IBS_OPDATA_RIP_INVALID))) {
		out->ip = r->op_rip;
		flags |= MB_ACC_IP;
	}
	if (mb_ibs_bit(d3, MB_IBS_OPDATA3_DC_PHY_ADDR_VALID)) {
		out->paddr = r->dc_phys_ad &
			     ((1ULL << MB_IBS_DC_PHYS_AD_BITS) - 1);
		flags |= MB_ACC_PADDR;
	}
	if (mb_ibs_bit(d3, MB_IBS_OPDATA3_DC_LIN_ADDR_VALID)) {
		out->vaddr = r->dc_lin_ad;
		flags |= MB_ACC_VADDR;
	}
	/* IbsDcMissLat: cycles from DC miss to fill, for loads that missed */
	if (load && mb_ibs_bit(d3, MB_IBS_OPDATA3_DC_MISS)) {
		out->latency = (__u32)mb_ibs_bits(d3, MB_IBS_OPDATA3_DC_MISS_LAT,
						  MB_IBS_OPDATA3_DC_MISS_LAT_WIDTH);
		flags |= MB_ACC_LATENCY;
	}
	src = mb_ibs_classify(r->op_data2, d3, caps, load, &remote);
	if (src != MB_SRC_UNKNOWN) {
		out->data_source = src;
		flags |= MB_ACC_SRC;
	}
	if (remote)
		flags |= MB_ACC_REMOTE;
	if (flags & MB_ACC_VADDR)
		flags |= mb_ibs_page_size(d3, caps);
	out->flags = flags;
	return (flags & MB_ACC_VADDR) ? MB_IBS_OK : MB_IBS_NO_LIN_ADDR;
}

/*
 * Copies the registers out of a raw record (caps at offset 0, registers at
 * offset 4, so unaligned) for user space and replay. Returns 0, or -1 when
 * size is below MB_IBS_RAW_MIN_SIZE. Optional trailing registers are ignored.
 * In BPF, read the raw data with bpf_probe_read_kernel instead.
 */
static __always_inline int mb_ibs_raw_regs(const void *raw, __u32 size,
					   struct mb_ibs_op_regs *out)
{
	if (!raw || size < (__u32)MB_IBS_RAW_MIN_SIZE)
		return -1;
	__builtin_memcpy(out, (const unsigned char *)raw + MB_IBS_RAW_REGS_OFFSET,
			 sizeof(*out));
	return 0;
}

/* The caps word at the start of a raw record; 0 when it is too short. */
static __always_inline __u32 mb_ibs_raw_caps(const void *raw, __u32 size)
{
	__u32 caps = 0;

	if (raw && size >= sizeof(caps))
		__builtin_memcpy(&caps, raw, sizeof(caps));
	return caps;
}

#ifdef __cplusplus
static_assert(sizeof(struct mb_ibs_op_regs) == 7 * 8, "ibs regs layout");
#elif !defined(__VMLINUX_H__)
_Static_assert(sizeof(struct mb_ibs_op_regs) == 7 * 8, "ibs regs layout");
#endif

#endif /* MEMBALANCER_IBS_H */
