// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The floor of the policy benchmark's overhead measurement (mode f): a
 * program that does nothing, on the tracepoint Osprey's openat hook uses.
 * What the loop pays with it attached is what any tracepoint program pays
 * on this kernel before it does any work.
 */
/* no headers: nothing here needs more than the section attribute */
#define SEC(name) __attribute__((section(name), used))

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tracepoint/syscalls/sys_enter_openat")
int osprey_bench_floor(void *ctx)
{
	return 0;
}
