// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Programs that exercise the kernel bridge in tests: one per attach type. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} target SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} ring SEC(".maps");

#include "ringwake.bpf.h"

struct rec {
	__u32 kind;
	__u32 pid;
	__u64 seq;
};

static __always_inline int hit(__u32 kind)
{
	__u32 zero = 0, pid = bpf_get_current_pid_tgid() >> 32;
	__u32 *want = bpf_map_lookup_elem(&target, &zero);
	__u64 one = 1, *n, *c;
	struct rec *r;

	if (!want || *want != pid)
		return 0;
	n = bpf_map_lookup_elem(&hits, &kind);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&hits, &kind, &one, BPF_NOEXIST);
	c = bpf_map_lookup_elem(&counters, &kind);
	if (c)
		*c += 1;
	r = bpf_ringbuf_reserve(&ring, sizeof(*r), 0);
	if (!r)
		return 0;
	r->kind = kind;
	r->pid = pid;
	r->seq = bpf_ktime_get_ns();
	ring_submit(&ring, r);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int tp_getppid(void *ctx)
{
	return hit(1);
}

/* A wake-up with no record behind it (a discarded one): the reader wakes and finds nothing. */
SEC("tracepoint/syscalls/sys_enter_getuid")
int tp_getuid_wake(void *ctx)
{
	__u32 zero = 0, pid = bpf_get_current_pid_tgid() >> 32;
	__u32 *want = bpf_map_lookup_elem(&target, &zero);

	if (want && *want == pid)
		ring_force_wake(&ring);
	return 0;
}

SEC("raw_tp/sys_enter")
int raw_sys_enter(void *ctx)
{
	return hit(2);
}

SEC("tp_btf/sys_enter")
int BPF_PROG(btf_sys_enter, struct pt_regs *regs, long id)
{
	return hit(3);
}

SEC("uprobe")
int uprobe_fn(void *ctx)
{
	return hit(4);
}

SEC("cgroup/sock_create")
int cg_sock(struct bpf_sock *sk)
{
	return 1;
}

SEC("tc")
int tc_pass(struct __sk_buff *skb)
{
	return 0; /* TC_ACT_OK */
}
