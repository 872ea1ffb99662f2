# Benchmarks. Included by the top-level Makefile (-include bench/bench.mk),
# after the rules it uses ($(BUILD), $(LIB), $(LIBS), the BPF flags).
# Objects come from the generic $(BUILD)/%.o rule (which waits for every
# bpf/*.bpf.c skeleton, minimal.bpf.c included); binaries go to $(BUILD)/bench/.
# Every bench/*.cpp is one benchmark program.
BENCH_NAMES := $(basename $(notdir $(wildcard bench/*.cpp)))
BENCH_BINS := $(patsubst %,$(BUILD)/bench/%,$(BENCH_NAMES))

# Diagnostic BPF object: the real sample path cut off after each stage.
$(BUILD)/bench/handler_parts.bpf.o: bench/handler_parts.bpf.c $(BUILD)/vmlinux.h $(wildcard bpf/*.bpf.h include/membalancer/*.h)
	@mkdir -p $(dir $@)
	$(CLANG) -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) $(INCLUDES) -Ibpf -c $< -o $@

$(BUILD)/bench/handler_parts.skel.h: $(BUILD)/bench/handler_parts.bpf.o
	$(BPFTOOL) gen skeleton $< > $@.tmp && mv $@.tmp $@

$(BUILD)/bench/handler_cost.o: $(BUILD)/bench/handler_parts.skel.h

$(BENCH_BINS): $(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS)

.PHONY: bench-bins
bench-bins: $(BENCH_BINS)

# `make bench` runs `all`, then bench/run.sh: it needs the benchmark programs too.
bench: bench-bins
