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

  of(v: string | null): number {
    if (v === null) return NONE;
    let i = this.index.get(v);
    if (i === undefined) {
      i = this.values.length;
      this.values.push(v);
      this.index.set(v, i);
    }
    return i;
  }
}

/** Builds blocks of at most MAX_BLOCK_EVENTS events; its own buffers are reused from batch to batch. */
export class BlockBuilder {
  private meta: Buffer = Buffer.allocUnsafe(64 * META_BYTES);
  private text: Buffer = Buffer.allocUnsafe(64 * 1024);
  private textLen = 0;
  private count = 0;
  private minNs = 0n;
  private maxNs = 0n;
  private types = new Dict();
  private execs = new Dict();
  private policies = new Dict();
  private binaries = new Dict();
  private done: BlockRow[] = [];

  add(
    timeNs: bigint,
    type: string,
    execId: string | null,
    policy: string | null,
    binary: string | null,
    text: string | StoredLine,
  ): void {
    if (
      this.count === MAX_BLOCK_EVENTS ||
      (this.count > 0 && (timeNs - this.minNs > MAX_BLOCK_SPAN_NS || this.maxNs - timeNs > MAX_BLOCK_SPAN_NS))
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
    m.writeBigInt64LE(timeNs, at);
    m.writeUInt32LE(this.textLen, at + 8);
    m.writeUInt32LE(this.types.of(type), at + 12);
    m.writeUInt32LE(this.execs.of(execId), at + 16);
    m.writeUInt32LE(this.policies.of(policy), at + 20);
    m.writeUInt32LE(this.binaries.of(binary), at + 24);
    if (this.count === 0 || timeNs < this.minNs) this.minNs = timeNs;
    if (this.count === 0 || timeNs > this.maxNs) this.maxNs = timeNs;
    this.count++;
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
      minNs: this.minNs,
      maxNs: this.maxNs,
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
