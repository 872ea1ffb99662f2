// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The membalancer BPF object: one sample path for every source.
 *   on_perf_sample  perf_event  IBS op, PEBS loads, software page faults
 *   on_abit_access  raw_tp      the helper module's accessed-bit reports
 *   on_fork/on_exit tp_btf      keep the tracked process tree
 *   on_exec         tp_btf      tell user space a tracked process exec'd
 *   on_*_return     fexit       time a recorder's maps changes (or
 *   on_*_exit       tracepoint    where there are no trampolines, or
 *   on_sys_exit     tp_btf        where there are no syscall events)
 * Each source is decoded into a struct mb_access and counted by mb_record().
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "membalancer/records.h"
#include "membalancer/ibs.h"
#include "membalancer/pebs.h"
#include "maps.bpf.h"
#include "core_fixes.bpf.h"
#include "page_table.bpf.h"
#include "proctree.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * A consumer that read the ring empty sleeps with no timer: wake it for the
 * sample just committed. Looked at after the commit, whose xchg orders the
 * record before this load; the consumer sets the flag, then (after a full
 * fence) reads the ring, so either it read this record or this sees the flag.
 * Looked at before, a record still being written when the consumer read the
 * ring would be left unread. The wake-up comes from an empty record,
 * discarded (the consumer skips it): the sample's own flags are already spent.
 */
static __always_inline void mb_wake_sleeping_consumer(void)
{
	__u64 *wake;

	if (!sample_consumer_asleep)
		return;
	sample_consumer_asleep = 0;
	wake = bpf_ringbuf_reserve(&samples, sizeof(*wake), 0);
	if (wake) /* else the ring is full, and its fill level woke the consumer */
		bpf_ringbuf_discard(wake, BPF_RB_FORCE_WAKEUP);
}

static __always_inline void mb_stream(__u32 tgid, __u32 tid, __u32 cpu,
				      const struct mb_cpu_info *ci, __u16 mem_node,
				      const struct mb_access *acc, __u64 now)
{
	struct mb_sample *s = bpf_ringbuf_reserve(&samples, sizeof(*s), 0);
	__u64 flags = 0;

	if (!s) {
		mb_count(MB_CTR_SAMPLES_LOST);
		return;
	}
	s->time_ns = now;
	s->tgid = tgid;
	s->tid = tid;
	s->cpu = cpu;
	s->cpu_node = ci ? ci->node : MB_NODE_UNKNOWN;
	s->mem_node = mem_node;
	s->vaddr = acc->vaddr;
	s->paddr = acc->paddr;
	s->ip = acc->ip;
	s->latency = acc->latency;
	s->data_source = acc->data_source;
	s->flags = acc->flags;
	s->sampler = sampler_kind;
	__builtin_memset(s->reserved, 0, sizeof(s->reserved));
	/* No wake-up while little waits: the consumer reads on a short timer
	 * (or, asleep on an empty ring, is woken below). Past the fill level,
	 * wake it so the ring does not fill up. With no consumer waiting, never:
	 * the reader's own clock drains the ring, and a full ring counts its
	 * losses above. */
	if (!sample_consumer_waits)
		flags = BPF_RB_NO_WAKEUP;
	else if (sample_wakeup_bytes)
		flags = bpf_ringbuf_query(&samples, BPF_RB_AVAIL_DATA) >= sample_wakeup_bytes ?
				BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(s, flags);
	if (sample_consumer_waits && sample_wakeup_bytes)
		mb_wake_sleeping_consumer();
}

/* Counts one decoded access of (tgid, tid) seen on cpu (or no cpu: ~0). */
static __always_inline void mb_record(__u32 tgid, __u32 tid, __u32 cpu,
				      const struct mb_access *acc)
{
	const struct mb_cpu_info *ci = NULL;
	__u16 mem_node = MB_NODE_UNKNOWN;
	/* Only streamed samples need the precise clock (about 40 ns here). */
	__u64 now = stream_samples ? bpf_ktime_get_ns() : 0;
	struct mb_tracked *t;

	/* A streamed sample is its program's by time: one taken while an exec
	 * builds the new program's address space moves that exec's event back
	 * to it (on_exec). */
	if (stream_samples && mb_exec_building_mm()) {
		t = bpf_map_lookup_elem(&tracked, &tgid);
		if (t && !t->exec_sample_ns)
			t->exec_sample_ns = now;
	}

	if (!(acc->flags & MB_ACC_VADDR)) {
		mb_count(MB_CTR_NO_ADDRESS);
		/* The profiler's cpu-clock sampler: code samples with only an
		 * instruction pointer are streamed, never counted into pages.
		 * stream_samples is read-only: without it this is dead code. */
		if (stream_samples && (acc->flags & MB_ACC_IP)) {
			if (cpu != ~0U)
				ci = bpf_map_lookup_elem(&cpu_info, &cpu);
			mb_stream(tgid, tid, cpu, ci, MB_NODE_UNKNOWN, acc, now);
		}
		return;
	}
	if (cpu != ~0U)
		ci = bpf_map_lookup_elem(&cpu_info, &cpu);
	if (acc->flags & MB_ACC_PADDR)
		mem_node = mb_phys_node(acc->paddr);
	mb_count(MB_CTR_ACCEPTED);
	/* One sampled access touches one base page, whatever the page size. */
	mb_page_account(tgid, acc->vaddr, ci, mem_node, false);
	if (tid)
		mb_task_account(tgid, tid, cpu, ci ? ci->node : MB_NODE_UNKNOWN,
				mem_node);
	if (stream_samples)
		mb_stream(tgid, tid, cpu, ci, mem_node, acc, now);
}

/* IBS: the registers come in the raw record attached to the sample. */
static __always_inline int mb_decode_ibs(struct perf_sample_data *data,
					 struct mb_access *acc)
{
	struct perf_raw_record *raw;
	struct mb_ibs_op_regs regs = {};
	const char *bytes;
	__u32 size, caps = 0;

	if (!mb_sample_has(data, PERF_SAMPLE_RAW))
		return -1;
	raw = BPF_CORE_READ(data, raw);
	if (!raw)
		return -1;
	bytes = BPF_CORE_READ(raw, frag.data);
	size = BPF_CORE_READ(raw, frag.size);
	if (!bytes || size < MB_IBS_RAW_MIN_SIZE)
		return -1;
	if (bpf_probe_read_kernel(&caps, sizeof(caps), bytes) ||
	    bpf_probe_read_kernel(&regs, sizeof(regs), bytes + MB_IBS_RAW_REGS_OFFSET))
		return -1;
	return mb_ibs_op_decode(&regs, caps, acc);
}

SEC("perf_event")
int on_perf_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;
	struct bpf_perf_event_data_kern *kctx = (void *)ctx;
	struct perf_sample_data *data;
	struct mb_access acc = {};

	if (!mb_current_wanted(tgid)) {
		mb_count(MB_CTR_FILTERED);
		return 0;
	}
	switch (sampler_kind) {
	case MB_SAMPLER_IBS:
		data = BPF_CORE_READ(kctx, data);
		if (mb_decode_ibs(data, &acc)) {
			mb_count(MB_CTR_DECODE_INVALID);
			return 0;
		}
		break;
	case MB_SAMPLER_PEBS:
		data = BPF_CORE_READ(kctx, data);
		mb_perf_mem_decode(perf_sample_type,
				   mb_sample_has(data, PERF_SAMPLE_ADDR) ? ctx->addr : 0,
				   mb_sample_has(data, PERF_SAMPLE_PHYS_ADDR) ?
					   BPF_CORE_READ(data, phys_addr) : 0,
				   mb_sample_has(data, PERF_SAMPLE_DATA_SRC) ?
					   BPF_CORE_READ(data, data_src.val) : 0,
				   mb_sample_has(data, PERF_SAMPLE_WEIGHT | PERF_SAMPLE_WEIGHT_STRUCT) ?
					   mb_sample_weight(data) : 0,
				   &acc);
		break;
	case MB_SAMPLER_CPU_CLOCK: /* profiler: where the code runs, no data address */
		acc.ip = PT_REGS_IP(&ctx->regs);
		acc.flags = MB_ACC_IP;
		break;
	default: /* software page faults: the fault address */
		/* 6.1 leaves data->addr unwritten for a fault at address 0:
		 * such a sample has no address (mb_record counts it). */
		data = BPF_CORE_READ(kctx, data);
		if (mb_sample_has(data, PERF_SAMPLE_ADDR)) {
			acc.vaddr = ctx->addr;
			acc.flags = MB_ACC_VADDR;
		}
		/* The faulting instruction, for the profiler's code view. Only
		 * streamed samples carry it: without stream_samples (read-only)
		 * the verifier drops this and the handler costs what it did. */
		if (stream_samples) {
			acc.ip = PT_REGS_IP(&ctx->regs);
			acc.flags |= MB_ACC_IP;
		}
		break;
	}
	mb_record(tgid, tid, bpf_get_smp_processor_id(), &acc);
	return 0;
}

/*
 * membalancer:abit_access(int pid, unsigned long addr, unsigned int page_shift,
 * int node) from the helper module: the page was accessed since the last pass.
 * No CPU and no thread are known; the node is.
 */
SEC("raw_tp/abit_access")
int on_abit_access(__u64 *ctx)
{
	__u32 tgid = (__u32)ctx[0];
	__u64 addr = ctx[1];
	__u32 page_shift = (__u32)ctx[2];
	int node = (int)ctx[3];
	struct mb_access acc = { .vaddr = addr, .flags = MB_ACC_VADDR };
	__u16 mem_node = node >= 0 && node < MB_NODE_UNKNOWN ? node : MB_NODE_UNKNOWN;

	if (!mb_is_tracked(tgid)) {
		mb_count(MB_CTR_FILTERED);
		return 0;
	}
	/* The walk saw the page's size: a base page says so too (replay
	 * reads it as a split huge page, not a sample of unknown size). */
	acc.flags |= page_shift > MB_PAGE_SHIFT ? MB_ACC_HUGE : MB_ACC_BASE_PAGE;
	mb_count(MB_CTR_ACCEPTED);
	/* An accessed bit covers the whole page: a huge page counts once, at
	 * its first base page, flagged so that user space spreads it over its
	 * 512 base pages. */
	if (page_shift == MB_HUGE_PAGE_SHIFT)
		addr &= ~((1ULL << MB_HUGE_PAGE_SHIFT) - 1);
	mb_page_account(tgid, addr, NULL, mem_node, page_shift == MB_HUGE_PAGE_SHIFT);
	if (stream_samples)
		mb_stream(tgid, 0, ~0U, NULL, mem_node, &acc, bpf_ktime_get_ns());
	return 0;
}

/*
 * Tests and benchmarks only (autoload off unless asked for): streams
 * args->count made-up samples through mb_stream, the path real samples take
 * to the ring buffer, so the consumer can be measured at rates no software
 * event reaches. Run with BPF_PROG_TEST_RUN.
 */
struct mb_synth_state {
	struct mb_synth_args args;
	__u64 now;
};

static long mb_synth_one(__u64 i, struct mb_synth_state *st)
{
	struct mb_access acc = {
		.vaddr = st->args.vaddr +
			 ((st->args.pages ? i % st->args.pages : i) << MB_PAGE_SHIFT),
		.ip = 0x401000 + (i & 0xff) * 16,
		.flags = MB_ACC_VADDR | MB_ACC_IP,
	};

	mb_stream(st->args.tgid, st->args.tgid, 0, NULL, MB_NODE_UNKNOWN, &acc,
		  st->now + i);
	return 0;
}

SEC("syscall")
int synth_samples(struct mb_synth_args *args)
{
	struct mb_synth_state st = { .args = *args, .now = bpf_ktime_get_ns() };

	bpf_loop(st.args.count, mb_synth_one, &st, 0);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);

	if (ctgid == ptgid || !follow_forks)
		return 0; /* a new thread, or tracking needs no tree */
	if (mb_is_tracked(ptgid))
		mb_track(ctgid, ptgid, MB_TRACKED_FORKED);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *p)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);
	__u32 tid = BPF_CORE_READ(p, pid);
	struct mb_task_stats *ts = mb_task_slot(tid, false);

	if (ts)
		ts->flags |= MB_TASK_EXITED;
	if (!mb_group_dead(p))
		return 0;
	if (mb_untrack(tgid))
		mb_proc_event(MB_PROC_EXIT, tgid, 0, 0);
	return 0;
}

/*
 * A tracked process replaced its program: its name and maps changed, and the
 * pages of its old image are gone. Fires after the new image is in place
 * (exec_binprm, with the new mm), so user space reading /proc/PID/maps on
 * this event sees the new program. Untracked processes send nothing.
 */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);
	struct mb_task_stats *ts;
	struct mb_tracked *t;
	__u64 exec_ns;

	if (!mb_is_tracked(tgid))
		return 0;
	exec_ns = bpf_ktime_get_ns();
	t = bpf_map_lookup_elem(&tracked, &tgid);
	if (t) {
		__sync_fetch_and_add(&t->execs, 1);
		/* Samples were taken in the new address space before this
		 * tracepoint: the new program began at the first of them. */
		exec_ns = t->exec_sample_ns ?: exec_ns;
		t->exec_sample_ns = 0;
	}
	/* A thread other than the leader exec'd: it now runs as tgid, and its
	 * old id's entry gets no more samples. Read one last time and freed,
	 * as at an exit. (The leader's entry was marked by its exit.) */
	if ((__u32)old_pid != tgid) {
		ts = mb_task_slot(old_pid, false);
		if (ts)
			ts->flags |= MB_TASK_EXITED;
	}
	mb_proc_event_at(MB_PROC_EXEC, tgid, 0, old_pid, exec_ns);
	return 0;
}

/* x86-64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl) of
 * the calls that change a process's maps. */
enum mb_maps_syscall {
	MB_NR_MMAP = 9,
	MB_NR_MPROTECT = 10,
	MB_NR_MUNMAP = 11,
	MB_NR_BRK = 12,
	MB_NR_MREMAP = 25,
	MB_NR_SHMAT = 30,
	MB_NR_SHMDT = 67,
	MB_NR_PKEY_MPROTECT = 329,
};

/*
 * A system call's return, for the calls that change a process's maps (only
 * loaded for a recorder). A library swapped at one address (dlclose, then
 * dlopen) is faulted in at once: timed at the next look, its first samples
 * would be found in the mapping it replaced. The unmap is where the old
 * mapping ended, and nothing can touch the range between it and the new
 * mapping. brk's return is the break either way (no error code).
 *
 * Three ways to see them, cheapest first; user space loads one:
 *  - fexit on each call's x86-64 entry point: runs for those calls only,
 *    where the kernel has BPF trampolines;
 *  - the syscalls:sys_exit_<call> tracepoints (CONFIG_FTRACE_SYSCALLS):
 *    every system call of the machine takes the kernel's slow exit path
 *    while one is enabled, but the program runs for those calls only;
 *  - the sys_exit raw tracepoint: needs neither, but the program runs at
 *    every system call's return on the machine (the number is looked at
 *    first).
 */

/* The syscalls:sys_exit_<call> record (its tracefs format file). */
struct mb_syscall_exit {
	__u64 common;
	int nr;
	long ret;
};

#define MB_MAPS_CALL(name)                                                \
	SEC("fexit/__x64_sys_" #name)                                     \
	int BPF_PROG(on_##name##_return, const struct pt_regs *regs, long ret) \
	{                                                                 \
		mb_maps_changed(ret);                                     \
		return 0;                                                 \
	}                                                                 \
	SEC("tracepoint/syscalls/sys_exit_" #name)                        \
	int on_##name##_exit(struct mb_syscall_exit *ctx)                  \
	{                                                                 \
		mb_maps_changed(ctx->ret);                                \
		return 0;                                                 \
	}

MB_MAPS_CALL(mmap)
MB_MAPS_CALL(mprotect)
MB_MAPS_CALL(munmap)
MB_MAPS_CALL(brk)
MB_MAPS_CALL(mremap)
MB_MAPS_CALL(shmat)
MB_MAPS_CALL(shmdt)
MB_MAPS_CALL(pkey_mprotect)

SEC("tp_btf/sys_exit")
int BPF_PROG(on_sys_exit, struct pt_regs *regs, long ret)
{
	switch (regs->orig_ax) {
	case MB_NR_MMAP:
	case MB_NR_MPROTECT:
	case MB_NR_MUNMAP:
	case MB_NR_BRK:
	case MB_NR_MREMAP:
	case MB_NR_SHMAT:
	case MB_NR_SHMDT:
	case MB_NR_PKEY_MPROTECT:
		mb_maps_changed(ret);
	}
	return 0;
}
