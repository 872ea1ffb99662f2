# VM end-to-end tests and the helper kernel module; included by the top-level
# Makefile (tests/vm/run.sh also uses it on its own, with MB_VM_STANDALONE=1).
#   make module [KVER=<version>]  build kernel/membalancer_abit.ko; KVER defaults
#                                 to the cached VM kernel (fetched on first use)
#   make vm-test                  every tests/vm/tests/*.sh in its own VM, plus the
#                                 harness self-test; appends "vm P F S" to
#                                 build/test-summary
MB_VM_DIR := tests/vm
MB_VM_CACHE ?= $(CURDIR)/$(MB_VM_DIR)/cache
export MB_VM_CACHE

# KDIR: the unpacked Debian headers of the VM kernel when KVER is that kernel
# (or not given), else the installed headers of KVER.
ifeq ($(KVER),)
MB_KDIR = $(shell $(MB_VM_DIR)/fetch-kernel.sh)/kdir
else
MB_KDIR = $(if $(wildcard $(MB_VM_CACHE)/$(KVER)/kdir),$(MB_VM_CACHE)/$(KVER)/kdir,/lib/modules/$(KVER)/build)
endif

.PHONY: module module-clean vm-helpers vm-test

module:
	@kdir="$(MB_KDIR)"; [ -d "$$kdir" ] || { echo "module: no kernel headers ($$kdir)"; exit 1; }; \
	$(MAKE) --no-print-directory -C kernel KDIR="$$kdir"

module-clean:
	rm -rf kernel/*.o kernel/*.ko kernel/*.mod kernel/*.mod.c kernel/.*.cmd \
		kernel/Module.symvers kernel/modules.order kernel/.tmp_versions

# Small static C programs run inside the guest (workloads, pagemap reader).
MB_VM_HELPER_SRCS := $(wildcard $(MB_VM_DIR)/guest/*.c)
MB_VM_HELPERS := $(patsubst $(MB_VM_DIR)/guest/%.c,$(MB_VM_CACHE)/helpers/%,$(MB_VM_HELPER_SRCS))
vm-helpers: $(MB_VM_HELPERS)
$(MB_VM_CACHE)/helpers/%: $(MB_VM_DIR)/guest/%.c
	@mkdir -p $(dir $@)
	gcc -static -O2 -Wall -o $@ $<

ifneq ($(MB_VM_STANDALONE),1)
vm-test:
	@$(MAKE) --no-print-directory -k all >/dev/null 2>&1 || \
		echo "vm-test: warning: 'make all' failed; the guest gets whatever bin/ holds"
	@$(MB_VM_DIR)/run-all.sh
endif
