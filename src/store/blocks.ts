/**
 * Event blocks: how the store keeps events. A write batch of events is one
 * row of event_blocks: the events' stored JSON one after another (`text`),
 * a fixed-size entry per event (`meta`: its time, where its text ends, and
 * its type, process, policy and binary as indexes into the block's
 * dictionary `dict`), and the block's time span. event_block_keys says which
 * blocks hold events of a process ("e:" exec_id), a policy ("p:") or a type
 * ("t:"), so a query reads only the blocks that can match and then picks the
 * events out of them.
 *
 * Why not a row per event: SQLite's insert of a row and its four index
 * entries was most of the store's cost per event (~7.5 µs in a tight loop
 * here, 10–14 µs in the agent's writer thread, plus the row's copy across
 * threads); a block costs one row and a handful of key rows for hundreds of
 * events. Queries filter the same fields as before; retention deletes whole
 * blocks (a block spans at most a second of event time: MAX_BLOCK_SPAN_NS).
 */

import { nsToParts, partsToNs } from './time.js';

/** bytes of an event's entry in `meta` */
export const META_BYTES = 28;
/** "no value" in an entry's dictionary index */
const NONE = 0xffffffff;
/** events per block at most: a bigger batch is written as several blocks */
export const MAX_BLOCK_EVENTS = 1024;
/**
 * event time a block spans at most: retention by age deletes whole blocks,
 * so an event outlives its age by at most this
 */
export const MAX_BLOCK_SPAN_NS = 1_000_000_000n;
const MAX_BLOCK_SPAN = Number(MAX_BLOCK_SPAN_NS);

/** A block as written: the parameters of INSERT_BLOCK_SQL, then its keys. */
export interface BlockRow {
  minNs: bigint;
  maxNs: bigint;
  count: number;
  meta: Uint8Array;
  /** JSON of BlockDict */
  dict: string;
  text: Uint8Array;
  /** event_block_keys of the block */
  keys: string[];
}

/** An event's stored JSON written straight into a block (EncodedLine does it). */
export interface StoredLine {
  /** an upper bound of the bytes writeStored writes */
  readonly length: number;
  /** writes the stored JSON as UTF-8 at off; returns the bytes written */
  writeStored(dst: Buffer, off: number): number;
}

/** Each block's values, named by index from its events' entries. */
export interface BlockDict {
  types: string[];
  execs: string[];
  policies: string[];
  binaries: string[];
}

/** One event's entry in a block. */
export interface BlockEvent {
  timeNs: bigint;
  /** offsets of its stored JSON in the block's text */
  start: number;
  end: number;
  type: number;
  /** -1: none */
  exec: number;
  policy: number;
  binary: number;
}

/** The event_block_keys of a block's dictionary (what retention deletes with it). */
export function blockKeys(d: BlockDict): string[] {
  const keys: string[] = [];
  for (const t of d.types) keys.push(`t:${t}`);
  for (const e of d.execs) keys.push(`e:${e}`);
  for (const p of d.policies) keys.push(`p:${p}`);
  return keys;
}

class Dict {
  readonly values: string[] = [];
  private readonly index = new Map<string, number>();
  /** the value asked last and its index: an event's type, process and policy are most often the last one's */
  private last: string | null = null;
  private lastIndex = NONE;

  of(v: string | null): number {
    if (v === this.last) return this.lastIndex;
    if (v === null) return NONE;
    let i = this.index.get(v);
    if (i === undefined) {
      i = this.values.length;
      this.values.push(v);
      this.index.set(v, i);
    }
    this.last = v;
    this.lastIndex = i;
    return i;
  }
}

/** 2^32 */
const U32 = 4294967296;
/** 1e9 = 2^9 * 1953125: a time's seconds times 1953125 stay exact in a double until 2106 */
const SEC_ODD = 1953125;
/** 2^23: seconds * 1953125 split so that the low part, shifted by 9 bits, fits 32 */
const SPLIT = 8388608;
/** seconds from which add() writes the time through a bigint (before 1970, after 2106) */
const EXACT_SEC_MAX = 4_294_967_295;

const scratchParts = { sec: 0, nsec: 0 };

/** Builds blocks of at most MAX_BLOCK_EVENTS events; its own buffers are reused from batch to batch. */
export class BlockBuilder {
  private meta: Buffer = Buffer.allocUnsafe(64 * META_BYTES);
  private text: Buffer = Buffer.allocUnsafe(64 * 1024);
  private textLen = 0;
  private count = 0;
  // the block's time span, as seconds and ns within the second (no bigint per event)
  private minSec = 0;
  private minNsec = 0;
  private maxSec = 0;
  private maxNsec = 0;
  private types = new Dict();
  private execs = new Dict();
  private policies = new Dict();
  private binaries = new Dict();
  private done: BlockRow[] = [];
  // the 64-bit ns of the second seen last, as its high 32 bits and the low 32 bits' base
  private lastSec = -1;
  private lastHi = 0;
  private lastLo = 0;

  /** add() with the time in ns since the epoch. */
  addNs(
    timeNs: bigint,
    type: string,
    execId: string | null,
    policy: string | null,
    binary: string | null,
    text: string | StoredLine,
  ): void {
    nsToParts(timeNs, scratchParts);
    this.add(scratchParts.sec, scratchParts.nsec, type, execId, policy, binary, text);
  }

  /** One event: its time (whole seconds since the epoch, ns within the second), its indexed fields and its stored JSON. */
  add(
    sec: number,
    nsec: number,
    type: string,
    execId: string | null,
    policy: string | null,
    binary: string | null,
    text: string | StoredLine,
  ): void {
    if (
      this.count === MAX_BLOCK_EVENTS ||
      (this.count > 0 &&
        ((sec - this.minSec) * 1e9 + (nsec - this.minNsec) > MAX_BLOCK_SPAN ||
          (this.maxSec - sec) * 1e9 + (this.maxNsec - nsec) > MAX_BLOCK_SPAN))
    ) {
      this.finish();
    }
    const str = typeof text === 'string';
    const room = this.textLen + (str ? text.length * 3 : text.length);
    if (room > this.text.length) this.text = grow(this.text, this.textLen, room);
    this.textLen += str ? this.text.write(text, this.textLen) : text.writeStored(this.text, this.textLen);
    const at = this.count * META_BYTES;
    if (at + META_BYTES > this.meta.length) this.meta = grow(this.meta, at, at + META_BYTES);
    const m = this.meta;
    this.writeTime(m, at, sec, nsec);
    m.writeUInt32LE(this.textLen, at + 8);
    m.writeUInt32LE(this.types.of(type), at + 12);
    m.writeUInt32LE(this.execs.of(execId), at + 16);
    m.writeUInt32LE(this.policies.of(policy), at + 20);
    m.writeUInt32LE(this.binaries.of(binary), at + 24);
    if (this.count === 0 || sec < this.minSec || (sec === this.minSec && nsec < this.minNsec)) {
      this.minSec = sec;
      this.minNsec = nsec;
    }
    if (this.count === 0 || sec > this.maxSec || (sec === this.maxSec && nsec > this.maxNsec)) {
      this.maxSec = sec;
      this.maxNsec = nsec;
    }
    this.count++;
  }

  /** The entry's time as a little-endian int64 of ns, from two exact doubles (a bigint only outside 1970–2106). */
  private writeTime(m: Buffer, at: number, sec: number, nsec: number): void {
    if (sec !== this.lastSec) {
      if (!(sec >= 0 && sec <= EXACT_SEC_MAX && Number.isInteger(sec))) {
        m.writeBigInt64LE(partsToNs(sec, nsec), at);
        return;
      }
      const a = sec * SEC_ODD;
      this.lastHi = Math.floor(a / SPLIT);
      this.lastLo = (a - this.lastHi * SPLIT) * 512;
      this.lastSec = sec;
    }
    let lo = this.lastLo + nsec;
    let hi = this.lastHi;
    if (lo >= U32) {
      lo -= U32;
      hi++;
    }
    m.writeUInt32LE(lo, at);
    m.writeUInt32LE(hi, at + 4);
  }

  /** The blocks made since the last take, the one under way ended. */
  take(): BlockRow[] {
    this.finish();
    const out = this.done;
    this.done = [];
    return out;
  }

  /** Ends the block under way (if it has events): it joins `done`. */
  private finish(): void {
    if (this.count === 0) return;
    const d: BlockDict = {
      types: this.types.values,
      execs: this.execs.values,
      policies: this.policies.values,
      binaries: this.binaries.values,
    };
    this.done.push({
      minNs: partsToNs(this.minSec, this.minNsec),
      maxNs: partsToNs(this.maxSec, this.maxNsec),
      count: this.count,
      // copies of their own: the builder's buffers are reused, and a block may go to another thread
      meta: new Uint8Array(this.meta.subarray(0, this.count * META_BYTES)),
      dict: JSON.stringify(d),
      text: new Uint8Array(this.text.subarray(0, this.textLen)),
      keys: blockKeys(d),
    });
    this.count = 0;
    this.textLen = 0;
    this.types = new Dict();
    this.execs = new Dict();
    this.policies = new Dict();
    this.binaries = new Dict();
  }
}

function grow(b: Buffer, used: number, need: number): Buffer {
  const n = Buffer.allocUnsafe(Math.max(need, b.length * 2));
  b.copy(n, 0, 0, used);
  return n;
}

/** A stored block as read back: its entries, its dictionary and its text. */
export class StoredBlock {
  readonly count: number;
  readonly dict: BlockDict;
  private readonly view: DataView;

  constructor(
    readonly id: number,
    meta: Uint8Array,
    dict: string,
    readonly text: Buffer,
  ) {
    if (meta.length % META_BYTES !== 0) {
      throw new Error(
        `event block ${id}: its index is ${meta.length} bytes, not a multiple of ${META_BYTES}`,
      );
    }
    this.count = meta.length / META_BYTES;
    this.view = new DataView(meta.buffer, meta.byteOffset, meta.length);
    this.dict = JSON.parse(dict) as BlockDict;
  }

  /** The i-th event's entry. */
  event(i: number): BlockEvent {
    const v = this.view;
    const at = i * META_BYTES;
    const idx = (o: number) => {
      const x = v.getUint32(at + o, true);
      return x === NONE ? -1 : x;
    };
    return {
      timeNs: v.getBigInt64(at, true),
      start: i === 0 ? 0 : v.getUint32(at - META_BYTES + 8, true),
      end: v.getUint32(at + 8, true),
      type: idx(12),
      exec: idx(16),
      policy: idx(20),
      binary: idx(24),
    };
  }

  /** The event's stored JSON. */
  json(e: BlockEvent): string {
    return this.text.toString('utf8', e.start, e.end);
  }
}

/** A row of event_blocks as read (id, meta, dict, text), for readers other than the store's queries. */
export interface BlockRowRead {
  id: number | bigint;
  meta: Uint8Array;
  dict: string;
  text: Buffer;
}

/** Every event's stored JSON in blocks read in order, with its entry and its block's dictionary. */
export function* storedEvents(
  rows: Iterable<BlockRowRead>,
): Generator<{ json: string; entry: BlockEvent; dict: BlockDict }> {
  for (const r of rows) {
    const b = new StoredBlock(Number(r.id), r.meta, r.dict, r.text);
    for (let i = 0; i < b.count; i++) {
      const entry = b.event(i);
      yield { json: b.json(entry), entry, dict: b.dict };
    }
  }
}

/** SQL for storedEvents' rows, in the order they were written. */
export const ALL_BLOCKS_SQL = 'SELECT id, meta, dict, text FROM event_blocks ORDER BY id';
