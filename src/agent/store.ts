/**
 * The agent's side of the embedded event store: open it at start, feed it
 * from the bus, close it at stop.
 *
 * The store is a sink like the others, never a condition of the event path:
 * a store that cannot be opened (corrupted, locked by another process, on a
 * read-only disk) is reported once as a warning and in status (store.error),
 * and the agent streams and exports without it. History queries then answer
 * 503 with the same message.
 */
import type { EncodedLine } from '../events/encode.js';
import type { ExportEvent } from '../events/types.js';
import { EventStore, type EventStoreStats, StoreError } from '../store/index.js';
import { StoreQueries } from '../store/queries.js';
import type { EventBus, Subscription } from './bus.js';

/** Bus group of the store's subscription (its drops are counted apart from the exporters'). */
export const STORE_GROUP = 'store';

export interface StoreStatus {
  enabled: boolean;
  /** the configured file; null when the store is turned off */
  path: string | null;
  /** why the store is not available, when it was asked for and could not be opened */
  error?: string;
  /** the store's counters, while it is open */
  stats?: EventStoreStats;
  /** events the bus had no room for in the store's queue */
  bus_dropped?: number;
}

export interface AgentStoreOptions {
  /** undefined: the store is turned off */
  path: string | undefined;
  maxAgeMs: number;
  maxBytes: number;
  log: (line: string) => void;
  /** the agent's cached JSON encoding of an event */
  encode?: (ev: ExportEvent) => EncodedLine;
  /** background write/retention failures, already counted by the store */
  onError: (message: string) => void;
}

export class AgentStore {
  private sub: Subscription<ExportEvent> | undefined;

  /** history and process queries, on a thread of their own */
  readonly queries: StoreQueries | undefined;

  private constructor(
    readonly store: EventStore | undefined,
    private readonly path: string | undefined,
    readonly error: string | undefined,
  ) {
    this.queries =
      store && path !== undefined ? new StoreQueries({ file: path, busyTimeoutMs: 1000 }) : undefined;
  }

  /** Open the store; never throws: a failure is logged and kept as `error`. */
  static open(o: AgentStoreOptions): AgentStore {
    if (o.path === undefined) return new AgentStore(undefined, undefined, undefined);
    try {
      const store = EventStore.open(o.path, {
        maxAgeMs: o.maxAgeMs,
        maxBytes: o.maxBytes,
        onError: (err) => o.onError(err.message),
        // SQLite's inserts on a thread of their own: never on the event loop
        writeInThread: true,
        ...(o.encode ? { encode: o.encode } : {}),
      });
      return new AgentStore(store, o.path, undefined);
    } catch (err) {
      const msg =
        err instanceof StoreError
          ? err.message
          : `event store ${o.path}: ${(err as Error)?.message ?? String(err)}`;
      o.log(`warning: ${msg}; running without the event store (no history queries)`);
      return new AgentStore(undefined, o.path, msg);
    }
  }

  /** Why history is not available, for a 503; undefined when it is. */
  unavailable(): string | undefined {
    if (this.store && !this.store.closed) return undefined;
    if (this.error) return `the event store is not available: ${this.error}`;
    if (this.path === undefined) {
      return 'the event store is turned off (store-path is empty); start the agent with --store-path PATH';
    }
    return 'the event store is closed (the agent is stopping)';
  }

  /** Feed the store from the bus. The sink only enqueues: the store writes in its own batches. */
  attach(bus: EventBus<ExportEvent>): void {
    const store = this.store;
    if (!store || this.sub) return;
    this.sub = bus.subscribe((batch) => store.enqueueBatch(batch), {
      name: 'store',
      group: STORE_GROUP,
      maxEvents: 10_000,
    });
  }

  /** Take what is on the bus for it, write it, close the file. */
  async close(bus: EventBus<ExportEvent>, timeoutMs = 3000): Promise<void> {
    if (this.sub) await bus.settle(timeoutMs, [STORE_GROUP]);
    this.sub?.close();
    await this.queries?.close();
    await this.store?.closeAsync();
  }

  status(): StoreStatus {
    const s: StoreStatus = { enabled: this.store !== undefined, path: this.path ?? null };
    if (this.error) s.error = this.error;
    if (this.store) s.stats = this.store.stats();
    if (this.sub) s.bus_dropped = this.sub.dropped;
    return s;
  }
}
