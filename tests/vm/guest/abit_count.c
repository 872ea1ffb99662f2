// SPDX-License-Identifier: GPL-2.0
/*
 * Reads tracefs text (membalancer:abit_access lines) on stdin and, for each
 * range given, prints how many distinct 4 KiB pages of it the reports cover
 * (a page_shift=21 report covers 512), the reports per page_shift, and the
 * nodes seen:
 *   abit_count 0xA-0xB [0xC-0xD ...]
 *   -> range=0xA-0xB pages=N covered=M reports=R shift12=X shift21=Y nodes=0,1
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct range {
	uint64_t start, end;
	unsigned char *seen;
	unsigned long reports, s12, s21, other;
	unsigned long nodes; /* bit n: node n seen; bit 63: -1 */
};

int main(int argc, char **argv)
{
	int n = argc - 1;
	struct range *r = calloc(n ? n : 1, sizeof(*r));
	for (int i = 0; i < n; i++) {
		char *dash = strchr(argv[i + 1], '-');
		if (!dash) { fprintf(stderr, "bad range %s\n", argv[i + 1]); return 2; }
		r[i].start = strtoull(argv[i + 1], NULL, 16);
		r[i].end = strtoull(dash + 1, NULL, 16);
		r[i].seen = calloc((r[i].end - r[i].start) / 4096 + 1, 1);
	}
	char line[1024];
	while (fgets(line, sizeof(line), stdin)) {
		char *p = strstr(line, "abit_access: ");
		if (!p) continue;
		unsigned long long addr; unsigned shift; int pid, node;
		if (sscanf(p, "abit_access: pid=%d addr=%llx page_shift=%u node=%d", &pid, &addr, &shift, &node) != 4) continue;
		uint64_t len = 1ull << shift;
		for (int i = 0; i < n; i++) {
			if (addr + len <= r[i].start || addr >= r[i].end) continue;
			r[i].reports++;
			if (shift == 12) r[i].s12++; else if (shift == 21) r[i].s21++; else r[i].other++;
			r[i].nodes |= node < 0 ? 1ul << 63 : node < 63 ? 1ul << node : 0;
			for (uint64_t a = addr; a < addr + len; a += 4096)
				if (a >= r[i].start && a < r[i].end) r[i].seen[(a - r[i].start) / 4096] = 1;
		}
	}
	for (int i = 0; i < n; i++) {
		unsigned long pages = (r[i].end - r[i].start) / 4096, covered = 0;
		for (unsigned long k = 0; k < pages; k++) covered += r[i].seen[k];
		printf("range=%s pages=%lu covered=%lu reports=%lu shift12=%lu shift21=%lu other=%lu nodes=",
		       argv[i + 1], pages, covered, r[i].reports, r[i].s12, r[i].s21, r[i].other);
		int first = 1;
		for (int b = 0; b < 63; b++)
			if (r[i].nodes & (1ul << b)) { printf("%s%d", first ? "" : ",", b); first = 0; }
		if (r[i].nodes & (1ul << 63)) printf("%s-1", first ? "" : ",");
		printf("\n");
	}
	return 0;
}
