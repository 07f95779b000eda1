/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Wake-ups of a ring's reader, decided with the reader. By default the
 * kernel wakes a reader (an irq_work: a self-IPI, a VM exit on a guest)
 * whenever a record lands in a ring the reader had emptied; Osprey's reader
 * does not want that while it holds off between reads (it reads again on a
 * timer), only once it waits on the ring's fd. It says which in the
 * one-word map ring_waits (mmapped by the reader, see native/osprey.cc):
 *
 *   RING_KERNEL_WAKES (0)  no say: the kernel's default (a reader that does
 *                          not know this map, as the tests' is)
 *   RING_READER_BUSY  (1)  it will read again by itself: no wake-up
 *   RING_READER_WAITS (2)  it waits on the fd: the first record after this
 *                          wakes it, and sets the word back to 1
 *
 * A record is committed before the word is read (the commit is a full
 * barrier), and the reader sets the word to 2 before its last look at the
 * ring: either it sees the record, or the record's program sees 2. The
 * wake-up itself is a record of its own that is discarded at once, with
 * BPF_RB_FORCE_WAKEUP: the reader never sees it. Programs commit through
 * ring_output() / ring_submit(), which do both halves.
 */
#ifndef OSPREY_RINGWAKE_BPF_H
#define OSPREY_RINGWAKE_BPF_H

#define RING_KERNEL_WAKES 0
#define RING_READER_BUSY 1
#define RING_READER_WAITS 2

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} ring_waits SEC(".maps");

static __always_inline __u64 *ring_word(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&ring_waits, &zero);
}

/* Flags for committing a record: no wake-up when the reader has a say. */
static __always_inline __u64 ring_commit_flags(const __u64 *w)
{
	return w && *w != RING_KERNEL_WAKES ? BPF_RB_NO_WAKEUP : 0;
}

/* Wake the ring's reader without a record for it: a discarded one. */
static __always_inline bool ring_force_wake(void *ring)
{
	void *p = bpf_ringbuf_reserve(ring, 8, 0);

	if (!p)
		return false;
	bpf_ringbuf_discard(p, BPF_RB_FORCE_WAKEUP);
	return true;
}

/* After a commit: wake the reader if it waits (once: the first to see it). */
static __always_inline void ring_wake_reader(void *ring, __u64 *w)
{
	if (!w || *w != RING_READER_WAITS)
		return;
	if (__sync_val_compare_and_swap(w, RING_READER_WAITS, RING_READER_BUSY) != RING_READER_WAITS)
		return;
	if (!ring_force_wake(ring))
		/* no room for the wake-up: leave it to the next record (a
		 * wake-up too many is harmless, one too few is not) */
		__sync_val_compare_and_swap(w, RING_READER_BUSY, RING_READER_WAITS);
}

/*
 * What a program calls instead of bpf_ringbuf_output() / _submit(): the
 * commit without the kernel's wake-up, then the reader's when it waits.
 */
static __always_inline long ring_output(void *ring, void *data, __u64 size)
{
	__u64 *w = ring_word();
	long err = bpf_ringbuf_output(ring, data, size, ring_commit_flags(w));

	if (!err)
		ring_wake_reader(ring, w);
	return err;
}

static __always_inline void ring_submit(void *ring, void *rec)
{
	__u64 *w = ring_word();

	bpf_ringbuf_submit(rec, ring_commit_flags(w));
	ring_wake_reader(ring, w);
}

#endif
