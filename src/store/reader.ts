/**
 * Reading the event store: history queries and process trees, on a
 * connection of the caller's (the agent thread's, or the query thread's:
 * query-worker.ts). Events come back with their processes and the parts
 * processes share put back in place of the references the store keeps.
 */
import type Database from 'better-sqlite3';
import { PART_REF, PROCESS_REF } from '../events/encode.js';
import type { ExportEvent, Process } from '../events/types.js';
import { StoredBlock } from './blocks.js';
import { StoreError, storeError } from './errors.js';
import { boundToNs, type TimeBound } from './time.js';

export interface StoreQuery {
  /** events at or after this time (ns since the epoch, Date or RFC 3339) */
  since?: TimeBound;
  /** events before this time */
  until?: TimeBound;
  /** event types (process_exec, process_kprobe, ...); any of them */
  types?: readonly string[];
  /** regular expression searched in the process binary */
  binary?: string;
  /** policy names; any of them */
  policy?: string | readonly string[];
  /** events of this process */
  execId?: string;
  /** at most this many, the newest (default 1,000, at most 100,000) */
  limit?: number;
}

/** A process as the store keeps it. */
export interface StoredProcess {
  exec_id: string;
  parent_exec_id?: string;
  pid: number;
  binary: string;
  arguments: string;
  start_time?: string;
  exit_time?: string;
  exit_status?: number;
  exit_signal?: string;
  /** the process as the last event that named it carried it (all of it: an event's brief form is stored whole) */
  process: Process;
}

export interface ProcessTree {
  process: StoredProcess;
  /** parent first, then its parent, up to the oldest the store knows */
  ancestors: StoredProcess[];
  /** children, then their children...; depth 1 = child */
  descendants: (StoredProcess & { depth: number })[];
  /** the process's own events, newest last */
  events: ExportEvent[];
}

export interface ProcessTreeOptions {
  /** newest events of the process returned (default 1,000) */
  maxEvents?: number;
  /** descendants returned (default 10,000) */
  maxDescendants?: number;
  /** levels walked up and down (default 256) */
  maxDepth?: number;
}

export const DEFAULT_QUERY_LIMIT = 1000;
export const MAX_QUERY_LIMIT = 100_000;
const EVENT_TYPE_NAME = /^[a-z_]+$/;

export interface ProcessRow {
  exec_id: string;
  parent_exec_id: string | null;
  pid: number;
  binary: string;
  arguments: string;
  start_time: string | null;
  exit_time: string | null;
  exit_status: number | null;
  exit_signal: string | null;
  json: string;
}

export function positiveInt(v: number | undefined, def: number, what: string): number {
  if (v === undefined) return def;
  if (!Number.isInteger(v) || v < 1) throw new StoreError(`event store ${what} ${v} must be an integer >= 1`);
  return v;
}

export class StoreReader {
  private regexCache = new Map<string, RegExp>();

  constructor(
    private readonly db: Database.Database,
    readonly path: string,
  ) {
    db.function('regexp', { deterministic: true }, (pattern: unknown, value: unknown) => {
      if (typeof value !== 'string' || typeof pattern !== 'string') return 0;
      return this.regex(pattern).test(value) ? 1 : 0;
    });
  }

  /** Events matching every given condition, the newest `limit` of them, newest last. */
  query(q: StoreQuery = {}): ExportEvent[] {
    const db = this.db;
    const f: EventFilter = {};
    if (q.since !== undefined) f.since = boundToNs(q.since, 'since');
    if (q.until !== undefined) f.until = boundToNs(q.until, 'until');
    if (q.types && q.types.length > 0) {
      for (const t of q.types) {
        if (!EVENT_TYPE_NAME.test(t)) {
          throw new Error(`event type "${t}" is not a valid name (lower case letters and "_")`);
        }
      }
      f.types = q.types;
    }
    // a bad pattern is reported before any block is read
    if (q.binary !== undefined && q.binary !== '') f.binary = this.regex(q.binary);
    if (q.policy !== undefined) {
      const names = typeof q.policy === 'string' ? [q.policy] : q.policy;
      if (names.length > 0) f.policies = names;
    }
    if (q.execId !== undefined) f.execId = q.execId;
    const limit = q.limit ?? DEFAULT_QUERY_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_QUERY_LIMIT) {
      throw new Error(`query limit ${limit} must be an integer from 1 to ${MAX_QUERY_LIMIT}`);
    }
    let out: ExportEvent[];
    try {
      out = newestEvents(db, f, limit);
    } catch (err) {
      throw storeError(this.path, 'querying events', err);
    }
    try {
      this.withProcesses(db, out);
    } catch (err) {
      throw storeError(this.path, 'querying the processes of events', err);
    }
    return out;
  }

  /** A process, its ancestors, its descendants and its events; undefined when the store does not know it. */
  process(execId: string, opts: ProcessTreeOptions = {}): ProcessTree | undefined {
    const db = this.db;
    const maxEvents = positiveInt(opts.maxEvents, 1000, 'process events limit');
    const maxDescendants = positiveInt(opts.maxDescendants, 10_000, 'descendants limit');
    const maxDepth = positiveInt(opts.maxDepth, 256, 'depth limit');
    try {
      const row = db.prepare('SELECT * FROM processes WHERE exec_id = ?').get(execId) as
        | ProcessRow
        | undefined;
      if (!row) return undefined;
      const ancestors = db
        .prepare(
          `WITH RECURSIVE up(exec_id, depth) AS (
             SELECT parent_exec_id, 1 FROM processes WHERE exec_id = ?
             UNION
             SELECT p.parent_exec_id, up.depth + 1 FROM processes p JOIN up ON p.exec_id = up.exec_id
             WHERE up.depth < ? AND p.parent_exec_id IS NOT NULL
           )
           SELECT p.* FROM up JOIN processes p ON p.exec_id = up.exec_id
           WHERE p.exec_id != ? ORDER BY up.depth`,
        )
        .all(execId, maxDepth, execId) as ProcessRow[];
      const descendants = db
        .prepare(
          `WITH RECURSIVE down(exec_id, depth) AS (
             SELECT exec_id, 1 FROM processes WHERE parent_exec_id = ?
             UNION
             SELECT p.exec_id, down.depth + 1 FROM processes p JOIN down ON p.parent_exec_id = down.exec_id
             WHERE down.depth < ?
           )
           SELECT p.*, min(down.depth) AS depth FROM down JOIN processes p ON p.exec_id = down.exec_id
           WHERE p.exec_id != ? GROUP BY p.exec_id ORDER BY depth, p.start_time, p.exec_id LIMIT ?`,
        )
        .all(execId, maxDepth, execId, maxDescendants) as (ProcessRow & { depth: number })[];
      const events = newestEvents(db, { execId }, maxEvents);
      this.withProcesses(db, events);
      // a chain that loops back (it should not) is cut where it repeats
      const seenAnc = new Set<string>([execId]);
      const anc: StoredProcess[] = [];
      for (const a of ancestors) {
        if (seenAnc.has(a.exec_id)) break;
        seenAnc.add(a.exec_id);
        anc.push(storedProcess(a));
      }
      const tree = {
        process: storedProcess(row),
        ancestors: anc,
        descendants: descendants.map((d) => ({ ...storedProcess(d), depth: d.depth })),
        events,
      };
      this.withParts(
        db,
        [tree.process, ...tree.ancestors, ...tree.descendants].map((p) => p.process),
      );
      return tree;
    } catch (err) {
      throw storeError(this.path, 'querying a process', err);
    }
  }

  /**
   * Puts back the processes that stored events name by reference (see
   * EncodedLine.writeStored), from the processes table. A process whose row
   * is gone stays as {exec_id}.
   */
  private withProcesses(db: Database.Database, events: ExportEvent[]): void {
    const refs: { holder: Record<string, unknown> | unknown[]; key: string | number; id: string }[] = [];
    const note = (holder: Record<string, unknown> | unknown[], key: string | number) => {
      const v = (holder as Record<string | number, unknown>)[key];
      if (v === null || typeof v !== 'object') return;
      const id = (v as Record<string, unknown>)[PROCESS_REF];
      if (typeof id === 'string') refs.push({ holder, key, id });
    };
    for (const ev of events) {
      for (const k in ev) {
        const payload = (ev as Record<string, unknown>)[k];
        if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) continue;
        const pl = payload as Record<string, unknown>;
        note(pl, 'process');
        note(pl, 'parent');
        if (Array.isArray(pl.ancestors)) for (let i = 0; i < pl.ancestors.length; i++) note(pl.ancestors, i);
      }
    }
    if (refs.length === 0) return;
    const found = jsonByKey(db, 'processes', 'exec_id', refs);
    this.withParts(db, [...found.values()] as object[]);
    for (const r of refs) {
      (r.holder as Record<string | number, unknown>)[r.key] = found.get(r.id) ?? { exec_id: r.id };
    }
  }

  /**
   * Puts back the shared parts ({"$part": id}) of processes read from the
   * processes table. A part that is missing stays as the reference.
   */
  private withParts(db: Database.Database, procs: readonly object[]): void {
    const refs: { holder: Record<string, unknown>; key: string; id: string }[] = [];
    for (const p of procs) {
      const rec = p as Record<string, unknown>;
      for (const key in rec) {
        const v = rec[key];
        if (v === null || typeof v !== 'object' || Array.isArray(v)) continue;
        const id = (v as Record<string, unknown>)[PART_REF];
        if (typeof id === 'string') refs.push({ holder: rec, key, id });
      }
    }
    if (refs.length === 0) return;
    const found = jsonByKey(db, 'process_parts', 'id', refs);
    for (const r of refs) {
      const part = found.get(r.id);
      // each process gets its own copy: callers may change what they got
      if (part !== undefined) r.holder[r.key] = structuredClone(part);
    }
  }

  private regex(pattern: string): RegExp {
    let re = this.regexCache.get(pattern);
    if (re === undefined) {
      try {
        re = new RegExp(pattern);
      } catch (err) {
        throw new Error(
          `binary filter "${pattern}" is not a valid regular expression: ${(err as Error).message}`,
        );
      }
      if (this.regexCache.size >= 64) this.regexCache.clear();
      this.regexCache.set(pattern, re);
    }
    return re;
  }
}

/** The parsed json column of the rows of `table` whose `key` is one of the refs' ids, by id. */
function jsonByKey(
  db: Database.Database,
  table: 'processes' | 'process_parts',
  key: 'exec_id' | 'id',
  refs: readonly { id: string }[],
): Map<string, unknown> {
  const ids = [...new Set(refs.map((r) => r.id))];
  const found = new Map<string, unknown>();
  // SQLite takes at most 32,766 parameters per statement
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    const rows = db
      .prepare(`SELECT ${key} AS k, json FROM ${table} WHERE ${key} IN (${chunk.map(() => '?').join(', ')})`)
      .all(...chunk) as { k: string; json: string }[];
    for (const r of rows) found.set(r.k, JSON.parse(r.json));
  }
  return found;
}

function storedProcess(r: ProcessRow): StoredProcess {
  const p: StoredProcess = {
    exec_id: r.exec_id,
    pid: r.pid,
    binary: r.binary,
    arguments: r.arguments,
    process: JSON.parse(r.json) as Process,
  };
  if (r.parent_exec_id !== null) p.parent_exec_id = r.parent_exec_id;
  if (r.start_time !== null) p.start_time = r.start_time;
  if (r.exit_time !== null) p.exit_time = r.exit_time;
  if (r.exit_status !== null) p.exit_status = r.exit_status;
  if (r.exit_signal !== null) p.exit_signal = r.exit_signal;
  return p;
}

/** What newestEvents picks: every condition given must hold. */
interface EventFilter {
  since?: bigint;
  until?: bigint;
  types?: readonly string[];
  binary?: RegExp;
  policies?: readonly string[];
  execId?: string;
}

interface Found {
  timeNs: bigint;
  block: number;
  index: number;
  json: string;
}

/** newer first: by time, then by the order they were stored in */
function newerFirst(a: Found, b: Found): number {
  if (a.timeNs !== b.timeNs) return a.timeNs > b.timeNs ? -1 : 1;
  if (a.block !== b.block) return b.block - a.block;
  return b.index - a.index;
}

/**
 * The newest `limit` events that pass the filter, oldest first, their
 * processes still as references. Reads the candidate blocks newest first
 * (by their latest event) and stops once no block left can hold an event
 * newer than the limit-th found.
 */
function newestEvents(db: Database.Database, f: EventFilter, limit: number): ExportEvent[] {
  const where: string[] = [];
  const params: unknown[] = [];
  if (f.since !== undefined) {
    where.push('max_ns >= ?');
    params.push(f.since);
  }
  if (f.until !== undefined) {
    where.push('min_ns < ?');
    params.push(f.until);
  }
  const keyed = (prefix: string, values: readonly string[]) => {
    where.push(
      `id IN (SELECT block FROM event_block_keys WHERE key IN (${values.map(() => '?').join(', ')}))`,
    );
    for (const v of values) params.push(prefix + v);
  };
  if (f.execId !== undefined) keyed('e:', [f.execId]);
  if (f.policies) keyed('p:', f.policies);
  if (f.types) keyed('t:', f.types);
  const sql =
    `SELECT id, max_ns, meta, dict, text FROM event_blocks ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ` +
    'ORDER BY max_ns DESC, id DESC';
  const rows = db
    .prepare(sql)
    .safeIntegers(true)
    .iterate(...params) as IterableIterator<{
    id: bigint;
    max_ns: bigint;
    meta: Buffer;
    dict: string;
    text: Buffer;
  }>;
  let found: Found[] = [];
  /** the limit-th newest time found so far, once there are `limit` */
  let floor: bigint | undefined;
  for (const row of rows) {
    if (floor !== undefined && row.max_ns < floor) break;
    const block = new StoredBlock(Number(row.id), row.meta, row.dict, row.text);
    const d = block.dict;
    const want = (values: readonly string[], of: readonly string[] | undefined) =>
      of === undefined ? undefined : new Set(values.flatMap((v, i) => (of.includes(v) ? [i] : [])));
    const types = want(d.types, f.types);
    const policies = want(d.policies, f.policies);
    const execs = want(d.execs, f.execId === undefined ? undefined : [f.execId]);
    const binaries =
      f.binary === undefined
        ? undefined
        : new Set(d.binaries.flatMap((b, i) => ((f.binary as RegExp).test(b) ? [i] : [])));
    if (binaries?.size === 0) continue;
    for (let i = 0; i < block.count; i++) {
      const e = block.event(i);
      if (f.since !== undefined && e.timeNs < f.since) continue;
      if (f.until !== undefined && e.timeNs >= f.until) continue;
      if (floor !== undefined && e.timeNs < floor) continue;
      if (types && !types.has(e.type)) continue;
      if (policies && !policies.has(e.policy)) continue;
      if (execs && !execs.has(e.exec)) continue;
      if (binaries && !binaries.has(e.binary)) continue;
      found.push({ timeNs: e.timeNs, block: block.id, index: i, json: block.json(e) });
    }
    if (found.length >= limit) {
      found.sort(newerFirst);
      found = found.slice(0, limit);
      floor = found[limit - 1]!.timeNs;
    }
  }
  found.sort(newerFirst);
  if (found.length > limit) found = found.slice(0, limit);
  const out: ExportEvent[] = new Array(found.length);
  for (let i = 0; i < found.length; i++)
    out[found.length - 1 - i] = JSON.parse(found[i]!.json) as ExportEvent;
  return out;
}
