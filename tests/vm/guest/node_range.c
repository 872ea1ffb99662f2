// SPDX-License-Identifier: GPL-2.0
/*
 * Where a range of a process's pages is, asked from the kernel with
 * move_pages(2) and no target nodes. Prints one line:
 *   pages=<n> present=<n> n0=<pages on node 0> n1=<...> ... (nodes 0..7)
 *
 *   node_range PID 0xSTART LENGTH_BYTES
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BATCH 4096

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s PID 0xSTART LENGTH_BYTES\n", argv[0]);
		return 2;
	}
	long pid = strtol(argv[1], NULL, 10);
	uint64_t start = strtoull(argv[2], NULL, 16);
	uint64_t len = strtoull(argv[3], NULL, 10);
	uint64_t pages = len / 4096, present = 0, per_node[8] = { 0 };
	static void *addrs[BATCH];
	static int status[BATCH];

	for (uint64_t done = 0; done < pages;) {
		uint64_t n = pages - done < BATCH ? pages - done : BATCH;
		for (uint64_t i = 0; i < n; i++)
			addrs[i] = (void *)(uintptr_t)(start + (done + i) * 4096);
		if (syscall(SYS_move_pages, pid, n, addrs, NULL, status, 0) < 0) {
			perror("move_pages");
			return 1;
		}
		for (uint64_t i = 0; i < n; i++) {
			if (status[i] < 0)
				continue;
			present++;
			if (status[i] < 8)
				per_node[status[i]]++;
		}
		done += n;
	}
	printf("pages=%llu present=%llu", (unsigned long long)pages, (unsigned long long)present);
	for (int i = 0; i < 8; i++)
		printf(" n%d=%llu", i, (unsigned long long)per_node[i]);
	printf("\n");
	return 0;
}
