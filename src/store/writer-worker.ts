/**
 * The event store's writer thread: its own SQLite connection to the store's
 * file (WAL mode, so the agent's connection keeps reading while it writes),
 * taking batches of rows from the agent thread and writing each in one
 * transaction. SQLite inserts with their indexes are the most expensive part
 * of storing an event; here they run beside the event loop instead of on it.
 *
 * Messages in: WriterOpen once, then WriterBatch; WriterClose ends it.
 * Messages out: WriterReply for each batch, in order.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { niceThisThread } from '../kernel/thread.js';
import { Retention, type RetentionResult } from './retention.js';
import {
  batchEvents,
  INSERT_BLOCK_KEY_SQL,
  INSERT_BLOCK_SQL,
  INSERT_PART_SQL,
  UPSERT_PROCESS_SQL,
  writeRows,
} from './sql.js';
import type {
  RetainReply,
  WriterBatch,
  WriterClose,
  WriterInit,
  WriterReply,
  WriterRetain,
} from './writer.js';

const init = workerData as WriterInit;
const port = parentPort;
if (!port) throw new Error('writer-worker.js runs as a worker thread of the event store');

// The store must never hold up the event path: when the cores are short,
// this thread yields them to the agent's event loop, the export file and the
// API clients, falls behind, and skips (and counts) what its queue cannot
// hold (without /proc, it keeps the agent's priority).
const WRITER_NICE = 10;
niceThisThread(WRITER_NICE);

let db: Database.Database | undefined;
let write: ((b: WriterBatch) => void) | undefined;
let retention: Retention | undefined;
let openError: string | undefined;
try {
  db = new Database(init.file, { timeout: init.busyTimeoutMs });
  db.pragma('synchronous = NORMAL');
  db.pragma('temp_store = MEMORY');
  db.pragma('cache_size = -4096');
  const statements = {
    insertBlock: db.prepare(INSERT_BLOCK_SQL),
    insertBlockKey: db.prepare(INSERT_BLOCK_KEY_SQL),
    upsertProcess: db.prepare(UPSERT_PROCESS_SQL),
    insertPart: db.prepare(INSERT_PART_SQL),
  };
  retention = new Retention(db);
  write = db.transaction((b: WriterBatch) => writeRows(statements, b));
} catch (err) {
  openError = (err as Error).message;
}

async function retain(m: WriterRetain): Promise<RetainReply> {
  const result: RetentionResult = { by_age: 0, by_size: 0, processes: 0 };
  let step = 'deleting old events';
  if (!retention)
    return { id: m.id, kind: 'retained', result, rows: m.opts.rows, step, error: `opening it: ${openError}` };
  try {
    const rows = await retention.run(m.opts, result, {
      between: () => {},
      step: (s) => {
        step = s;
      },
      alive: () => db !== undefined,
    });
    return { id: m.id, kind: 'retained', result, rows };
  } catch (err) {
    return { id: m.id, kind: 'retained', result, rows: m.opts.rows, step, error: (err as Error).message };
  }
}

port.on('message', (m: WriterBatch | WriterRetain | WriterClose) => {
  if (m.kind === 'retain') {
    // run to the end before the next message: no await yields to another batch here
    void retain(m).then((r) => port.postMessage(r));
    return;
  }
  if (m.kind === 'close') {
    try {
      db?.close();
    } finally {
      port.close();
    }
    return;
  }
  let reply: WriterReply;
  if (!write) {
    reply = { id: m.id, ok: false, events: batchEvents(m), error: `opening it for writing: ${openError}` };
  } else {
    try {
      write(m);
      reply = { id: m.id, ok: true, events: batchEvents(m) };
    } catch (err) {
      reply = { id: m.id, ok: false, events: batchEvents(m), error: (err as Error).message };
    }
  }
  port.postMessage(reply);
});
