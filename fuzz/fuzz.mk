# libFuzzer targets (clang), included by the top-level Makefile. docs/fuzzing.md.
#   make fuzz                    build every target and run each for FUZZ_SECONDS
#                                (default 10) on a fresh copy of its seed corpus;
#                                fails when one finds a crash
#   make fuzz-long FUZZ_SECONDS=600
#                                the same, longer (600 s a target by default), on a
#                                corpus kept in build/fuzz/corpus-long/ between runs
#   make fuzz-build              only build them (build/fuzz/bin/fuzz_NAME)
#   FUZZ_TARGETS="config sysfs"  only these targets
# One fuzzer runs at a time (a single process each).

FUZZ_CXX ?= clang++
FUZZ_SECONDS ?= 10
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_ALL_TARGETS := $(patsubst fuzz/fuzz_%.cpp,%,$(wildcard fuzz/fuzz_*.cpp))
FUZZ_TARGETS ?= $(FUZZ_ALL_TARGETS)

FUZZ_SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CXXFLAGS := -std=c++20 -g -O1 -pthread -Wall -Wextra $(INCLUDES) $(FUZZ_SANFLAGS)

# Every library source but the one that needs the BPF skeleton (and main);
# an archive, so each target links only the objects it uses.
FUZZ_LIB_SRCS := $(filter-out membalancer/main.cpp membalancer/bpf_collector.cpp,$(wildcard membalancer/*.cpp)) \
	$(filter-out profiler/main.cpp,$(wildcard profiler/*.cpp))
FUZZ_LIB_OBJS := $(patsubst %.cpp,$(FUZZ_DIR)/obj/%.o,$(FUZZ_LIB_SRCS))
FUZZ_LIB := $(FUZZ_DIR)/libmb_fuzz.a
FUZZ_BINS := $(patsubst %,$(FUZZ_DIR)/bin/fuzz_%,$(FUZZ_TARGETS))

.PHONY: fuzz fuzz-long fuzz-build

# Coverage instrumentation for the library, libFuzzer's main for the targets.
$(FUZZ_DIR)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_LIB): $(FUZZ_LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_DIR)/bin/fuzz_%: $(FUZZ_DIR)/obj/fuzz/fuzz_%.o $(FUZZ_LIB)
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_SANFLAGS) -fsanitize=fuzzer -pthread -o $@ $^ $(LIBS)

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@FUZZ_DIR=$(FUZZ_DIR) fuzz/run.sh short $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# 600 s a target unless FUZZ_SECONDS is given on the command line.
fuzz-long: fuzz-build
	@FUZZ_DIR=$(FUZZ_DIR) fuzz/run.sh long $(if $(filter command line environment,$(origin FUZZ_SECONDS)),$(FUZZ_SECONDS),600) $(FUZZ_TARGETS)
