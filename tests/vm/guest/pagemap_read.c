// SPDX-License-Identifier: GPL-2.0
/*
 * Cost baseline for the accessed-bit scanner (bench/abit_cost.sh): reads the
 * /proc/PID/pagemap entries of the given ranges ROUNDS times, the way a
 * user-space scanner would, and prints
 *   pagemap pages=<pages per round> present=<present> rounds=<n> ns_per_round=<ns> cpu_ns_per_round=<ns>
 *
 *   pagemap_read PID ROUNDS 0xSTART-0xEND [0xSTART-0xEND ...]
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s PID ROUNDS 0xSTART-0xEND...\n", argv[0]);
		return 2;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/%s/pagemap", argv[1]);
	int rounds = atoi(argv[2]);
	if (rounds < 1) rounds = 1;
	int fd = open(path, O_RDONLY);
	if (fd < 0) { perror(path); return 1; }
	enum { CHUNK = 4096 };
	static uint64_t buf[CHUNK];
	uint64_t pages = 0, present = 0;
	uint64_t t0 = now_ns(CLOCK_MONOTONIC), c0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
	for (int r = 0; r < rounds; r++) {
		pages = present = 0;
		for (int a = 3; a < argc; a++) {
			char *dash = strchr(argv[a], '-');
			if (!dash) { fprintf(stderr, "bad range %s\n", argv[a]); return 2; }
			uint64_t start = strtoull(argv[a], NULL, 16) / 4096, end = strtoull(dash + 1, NULL, 16) / 4096;
			for (uint64_t p = start; p < end; p += CHUNK) {
				uint64_t n = end - p < CHUNK ? end - p : CHUNK;
				ssize_t got = pread(fd, buf, n * 8, (off_t)(p * 8));
				if (got < 0) { perror("pread"); return 1; }
				for (ssize_t i = 0; i < got / 8; i++)
					present += buf[i] >> 63;
			}
			pages += end - start;
		}
	}
	uint64_t t1 = now_ns(CLOCK_MONOTONIC), c1 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
	printf("pagemap pages=%llu present=%llu rounds=%d ns_per_round=%llu cpu_ns_per_round=%llu\n",
	       (unsigned long long)pages, (unsigned long long)present, rounds,
	       (unsigned long long)((t1 - t0) / rounds), (unsigned long long)((c1 - c0) / rounds));
	return 0;
}
