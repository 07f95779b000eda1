/**
 * The embedded event store: events in blocks in a SQLite file (WAL mode;
 * see blocks.ts), a table of the processes events named, and queries over
 * both.
 *
 * better-sqlite3 is synchronous, so the event path never writes directly:
 * enqueue() puts an event on a bounded queue (and counts what does not fit)
 * and a timer writes the queue as one transaction. Retention runs on its own
 * timer in small transactions, yielding to the event loop between them, so
 * no single step holds the loop for long. Failures on that path are counted
 * and kept for status; they never reach the code that enqueued.
 */

import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describeFsError, mkdirp } from '../agent/fs-util.js';
import { fullProcess } from '../events/brief.js';
import { type EncodedLine, eventLine, storedProcessJson } from '../events/encode.js';
import type { ExportEvent, Process } from '../events/types.js';
import { BlockBuilder, MAX_BLOCK_EVENTS } from './blocks.js';
import { eventColumns } from './columns.js';
import { STORE_PATH_FLAG, StoreError, storeError } from './errors.js';
import {
  type ProcessTree,
  type ProcessTreeOptions,
  positiveInt,
  type StoreQuery,
  StoreReader,
} from './reader.js';
import { Retention, type RetentionResult } from './retention.js';
import { APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION } from './schema.js';
import {
  type BatchRows,
  INSERT_BLOCK_KEY_SQL,
  INSERT_BLOCK_SQL,
  INSERT_PART_SQL,
  type Sql,
  UPSERT_PROCESS_SQL,
  writeRows,
} from './sql.js';
import { partsToNs, type TimeParts, timeToNs } from './time.js';
import { StoreWriter, type WriterReply } from './writer.js';

export type {
  ProcessTree,
  ProcessTreeOptions,
  StoredProcess,
  StoreQuery,
} from './reader.js';
export type { RetentionResult } from './retention.js';

export interface EventStoreOptions {
  /** events older than this are deleted; 0 keeps them however old (default 7 days) */
  maxAgeMs?: number;
  /**
   * the database file (page_count * page_size) is kept under this; when it
   * grows past it the oldest events go until it is under 90% of it. 0: no
   * limit (default 512 MiB). The WAL file comes on top (a few MiB, capped at
   * 16 MiB after each checkpoint).
   */
  maxBytes?: number;
  /** events enqueue() holds (as rows) before it starts skipping them (default 10,000) */
  maxQueue?: number;
  /**
   * a queue this long is written (or sent to the writer thread) without
   * waiting for the timer (default 256): inline, a write holds the event loop
   */
  flushEvents?: number;
  /** how often the queue is written (default 200 ms) */
  flushIntervalMs?: number;
  /** how often retention runs (default 10 s); 0 turns the timer off (call runRetention yourself) */
  retentionIntervalMs?: number;
  /** rows deleted per retention transaction (default 2,000) */
  retentionBatch?: number;
  /** how long to wait for another connection's lock before failing (default 100 ms) */
  busyTimeoutMs?: number;
  /** a background write or retention step failed (already counted and kept as last_error) */
  onError?: (err: StoreError) => void;
  /** the event's JSON line as UTF-8 (default eventLine): made once for every sink */
  encode?: (ev: ExportEvent) => EncodedLine;
  /**
   * write queued events on a thread of their own (writer-worker.ts) with its
   * own connection, so SQLite's inserts never run on the event loop (default
   * false: on the calling thread, in small batches). append() always writes
   * on the calling thread.
   */
  writeInThread?: boolean;
}

export interface EventStoreStats {
  path: string;
  /** events in the store */
  rows: number;
  processes: number;
  /** page_count * page_size of the database file */
  bytes: number;
  max_bytes: number;
  max_age_ms: number;
  /** events waiting in the queue, or sent to the writer thread and not written yet */
  queued: number;
  /** where queued events are written: "thread" (a writer thread) or "inline" */
  writer: 'thread' | 'inline';
  /** events written so far (by append or the queue) */
  written: number;
  /** events enqueue() skipped because the queue was full or the store closed */
  skipped: number;
  /** events lost because their batch could not be written */
  failed: number;
  write_errors: number;
  deleted_by_retention: number;
  retention_errors: number;
  journal_mode: string;
  last_error?: string;
}

export const DEFAULT_MAX_AGE_MS = 7 * 24 * 3600 * 1000;
export const DEFAULT_MAX_BYTES = 512 * 1024 * 1024;
/** how soon retention runs again after a run that stopped with work left */
const RETENTION_CATCH_UP_MS = 200;
/** how often the file's size is compared with its limit between retention runs */
const SIZE_CHECK_MS = 1000;
/** a process named again within this time is not written again (exec and exit always are) */
const PROCESS_REFRESH_MS = 60_000;
/** where last_seen_ns and the exit's four fields are in an UPSERT_PROCESS_SQL row */
const PROCESS_LAST_SEEN_AT = 6;
const PROCESS_EXIT_AT = 8;
const MAX_SEEN_PROCESSES = 20_000;
/** a part's row is written again (its seen_ns moved on) at most this often */
const PART_REFRESH_NS = 3_600_000_000_000n;

/** The rows of events on their way to a transaction. */
interface PendingRows {
  rows: BatchRows;
  blocks: BlockBuilder;
  /** the batch's process rows, by exec_id */
  inBatch: Map<string, BatchProcess>;
  /** events added */
  count: number;
  /** Date.now() when the batch began: processes named again within PROCESS_REFRESH_MS are not written again */
  now: number;
}

/** A process's row in a batch, with the latest time of its events (its last_seen_ns, made when the batch is taken). */
interface BatchProcess {
  row: Sql[];
  sec: number;
  nsec: number;
}

type Statement = Database.Statement<unknown[], unknown>;

function nonNegative(v: number | undefined, def: number, what: string): number {
  if (v === undefined) return def;
  if (!Number.isFinite(v) || v < 0) throw new StoreError(`event store ${what} ${v} must be a number >= 0`);
  return v;
}

interface Settings {
  maxAgeMs: number;
  maxBytes: number;
  maxQueue: number;
  flushEvents: number;
  flushIntervalMs: number;
  retentionIntervalMs: number;
  retentionBatch: number;
  busyTimeoutMs: number;
  onError: ((err: StoreError) => void) | undefined;
  encode: (ev: ExportEvent) => EncodedLine;
  writeInThread: boolean;
}

/** The options with their defaults, checked before any file is touched. */
function settings(o: EventStoreOptions): Settings {
  return {
    maxAgeMs: nonNegative(o.maxAgeMs, DEFAULT_MAX_AGE_MS, 'maximum age (ms)'),
    maxBytes: nonNegative(o.maxBytes, DEFAULT_MAX_BYTES, 'maximum size (bytes)'),
    maxQueue: positiveInt(o.maxQueue, 10_000, 'queue size'),
    flushEvents: positiveInt(o.flushEvents, 256, 'flush threshold'),
    flushIntervalMs: positiveInt(o.flushIntervalMs, 200, 'flush interval (ms)'),
    retentionIntervalMs: nonNegative(o.retentionIntervalMs, 10_000, 'retention interval (ms)'),
    retentionBatch: positiveInt(o.retentionBatch, 2000, 'retention batch'),
    busyTimeoutMs: nonNegative(o.busyTimeoutMs, 100, 'busy timeout (ms)'),
    onError: o.onError,
    encode: o.encode ?? eventLine,
    writeInThread: o.writeInThread === true,
  };
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

export class EventStore {
  readonly path: string;
  private db: Database.Database | undefined;
  private readonly maxAgeMs: number;
  private readonly maxBytes: number;
  private readonly maxQueue: number;
  private readonly flushEvents: number;
  private readonly retentionBatch: number;
  private readonly onError: ((err: StoreError) => void) | undefined;
  private readonly encode: (ev: ExportEvent) => EncodedLine;
  private readonly journalMode: string;

  /**
   * Rows of the events queued, made as each is enqueued: the store keeps
   * their bytes, not the events, so that an event dies young whatever the
   * store's pace (events kept for the next write outlived young-generation
   * collections and were copied by them).
   */
  private pending: PendingRows;
  private flushScheduled = false;
  private flushTimer: NodeJS.Timeout | undefined;
  private retentionTimer: NodeJS.Timeout | undefined;
  /** the next run of a retention that had more to do than one run may */
  private catchUpTimer: NodeJS.Timeout | undefined;
  /** between the retention timer's runs, the file's size is looked at every SIZE_CHECK_MS */
  private sizeTimer: NodeJS.Timeout | undefined;
  private retaining = false;
  /** exec_id -> Date.now() of its last write, to skip rewriting a busy process on every event */
  private readonly seen = new Map<string, number>();
  /** each shared part's id (the hash of its JSON), by object: parts are interned, so few */
  private readonly partIds = new WeakMap<object, string>();
  /** parts written (or sent to be written) since the last failed write, with their seen_ns */
  private readonly partsWritten = new Map<string, bigint>();

  private rows = 0;
  private lastBytes = 0;
  private written = 0;
  private skipped = 0;
  private failed = 0;
  private writeErrors = 0;
  private retentionErrors = 0;
  private deletedByRetention = 0;
  private lastError: string | undefined;

  private readonly stmt: {
    insertBlock: Statement;
    insertBlockKey: Statement;
    upsertProcess: Statement;
    insertPart: Statement;
    countProcesses: Statement;
  };
  private readonly appendTx: (rows: BatchRows) => void;
  private readonly writer: StoreWriter | undefined;
  private readonly retention: Retention;
  /** events sent to the writer thread and not answered yet */
  private sentEvents = 0;
  private readonly reader: StoreReader;

  private constructor(db: Database.Database, file: string, journalMode: string, set: Settings) {
    this.db = db;
    this.path = file;
    this.journalMode = journalMode;
    this.maxAgeMs = set.maxAgeMs;
    this.maxBytes = set.maxBytes;
    this.maxQueue = set.maxQueue;
    this.flushEvents = set.flushEvents;
    this.retentionBatch = set.retentionBatch;
    this.onError = set.onError;
    this.encode = set.encode;
    this.pending = this.newRows();

    this.reader = new StoreReader(db, file);

    this.stmt = {
      insertBlock: db.prepare(INSERT_BLOCK_SQL),
      insertBlockKey: db.prepare(INSERT_BLOCK_KEY_SQL),
      upsertProcess: db.prepare(UPSERT_PROCESS_SQL),
      insertPart: db.prepare(INSERT_PART_SQL),
      countProcesses: db.prepare('SELECT count(*) FROM processes').pluck(),
    };
    this.appendTx = db.transaction((rows: BatchRows) => writeRows(this.stmt, rows));
    this.retention = new Retention(db);
    this.writer = set.writeInThread
      ? new StoreWriter({ file, busyTimeoutMs: set.busyTimeoutMs }, (r) => this.onWritten(r))
      : undefined;
    this.rows = countEvents(db);
    this.lastBytes = this.retention.sizeBytes();

    this.flushTimer = setInterval(() => this.scheduleFlush(), set.flushIntervalMs);
    this.flushTimer.unref();
    if (set.retentionIntervalMs > 0 && (this.maxAgeMs > 0 || this.maxBytes > 0)) {
      this.retentionTimer = setInterval(() => void this.runRetention(), set.retentionIntervalMs);
      this.retentionTimer.unref();
      if (this.maxBytes > 0 && set.retentionIntervalMs > SIZE_CHECK_MS) {
        this.sizeTimer = setInterval(() => this.retainIfOver(), SIZE_CHECK_MS);
        this.sizeTimer.unref();
      }
    }
  }

  /**
   * Open (or create) the store at `file`, creating missing directories,
   * bringing the schema up to date and taking the write lock once, so that a
   * file that is not a store, is corrupted or is held by another process is
   * reported here, within busyTimeoutMs, and not at the first event.
   */
  static open(file: string, opts: EventStoreOptions = {}): EventStore {
    const abs = path.resolve(file);
    const set = settings(opts);
    try {
      mkdirp(path.dirname(abs));
    } catch (err) {
      throw new StoreError(
        `cannot create directory ${path.dirname(abs)} for event store ${abs}: ${describeFsError(err)}; ` +
          `choose a writable path with ${STORE_PATH_FLAG}`,
      );
    }
    let db: Database.Database;
    try {
      // events carry command lines: the file (and SQLite's -wal and -shm, which copy
      // its mode) is not for every user to read
      if (!existsSync(abs)) closeSync(openSync(abs, 'wx', 0o640));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new StoreError(
          `cannot create event store ${abs}: ${describeFsError(err)}; choose a writable path with ${STORE_PATH_FLAG}`,
        );
      }
    }
    try {
      db = new Database(abs, { timeout: set.busyTimeoutMs });
    } catch (err) {
      throw storeError(abs, 'opening it', err);
    }
    try {
      const journalMode = prepareFile(db, abs);
      return new EventStore(db, abs, journalMode, set);
    } catch (err) {
      db.close();
      throw storeError(abs, 'opening it', err);
    }
  }

  /**
   * Write events now, in one transaction. Throws a StoreError naming the
   * file when the write fails (nothing of the batch is written then); the
   * event path uses enqueue() instead, which never throws.
   */
  append(events: readonly ExportEvent[]): number {
    const db = this.db;
    if (!db) throw new StoreError(`event store ${this.path} is closed`);
    if (events.length === 0) return 0;
    const p = this.newRows();
    try {
      for (const ev of events) this.addRows(p, ev);
    } catch (err) {
      // processes and parts marked as written may not be
      this.seen.clear();
      this.partsWritten.clear();
      throw storeError(this.path, 'writing events', err);
    }
    return this.writeRows(this.takeRows(p), events.length);
  }

  /** Writes a batch's rows in one transaction on this thread; returns its events (n). */
  private writeRows(rows: BatchRows, n: number): number {
    try {
      this.appendTx(rows);
    } catch (err) {
      // the transaction rolled back: processes and parts marked as written may not be
      this.seen.clear();
      this.partsWritten.clear();
      throw storeError(this.path, 'writing events', err);
    }
    this.written += n;
    this.rows += n;
    return n;
  }

  /**
   * Queue an event for the next write. Never throws and never blocks: when
   * the queue is full (the disk cannot keep up) or the store is closed, the
   * event is skipped and counted.
   */
  enqueue(ev: ExportEvent): void {
    if (this.db === undefined || this.pending.count >= this.maxQueue) {
      this.skipped++;
      return;
    }
    try {
      this.addRows(this.pending, ev);
    } catch (err) {
      // an event that cannot be written (its JSON cannot be made) is lost alone;
      // a process it named may have been marked as written without its row
      this.seen.clear();
      this.partsWritten.clear();
      this.writeErrors++;
      this.failed++;
      this.fail(storeError(this.path, 'storing an event', err));
      return;
    }
    if (this.pending.count >= this.flushEvents) this.scheduleFlush();
  }

  /** enqueue() each event of a batch: the shape of an event bus sink. */
  enqueueBatch(events: readonly ExportEvent[]): void {
    for (const ev of events) this.enqueue(ev);
  }

  /**
   * Write everything queued now. Failures are counted (the batch's events as
   * `failed`), kept as last_error and passed to onError; never thrown.
   * Returns the events written.
   */
  flush(): number {
    return this.writeQueued();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.writeQueued();
    });
  }

  private writeQueued(): number {
    if (this.pending.count === 0 || this.db === undefined) return 0;
    const n = this.pending.count;
    const rows = this.takeRows(this.pending);
    // the next batch's rows go into the same block builder, whose buffers are kept
    this.pending = this.newRows(this.pending.blocks);
    if (this.writer) {
      // the rows were made as the events came; SQLite's work happens on the writer thread
      if (this.writer.send(rows)) {
        this.sentEvents += n;
        return n;
      }
      this.writeErrors++;
      this.failed += n;
      this.fail(
        new StoreError(`event store ${this.path}: the writer thread has ended; events are not stored`),
      );
      return 0;
    }
    try {
      return this.writeRows(rows, n);
    } catch (err) {
      this.writeErrors++;
      this.failed += n;
      this.fail(err as StoreError);
      return 0;
    }
  }

  private onWritten(r: WriterReply): void {
    this.sentEvents = Math.max(0, this.sentEvents - r.events);
    if (r.ok) {
      this.written += r.events;
      this.rows += r.events;
      return;
    }
    // the transaction rolled back: processes and parts marked as written may not be
    this.seen.clear();
    this.partsWritten.clear();
    this.writeErrors++;
    this.failed += r.events;
    this.fail(
      new StoreError(`event store ${this.path}: writing events failed: ${r.error ?? 'unknown error'}`),
    );
  }

  /**
   * Write what is queued and wait until it is written (with a writer thread,
   * until the thread has answered for everything sent so far).
   */
  async settle(): Promise<void> {
    this.flush();
    await this.writer?.settle();
  }

  /**
   * Delete events older than maxAgeMs, then the oldest events while the file
   * is over maxBytes, then processes nothing refers to any more; each step in
   * transactions of retentionBatch rows with the event loop free in between.
   * Failures are counted and kept, never thrown. A run already in progress
   * makes this one return at once.
   */
  async runRetention(nowMs = Date.now()): Promise<RetentionResult> {
    const result: RetentionResult = { by_age: 0, by_size: 0, processes: 0 };
    if (this.retaining || this.db === undefined) return result;
    this.retaining = true;
    const opts = {
      nowMs,
      maxAgeMs: this.maxAgeMs,
      maxBytes: this.maxBytes,
      batch: this.retentionBatch,
      rows: this.rows,
    };
    let step = 'deleting old events';
    try {
      if (this.writer) {
        // every write of the file on one connection: retention never waits for the writer's lock
        const r = await this.writer.retain(opts);
        Object.assign(result, r.result);
        step = r.step ?? step;
        this.afterRetention(result, opts.rows, r.rows);
        if (r.error !== undefined) throw new Error(r.error);
        return result;
      }
      const rows = await this.retention.run(opts, result, {
        between: tick,
        step: (st) => {
          step = st;
        },
        alive: () => this.db !== undefined,
      });
      this.afterRetention(result, opts.rows, rows);
      return result;
    } catch (err) {
      this.retentionErrors++;
      this.fail(storeError(this.path, step, err));
      return result;
    } finally {
      this.retaining = false;
      this.catchUp(result);
    }
  }

  /**
   * Retention now when the file is over its size limit: a store taking
   * 40,000 events/s grows by ~100 MB between runs 10 s apart. The size is
   * the page count on this thread's connection (microseconds).
   */
  private retainIfOver(): void {
    if (this.retaining || this.db === undefined) return;
    try {
      this.lastBytes = this.retention.sizeBytes();
    } catch {
      return; // the retention timer's run reports what is wrong
    }
    if (this.lastBytes > this.maxBytes) void this.runRetention();
  }

  /**
   * A run stops after a bounded number of transactions, so that writes get
   * their turn. When it stopped with work left (events come in faster than
   * a run every retentionIntervalMs deletes them), the next run comes after
   * RETENTION_CATCH_UP_MS, not the interval: otherwise a store taking more
   * than ~10,000 events/s grew without bound past its size limit.
   */
  private catchUp(r: RetentionResult): void {
    if (r.more !== true || this.db === undefined || this.retentionTimer === undefined) return;
    clearTimeout(this.catchUpTimer);
    this.catchUpTimer = setTimeout(() => void this.runRetention(), RETENTION_CATCH_UP_MS);
    this.catchUpTimer.unref();
  }

  /** rowsBefore: this.rows when the run began; rowsLeft: what the run says is left of those */
  /** No more timer-driven writes or retention; what is queued is written (or sent to the writer thread). */
  private stopAndFlush(): void {
    clearInterval(this.flushTimer);
    clearInterval(this.retentionTimer);
    clearTimeout(this.catchUpTimer);
    clearInterval(this.sizeTimer);
    this.flush();
  }

  private afterRetention(r: RetentionResult, rowsBefore: number, rowsLeft: number): void {
    const deleted = r.by_age + r.by_size;
    this.deletedByRetention += deleted;
    // rows written meanwhile (replies of the writer thread) count; the run found
    // the table emptier than the count said: count again
    this.rows =
      rowsLeft === 0 && deleted < rowsBefore
        ? this.db
          ? countEvents(this.db)
          : 0
        : Math.max(0, this.rows - deleted);
    // a process marked as written may be gone now
    if (r.processes > 0) this.seen.clear();
  }

  /** Counters for status and metrics. Never throws. */
  stats(): EventStoreStats {
    let processes = 0;
    if (this.db) {
      try {
        this.lastBytes = this.retention.sizeBytes();
        processes = this.stmt.countProcesses.get() as number;
      } catch {
        // keep the last known size: status must not fail because the store does
      }
    }
    const s: EventStoreStats = {
      path: this.path,
      rows: this.rows,
      processes,
      bytes: this.lastBytes,
      max_bytes: this.maxBytes,
      max_age_ms: this.maxAgeMs,
      queued: this.pending.count + this.sentEvents,
      writer: this.writer ? 'thread' : 'inline',
      written: this.written,
      skipped: this.skipped,
      failed: this.failed,
      write_errors: this.writeErrors,
      deleted_by_retention: this.deletedByRetention,
      retention_errors: this.retentionErrors,
      journal_mode: this.journalMode,
    };
    if (this.lastError !== undefined) s.last_error = this.lastError;
    return s;
  }

  get closed(): boolean {
    return this.db === undefined;
  }

  /**
   * Stop the timers, write what is queued, let the writer thread finish, and
   * close the file. Idempotent.
   */
  async closeAsync(): Promise<void> {
    if (this.db === undefined) return;
    this.stopAndFlush();
    await this.writer?.close();
    this.close();
  }

  /**
   * Stop the timers, write what is queued and close the file. Idempotent.
   * With a writer thread, what it was sent is written as it finishes;
   * closeAsync() waits for that.
   */
  close(): void {
    if (this.db === undefined) return;
    this.stopAndFlush();
    if (this.writer) void this.writer.close();
    const db = this.db;
    this.db = undefined;
    try {
      this.lastBytes = this.retention.sizeBytes();
      db.pragma('optimize');
    } catch {
      // closing matters more than the statistics
    }
    try {
      db.close();
    } catch (err) {
      this.fail(storeError(this.path, 'closing it', err));
    }
  }

  private newRows(blocks = new BlockBuilder()): PendingRows {
    return {
      rows: { blocks: [], processes: [], parts: [] },
      blocks,
      inBatch: new Map(),
      count: 0,
      now: Date.now(),
    };
  }

  /** Adds the rows an event writes: its entry in a block, the processes it names (with their exits), their parts. */
  private addRows(p: PendingRows, ev: ExportEvent): void {
    const c = eventColumns(ev);
    const { rows, inBatch, now } = p;
    // what can throw first (the JSON of the event and its processes): an
    // event that fails leaves no entry behind
    const line = this.encode(ev);
    const lifecycle = c.type === 'process_exec' || c.type === 'process_exit';
    const row = c.process ? this.upsert(rows, inBatch, c.process, c, now, lifecycle) : undefined;
    if (c.parent) this.upsert(rows, inBatch, c.parent, c, now, false);
    // a process_exit's process always has its row in the batch (lifecycle events always write it)
    if (c.type === 'process_exit' && row) {
      const exit = (ev as { process_exit: { time?: unknown; status?: unknown; signal?: unknown } })
        .process_exit;
      const time = typeof exit.time === 'string' ? exit.time : ev.time;
      row.splice(
        PROCESS_EXIT_AT,
        4,
        time,
        timeToNs(time) ?? partsToNs(c.sec, c.nsec),
        typeof exit.status === 'number' ? exit.status : null,
        typeof exit.signal === 'string' && exit.signal !== '' ? exit.signal : null,
      );
    }
    // its processes as references: their JSON is in the processes table once
    p.blocks.add(c.sec, c.nsec, c.type, c.execId, c.policyName, c.binary, line);
    p.count++;
  }

  private takeRows(p: PendingRows): BatchRows {
    p.rows.blocks = p.blocks.take();
    for (const b of p.inBatch.values()) b.row[PROCESS_LAST_SEEN_AT] = partsToNs(b.sec, b.nsec);
    return p.rows;
  }

  /**
   * The process's row in this batch: the one it has already, or a new one,
   * unless (not `always`: a parent named again) it was written in the last
   * PROCESS_REFRESH_MS.
   */
  private upsert(
    rows: BatchRows,
    inBatch: Map<string, BatchProcess>,
    p: Process,
    t: TimeParts,
    now: number,
    always: boolean,
  ): Sql[] | undefined {
    const had = inBatch.get(p.exec_id);
    if (had) {
      if (t.sec > had.sec || (t.sec === had.sec && t.nsec > had.nsec)) {
        had.sec = t.sec;
        had.nsec = t.nsec;
      }
      return had.row;
    }
    if (!always) {
      const last = this.seen.get(p.exec_id);
      if (last !== undefined && now - last < PROCESS_REFRESH_MS) return undefined;
    }
    if (this.seen.size >= MAX_SEEN_PROCESSES) this.seen.clear();
    this.seen.set(p.exec_id, now);
    const timeNs = partsToNs(t.sec, t.nsec);
    const row: Sql[] = [
      p.exec_id,
      p.parent_exec_id ?? null,
      p.pid,
      typeof p.binary === 'string' ? p.binary : '',
      typeof p.arguments === 'string' ? p.arguments : '',
      typeof p.start_time === 'string' ? p.start_time : null,
      // last_seen_ns: takeRows
      null,
      // all of it (an event may name its brief form), its shared parts by reference: each is written once (see partId)
      storedProcessJson(fullProcess(p), (v, json) => this.partId(v, json, timeNs, rows)),
      // its exit, when this batch has it too
      null,
      null,
      null,
      null,
    ];
    rows.processes.push(row);
    inBatch.set(p.exec_id, { row, sec: t.sec, nsec: t.nsec });
    return row;
  }

  /**
   * A shared part's id, and its row in this batch the first time it is seen
   * and again once an hour (its seen_ns: see schema.ts and retention.ts).
   */
  private partId(v: object, json: string, timeNs: bigint, rows: BatchRows): string {
    let id = this.partIds.get(v);
    if (id === undefined) {
      id = createHash('sha256').update(json).digest('base64url').slice(0, 22);
      this.partIds.set(v, id);
    }
    const seen = this.partsWritten.get(id);
    if (seen === undefined || timeNs - seen > PART_REFRESH_NS) {
      if (this.partsWritten.size >= MAX_SEEN_PROCESSES) this.partsWritten.clear();
      this.partsWritten.set(id, timeNs);
      rows.parts.push([id, json, timeNs]);
    }
    return id;
  }

  /** Events matching every given condition, the newest `limit` of them, newest last (StoreReader.query). */
  query(q: StoreQuery = {}): ExportEvent[] {
    this.open_();
    return this.reader.query(q);
  }

  /** A process, its ancestors, its descendants and its events (StoreReader.process). */
  process(execId: string, opts: ProcessTreeOptions = {}): ProcessTree | undefined {
    this.open_();
    return this.reader.process(execId, opts);
  }

  private open_(): Database.Database {
    if (!this.db) throw new StoreError(`event store ${this.path} is closed`);
    return this.db;
  }

  private fail(err: StoreError): void {
    this.lastError = err.message;
    try {
      this.onError?.(err);
    } catch {
      // a failing error handler must not turn a counted failure into a thrown one
    }
  }
}

/**
 * Check the file is an Osprey store (or empty), switch to WAL, and apply
 * the migrations under the write lock. Returns the journal mode in force.
 */
function prepareFile(db: Database.Database, file: string): string {
  // the first read: a file that is not a database fails here
  const appId = db.pragma('application_id', { simple: true }) as number;
  const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all() as string[];
  const fresh = tables.length === 0;
  if (appId !== APPLICATION_ID && !(appId === 0 && fresh)) {
    throw new StoreError(
      `event store ${file} is a SQLite database of another program (application_id ${appId}, ` +
        `tables ${tables.slice(0, 5).join(', ') || 'none'}); move it aside or choose ${STORE_PATH_FLAG}`,
    );
  }
  // only possible before the first table exists
  if (fresh) db.pragma('auto_vacuum = INCREMENTAL');
  const mode = String(db.pragma('journal_mode = WAL', { simple: true }));
  db.pragma('synchronous = NORMAL');
  db.pragma('journal_size_limit = 16777216');
  db.pragma('temp_store = MEMORY');
  db.pragma('cache_size = -16384');
  // take the write lock now: a store held by another process fails here, not at the first event
  db.exec('BEGIN IMMEDIATE');
  try {
    db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
    const version =
      (db.prepare('SELECT max(version) FROM schema_version').pluck().get() as number | null) ?? 0;
    if (version > SCHEMA_VERSION) {
      throw new StoreError(
        `event store ${file} has schema version ${version}, newer than this Osprey knows (${SCHEMA_VERSION}); ` +
          `upgrade Osprey, move the file aside, or choose ${STORE_PATH_FLAG}`,
      );
    }
    const record = db.prepare('INSERT INTO schema_version (version) VALUES (?)');
    for (let v = version; v < SCHEMA_VERSION; v++) {
      db.exec(MIGRATIONS[v]!);
      if (v + 1 === BLOCKS_VERSION) moveRowsIntoBlocks(db);
      record.run(v + 1);
    }
    if (fresh) db.pragma(`application_id = ${APPLICATION_ID}`);
    db.exec('COMMIT');
  } catch (err) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw err;
  }
  return mode;
}

/** The schema version that keeps events in blocks (schema.ts). */
const BLOCKS_VERSION = 3;

/**
 * Migration 3's data step: the rows of the events table of earlier
 * versions into blocks, in the order they were written, then the table
 * dropped. Runs inside prepareFile's transaction: all or nothing.
 */
function moveRowsIntoBlocks(db: Database.Database): void {
  const had = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'events'").get();
  if (!had) return;
  const page = db
    .prepare(
      'SELECT id, time_ns, type, exec_id, policy_name, binary, json FROM events WHERE id > ? ORDER BY id LIMIT ?',
    )
    .safeIntegers(true);
  const statements = {
    insertBlock: db.prepare(INSERT_BLOCK_SQL),
    insertBlockKey: db.prepare(INSERT_BLOCK_KEY_SQL),
    upsertProcess: db.prepare(UPSERT_PROCESS_SQL),
    insertPart: db.prepare(INSERT_PART_SQL),
  };
  let after = 0n;
  for (;;) {
    const rows = page.all(after, MAX_BLOCK_EVENTS) as {
      id: bigint;
      time_ns: bigint;
      type: string;
      exec_id: string | null;
      policy_name: string | null;
      binary: string | null;
      json: string;
    }[];
    if (rows.length === 0) break;
    const b = new BlockBuilder();
    for (const r of rows) b.addNs(r.time_ns, r.type, r.exec_id, r.policy_name, r.binary, r.json);
    writeRows(statements, { blocks: b.take(), processes: [], parts: [] });
    after = rows[rows.length - 1]!.id;
  }
  db.exec('DROP TABLE events');
}

/** The events in the store. */
function countEvents(db: Database.Database): number {
  return db.prepare('SELECT coalesce(sum(count), 0) FROM event_blocks').pluck().get() as number;
}
