/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Helpers shared by Osprey's kernel programs. */
#ifndef OSPREY_COMMON_BPF_H
#define OSPREY_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#define __OSPREY_KERNEL_TYPES
#include "records.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct osprey_config);
} osprey_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} scope_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OSPREY_DROP_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024);
} events SEC(".maps");

#include "ringwake.bpf.h"

static __always_inline struct osprey_config *osprey_config(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&osprey_cfg, &zero);
}

static __always_inline void count_drop(__u32 idx)
{
	__u64 *n = bpf_map_lookup_elem(&drops, &idx);
	if (n)
		*n += 1;
}

/* Whether the current task is one this agent watches. */
static __always_inline bool in_scope(const struct osprey_config *cfg)
{
	if (!cfg || !cfg->scope_cgroup)
		return true;
	return bpf_current_task_under_cgroup(&scope_cgroups, 0) == 1;
}

static __always_inline void emit(void *rec, __u64 size)
{
	if (ring_output(&events, rec, size) < 0)
		count_drop(OSPREY_DROP_RINGBUF);
}

#endif
