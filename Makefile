# Builds the kernel programs (CO-RE, against this kernel's BTF).
CLANG ?= clang-19
BPFTOOL ?= bpftool
OUT := bpf/.output
ARCH := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
SRCS := $(wildcard bpf/*.bpf.c)
OBJS := $(patsubst bpf/%.bpf.c,$(OUT)/%.bpf.o,$(SRCS))
HDRS := $(wildcard bpf/include/*.h)

all: $(OBJS)

$(OUT)/vmlinux.h:
	@mkdir -p $(OUT)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(OUT)/%.bpf.o: bpf/%.bpf.c $(HDRS) $(OUT)/vmlinux.h
	$(CLANG) -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_$(ARCH) \
		-Ibpf/include -I$(OUT) -c $< -o $@

clean:
	rm -rf $(OUT)

.PHONY: all clean
