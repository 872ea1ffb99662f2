// Unit tests for include/membalancer/pebs.h: perf memory sample decoding
// (Intel PEBS and any PMU that fills PERF_SAMPLE_DATA_SRC).
//
// data_src values are built with the kernel's own union perf_mem_data_src and
// PERF_MEM_* constants from <linux/perf_event.h>, so the header's local copies
// are checked against the real ABI. Values newer than the build machine's
// uapi header are spelled out with their kernel names in comments.

#include <gtest/gtest.h>

#include <linux/perf_event.h>

#include <cstdint>

#include "membalancer/pebs.h"

// The header's private copies must equal the ABI.
static_assert((unsigned)MB_PERF_SAMPLE_ADDR == (unsigned)PERF_SAMPLE_ADDR);
static_assert((unsigned)MB_PERF_SAMPLE_WEIGHT == (unsigned)PERF_SAMPLE_WEIGHT);
static_assert((unsigned)MB_PERF_SAMPLE_DATA_SRC == (unsigned)PERF_SAMPLE_DATA_SRC);
static_assert((unsigned)MB_PERF_SAMPLE_PHYS_ADDR == (unsigned)PERF_SAMPLE_PHYS_ADDR);
static_assert((unsigned)MB_PERF_SAMPLE_WEIGHT_STRUCT == (unsigned)PERF_SAMPLE_WEIGHT_STRUCT);
static_assert(MB_PERF_MEM_OP_SHIFT == PERF_MEM_OP_SHIFT);
static_assert(MB_PERF_MEM_LVL_SHIFT == PERF_MEM_LVL_SHIFT);
static_assert(MB_PERF_MEM_SNOOP_SHIFT == PERF_MEM_SNOOP_SHIFT);
static_assert(MB_PERF_MEM_LOCK_SHIFT == PERF_MEM_LOCK_SHIFT);
static_assert(MB_PERF_MEM_DTLB_SHIFT == PERF_MEM_TLB_SHIFT);
static_assert(MB_PERF_MEM_LVLNUM_SHIFT == PERF_MEM_LVLNUM_SHIFT);
static_assert(MB_PERF_MEM_REMOTE_SHIFT == PERF_MEM_REMOTE_SHIFT);
static_assert(MB_PERF_MEM_SNOOPX_SHIFT == PERF_MEM_SNOOPX_SHIFT);
static_assert(MB_PERF_MEM_BLK_SHIFT == PERF_MEM_BLK_SHIFT);
static_assert(MB_PERF_MEM_HOPS_SHIFT == PERF_MEM_HOPS_SHIFT);
static_assert(MB_PERF_MEM_LVL_REM_RAM1 == PERF_MEM_LVL_REM_RAM1);
static_assert(MB_PERF_MEM_LVL_UNC == PERF_MEM_LVL_UNC);
static_assert(MB_PERF_MEM_LVLNUM_CXL == PERF_MEM_LVLNUM_CXL);
static_assert(MB_PERF_MEM_LVLNUM_ANY_CACHE == PERF_MEM_LVLNUM_ANY_CACHE);
static_assert(MB_PERF_MEM_LVLNUM_LFB == PERF_MEM_LVLNUM_LFB);
static_assert(MB_PERF_MEM_LVLNUM_RAM == PERF_MEM_LVLNUM_RAM);
static_assert(MB_PERF_MEM_LVLNUM_PMEM == PERF_MEM_LVLNUM_PMEM);
static_assert(MB_PERF_MEM_LVLNUM_NA == PERF_MEM_LVLNUM_NA);
static_assert(MB_PERF_MEM_HOPS_0 == PERF_MEM_HOPS_0);
static_assert(MB_PERF_MEM_HOPS_3 == PERF_MEM_HOPS_3);

namespace {

// Builds a data_src through the kernel's bit-field union.
struct DataSrc {
	perf_mem_data_src d{};

	DataSrc &op(uint64_t v) { d.mem_op = v; return *this; }
	DataSrc &lvl(uint64_t v) { d.mem_lvl = v; return *this; }
	DataSrc &num(uint64_t v) { d.mem_lvl_num = v; return *this; }
	DataSrc &remote() { d.mem_remote = PERF_MEM_REMOTE_REMOTE; return *this; }
	DataSrc &hops(uint64_t v) { d.mem_hops = v; return *this; }
	DataSrc &snoop(uint64_t v) { d.mem_snoop = v; return *this; }
	DataSrc &tlb(uint64_t v) { d.mem_dtlb = v; return *this; }
	uint64_t val() const { return d.val; }
};

DataSrc load_hit(uint64_t lvl, uint64_t num)
{
	DataSrc s;
	s.op(PERF_MEM_OP_LOAD).lvl(PERF_MEM_LVL_HIT | lvl).num(num).snoop(PERF_MEM_SNOOP_NONE)
		.tlb(PERF_MEM_TLB_L1 | PERF_MEM_TLB_HIT);
	return s;
}

constexpr uint64_t kAll = PERF_SAMPLE_ADDR | PERF_SAMPLE_PHYS_ADDR |
			  PERF_SAMPLE_DATA_SRC | PERF_SAMPLE_WEIGHT_STRUCT;

mb_access decode(uint64_t sample_type, uint64_t addr, uint64_t phys, uint64_t data_src,
		 uint64_t weight)
{
	mb_access a;
	__builtin_memset(&a, 0x5a, sizeof(a));
	mb_perf_mem_decode(sample_type, addr, phys, data_src, weight, &a);
	return a;
}

} // namespace

TEST(PerfDataSrc, BuilderMatchesKernelMacros)
{
	// PERF_MEM_NA as the kernel defines it, built field by field.
	DataSrc na;
	na.op(PERF_MEM_OP_NA).lvl(PERF_MEM_LVL_NA).snoop(PERF_MEM_SNOOP_NA)
		.tlb(PERF_MEM_TLB_NA);
	na.d.mem_lock = PERF_MEM_LOCK_NA;
	EXPECT_EQ(na.val(), (uint64_t)(PERF_MEM_S(OP, NA) | PERF_MEM_S(LVL, NA) |
				       PERF_MEM_S(SNOOP, NA) | PERF_MEM_S(LOCK, NA) |
				       PERF_MEM_S(TLB, NA)));
	EXPECT_EQ(DataSrc().num(PERF_MEM_LVLNUM_RAM).remote().hops(PERF_MEM_HOPS_2).val(),
		  (uint64_t)(PERF_MEM_S(LVLNUM, RAM) | PERF_MEM_S(REMOTE, REMOTE) |
			     PERF_MEM_S(HOPS, 2)));
}

TEST(PerfDataSrc, L1Hit)
{
	uint64_t v = load_hit(PERF_MEM_LVL_L1, PERF_MEM_LVLNUM_L1).val();
	EXPECT_EQ(mb_perf_data_src_classify(v), MB_SRC_L1);
	mb_access a = decode(kAll, 0x7f0000001000, 0, v, 4);
	EXPECT_EQ(a.data_source, MB_SRC_L1);
	EXPECT_EQ(a.flags, MB_ACC_VADDR | MB_ACC_LOAD | MB_ACC_SRC | MB_ACC_LATENCY);
	EXPECT_EQ(a.latency, 4u);
}

TEST(PerfDataSrc, L2AndL3Hits)
{
	EXPECT_EQ(mb_perf_data_src_classify(load_hit(PERF_MEM_LVL_L2, PERF_MEM_LVLNUM_L2).val()),
		  MB_SRC_L2);
	EXPECT_EQ(mb_perf_data_src_classify(load_hit(PERF_MEM_LVL_L3, PERF_MEM_LVLNUM_L3).val()),
		  MB_SRC_L3);
	// L3 hit with a cross-core snoop (Intel 0x06) is still the local L3.
	EXPECT_EQ(mb_perf_data_src_classify(load_hit(PERF_MEM_LVL_L3, PERF_MEM_LVLNUM_L3)
						    .snoop(PERF_MEM_SNOOP_HIT).val()),
		  MB_SRC_L3);
}

TEST(PerfDataSrc, LocalAndRemoteRam)
{
	uint64_t local = load_hit(PERF_MEM_LVL_LOC_RAM, PERF_MEM_LVLNUM_RAM).val();
	EXPECT_EQ(mb_perf_data_src_classify(local), MB_SRC_LOCAL_DRAM);
	mb_access a = decode(kAll, 0x1000, 0x2000, local, 300);
	EXPECT_EQ(a.flags & MB_ACC_REMOTE, 0);

	uint64_t remote = load_hit(PERF_MEM_LVL_REM_RAM1, PERF_MEM_LVLNUM_RAM).remote().val();
	EXPECT_EQ(mb_perf_data_src_classify(remote), MB_SRC_REMOTE_DRAM);
	a = decode(kAll, 0x1000, 0x2000, remote, 300);
	EXPECT_EQ(a.data_source, MB_SRC_REMOTE_DRAM);
	EXPECT_EQ(a.flags, MB_ACC_VADDR | MB_ACC_PADDR | MB_ACC_LOAD | MB_ACC_SRC |
				   MB_ACC_LATENCY | MB_ACC_REMOTE);
	EXPECT_EQ(a.vaddr, 0x1000u);
	EXPECT_EQ(a.paddr, 0x2000u);
	EXPECT_EQ(a.latency, 300u);

	// Hops alone (remote socket) also make DRAM remote; hop 0 is the same node.
	EXPECT_EQ(mb_perf_data_src_classify(
			  DataSrc().op(PERF_MEM_OP_LOAD).num(PERF_MEM_LVLNUM_RAM).hops(PERF_MEM_HOPS_2).val()),
		  MB_SRC_REMOTE_DRAM);
	EXPECT_EQ(mb_perf_data_src_classify(
			  DataSrc().op(PERF_MEM_OP_LOAD).num(PERF_MEM_LVLNUM_RAM).hops(PERF_MEM_HOPS_0).val()),
		  MB_SRC_LOCAL_DRAM);
}

TEST(PerfDataSrc, CachesByHops)
{
	// AMD "near CCX" as the kernel reports it: any cache, remote, hop 0.
	uint64_t near = load_hit(PERF_MEM_LVL_REM_CCE1, PERF_MEM_LVLNUM_ANY_CACHE)
				.remote().hops(PERF_MEM_HOPS_0).val();
	EXPECT_EQ(mb_perf_data_src_classify(near), MB_SRC_PEER_CACHE);
	EXPECT_EQ(decode(kAll, 0x1000, 0, near, 0).flags & MB_ACC_REMOTE, 0);

	// "far CCX": any cache, remote, hop 1 (other node).
	uint64_t far = load_hit(PERF_MEM_LVL_REM_CCE2, PERF_MEM_LVLNUM_ANY_CACHE)
			       .remote().hops(PERF_MEM_HOPS_1).val();
	EXPECT_EQ(mb_perf_data_src_classify(far), MB_SRC_REMOTE_CACHE);
	EXPECT_NE(decode(kAll, 0x1000, 0, far, 0).flags & MB_ACC_REMOTE, 0);

	// Intel "L3 miss, snoop hit" (0x08): L3 level, remote, no hops.
	uint64_t intel = load_hit(PERF_MEM_LVL_REM_CCE1, PERF_MEM_LVLNUM_L3)
				 .remote().snoop(PERF_MEM_SNOOP_HIT).val();
	EXPECT_EQ(mb_perf_data_src_classify(intel), MB_SRC_REMOTE_CACHE);

	// Intel "L3 miss, shared, remote DRAM" (0x0b on some models):
	// L3 level number, but mem_lvl says remote DRAM.
	uint64_t shared = load_hit(PERF_MEM_LVL_REM_RAM1, PERF_MEM_LVLNUM_L3)
				  .remote().snoop(PERF_MEM_SNOOP_HIT).val();
	EXPECT_EQ(mb_perf_data_src_classify(shared), MB_SRC_REMOTE_DRAM);
}

TEST(PerfDataSrc, CxlPmemIo)
{
	uint64_t cxl = DataSrc().op(PERF_MEM_OP_LOAD).num(PERF_MEM_LVLNUM_CXL).val();
	EXPECT_EQ(mb_perf_data_src_classify(cxl), MB_SRC_CXL);
	EXPECT_EQ(decode(kAll, 0x1000, 0, cxl, 0).flags & MB_ACC_REMOTE, 0);
	uint64_t cxl_remote = DataSrc().op(PERF_MEM_OP_LOAD).num(PERF_MEM_LVLNUM_CXL)
				      .remote().hops(PERF_MEM_HOPS_1).val();
	mb_access a = decode(kAll, 0x1000, 0, cxl_remote, 0);
	EXPECT_EQ(a.data_source, MB_SRC_CXL);
	EXPECT_NE(a.flags & MB_ACC_REMOTE, 0);

	uint64_t pmem = DataSrc().op(PERF_MEM_OP_LOAD).lvl(PERF_MEM_LVL_HIT)
				.num(PERF_MEM_LVLNUM_PMEM).val();
	EXPECT_EQ(mb_perf_data_src_classify(pmem), MB_SRC_PMEM);

	uint64_t io = load_hit(PERF_MEM_LVL_IO, PERF_MEM_LVLNUM_IO).val();
	EXPECT_EQ(mb_perf_data_src_classify(io), MB_SRC_IO);

	// PERF_MEM_LVLNUM_UNC (0x08) is newer than some uapi headers.
	uint64_t unc = load_hit(PERF_MEM_LVL_UNC, 0x08).val();
	EXPECT_EQ(mb_perf_data_src_classify(unc), MB_SRC_UNCACHED);
}

TEST(PerfDataSrc, UnknownAndNotAvailable)
{
	const uint64_t perf_mem_na = PERF_MEM_S(OP, NA) | PERF_MEM_S(LVL, NA) |
				     PERF_MEM_S(SNOOP, NA) | PERF_MEM_S(LOCK, NA) |
				     PERF_MEM_S(TLB, NA);
	EXPECT_EQ(mb_perf_data_src_classify(perf_mem_na), MB_SRC_UNKNOWN);
	EXPECT_EQ(mb_perf_data_src_classify(0), MB_SRC_UNKNOWN);
	mb_access a = decode(kAll, 0x1000, 0, perf_mem_na, 0);
	EXPECT_EQ(a.data_source, MB_SRC_UNKNOWN);
	EXPECT_EQ(a.flags, MB_ACC_VADDR); // no load/store, no source, no latency

	// lvl_num NA with the level in mem_lvl (Intel I/O, 0x0e): use mem_lvl.
	EXPECT_EQ(mb_perf_data_src_classify(load_hit(PERF_MEM_LVL_IO, PERF_MEM_LVLNUM_NA).val()),
		  MB_SRC_IO);
	// Intel "unknown L3 miss" (0x00): L3 level number but MISS: unknown.
	uint64_t l3_miss = DataSrc().op(PERF_MEM_OP_LOAD).lvl(PERF_MEM_LVL_MISS | PERF_MEM_LVL_L3)
				   .num(PERF_MEM_LVLNUM_L3).snoop(PERF_MEM_SNOOP_NA).val();
	EXPECT_EQ(mb_perf_data_src_classify(l3_miss), MB_SRC_UNKNOWN);
	// Line fill buffer: a miss already in flight, source unknown.
	EXPECT_EQ(mb_perf_data_src_classify(load_hit(PERF_MEM_LVL_LFB, PERF_MEM_LVLNUM_LFB).val()),
		  MB_SRC_UNKNOWN);
}

TEST(PerfDataSrc, OlderLevelBitsOnly)
{
	// PMUs/kernels that fill only mem_lvl (mem_lvl_num 0).
	EXPECT_EQ(mb_perf_data_src_classify(load_hit(PERF_MEM_LVL_L1, 0).val()), MB_SRC_L1);
	EXPECT_EQ(mb_perf_data_src_classify(load_hit(PERF_MEM_LVL_L2, 0).val()), MB_SRC_L2);
	EXPECT_EQ(mb_perf_data_src_classify(load_hit(PERF_MEM_LVL_L3, 0).val()), MB_SRC_L3);
	EXPECT_EQ(mb_perf_data_src_classify(load_hit(PERF_MEM_LVL_LOC_RAM, 0).val()),
		  MB_SRC_LOCAL_DRAM);
	EXPECT_EQ(mb_perf_data_src_classify(load_hit(PERF_MEM_LVL_REM_RAM2, 0).val()),
		  MB_SRC_REMOTE_DRAM);
	EXPECT_EQ(mb_perf_data_src_classify(load_hit(PERF_MEM_LVL_REM_CCE1, 0).val()),
		  MB_SRC_REMOTE_CACHE);
	EXPECT_EQ(mb_perf_data_src_classify(load_hit(PERF_MEM_LVL_UNC, 0).val()),
		  MB_SRC_UNCACHED);
	mb_access a = decode(kAll, 0x1000, 0, load_hit(PERF_MEM_LVL_REM_RAM1, 0).val(), 0);
	EXPECT_NE(a.flags & MB_ACC_REMOTE, 0);
}

TEST(PerfDataSrc, LoadVersusStore)
{
	// Intel precise store: L1 hit or miss, no latency.
	uint64_t st_hit = DataSrc().op(PERF_MEM_OP_STORE).lvl(PERF_MEM_LVL_L1 | PERF_MEM_LVL_HIT)
				  .snoop(PERF_MEM_SNOOP_NA).val();
	mb_access a = decode(kAll, 0x601040, 0, st_hit, 0);
	EXPECT_EQ(a.flags, MB_ACC_VADDR | MB_ACC_STORE | MB_ACC_SRC);
	EXPECT_EQ(a.data_source, MB_SRC_L1);

	uint64_t st_miss = DataSrc().op(PERF_MEM_OP_STORE).lvl(PERF_MEM_LVL_L1 | PERF_MEM_LVL_MISS)
				   .snoop(PERF_MEM_SNOOP_NA).val();
	a = decode(kAll, 0x601040, 0, st_miss, 0);
	EXPECT_EQ(a.flags, MB_ACC_VADDR | MB_ACC_STORE);
	EXPECT_EQ(a.data_source, MB_SRC_UNKNOWN);

	uint64_t ld = load_hit(PERF_MEM_LVL_L2, PERF_MEM_LVLNUM_L2).val();
	a = decode(kAll, 0x601040, 0, ld, 12);
	EXPECT_EQ(a.flags & (MB_ACC_LOAD | MB_ACC_STORE), MB_ACC_LOAD);
}

TEST(PerfWeight, StructVersusPlain)
{
	uint64_t ld = load_hit(PERF_MEM_LVL_LOC_RAM, PERF_MEM_LVLNUM_RAM).val();
	// union perf_sample_weight: var1_dw (u32, low), var2_w, var3_w (u16 each).
	const uint64_t var1_dw = 412, var2_w = 37, var3_w = 9;
	const uint64_t wstruct = var1_dw | (var2_w << 32) | (var3_w << 48);

	mb_access a = decode(PERF_SAMPLE_ADDR | PERF_SAMPLE_DATA_SRC | PERF_SAMPLE_WEIGHT_STRUCT,
			     0x1000, 0, ld, wstruct);
	EXPECT_EQ(a.latency, 412u);
	EXPECT_NE(a.flags & MB_ACC_LATENCY, 0);

	a = decode(PERF_SAMPLE_ADDR | PERF_SAMPLE_DATA_SRC | PERF_SAMPLE_WEIGHT, 0x1000, 0, ld, 250);
	EXPECT_EQ(a.latency, 250u);
	EXPECT_NE(a.flags & MB_ACC_LATENCY, 0);

	// A plain weight above 32 bits saturates.
	a = decode(PERF_SAMPLE_WEIGHT, 0, 0, 0, 0x100000005ull);
	EXPECT_EQ(a.latency, 0xffffffffu);

	// Zero weight: no latency.
	a = decode(PERF_SAMPLE_ADDR | PERF_SAMPLE_WEIGHT_STRUCT, 0x1000, 0, 0, 0);
	EXPECT_EQ(a.latency, 0u);
	EXPECT_EQ(a.flags & MB_ACC_LATENCY, 0);
}

TEST(PerfFields, MissingFieldsAreIgnored)
{
	uint64_t remote = load_hit(PERF_MEM_LVL_REM_RAM1, PERF_MEM_LVLNUM_RAM).remote().val();

	// Nothing in sample_type: nothing decoded, whatever the arguments say.
	mb_access a = decode(0, 0x1000, 0x2000, remote, 300);
	EXPECT_EQ(a.vaddr, 0u);
	EXPECT_EQ(a.paddr, 0u);
	EXPECT_EQ(a.ip, 0u);
	EXPECT_EQ(a.latency, 0u);
	EXPECT_EQ(a.data_source, MB_SRC_UNKNOWN);
	EXPECT_EQ(a.flags, 0);

	// Address only.
	a = decode(PERF_SAMPLE_ADDR, 0x1000, 0x2000, remote, 300);
	EXPECT_EQ(a.vaddr, 0x1000u);
	EXPECT_EQ(a.flags, MB_ACC_VADDR);

	// Physical address only, then data source only.
	a = decode(PERF_SAMPLE_PHYS_ADDR, 0x1000, 0x2000, remote, 300);
	EXPECT_EQ(a.paddr, 0x2000u);
	EXPECT_EQ(a.flags, MB_ACC_PADDR);
	a = decode(PERF_SAMPLE_DATA_SRC, 0x1000, 0x2000, remote, 300);
	EXPECT_EQ(a.flags, MB_ACC_LOAD | MB_ACC_SRC | MB_ACC_REMOTE);
	EXPECT_EQ(a.data_source, MB_SRC_REMOTE_DRAM);

	// Present but zero: the hardware gave no address.
	a = decode(kAll, 0, 0, remote, 300);
	EXPECT_EQ(a.flags & (MB_ACC_VADDR | MB_ACC_PADDR), 0);
}
