# membalancer: the one entry point.
#   make          build everything into bin/
#   make test     install missing Debian packages, build, run unit, privileged and VM tests, 10 s per fuzz target
#   make demo     tiering for real: a hot set moves from a slow node to a fast one (a VM when the host has one node)
#   make bench    run the benchmarks, write docs/benchmarks.md
#   make soak     SOAK_MINUTES=30: membalancer on a churning tree; RSS, fds, map occupancy must stay flat (not in CI)
#   make install  PREFIX=/usr/local DESTDIR=
#   make module   build the helper kernel module (KVER=<version>, default: the VM kernel)

SHELL := /bin/bash
PREFIX ?= /usr/local
DESTDIR ?=

# SANITIZE=address,undefined or SANITIZE=thread builds every user-space program
# and test with those sanitizers (the BPF objects are built as always: clang
# -target bpf gets none of these flags). A sanitized build never shares objects
# with the normal one: BUILD and BIN default to build-san-TAG/ and bin-san-TAG/
# (TAG is SANITIZE with commas as dashes) unless given on the command line.
# `make test` then runs the sanitized suites (see "tests" below, docs/reliability.md).
SANITIZE ?=
comma := ,
SAN_TAG := $(subst $(comma),-,$(strip $(SANITIZE)))
ifneq ($(origin BUILD),command line)
BUILD := $(if $(SAN_TAG),build-san-$(SAN_TAG),build)
endif
ifneq ($(origin BIN),command line)
BIN := $(if $(SAN_TAG),bin-san-$(SAN_TAG),bin)
endif

CLANG ?= clang
BPFTOOL ?= bpftool
CXX ?= g++
CC ?= gcc
ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

# Every sanitizer report is an error: UBSan does not recover either.
SANFLAGS := $(if $(SANITIZE),-fsanitize=$(SANITIZE) -fno-sanitize-recover=all -fno-omit-frame-pointer,)

INCLUDES := -Iinclude -I$(BUILD) -I.
# Sanitized builds at -O1 with line tables only (-g1): quicker to build, and
# every check and every report's file:line are still there.
MB_OPT := $(if $(SANITIZE),-O1 -g1,-O2 -g)
CXXFLAGS ?= $(MB_OPT)
CXXFLAGS += -std=c++20 -Wall -Wextra -Werror=return-type -pthread $(INCLUDES) $(SANFLAGS)
CFLAGS ?= $(MB_OPT)
CFLAGS += -Wall $(INCLUDES) $(SANFLAGS)
LDFLAGS += -pthread $(SANFLAGS)
LIBS := -lbpf -lelf -lz -lnuma -ldw

# Debian 12 packages the build and the tests need; installed by `make deps`
# (without recommends). libclang-rt-14-dev is only a recommend of clang-14, but
# the fuzz targets cannot link without it (libFuzzer, clang's ASan and UBSan).
# lld (ld.lld, for g++ -fuse-ld=lld) links the symbolisation test programs
# whose segments are not at their file offsets.
DEB_PACKAGES := clang llvm libbpf-dev bpftool libelf-dev libdw-dev zlib1g-dev \
	libnuma-dev libcli11-dev libgtest-dev libbenchmark-dev pkg-config make g++ \
	qemu-system-x86 busybox-static cpio kmod libzstd-dev zstd xz-utils \
	file python3 nlohmann-json3-dev libclang-rt-14-dev lld

.SECONDARY:
.PHONY: all deps test unit-test integration-test bad-input-test vm-test demo bench soak install clean module

all: $(BIN)/membalancer $(BIN)/memexercise $(BIN)/churn $(BIN)/forkstorm $(BIN)/profiler $(BIN)/symtest $(BIN)/symtest_lld $(BIN)/exectest_first $(BIN)/exectest_second $(BIN)/unit_tests $(BIN)/integration_tests

# ---- dependencies (idempotent, no prompt) -----------------------------------
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# ---- BPF: vmlinux.h -> .bpf.o -> .skel.h ---------------------------------------
# vmlinux.h is generated from the build machine's BTF (not committed): CO-RE
# relocations make the object run on other kernels (the VM tests run it on 6.1).
$(BUILD)/vmlinux.h:
	@mkdir -p $(BUILD)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRCS))
BPF_SKELS := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.skel.h,$(BPF_SRCS))

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(BUILD)/vmlinux.h $(wildcard bpf/*.bpf.h include/membalancer/*.h)
	@mkdir -p $(dir $@)
	$(CLANG) -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) $(INCLUDES) -c $< -o $@

$(BUILD)/bpf/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(BPFTOOL) gen skeleton $< > $@.tmp && mv $@.tmp $@

# ---- user space ------------------------------------------------------------------
LIB_SRCS := $(filter-out membalancer/main.cpp,$(wildcard membalancer/*.cpp))
LIB_OBJS := $(patsubst %.cpp,$(BUILD)/%.o,$(LIB_SRCS))
LIB := $(BUILD)/libmembalancer.a

$(BUILD)/%.o: %.cpp | $(BPF_SKELS)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BIN)/membalancer: $(BUILD)/membalancer/main.o $(LIB)
	@mkdir -p $(BIN)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BIN)/memexercise: $(BUILD)/workloads/memexercise.o
	@mkdir -p $(BIN)
	$(CXX) $(LDFLAGS) -o $@ $^

# The soak test's workload: a tree whose processes, threads and memory come and go.
$(BIN)/churn: $(BUILD)/workloads/churn.o
	@mkdir -p $(BIN)
	$(CXX) $(LDFLAGS) -o $@ $^

# Fault injection's fork storm (tests/integration/test_faults.cpp).
$(BIN)/forkstorm: $(BUILD)/workloads/forkstorm.o
	@mkdir -p $(BIN)
	$(CXX) $(LDFLAGS) -o $@ $^

# ---- profiler: record / report / heatmap (profiler/, docs/profiler.md) -------------
PROF_SRCS := $(filter-out profiler/main.cpp,$(wildcard profiler/*.cpp))
PROF_LIB := $(BUILD)/libprofiler.a
$(PROF_LIB): $(patsubst %.cpp,$(BUILD)/%.o,$(PROF_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BIN)/profiler: $(BUILD)/profiler/main.o $(PROF_LIB) $(LIB)
	@mkdir -p $(BIN)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS)

# The symbolisation test program: a PIE whose hot function is chosen on its
# command line, in the executable or in a shared library next to it.
$(BIN)/libsymtest.so: workloads/symtest_lib.cpp
	@mkdir -p $(BIN)
	$(CXX) -O1 -g -fPIC -shared -fno-omit-frame-pointer -o $@ $<

$(BIN)/symtest: workloads/symtest.cpp $(BIN)/libsymtest.so
	@mkdir -p $(BIN)
	$(CXX) -O1 -g -fPIE -pie -fno-omit-frame-pointer -o $@ $< -L$(BIN) -lsymtest -Wl,-rpath,'$$ORIGIN'

# The same linked with lld, which places each segment a page above its file
# offset (p_vaddr = p_offset + 0x1000 for the code): the mapping of the code
# has file offset 0 without being where the file's offset 0 is loaded.
$(BIN)/libsymtest_lld.so: workloads/symtest_lib.cpp
	@mkdir -p $(BIN)
	$(CXX) -O1 -g -fPIC -shared -fno-omit-frame-pointer -fuse-ld=lld -o $@ $<

$(BIN)/symtest_lld: workloads/symtest.cpp $(BIN)/libsymtest_lld.so
	@mkdir -p $(BIN)
	$(CXX) -O1 -g -fPIE -pie -fno-omit-frame-pointer -fuse-ld=lld -o $@ $< -L$(BIN) -lsymtest_lld -Wl,-rpath,'$$ORIGIN'

# The exec test programs: two non-PIE executables at the same address, the
# first execs the second (one pid, two programs).
$(BIN)/exectest_first $(BIN)/exectest_second: $(BIN)/exectest_%: workloads/exectest.cpp
	@mkdir -p $(BIN)
	$(CXX) -O1 -g -fno-pie -no-pie -fno-omit-frame-pointer -DEXECTEST_SPIN=exectest_$*_spin -o $@ $<

$(BUILD)/bench/profiler_cost: $(PROF_LIB)
$(BUILD)/bench/profiler_cost: LIBS := $(PROF_LIB) $(LIB) $(LIBS)

UNIT_OBJS := $(patsubst %.cpp,$(BUILD)/%.o,$(wildcard tests/unit/*.cpp))
$(BIN)/unit_tests: $(UNIT_OBJS) $(PROF_LIB) $(LIB)
	@mkdir -p $(BIN)
	$(CXX) $(LDFLAGS) -o $@ $^ -lgtest_main -lgtest $(LIBS)

INTEG_OBJS := $(patsubst %.cpp,$(BUILD)/%.o,$(wildcard tests/integration/*.cpp))
$(BIN)/integration_tests: $(INTEG_OBJS) $(LIB)
	@mkdir -p $(BIN)
	$(CXX) $(LDFLAGS) -o $@ $^ -lgtest_main -lgtest $(LIBS)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---- tests ---------------------------------------------------------------------------
# Each suite appends "name passed failed skipped" to $(BUILD)/test-summary; the last line
# of `make test` is the plain "N passed, N failed" total.
#
# Sanitized runs (docs/reliability.md): SANITIZE=address,undefined runs the unit and the
# privileged integration suites on the sanitized binaries (the integration tests start
# $(BIN)/membalancer, profiler and memexercise through MB_BIN_DIR); SANITIZE=thread runs
# the tests whose code runs threads (the mover and its failure reports, the rate limiter
# its workers share, the profiler's sample drainer, the workload's threads). The VM suite
# (a guest kernel, not this build) and the fuzzers (their own ASan+UBSan build) run only
# in the plain `make test`. Every process the tests start, children included, gets
# options that make any report fatal (exit status 86, unlike the programs' 0/1/2) and
# write it to $(SAN_LOG_DIR); tests/run_gtest.sh prints each report and counts it as a
# failure, so a child's report fails the run even where its test ignores the child's status.
SUITE_SUFFIX := $(if $(SAN_TAG),-$(subst address,asan,$(subst undefined,ubsan,$(subst thread,tsan,$(SAN_TAG)))))
SAN_LOG_DIR := $(abspath $(BUILD))/sanitizer-reports
SAN_SUPP := $(CURDIR)/tests/sanitizers
SAN_COMMON := exitcode=86:log_path=$(SAN_LOG_DIR)/report:log_exe_name=1
SAN_ENV := \
	ASAN_OPTIONS=$(SAN_COMMON):halt_on_error=1:abort_on_error=0:detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:detect_odr_violation=2 \
	LSAN_OPTIONS=$(SAN_COMMON):suppressions=$(SAN_SUPP)/lsan.supp:print_suppressions=0 \
	UBSAN_OPTIONS=$(SAN_COMMON):halt_on_error=1:print_stacktrace=1:report_error_type=1 \
	TSAN_OPTIONS=$(SAN_COMMON):halt_on_error=1:second_deadlock_stack=1
ifneq ($(filter thread,$(subst $(comma), ,$(SANITIZE))),)
# ThreadSanitizer needs its fixed memory layout: on kernels that randomise mmap
# with more bits than it expects it stops with "unexpected memory mapping".
# These tests do not need ASLR, so they run without it (the personality is
# inherited by every child they start).
SAN_RUN := setarch $(shell uname -m) -R
# The mover's workers, its failure reports and the rate limiter they share;
# real threads moved, listed and dropping privileges; whatif sweeps on threads.
UNIT_TEST_ARGS := --gtest_filter='Mover.*:MoverFaults.*:SubmitPlan.*:RateLimiter.*:Affinity.*:RealProc.*:Privilege.DropRefusesWhileOtherThreadsRun:WhatifSweep.*'
# The profiler's sample drainer thread; a multi-threaded workload; threads
# dropping privileges. (membalancer's mover threads: unit Mover*, above.)
INTEG_TEST_ARGS := --gtest_filter='Profiler.*:ProcessMode.*:Privilege.RecordThreads*'
else
UNIT_TEST_ARGS :=
# VmAbit needs the helper module, the migration faults two nodes: tests/vm runs them.
INTEG_TEST_ARGS := --gtest_filter='-VmAbit.*:Faults.PagesVanishMidMigration*:Faults.SigtermDuring*'
endif
TEST_ENV := MB_BUILD_DIR=$(BUILD) MB_BIN_DIR=$(BIN) \
	$(if $(SAN_TAG),MB_SANITIZE=$(SANITIZE) MB_SAN_LOG_DIR=$(SAN_LOG_DIR) MB_TEST_WRAPPER='$(SAN_RUN)' $(SAN_ENV))

unit-test: $(BIN)/unit_tests $(BIN)/libsymtest_lld.so
	@$(TEST_ENV) tests/run_gtest.sh unit$(SUITE_SUFFIX) $(BIN)/unit_tests $(UNIT_TEST_ARGS)

integration-test: $(BIN)/integration_tests $(BIN)/membalancer $(BIN)/memexercise $(BIN)/forkstorm $(BIN)/profiler $(BIN)/symtest $(BIN)/symtest_lld $(BIN)/exectest_first $(BIN)/exectest_second
	@$(TEST_ENV) tests/run_gtest.sh integration$(SUITE_SUFFIX) $(BIN)/integration_tests $(INTEG_TEST_ARGS)

# Every bad input a user could give, against the real binaries: status 2, one line.
bad-input-test: $(BIN)/membalancer $(BIN)/profiler
	@MB_BIN_DIR=$(BIN) MB_BUILD_DIR=$(BUILD) tests/bad_inputs.sh

-include tests/vm/vm.mk
-include bench/bench.mk
include fuzz/fuzz.mk

test: deps
	@rm -f $(BUILD)/test-summary
	$(MAKE) -j$(shell nproc) all
	@status=0; \
	$(MAKE) --no-print-directory unit-test || status=1; \
	$(MAKE) --no-print-directory integration-test || status=1; \
	$(if $(SAN_TAG),,$(MAKE) --no-print-directory bad-input-test || status=1; \
	$(MAKE) --no-print-directory vm-test || status=1; \
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=10 || status=1;) \
	tests/summary.sh $(BUILD)/test-summary; \
	exit $$status

# ---- demo, bench, install ---------------------------------------------------------
demo: deps
	@$(MAKE) --no-print-directory -j$(shell nproc) all
	@scripts/demo.sh

bench: all
	@bench/run.sh

# Not in CI: half an hour by default (tests/soak/soak.py; results in $(BUILD)/soak/).
SOAK_MINUTES ?= 30
soak: $(BIN)/membalancer $(BIN)/churn
	@tests/soak/soak.py --bin $(BIN) --out $(BUILD)/soak --minutes $(SOAK_MINUTES)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/membalancer/scripts
	install -m 0755 $(BIN)/membalancer $(BIN)/memexercise $(BIN)/profiler $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 scripts/*.sh $(DESTDIR)$(PREFIX)/share/membalancer/scripts/

clean:
	rm -rf $(BUILD) $(BIN)
