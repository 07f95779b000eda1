/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The TracingPolicy engine's tables and records, shared by bpf/generic.bpf.c
 * and user space.
 *
 * A policy is compiled (src/sensors/tracing/tables.ts) into plain map data:
 * one struct osp_hook per attached tracepoint, up to OSP_MAX_SELECTORS
 * struct osp_selector per hook, and value sets in hash maps and LPM tries
 * keyed by a filter id. One generic program interprets them; the hook it runs
 * for is its attach cookie. The kernel attaches a program to a tracepoint only
 * once, so hooks on the same tracepoint are chained (osp_hook.next) and the
 * program, attached with the first one's index, runs them all.
 *
 * The TypeScript mirror is src/sensors/tracing/layout.ts; the unit test
 * test/unit/tracing-layout.test.ts compiles this header and compares.
 */
#ifndef OSPREY_POLICY_H
#define OSPREY_POLICY_H

#include "records.h"

#ifndef __OSPREY_KERNEL_TYPES
typedef int64_t __s64;
#endif

/* -------- limits (mirrored in layout.ts as OSP_LIMITS) -------- */
#define OSP_MAX_HOOKS 64          /* tracepoints per policy */
#define OSP_MAX_ARGS 5            /* args read per hook */
#define OSP_MAX_SELECTORS 5       /* per hook, first match wins */
#define OSP_MAX_ARG_FILTERS 5     /* matchArgs per selector (ANDed) */
#define OSP_MAX_RET_FILTERS 2     /* matchReturnArgs per selector */
#define OSP_MAX_FILTER_VALS 16    /* inline u64 slots of a filter: ints, or 8 ranges */
#define OSP_MAX_PID_FILTERS 2
#define OSP_MAX_PIDS 8
#define OSP_MAX_NS_FILTERS 4
#define OSP_MAX_NS_VALS 4
#define OSP_MAX_CAP_FILTERS 3
#define OSP_MAX_FOLLOW 8          /* followChildren binary filters per policy */
#define OSP_STR_MAX 4096          /* bytes read of a string/path/char_buf, NUL included */
#define OSP_PREFIX_MAX 252        /* bytes of a Prefix value (LPM data is at most 256 bytes, 4 are the id) */
#define OSP_POSTFIX_MAX 128       /* bytes of a Postfix key */
#define OSP_SUBSTR_MAX 32         /* bytes of a SubString needle */
#define OSP_SUBSTR_SCAN 256       /* bytes of the haystack SubString scans */
#define OSP_SUBSTR_VALS 4         /* needles per SubString filter */
#define OSP_DATA_SIZE 32768       /* arg payload area of a record */
#define OSP_STR_BUCKETS 8         /* Equal maps: keys of 32, 64, ... 4096 bytes */
#define OSP_NO_ARG 0xff           /* osp_arg_spec.size_arg: none */
#define OSP_SIZE_RET 0xfe         /* osp_arg_spec.size_arg: char_buf read at exit, ret bytes (returnCopy) */
#define OSP_ARG_RETURN 0xff       /* osp_filter.arg: the return value */
#define OSP_NO_SELECTOR 0xff      /* osp_event.selector: hook without selectors */
#define OSP_NO_HOOK 0xffffffff    /* osp_hook.next: end of the chain */

enum osp_hook_kind {
	OSP_HOOK_PLAIN = 0,  /* decide and act at this tracepoint */
	OSP_HOOK_ENTER = 1,  /* read args, filter, stash; decided at the paired exit */
	OSP_HOOK_EXIT = 2,   /* complete the stashed event with the return value */
};

/* how an arg is read (and the type of its record in an event) */
enum osp_arg_type {
	OSP_ARG_NONE = 0,
	OSP_ARG_INT = 1,       /* the field itself, sign- or zero-extended to 64 bits */
	OSP_ARG_STRING = 2,    /* user pointer to a NUL-terminated string */
	OSP_ARG_CHAR_BUF = 3,  /* user pointer + byte count from another arg */
	OSP_ARG_FD = 4,        /* int fd, resolved to the open file's path */
	OSP_ARG_SOCKADDR = 5,  /* user pointer to struct sockaddr */
	/* strings in the tracepoint record itself (kernel memory), read and
	 * reported as OSP_ARG_STRING: */
	OSP_ARG_STR_LOC = 6,   /* __data_loc char[]: the field holds (length << 16 | offset) */
	OSP_ARG_STR_ARRAY = 7, /* char name[size] */
};

/* filter operators (TypeScript maps Tetragon's names onto these) */
enum osp_op {
	OSP_OP_EQ = 1,          /* ints: in the value set; strings: equal to one */
	OSP_OP_NEQ = 2,
	OSP_OP_PREFIX = 3,
	OSP_OP_NOT_PREFIX = 4,
	OSP_OP_POSTFIX = 5,
	OSP_OP_NOT_POSTFIX = 6,
	OSP_OP_SUBSTRING = 7,
	OSP_OP_MASK = 8,        /* value & vals[0] != 0 */
	OSP_OP_GT = 9,
	OSP_OP_LT = 10,
	OSP_OP_IN_RANGE = 11,   /* vals[] = lo0, hi0, lo1, hi1... (inclusive) */
	OSP_OP_NOT_IN_RANGE = 12,
	OSP_OP_IN_MAP = 13,     /* value set, plus inline ranges */
	OSP_OP_NOT_IN_MAP = 14,
	OSP_OP_ADDR = 15,       /* sockaddr address in a CIDR of the filter's LPM set */
	OSP_OP_NOT_ADDR = 16,
	OSP_OP_PORT = 17,       /* sockaddr port in one of the inline ranges */
	OSP_OP_NOT_PORT = 18,
	OSP_OP_FAMILY = 19,     /* sockaddr family is one of vals[] */
};

enum osp_set_op {
	OSP_SET_IN = 1,
	OSP_SET_NOT_IN = 2,
	OSP_SET_PREFIX = 3,
	OSP_SET_NOT_PREFIX = 4,
	OSP_SET_POSTFIX = 5,
	OSP_SET_NOT_POSTFIX = 6,
};

/* osp_selector.action */
enum osp_action {
	OSP_ACT_NONE = 0,
	OSP_ACT_SIGKILL = 1,
	OSP_ACT_SIGNAL = 2,
	OSP_ACT_NOTIFY = 3,     /* NotifyEnforcer: signal when the thread leaves the syscall */
};

/* osp_event.result */
enum osp_action_result {
	OSP_RES_NONE = 0,       /* no enforcement action */
	OSP_RES_TAKEN = 1,
	OSP_RES_MONITORED = 2,  /* policy in monitor mode: counted, not taken */
	OSP_RES_REFUSED = 3,    /* target is PID 1, a kernel thread or the agent */
	OSP_RES_FAILED = 4,     /* the helper failed (or the enforcer table was full) */
};

enum osp_rate_scope {
	OSP_RATE_THREAD = 0,
	OSP_RATE_PROCESS = 1,
	OSP_RATE_GLOBAL = 2,
};

/* per-CPU counters, "counters" map index */
enum osp_counter {
	OSP_CNT_POSTED = 0,
	OSP_CNT_TAKEN = 1,
	OSP_CNT_MONITORED = 2,
	OSP_CNT_REFUSED = 3,
	OSP_CNT_RATE_LIMITED = 4,
	OSP_CNT_RINGBUF_DROP = 5,
	OSP_CNT_PENDING_DROP = 6,   /* enter event not stashed: pending table full */
	OSP_CNT_ACTION_FAILED = 7,
	OSP_CNT_COUNT = 8,
};

struct osp_arg_spec {
	__u16 offset;      /* byte offset of the field in the tracepoint record */
	__u8 size;         /* 1, 2, 4 or 8 */
	__u8 type;         /* enum osp_arg_type */
	__u8 is_signed;
	__u8 size_arg;     /* char_buf: index of the arg holding the byte count, or OSP_NO_ARG */
	__u16 max_bytes;   /* string/char_buf/fd path: bytes kept, < OSP_STR_MAX */
};

struct osp_hook {
	__u32 kind;        /* enum osp_hook_kind */
	__u32 pair;        /* enter: the exit hook's index; exit: the enter hook's index */
	__u32 nargs;
	__u32 nsel;
	__u16 ret_offset;  /* exit: where ret is in sys_exit_* */
	__u8 ret_size;
	__u8 ret_signed;
	__u32 next;        /* next hook on the same tracepoint, or OSP_NO_HOOK */
	struct osp_arg_spec args[OSP_MAX_ARGS];
	/*
	 * Quick reject: when every selector has a Prefix (or Equal: its values
	 * are in the prefix set too) filter on the same string arg, a call
	 * whose string starts with none of those filters' values cannot match
	 * any selector; it is dropped after reading that one string (most calls
	 * of a file-monitoring policy match nothing).
	 * quick_n: selectors (0: no quick reject), quick_ids: each one's filter id.
	 */
	__u8 quick_n;
	__u8 quick_arg;
	__u16 quick_pad;
	__u32 quick_ids[OSP_MAX_SELECTORS];
};

enum osp_filter_flags {
	OSP_FF_SIGNED = 1 << 0,  /* compare ints as signed */
	OSP_FF_INT = 1 << 1,     /* fd arg: compare the number, not the path */
};

struct osp_filter {
	__u8 arg;          /* index into the hook's args, or OSP_ARG_RETURN */
	__u8 op;           /* enum osp_op */
	__u8 nvals;        /* used slots of vals[] */
	__u8 flags;        /* enum osp_filter_flags */
	__u32 id;          /* key prefix of this filter's values in the set maps */
	__u64 vals[OSP_MAX_FILTER_VALS];
};

struct osp_pid_filter {
	__u8 op;           /* OSP_SET_IN / OSP_SET_NOT_IN */
	__u8 follow_forks; /* also match descendants of the pids */
	__u8 ns_pid;       /* pids as seen in the task's own pid namespace */
	__u8 n;
	__u32 pids[OSP_MAX_PIDS];
};

struct osp_ns_filter {
	__u8 ns;           /* enum osprey_ns_index */
	__u8 op;           /* OSP_SET_IN / OSP_SET_NOT_IN */
	__u8 n;
	__u8 pad;
	__u32 inum[OSP_MAX_NS_VALS];
};

struct osp_cap_filter {
	__u8 set;          /* 0 effective, 1 permitted, 2 inheritable */
	__u8 op;           /* OSP_SET_IN: any of mask; OSP_SET_NOT_IN: none of mask */
	__u8 pad[6];
	__u64 mask;
};

struct osp_bin_filter {
	__u8 op;           /* enum osp_set_op; 0 = no filter */
	__u8 follow;       /* followChildren */
	__u8 follow_bit;   /* bit in osprey_proc.follow */
	__u8 pad;
	__u32 id;
};

struct osp_selector {
	__u8 nargf;
	__u8 nretf;
	__u8 npid;
	__u8 nns;
	__u8 ncap;
	__u8 post;         /* post an event when it matches */
	__u8 rate_scope;   /* enum osp_rate_scope */
	__u8 action;       /* enum osp_action */
	__u32 signal;      /* Signal / NotifyEnforcer */
	__u32 pad;
	__u64 rate_ns;     /* 0: no rate limit */
	struct osp_bin_filter bin;
	struct osp_bin_filter pbin;
	struct osp_filter argf[OSP_MAX_ARG_FILTERS];
	struct osp_filter retf[OSP_MAX_RET_FILTERS];
	struct osp_pid_filter pid[OSP_MAX_PID_FILTERS];
	struct osp_ns_filter ns[OSP_MAX_NS_FILTERS];
	struct osp_cap_filter cap[OSP_MAX_CAP_FILTERS];
};

/* The one-entry "osp_cfg" array. */
struct osp_config {
	__u32 mode;          /* 0 enforce, 1 monitor */
	__u32 agent_pid;     /* never signalled */
	__u32 scope_cgroup;  /* 1: only tasks under the cgroup in scope_cgroups[0] */
	__u32 policy_id;
	__u32 nfollow;       /* used entries of follow_filters */
	__u32 pad;
};

/* ---- set-map keys ---- */
struct osp_int_key {
	__u32 id;
	__u32 pad;
	__u64 value;
};

/* Equal maps: one per bucket size 32 << b, the string zero-padded */
struct osp_str_key {
	__u32 id;
	__u32 len;
	__u8 data[OSP_STR_MAX];
};

struct osp_prefix_key {
	__u32 prefixlen;   /* 32 + 8 * bytes */
	__u32 id;
	__u8 data[OSP_PREFIX_MAX];
};

struct osp_postfix_key {
	__u32 prefixlen;
	__u32 id;
	__u8 data[OSP_POSTFIX_MAX];   /* reversed */
};

struct osp_addr_key {
	__u32 prefixlen;   /* 64 + CIDR bits */
	__u32 id;
	__u32 family;      /* AF_INET 2 / AF_INET6 10 */
	__u8 addr[16];
};

/* SubString needles, "substr" array at id * OSP_SUBSTR_VALS + k */
struct osp_needle {
	__u32 len;         /* 0: unused */
	__u8 data[OSP_SUBSTR_MAX];
};

struct osp_rate_key {
	__u32 hook;
	__u32 selector;
	__u64 scope;       /* pid_tgid, tgid or 0 */
	__u64 hash;        /* of the event's args */
};

/* "pending": an enter hook's event waiting for its exit */
struct osp_pending_key {
	__u64 pid_tgid;
	__u32 hook;        /* the enter hook */
	__u32 pad;
};

struct osp_enforce {
	__u32 signal;
	__u32 policy_id;
};

/* ---- records ---- */
#define OSPREY_REC_TRACING 16

enum osp_event_flags {
	OSP_EV_RET = 1 << 0,   /* ret is set */
};

struct osp_event {
	struct osprey_hdr hdr;  /* type OSPREY_REC_TRACING */
	__u32 policy_id;
	__u16 hook;             /* policy-local hook index (the enter hook of a pair) */
	__u8 selector;          /* matching selector, OSP_NO_SELECTOR if the hook has none */
	__u8 nargs;
	__u8 action;            /* enum osp_action */
	__u8 result;            /* enum osp_action_result */
	__u8 signal;
	__u8 flags;             /* enum osp_event_flags */
	__u32 data_len;         /* bytes of args after this struct */
	__s64 ret;
};

/* followed by data_len bytes of args: each an osp_arg_rec and its payload */
enum osp_arg_flags {
	OSP_ARGF_TRUNCATED = 1 << 0,
	OSP_ARGF_FAULT = 1 << 1,       /* user memory could not be read */
	OSP_ARGF_NO_FILE = 1 << 2,     /* fd: no open file with that number */
	OSP_ARGF_AT_RETURN = 1 << 3,   /* char_buf copied at exit: its payload is appended after the args */
};

struct osp_arg_rec {
	__u8 type;     /* enum osp_arg_type */
	__u8 flags;    /* enum osp_arg_flags */
	__u16 len;     /* payload bytes after this header */
};

/*
 * Payloads: INT 8 bytes (s64/u64 LE); STRING/CHAR_BUF the bytes (no NUL);
 * FD a __s32 fd then the path; SOCKADDR struct osp_sockaddr.
 */
struct osp_sockaddr {
	__u16 family;
	__u16 port;        /* host order */
	__u8 addr[16];     /* IPv4 in the first 4 bytes */
};

#endif
