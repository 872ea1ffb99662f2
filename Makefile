# membalancer: the one entry point.
#   make          build everything into bin/
#   make test     install missing Debian packages, build, run unit, privileged and VM tests, 10 s per fuzz target
#   make demo     tiering for real: a hot set moves from a slow node to a fast one (a VM when the host has one node)
#   make bench    run the benchmarks, write docs/benchmarks.md
#   make install  PREFIX=/usr/local DESTDIR=
#   make module   build the helper kernel module (KVER=<version>, default: the VM kernel)

SHELL := /bin/bash
PREFIX ?= /usr/local
DESTDIR ?=
BUILD := build
BIN := bin

CLANG ?= clang
BPFTOOL ?= bpftool
CXX ?= g++
CC ?= gcc
ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

# SANITIZE=address,undefined or SANITIZE=thread builds everything with sanitizers.
SANITIZE ?=
SANFLAGS := $(if $(SANITIZE),-fsanitize=$(SANITIZE) -fno-omit-frame-pointer,)

INCLUDES := -Iinclude -I$(BUILD) -I.
CXXFLAGS ?= -O2 -g
CXXFLAGS += -std=c++20 -Wall -Wextra -Werror=return-type -pthread $(INCLUDES) $(SANFLAGS)
CFLAGS ?= -O2 -g
CFLAGS += -Wall $(INCLUDES) $(SANFLAGS)
LDFLAGS += -pthread $(SANFLAGS)
LIBS := -lbpf -lelf -lz -lnuma -ldw

# Debian 12 packages the build and the tests need; installed by `make deps`.
DEB_PACKAGES := clang llvm libbpf-dev bpftool libelf-dev libdw-dev zlib1g-dev \
	libnuma-dev libcli11-dev libgtest-dev libbenchmark-dev pkg-config make g++ \
	qemu-system-x86 busybox-static cpio kmod libzstd-dev zstd xz-utils \
	file python3 nlohmann-json3-dev

.SECONDARY:
.PHONY: all deps test unit-test integration-test vm-test demo bench install clean module

all: $(BIN)/membalancer $(BIN)/memexercise $(BIN)/profiler $(BIN)/symtest $(BIN)/unit_tests $(BIN)/integration_tests

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
# Each suite appends "name passed failed" to $(BUILD)/test-summary; the last line
# of `make test` is the plain "N passed, N failed" total.
unit-test: $(BIN)/unit_tests
	@tests/run_gtest.sh unit $(BIN)/unit_tests

integration-test: $(BIN)/integration_tests $(BIN)/membalancer $(BIN)/memexercise $(BIN)/profiler $(BIN)/symtest
	@tests/run_gtest.sh integration $(BIN)/integration_tests --gtest_filter=-VmAbit.*  # VmAbit: tests/vm

-include tests/vm/vm.mk
-include bench/bench.mk
include fuzz/fuzz.mk

test: deps
	@rm -f $(BUILD)/test-summary
	$(MAKE) -j$(shell nproc) all
	@status=0; \
	$(MAKE) --no-print-directory unit-test || status=1; \
	$(MAKE) --no-print-directory integration-test || status=1; \
	$(MAKE) --no-print-directory vm-test || status=1; \
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=10 || status=1; \
	tests/summary.sh $(BUILD)/test-summary; \
	exit $$status

# ---- demo, bench, install ---------------------------------------------------------
demo: deps
	@$(MAKE) --no-print-directory -j$(shell nproc) all
	@scripts/demo.sh

bench: all
	@bench/run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/membalancer/scripts
	install -m 0755 $(BIN)/membalancer $(BIN)/memexercise $(BIN)/profiler $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 scripts/*.sh $(DESTDIR)$(PREFIX)/share/membalancer/scripts/

clean:
	rm -rf $(BUILD) $(BIN)
