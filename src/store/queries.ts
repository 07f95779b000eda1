/**
 * The agent's side of the query thread (query-worker.ts): started at the
 * first query, ended after QUERY_IDLE_MS without one (its heap with it: a
 * large answer leaves hundreds of MB of garbage), started again when asked.
 * Answers are the JSON bodies the API sends, as bytes.
 */
import { Worker } from 'node:worker_threads';
import type { EventFilterOptions } from '../agent/event-filter.js';
import { StoreError } from './errors.js';
import type { ProcessTreeOptions, StoreQuery } from './reader.js';

/** A query thread with nothing to do this long ends. */
export const QUERY_IDLE_MS = 30_000;

export interface QueryInit {
  file: string;
  busyTimeoutMs: number;
}

export type QueryRequest =
  | { kind: 'history'; id: number; query: StoreQuery; filter?: EventFilterOptions; lines?: boolean }
  | { kind: 'process'; id: number; execId: string; opts: ProcessTreeOptions };

/** What a history answer holds, apart from its events. */
export interface HistoryMeta {
  count: number;
  limit: number;
  /** the store had at least `limit` events: older ones may exist */
  truncated: boolean;
}

export type QueryReply =
  | { id: number; ok: true; body?: Uint8Array; meta?: HistoryMeta }
  | { id: number; ok: false; error: string; store: boolean };

/** A query the store refused as asked (a bad type name, limit or expression): the request's fault. */
export class QueryError extends Error {}

type Answer = { body: Buffer | undefined; meta?: HistoryMeta };
/** a request sent and not answered, and the thread it went to */
type Pending = { worker: Worker; resolve: (a: Answer) => void; reject: (err: Error) => void };

export class StoreQueries {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private idleTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly init: QueryInit,
    /** a thread idle this long ends */
    private readonly idleMs = QUERY_IDLE_MS,
  ) {}

  /**
   * A history answer's body — {events, count, limit, truncated}, or with
   * `lines` one event a line (oldest first) — and what it holds.
   */
  async history(
    query: StoreQuery,
    filter?: EventFilterOptions,
    lines = false,
  ): Promise<{ body: Buffer; meta: HistoryMeta }> {
    const a = await this.ask({ kind: 'history', id: 0, query, lines, ...(filter ? { filter } : {}) });
    if (a.body === undefined || a.meta === undefined)
      throw new StoreError('event store: the query thread answered a history without its events');
    return { body: a.body, meta: a.meta };
  }

  /** The process answer's body, or undefined when the store does not know the process. */
  async process(execId: string, opts: ProcessTreeOptions): Promise<Buffer | undefined> {
    return (await this.ask({ kind: 'process', id: 0, execId, opts })).body;
  }

  /** Whether a thread is running now (for tests). */
  get running(): boolean {
    return this.worker !== undefined;
  }

  /** End the thread; queries in flight are refused. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.idleTimer);
    const w = this.worker;
    this.worker = undefined;
    this.failAll('the event store is closing');
    await w?.terminate();
  }

  private ask(req: QueryRequest): Promise<Answer> {
    if (this.closed) return Promise.reject(new StoreError('event store: closed (the agent is stopping)'));
    const id = this.nextId++;
    const w = this.thread();
    clearTimeout(this.idleTimer);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { worker: w, resolve, reject });
      w.postMessage({ ...req, id });
    });
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(new URL('./query-worker.js', import.meta.url), { workerData: this.init });
    // the agent's exit never waits for a query
    w.unref();
    w.on('message', (r: QueryReply) => {
      const p = this.pending.get(r.id);
      this.pending.delete(r.id);
      if (p) {
        if (r.ok) {
          const body = r.body ? Buffer.from(r.body.buffer, r.body.byteOffset, r.body.byteLength) : undefined;
          p.resolve(r.meta ? { body, meta: r.meta } : { body });
        } else p.reject(r.store ? new StoreError(r.error) : new QueryError(r.error));
      }
      if (this.pending.size === 0) this.idleLater(w);
    });
    w.on('error', (err) => {
      if (this.worker === w) this.worker = undefined;
      this.failAll(`the query thread failed: ${err.message}`, w);
    });
    w.on('exit', () => {
      if (this.worker === w) this.worker = undefined;
      // a thread ended for being idle may end after the next one started: only its own requests fail
      this.failAll('the query thread ended', w);
    });
    this.worker = w;
    return w;
  }

  private idleLater(w: Worker): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.worker !== w || [...this.pending.values()].some((p) => p.worker === w)) return;
      this.worker = undefined;
      void w.terminate();
    }, this.idleMs);
    this.idleTimer.unref();
  }

  /** Refuse the requests in flight (those sent to `of`, when given). */
  private failAll(why: string, of?: Worker): void {
    for (const [id, p] of this.pending) {
      if (of !== undefined && p.worker !== of) continue;
      this.pending.delete(id);
      p.reject(new StoreError(`event store: ${why}`));
    }
  }
}
