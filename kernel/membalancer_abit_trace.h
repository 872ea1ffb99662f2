/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tracepoints of the membalancer helper module. membalancer's BPF object
 * attaches a raw_tp program to membalancer:abit_access and reads ctx[0..3]
 * as (pid, addr, page_shift, node): keep TP_PROTO in this order.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM membalancer

#if !defined(_MEMBALANCER_ABIT_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _MEMBALANCER_ABIT_TRACE_H

#include <linux/tracepoint.h>

/* One accessed page (base page or huge PMD) found by the scanner.
 * pid: thread-group id in the initial pid namespace; addr: virtual address
 * of the page (aligned to 1 << page_shift); node: page_to_nid, -1 unknown. */
TRACE_EVENT(abit_access,
	TP_PROTO(int pid, unsigned long addr, unsigned int page_shift, int node),
	TP_ARGS(pid, addr, page_shift, node),
	TP_STRUCT__entry(
		__field(int, pid)
		__field(unsigned long, addr)
		__field(unsigned int, page_shift)
		__field(int, node)
	),
	TP_fast_assign(
		__entry->pid = pid;
		__entry->addr = addr;
		__entry->page_shift = page_shift;
		__entry->node = node;
	),
	TP_printk("pid=%d addr=0x%lx page_shift=%u node=%d",
		  __entry->pid, __entry->addr, __entry->page_shift, __entry->node)
);

/* Once per pid per pass: base (4 KiB) pages whose entries were examined and
 * found accessed, and the time spent on this pid in this pass. */
TRACE_EVENT(abit_pass,
	TP_PROTO(int pid, unsigned long pages_scanned, unsigned long pages_accessed, u64 duration_ns),
	TP_ARGS(pid, pages_scanned, pages_accessed, duration_ns),
	TP_STRUCT__entry(
		__field(int, pid)
		__field(unsigned long, pages_scanned)
		__field(unsigned long, pages_accessed)
		__field(u64, duration_ns)
	),
	TP_fast_assign(
		__entry->pid = pid;
		__entry->pages_scanned = pages_scanned;
		__entry->pages_accessed = pages_accessed;
		__entry->duration_ns = duration_ns;
	),
	TP_printk("pid=%d pages_scanned=%lu pages_accessed=%lu duration_ns=%llu",
		  __entry->pid, __entry->pages_scanned, __entry->pages_accessed,
		  (unsigned long long)__entry->duration_ns)
);

#endif /* _MEMBALANCER_ABIT_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE membalancer_abit_trace
#include <trace/define_trace.h>
