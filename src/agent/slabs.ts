/**
 * Memory for the bytes the API streams send. Each batch's lines are joined
 * once (the clients that take the same events share them) into a piece of a
 * slab, a large buffer cut into pieces as batches come; every holder of a
 * piece (a client that has it queued or being written, the last join kept
 * for sharing) holds a reference, and a slab whose pieces are all released
 * is used again. Joined into buffers of their own, the batches' bytes
 * (~100 MB/s at 100,000 events/s of a policy's events) outlived
 * young-generation collections while they waited to be written, and V8 ran
 * a full collection for every few tens of MB of them (~50 per 1.2 million
 * events with two clients, against 4 without).
 *
 * A reference never released (a write whose callback never came) only keeps
 * its slab from being used again: it is then collected like any buffer.
 */

/** Bytes of a slab. */
export const SLAB_BYTES = 1 << 20;
/** A piece larger than this gets a buffer of its own. */
export const SLAB_PIECE_MAX = SLAB_BYTES / 4;
/** Released slabs kept for reuse, at most. */
const FREE_MAX = 8;

class Slab {
  readonly buf = Buffer.allocUnsafeSlow(SLAB_BYTES);
  used = 0;
  refs = 0;
}

/** Bytes from the pool, with the slab they are a piece of (none: a buffer of their own). */
export interface SlabPiece {
  readonly bytes: Buffer;
  readonly slab: Slab | undefined;
}

export class SlabPool {
  private current: Slab | undefined;
  private readonly free: Slab[] = [];
  /** slabs allocated so far */
  made = 0;
  /** releases of a piece whose slab had no reference left (a bookkeeping error) */
  overReleased = 0;

  /** A piece of n bytes, holding one reference (the caller's). */
  take(n: number): SlabPiece {
    if (n > SLAB_PIECE_MAX) return { bytes: Buffer.allocUnsafeSlow(n), slab: undefined };
    let s = this.current;
    if (s === undefined || s.used + n > SLAB_BYTES) {
      if (s !== undefined) {
        this.current = undefined;
        this.recycle(s);
      }
      s = this.free.pop() ?? this.make();
      this.current = s;
    }
    const at = s.used;
    // pieces start 8-aligned
    s.used = (at + n + 7) & ~7;
    s.refs++;
    return { bytes: s.buf.subarray(at, at + n), slab: s };
  }

  retain(p: SlabPiece): void {
    if (p.slab) p.slab.refs++;
  }

  /**
   * Drop one reference; the slab is used again once none is left and it is
   * full. Called from write callbacks: a release with no reference left is
   * counted (overReleased), never thrown.
   */
  release(p: SlabPiece): void {
    const s = p.slab;
    if (!s) return;
    if (s.refs <= 0) {
      this.overReleased++;
      return;
    }
    s.refs--;
    if (s !== this.current) this.recycle(s);
  }

  /** Slabs waiting for reuse (tests). */
  get freeSlabs(): number {
    return this.free.length;
  }

  private make(): Slab {
    this.made++;
    return new Slab();
  }

  private recycle(s: Slab): void {
    if (s.refs > 0 || this.free.length >= FREE_MAX) return;
    s.used = 0;
    this.free.push(s);
  }
}
