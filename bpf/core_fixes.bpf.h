/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Kernel-version differences, in one place. Each reads a field whose layout or
 * validity changed, using CO-RE existence checks rather than version tests.
 */
#ifndef MEMBALANCER_CORE_FIXES_BPF_H
#define MEMBALANCER_CORE_FIXES_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>

/*
 * Linux 6.1 ("perf: Use sample_flags for ...") stopped initialising most of
 * perf_sample_data; a field is valid only if its PERF_SAMPLE_* bit is set in
 * data->sample_flags (data->addr too: perf_sample_data_init writes it only
 * when the address is not 0). Before 6.1 perf_sample_data_init set addr, raw,
 * data_src and weight (to the address, NULL, "not available", 0), so they are
 * safe to read there. Not phys_addr: perf_prepare_sample fills it after the
 * BPF overflow handler has run, so it is garbage then: never claimed (the
 * node then comes from move_pages).
 */
static __always_inline bool mb_sample_has(struct perf_sample_data *data, __u64 flag)
{
	if (bpf_core_field_exists(data->sample_flags))
		return BPF_CORE_READ(data, sample_flags) & flag;
	return (flag & ~(__u64)PERF_SAMPLE_PHYS_ADDR) != 0;
}

/*
 * Linux 5.12 turned perf_sample_data.weight from a u64 into
 * union perf_sample_weight { u64 full; struct { u32 var1_dw; ... } }. The
 * first 8 bytes hold the same thing in both layouts, so read them raw.
 */
static __always_inline __u64 mb_sample_weight(struct perf_sample_data *data)
{
	__u64 w = 0;

	bpf_core_read(&w, sizeof(w), &data->weight);
	return w;
}

/*
 * sched_process_exit: whether the whole thread group is gone. do_exit()
 * decrements signal->live before the tracepoint fires, so 0 means the last
 * thread is leaving (the event grew a group_dead argument only in 6.16).
 */
static __always_inline bool mb_group_dead(struct task_struct *p)
{
	return BPF_CORE_READ(p, signal, live.counter) == 0;
}

#endif
