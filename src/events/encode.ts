import { fullProcess } from './brief.js';
import { BuiltFlowEvent, encodeFlowLine, type FlowEvent } from './flow.js';
import { jsonString } from './json.js';
import { type Slot, slot } from './kept.js';
import type { ExportEvent, Process } from './types.js';

function bigintAsString(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/** encodings kept on the objects they encode (see kept.ts: why there) */
const JSON_OF: Slot<string> = slot<string>();
const BYTES_OF: Slot<Buffer> = slot<Buffer>();
const LINE_OF: Slot<EncodedLine> = slot<EncodedLine>();

/** What make(o) gave, kept on o, made once. */
function cached<O extends object, V>(o: O, kept: Slot<V>, make: (o: O) => V): V {
  let v = kept.get(o);
  if (v === undefined) {
    v = make(o);
    kept.set(o, v);
  }
  return v;
}

/**
 * Where processes' JSON lives: a ring of bytes, like the ring of lines. A
 * process's JSON is most of every event that names it (its own, its
 * children's as parent), so it is made once and copied in as bytes; but
 * kept in a buffer of each process's own, tens of thousands of them (the
 * live processes and the recently exited ones the cache keeps) were tens of
 * MB of memory outside V8's heap, each freed only when a full collection
 * found its process dead. Here they take one fixed buffer: a process whose
 * bytes the ring has gone past (one that has lived through 4 MiB of other
 * processes' JSON) has them made again the next time they are wanted.
 */
const PROC_RING_BYTES = 4 * 1024 * 1024;
const procRing = Buffer.allocUnsafeSlow(PROC_RING_BYTES);
/** bytes ever placed in procRing: where the next process's JSON goes */
let procPos = 0;
/** a process whose JSON is larger than this gets a buffer of its own */
const PROC_OWN_BYTES = PROC_RING_BYTES / 16;

/** Where a process's JSON is: in procRing at `at` (bytes ever placed), or in `own`. */
interface ProcBytes {
  at: number;
  length: number;
  own: Buffer | undefined;
  /**
   * For a process in the builder's key order with cap or ns: where its
   * `,"cap":…,"ns":…` run starts and ends, so that its brief form (the
   * same without them) is these bytes with the run cut out; -1 otherwise.
   */
  cutFrom: number;
  cutTo: number;
}

const PROC_OF: Slot<ProcBytes> = slot<ProcBytes>();

/** A process's JSON bytes, made or made again when the ring has gone past them. */
function procBytes(p: object): ProcBytes {
  const b = PROC_OF.get(p);
  if (b !== undefined && (b.own !== undefined || procPos <= b.at + PROC_RING_BYTES)) return b;
  const fresh = briefFromFull(p) ?? placeProcess(p);
  if (b === undefined) PROC_OF.set(p, fresh);
  else Object.assign(b, fresh);
  return fresh;
}

/**
 * A brief process's JSON cut from its full process's (their fields are the
 * same but for cap and ns, in the same order): two copies instead of
 * walking its fields again. Undefined when p is not brief, is another
 * thread, or the full process's bytes have no cut.
 */
function briefFromFull(p: object): ProcBytes | undefined {
  const full = fullProcess(p as Process);
  if (full === p || full.tid !== (p as Process).tid) return undefined;
  const fb = procBytes(full);
  if (fb.cutFrom < 0 || fb.own !== undefined) return undefined;
  const n = fb.length - (fb.cutTo - fb.cutFrom);
  if (n > procScratch.length) return undefined;
  // assembled apart: the full's bytes are in procRing, where the brief's go
  const at = fb.at % PROC_RING_BYTES;
  procRing.copy(procScratch, 0, at, at + fb.cutFrom);
  procRing.copy(procScratch, fb.cutFrom, at + fb.cutTo, at + fb.length);
  const from = procRingStart(n);
  procScratch.copy(procRing, from, 0, n);
  return { at: procRingCommit(n), length: n, own: undefined, cutFrom: -1, cutTo: -1 };
}

/** The process builder's key order (src/process/builder.ts; copyProcess in brief.ts). */
const BUILDER_KEYS = [
  'exec_id',
  'pid',
  'uid',
  'cwd',
  'binary',
  'arguments',
  'flags',
  'start_time',
  'auid',
  'parent_exec_id',
  'cap',
  'ns',
  'tid',
  'process_credentials',
  'binary_properties',
  'interpreter',
  'ppid',
  'workload',
];

/**
 * A process's JSON straight into bytes: its own fields as text, the objects
 * it shares with other processes (capability sets, namespaces, workload) as
 * their cached bytes, copied in. No string of the whole process is built
 * (flattening one cost more than the rest of the encoding).
 */
function placeProcess(p: object): ProcBytes {
  const rec = p as Record<string, unknown>;
  const ps: (string | Buffer)[] = [];
  let out = '{';
  let first = true;
  // the cut (see ProcBytes): the pieces where it starts and ends, when every key comes in the builder's order
  // (copyProcess's, so the brief form's JSON is this one's without the cut)
  let i = 0;
  let inOrder = true;
  let cutStart = -1;
  let cutEnd = -1;
  for (const key in rec) {
    if (inOrder && key !== BUILDER_KEYS[i]) inOrder = false;
    i++;
    const v = rec[key];
    if (v === undefined) continue;
    if (inOrder && cutStart < 0 && (key === 'cap' || key === 'ns')) {
      ps.push(out);
      out = '';
      cutStart = ps.length;
    } else if (inOrder && cutStart >= 0 && cutEnd < 0 && key === 'tid') {
      ps.push(out);
      out = '';
      cutEnd = ps.length;
    }
    out += `${first ? '' : ','}${quoted(key)}:`;
    first = false;
    if (isShared(v)) {
      ps.push(out, sharedBytes(v));
      out = '';
    } else {
      out += stringify(v);
    }
  }
  ps.push(`${out}}`);
  let max = 0;
  for (const x of ps) max += typeof x === 'string' ? x.length * 3 : x.length;
  const cut = inOrder && cutEnd > cutStart;
  if (max > PROC_OWN_BYTES) {
    let n = 0;
    for (const x of ps) n += typeof x === 'string' ? Buffer.byteLength(x) : x.length;
    const own = Buffer.allocUnsafe(n);
    writePieces(ps, own, 0);
    return { at: -1, length: n, own, cutFrom: -1, cutTo: -1 };
  }
  const from = procRingStart(max);
  let off = from;
  let cutFrom = -1;
  let cutTo = -1;
  for (let k = 0; k < ps.length; k++) {
    if (cut && k === cutStart) cutFrom = off - from;
    if (cut && k === cutEnd) cutTo = off - from;
    const x = ps[k]!;
    off += typeof x === 'string' ? utf8Write(procRing, x, off) : copyPiece(x, procRing, off);
  }
  const length = off - from;
  return { at: procRingCommit(length), length, own: undefined, cutFrom, cutTo };
}

/** Where bytes of at most max bytes start in procRing (never across its end). */
function procRingStart(max: number): number {
  const from = procPos % PROC_RING_BYTES;
  if (from + max <= PROC_RING_BYTES) return from;
  procPos += PROC_RING_BYTES - from;
  return 0;
}

/** The bytes just written at procRingStart's place took length bytes: their position; the next start 8-aligned. */
function procRingCommit(length: number): number {
  const at = procPos;
  procPos += (length + 7) & ~7;
  return at;
}

/** Where placeInProcRing assembles pieces first. */
let procScratch = Buffer.allocUnsafeSlow(16 * 1024);

/**
 * Pieces (text and processes) as one run of bytes in procRing. Assembled
 * first apart: the processes' bytes they copy live in procRing too, where
 * writing in place could overwrite them.
 */
function placeInProcRing(ps: readonly Piece[]): ProcBytes {
  const max = bound(ps);
  if (max > procScratch.length) procScratch = Buffer.allocUnsafeSlow(Math.max(max, 2 * procScratch.length));
  const n = writePieces(ps, procScratch, 0);
  if (n > PROC_OWN_BYTES)
    return { at: -1, length: n, own: Buffer.from(procScratch.subarray(0, n)), cutFrom: -1, cutTo: -1 };
  const from = procRingStart(n);
  procScratch.copy(procRing, from, 0, n);
  return { at: procRingCommit(n), length: n, own: undefined, cutFrom: -1, cutTo: -1 };
}

/** Capability name lists are shared arrays, other arrays are small; objects are shared. */
function isShared(v: unknown): v is object {
  return v !== null && typeof v === 'object' && (!Array.isArray(v) || v.length > 8);
}

const sharedBytesFresh = (x: object): Buffer => Buffer.from(encodeSharedFresh(x));

function sharedBytes(v: object): Buffer {
  return cached(v, BYTES_OF, sharedBytesFresh);
}

/** A process object's JSON, as in events. */
export function processJson(p: object): string {
  const b = procBytes(p);
  if (b.own !== undefined) return b.own.toString();
  const from = b.at % PROC_RING_BYTES;
  return procRing.toString('utf8', from, from + b.length);
}

/**
 * A process's JSON as the event store keeps it: the parts it shares with
 * other processes (capability sets, namespaces, workload: most of its bytes)
 * as {"$part": id}, where `part` is given each one with its JSON and answers
 * its id (src/store/store.ts keeps each part once, and puts them back when
 * it reads the process).
 */
export const PART_REF = '$part';

export function storedProcessJson(p: object, part: (shared: object, json: string) => string): string {
  return encodeFields(
    p as Record<string, unknown>,
    (v) => `{"${PART_REF}":${JSON.stringify(part(v, encodeShared(v)))}}`,
  );
}

/**
 * An object's own fields. Its nested objects (capability sets, namespaces,
 * workload) are shared between many processes, so their JSON is kept too;
 * `shared` writes them (by default, that JSON).
 */
function encodeFields(p: Record<string, unknown>, shared: (v: object) => string = encodeShared): string {
  let out = '{';
  let first = true;
  for (const key in p) {
    const v = p[key];
    if (v === undefined) continue;
    const s = isShared(v) ? shared(v) : stringify(v);
    out += `${first ? '' : ','}${quoted(key)}:${s}`;
    first = false;
  }
  return `${out}}`;
}

const encodeSharedFresh = (x: object): string =>
  Array.isArray(x) ? stringify(x) : encodeFields(x as Record<string, unknown>);

/** A shared object's JSON, kept on it (nested parts of the objects sharedBytes encodes). */
function encodeShared(v: object): string {
  return cached(v, JSON_OF, encodeSharedFresh);
}

/** Object keys as JSON strings: the same few dozen names, over and over. */
const QUOTED = new Map<string, string>();

function quoted(key: string): string {
  let q = QUOTED.get(key);
  if (q === undefined) {
    q = JSON.stringify(key);
    if (QUOTED.size < 1024) QUOTED.set(key, q);
  }
  return q;
}

/**
 * A line is assembled from pieces: the text that is its own (an event's
 * time, arguments, action...; a process's pid, binary...) and what it shares,
 * copied in as bytes: the processes an event names (their cached bytes) or
 * a process's shared parts. Pieces alternate: text, bytes, text...
 */
export type Piece = string | Buffer | object;

/** Bytes of a piece that is not text: shared bytes, or a process (its JSON). */
function pieceLength(p: Buffer | object): number {
  return p instanceof Uint8Array ? p.length : procBytes(p).length;
}

/** Copies a piece that is not text to dst at off; returns its length. */
function copyPiece(p: Buffer | object, dst: Buffer, off: number): number {
  if (p instanceof Uint8Array) {
    dst.set(p, off);
    return p.length;
  }
  const b = procBytes(p);
  if (b.own !== undefined) dst.set(b.own, off);
  else {
    const from = b.at % PROC_RING_BYTES;
    procRing.copy(dst, off, from, from + b.length);
  }
  return b.length;
}

const PROCESS_KEYS = new Set(['process', 'parent']);

/** Appends an event's payload ({process, parent, ...}) to pieces; returns the text that follows. */
function payloadPieces(payload: Record<string, unknown>, pieces: Piece[], text: string): string {
  let out = `${text}{`;
  let first = true;
  for (const key in payload) {
    const v = payload[key];
    if (v === undefined) continue;
    out += `${first ? '' : ','}${quoted(key)}:`;
    first = false;
    if (PROCESS_KEYS.has(key) && v !== null && typeof v === 'object') {
      pieces.push(out, v);
      out = '';
    } else if (key === 'ancestors' && Array.isArray(v)) {
      out += '[';
      for (let i = 0; i < v.length; i++) {
        pieces.push(i === 0 ? out : `${out},`, v[i] as object);
        out = '';
      }
      out += ']';
    } else {
      out += stringify(v);
    }
  }
  return `${out}}`;
}

/**
 * A process as the event store keeps it inside an event: a reference to its
 * row in the processes table, which holds its JSON once (see
 * src/store/store.ts, which puts the process back when it reads the event).
 */
export const PROCESS_REF = '$ref';

const REF_OF: Slot<string> = slot<string>();

const makeRef = (p: object): string => {
  const id = (p as { exec_id?: unknown }).exec_id;
  return typeof id === 'string' ? `{"${PROCESS_REF}":${jsonString(id)}}` : processJson(p);
};

/** A process as a reference, made once per process (every stored event that names it takes it). */
function processRef(p: object): string {
  return cached(p, REF_OF, makeRef);
}

/** A line whose bytes are copied out where they are wanted. */
export interface CopyableLine {
  /** bytes, no newline */
  readonly length: number;
  /** copies the bytes to dst at off (which has room); returns how many */
  copyTo(dst: Uint8Array, off: number): number;
}

/** Text, bytes or a copyable line: what the sinks write. */
export type Line = string | Uint8Array | CopyableLine;

/** A line's length in bytes. */
export function lineBytes(l: Line): number {
  return typeof l === 'string' ? Buffer.byteLength(l) : l.length;
}

/** Copies a line to dst at off (which has room for lineBytes(l)); returns its length. */
export function copyLine(l: Line, dst: Buffer, off: number): number {
  if (typeof l === 'string') return dst.write(l, off);
  if (l instanceof Uint8Array) {
    dst.set(l, off);
    return l.length;
  }
  return l.copyTo(dst, off);
}

/** Bytes of lines, each followed by a newline. */
export function linesBytes(lines: readonly Line[]): number {
  let total = 0;
  for (const l of lines) total += lineBytes(l) + 1;
  return total;
}

/** Writes lines, each followed by a newline, at the start of dst (which has room for linesBytes); returns the bytes written. */
export function writeLines(lines: readonly Line[], dst: Buffer): number {
  let off = 0;
  for (const l of lines) {
    off += copyLine(l, dst, off);
    dst[off++] = 0x0a;
  }
  return off;
}

/** Lines as one buffer of their own, each followed by a newline. */
export function joinLines(lines: readonly Line[]): Buffer {
  const out = Buffer.allocUnsafe(linesBytes(lines));
  writeLines(lines, out);
  return out;
}

/**
 * An event's line, encoded once for every sink that wants it. Its bytes sit
 * in a ring of memory shared by all lines (one copy of each piece, no string
 * of the whole line, nothing for the garbage collector per line), and sinks
 * copy them out into their own buffers. Lines live in the sinks' queues for
 * milliseconds; should one stay queued until the ring has gone round, its
 * bytes are gone and copyTo writes it again from its pieces, so a copy is
 * always right.
 */
export class EncodedLine implements CopyableLine {
  /** bytes of the line in UTF-8, no newline */
  readonly length: number;

  constructor(
    /** the line's pieces, kept to write it again and for its stored form, or what gives them again */
    private readonly parts: readonly Piece[] | LineSource,
    /** absolute position in the ring; -1 when the line has a buffer of its own */
    private at: number,
    length: number,
    private readonly own?: Buffer,
    /** a pieced line's (PiecedEvent): where its own text starts, after its opening and processes */
    private readonly ownAt = -1,
  ) {
    this.length = length;
  }

  /**
   * Writes the line as the event store keeps it — its processes as
   * references to the store's processes table instead of their JSON, so
   * that a process's 2 KB or more are stored once, not once per event that
   * names it — as UTF-8 to dst at off, which has room for the line's length
   * (the stored form is never longer: a reference is shorter than the
   * process it stands for); returns the bytes written. Piece by piece: no
   * string of the whole line is made.
   */
  writeStored(dst: Buffer, off: number): number {
    // a line its maker wrote as text names no process: its text is its bytes
    if (!Array.isArray(this.parts)) return this.copyTo(dst, off);
    // a pieced line: its stored opening, then its own text's bytes from the ring (not encoded again)
    if (this.ownAt >= 0 && ringPos <= this.at + RING_BYTES) {
      const at = off + utf8Write(dst, storedPrefix(this.parts), off);
      const from = this.at % RING_BYTES;
      ring.copy(dst, at, from + this.ownAt, from + this.length);
      return at + this.length - this.ownAt - off;
    }
    let at = off;
    for (const p of this.parts) at += utf8Write(dst, typeof p === 'string' ? p : processRef(p as object), at);
    return at - off;
  }

  private pieces(): readonly Piece[] {
    return Array.isArray(this.parts) ? this.parts : (this.parts as LineSource).linePieces();
  }

  /** Copies the line to dst at off (which has room for it); returns its length. */
  copyTo(dst: Uint8Array, off: number): number {
    if (this.own) {
      dst.set(this.own, off);
      return this.length;
    }
    if (ringPos > this.at + RING_BYTES) this.at = placeInRing(this.pieces()).at;
    const from = this.at % RING_BYTES;
    dst.set(ring.subarray(from, from + this.length), off);
    return this.length;
  }

  /** The line in a buffer of its own. */
  toBuffer(): Buffer {
    const b = Buffer.allocUnsafe(this.length);
    this.copyTo(b, 0);
    return b;
  }
}

/**
 * What gives a line's pieces again when they are wanted after it was
 * written: a line made as text by its maker (a flow's, written from its
 * record) is not kept, so that nothing but its bytes in the ring outlives
 * its writing while the line waits in the sinks' queues.
 */
export interface LineSource {
  /** text only: a line made as text names no process */
  linePieces(): string[];
}

/**
 * A line its maker wrote as text (no newline), placed in the ring like any
 * other; `again` gives its pieces again. `ascii`: the maker knows the text
 * is ASCII, so its bytes are its characters (a copy, no UTF-8 encoding:
 * half the cost).
 */
export function placeText(text: string, again: LineSource, ascii: boolean): EncodedLine {
  const max = ascii ? text.length : text.length * 3;
  if (max > OWN_BUFFER_BYTES) {
    const own = Buffer.from(text);
    return new EncodedLine(again, -1, own.length, own);
  }
  const from = ringStart(max);
  const length = ascii ? ring.write(text, from, 'latin1') : ring.write(text, from);
  return new EncodedLine(again, ringCommit(length), length);
}

/** The ring lines are written into, and where the next one goes (bytes ever written). */
const RING_BYTES = 8 * 1024 * 1024;
const ring = Buffer.allocUnsafeSlow(RING_BYTES);
let ringPos = 0;
/** a line larger than this gets a buffer of its own */
const OWN_BUFFER_BYTES = RING_BYTES / 8;

/** Where a line of at most max bytes starts in the ring (never across its end). */
function ringStart(max: number): number {
  let from = ringPos % RING_BYTES;
  if (from + max > RING_BYTES) {
    ringPos += RING_BYTES - from;
    from = 0;
  }
  return from;
}

/** The line just written at ringStart's place took length bytes: its position; the next starts 8-aligned. */
function ringCommit(length: number): number {
  const at = ringPos;
  ringPos += (length + 7) & ~7;
  return at;
}

/** Most bytes a line's pieces take in UTF-8 (a UTF-16 code unit is at most 3 bytes). */
function bound(ps: readonly Piece[]): number {
  let max = 0;
  for (const p of ps) max += typeof p === 'string' ? p.length * 3 : pieceLength(p);
  return max;
}

/** Buffer's own UTF-8 write, which buf.write(s, off) calls after parsing its arguments (much of a short write's cost). */
interface Utf8Writer {
  utf8Write(s: string, off: number): number;
}

/** Writes s as UTF-8 at dst[off] (dst has room); returns the bytes written. */
function utf8Write(dst: Buffer, s: string, off: number): number {
  return (dst as unknown as Utf8Writer).utf8Write(s, off);
}

function writePieces(ps: readonly Piece[], dst: Buffer, start: number): number {
  let off = start;
  for (const p of ps) {
    if (typeof p === 'string') off += utf8Write(dst, p, off);
    else off += copyPiece(p, dst, off);
  }
  return off - start;
}

/** Writes a line's pieces at the ring's next place (never across its end). */
function placeInRing(ps: readonly Piece[]): { at: number; length: number } {
  const from = ringStart(bound(ps));
  const length = writePieces(ps, ring, from);
  return { at: ringCommit(length), length };
}

/**
 * An event whose maker wrote its line's pieces as it built it (the policy
 * engine's events: src/events/tracing.ts), to be used instead of walking
 * its fields; they, and its line once made, are kept in fields of its own
 * (no slot added per event: at the rate of policy events, adding two cost
 * ~0.15 µs an event). src/events/lifecycle.ts makes the process sensor's
 * events so too. The pieces are `[opening, process, text]` or
 * `[opening, process, text, parent, text]` and must be what the walk would
 * give; the event is not changed afterwards (as every published event),
 * and a copy of it (an export filter's) is walked as usual.
 */
export class PiecedEvent {
  readonly #pieces: Piece[];
  /** whether its process's events come in runs (see Prefix); a process's exec and exit do not */
  readonly #runs: boolean;
  #line: EncodedLine | undefined = undefined;

  constructor(pieces: Piece[], runs = true) {
    this.#pieces = pieces;
    this.#runs = runs;
  }

  /** Its line, made once. */
  static lineOf(ev: PiecedEvent): EncodedLine {
    ev.#line ??= PiecedEvent.encode(ev);
    return ev.#line;
  }

  /** Its line made anew (encodeLine). */
  static encode(ev: PiecedEvent): EncodedLine {
    return ev.#runs ? encodePieced(ev.#pieces) : encodePieces(ev.#pieces);
  }
}

/**
 * Where a pieced line's opening and processes are as one run of bytes,
 * kept on its process: the events of one thread of one process come in
 * runs, and each then copies its ~1 KB of processes in one piece, not
 * three or four (most of a small line's cost was in those calls).
 */
interface Prefix {
  opening: string;
  /** the parent the bytes have, or undefined for none */
  parent: object | undefined;
  bytes: ProcBytes;
  /** the same as the event store keeps it (storedPrefix), once wanted */
  stored?: string | undefined;
}

const PREFIX_OF: Slot<Prefix> = slot<Prefix>();

/** The parent a pieced line names, if any. */
const parentOf = (ps: readonly Piece[]): object | undefined =>
  ps.length === 5 ? (ps[3] as object) : undefined;

/** Whether a Prefix kept on a pieced line's process is this line's (the same opening and parent). */
const isPrefixOf = (had: Prefix, ps: readonly Piece[]): boolean =>
  had.opening === ps[0] && had.parent === parentOf(ps);

/** The bytes of a pieced line up to its last text: made, or made again when the opening or parent differs or the ring went past them. */
function prefixBytes(ps: readonly Piece[]): ProcBytes {
  const proc = ps[1] as object;
  const had = PREFIX_OF.get(proc);
  if (had !== undefined && isPrefixOf(had, ps)) {
    const b = had.bytes;
    if (b.own !== undefined || procPos <= b.at + PROC_RING_BYTES) return b;
    had.bytes = placeInProcRing(ps.slice(0, -1));
    return had.bytes;
  }
  const bytes = placeInProcRing(ps.slice(0, -1));
  const opening = ps[0] as string;
  const parent = parentOf(ps);
  // a process's slot is given once: another hook shape or parent takes over its Prefix
  if (had === undefined) PREFIX_OF.set(proc, { opening, parent, bytes, stored: undefined });
  else Object.assign(had, { opening, parent, bytes, stored: undefined });
  return bytes;
}

/** A pieced event's line: its prefix's bytes, then its own text. */
function encodePieced(ps: Piece[]): EncodedLine {
  const last = ps[ps.length - 1];
  if ((ps.length !== 3 && ps.length !== 5) || typeof last !== 'string') return encodePieces(ps);
  const prefix = prefixBytes(ps);
  const max = prefix.length + last.length * 3;
  if (max > OWN_BUFFER_BYTES) return encodePieces(ps);
  const from = ringStart(max);
  if (prefix.own !== undefined) ring.set(prefix.own, from);
  else {
    const at = prefix.at % PROC_RING_BYTES;
    procRing.copy(ring, from, at, at + prefix.length);
  }
  const length = prefix.length + utf8Write(ring, last, from + prefix.length);
  return new EncodedLine(ps, ringCommit(length), length, undefined, prefix.length);
}

/** A pieced line's opening and processes as the event store keeps them (as references), kept with its Prefix. */
function storedPrefix(ps: readonly Piece[]): string {
  const had = PREFIX_OF.get(ps[1] as object);
  if (had === undefined || !isPrefixOf(had, ps)) return makeStoredPrefix(ps);
  had.stored ??= makeStoredPrefix(ps);
  return had.stored;
}

function makeStoredPrefix(ps: readonly Piece[]): string {
  let out = '';
  for (let i = 0; i < ps.length - 1; i++) {
    const p = ps[i]!;
    out += typeof p === 'string' ? p : processRef(p as object);
  }
  return out;
}

/** The pieces of an event's line. */
function pieces(ev: ExportEvent): Piece[] {
  // flows come at the rate of new connections: they have an encoder of their own
  if ((ev as { flow?: unknown }).flow !== undefined) return [encodeFlowLine(ev as unknown as FlowEvent)];
  const ps: Piece[] = [];
  let out = '{';
  let first = true;
  const rec = ev as Record<string, unknown>;
  for (const key in rec) {
    const v = rec[key];
    if (v === undefined) continue;
    const k = `${first ? '' : ','}${quoted(key)}:`;
    first = false;
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && 'process' in v)
      out = payloadPieces(v as Record<string, unknown>, ps, out + k);
    else out += k + stringify(v);
  }
  ps.push(`${out}}`);
  return ps;
}

/**
 * One event as one line of JSON in UTF-8 (no newline), byte for byte what
 * JSON.stringify gives. Absent optional fields are left out, as protojson
 * does. Events carry no bigint by design; should a sensor slip one in, it is
 * written as a string (as protojson writes 64-bit integers) instead of
 * failing the whole stream.
 */
export function encodeLine(ev: ExportEvent): EncodedLine {
  return ev instanceof PiecedEvent ? PiecedEvent.encode(ev) : encodePieces(pieces(ev));
}

function encodePieces(ps: Piece[]): EncodedLine {
  const max = bound(ps);
  if (max > OWN_BUFFER_BYTES) {
    const own = Buffer.allocUnsafe(max);
    const n = writePieces(ps, own, 0);
    return new EncodedLine(ps, -1, n, own.subarray(0, n));
  }
  const { at, length } = placeInRing(ps);
  return new EncodedLine(ps, at, length);
}

/** One event as one line of JSON (no newline). */
export function encodeEvent(ev: ExportEvent): string {
  return encodeLine(ev).toBuffer().toString();
}

/** An event's line, made once however many sinks want it. */
export function eventLine(ev: ExportEvent): EncodedLine {
  if (ev instanceof PiecedEvent) return PiecedEvent.lineOf(ev);
  return BuiltFlowEvent.encodedOf(ev) ?? cached(ev, LINE_OF, encodeLine);
}

/** JSON text of a value, exactly as JSON.stringify writes it (a bigint as a string). */
export function stringify(v: unknown): string {
  // the primitives an event is mostly made of, and the small plain objects
  // and arrays of them around them (a policy event's args: [{int_arg: -100},
  // {string_arg: "/etc/passwd"}]), without a call into JSON.stringify (which
  // took ~1.6x as long for those args)
  const small = smallJson(v, 0);
  if (small !== undefined) return small;
  try {
    return JSON.stringify(v);
  } catch (err) {
    // the replacer costs on every value, so only the rare value that needs it pays for it
    if (err instanceof TypeError && /BigInt/i.test(err.message)) return JSON.stringify(v, bigintAsString);
    throw err;
  }
}

/** Deepest nesting smallJson writes itself; anything deeper goes to JSON.stringify. */
const SMALL_DEPTH = 3;

/**
 * JSON text of a plain object or array holding only strings, finite or
 * non-finite numbers, booleans, null, undefined and (to SMALL_DEPTH) more of
 * the same, exactly as JSON.stringify writes it; undefined for anything
 * else (a bigint, a class instance, an object with toJSON, a symbol or
 * function value, deeper nesting), which the caller gives to JSON.stringify.
 */
export function smallJson(v: unknown, depth: number): string | undefined {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'string':
      return jsonString(v);
    case 'number':
      return Number.isFinite(v) ? String(v) : 'null';
    case 'boolean':
      return v ? 'true' : 'false';
    case 'object':
      break;
    default:
      return undefined;
  }
  if (depth >= SMALL_DEPTH) return undefined;
  if (Array.isArray(v)) {
    if (Object.getPrototypeOf(v) !== Array.prototype) return undefined;
    let out = '[';
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      // in an array, JSON.stringify writes undefined as null
      const s = x === undefined ? 'null' : smallJson(x, depth + 1);
      if (s === undefined) return undefined;
      out += i === 0 ? s : `,${s}`;
    }
    return `${out}]`;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return undefined;
  const o = v as Record<string, unknown>;
  if ('toJSON' in o) return undefined;
  let out = '{';
  let first = true;
  for (const key in o) {
    const x = o[key];
    // in an object, JSON.stringify leaves out an undefined value
    if (x === undefined) continue;
    const s = smallJson(x, depth + 1);
    if (s === undefined) return undefined;
    out += `${first ? '' : ','}${quoted(key)}:${s}`;
    first = false;
  }
  return `${out}}`;
}
