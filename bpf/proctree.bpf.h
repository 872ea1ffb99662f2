/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The tracked set: which processes' samples count. */
#ifndef MEMBALANCER_PROCTREE_BPF_H
#define MEMBALANCER_PROCTREE_BPF_H

#include "maps.bpf.h"

static __always_inline void mb_proc_event_at(__u32 type, __u32 tgid, __u32 parent,
					     __u32 tid, __u64 time_ns)
{
	struct mb_proc_event *ev;

	ev = bpf_ringbuf_reserve(&proc_events, sizeof(*ev), 0);
	if (!ev) {
		mb_count(MB_CTR_EVENTS_LOST);
		return;
	}
	ev->time_ns = time_ns;
	ev->type = type;
	ev->tgid = tgid;
	ev->parent_tgid = parent;
	ev->tid = tid;
	bpf_ringbuf_submit(ev, 0);
}

static __always_inline void mb_proc_event(__u32 type, __u32 tgid, __u32 parent,
					  __u32 tid)
{
	mb_proc_event_at(type, tgid, parent, tid, bpf_ktime_get_ns());
}

/*
 * Whether the current task runs in an address space an exec is still
 * building: past the point of no return (exec_mmap installed the new mm)
 * and before load_elf_binary wrote mm->start_code, its last step before the
 * sched_process_exec tracepoint. The kernel's own faults then (clearing the
 * new program's bss, writing its stack) are the new program's. A fresh mm
 * (mm_alloc) is zeroed and every program's mm has start_code set (not 0 even
 * without an executable segment: ~0 plus the load bias), so a task whose
 * mm's start_code is 0 is in that window; before the point of no return its
 * mm is the old program's. No mm: a kernel thread.
 */
static __always_inline bool mb_exec_building_mm(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct mm_struct *mm = BPF_CORE_READ(task, mm);

	return mm && BPF_CORE_READ(mm, start_code) == 0;
}

/* The word of tracked_bits holding tgid's bit, or NULL past pid_max. */
static __always_inline __u64 *mb_tracked_word(__u32 tgid)
{
	__u32 word = tgid / 64;

	return bpf_map_lookup_elem(&tracked_bits, &word);
}

static __always_inline bool mb_is_tracked(__u32 tgid)
{
	__u64 *w = mb_tracked_word(tgid);

	return w && (*w & (1ULL << (tgid % 64)));
}

static __always_inline bool mb_track(__u32 tgid, __u32 parent, __u32 flags)
{
	struct mb_tracked t = { .parent_tgid = parent, .flags = flags };
	__u64 *w;
	long err;

	/* Test first: the common case (already tracked) is one bit, and an
	 * update of an existing key fails with more than EEXIST on some kernels
	 * (6.1 in NMI context). */
	if (mb_is_tracked(tgid) || bpf_map_lookup_elem(&tracked, &tgid))
		return true;
	/* The bitmap is sized from pid_max at load: a pid above it (pid_max
	 * raised since) has no bit, so none of its samples would count. Not
	 * tracked, counted like a full set. */
	w = mb_tracked_word(tgid);
	if (!w) {
		mb_count(MB_CTR_TRACKED_FULL);
		return false;
	}
	err = bpf_map_update_elem(&tracked, &tgid, &t, BPF_NOEXIST);
	if (err == 0) {
		__sync_fetch_and_or(w, 1ULL << (tgid % 64));
		mb_proc_event(MB_PROC_FORK, tgid, parent, 0);
		return true;
	}
	if (err == -17 /* EEXIST: a racing insert */)
		return true;
	mb_count(MB_CTR_TRACKED_FULL);
	return false;
}

/*
 * Whether samples of the current task count. With --all and --cgroup the
 * tracked set records the processes seen, so their exits are reported too.
 */
static __always_inline bool mb_current_wanted(__u32 tgid)
{
	if (tgid == 0 || tgid == self_tgid)
		return false;
	if (track_all)
		return mb_track(tgid, 0, 0);
	if (track_cgroup) {
		if (bpf_current_task_under_cgroup(&cgroup_filter, 0) != 1)
			return false;
		return mb_track(tgid, 0, 0);
	}
	return mb_is_tracked(tgid);
}

/* Removes tgid from both forms of the tracked set; true if it was there. */
static __always_inline bool mb_untrack(__u32 tgid)
{
	__u64 *w = mb_tracked_word(tgid);

	if (w)
		__sync_fetch_and_and(w, ~(1ULL << (tgid % 64)));
	bpf_map_delete_elem(&maps_changed, &tgid);
	return bpf_map_delete_elem(&tracked, &tgid) == 0;
}

/*
 * A tracked process's maps changed (a system call that maps, unmaps or
 * remaps succeeded): the first such time since the recorder last read its
 * maps is when its next maps change took effect. Set only if absent: a
 * lookup, and one update per process and look. The first also tells the
 * recorder (MB_PROC_MAPS), which then reads the maps soon: a later change
 * (a library swapped after an unrelated mmap) gets its own time. At most
 * one event per process and look: how often the recorder looks bounds them.
 * An entry the full map cannot take leaves the change timed at the look, as
 * without this.
 */
static __always_inline void mb_maps_changed(long ret)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 now;

	if (ret < 0 && ret >= -4095) /* an error: nothing changed */
		return;
	if (!mb_is_tracked(tgid) || bpf_map_lookup_elem(&maps_changed, &tgid))
		return;
	now = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&maps_changed, &tgid, &now, BPF_NOEXIST) == 0)
		mb_proc_event_at(MB_PROC_MAPS, tgid, 0, 0, now);
}

#endif
