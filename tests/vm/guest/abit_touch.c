// SPDX-License-Identifier: GPL-2.0
/*
 * Guest workload for the helper-module VM tests (built static by vm.mk).
 * Maps a hot and a cold anonymous region far apart (so they never merge),
 * touches every page of both once, then keeps touching the hot one.
 *
 *   abit_touch [--hot-mb N] [--cold-mb N] [--thp|--nothp] [--duration S]
 *              [--node N] [--threads N] [--leader-exit] [--exec-on-usr1]
 *              [--special N]
 *
 * Prints one line, then runs until killed or the duration ends:
 *   pid=P hot=0xA-0xB cold=0xC-0xD
 * --thp: regions 2 MiB aligned with MADV_HUGEPAGE; --nothp: MADV_NOHUGEPAGE.
 * --node N: bind both regions to node N (mbind). --threads N: also start N
 * idle threads (tests of the per-file pid limit; every tid can be added).
 * --leader-exit: a second thread does the work while the main thread (the
 * thread-group leader) leaves with pthread_exit: a zombie leader, no mm.
 * --exec-on-usr1: on SIGUSR1, execve itself again (without this option): the
 * new image maps and touches its own regions and prints a second line.
 * --special N: also map N separate read-only pages of /dev/mem (the legacy
 * VGA hole, allowed under STRICT_DEVMEM): VM_IO|VM_PFNMAP mappings, which
 * never merge and which the module skips.
 */
#include <fcntl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024UL * 1024UL)
#define HUGE (2 * MIB)

static volatile sig_atomic_t stop, reexec;
static void on_alarm(int sig) { (void)sig; stop = 1; }
static void on_usr1(int sig) { (void)sig; reexec = 1; }
static char **args;

/* A 2 MiB aligned region of len bytes inside a larger reservation that
 * leaves unmapped guard space on both sides. */
static int bind_node = -1;

static void *idle_thread(void *arg) { (void)arg; for (;;) pause(); return NULL; }

static char *map_region(size_t len, int advice)
{
	size_t span = len + 4 * HUGE;
	char *p = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) { perror("mmap"); exit(1); }
	char *a = (char *)(((uintptr_t)p + 2 * HUGE) & ~(HUGE - 1));
	munmap(p, a - p);
	munmap(a + len, p + span - (a + len));
	if (mprotect(a, len, PROT_READ | PROT_WRITE)) { perror("mprotect"); exit(1); }
	if (advice >= 0 && madvise(a, len, advice)) perror("madvise");
	if (bind_node >= 0) {
		unsigned long mask[16] = { 0 };
		mask[bind_node / 64] = 1UL << (bind_node % 64);
		/* MPOL_BIND = 2 */
		if (syscall(SYS_mbind, a, len, 2, mask, 1024UL, 0)) { perror("mbind"); exit(1); }
	}
	return a;
}

static size_t hot_mb = 4, cold_mb = 16;
static int advice = -1, duration = 0, special = 0;

static void map_special(int n)
{
	int fd = open("/dev/mem", O_RDONLY);
	if (fd < 0) { perror("/dev/mem"); exit(1); }
	for (int i = 0; i < n; i++) {
		/* Each its own VMA: remap_pfn_range adds VM_IO|VM_PFNMAP,
		 * and such VMAs never merge. */
		if (mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0xA0000) == MAP_FAILED) {
			fprintf(stderr, "mmap /dev/mem #%d: %s\n", i, strerror(errno));
			exit(1);
		}
	}
	close(fd);
}

/* Maps and touches both regions, then keeps the hot one hot. */
static void *work(void *arg)
{
	(void)arg;
	size_t hot_len = hot_mb * MIB, cold_len = cold_mb * MIB;
	char *cold = map_region(cold_len, advice);
	char *hot = map_region(hot_len, advice);
	if (special > 0) map_special(special);
	for (size_t o = 0; o < cold_len; o += 4096) cold[o] = 1;
	for (size_t o = 0; o < hot_len; o += 4096) hot[o] = 1;
	printf("pid=%d hot=%p-%p cold=%p-%p\n", getpid(), (void *)hot, (void *)(hot + hot_len),
	       (void *)cold, (void *)(cold + cold_len));
	fflush(stdout);
	if (duration > 0) { signal(SIGALRM, on_alarm); alarm(duration); }
	unsigned long passes = 0;
	while (!stop) {
		for (size_t o = 0; o < hot_len; o += 4096) hot[o]++;
		passes++;
		if (reexec) {
			execv("/proc/self/exe", args);
			perror("execv");
			exit(1);
		}
	}
	fprintf(stderr, "abit_touch: %lu passes over the hot region\n", passes);
	exit(0);
}

int main(int argc, char **argv)
{
	int threads = 0, leader_exit = 0, n = 0;
	args = calloc(argc + 1, sizeof(*args));
	args[n++] = argv[0];
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--exec-on-usr1")) { signal(SIGUSR1, on_usr1); continue; }
		args[n++] = argv[i];	/* the exec'd image gets the rest */
		if (!strcmp(argv[i], "--hot-mb") && i + 1 < argc) hot_mb = strtoul(args[n++] = argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--cold-mb") && i + 1 < argc) cold_mb = strtoul(args[n++] = argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--duration") && i + 1 < argc) duration = atoi(args[n++] = argv[++i]);
		else if (!strcmp(argv[i], "--node") && i + 1 < argc) bind_node = atoi(args[n++] = argv[++i]);
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(args[n++] = argv[++i]);
		else if (!strcmp(argv[i], "--thp")) advice = MADV_HUGEPAGE;
		else if (!strcmp(argv[i], "--nothp")) advice = MADV_NOHUGEPAGE;
		else if (!strcmp(argv[i], "--leader-exit")) leader_exit = 1;
		else if (!strcmp(argv[i], "--special") && i + 1 < argc) special = atoi(args[n++] = argv[++i]);
		else { fprintf(stderr, "usage: %s [--hot-mb N] [--cold-mb N] [--thp|--nothp] [--duration S] [--node N] [--threads N] [--leader-exit] [--exec-on-usr1] [--special N]\n", argv[0]); return 2; }
	}
	if (bind_node < 0 || bind_node >= 1024) bind_node = bind_node < 0 ? -1 : 0;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	for (int t = 0; t < threads; t++) {
		pthread_t th;
		if (pthread_create(&th, &attr, idle_thread, NULL)) { fprintf(stderr, "pthread_create failed at %d\n", t); return 1; }
	}
	if (leader_exit) {
		pthread_t th;
		if (pthread_create(&th, NULL, work, NULL)) { fprintf(stderr, "pthread_create failed\n"); return 1; }
		pthread_exit(NULL);
	}
	work(NULL);
	return 0;
}
