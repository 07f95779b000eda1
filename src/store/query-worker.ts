/**
 * The event store's query thread: its own read-only SQLite connection to
 * the store's file (WAL mode: it reads while the writer writes), answering
 * history queries and process trees with the JSON body of the API's answer,
 * made here. A query of 100,000 events took ~2 s of the agent's event loop
 * (reading the blocks, putting the processes back, the JSON): on the loop,
 * events waited that long behind it. Runs at nice 10, like the writer.
 *
 * Messages in: QueryRequest. Out: QueryReply, one per request, in order.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { eventFilter } from '../agent/event-filter.js';
import { niceThisThread } from '../kernel/thread.js';
import { StoreError } from './errors.js';
import type { HistoryMeta, QueryInit, QueryReply, QueryRequest } from './queries.js';
import { DEFAULT_QUERY_LIMIT, StoreReader } from './reader.js';

const init = workerData as QueryInit;
const port = parentPort;
if (!port) throw new Error('query-worker.js runs as a worker thread of the event store');

// a query must never hold up the event path: when the cores are short it waits
const QUERY_NICE = 10;
niceThisThread(QUERY_NICE);

let reader: StoreReader | undefined;
let openError: string | undefined;
try {
  const db = new Database(init.file, { readonly: true, fileMustExist: true, timeout: init.busyTimeoutMs });
  reader = new StoreReader(db, init.file);
} catch (err) {
  openError = (err as Error).message;
}

/** The answer's body, or undefined for a process the store does not know; with a history's meta. */
function answer(m: QueryRequest): { body: string | undefined; meta?: HistoryMeta } {
  if (!reader) throw new StoreError(`event store ${init.file}: opening it for queries: ${openError}`);
  if (m.kind === 'history') {
    const rows = reader.query(m.query);
    const after = m.filter ? eventFilter(m.filter) : undefined;
    const events = after ? rows.filter(after) : rows;
    const limit = m.query.limit ?? DEFAULT_QUERY_LIMIT;
    // the store had at least `limit` events: older ones may exist
    const meta: HistoryMeta = { count: events.length, limit, truncated: rows.length >= limit };
    if (m.lines) {
      let body = '';
      for (const ev of events) body += `${JSON.stringify(ev)}\n`;
      return { body, meta };
    }
    return { body: JSON.stringify({ events, ...meta }), meta };
  }
  const tree = reader.process(m.execId, m.opts);
  if (!tree) return { body: undefined };
  const body = JSON.stringify({
    process: tree.process,
    ancestors: tree.ancestors,
    children: tree.descendants.filter((d) => d.depth === 1),
    descendants: tree.descendants,
    events: tree.events,
  });
  return { body };
}

port.on('message', (m: QueryRequest) => {
  let reply: QueryReply;
  const transfer: ArrayBuffer[] = [];
  try {
    const { body, meta } = answer(m);
    const ok: QueryReply & { ok: true } = { id: m.id, ok: true, ...(meta ? { meta } : {}) };
    if (body !== undefined) {
      // bytes of their own (not a slice of Buffer's shared pool): handed over, not copied
      const bytes = new TextEncoder().encode(body);
      transfer.push(bytes.buffer as ArrayBuffer);
      ok.body = bytes;
    }
    reply = ok;
  } catch (err) {
    reply = { id: m.id, ok: false, error: (err as Error).message, store: err instanceof StoreError };
  }
  port.postMessage(reply, transfer);
});
