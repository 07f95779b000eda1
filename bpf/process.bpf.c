// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Process lifecycle sensor: exec, fork (new thread groups) and exit (last
 * thread of a group). One record per event into the shared ring buffer.
 */
#include "common.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define PATH_MASK (OSPREY_PATH_MAX - 1)
#define ARGS_MASK (OSPREY_ARGS_MAX - 1)
#define NAME_MAX_LEN 255

/* Mask x in a way the compiler cannot fold away, so the verifier sees the bound. */
#define BOUND(x, mask) asm volatile("%0 &= %1" : "+r"(x) : "i"(mask))

/*
 * Scratch space for one exec record: the header, then a data area that every
 * write indexes through DATA_MASK (so the verifier can bound it), with room
 * for a name's worth of overflow at the end.
 */
#define DATA_SIZE 65536
#define DATA_MASK (DATA_SIZE - 1)

struct exec_scratch {
	struct osprey_exec e;
	__u8 data[DATA_SIZE + NAME_MAX_LEN + 1];
};

/* One slot per CPU; user space sets max_entries to the number of CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_scratch);
} exec_heap SEC(".maps");

/* pid -> live process; other objects share it (bpf_map__reuse_fd) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* memory follows the live processes */
	__type(key, __u32);
	__type(value, struct osprey_proc);
} osprey_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct osprey_proc);
} proc_heap SEC(".maps");

static __always_inline __u8 *osprey_path_buf(__u32 slot)
{
	struct exec_scratch *s = bpf_map_lookup_elem(&exec_heap, &slot);

	return s ? s->data : NULL;
}

#define OSPREY_PATH_DATA_MASK DATA_MASK
#include "path.bpf.h"

/*
 * The programs below are tp_btf: their arguments are BTF pointers, so a field
 * is read with a plain (CO-RE relocated) load that the verifier turns into a
 * fault-safe one, not with a bpf_probe_read_kernel() call apiece.
 */
static __always_inline void read_namespaces(struct task_struct *task, __u32 *ns)
{
	struct nsproxy *nsp = task->nsproxy;

	if (nsp) {
		ns[OSPREY_NS_UTS] = nsp->uts_ns->ns.inum;
		ns[OSPREY_NS_IPC] = nsp->ipc_ns->ns.inum;
		ns[OSPREY_NS_MNT] = nsp->mnt_ns->ns.inum;
		ns[OSPREY_NS_PID_FOR_CHILDREN] = nsp->pid_ns_for_children->ns.inum;
		ns[OSPREY_NS_NET] = nsp->net_ns->ns.inum;
		ns[OSPREY_NS_TIME] = nsp->time_ns->ns.inum;
		ns[OSPREY_NS_TIME_FOR_CHILDREN] = nsp->time_ns_for_children->ns.inum;
		ns[OSPREY_NS_CGROUP] = nsp->cgroup_ns->ns.inum;
	}
	/* the task's own pid namespace: the one at its pid's level (an index
	 * the verifier does not allow into a BTF pointer: read with helpers) */
	{
		struct pid *pid = BPF_CORE_READ(task, thread_pid);
		unsigned int level = BPF_CORE_READ(pid, level);

		ns[OSPREY_NS_PID] = BPF_CORE_READ(pid, numbers[level & 31].ns, ns.inum);
	}
	ns[OSPREY_NS_USER] = task->cred->user_ns->ns.inum;
}

/* The CPU's exec scratch, for an exec in scope; NULL otherwise. */
static __always_inline struct exec_scratch *exec_scratch(const struct osprey_config *cfg, __u32 slot)
{
	if (!in_scope(cfg))
		return NULL;
	return bpf_map_lookup_elem(&exec_heap, &slot);
}

/* The table entry's binary: the path's length, and as much of it as fits. */
static __always_inline void set_binary(struct osprey_proc *p, const __u8 *path, __u32 len)
{
	p->bin_len = len;
	if (len > OSPREY_BINARY_MAX - 1)
		len = OSPREY_BINARY_MAX - 1;
	__builtin_memset(p->binary, 0, sizeof(p->binary));
	bpf_probe_read_kernel(p->binary, len & (OSPREY_BINARY_MAX - 1), path);
}

/*
 * Keep the kernel's process table in step with an exec. The entry its fork
 * made is rewritten in place: its only readers are the process itself and
 * its children's programs, and replacing it would allocate a new element
 * and free the old one on every exec.
 */
static __always_inline void remember_exec(const struct osprey_exec *e, const __u8 *path)
{
	__u32 zero = 0, pid = e->hdr.pid, len = e->path_len;
	struct osprey_proc *p = bpf_map_lookup_elem(&osprey_procs, &pid);
	bool fresh = !p;

	if (fresh) {
		p = bpf_map_lookup_elem(&proc_heap, &zero);
		if (!p)
			return;
		p->follow = 0;
	}
	/* followChildren marks survive an exec, as they do in the forked child */
	p->exec_ktime = e->hdr.ktime;
	p->ppid = e->ppid;
	p->flags = OSPREY_PROC_EXEC;
	set_binary(p, path, len);
	if (fresh)
		bpf_map_update_elem(&osprey_procs, &pid, p, BPF_ANY);
}

/*
 * At an exec's point of no return (the exec will succeed or the process
 * die), enter the new binary in the process table. Programs that run at
 * sched_process_exec itself (a policy on that tracepoint) then find the new
 * binary whatever order the kernel runs them in: a perf tracepoint that some
 * other tool enabled before this agent started runs before osprey_exec.
 */
SEC("tp_btf/sched_prepare_exec")
int BPF_PROG(osprey_prepare_exec, struct task_struct *task, struct linux_binprm *bprm)
{
	struct osprey_config *cfg = osprey_config();
	__u32 slot = bpf_get_smp_processor_id(), pid = task->tgid, zero = 0, len;
	struct exec_scratch *s;
	struct osprey_proc *p;
	struct path root;
	struct file *file;
	bool trunc;

	s = exec_scratch(cfg, slot);
	if (!s)
		return 0;
	file = bprm->file;
	root.dentry = task->fs->root.dentry;
	root.mnt = task->fs->root.mnt;
	len = d_path_walk(file->f_path.dentry, file->f_path.mnt, &root, slot, 0, &trunc);
	p = bpf_map_lookup_elem(&osprey_procs, &pid);
	if (!p) {
		/* a process from before the agent, not seeded: osprey_exec completes it */
		p = bpf_map_lookup_elem(&proc_heap, &zero);
		if (!p)
			return 0;
		__builtin_memset(p, 0, sizeof(*p));
		p->ppid = task->real_parent->tgid;
		p->flags = OSPREY_PROC_CLONE;
		set_binary(p, s->data, len);
		bpf_map_update_elem(&osprey_procs, &pid, p, BPF_NOEXIST);
		return 0;
	}
	set_binary(p, s->data, len);
	/* osprey_exec copies a whole path from here instead of walking it again */
	if (!trunc && len < OSPREY_BINARY_MAX)
		p->flags |= OSPREY_PROC_PREPARED;
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(osprey_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	struct osprey_config *cfg = osprey_config();
	__u32 slot = bpf_get_smp_processor_id();
	struct exec_scratch *s;
	struct osprey_exec *e;
	const struct cred *cred;
	struct file *file;
	struct inode *inode;
	struct path root, pwd;
	struct mm_struct *mm;
	struct fs_struct *fs;
	__u32 off, len, args_max;
	bool trunc;

	s = exec_scratch(cfg, slot);
	if (!s)
		return 0;
	e = &s->e;

	__builtin_memset(e, 0, sizeof(*e));
	e->hdr.type = OSPREY_REC_EXEC;
	e->hdr.cpu = slot;
	e->hdr.ktime = bpf_ktime_get_ns();
	e->hdr.pid = task->tgid;
	e->hdr.tid = task->pid;
	e->ppid = task->real_parent->tgid;
	e->start_time = task->start_time;
	e->parent_start_time = task->real_parent->group_leader->start_time;
	e->cgroup_id = bpf_get_current_cgroup_id();

	cred = task->cred;
	e->uid = cred->uid.val;
	e->euid = cred->euid.val;
	e->gid = cred->gid.val;
	e->egid = cred->egid.val;
	e->suid = cred->suid.val;
	e->sgid = cred->sgid.val;
	e->cap_permitted = cred->cap_permitted.val;
	e->cap_effective = cred->cap_effective.val;
	e->cap_inheritable = cred->cap_inheritable.val;
	if (bpf_core_field_exists(task->loginuid))
		e->auid = task->loginuid.val;
	else
		e->auid = (__u32)-1;
	e->argc = bprm->argc;
	read_namespaces(task, e->ns);

	file = bprm->file;
	inode = file->f_inode;
	e->ino = inode->i_ino;
	e->nlink = inode->__i_nlink;
	e->file_uid = inode->i_uid.val;
	e->file_gid = inode->i_gid.val;
	e->file_mode = inode->i_mode;
	/* S_ISUID / S_ISGID that took effect: the new euid/egid is the file's */
	if ((e->file_mode & 04000) && e->euid == e->file_uid && e->uid != e->euid)
		e->flags |= OSPREY_EXEC_SETUID;
	if ((e->file_mode & 02000) && e->egid == e->file_gid && e->gid != e->egid)
		e->flags |= OSPREY_EXEC_SETGID;

	fs = task->fs;
	root.dentry = fs->root.dentry;
	root.mnt = fs->root.mnt;
	pwd.dentry = fs->pwd.dentry;
	pwd.mnt = fs->pwd.mnt;

	/* 1. the executed file, resolved by the kernel (at sched_prepare_exec) */
	{
		__u32 pid = e->hdr.pid;
		struct osprey_proc *p = bpf_map_lookup_elem(&osprey_procs, &pid);

		if (p && (p->flags & OSPREY_PROC_PREPARED) && p->bin_len < OSPREY_BINARY_MAX) {
			len = p->bin_len;
			bpf_probe_read_kernel(s->data, len & (OSPREY_BINARY_MAX - 1), p->binary);
		} else {
			len = d_path_walk(file->f_path.dentry, file->f_path.mnt, &root, slot, 0,
					  &trunc);
			if (trunc)
				e->flags |= OSPREY_EXEC_PATH_TRUNCATED;
		}
	}
	e->path_len = len & PATH_MASK;
	off = e->path_len;

	/* 2. the filename as passed to execve */
	{
		long n = bpf_probe_read_kernel_str(&s->data[off & PATH_MASK], OSPREY_PATH_MAX,
						   bprm->filename);
		if (n > 0) {
			if (n == OSPREY_PATH_MAX)
				e->flags |= OSPREY_EXEC_FILENAME_TRUNCATED;
			e->filename_len = (n - 1) & PATH_MASK;
		}
		off += e->filename_len;
	}

	/* 3. argv, as the new program sees it */
	args_max = cfg ? cfg->args_max : 4096;
	if (args_max > OSPREY_ARGS_MAX - 1)
		args_max = OSPREY_ARGS_MAX - 1;
	mm = task->mm;
	{
		unsigned long as = mm->arg_start;
		unsigned long ae = mm->arg_end;

		len = ae > as ? ae - as : 0;
		if (len > args_max) {
			len = args_max;
			e->flags |= OSPREY_EXEC_ARGS_TRUNCATED;
		}
		len &= ARGS_MASK;
		/* path and filename are each < OSPREY_PATH_MAX, so the mask keeps off */
		off &= 2 * OSPREY_PATH_MAX - 1;
		BOUND(len, ARGS_MASK);
		if (len && bpf_probe_read_user(&s->data[off], len, (void *)as) < 0) {
			e->flags |= OSPREY_EXEC_ARGS_FAULT;
			count_drop(OSPREY_DROP_ARGS);
			len = 0;
		}
		e->args_len = len;
	}

	/* 4. the working directory */
	off = (off & (2 * OSPREY_PATH_MAX - 1)) + (len & ARGS_MASK);
	len = d_path_walk(pwd.dentry, pwd.mnt, &root, slot, off, &trunc);
	if (trunc)
		e->flags |= OSPREY_EXEC_CWD_TRUNCATED;
	e->cwd_len = len & PATH_MASK;
	off += e->cwd_len;

	e->hdr.size = sizeof(*e) + off;
	remember_exec(e, s->data);
	len = e->hdr.size;
	asm volatile("" : "+r"(len)); /* check the value we pass, not a reload */
	if (len > sizeof(*s))
		return 0;
	emit(s, len);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(osprey_fork, struct task_struct *parent, struct task_struct *child)
{
	struct osprey_config *cfg = osprey_config();
	struct osprey_fork f = {};

	/* threads share the group's process record */
	if (child->pid != child->tgid)
		return 0;
	if (!in_scope(cfg))
		return 0;
	f.hdr.type = OSPREY_REC_FORK;
	f.hdr.cpu = bpf_get_smp_processor_id();
	f.hdr.size = sizeof(f);
	f.hdr.ktime = bpf_ktime_get_ns();
	f.hdr.pid = child->tgid;
	f.hdr.tid = child->pid;
	f.ppid = parent->tgid;
	f.start_time = child->start_time;
	f.parent_start_time = parent->group_leader->start_time;
	f.cgroup_id = bpf_get_current_cgroup_id();
	{
		/* the child runs its parent's binary until it execs */
		__u32 ppid = f.ppid, cpid = f.hdr.pid;
		struct osprey_proc *pp = bpf_map_lookup_elem(&osprey_procs, &ppid);
		if (pp) {
			bpf_map_update_elem(&osprey_procs, &cpid, pp, BPF_ANY);
			pp = bpf_map_lookup_elem(&osprey_procs, &cpid);
			if (pp) {
				pp->exec_ktime = f.hdr.ktime;
				pp->ppid = ppid;
				pp->flags = OSPREY_PROC_CLONE;
			}
		}
	}
	emit(&f, sizeof(f));
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(osprey_exit, struct task_struct *task, bool group_dead)
{
	struct osprey_config *cfg = osprey_config();
	struct osprey_exit x = {};

	if (!group_dead)
		return 0;
	if (!in_scope(cfg))
		return 0;
	x.hdr.type = OSPREY_REC_EXIT;
	x.hdr.cpu = bpf_get_smp_processor_id();
	x.hdr.size = sizeof(x);
	x.hdr.ktime = bpf_ktime_get_ns();
	x.hdr.pid = task->tgid;
	x.hdr.tid = task->pid;
	x.ppid = task->real_parent->tgid;
	x.start_time = task->group_leader->start_time;
	/* a group exit (exit_group, fatal signal) records its code on the signal struct */
	if (task->signal->flags & 0x00000004 /* SIGNAL_GROUP_EXIT */)
		x.exit_code = task->signal->group_exit_code;
	else
		x.exit_code = task->exit_code;
	x.cgroup_id = bpf_get_current_cgroup_id();
	{
		__u32 pid = x.hdr.pid, key = OSPREY_EXITED_KEY + x.hdr.cpu;
		struct osprey_proc *p = bpf_map_lookup_elem(&osprey_procs, &pid), *slot;

		if (p) {
			/* the CPU's exit slot is made once and rewritten in place */
			slot = bpf_map_lookup_elem(&osprey_procs, &key);
			if (!slot) {
				bpf_map_update_elem(&osprey_procs, &key, p, BPF_NOEXIST);
				slot = bpf_map_lookup_elem(&osprey_procs, &key);
			}
			if (slot) {
				bpf_probe_read_kernel(slot, sizeof(*slot), p);
				slot->exit_pid = pid;
			}
			bpf_map_delete_elem(&osprey_procs, &pid);
		}
	}
	emit(&x, sizeof(x));
	return 0;
}
