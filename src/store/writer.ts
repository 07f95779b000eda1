/**
 * The agent thread's side of the store's writer thread (writer-worker.ts):
 * batches of rows go out as messages, replies come back in order. Nothing
 * here waits for SQLite; only settle() and close() wait for the thread.
 */
import { Worker } from 'node:worker_threads';
import type { RetentionOptions, RetentionResult } from './retention.js';
import { type BatchRows, batchEvents } from './sql.js';

export interface WriterInit {
  file: string;
  busyTimeoutMs: number;
}

/** Rows of one transaction (see BatchRows). */
export interface WriterBatch extends BatchRows {
  kind: 'write';
  id: number;
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
  /** write batches sent and not answered: id -> events in it */
  private readonly writes = new Map<number, number>();
  /** retention runs sent and not answered */
  private readonly retains = new Map<number, (r: RetainReply) => void>();
  private waiters: (() => void)[] = [];
  private exited = false;
  private exitError: string | undefined;

  constructor(
    init: WriterInit,
    private readonly onReply: (r: WriterReply) => void,
  ) {
    this.worker = new Worker(new URL('./writer-worker.js', import.meta.url), { workerData: init });
    // the agent's exit never waits for the writer: close() does, on the way out
    this.worker.unref();
    this.worker.on('message', (r: WriterReply | RetainReply) => {
      if ('kind' in r) {
        this.retains.get(r.id)?.(r);
        this.retains.delete(r.id);
      } else {
        this.writes.delete(r.id);
        this.onReply(r);
      }
      this.wakeIfIdle();
    });
    this.worker.on('error', (err) => {
      this.exitError = err.message;
    });
    this.worker.on('exit', () => {
      this.exited = true;
      // what it never answered is lost: batches are reported as failed
      for (const [id, done] of this.retains) done(notRetained(id, 0, 'the writer thread ended'));
      this.retains.clear();
      let lost = 0;
      for (const n of this.writes.values()) lost += n;
      this.writes.clear();
      if (lost > 0) {
        this.onReply({
          id: 0,
          ok: false,
          events: lost,
          error: `writer thread ended: ${this.exitError ?? 'exited'}`,
        });
      }
      this.wakeIfIdle();
    });
  }

  /** Send a batch; false (nothing sent) when the thread is gone. */
  send(b: Omit<WriterBatch, 'kind' | 'id'>): boolean {
    if (this.exited) return false;
    const msg: WriterBatch = { kind: 'write', id: this.nextId++, ...b };
    this.writes.set(msg.id, batchEvents(b));
    // the blocks' bytes are the batch's own copies (BlockBuilder): moved to the thread, not copied again
    const moved: ArrayBuffer[] = [];
    for (const block of b.blocks)
      moved.push(block.meta.buffer as ArrayBuffer, block.text.buffer as ArrayBuffer);
    this.worker.postMessage(msg, moved);
    return true;
  }

  /** Run retention on the writer thread, after the batches sent before it. */
  retain(opts: RetentionOptions): Promise<RetainReply> {
    const id = this.nextId++;
    if (this.exited) return Promise.resolve(notRetained(id, opts.rows, 'the writer thread has ended'));
    return new Promise((resolve) => {
      this.retains.set(id, resolve);
      this.worker.postMessage({ kind: 'retain', id, opts } satisfies WriterRetain);
    });
  }

  /** Resolves once every batch and retention run sent so far has been answered. */
  settle(): Promise<void> {
    if (this.idle()) return Promise.resolve();
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

  private idle(): boolean {
    return this.writes.size === 0 && this.retains.size === 0;
  }

  private wakeIfIdle(): void {
    if (!this.idle()) return;
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

function notRetained(id: number, rows: number, error: string): RetainReply {
  return { id, kind: 'retained', result: { by_age: 0, by_size: 0, processes: 0 }, rows, error };
}
