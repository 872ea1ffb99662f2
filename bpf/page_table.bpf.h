/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Aggregation in the kernel: per (tgid, page) slots and per-thread stats. */
#ifndef MEMBALANCER_PAGE_TABLE_BPF_H
#define MEMBALANCER_PAGE_TABLE_BPF_H

#include "maps.bpf.h"

/* Finds or claims key's slot among the ways of one set, starting at way
 * `first`. */
static __always_inline struct mb_page_slot *mb_set_probe(struct mb_page_set *set, __u64 key,
							 __u32 first)
{
#pragma unroll
	for (int i = 0; i < MB_PAGE_WAYS; i++) {
		struct mb_page_slot *slot = &set->way[(first + i) & (MB_PAGE_WAYS - 1)];
		__u64 seen = slot->key;

		if (seen == key)
			return slot;
		if (seen != 0)
			continue;
		seen = __sync_val_compare_and_swap(&slot->key, 0, key);
		if (seen == 0 || seen == key)
			return slot;
	}
	return NULL;
}

/* Finds or claims the slot of key in the active table: its home set (next to
 * its region's other groups); when that is full (another region's run
 * overlaps it), up to MB_PAGE_SPILL_SETS sets hashed from its group. */
static __always_inline struct mb_page_slot *mb_page_slot_get(__u64 key)
{
	__u32 zero = 0;
	void *table = bpf_map_lookup_elem(&page_tables, &zero);
	__u32 first = key & (MB_PAGE_WAYS - 1);
	__u32 home, next;
	struct mb_page_set *set;
	struct mb_page_slot *slot;

	if (!table)
		return NULL;
	home = mb_key_set(key, page_set_bits);
	set = bpf_map_lookup_elem(table, &home);
	if (!set)
		return NULL;
	slot = mb_set_probe(set, key, first);
	if (slot)
		return slot;
	for (__u32 i = 0; i < MB_PAGE_SPILL_SETS; i++) {
		next = mb_key_spill_set(key, i, page_set_bits);
		set = bpf_map_lookup_elem(table, &next);
		if (!set)
			return NULL;
		slot = mb_set_probe(set, key, first);
		if (slot)
			return slot;
	}
	return NULL;
}

static __always_inline void mb_page_account(__u32 tgid, __u64 vaddr,
					    const struct mb_cpu_info *cpu,
					    __u16 mem_node, bool huge)
{
	__u64 vpn = vaddr >> MB_PAGE_SHIFT;
	struct mb_page_slot *slot;

	if (vpn >> MB_KEY_VPN_BITS) {
		mb_count(MB_CTR_KERNEL_ADDRESS);
		return;
	}
	slot = mb_page_slot_get(mb_page_key(tgid, vpn));
	if (!slot) {
		mb_count(MB_CTR_PAGE_TABLE_FULL);
		return;
	}
	__sync_fetch_and_add(&slot->accesses, 1);
	/* jiffies: a plain read, NMI-safe (the coarse ktime helper is not, and
	 * perf_event programs may not call it). */
	slot->last_seen = (__u16)bpf_jiffies64();
	if (mem_node < MB_SLOT_NODE_MASK)
		slot->mem_node1 = (mem_node + 1) | (huge ? MB_SLOT_HUGE : 0);
	else if (huge)
		slot->mem_node1 = MB_SLOT_HUGE;
	if (!cpu)
		return;
	if (cpu->lane >= MB_CPU_LANES) {
		mb_count(MB_CTR_LANE_NONE);
		return;
	}
	{
		__u32 word = (cpu->lane >> 2) & 1;
		__u32 shift = (cpu->lane & 3) * 16;

		/* Saturate below 0xffff so concurrent adds never carry into
		 * the next lane. */
		if (((slot->lanes[word] >> shift) & 0xffff) >= MB_LANE_SATURATE) {
			mb_count(MB_CTR_LANE_SATURATED);
			return;
		}
		__sync_fetch_and_add(&slot->lanes[word], 1ULL << shift);
	}
}

static __always_inline void mb_task_node_add(__u32 *per_node, __u16 node)
{
	__u32 idx = node;

	if (idx >= MB_MAX_NODES) {
		if (node != MB_NODE_UNKNOWN)
			mb_count(MB_CTR_NODE_OUT_OF_RANGE);
		return;
	}
	/* Re-bound the index in the register used for the access: clang may
	 * otherwise check a copy and index with the original. */
	barrier_var(idx);
	idx &= MB_MAX_NODES - 1;
	per_node[idx] += 1;
}

/* The thread table entry of tid, claiming a free one when `claim` is set and
 * it has none. Only the thread's own samples claim its entry, one at a time
 * (a thread runs on one CPU at a time), so it never gets two; the
 * compare-and-swap settles two threads racing for one free entry. Every
 * probe is looked at before claiming: user space frees entries anywhere. */
static __always_inline struct mb_task_stats *mb_task_slot(__u32 tid, bool claim)
{
	struct mb_task_stats *free_ts = NULL;

#pragma unroll
	for (__u32 i = 0; i < MB_TASK_PROBES; i++) {
		__u32 idx = (tid + i) & task_slot_mask;
		struct mb_task_stats *ts = bpf_map_lookup_elem(&task_stats, &idx);

		if (!ts)
			return NULL;
		if (ts->tid == tid)
			return ts;
		if (ts->tid == 0 && !free_ts)
			free_ts = ts;
	}
	if (!claim || !free_ts)
		return NULL;
	/* Lost to another thread: that entry is taken, count it as full. */
	if (__sync_val_compare_and_swap(&free_ts->tid, 0, tid) != 0)
		return NULL;
	return free_ts;
}

static __always_inline void mb_task_account(__u32 tgid, __u32 tid, __u32 cpu,
					    __u16 cpu_node, __u16 mem_node)
{
	struct mb_task_stats *ts = mb_task_slot(tid, true);

	if (!ts) {
		mb_count(MB_CTR_TASK_TABLE_FULL);
		return;
	}
	/* Plain adds: a thread's samples are taken on the CPU it runs on, one
	 * at a time, so only one program updates its entry at once. */
	ts->tgid = tgid;
	ts->last_cpu = cpu;
	ts->accesses += 1;
	mb_task_node_add(ts->cpu_node_accesses, cpu_node);
	mb_task_node_add(ts->mem_node_accesses, mem_node);
}

/* Node of a physical address, from the memory-block table. */
static __always_inline __u16 mb_phys_node(__u64 paddr)
{
	__u32 block = (__u32)(paddr >> mem_block_shift);
	__u16 *node = bpf_map_lookup_elem(&mem_block_node, &block);

	return node ? *node : MB_NODE_UNKNOWN;
}

#endif
