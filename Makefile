# Builds the kernel programs (CO-RE, against this kernel's BTF).
CLANG ?= clang-19
BPFTOOL ?= bpftool
OUT := bpf/.output
ARCH := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
SRCS := $(wildcard bpf/*.bpf.c)
OBJS := $(patsubst bpf/%.bpf.c,$(OUT)/%.bpf.o,$(SRCS))
# programs used only by the tests of the kernel bridge
TEST_SRCS := $(wildcard test/bpf/*.bpf.c)
TEST_OBJS := $(patsubst test/bpf/%.bpf.c,$(OUT)/test/%.bpf.o,$(TEST_SRCS))
HDRS := $(wildcard bpf/include/*.h)

all: $(OBJS) $(TEST_OBJS)

$(OUT)/vmlinux.h:
	@mkdir -p $(OUT)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(OUT)/%.bpf.o: bpf/%.bpf.c $(HDRS) $(OUT)/vmlinux.h
	$(CLANG) -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_$(ARCH) \
		-Ibpf/include -I$(OUT) -c $< -o $@

$(OUT)/test/%.bpf.o: test/bpf/%.bpf.c $(OUT)/vmlinux.h
	@mkdir -p $(OUT)/test
	$(CLANG) -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_$(ARCH) \
		-Ibpf/include -I$(OUT) -c $< -o $@

clean:
	rm -rf $(OUT)

.PHONY: all clean
