/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Maps and load-time configuration of the membalancer BPF object. Sizes are
 * set by user space between open and load (bpf_map__set_max_entries). */
#ifndef MEMBALANCER_MAPS_BPF_H
#define MEMBALANCER_MAPS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "membalancer/records.h"

/* Read-only configuration, written by user space before load. */
const volatile __u32 sampler_kind = MB_SAMPLER_FAULT;
const volatile __u32 self_tgid = 0;      /* never sampled */
const volatile bool track_all = false;   /* --all */
const volatile bool follow_forks = true; /* --ppid: children join the tracked set */
const volatile bool track_cgroup = false; /* --cgroup: cgroup_filter[0] */
const volatile bool stream_samples = false; /* one ring-buffer record per sample */
/* Streamed samples wake the consumer only once this much waits unread; below
 * it the consumer reads on its own timer (a wake-up per sample cost more than
 * the sample). 0: the kernel's default (a wake-up when the consumer had
 * caught up). */
const volatile __u64 sample_wakeup_bytes = 0;
/* Whether a thread waits on the sample ring (profiler record's consumer,
 * wait_samples). Without one (membalancer --record reads the ring in its
 * interval loop) no sample wakes anyone: a forced wake-up past the fill
 * level, or the kernel's default one into an empty ring, would cost the
 * kernel's deferred wake-up work and wake no one. */
const volatile bool sample_consumer_waits = true;
/* Set by a consumer that read the ring empty and goes to sleep without a
 * timer (wait_samples): the first sample committed after it wakes it, and
 * clears it. Written by user space through the mapped .bss. */
volatile __u32 sample_consumer_asleep = 0;
const volatile __u64 perf_sample_type = 0;  /* attr.sample_type of the sampler */
const volatile __u32 page_set_bits = 7;     /* log2 of the page table's sets */
const volatile __u32 mem_block_shift = 27;  /* log2 of the memory block size */
const volatile __u32 task_slot_mask = 16383; /* thread table entries - 1 */

/* The active page table: slot 0 holds an array of mb_page_slot. User space
 * swaps it for the drained one every interval (the update waits for running
 * programs, so nothing is counted into a table being read). */
/* Forces the complete slot type into BTF: the inner map definition alone
 * leaves only a forward declaration, and libbpf needs the value size. */
struct mb_page_set mb_page_set_btf_anchor;

struct page_table_array {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 128);
	__type(key, __u32);
	__type(value, struct mb_page_set);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct page_table_array);
} page_tables SEC(".maps");

/* Per-thread statistics: entries found from the tid (mb_task_slot). An array,
 * not a hash: its lookup is inlined, with no key hashing and no bucket to
 * read (about 17 ns less per sample). Mappable: user space reads it in
 * place and frees the entries of exited threads. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct mb_task_stats);
} task_stats SEC(".maps");

/* The tracked processes (key: tgid). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct mb_tracked);
} tracked SEC(".maps");

/* A recorder's tracked processes whose maps changed since it last read them
 * (key: tgid): the time of the first maps-changing system call since, which
 * user space takes (and deletes) before it reads /proc/PID/maps again. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
} maps_changed SEC(".maps");

/* The tracked set again, as one bit per tgid: the sample path's filter is an
 * inlined array access instead of a hash lookup. Sized from pid_max and
 * mappable, so user space sets the bits of the tree it seeds atomically. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} tracked_bits SEC(".maps");

/* CPU -> node and lane. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mb_cpu_info);
} cpu_info SEC(".maps");

/* Memory block (physical address >> mem_block_shift) -> node. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u16);
} mem_block_node SEC(".maps");

/* --cgroup: the cgroup v2 directory whose subtree is tracked. */
struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} cgroup_filter SEC(".maps");

/* Global counters (enum mb_counter), per CPU so no atomics are needed. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MB_NR_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* Process fork, exec and exit events for user space. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} proc_events SEC(".maps");

/* Per-sample records for the profiler (sized to one page unless streaming). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} samples SEC(".maps");

static __always_inline void mb_count(__u32 counter)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &counter);

	if (v)
		*v += 1;
}

#endif
