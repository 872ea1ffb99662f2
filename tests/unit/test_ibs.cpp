// Unit tests for include/membalancer/ibs.h: AMD IBS op sample decoding.
//
// Register values are built from the documented layouts (AMD PPR for family
// 19h, kernel arch/x86/include/asm/amd-ibs.h) with bit-field unions declared
// here, independently of the constants in ibs.h, so that a wrong bit number in
// the header shows up as a failing test.

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "membalancer/ibs.h"

namespace {

// IbsOpData, MSR C001_1035.
union OpData {
	uint64_t val;
	struct {
		uint64_t comp_to_ret_ctr : 16; // 15:0
		uint64_t tag_to_ret_ctr : 16;  // 31:16
		uint64_t rsvd1 : 2;            // 33:32
		uint64_t op_return : 1;        // 34
		uint64_t op_brn_taken : 1;     // 35
		uint64_t op_brn_misp : 1;      // 36
		uint64_t op_brn_ret : 1;       // 37
		uint64_t op_rip_invalid : 1;   // 38
		uint64_t op_brn_fuse : 1;      // 39
		uint64_t op_microcode : 1;     // 40
		uint64_t rsvd2 : 23;           // 63:41
	} f;
};

// IbsOpData2, MSR C001_1036.
union OpData2 {
	uint64_t val;
	struct {
		uint64_t data_src_lo : 3;  // 2:0
		uint64_t rsvd0 : 1;        // 3
		uint64_t rmt_node : 1;     // 4
		uint64_t cache_hit_st : 1; // 5
		uint64_t data_src_hi : 2;  // 7:6 (Zen 4)
		uint64_t rsvd1 : 56;
	} f;
};

// IbsOpData3, MSR C001_1037 (Zen 3/4 meaning of bits 4-6 and 19).
union OpData3 {
	uint64_t val;
	struct {
		uint64_t ld_op : 1;                 // 0
		uint64_t st_op : 1;                 // 1
		uint64_t dc_l1tlb_miss : 1;         // 2
		uint64_t dc_l2tlb_miss : 1;         // 3
		uint64_t dc_l1tlb_hit_2m : 1;       // 4 (Zen 5: page size bit 0)
		uint64_t dc_l1tlb_hit_1g : 1;       // 5 (Zen 5: page size bit 1)
		uint64_t dc_l2tlb_hit_2m : 1;       // 6
		uint64_t dc_miss : 1;               // 7
		uint64_t dc_mis_acc : 1;            // 8
		uint64_t rsvd : 4;                  // 12:9
		uint64_t dc_wc_mem_acc : 1;         // 13
		uint64_t dc_uc_mem_acc : 1;         // 14
		uint64_t dc_locked_op : 1;          // 15
		uint64_t dc_miss_no_mab_alloc : 1;  // 16
		uint64_t dc_lin_addr_valid : 1;     // 17
		uint64_t dc_phy_addr_valid : 1;     // 18
		uint64_t dc_l2tlb_hit_1g : 1;       // 19
		uint64_t l2_miss : 1;               // 20
		uint64_t sw_pf : 1;                 // 21
		uint64_t op_mem_width : 4;          // 25:22
		uint64_t op_dc_miss_open_mem_reqs : 6; // 31:26
		uint64_t dc_miss_lat : 16;          // 47:32
		uint64_t tlb_refill_lat : 16;       // 63:48
	} f;
};

static_assert(sizeof(OpData) == 8 && sizeof(OpData2) == 8 && sizeof(OpData3) == 8);

// caps bits (CPUID Fn8000_001B_EAX, kernel IBS_CAPS_*).
constexpr uint32_t kCapsAvail = 1u << 0;
constexpr uint32_t kCapsOpSam = 1u << 2;
constexpr uint32_t kCapsBrnTrgt = 1u << 5;
constexpr uint32_t kCapsRipInvalidChk = 1u << 7;
constexpr uint32_t kCapsOpData4 = 1u << 10;
constexpr uint32_t kCapsZen4 = 1u << 11;
constexpr uint32_t kCapsOpDtlbPgSize = 1u << 19;

constexpr uint32_t kCapsZen2 = kCapsAvail | kCapsOpSam | kCapsRipInvalidChk;
constexpr uint32_t kCapsZen3 = kCapsZen2 | kCapsOpData4;
constexpr uint32_t kCapsZen4Full = kCapsZen3 | kCapsZen4;
constexpr uint32_t kCapsZen5 = kCapsZen4Full | kCapsOpDtlbPgSize;

// Builds the seven registers of an op sample by named fields.
struct IbsOp {
	OpData data{};
	OpData2 data2{};
	OpData3 data3{};
	uint64_t ctl = (1ull << 18) | (1ull << 17); // IbsOpVal, IbsOpEn
	uint64_t rip = 0x401234;
	uint64_t lin = 0;
	uint64_t phys = 0;

	IbsOp &load() { data3.f.ld_op = 1; return *this; }
	IbsOp &store() { data3.f.st_op = 1; return *this; }
	IbsOp &lin_addr(uint64_t a) { lin = a; data3.f.dc_lin_addr_valid = 1; return *this; }
	IbsOp &phys_addr(uint64_t a) { phys = a; data3.f.dc_phy_addr_valid = 1; return *this; }
	IbsOp &dc_miss(unsigned lat) { data3.f.dc_miss = 1; data3.f.dc_miss_lat = lat; return *this; }
	IbsOp &l2_miss() { data3.f.l2_miss = 1; return *this; }
	// DataSrc split the way the hardware stores it: low 3 bits, high 2 bits.
	IbsOp &src(unsigned s) { data2.f.data_src_lo = s & 7; data2.f.data_src_hi = (s >> 3) & 3; return *this; }
	IbsOp &rmt_node() { data2.f.rmt_node = 1; return *this; }

	mb_ibs_op_regs regs() const
	{
		mb_ibs_op_regs r{};
		r.op_ctl = ctl;
		r.op_rip = rip;
		r.op_data = data.val;
		r.op_data2 = data2.val;
		r.op_data3 = data3.val;
		r.dc_lin_ad = lin;
		r.dc_phys_ad = phys;
		return r;
	}
};

mb_access garbage()
{
	mb_access a;
	std::memset(&a, 0xa5, sizeof(a));
	return a;
}

int decode(const IbsOp &op, uint32_t caps, mb_access *out)
{
	mb_ibs_op_regs r = op.regs();
	*out = garbage();
	return mb_ibs_op_decode(&r, caps, out);
}

// A load that missed L1 and L2 and got its data from DRAM: the usual case for
// DataSrc tests.
IbsOp dram_load()
{
	IbsOp op;
	op.load().lin_addr(0x7f0000001000).dc_miss(200).l2_miss();
	return op;
}

} // namespace

TEST(Ibs, Zen4LoadFromRemoteDram)
{
	IbsOp op;
	op.load().lin_addr(0x7f1234567048).dc_miss(350).l2_miss().src(3).rmt_node();
	// bits 63:52 of IbsDcPhysAd are reserved: the decoder must drop them
	op.phys_addr((0xabcull << 52) | 0x0000001234567048ull);
	op.rip = 0x55555555a0b0;

	mb_access a;
	ASSERT_EQ(decode(op, kCapsZen4Full, &a), 0);
	EXPECT_EQ(a.vaddr, 0x7f1234567048ull);
	EXPECT_EQ(a.paddr, 0x0000001234567048ull);
	EXPECT_EQ(a.ip, 0x55555555a0b0ull);
	EXPECT_EQ(a.latency, 350u);
	EXPECT_EQ(a.data_source, MB_SRC_REMOTE_DRAM);
	// No TLB miss bit: an L1 DTLB hit of a 4K page.
	EXPECT_EQ(a.flags, MB_ACC_LOAD | MB_ACC_VADDR | MB_ACC_PADDR | MB_ACC_IP |
				   MB_ACC_LATENCY | MB_ACC_SRC | MB_ACC_REMOTE | MB_ACC_BASE_PAGE);
}

TEST(Ibs, StoreWithOnlyLinearAddress)
{
	IbsOp op;
	op.store().lin_addr(0x601040);

	mb_access a;
	ASSERT_EQ(decode(op, kCapsZen4Full, &a), 0);
	EXPECT_EQ(a.vaddr, 0x601040u);
	EXPECT_EQ(a.paddr, 0u);
	EXPECT_EQ(a.latency, 0u);
	// no DC miss: the store hit L1
	EXPECT_EQ(a.data_source, MB_SRC_L1);
	EXPECT_EQ(a.flags, MB_ACC_STORE | MB_ACC_VADDR | MB_ACC_IP | MB_ACC_SRC | MB_ACC_BASE_PAGE);
}

TEST(Ibs, StoreMissHasNoLatencyAndNoDataSource)
{
	// IbsDcMissLat and IbsOpData2 are defined for loads only.
	IbsOp op;
	op.store().lin_addr(0x601040).dc_miss(123).l2_miss().src(3).rmt_node();

	mb_access a;
	ASSERT_EQ(decode(op, kCapsZen4Full, &a), 0);
	EXPECT_EQ(a.latency, 0u);
	EXPECT_EQ(a.data_source, MB_SRC_UNKNOWN);
	EXPECT_EQ(a.flags, MB_ACC_STORE | MB_ACC_VADDR | MB_ACC_IP | MB_ACC_BASE_PAGE);
}

TEST(Ibs, NotAMemoryOp)
{
	IbsOp op;
	op.data.f.op_brn_ret = 1; // a branch
	op.lin = 0x1234;          // stale register contents
	mb_access a;
	EXPECT_EQ(decode(op, kCapsZen4Full, &a), -1);
	EXPECT_EQ(a.vaddr, 0u);
	EXPECT_EQ(a.paddr, 0u);
	EXPECT_EQ(a.ip, 0u);
	EXPECT_EQ(a.latency, 0u);
	EXPECT_EQ(a.data_source, MB_SRC_UNKNOWN);
	EXPECT_EQ(a.flags, 0);
}

TEST(Ibs, PhysicalAddressWithoutLinearAddress)
{
	IbsOp op;
	op.load().phys_addr(0x2345678000);
	op.lin = 0xdead000; // not valid: must not be reported

	mb_access a;
	EXPECT_EQ(decode(op, kCapsZen4Full, &a), -2);
	EXPECT_EQ(a.vaddr, 0u);
	EXPECT_EQ(a.paddr, 0x2345678000u);
	EXPECT_EQ(a.flags & MB_ACC_VADDR, 0);
	EXPECT_EQ(a.flags & (MB_ACC_PADDR | MB_ACC_LOAD), MB_ACC_PADDR | MB_ACC_LOAD);
}

TEST(Ibs, RipInvalid)
{
	IbsOp op = dram_load();
	op.data.f.op_rip_invalid = 1;

	mb_access a;
	ASSERT_EQ(decode(op, kCapsZen4Full, &a), 0);
	EXPECT_EQ(a.ip, 0u);
	EXPECT_EQ(a.flags & MB_ACC_IP, 0);

	// Without IBS_CAPS_RIPINVALIDCHK bit 38 is reserved: the RIP stands.
	ASSERT_EQ(decode(op, kCapsZen4Full & ~kCapsRipInvalidChk, &a), 0);
	EXPECT_EQ(a.ip, 0x401234u);
	EXPECT_NE(a.flags & MB_ACC_IP, 0);
}

// The size a TLB hit reports, or none: exactly one of huge, base, neither.
static __u16 page_size_flags(const mb_access& a)
{
	return a.flags & (MB_ACC_HUGE | MB_ACC_BASE_PAGE);
}

TEST(Ibs, HugePageFromTlbBits)
{
	mb_access a;
	{ // L1 DTLB hit in a 2M page
		IbsOp op = dram_load();
		op.data3.f.dc_l1tlb_hit_2m = 1;
		ASSERT_EQ(decode(op, kCapsZen4Full, &a), 0);
		EXPECT_EQ(page_size_flags(a), MB_ACC_HUGE);
	}
	{ // L1 DTLB hit in a 1G page
		IbsOp op = dram_load();
		op.data3.f.dc_l1tlb_hit_1g = 1;
		ASSERT_EQ(decode(op, kCapsZen4Full, &a), 0);
		EXPECT_EQ(page_size_flags(a), MB_ACC_HUGE);
	}
	{ // L1 DTLB miss, L2 DTLB hit in a 2M page
		IbsOp op = dram_load();
		op.data3.f.dc_l1tlb_miss = 1;
		op.data3.f.dc_l2tlb_hit_2m = 1;
		ASSERT_EQ(decode(op, kCapsZen4Full, &a), 0);
		EXPECT_EQ(page_size_flags(a), MB_ACC_HUGE);
	}
	{ // L1 DTLB miss, L2 DTLB hit in a 1G page
		IbsOp op = dram_load();
		op.data3.f.dc_l1tlb_miss = 1;
		op.data3.f.dc_l2tlb_hit_1g = 1;
		ASSERT_EQ(decode(op, kCapsZen4Full, &a), 0);
		EXPECT_EQ(page_size_flags(a), MB_ACC_HUGE);
	}
	{ // 4K page
		IbsOp op = dram_load();
		ASSERT_EQ(decode(op, kCapsZen4Full, &a), 0);
		EXPECT_EQ(page_size_flags(a), MB_ACC_BASE_PAGE);
	}
	{ // L1 DTLB miss, L2 DTLB hit in a 4K page
		IbsOp op = dram_load();
		op.data3.f.dc_l1tlb_miss = 1;
		ASSERT_EQ(decode(op, kCapsZen4Full, &a), 0);
		EXPECT_EQ(page_size_flags(a), MB_ACC_BASE_PAGE);
	}
	{ // missed both TLBs: the L1 hit bits say nothing
		IbsOp op = dram_load();
		op.data3.f.dc_l1tlb_miss = 1;
		op.data3.f.dc_l2tlb_miss = 1;
		op.data3.f.dc_l1tlb_hit_2m = 1;
		ASSERT_EQ(decode(op, kCapsZen4Full, &a), 0);
		EXPECT_EQ(page_size_flags(a), 0); // neither: the size is unknown
	}
}

TEST(Ibs, Zen5PageSizeField)
{
	mb_access a;
	{ // PageSize [5:4] = 1 (2M), valid with IbsDcPhyAddrValid
		IbsOp op = dram_load();
		op.phys_addr(0x40000000);
		op.data3.f.dc_l1tlb_hit_2m = 1; // page size = 01b
		ASSERT_EQ(decode(op, kCapsZen5, &a), 0);
		EXPECT_EQ(page_size_flags(a), MB_ACC_HUGE);
	}
	{ // PageSize = 2 (1G)
		IbsOp op = dram_load();
		op.phys_addr(0x40000000);
		op.data3.f.dc_l1tlb_hit_1g = 1; // page size = 10b
		ASSERT_EQ(decode(op, kCapsZen5, &a), 0);
		EXPECT_EQ(page_size_flags(a), MB_ACC_HUGE);
	}
	{ // PageSize without a physical address is not valid: no size
		IbsOp op = dram_load();
		op.data3.f.dc_l1tlb_hit_2m = 1;
		ASSERT_EQ(decode(op, kCapsZen5, &a), 0);
		EXPECT_EQ(page_size_flags(a), 0);
	}
	{ // PageSize = 3 is reserved: no size
		IbsOp op = dram_load();
		op.phys_addr(0x40000000);
		op.data3.f.dc_l1tlb_hit_2m = 1;
		op.data3.f.dc_l1tlb_hit_1g = 1;
		ASSERT_EQ(decode(op, kCapsZen5, &a), 0);
		EXPECT_EQ(page_size_flags(a), 0);
	}
	{ // bit 6 (IbsDcL2tlbHit2M before Zen 5) is reserved on Zen 5
		IbsOp op = dram_load();
		op.phys_addr(0x40000000);
		op.data3.f.dc_l1tlb_miss = 1;
		op.data3.f.dc_l2tlb_hit_2m = 1;
		ASSERT_EQ(decode(op, kCapsZen5, &a), 0);
		EXPECT_EQ(page_size_flags(a), MB_ACC_BASE_PAGE); // PageSize 0: 4K
	}
}

struct SrcCase {
	unsigned data_src;
	bool rmt_node;
	uint16_t want;
	bool want_remote;
};

TEST(Ibs, Zen4DataSourceEncodings)
{
	const SrcCase cases[] = {
		{0, false, MB_SRC_UNKNOWN, false},      // no valid status
		{1, false, MB_SRC_L3, false},           // local L3 / other L2 in CCX
		{2, false, MB_SRC_PEER_CACHE, false},   // other CCX, same node
		{3, false, MB_SRC_LOCAL_DRAM, false},   // DRAM
		{3, true, MB_SRC_REMOTE_DRAM, true},    // DRAM on another node
		{4, false, MB_SRC_UNKNOWN, false},      // reserved
		{5, false, MB_SRC_REMOTE_CACHE, true},  // other CCX, other node
		{6, false, MB_SRC_PMEM, false},         // long-latency DIMM
		{6, true, MB_SRC_PMEM, true},
		{7, false, MB_SRC_IO, false},           // MMIO/config/PCI/APIC
		{7, true, MB_SRC_IO, false},            // RmtNode n/a for I/O
		{8, false, MB_SRC_CXL, false},          // extension memory
		{8, true, MB_SRC_CXL, true},
		{9, false, MB_SRC_UNKNOWN, false},      // reserved
		{12, false, MB_SRC_CXL, false},         // peer agent memory
		{13, false, MB_SRC_UNKNOWN, false},     // reserved
		{31, false, MB_SRC_UNKNOWN, false},     // reserved
	};
	for (const SrcCase &c : cases) {
		IbsOp op = dram_load();
		op.src(c.data_src);
		if (c.rmt_node)
			op.rmt_node();
		mb_access a;
		ASSERT_EQ(decode(op, kCapsZen4Full, &a), 0);
		SCOPED_TRACE(::testing::Message() << "DataSrc " << c.data_src << " RmtNode " << c.rmt_node);
		EXPECT_EQ(a.data_source, c.want);
		EXPECT_EQ((a.flags & MB_ACC_SRC) != 0, c.want != MB_SRC_UNKNOWN);
		EXPECT_EQ((a.flags & MB_ACC_REMOTE) != 0, c.want_remote);
		EXPECT_EQ(a.latency, 200u);
	}
}

TEST(Ibs, PreZen4DataSourceEncodings)
{
	const SrcCase cases[] = {
		{0, false, MB_SRC_UNKNOWN, false},
		{1, false, MB_SRC_UNKNOWN, false},     // reserved
		{2, false, MB_SRC_L3, false},          // local node cache
		{3, false, MB_SRC_LOCAL_DRAM, false},
		{3, true, MB_SRC_REMOTE_DRAM, true},
		{4, false, MB_SRC_REMOTE_CACHE, true}, // remote node cache
		{5, false, MB_SRC_UNKNOWN, false},
		{6, false, MB_SRC_UNKNOWN, false},
		{7, false, MB_SRC_IO, false},
		// Without the Zen 4 extension bits 7:6 are not part of DataSrc:
		// 0b01'011 reads as 3 (DRAM), not 11.
		{(1u << 3) | 3, false, MB_SRC_LOCAL_DRAM, false},
		// ... and 8 (extension memory on Zen 4) reads as 0.
		{8, false, MB_SRC_UNKNOWN, false},
	};
	for (const SrcCase &c : cases) {
		IbsOp op = dram_load();
		op.src(c.data_src);
		if (c.rmt_node)
			op.rmt_node();
		mb_access a;
		ASSERT_EQ(decode(op, kCapsZen3, &a), 0);
		SCOPED_TRACE(::testing::Message() << "DataSrc " << c.data_src << " RmtNode " << c.rmt_node);
		EXPECT_EQ(a.data_source, c.want);
		EXPECT_EQ((a.flags & MB_ACC_REMOTE) != 0, c.want_remote);
	}
}

TEST(Ibs, CacheLevelsFromMissBits)
{
	mb_access a;
	{ // no DC miss: L1, whatever DataSrc says; no latency
		IbsOp op;
		op.load().lin_addr(0x1000).src(3);
		op.data3.f.dc_miss_lat = 77; // not meaningful without DcMiss
		ASSERT_EQ(decode(op, kCapsZen4Full, &a), 0);
		EXPECT_EQ(a.data_source, MB_SRC_L1);
		EXPECT_EQ(a.latency, 0u);
		EXPECT_EQ(a.flags & MB_ACC_LATENCY, 0);
	}
	{ // DC miss, L2 hit (family 19h: IbsL2Miss is defined)
		IbsOp op;
		op.load().lin_addr(0x1000).dc_miss(14);
		ASSERT_EQ(decode(op, kCapsZen3, &a), 0);
		EXPECT_EQ(a.data_source, MB_SRC_L2);
		EXPECT_EQ(a.latency, 14u);
		EXPECT_NE(a.flags & MB_ACC_LATENCY, 0);
	}
	{ // older caps: IbsL2Miss is not trusted, DataSrc decides
		IbsOp op;
		op.load().lin_addr(0x1000).dc_miss(14);
		ASSERT_EQ(decode(op, kCapsZen2, &a), 0);
		EXPECT_EQ(a.data_source, MB_SRC_UNKNOWN);
		op.src(3);
		ASSERT_EQ(decode(op, kCapsZen2, &a), 0);
		EXPECT_EQ(a.data_source, MB_SRC_LOCAL_DRAM);
	}
}

TEST(Ibs, UncachedAccess)
{
	mb_access a;
	IbsOp op = dram_load();
	op.src(3);
	op.data3.f.dc_uc_mem_acc = 1;
	ASSERT_EQ(decode(op, kCapsZen4Full, &a), 0);
	EXPECT_EQ(a.data_source, MB_SRC_UNCACHED);

	op.src(7); // uncacheable MMIO read: the DataSrc says I/O
	ASSERT_EQ(decode(op, kCapsZen4Full, &a), 0);
	EXPECT_EQ(a.data_source, MB_SRC_IO);
}

TEST(Ibs, Erratum1293BeforeZen4)
{
	// Family 19h models 0-0Fh: with IbsSwPf or IbsDcMissNoMabAlloc,
	// IbsL2Miss and IbsOpData2 are unreliable.
	mb_access a;
	IbsOp op = dram_load();
	op.src(3).rmt_node();
	op.data3.f.sw_pf = 1;
	ASSERT_EQ(decode(op, kCapsZen3, &a), 0);
	EXPECT_EQ(a.data_source, MB_SRC_UNKNOWN);
	EXPECT_EQ(a.flags & (MB_ACC_SRC | MB_ACC_REMOTE), 0);

	op.data3.f.sw_pf = 0;
	op.data3.f.dc_miss_no_mab_alloc = 1;
	ASSERT_EQ(decode(op, kCapsZen3, &a), 0);
	EXPECT_EQ(a.data_source, MB_SRC_UNKNOWN);

	// Zen 4 is not affected.
	ASSERT_EQ(decode(op, kCapsZen4Full, &a), 0);
	EXPECT_EQ(a.data_source, MB_SRC_REMOTE_DRAM);
}

namespace {

void put_u32(std::vector<uint8_t> &b, size_t off, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		b[off + i] = (uint8_t)(v >> (8 * i));
}

void put_u64(std::vector<uint8_t> &b, size_t off, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b[off + i] = (uint8_t)(v >> (8 * i));
}

// The raw record as perf_ibs_handle_irq lays it out: u32 caps, then the
// registers in MSR order, little endian, then the optional ones.
std::vector<uint8_t> raw_record(const IbsOp &op, uint32_t caps, size_t lead = 0)
{
	size_t n = 7 + ((caps & kCapsBrnTrgt) ? 1 : 0) + ((caps & kCapsOpData4) ? 1 : 0);
	std::vector<uint8_t> b(lead + 4 + 8 * n, 0xee);
	put_u32(b, lead, caps);
	const uint64_t regs[] = {op.ctl, op.rip, op.data.val, op.data2.val,
				 op.data3.val, op.lin, op.phys};
	for (size_t i = 0; i < 7; i++)
		put_u64(b, lead + 4 + 8 * i, regs[i]);
	for (size_t i = 7; i < n; i++)
		put_u64(b, lead + 4 + 8 * i, 0x1111111111111111ull * i);
	return b;
}

} // namespace

TEST(Ibs, RawRecordLayoutConstants)
{
	EXPECT_EQ(MB_IBS_RAW_REGS_OFFSET, 4);
	EXPECT_EQ(MB_IBS_RAW_MIN_SIZE, 60);
	EXPECT_EQ(sizeof(mb_ibs_op_regs), 56u);
}

TEST(Ibs, RawRecordParsedAtUnalignedOffset)
{
	IbsOp op;
	op.load().lin_addr(0x7ffc12345678).phys_addr(0x1f2345678).dc_miss(350).l2_miss().src(3).rmt_node();
	op.rip = 0x401a2b;
	const uint32_t caps = kCapsZen4Full | kCapsBrnTrgt;
	// Put the record one byte into the buffer so the u64s are misaligned.
	std::vector<uint8_t> buf = raw_record(op, caps, 1);
	const uint8_t *raw = buf.data() + 1;
	const uint32_t size = (uint32_t)(buf.size() - 1);
	ASSERT_EQ(size, 4u + 9 * 8);

	EXPECT_EQ(mb_ibs_raw_caps(raw, size), caps);
	mb_ibs_op_regs r;
	std::memset(&r, 0, sizeof(r));
	ASSERT_EQ(mb_ibs_raw_regs(raw, size, &r), 0);
	EXPECT_EQ(r.op_ctl, op.ctl);
	EXPECT_EQ(r.op_rip, 0x401a2bu);
	EXPECT_EQ(r.op_data, op.data.val);
	EXPECT_EQ(r.op_data2, op.data2.val);
	EXPECT_EQ(r.op_data3, op.data3.val);
	EXPECT_EQ(r.dc_lin_ad, 0x7ffc12345678u);
	EXPECT_EQ(r.dc_phys_ad, 0x1f2345678u);

	mb_access a = garbage();
	ASSERT_EQ(mb_ibs_op_decode(&r, mb_ibs_raw_caps(raw, size), &a), 0);
	EXPECT_EQ(a.vaddr, 0x7ffc12345678u);
	EXPECT_EQ(a.paddr, 0x1f2345678u);
	EXPECT_EQ(a.ip, 0x401a2bu);
	EXPECT_EQ(a.latency, 350u);
	EXPECT_EQ(a.data_source, MB_SRC_REMOTE_DRAM);
}

TEST(Ibs, RawRecordMinimumSize)
{
	IbsOp op = dram_load();
	std::vector<uint8_t> buf = raw_record(op, kCapsZen2); // no optional regs
	ASSERT_EQ(buf.size(), 60u);
	mb_ibs_op_regs r{};
	EXPECT_EQ(mb_ibs_raw_regs(buf.data(), 60, &r), 0);
	EXPECT_EQ(r.dc_lin_ad, 0x7f0000001000u);
	EXPECT_EQ(mb_ibs_raw_regs(buf.data(), 59, &r), -1);
	EXPECT_EQ(mb_ibs_raw_regs(buf.data(), 0, &r), -1);
	EXPECT_EQ(mb_ibs_raw_regs(nullptr, 60, &r), -1);
	EXPECT_EQ(mb_ibs_raw_caps(buf.data(), 3), 0u);
}
