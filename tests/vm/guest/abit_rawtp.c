// SPDX-License-Identifier: GPL-2.0
/*
 * Checks that a BPF raw_tp program can attach to the module's abit_access
 * tracepoint and read its arguments as ctx[0..3] = pid, addr, page_shift,
 * node — the contract membalancer's BPF object relies on. Raw bpf(2), no
 * libbpf, so that it builds static for the VM.
 *   abit_rawtp SECONDS  ->  rawtp count=N pid=P addr=0x... shift=S node=N
 */
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static long bpf(int cmd, union bpf_attr *attr)
{
	return syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })

int main(int argc, char **argv)
{
	int secs = argc > 1 ? atoi(argv[1]) : 1;
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_type = BPF_MAP_TYPE_ARRAY;
	a.key_size = 4;
	a.value_size = 5 * 8;
	a.max_entries = 1;
	int map = bpf(BPF_MAP_CREATE, &a);
	if (map < 0) { perror("BPF_MAP_CREATE"); return 1; }

	struct bpf_insn prog[] = {
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0),          /* r6 = ctx */
		INSN(BPF_LD | BPF_DW | BPF_IMM, 1, BPF_PSEUDO_MAP_FD, 0, map),
		INSN(0, 0, 0, 0, 0),
		INSN(BPF_ST | BPF_MEM | BPF_W, 10, 0, -4, 0),           /* key = 0 */
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0),
		INSN(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -4),
		INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),
		INSN(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 10, 0),           /* !r0 -> out */
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, 1, 0, 0, 1),
		INSN(BPF_STX | BPF_ATOMIC | BPF_DW, 0, 1, 0, BPF_ADD),  /* count++ */
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 1, 6, 0, 0),           /* ctx[0] pid */
		INSN(BPF_STX | BPF_MEM | BPF_DW, 0, 1, 8, 0),
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 1, 6, 8, 0),           /* ctx[1] addr */
		INSN(BPF_STX | BPF_MEM | BPF_DW, 0, 1, 16, 0),
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 1, 6, 16, 0),          /* ctx[2] page_shift */
		INSN(BPF_STX | BPF_MEM | BPF_DW, 0, 1, 24, 0),
		INSN(BPF_LDX | BPF_MEM | BPF_DW, 1, 6, 24, 0),          /* ctx[3] node */
		INSN(BPF_STX | BPF_MEM | BPF_DW, 0, 1, 32, 0),
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0),          /* out: */
		INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	static char log[65536];
	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_RAW_TRACEPOINT;
	a.insns = (uintptr_t)prog;
	a.insn_cnt = sizeof(prog) / sizeof(prog[0]);
	a.license = (uintptr_t)"GPL";
	a.log_buf = (uintptr_t)log;
	a.log_size = sizeof(log);
	a.log_level = 1;
	int pfd = bpf(BPF_PROG_LOAD, &a);
	if (pfd < 0) { perror("BPF_PROG_LOAD"); fputs(log, stderr); return 1; }
	memset(&a, 0, sizeof(a));
	a.raw_tracepoint.name = (uintptr_t)"abit_access";
	a.raw_tracepoint.prog_fd = pfd;
	int tfd = bpf(BPF_RAW_TRACEPOINT_OPEN, &a);
	if (tfd < 0) { perror("BPF_RAW_TRACEPOINT_OPEN abit_access"); return 1; }
	sleep(secs);
	uint32_t key = 0;
	uint64_t v[5] = { 0 };
	memset(&a, 0, sizeof(a));
	a.map_fd = map;
	a.key = (uintptr_t)&key;
	a.value = (uintptr_t)v;
	if (bpf(BPF_MAP_LOOKUP_ELEM, &a)) { perror("BPF_MAP_LOOKUP_ELEM"); return 1; }
	printf("rawtp count=%llu pid=%d addr=0x%llx shift=%u node=%d\n", (unsigned long long)v[0],
	       (int)v[1], (unsigned long long)v[2], (unsigned)v[3], (int)v[4]);
	return 0;
}
