import { KernelError } from './errors.js';
import type { NativeRingReader } from './native.js';
import { native } from './native.js';

/** A ring buffer size (bytes) the kernel takes: a power of 2 of at least a page; throws otherwise. */
export function ringBufferBytes(bytes: number): number {
  if (!Number.isInteger(bytes) || bytes < 4096 || (bytes & (bytes - 1)) !== 0) {
    throw new Error(`ringBytes ${bytes} is not a power of 2 of at least 4096`);
  }
  return bytes;
}

/** Called once per record of a batch: the record is buf[off, off+len). */
export type RecordHandler = (buf: Buffer, off: number, len: number) => void;

/**
 * A wake-up's records are handled in slices of about this long: what is
 * left waits for the next turn of the event loop, so that a burst (or code
 * not yet optimized, at start) never keeps the loop from the completions
 * of the sinks' writes for longer. A sink that learnt of its finished write
 * only after a 100-ms batch had counted that batch's events against its
 * backlog bound all along, and dropped what did not fit.
 */
export const SLICE_MS = 8;

/**
 * Records read and not yet handled, in bytes, beyond which they are all
 * handled at once instead of in slices: an agent slower than its rings for
 * good holds them there (where the kernel counts what does not fit), not
 * in memory of its own.
 */
export const MAX_WAITING_BYTES = 8 << 20;

/**
 * Reads a BPF ring buffer on the libuv loop: the native side wakes on the
 * ring's epoll fd, drains every ready record into one Buffer and crosses
 * into JS once per wake-up, never per record. With a hold-off (ms), a
 * wake-up that found records is followed by another read that much later
 * instead of by the next wake-up, so a burst arrives in few large batches;
 * a read that finds the ring empty goes back to waking on the fd, so an
 * idle ring costs nothing and a lone record is delivered at once. Given the
 * fd of the ring's wake-up word (the object's ring_waits map, see
 * bpf/include/ringwake.bpf.h), the ring's programs wake the reader only
 * while it waits on the fd, not after every read. Records are handled in
 * slices of SLICE_MS (see there); drain() handles everything at once.
 */
export class RingReader {
  private reader: NativeRingReader | undefined;
  /** records delivered so far */
  records = 0;
  batches = 0;
  /** slices that left records for the next turn of the loop */
  yields = 0;
  /** batches read, the first from `at` on */
  private waiting: Buffer[] = [];
  private at = 0;
  private waitingBytes = 0;
  private resumeQueued = false;
  private handling = false;
  private all = false;

  constructor(
    readonly mapFd: number,
    private readonly onRecord: RecordHandler,
    /** called after the last record of each slice (and batch) handled */
    private readonly onBatchEnd?: () => void,
    holdoffMs = 0,
    wakeMapFd = -1,
    /** the length of a slice, ms (0: a batch at once) */
    private readonly sliceMs = SLICE_MS,
    /** bytes read and not handled beyond which they are handled at once */
    private readonly maxWaitingBytes = MAX_WAITING_BYTES,
  ) {
    if (!Number.isInteger(holdoffMs) || holdoffMs < 0 || holdoffMs > 1000) {
      throw new Error(`ring hold-off ${holdoffMs} ms must be an integer from 0 to 1000`);
    }
    try {
      this.reader = new (native().RingReader)(mapFd, (batch) => this.deliver(batch), holdoffMs, wakeMapFd);
    } catch (err) {
      throw new KernelError('open ring buffer reader', err);
    }
  }

  /** Deliver what is ready now (and what was read before), synchronously. Returns the count read now. */
  drain(): number {
    const all = this.all;
    this.all = true;
    try {
      const n = this.reader?.drain() ?? 0;
      this.handle();
      return n;
    } finally {
      this.all = all;
    }
  }

  /** Stop reading. Records still in the ring stay there; those read and not handled are dropped. */
  close(): void {
    this.reader?.close();
    this.reader = undefined;
    this.waiting = [];
    this.waitingBytes = 0;
    this.at = 0;
  }

  /** Records read and not handled yet, in bytes (with their 8-byte headers). */
  get backlogBytes(): number {
    return this.waitingBytes - this.at;
  }

  /**
   * The ring's depth: bytes of records still in the ring (with the kernel's
   * 8-byte headers) plus those read and not handled yet. 0 once closed.
   */
  get pendingBytes(): number {
    const inRing = this.reader?.pending() ?? 0;
    return Math.max(0, inRing) + this.backlogBytes;
  }

  private deliver(batch: Buffer): void {
    this.batches++;
    this.waiting.push(batch);
    this.waitingBytes += batch.length;
    // behind a slice under way (a consumer that drained us) or a resume to come, they wait their turn
    if (!this.handling && !this.resumeQueued) this.handle();
  }

  /** Handle what was read, for one slice (or all of it: drain(), or too much waiting). */
  private handle(): void {
    if (this.handling) return;
    this.handling = true;
    const sliceMs = this.sliceMs;
    const start = sliceMs > 0 ? performance.now() : 0;
    let n = 0;
    try {
      while (this.waiting.length > 0 && this.reader !== undefined) {
        const buf = this.waiting[0]!;
        // a consumer may close the reader: nothing more is handed over then
        while (this.at + 8 <= buf.length && this.reader !== undefined) {
          const len = buf.readUInt32LE(this.at);
          const off = this.at + 8;
          this.at += 8 + ((len + 7) & ~7);
          this.records++;
          this.onRecord(buf, off, len);
          if (
            (++n & 63) === 0 &&
            sliceMs > 0 &&
            !this.all &&
            this.backlogBytes <= this.maxWaitingBytes &&
            performance.now() - start > sliceMs
          )
            return; // the rest on the next turn: see finally
        }
        if (this.reader === undefined) break;
        this.waiting.shift();
        this.waitingBytes -= buf.length;
        this.at = 0;
      }
    } finally {
      this.handling = false;
      this.onBatchEnd?.();
      // the slice ended with records left (or a consumer threw): they are handled on the
      // next turn of the loop, not at the next wake-up
      if (!this.resumeQueued && this.reader !== undefined && this.waiting.length > 0) this.resumeLater();
    }
  }

  private resumeLater(): void {
    this.yields++;
    this.resumeQueued = true;
    setImmediate(() => {
      this.resumeQueued = false;
      this.handle();
    });
  }
}

/**
 * Records handed over at most at once. A wake-up can bring thousands; all
 * of them decoded and built into events before any is published kept that
 * many events alive together, so every young-generation collection met
 * megabytes of live events, copied them and promoted them to the old
 * generation (whose collections then ran all the time). In pieces this
 * size, a piece's events are garbage before the next is decoded.
 */
export const MAX_HANDOFF = 128;

/**
 * A ring reader that decodes each record and hands the records over in
 * ring order, one call per wake-up (or drain), or per MAX_HANDOFF records
 * when a wake-up brings more. Records the decoder refuses (returns undefined
 * or throws) are counted, not passed.
 */
export class RecordReader<T> {
  private readonly ring: RingReader;
  private pending: T[] = [];
  /** records the decoder did not know or could not read */
  decodeErrors = 0;

  constructor(
    mapFd: number,
    decode: (buf: Buffer, off: number, len: number) => T | undefined,
    private readonly onBatch: (items: T[]) => void,
    holdoffMs = 0,
    /** the ring's wake-up word (the object's ring_waits map), when it has one */
    wakeMapFd = -1,
  ) {
    this.ring = new RingReader(
      mapFd,
      (buf, off, len) => {
        let item: T | undefined;
        try {
          item = decode(buf, off, len);
        } catch {
          item = undefined;
        }
        if (item === undefined) this.decodeErrors++;
        // what the consumer throws is the consumer's, not a decode error
        else if (this.pending.push(item) >= MAX_HANDOFF) this.flush();
      },
      () => this.flush(),
      holdoffMs,
      wakeMapFd,
    );
  }

  get records(): number {
    return this.ring.records;
  }

  get batches(): number {
    return this.ring.batches;
  }

  /** The ring's depth in bytes (RingReader.pendingBytes). */
  get pendingBytes(): number {
    return this.ring.pendingBytes;
  }

  /** Deliver what is ready now, synchronously. */
  drain(): void {
    this.ring.drain();
    this.flush();
  }

  close(): void {
    this.ring.close();
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.onBatch(batch);
  }
}
