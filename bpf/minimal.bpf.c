// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Benchmark baseline: a perf_event program that only increments a counter.
 * bench/ compares the real handler's per-sample cost against this one. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

__u64 runs = 0;

SEC("perf_event")
int on_perf_sample_minimal(void *ctx)
{
	__sync_fetch_and_add(&runs, 1);
	return 0;
}
