/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Absolute path of a (dentry, vfsmount) as the task sees it, walked in the
 * kernel like d_path: up to the task's root (or the global root), then
 * written down root first. Shared by the process sensor and the policy engine.
 *
 * The includer defines, before including this header:
 *   OSPREY_PATH_DATA_MASK   mask applied to every write offset (power of 2 - 1)
 *   osprey_path_buf(slot)   a function returning the destination buffer of the
 *                           slot, at least OSPREY_PATH_DATA_MASK + 1 + 256 bytes,
 *                           or NULL
 */
#ifndef OSPREY_PATH_BPF_H
#define OSPREY_PATH_BPF_H

#ifndef OSPREY_PATH_DATA_MASK
#error "define OSPREY_PATH_DATA_MASK and osprey_path_buf() before including path.bpf.h"
#endif

#define OSPREY_NAME_MAX_LEN 255

/*
 * A kernel address as a read-only BTF pointer (the verifier turns the call
 * into a plain move), so that its fields are read with plain loads the
 * verifier makes fault-safe instead of a bpf_probe_read_kernel() call each:
 * the walk reads ~6 fields per path component. Works from tracepoint
 * programs as well as tp_btf ones.
 */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;
#define OSPREY_BTF(type, addr) ((type *)bpf_rdonly_cast((void *)(addr), bpf_core_type_id_kernel(type)))

/* The path components found walking up, leaf first. */
struct path_walk {
	const unsigned char *name[OSPREY_PATH_DEPTH];
	__u32 len[OSPREY_PATH_DEPTH];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_walk);
} walk_heap SEC(".maps");

struct walk_up_ctx {
	struct dentry *dentry;
	struct mount *mnt;
	struct dentry *root_dentry;
	struct vfsmount *root_mnt;
	__u32 n;
	bool done;
};

static long walk_up(__u32 i, void *arg)
{
	struct walk_up_ctx *c = arg;
	struct dentry *dentry = OSPREY_BTF(struct dentry, c->dentry);
	struct mount *mnt = OSPREY_BTF(struct mount, c->mnt);
	__u32 zero = 0, n = c->n;
	struct path_walk *w = bpf_map_lookup_elem(&walk_heap, &zero);
	struct dentry *mnt_root = mnt->mnt.mnt_root;
	struct dentry *parent = dentry->d_parent;

	if (!w || (dentry == c->root_dentry && &mnt->mnt == c->root_mnt)) {
		c->done = true;
		return 1;
	}
	if (dentry == mnt_root || dentry == parent) {
		struct mount *mnt_parent = mnt->mnt_parent;

		if (dentry != mnt_root) {
			/* a pseudo file (memfd, pipe, anon inode): its own name is
			 * the whole path, as d_path shows it */
			if (n < OSPREY_PATH_DEPTH) {
				w->name[n] = dentry->d_name.name;
				w->len[n] = dentry->d_name.len;
				c->n = n + 1;
			}
			c->done = true;
			return 1;
		}
		if (mnt_parent == mnt) {
			c->done = true; /* the global root, or a detached mount */
			return 1;
		}
		c->dentry = mnt->mnt_mountpoint;
		c->mnt = mnt_parent;
		return 0;
	}
	if (n >= OSPREY_PATH_DEPTH)
		return 1;
	w->name[n] = dentry->d_name.name;
	w->len[n] = dentry->d_name.len;
	c->n = n + 1;
	c->dentry = parent;
	return 0;
}

struct write_down_ctx {
	__u32 slot;   /* destination slot, for osprey_path_buf() */
	__u32 base;   /* where in the buffer the path starts */
	__u32 n;      /* components */
	__u32 off;    /* bytes written so far */
	bool truncated;
};

static long write_down(__u32 i, void *arg)
{
	struct write_down_ctx *c = arg;
	__u32 zero = 0;
	struct path_walk *w = bpf_map_lookup_elem(&walk_heap, &zero);
	__u8 *buf = osprey_path_buf(c->slot);
	__u32 k, len, at;

	if (!w || !buf || i >= c->n)
		return 1;
	k = (c->n - 1 - i) & (OSPREY_PATH_DEPTH - 1);
	len = w->len[k];
	if (len > OSPREY_NAME_MAX_LEN)
		len = OSPREY_NAME_MAX_LEN;
	if (c->off + 1 + len > OSPREY_PATH_MAX - 1) {
		c->truncated = true;
		return 1;
	}
	at = (c->base + c->off) & OSPREY_PATH_DATA_MASK;
	buf[at] = '/';
	at = (at + 1) & OSPREY_PATH_DATA_MASK;
	bpf_probe_read_kernel(&buf[at], len & OSPREY_NAME_MAX_LEN, w->name[k]);
	c->off += 1 + len;
	return 0;
}

static __always_inline struct mount *real_mount(struct vfsmount *mnt)
{
	return container_of(mnt, struct mount, mnt);
}

/*
 * Write the absolute path of (dentry, vfsmnt) as seen from root into the
 * slot's buffer at base (at most OSPREY_PATH_MAX - 1 bytes, no NUL).
 * Returns the length, with *truncated set when the path was deeper or longer
 * than we copy.
 */
static __always_inline __u32 d_path_walk(struct dentry *dentry, struct vfsmount *vfsmnt,
					 const struct path *root, __u32 slot, __u32 base,
					 bool *truncated)
{
	struct walk_up_ctx up = {
		.dentry = dentry,
		.mnt = real_mount(vfsmnt),
		.root_dentry = root->dentry,
		.root_mnt = root->mnt,
	};
	struct write_down_ctx down = { .slot = slot, .base = base };
	__u8 *buf;

	bpf_loop(OSPREY_PATH_DEPTH * 2, walk_up, &up, 0);
	*truncated = !up.done;
	if (up.n == 0) {
		buf = osprey_path_buf(slot);
		if (buf)
			buf[base & OSPREY_PATH_DATA_MASK] = '/';
		return 1;
	}
	down.n = up.n;
	bpf_loop(OSPREY_PATH_DEPTH, write_down, &down, 0);
	if (down.truncated)
		*truncated = true;
	return down.off;
}

#endif
