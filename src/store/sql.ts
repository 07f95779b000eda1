/** The store's write statements, shared by the agent thread's connection and the writer thread's. */
import type Database from 'better-sqlite3';
import type { BlockRow } from './blocks.js';

export type Sql = string | number | bigint | null;

/** Rows of one transaction: event blocks, and the rest in the order of UPSERT_PROCESS_SQL's and INSERT_PART_SQL's parameters. */
export interface BatchRows {
  blocks: BlockRow[];
  /** with their exits folded in (an exit always comes with its process's row) */
  processes: Sql[][];
  /** process parts not written before, in the order of INSERT_PART_SQL's parameters */
  parts: Sql[][];
}

export interface WriteStatements {
  insertBlock: Database.Statement;
  insertBlockKey: Database.Statement;
  upsertProcess: Database.Statement;
  insertPart: Database.Statement;
}

/** The events of a batch's blocks. */
export function batchEvents(rows: BatchRows): number {
  let n = 0;
  for (const b of rows.blocks) n += b.count;
  return n;
}

/** Runs a batch's statements (inside the caller's transaction). */
export function writeRows(s: WriteStatements, rows: BatchRows): void {
  for (const r of rows.parts) s.insertPart.run(...r);
  for (const b of rows.blocks) {
    const id = s.insertBlock.run(b.minNs, b.maxNs, b.count, b.meta, b.dict, b.text).lastInsertRowid;
    for (const k of b.keys) s.insertBlockKey.run(k, id);
  }
  for (const r of rows.processes) s.upsertProcess.run(...r);
}

export const INSERT_BLOCK_SQL =
  'INSERT INTO event_blocks (min_ns, max_ns, count, meta, dict, text) VALUES (?, ?, ?, ?, ?, ?)';
export const INSERT_BLOCK_KEY_SQL = 'INSERT OR IGNORE INTO event_block_keys (key, block) VALUES (?, ?)';

/**
 * A process's row, with its exit when the same batch has it (a short-lived
 * process's exec and exit usually come in one batch: one row written, not a
 * row and then an update of it).
 */
export const UPSERT_PROCESS_SQL = `INSERT INTO processes (exec_id, parent_exec_id, pid, binary, arguments, start_time, last_seen_ns, json,
    exit_time, exit_time_ns, exit_status, exit_signal)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (exec_id) DO UPDATE SET
    parent_exec_id = coalesce(excluded.parent_exec_id, parent_exec_id),
    pid = excluded.pid,
    binary = excluded.binary,
    arguments = excluded.arguments,
    start_time = coalesce(excluded.start_time, start_time),
    last_seen_ns = max(last_seen_ns, excluded.last_seen_ns),
    json = excluded.json,
    exit_time = coalesce(excluded.exit_time, exit_time),
    exit_time_ns = coalesce(excluded.exit_time_ns, exit_time_ns),
    exit_status = coalesce(excluded.exit_status, exit_status),
    exit_signal = coalesce(excluded.exit_signal, exit_signal)`;

export const INSERT_PART_SQL = `INSERT INTO process_parts (id, json, seen_ns) VALUES (?, ?, ?)
  ON CONFLICT (id) DO UPDATE SET seen_ns = max(seen_ns, excluded.seen_ns)`;
