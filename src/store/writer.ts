/**
 * The agent thread's side of the store's writer thread (writer-worker.ts):
 * batches of rows go out as messages, replies come back in order. Nothing
 * here waits for SQLite; only settle() and close() wait for the thread.
 */
import { Worker } from 'node:worker_threads';
import type { RetentionOptions, RetentionResult } from './retention.js';

export interface WriterInit {
  file: string;
  busyTimeoutMs: number;
}

type Sql = string | number | bigint | null;

/** Rows of one transaction, in the order of INSERT_EVENT_SQL, UPSERT_PROCESS_SQL and SET_EXIT_SQL's parameters. */
export interface WriterBatch {
  kind: 'write';
  id: number;
  events: Sql[][];
  processes: Sql[][];
  exits: Sql[][];
}

export interface WriterClose {
  kind: 'close';
}

/** Run retention on the writer's connection. */
export interface WriterRetain {
  kind: 'retain';
  id: number;
  opts: RetentionOptions;
}

export interface WriterReply {
  id: number;
  ok: boolean;
  /** events in the batch */
  events: number;
  error?: string;
}

export interface RetainReply {
  id: number;
  kind: 'retained';
  result: RetentionResult;
  /** events left of opts.rows */
  rows: number;
  /** the step that failed, with error */
  step?: string;
  error?: string;
}

export class StoreWriter {
  private readonly worker: Worker;
  private nextId = 1;
  private inflight = 0;
  private waiters: (() => void)[] = [];
  private exited = false;
  private exitError: string | undefined;
  private readonly retains = new Map<number, (r: RetainReply) => void>();

  constructor(
    init: WriterInit,
    private readonly onReply: (r: WriterReply) => void,
  ) {
    this.worker = new Worker(new URL('./writer-worker.js', import.meta.url), { workerData: init });
    // the agent's exit never waits for the writer: close() does, on the way out
    this.worker.unref();
    this.worker.on('message', (r: WriterReply | RetainReply) => {
      this.inflight--;
      if ('kind' in r) {
        this.retains.get(r.id)?.(r);
        this.retains.delete(r.id);
      } else {
        this.onReply(r);
      }
      if (this.inflight === 0) this.wake();
    });
    this.worker.on('error', (err) => {
      this.exitError = err.message;
    });
    this.worker.on('exit', () => {
      this.exited = true;
      // batches it never answered are lost: report them as failed
      const lost = this.inflight;
      this.inflight = 0;
      for (const [id, done] of this.retains) {
        done({
          id,
          kind: 'retained',
          result: { by_age: 0, by_size: 0, processes: 0 },
          rows: 0,
          error: 'the writer thread ended',
        });
      }
      this.retains.clear();
      if (lost > 0) {
        this.onReply({
          id: 0,
          ok: false,
          events: lost,
          error: `writer thread ended: ${this.exitError ?? 'exited'}`,
        });
      }
      this.wake();
    });
  }

  /** Batches sent and not answered yet. */
  get pending(): number {
    return this.inflight;
  }

  /** Send a batch; false (nothing sent) when the thread is gone. */
  send(b: Omit<WriterBatch, 'kind' | 'id'>): boolean {
    if (this.exited) return false;
    const msg: WriterBatch = { kind: 'write', id: this.nextId++, ...b };
    this.inflight++;
    this.worker.postMessage(msg);
    return true;
  }

  /** Run retention on the writer thread, after the batches sent before it. */
  retain(opts: RetentionOptions): Promise<RetainReply> {
    const id = this.nextId++;
    if (this.exited) {
      return Promise.resolve({
        id,
        kind: 'retained',
        result: { by_age: 0, by_size: 0, processes: 0 },
        rows: opts.rows,
        error: 'the writer thread has ended',
      });
    }
    return new Promise((resolve) => {
      this.retains.set(id, resolve);
      this.inflight++;
      this.worker.postMessage({ kind: 'retain', id, opts } satisfies WriterRetain);
    });
  }

  /** Resolves once every batch sent so far has been answered. */
  settle(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Let the thread finish what it was sent, then end it. */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.exited) return;
    let timer: NodeJS.Timeout | undefined;
    const gone = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage({ kind: 'close' } satisfies WriterClose);
    await Promise.race([
      gone,
      new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          void this.worker.terminate().then(() => resolve());
        }, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
