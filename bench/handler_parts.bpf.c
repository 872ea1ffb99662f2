// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Benchmark diagnostics: the real sample path of bpf/membalancer.bpf.c (same
 * headers, same maps, same inline functions) cut off after each stage, to see
 * which stage costs what. bench/handler_cost --parts loads one instance of
 * this object per stage (rodata bench_stage) next to the real program.
 * Only the software page-fault sampler's decode is kept (that is what the
 * benchmark drives).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "membalancer/records.h"
#include "maps.bpf.h"
#include "page_table.bpf.h"
#include "proctree.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* 0 filter, 1 + cpu info, 2 + page slot find/claim, 3 + page slot update,
 * 4 + thread table entry, 5 + thread stats update (the whole path, which calls
 * no bpf_ktime_get_ns unless samples are streamed); 6: the whole path plus a
 * bpf_ktime_get_ns (the clock only streamed samples need). */
const volatile __u32 bench_stage = 5;
__u64 bench_clock_sink;

SEC("perf_event")
int on_perf_sample_part(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;
	const struct mb_cpu_info *ci;
	__u32 cpu;
	__u64 vaddr = ctx->addr;

	if (!mb_current_wanted(tgid)) {
		mb_count(MB_CTR_FILTERED);
		return 0;
	}
	if (bench_stage == 0)
		return 0;
	if (bench_stage == 6)
		bench_clock_sink = bpf_ktime_get_ns();
	cpu = bpf_get_smp_processor_id();
	ci = bpf_map_lookup_elem(&cpu_info, &cpu);
	mb_count(MB_CTR_ACCEPTED);
	if (bench_stage == 1)
		return 0;
	if (bench_stage == 2) {
		if (!mb_page_slot_get(mb_page_key(tgid, vaddr >> MB_PAGE_SHIFT)))
			mb_count(MB_CTR_PAGE_TABLE_FULL);
		return 0;
	}
	mb_page_account(tgid, vaddr, ci, MB_NODE_UNKNOWN, false);
	if (bench_stage == 3)
		return 0;
	if (bench_stage == 4) {
		struct mb_task_stats *ts = mb_task_slot(tid, true);

		if (ts)
			ts->last_cpu = cpu;
		return 0;
	}
	mb_task_account(tgid, tid, cpu, ci ? ci->node : MB_NODE_UNKNOWN, MB_NODE_UNKNOWN);
	return 0;
}
