// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The TracingPolicy engine: one generic tracepoint program that interprets a
 * policy's compiled tables (bpf/include/policy.h). User space loads one
 * instance of this object per policy, fills its maps, and attaches
 * osprey_generic once per hook with the hook's index as the attach cookie.
 *
 *   plain hook:  read args -> selectors (first match wins) -> act -> post
 *   enter hook:  read args -> entry filters -> stash in "pending" by thread
 *   exit hook:   take the stash -> ret -> matchReturnArgs -> act -> post
 *
 * Enforcement is bpf_send_signal from the hook (the syscall may still
 * complete: there is no override on this kernel), or NotifyEnforcer, which
 * leaves a note that osprey_enforcer (raw_syscalls/sys_exit) acts on when the
 * thread leaves the syscall.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

#define __OSPREY_KERNEL_TYPES
#include "records.h"
#include "policy.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define DMASK (OSP_DATA_SIZE - 1)
#define SMASK (OSP_STR_MAX - 1)
#define PF_KTHREAD 0x00200000
#define AF_INET 2
#define AF_INET6 10
#define SIGKILL 9

/* Mask x in a way the compiler cannot fold away, so the verifier sees the bound. */
#define BOUND(x, mask) asm volatile("%0 &= %1" : "+r"(x) : "i"(mask))
/* x < n for the verifier, in the register the compiler indexes with (0 otherwise) */
#define CLAMP(x, n) asm volatile("if %0 < %1 goto +1; %0 = 0;" : "+r"(x) : "i"(n))

/* What the program knows about each arg once read. */
struct osp_argval {
	__u64 val;     /* int value, pointer, or fd */
	__u32 off;     /* bytes part (string, path, sockaddr) in data[] */
	__u32 len;
	__u8 type;
	__u8 flags;
	__u16 pad;
	__u32 pad2;
};

struct osp_state {
	struct osp_argval av[OSP_MAX_ARGS];
	__u32 selmask;  /* selectors whose entry filters matched */
	__u32 hook;
	__s64 ret;
};

/* One event under construction; also the value of "pending". */
struct osp_heap {
	struct osp_state st;
	struct osp_event ev;
	__u8 data[OSP_DATA_SIZE + OSP_STR_MAX + 512];
};

/* Scratch keys for the set maps. */
struct osp_keys {
	struct osp_str_key str;
	struct osp_prefix_key pfx;
	struct osp_postfix_key sfx;
	__u8 tmp[OSP_POSTFIX_MAX];
	struct osp_addr_key addr;
	struct osp_int_key ik;
	struct osp_rate_key rk;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct osp_config);
} osp_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} scope_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, OSP_MAX_HOOKS);
	__type(key, __u32);
	__type(value, struct osp_hook);
} hooks SEC(".maps");

/* hook * OSP_MAX_SELECTORS + selector */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, OSP_MAX_HOOKS * OSP_MAX_SELECTORS);
	__type(key, __u32);
	__type(value, struct osp_selector);
} selectors SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, OSP_MAX_FOLLOW);
	__type(key, __u32);
	__type(value, struct osp_bin_filter);
} follow_filters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OSP_CNT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024);
} events SEC(".maps");

#include "ringwake.bpf.h"

/* One slot per CPU (user space sets max_entries): too big for a per-CPU map. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct osp_heap);
} heap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct osp_keys);
} keys SEC(".maps");

/* never written: the source of zero padding */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u8[OSP_STR_MAX]);
} zeros SEC(".maps");

/* enter hooks: pid_tgid -> the event waiting for its return value */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct osp_pending_key);
	__type(value, struct osp_heap);
} pending SEC(".maps");

/* NotifyEnforcer: pid_tgid -> signal to send at syscall exit (LRU: a thread
 * that dies inside its syscall never collects its note) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct osp_enforce);
} enforcer SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct osp_rate_key);
	__type(value, __u64);
} ratelimit SEC(".maps");

/* ---- value sets, keyed by filter id; user space sizes them ---- */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct osp_int_key);
	__type(value, __u8);
} int_set SEC(".maps");

#define STR_EQ_MAP(b, n)                                     \
	struct {                                             \
		__uint(type, BPF_MAP_TYPE_HASH);             \
		__uint(max_entries, 1);                      \
		__uint(map_flags, BPF_F_NO_PREALLOC);        \
		__uint(key_size, 8 + (n));                   \
		__uint(value_size, 1);                       \
	} str_eq_##b SEC(".maps")

STR_EQ_MAP(0, 32);
STR_EQ_MAP(1, 64);
STR_EQ_MAP(2, 128);
STR_EQ_MAP(3, 256);
STR_EQ_MAP(4, 512);
STR_EQ_MAP(5, 1024);
STR_EQ_MAP(6, 2048);
STR_EQ_MAP(7, 4096);

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct osp_prefix_key);
	__type(value, __u8);
} str_prefix SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct osp_postfix_key);
	__type(value, __u8);
} str_postfix SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct osp_addr_key);
	__type(value, __u8);
} addr_lpm SEC(".maps");

/* SubString needles: id * OSP_SUBSTR_VALS + k */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct osp_needle);
} substr SEC(".maps");

/* The process sensor's table; user space passes its fd (reuse), so keep the definition identical. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct osprey_proc);
} osprey_procs SEC(".maps");

static __always_inline __u8 *osprey_path_buf(__u32 slot)
{
	struct osp_heap *h = bpf_map_lookup_elem(&heap, &slot);

	return h ? h->data : NULL;
}

#define OSPREY_PATH_DATA_MASK DMASK
#include "path.bpf.h"

static __always_inline void count(__u32 idx)
{
	__u64 *n = bpf_map_lookup_elem(&counters, &idx);

	if (n)
		*n += 1;
}

static __always_inline struct osp_config *policy_config(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&osp_cfg, &zero);
}

static __always_inline struct osp_keys *scratch_keys(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&keys, &zero);
}

static __always_inline __u64 extend(__u64 v, __u32 size, bool is_signed)
{
	switch (size) {
	case 1:
		return is_signed ? (__u64)(__s64)(__s8)v : (__u8)v;
	case 2:
		return is_signed ? (__u64)(__s64)(__s16)v : (__u16)v;
	case 4:
		return is_signed ? (__u64)(__s64)(__s32)v : (__u32)v;
	default:
		return v;
	}
}

/* A field of the tracepoint record at a run-time offset. */
static __always_inline __u64 read_field(void *ctx, __u32 off, __u32 size, bool is_signed)
{
	__u64 v = 0;
	unsigned long base = (unsigned long)ctx;

	/*
	 * The record is kernel memory; read it like any other. (A load from ctx
	 * needs a constant offset, and makes the kernel refuse to attach the
	 * program to any tracepoint whose record ends before it.)
	 */
	bpf_probe_read_kernel(&v, 8, (void *)(base + (off & 0xfff)));
	return extend(v, size, is_signed);
}

/* ------------------------------------------------------------------ */
/* reading args                                                        */

struct read_ctx {
	void *tp;
	__u32 slot;
	__u32 hook;
	__u32 nargs;
	__u32 pos;
};

/* Where a string of the record (OSP_ARG_STR_LOC, OSP_ARG_STR_ARRAY) starts. */
static __always_inline __u64 record_str(void *tp, const struct osp_arg_spec *sp)
{
	if (sp->type == OSP_ARG_STR_ARRAY)
		return (unsigned long)tp + (sp->offset & 0xfff);
	return (unsigned long)tp + (read_field(tp, sp->offset, 4, false) & 0xffff);
}

/* Bytes to read of a string of the record: an array is read no further than its end. */
static __always_inline __u32 record_str_cap(const struct osp_arg_spec *sp, __u32 max)
{
	if (sp->type == OSP_ARG_STR_ARRAY && sp->size < max + 1)
		return sp->size;
	return max + 1;
}

static long read_raw_cb(__u32 i, void *arg)
{
	struct read_ctx *c = arg;
	struct osp_heap *h = bpf_map_lookup_elem(&heap, &c->slot);
	struct osp_hook *hk = bpf_map_lookup_elem(&hooks, &c->hook);
	struct osp_arg_spec *sp;
	struct osp_argval *av;

	__u64 idx = i;

	if (!h || !hk || i >= c->nargs || i >= OSP_MAX_ARGS)
		return 1;
	CLAMP(idx, OSP_MAX_ARGS);
	sp = &hk->args[idx];
	av = &h->st.av[idx];
	av->type = sp->type;
	av->flags = 0;
	av->off = 0;
	av->len = 0;
	if (sp->type == OSP_ARG_INT || sp->type == OSP_ARG_FD) {
		av->val = read_field(c->tp, sp->offset, sp->size, sp->is_signed);
	} else if (sp->type == OSP_ARG_STR_LOC || sp->type == OSP_ARG_STR_ARRAY) {
		av->type = OSP_ARG_STRING;
		av->val = record_str(c->tp, sp);
	} else {
		av->val = read_field(c->tp, sp->offset, 8, false);
	}
	return 0;
}

static __always_inline __u32 read_fd_path(struct osp_heap *h, __u32 slot, __s64 fd, __u32 base,
					  __u8 *flags)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct files_struct *files = BPF_CORE_READ(task, files);
	struct fdtable *fdt = BPF_CORE_READ(files, fdt);
	unsigned int max = BPF_CORE_READ(fdt, max_fds);
	struct file **fda = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	struct path root;
	bool trunc = false;
	__u32 len;

	if (fd < 0 || fd >= max) {
		*flags |= OSP_ARGF_NO_FILE;
		return 0;
	}
	bpf_probe_read_kernel(&f, sizeof(f), &fda[fd]);
	if (!f) {
		*flags |= OSP_ARGF_NO_FILE;
		return 0;
	}
	BPF_CORE_READ_INTO(&root, task, fs, root);
	len = d_path_walk(BPF_CORE_READ(f, f_path.dentry), BPF_CORE_READ(f, f_path.mnt), &root, slot,
			  base, &trunc);
	if (trunc)
		*flags |= OSP_ARGF_TRUNCATED;
	return len;
}

static __always_inline __u32 read_sockaddr(struct osp_heap *h, __u64 ptr, __u32 at, __u8 *flags)
{
	struct osp_sockaddr *sa = (struct osp_sockaddr *)&h->data[at & DMASK];
	__u16 family = 0, port = 0;

	__builtin_memset(sa, 0, sizeof(*sa));
	if (bpf_probe_read_user(&family, 2, (void *)ptr) < 0) {
		*flags |= OSP_ARGF_FAULT;
		return sizeof(*sa);
	}
	sa->family = family;
	if (family == AF_INET) {
		struct sockaddr_in in = {};

		if (bpf_probe_read_user(&in, sizeof(in), (void *)ptr) < 0)
			*flags |= OSP_ARGF_FAULT;
		port = in.sin_port;
		__builtin_memcpy(sa->addr, &in.sin_addr, 4);
	} else if (family == AF_INET6) {
		struct sockaddr_in6 in6 = {};

		if (bpf_probe_read_user(&in6, sizeof(in6), (void *)ptr) < 0)
			*flags |= OSP_ARGF_FAULT;
		port = in6.sin6_port;
		__builtin_memcpy(sa->addr, &in6.sin6_addr, 16);
	}
	sa->port = bpf_ntohs(port);
	return sizeof(*sa);
}

static long read_arg_cb(__u32 i, void *arg)
{
	struct read_ctx *c = arg;
	struct osp_heap *h = bpf_map_lookup_elem(&heap, &c->slot);
	struct osp_hook *hk = bpf_map_lookup_elem(&hooks, &c->hook);
	struct osp_arg_spec *sp;
	struct osp_argval *av;
	struct osp_arg_rec *rec;
	__u32 pos = c->pos, at, len = 0, max;
	__u8 flags = 0;

	__u64 idx = i;

	if (!h || !hk || i >= c->nargs || i >= OSP_MAX_ARGS)
		return 1;
	CLAMP(idx, OSP_MAX_ARGS);
	sp = &hk->args[idx];
	av = &h->st.av[idx];
	pos &= DMASK;
	if (pos > OSP_DATA_SIZE - OSP_STR_MAX - 16)
		return 1; /* cannot happen: 5 args fit */
	at = pos + sizeof(struct osp_arg_rec);
	max = sp->max_bytes;
	if (max > OSP_STR_MAX - 1)
		max = OSP_STR_MAX - 1;

	switch (sp->type) {
	case OSP_ARG_INT:
		*(__u64 *)&h->data[at & DMASK] = av->val;
		len = 8;
		break;
	case OSP_ARG_STRING:
	case OSP_ARG_STR_LOC:
	case OSP_ARG_STR_ARRAY: {
		/* at a user pointer, or in the record (kernel memory) */
		long n = sp->type == OSP_ARG_STRING
				 ? bpf_probe_read_user_str(&h->data[at & DMASK],
							   (max + 1) & (2 * OSP_STR_MAX - 1),
							   (void *)av->val)
				 : bpf_probe_read_kernel_str(&h->data[at & DMASK],
							     record_str_cap(sp, max) & (2 * OSP_STR_MAX - 1),
							     (void *)av->val);

		if (n <= 0) {
			flags |= OSP_ARGF_FAULT;
		} else {
			len = n - 1;
			if (len >= max)
				flags |= OSP_ARGF_TRUNCATED;
		}
		av->off = at;
		av->len = len;
		break;
	}
	case OSP_ARG_CHAR_BUF: {
		__u64 want = 0;
		__u32 sa = sp->size_arg;

		if (sa == OSP_SIZE_RET) {
			/* returnCopy: the syscall fills the buffer; copy_at_return reads it */
			flags |= OSP_ARGF_AT_RETURN;
			av->off = at;
			av->len = 0;
			break;
		}
		if (sa < OSP_MAX_ARGS)
			want = h->st.av[sa].val;
		if ((__s64)want < 0)
			want = 0;
		if (want > max) {
			want = max;
			flags |= OSP_ARGF_TRUNCATED;
		}
		len = want;
		BOUND(len, SMASK);
		if (len && bpf_probe_read_user(&h->data[at & DMASK], len, (void *)av->val) < 0) {
			flags |= OSP_ARGF_FAULT;
			len = 0;
		}
		av->off = at;
		av->len = len;
		break;
	}
	case OSP_ARG_FD:
		*(__s32 *)&h->data[at & DMASK] = (__s32)av->val;
		len = read_fd_path(h, c->slot, (__s64)av->val, at + 4, &flags);
		len &= SMASK;
		if (len > max) {
			len = max;
			flags |= OSP_ARGF_TRUNCATED;
		}
		av->off = at + 4;
		av->len = len;
		len += 4;
		break;
	case OSP_ARG_SOCKADDR:
		len = read_sockaddr(h, av->val, at, &flags);
		av->off = at;
		av->len = len;
		break;
	default:
		return 0;
	}
	av->flags = flags;
	rec = (struct osp_arg_rec *)&h->data[pos];
	rec->type = av->type;
	rec->flags = flags;
	rec->len = len;
	c->pos = pos + sizeof(*rec) + (len & SMASK);
	return 0;
}

/* ------------------------------------------------------------------ */
/* matching                                                            */

static __always_inline bool in_ranges(const struct osp_filter *f, __u64 v)
{
	bool sgn = f->flags & OSP_FF_SIGNED;
	__u32 n = f->nvals / 2;

#pragma unroll
	for (int i = 0; i < OSP_MAX_FILTER_VALS / 2; i++) {
		if (i >= n)
			break;
		if (sgn) {
			if ((__s64)v >= (__s64)f->vals[2 * i] && (__s64)v <= (__s64)f->vals[2 * i + 1])
				return true;
		} else if (v >= f->vals[2 * i] && v <= f->vals[2 * i + 1]) {
			return true;
		}
	}
	return false;
}

__noinline int int_match(const struct osp_filter *f, __u64 v)
{
	struct osp_keys *k = scratch_keys();
	bool sgn, in;

	if (!f || !k)
		return false;
	sgn = f->flags & OSP_FF_SIGNED;
	switch (f->op) {
	case OSP_OP_EQ:
	case OSP_OP_NEQ:
	case OSP_OP_IN_MAP:
	case OSP_OP_NOT_IN_MAP:
		k->ik.id = f->id;
		k->ik.pad = 0;
		k->ik.value = v;
		in = bpf_map_lookup_elem(&int_set, &k->ik) != NULL;
		if (!in && (f->op == OSP_OP_IN_MAP || f->op == OSP_OP_NOT_IN_MAP))
			in = in_ranges(f, v);
		return (f->op == OSP_OP_EQ || f->op == OSP_OP_IN_MAP) ? in : !in;
	case OSP_OP_GT:
		return sgn ? (__s64)v > (__s64)f->vals[0] : v > f->vals[0];
	case OSP_OP_LT:
		return sgn ? (__s64)v < (__s64)f->vals[0] : v < f->vals[0];
	case OSP_OP_MASK:
		return (v & f->vals[0]) != 0;
	case OSP_OP_IN_RANGE:
		return in_ranges(f, v);
	case OSP_OP_NOT_IN_RANGE:
		return !in_ranges(f, v);
	}
	return false;
}

static __always_inline bool str_eq_lookup(struct osp_keys *k, __u32 b)
{
	switch (b) {
	case 0: return bpf_map_lookup_elem(&str_eq_0, &k->str) != NULL;
	case 1: return bpf_map_lookup_elem(&str_eq_1, &k->str) != NULL;
	case 2: return bpf_map_lookup_elem(&str_eq_2, &k->str) != NULL;
	case 3: return bpf_map_lookup_elem(&str_eq_3, &k->str) != NULL;
	case 4: return bpf_map_lookup_elem(&str_eq_4, &k->str) != NULL;
	case 5: return bpf_map_lookup_elem(&str_eq_5, &k->str) != NULL;
	case 6: return bpf_map_lookup_elem(&str_eq_6, &k->str) != NULL;
	default: return bpf_map_lookup_elem(&str_eq_7, &k->str) != NULL;
	}
}

/* the Equal bucket of a string of len bytes: keys of 32 << b bytes */
static __always_inline __u32 str_bucket(__u32 len)
{
	__u32 b = 0;

	if (len > 32)
		b = 1;
	if (len > 64)
		b = 2;
	if (len > 128)
		b = 3;
	if (len > 256)
		b = 4;
	if (len > 512)
		b = 5;
	if (len > 1024)
		b = 6;
	if (len > 2048)
		b = 7;
	return b;
}

struct needle_ctx {
	struct osp_keys *k;
	__u32 n;     /* haystack bytes, in k->str.data */
	__u32 nid;   /* substr index */
	bool found;
};

static long needle_at_cb(__u32 i, void *arg)
{
	struct needle_ctx *c = arg;
	struct osp_needle *nd = bpf_map_lookup_elem(&substr, &c->nid);
	struct osp_keys *k = scratch_keys();
	__u32 j, nl;

	if (!nd || !k)
		return 1;
	nl = nd->len;
	if (nl == 0 || nl > OSP_SUBSTR_MAX || i + nl > c->n)
		return 1;
	for (j = 0; j < OSP_SUBSTR_MAX; j++) {
		if (j >= nl) {
			c->found = true;
			return 1;
		}
		if (k->str.data[(i + j) & SMASK] != nd->data[j])
			return 0;
	}
	c->found = true;
	return 1;
}

/*
 * Compare a string against a filter's value set. src is where the bytes
 * are (read with bpf_probe_read_kernel), len their count.
 */
__noinline int str_match(__u32 op, __u32 id, __u64 src, __u32 len)
{
	struct osp_keys *k = scratch_keys();
	__u32 n, b;
	bool found = false;
	__u32 zero = 0;
	void *z = bpf_map_lookup_elem(&zeros, &zero);

	if (!k || !z)
		return false;
	len &= SMASK;
	switch (op) {
	case OSP_OP_EQ:
	case OSP_OP_NEQ:
		b = str_bucket(len);
		k->str.id = id;
		k->str.len = len;
		bpf_probe_read_kernel(k->str.data, (32 << b) & (2 * OSP_STR_MAX - 1), z);
		if (len)
			bpf_probe_read_kernel(k->str.data, len, (void *)src);
		found = str_eq_lookup(k, b);
		return op == OSP_OP_EQ ? found : !found;
	case OSP_OP_PREFIX:
	case OSP_OP_NOT_PREFIX:
		n = len > OSP_PREFIX_MAX ? OSP_PREFIX_MAX : len;
		k->pfx.prefixlen = 32 + 8 * n;
		k->pfx.id = id;
		if (n)
			bpf_probe_read_kernel(k->pfx.data, n & 0xff, (void *)src); /* n <= OSP_PREFIX_MAX < 256 */
		found = bpf_map_lookup_elem(&str_prefix, &k->pfx) != NULL;
		return op == OSP_OP_PREFIX ? found : !found;
	case OSP_OP_POSTFIX:
	case OSP_OP_NOT_POSTFIX:
		n = len > OSP_POSTFIX_MAX ? OSP_POSTFIX_MAX : len;
		k->sfx.prefixlen = 32 + 8 * n;
		k->sfx.id = id;
		if (n)
			bpf_probe_read_kernel(k->tmp, n & (2 * OSP_POSTFIX_MAX - 1), (void *)(src + (len - n)));
		for (__u32 j = 0; j < OSP_POSTFIX_MAX; j++) {
			if (j >= n)
				break;
			k->sfx.data[j] = k->tmp[(n - 1 - j) & (OSP_POSTFIX_MAX - 1)];
		}
		found = bpf_map_lookup_elem(&str_postfix, &k->sfx) != NULL;
		return op == OSP_OP_POSTFIX ? found : !found;
	case OSP_OP_SUBSTRING: {
		struct needle_ctx nc = { .k = 0 };

		n = len > OSP_SUBSTR_SCAN ? OSP_SUBSTR_SCAN : len;
		if (n)
			bpf_probe_read_kernel(k->str.data, n & (2 * OSP_SUBSTR_SCAN - 1), (void *)src);
		nc.n = n;
		for (__u32 v = 0; v < OSP_SUBSTR_VALS; v++) {
			nc.nid = id * OSP_SUBSTR_VALS + v;
			bpf_loop(OSP_SUBSTR_SCAN, needle_at_cb, &nc, 0);
			if (nc.found)
				return true;
		}
		return false;
	}
	}
	return false;
}

__noinline int sockaddr_match(const struct osp_filter *f, const struct osp_sockaddr *sa)
{
	struct osp_keys *k = scratch_keys();
	bool found = false;

	if (!f || !sa || !k)
		return false;
	switch (f->op) {
	case OSP_OP_FAMILY:
#pragma unroll
		for (int i = 0; i < OSP_MAX_FILTER_VALS; i++) {
			if (i >= f->nvals)
				break;
			if (sa->family == f->vals[i])
				return true;
		}
		return false;
	case OSP_OP_PORT:
	case OSP_OP_NOT_PORT:
		if (sa->family != AF_INET && sa->family != AF_INET6)
			return false;
		found = in_ranges(f, sa->port);
		return f->op == OSP_OP_PORT ? found : !found;
	case OSP_OP_ADDR:
	case OSP_OP_NOT_ADDR:
		if (sa->family != AF_INET && sa->family != AF_INET6)
			return false;
		k->addr.prefixlen = 64 + (sa->family == AF_INET ? 32 : 128);
		k->addr.id = f->id;
		k->addr.family = sa->family;
		__builtin_memcpy(k->addr.addr, sa->addr, 16);
		found = bpf_map_lookup_elem(&addr_lpm, &k->addr) != NULL;
		return f->op == OSP_OP_ADDR ? found : !found;
	}
	return false;
}

/* Launder a pointer into a plain number, for helpers that read it as an address. */
static __always_inline __u64 addr_of(const void *p)
{
	__u64 a = 0;

	bpf_probe_read_kernel(&a, sizeof(a), &p);
	return a;
}

/* One matchArgs / matchReturnArgs filter against the event in the slot's heap. */
__noinline int filter_match(const struct osp_filter *f, __u32 slot)
{
	struct osp_heap *h = bpf_map_lookup_elem(&heap, &slot);
	struct osp_argval *av;
	__u32 a;

	if (!f || !h)
		return false;
	if (f->arg == OSP_ARG_RETURN)
		return int_match(f, h->st.ret);
	a = f->arg;
	if (a >= OSP_MAX_ARGS)
		return false;
	av = &h->st.av[a];
	switch (av->type) {
	case OSP_ARG_INT:
		return int_match(f, av->val);
	case OSP_ARG_FD:
		if (f->flags & OSP_FF_INT)
			return int_match(f, av->val);
		if (av->flags & OSP_ARGF_NO_FILE)
			return false;
		/* fallthrough */
	case OSP_ARG_STRING:
	case OSP_ARG_CHAR_BUF:
		if (av->flags & OSP_ARGF_FAULT)
			return false;
		return str_match(f->op, f->id, addr_of(&h->data[av->off & DMASK]), av->len);
	case OSP_ARG_SOCKADDR:
		return sockaddr_match(f, (struct osp_sockaddr *)&h->data[av->off & DMASK]);
	}
	return false;
}

/* ---- process filters ---- */

/*
 * A process's entry; at sched_process_exit, after osprey_exit deleted it,
 * the copy it left in the CPU's exit slot (records.h, OSPREY_EXITED_KEY).
 */
static __always_inline struct osprey_proc *proc_of(__u32 pid)
{
	struct osprey_proc *p = bpf_map_lookup_elem(&osprey_procs, &pid);
	struct task_struct *task;
	__u32 key;

	if (p || pid != bpf_get_current_pid_tgid() >> 32)
		return p;
	task = (struct task_struct *)bpf_get_current_task();
	if (!(BPF_CORE_READ(task, flags) & 0x00000004 /* PF_EXITING */))
		return NULL;
	key = OSPREY_EXITED_KEY + bpf_get_smp_processor_id();
	p = bpf_map_lookup_elem(&osprey_procs, &key);
	return p && p->exit_pid == pid ? p : NULL;
}

/* matchBinaries / matchParentBinaries; a process not in the table matches nothing */
__noinline int bin_match(const struct osp_bin_filter *bf, __u32 pid)
{
	struct osprey_proc *p = proc_of(pid);
	bool positive;
	__u32 len;

	if (!bf)
		return false;
	if (!p)
		return false;
	positive = bf->op == OSP_SET_IN || bf->op == OSP_SET_PREFIX || bf->op == OSP_SET_POSTFIX;
	if (positive && bf->follow && (p->follow & (1ULL << (bf->follow_bit & 63))))
		return true;
	len = p->bin_len;
	if (len > OSPREY_BINARY_MAX - 1) {
		/* only the path's first bytes are kept: a prefix can still be decided */
		if (bf->op != OSP_SET_PREFIX && bf->op != OSP_SET_NOT_PREFIX)
			return false;
		len = OSPREY_BINARY_MAX - 1;
	}
	return str_match(bf->op, bf->id, addr_of(p->binary), len);
}

static __always_inline __u32 ns_inum(struct task_struct *task, __u32 idx)
{
	struct nsproxy *nsp = BPF_CORE_READ(task, nsproxy);

	switch (idx) {
	case OSPREY_NS_UTS: return BPF_CORE_READ(nsp, uts_ns, ns.inum);
	case OSPREY_NS_IPC: return BPF_CORE_READ(nsp, ipc_ns, ns.inum);
	case OSPREY_NS_MNT: return BPF_CORE_READ(nsp, mnt_ns, ns.inum);
	case OSPREY_NS_PID: {
		struct pid *pid = BPF_CORE_READ(task, thread_pid);
		unsigned int level = BPF_CORE_READ(pid, level);

		return BPF_CORE_READ(pid, numbers[level & 31].ns, ns.inum);
	}
	case OSPREY_NS_PID_FOR_CHILDREN: return BPF_CORE_READ(nsp, pid_ns_for_children, ns.inum);
	case OSPREY_NS_NET: return BPF_CORE_READ(nsp, net_ns, ns.inum);
	case OSPREY_NS_TIME: return BPF_CORE_READ(nsp, time_ns, ns.inum);
	case OSPREY_NS_TIME_FOR_CHILDREN: return BPF_CORE_READ(nsp, time_ns_for_children, ns.inum);
	case OSPREY_NS_CGROUP: return BPF_CORE_READ(nsp, cgroup_ns, ns.inum);
	case OSPREY_NS_USER: return BPF_CORE_READ(task, cred, user_ns, ns.inum);
	}
	return 0;
}

/* the tgid as the task's own pid namespace numbers it */
static __always_inline __u32 ns_tgid(struct task_struct *task)
{
	struct pid *pid = BPF_CORE_READ(task, group_leader, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);

	return BPF_CORE_READ(pid, numbers[level & 31].nr);
}

static __always_inline bool pid_in(const struct osp_pid_filter *pf, __u32 pid)
{
#pragma unroll
	for (int i = 0; i < OSP_MAX_PIDS; i++) {
		if (i >= pf->n)
			break;
		if (pf->pids[i] == pid)
			return true;
	}
	return false;
}

#define PID_ANCESTORS 8

__noinline int pid_match(const struct osp_pid_filter *pf)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	bool in;

	if (!pf)
		return false;
	in = pid_in(pf, pf->ns_pid ? ns_tgid(task) : BPF_CORE_READ(task, tgid));
	if (!in && pf->follow_forks) {
		struct task_struct *t = task;

		for (int i = 0; i < PID_ANCESTORS; i++) {
			t = BPF_CORE_READ(t, real_parent);
			if (!t)
				break;
			if (pid_in(pf, pf->ns_pid ? ns_tgid(t) : BPF_CORE_READ(t, tgid))) {
				in = true;
				break;
			}
		}
	}
	return pf->op == OSP_SET_IN ? in : !in;
}

static __always_inline bool ns_match(const struct osp_ns_filter *nf, struct task_struct *task)
{
	__u32 inum = ns_inum(task, nf->ns);
	bool in = false;

#pragma unroll
	for (int i = 0; i < OSP_MAX_NS_VALS; i++) {
		if (i < nf->n && nf->inum[i] == inum)
			in = true;
	}
	return nf->op == OSP_SET_IN ? in : !in;
}

static __always_inline bool cap_match(const struct osp_cap_filter *cf, struct task_struct *task)
{
	const struct cred *cred = BPF_CORE_READ(task, cred);
	__u64 caps;

	if (cf->set == 1)
		caps = BPF_CORE_READ(cred, cap_permitted.val);
	else if (cf->set == 2)
		caps = BPF_CORE_READ(cred, cap_inheritable.val);
	else
		caps = BPF_CORE_READ(cred, cap_effective.val);
	return cf->op == OSP_SET_IN ? (caps & cf->mask) != 0 : (caps & cf->mask) == 0;
}

/* ---- selectors ---- */

struct sel_ctx {
	__u32 slot;
	__u32 hook;
	__u32 nsel;
	__u32 mask;    /* entry: out; exit: in */
	__u32 winner;  /* exit/plain: first selector that matched */
	__u32 phase;   /* 0 entry filters, 1 return filters */
};

struct filt_ctx {
	__u32 slot;
	__u32 key;     /* selector key */
	__u32 ret;     /* 1: return filters */
	__u32 n;
	bool ok;
};

static long filt_cb(__u32 j, void *arg)
{
	struct filt_ctx *c = arg;
	struct osp_selector *s = bpf_map_lookup_elem(&selectors, &c->key);
	struct osp_heap *h = bpf_map_lookup_elem(&heap, &c->slot);
	const struct osp_filter *f;

	if (!s || !h || j >= c->n) {
		return 1;
	}
	if (c->ret) {
		if (j >= OSP_MAX_RET_FILTERS)
			return 1;
		f = &s->retf[j];
	} else {
		if (j >= OSP_MAX_ARG_FILTERS)
			return 1;
		f = &s->argf[j];
	}
	if (!filter_match(f, c->slot)) {
		c->ok = false;
		return 1;
	}
	return 0;
}

__noinline int entry_match(__u32 key, __u32 slot)
{
	struct osp_selector *s = bpf_map_lookup_elem(&selectors, &key);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct filt_ctx fc = { .slot = slot, .key = key, .ok = true };
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (!s)
		return false;
	for (int i = 0; i < OSP_MAX_PID_FILTERS; i++) {
		if (i < s->npid && !pid_match(&s->pid[i]))
			return false;
	}
	for (int i = 0; i < OSP_MAX_NS_FILTERS; i++) {
		if (i < s->nns && !ns_match(&s->ns[i], task))
			return false;
	}
	for (int i = 0; i < OSP_MAX_CAP_FILTERS; i++) {
		if (i < s->ncap && !cap_match(&s->cap[i], task))
			return false;
	}
	if (s->bin.op && !bin_match(&s->bin, tgid))
		return false;
	if (s->pbin.op) {
		struct osprey_proc *p = proc_of(tgid);
		__u32 ppid = p ? p->ppid : BPF_CORE_READ(task, real_parent, tgid);

		s = bpf_map_lookup_elem(&selectors, &key);
		if (!s || !bin_match(&s->pbin, ppid))
			return false;
	}
	s = bpf_map_lookup_elem(&selectors, &key);
	if (!s)
		return false;
	fc.n = s->nargf;
	if (fc.n)
		bpf_loop(OSP_MAX_ARG_FILTERS, filt_cb, &fc, 0);
	return fc.ok;
}

static long sel_cb(__u32 i, void *arg)
{
	struct sel_ctx *c = arg;
	__u32 key = c->hook * OSP_MAX_SELECTORS + i;

	if (i >= c->nsel || i >= OSP_MAX_SELECTORS)
		return 1;
	if (c->phase == 0) {
		if (entry_match(key, c->slot))
			c->mask |= 1 << i;
		return 0;
	}
	if (!(c->mask & (1 << i)))
		return 0;
	{
		struct osp_selector *s = bpf_map_lookup_elem(&selectors, &key);
		struct filt_ctx fc = { .slot = c->slot, .key = key, .ret = 1, .ok = true };

		if (!s)
			return 1;
		fc.n = s->nretf;
		if (fc.n)
			bpf_loop(OSP_MAX_RET_FILTERS, filt_cb, &fc, 0);
		if (fc.ok) {
			c->winner = i;
			return 1;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* actions and posting                                                 */

static __always_inline bool refused_target(const struct osp_config *cfg)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (tgid <= 1 || tgid == cfg->agent_pid)
		return true;
	return (BPF_CORE_READ(task, flags) & PF_KTHREAD) != 0;
}

struct hash_ctx {
	__u32 slot;
	__u32 n;
	__u64 h;
};

static long hash_cb(__u32 i, void *arg)
{
	struct hash_ctx *c = arg;
	struct osp_heap *h = bpf_map_lookup_elem(&heap, &c->slot);

	if (!h || i >= c->n)
		return 1;
	c->h = (c->h ^ h->data[i & DMASK]) * 0x100000001b3ULL;
	return 0;
}

/* Rate limit: true when this event repeats one posted less than rate_ns ago. */
static __always_inline bool rate_limited(const struct osp_selector *s, __u32 hook, __u32 sel,
					 __u32 slot, __u32 data_len)
{
	struct osp_keys *k = scratch_keys();
	struct hash_ctx hc = { .slot = slot, .n = data_len > 512 ? 512 : data_len,
			       .h = 0xcbf29ce484222325ULL };
	__u64 now = bpf_ktime_get_ns(), *last, rate = s->rate_ns;
	__u32 scope = s->rate_scope;

	if (!k)
		return false;
	bpf_loop(512, hash_cb, &hc, 0);
	k->rk.hook = hook;
	k->rk.selector = sel;
	k->rk.scope = scope == OSP_RATE_THREAD	? bpf_get_current_pid_tgid()
		      : scope == OSP_RATE_PROCESS ? bpf_get_current_pid_tgid() >> 32
						  : 0;
	k->rk.hash = hc.h;
	last = bpf_map_lookup_elem(&ratelimit, &k->rk);
	if (last && now - *last < rate)
		return true;
	bpf_map_update_elem(&ratelimit, &k->rk, &now, BPF_ANY);
	return false;
}

/* Act on the decision for the event in the slot's heap, and post it. */
__noinline int finish(__u32 slot, __u32 hook, __u32 winner, __u32 nsel)
{
	struct osp_config *cfg = policy_config();
	struct osp_heap *h = bpf_map_lookup_elem(&heap, &slot);
	struct osp_selector *s = NULL;
	__u32 action = OSP_ACT_NONE, sig = 0, result = OSP_RES_NONE, key, len;
	bool post = true;

	if (!cfg || !h)
		return 0;
	if (nsel) {
		if (winner >= OSP_MAX_SELECTORS)
			return 0; /* no selector matched */
		key = hook * OSP_MAX_SELECTORS + winner;
		s = bpf_map_lookup_elem(&selectors, &key);
		if (!s)
			return 0;
		post = s->post;
		action = s->action;
		sig = action == OSP_ACT_SIGKILL ? SIGKILL : s->signal;
	}
	if (action != OSP_ACT_NONE) {
		if (refused_target(cfg)) {
			result = OSP_RES_REFUSED;
			count(OSP_CNT_REFUSED);
		} else if (cfg->mode == 1) {
			result = OSP_RES_MONITORED;
			count(OSP_CNT_MONITORED);
		} else if (action == OSP_ACT_NOTIFY) {
			__u64 id = bpf_get_current_pid_tgid();
			struct osp_enforce e = { .signal = sig, .policy_id = cfg->policy_id };

			result = bpf_map_update_elem(&enforcer, &id, &e, BPF_ANY) == 0 ? OSP_RES_TAKEN
											 : OSP_RES_FAILED;
		} else {
			result = bpf_send_signal(sig) == 0 ? OSP_RES_TAKEN : OSP_RES_FAILED;
		}
		if (result == OSP_RES_TAKEN)
			count(OSP_CNT_TAKEN);
		else if (result == OSP_RES_FAILED)
			count(OSP_CNT_ACTION_FAILED);
	}
	if (!post)
		return 0;
	len = h->ev.data_len;
	if (s && s->rate_ns && rate_limited(s, hook, winner, slot, len)) {
		count(OSP_CNT_RATE_LIMITED);
		return 0;
	}
	h = bpf_map_lookup_elem(&heap, &slot);
	if (!h)
		return 0;
	h->ev.selector = nsel ? winner : OSP_NO_SELECTOR;
	h->ev.action = action;
	h->ev.result = result;
	h->ev.signal = sig;
	len = sizeof(struct osp_event) + (h->ev.data_len & DMASK);
	h->ev.hdr.size = len;
	if (ring_output(&events, &h->ev, len) < 0)
		count(OSP_CNT_RINGBUF_DROP);
	else
		count(OSP_CNT_POSTED);
	return 0;
}

/* ------------------------------------------------------------------ */
/* programs                                                            */

struct copy_ctx {
	__u32 slot;
	__u32 hook;  /* the enter hook: it has the arg specs */
	__u32 nargs;
};

/*
 * returnCopy: at exit, read each char_buf marked OSP_ARGF_AT_RETURN from the
 * user pointer saved at entry, ret bytes (capped at its max), and append it
 * after the args as one more osp_arg_rec. The entry placeholder keeps its
 * place in the arg order; the decoder pairs placeholders with appended
 * records in order.
 */
static long copy_at_return_cb(__u32 i, void *arg)
{
	struct copy_ctx *c = arg;
	struct osp_heap *h = bpf_map_lookup_elem(&heap, &c->slot);
	struct osp_hook *hk = bpf_map_lookup_elem(&hooks, &c->hook);
	struct osp_arg_spec *sp;
	struct osp_arg_rec *rec;
	__u64 idx = i, want;
	__u32 pos, at, len, max;
	__u8 flags = 0;

	if (!h || !hk || i >= c->nargs || i >= OSP_MAX_ARGS)
		return 1;
	CLAMP(idx, OSP_MAX_ARGS);
	sp = &hk->args[idx];
	if (sp->type != OSP_ARG_CHAR_BUF || sp->size_arg != OSP_SIZE_RET)
		return 0;
	pos = h->ev.data_len;
	if (pos > OSP_DATA_SIZE - OSP_STR_MAX - 16)
		return 1; /* no room left: the placeholder stays empty */
	pos &= DMASK;
	at = pos + sizeof(*rec);
	max = sp->max_bytes;
	if (max > OSP_STR_MAX - 1)
		max = OSP_STR_MAX - 1;
	want = h->st.ret > 0 ? (__u64)h->st.ret : 0;
	if (want > max) {
		want = max;
		flags |= OSP_ARGF_TRUNCATED;
	}
	len = want;
	BOUND(len, SMASK);
	if (len && bpf_probe_read_user(&h->data[at & DMASK], len, (void *)h->st.av[idx].val) < 0) {
		flags |= OSP_ARGF_FAULT;
		len = 0;
	}
	rec = (struct osp_arg_rec *)&h->data[pos];
	rec->type = OSP_ARG_CHAR_BUF;
	rec->flags = flags;
	rec->len = len;
	h->ev.data_len = pos + sizeof(*rec) + (len & SMASK);
	return 0;
}

static __always_inline int on_exit(void *ctx, __u32 hook_idx, const struct osp_hook *hk, __u32 slot)
{
	struct osp_pending_key pk = { .pid_tgid = bpf_get_current_pid_tgid(), .hook = hk->pair };
	__u32 enter = hk->pair, nsel, len;
	struct osp_heap *p = bpf_map_lookup_elem(&pending, &pk);
	struct osp_heap *h = bpf_map_lookup_elem(&heap, &slot);
	struct osp_hook *eh;
	struct sel_ctx sc = { .slot = slot, .winner = OSP_MAX_SELECTORS, .phase = 1 };

	if (!p || !h)
		return 0;
	len = offsetof(struct osp_heap, data) + (p->ev.data_len & DMASK);
	if (len > sizeof(*h))
		return 0;
	bpf_probe_read_kernel(h, len, p);
	bpf_map_delete_elem(&pending, &pk);

	h->st.ret = read_field(ctx, hk->ret_offset, hk->ret_size, hk->ret_signed);
	h->ev.ret = h->st.ret;
	h->ev.flags |= OSP_EV_RET;
	eh = bpf_map_lookup_elem(&hooks, &enter);
	if (!eh)
		return 0;
	nsel = eh->nsel;
	{
		struct copy_ctx cc = { .slot = slot, .hook = enter, .nargs = eh->nargs };

		bpf_loop(OSP_MAX_ARGS, copy_at_return_cb, &cc, 0);
	}
	sc.hook = enter;
	sc.nsel = nsel;
	sc.mask = h->st.selmask;
	if (nsel)
		bpf_loop(OSP_MAX_SELECTORS, sel_cb, &sc, 0);
	return finish(slot, enter, sc.winner, nsel);
}

/* A plain or enter hook: read its args, run its selectors. */
static __always_inline int on_enter(void *ctx, __u32 hook_idx, const struct osp_hook *hk, __u32 slot,
				    const struct osp_config *cfg)
{
	struct osp_heap *h = bpf_map_lookup_elem(&heap, &slot);
	struct read_ctx rc = { .tp = ctx, .slot = slot, .hook = hook_idx };
	struct sel_ctx sc = { .slot = slot, .hook = hook_idx, .winner = OSP_MAX_SELECTORS };
	__u64 id = bpf_get_current_pid_tgid();
	__u32 kind = hk->kind;

	if (!h)
		return 0;
	rc.nargs = hk->nargs;
	sc.nsel = hk->nsel;
	__builtin_memset(&h->ev, 0, sizeof(h->ev));
	h->ev.hdr.type = OSPREY_REC_TRACING;
	h->ev.hdr.cpu = slot;
	h->ev.hdr.pid = id >> 32;
	h->ev.hdr.tid = (__u32)id;
	h->ev.policy_id = cfg->policy_id;
	h->ev.hook = hook_idx;
	h->ev.nargs = rc.nargs;
	h->st.hook = hook_idx;
	h->st.ret = 0;
	h->st.selmask = 0;

	bpf_loop(OSP_MAX_ARGS, read_raw_cb, &rc, 0);
	bpf_loop(OSP_MAX_ARGS, read_arg_cb, &rc, 0);

	if (sc.nsel)
		bpf_loop(OSP_MAX_SELECTORS, sel_cb, &sc, 0);

	h = bpf_map_lookup_elem(&heap, &slot);
	if (!h)
		return 0;
	h->ev.data_len = rc.pos & DMASK;

	if (kind == OSP_HOOK_ENTER) {
		struct osp_pending_key pk = { .pid_tgid = id, .hook = hook_idx };

		if (sc.nsel && !sc.mask)
			return 0;
		/* the clock is read only for what may be posted: most calls match nothing */
		h->ev.hdr.ktime = bpf_ktime_get_ns();
		h->st.selmask = sc.nsel ? sc.mask : 0;
		if (bpf_map_update_elem(&pending, &pk, h, BPF_ANY) < 0)
			count(OSP_CNT_PENDING_DROP);
		return 0;
	}
	/* plain: the first selector whose filters all matched */
	if (sc.nsel) {
		for (__u32 i = 0; i < OSP_MAX_SELECTORS; i++) {
			if (sc.mask & (1 << i)) {
				sc.winner = i;
				break;
			}
		}
		if (sc.winner >= OSP_MAX_SELECTORS)
			return 0; /* no selector matched */
	}
	h->ev.hdr.ktime = bpf_ktime_get_ns();
	return finish(slot, hook_idx, sc.winner, sc.nsel);
}

/*
 * True when no selector of the hook can match this call (see osp_hook's
 * quick_n): the hook's string arg, read as the full path would read it for a
 * Prefix filter, is in none of the selectors' prefix sets.
 */
static __always_inline bool quick_reject(void *ctx, const struct osp_hook *hk)
{
	struct osp_keys *k = scratch_keys();
	const struct osp_arg_spec *sp;
	__u32 a = hk->quick_arg, max;
	__u64 ptr;
	long n;

	if (!k || a >= OSP_MAX_ARGS)
		return false;
	sp = &hk->args[a];
	max = sp->max_bytes;
	if (max > OSP_PREFIX_MAX)
		max = OSP_PREFIX_MAX;
	/* a NUL after OSP_PREFIX_MAX bytes spills into the scratch sfx key */
	if (sp->type == OSP_ARG_STR_LOC || sp->type == OSP_ARG_STR_ARRAY) {
		ptr = record_str(ctx, sp);
		n = bpf_probe_read_kernel_str(k->pfx.data, record_str_cap(sp, max) & 0x1ff, (void *)ptr);
	} else {
		ptr = read_field(ctx, sp->offset, 8, false);
		n = bpf_probe_read_user_str(k->pfx.data, (max + 1) & 0x1ff, (void *)ptr);
	}
	if (n <= 0)
		return true; /* unreadable: a Prefix filter fails on it */
	k->pfx.prefixlen = 32 + 8 * (__u32)(n - 1);
	for (__u32 i = 0; i < OSP_MAX_SELECTORS; i++) {
		if (i >= hk->quick_n)
			break;
		k->pfx.id = hk->quick_ids[i];
		if (bpf_map_lookup_elem(&str_prefix, &k->pfx))
			return false;
	}
	return true;
}

struct chain_ctx {
	void *tp;
	__u32 hook;
	__u32 slot;
};

/* one hook of the chain attached to this tracepoint */
static __noinline long chain_cb(__u32 i, void *arg)
{
	struct chain_ctx *c = arg;
	struct osp_config *cfg = policy_config();
	struct osp_hook *hk;
	__u32 idx = c->hook;

	if (!cfg || idx >= OSP_MAX_HOOKS)
		return 1;
	hk = bpf_map_lookup_elem(&hooks, &idx);
	if (!hk)
		return 1;
	c->hook = hk->next;
	if (hk->kind == OSP_HOOK_EXIT)
		on_exit(c->tp, idx, hk, c->slot);
	else if (!(hk->quick_n && quick_reject(c->tp, hk)))
		on_enter(c->tp, idx, hk, c->slot, cfg);
	return 0;
}

SEC("tracepoint")
int osprey_generic(void *ctx)
{
	struct osp_config *cfg = policy_config();
	struct chain_ctx cc = {
		.tp = ctx,
		.hook = bpf_get_attach_cookie(ctx),
		.slot = bpf_get_smp_processor_id(),
	};

	if (!cfg)
		return 0;
	if (cfg->scope_cgroup && bpf_current_task_under_cgroup(&scope_cgroups, 0) != 1)
		return 0;
	/* the first hook at once (most tracepoints have one), bpf_loop for the rest */
	chain_cb(0, &cc);
	if (cc.hook != OSP_NO_HOOK)
		bpf_loop(OSP_MAX_HOOKS - 1, chain_cb, &cc, 0);
	return 0;
}

/* NotifyEnforcer: the thread is leaving its syscall; send what was asked. */
SEC("tracepoint")
int osprey_enforcer(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct osp_enforce *e = bpf_map_lookup_elem(&enforcer, &id);

	if (!e)
		return 0;
	bpf_send_signal(e->signal);
	bpf_map_delete_elem(&enforcer, &id);
	return 0;
}

/* followChildren: a child of a process whose binary matches inherits the mark. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(osprey_follow_fork, struct task_struct *parent, struct task_struct *child)
{
	struct osp_config *cfg = policy_config();
	__u32 cpid = BPF_CORE_READ(child, tgid), ppid = BPF_CORE_READ(parent, tgid);
	struct osprey_proc *cp;
	__u64 bits = 0;

	if (!cfg || !cfg->nfollow || BPF_CORE_READ(child, pid) != cpid)
		return 0;
	for (__u32 i = 0; i < OSP_MAX_FOLLOW; i++) {
		struct osp_bin_filter *ff;
		__u32 k = i;

		if (i >= cfg->nfollow)
			break;
		ff = bpf_map_lookup_elem(&follow_filters, &k);
		if (!ff)
			break;
		if (bin_match(ff, ppid))
			bits |= 1ULL << (ff->follow_bit & 63);
		cfg = policy_config();
		if (!cfg)
			return 0;
	}
	if (!bits)
		return 0;
	cp = proc_of(cpid);
	if (cp)
		__sync_fetch_and_or(&cp->follow, bits);
	return 0;
}
