/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Record layouts shared by the kernel programs and user space.
 *
 * Every ring-buffer record starts with struct osprey_hdr. The TypeScript
 * mirror lives in src/sensors/process/layout.ts; test/unit/layout.test.ts
 * compiles this header and checks that sizes and offsets agree.
 */
#ifndef OSPREY_RECORDS_H
#define OSPREY_RECORDS_H

#ifndef __OSPREY_KERNEL_TYPES
#include <stdint.h>
typedef uint8_t __u8;
typedef uint16_t __u16;
typedef uint32_t __u32;
typedef uint64_t __u64;
#endif

enum osprey_record_type {
	OSPREY_REC_EXEC = 1,
	OSPREY_REC_FORK = 2,
	OSPREY_REC_EXIT = 3,
};

/* osprey_exec.flags */
enum osprey_exec_flags {
	OSPREY_EXEC_ARGS_TRUNCATED = 1 << 0,
	OSPREY_EXEC_PATH_TRUNCATED = 1 << 1,
	OSPREY_EXEC_CWD_TRUNCATED = 1 << 2,
	OSPREY_EXEC_SETUID = 1 << 3,      /* file is setuid and changed the euid */
	OSPREY_EXEC_SETGID = 1 << 4,      /* file is setgid and changed the egid */
	OSPREY_EXEC_FILENAME_TRUNCATED = 1 << 5,
	OSPREY_EXEC_ARGS_FAULT = 1 << 6,  /* argv could not be read */
	OSPREY_EXEC_CWD_UNREACHABLE = 1 << 7, /* cwd outside the process root */
};

enum osprey_ns_index {
	OSPREY_NS_UTS = 0,
	OSPREY_NS_IPC,
	OSPREY_NS_MNT,
	OSPREY_NS_PID,
	OSPREY_NS_PID_FOR_CHILDREN,
	OSPREY_NS_NET,
	OSPREY_NS_TIME,
	OSPREY_NS_TIME_FOR_CHILDREN,
	OSPREY_NS_CGROUP,
	OSPREY_NS_USER,
	OSPREY_NS_COUNT,
};

struct osprey_hdr {
	__u16 type;   /* enum osprey_record_type */
	__u16 cpu;
	__u32 size;   /* whole record, header included */
	__u64 ktime;  /* bpf_ktime_get_ns() when the record was made */
	__u32 pid;    /* thread-group id */
	__u32 tid;
};

/*
 * exec: followed by data[] = path, filename, args, cwd, each with its length
 * below (no terminating NUL). args are argv[0..] separated by NUL.
 */
struct osprey_exec {
	struct osprey_hdr hdr;
	__u32 ppid;
	__u32 uid;
	__u32 euid;
	__u32 gid;
	__u32 egid;
	__u32 suid;
	__u32 sgid;
	__u32 auid;
	__u32 flags;       /* enum osprey_exec_flags */
	__u32 nlink;       /* links of the executed file; 0 = deleted or memfd */
	__u64 ino;         /* inode number of the executed file */
	__u64 cgroup_id;
	__u64 start_time;  /* task->start_time (monotonic ns) */
	__u64 parent_start_time;
	__u64 cap_permitted;
	__u64 cap_effective;
	__u64 cap_inheritable;
	__u32 ns[OSPREY_NS_COUNT];
	__u32 file_uid;
	__u32 file_gid;
	__u32 file_mode;
	__u16 path_len;
	__u16 filename_len;
	__u32 args_len;
	__u16 cwd_len;
	__u16 pad;
	__u32 argc;
};

/* fork: a new thread group (not a thread) */
struct osprey_fork {
	struct osprey_hdr hdr;  /* pid/tid = the child */
	__u32 ppid;
	__u32 pad;
	__u64 start_time;        /* child's task->start_time */
	__u64 parent_start_time;
	__u64 cgroup_id;
};

/* exit: once per thread group, when its last thread exits */
struct osprey_exit {
	struct osprey_hdr hdr;
	__u32 ppid;
	__u32 exit_code;         /* wait status: (status << 8) | signal */
	__u64 start_time;
	__u64 cgroup_id;
};

/* Sensor settings, in the one-entry "osprey_cfg" array map. User space sets
 * them after load; programs read them on every event, so they can change live. */
struct osprey_config {
	__u32 args_max;      /* bytes of argv to capture, < OSPREY_ARGS_MAX */
	__u32 scope_cgroup;  /* 1: only tasks under the cgroup in scope_cgroups[0] */
	__u32 agent_pid;
	__u32 pad;
};

/*
 * The kernel's own table of live processes ("osprey_procs", pid -> entry),
 * kept by the process sensor and read by policy programs (matchBinaries).
 */
#define OSPREY_BINARY_MAX 256

struct osprey_proc {
	__u64 exec_ktime;  /* hdr.ktime of the exec (or fork) that made the entry */
	__u32 ppid;
	__u32 flags;       /* OSPREY_PROC_* */
	__u32 bin_len;     /* length of the full path; binary[] holds its first bytes */
	__u32 exit_pid;    /* an exit slot's process (below); 0 in a process's own entry */
	__u64 follow;      /* bits set by policies with followChildren, inherited at fork */
	char binary[OSPREY_BINARY_MAX];
};

/*
 * osprey_exit deletes a process's entry at sched_process_exit, before the
 * programs that run after it there (a policy on that tracepoint) look it
 * up; it leaves a copy under key OSPREY_EXITED_KEY + CPU, with exit_pid set,
 * for them. Valid while the exiting process is current (no pid reaches this
 * range: pid_max is at most 2^22).
 */
#define OSPREY_EXITED_KEY 0xffff0000u

enum osprey_proc_flags {
	OSPREY_PROC_EXEC = 1 << 0,   /* made by an exec */
	OSPREY_PROC_CLONE = 1 << 1,  /* made by a fork, no exec yet */
	OSPREY_PROC_PROCFS = 1 << 2, /* seeded from /proc by the agent */
	OSPREY_PROC_PREPARED = 1 << 3, /* binary[] is that of the exec under way, whole */
};

/* limits of the variable parts of an exec record */
#define OSPREY_PATH_MAX 4096
#define OSPREY_ARGS_MAX 32768
#define OSPREY_PATH_DEPTH 64

/* index of the per-CPU drop counters in the "drops" map */
enum osprey_drop_index {
	OSPREY_DROP_RINGBUF = 0,   /* bpf_ringbuf reserve/output failed */
	OSPREY_DROP_ARGS = 1,      /* argv read failed */
	OSPREY_DROP_COUNT = 4,
};

#endif
