/**
 * Retention: the store's deletes, shared by the agent thread's connection
 * (a store without a writer thread) and the writer thread's (which then does
 * every write of the file, so that retention never waits for its lock).
 */
import type Database from 'better-sqlite3';
import { type BlockDict, blockKeys } from './blocks.js';
import { nowNs } from './time.js';

export interface RetentionResult {
  by_age: number;
  by_size: number;
  processes: number;
  /** the run stopped at its cap of transactions with work left: run again soon */
  more?: true;
}

export interface RetentionOptions {
  nowMs: number;
  /** 0: no age limit */
  maxAgeMs: number;
  /** 0: no size limit */
  maxBytes: number;
  /** events per transaction (whole blocks: at least one block) */
  batch: number;
  /** the events in the store, as the caller counts them */
  rows: number;
}

/** retention stops after this many transactions in one run and goes on at the next */
const MAX_BATCHES_PER_RUN = 50;
/** when over maxBytes, delete down to this fraction, so that not every run deletes */
const SIZE_TARGET = 0.9;

/** the oldest blocks, up to a time (retention by age) or all (by size) */
const OLDER_BLOCKS_SQL =
  'SELECT id, count, dict FROM event_blocks WHERE max_ns < ? ORDER BY max_ns, id LIMIT ?';
const OLDEST_BLOCKS_SQL = 'SELECT id, count, dict FROM event_blocks ORDER BY max_ns, id LIMIT ?';
// a process goes only once it is retired, none of its events is left and no
// process names it as parent: trees are pruned leaf first, so the ancestry
// of every process still in the store stays whole
export const PRUNE_PROCESSES_SQL = `DELETE FROM processes WHERE exec_id IN (
  SELECT p.exec_id FROM processes p
  WHERE coalesce(p.exit_time_ns, p.last_seen_ns) < ?
    AND NOT EXISTS (SELECT 1 FROM event_block_keys k WHERE k.key = 'e:' || p.exec_id)
    AND NOT EXISTS (SELECT 1 FROM processes c
                    WHERE c.parent_exec_id = p.exec_id AND c.exec_id != p.exec_id)
  LIMIT ?)`;
// a process row names parts whose seen_ns is at most an hour before its
// last_seen_ns (src/store/store.ts refreshes them hourly): those more than two
// hours older than every process row's are named by none
export const PRUNE_PARTS_SQL = `DELETE FROM process_parts WHERE seen_ns <
  (SELECT coalesce(min(last_seen_ns), 9223372036854775807) FROM processes) - 7200000000000`;
export const PAGE_BYTES_SQL = 'SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()';

type Statement = Database.Statement<unknown[], unknown>;

interface DoomedBlock {
  id: number;
  count: number;
  dict: string;
}

export class Retention {
  private readonly olderBlocks: Statement;
  private readonly oldestBlocks: Statement;
  private readonly deleteBlock: Statement;
  private readonly deleteKey: Statement;
  private readonly deleteBlocks: (blocks: readonly DoomedBlock[]) => number;
  private readonly prune: Statement;
  private readonly pruneParts: Statement;
  private readonly oldestTime: Statement;
  private readonly pageBytes: Statement;

  constructor(private readonly db: Database.Database) {
    this.olderBlocks = db.prepare(OLDER_BLOCKS_SQL);
    this.oldestBlocks = db.prepare(OLDEST_BLOCKS_SQL);
    this.deleteBlock = db.prepare('DELETE FROM event_blocks WHERE id = ?');
    this.deleteKey = db.prepare('DELETE FROM event_block_keys WHERE key = ? AND block = ?');
    this.deleteBlocks = db.transaction((blocks: readonly DoomedBlock[]) => {
      let n = 0;
      for (const b of blocks) {
        // a block's keys come from its dictionary: no index from block to key needed
        for (const k of blockKeys(JSON.parse(b.dict) as BlockDict)) this.deleteKey.run(k, b.id);
        n += this.deleteBlock.run(b.id).changes === 1 ? b.count : 0;
      }
      return n;
    });
    this.prune = db.prepare(PRUNE_PROCESSES_SQL);
    this.pruneParts = db.prepare(PRUNE_PARTS_SQL);
    this.oldestTime = db.prepare('SELECT min(min_ns) FROM event_blocks').pluck().safeIntegers(true);
    this.pageBytes = db.prepare(PAGE_BYTES_SQL).pluck();
  }

  /**
   * Delete events older than maxAgeMs, then the oldest events while the file
   * is over maxBytes, then processes nothing refers to any more; each step in
   * transactions of `batch` rows, calling `between` after each (to let the
   * event loop run). `step` is told which step runs, for error messages;
   * `alive` false stops early. Returns the events left (o.rows less those
   * deleted). Throws what SQLite throws; the rows already deleted stay
   * deleted and are counted in `result`.
   */
  async run(
    o: RetentionOptions,
    result: RetentionResult,
    hooks: { between: () => Promise<void> | void; step: (s: string) => void; alive: () => boolean },
  ): Promise<number> {
    let rows = o.rows;
    let batches = 0;
    hooks.step('deleting old events');
    const ageCutoff = o.maxAgeMs > 0 ? BigInt(o.nowMs - o.maxAgeMs) * 1_000_000n : undefined;
    if (ageCutoff !== undefined) {
      for (;;) {
        if (!hooks.alive()) return rows;
        const n = this.deleteBlocks(
          this.upTo(this.olderBlocks.all(ageCutoff, o.batch) as DoomedBlock[], o.batch),
        );
        result.by_age += n;
        rows = Math.max(0, rows - n);
        if (n === 0 || ++batches >= MAX_BATCHES_PER_RUN) break;
        await hooks.between();
      }
      hooks.step('deleting old processes');
      for (;;) {
        if (!hooks.alive()) return rows;
        const n = this.prune.run(ageCutoff, o.batch).changes;
        result.processes += n;
        if (n < o.batch || ++batches >= MAX_BATCHES_PER_RUN) break;
        await hooks.between();
      }
      if (result.processes > 0) this.pruneParts.run();
      if (result.by_age > 0 || result.processes > 0) this.vacuum();
    }

    hooks.step('deleting events over the size limit');
    if (o.maxBytes > 0 && this.sizeBytes() > o.maxBytes) {
      const target = o.maxBytes * SIZE_TARGET;
      for (;;) {
        if (!hooks.alive()) return rows;
        const bytes = this.sizeBytes();
        if (bytes <= target || batches >= MAX_BATCHES_PER_RUN) break;
        // delete about the share of rows the file is over by; pages free up as they empty
        const want = Math.ceil((rows * (bytes - target)) / bytes);
        const limit = Math.max(1, Math.min(want, o.batch));
        const n =
          rows > 0 ? this.deleteBlocks(this.upTo(this.oldestBlocks.all(limit) as DoomedBlock[], limit)) : 0;
        result.by_size += n;
        rows = n === 0 ? 0 : Math.max(0, rows - n);
        // the processes of the deleted events go with them, unless still referred to
        const oldest = this.oldestTime.get() as bigint | null;
        const p = this.prune.run(oldest ?? nowNs(), o.batch).changes;
        result.processes += p;
        if (p > 0) this.pruneParts.run();
        batches++;
        this.vacuum();
        if (n === 0 && p === 0) break;
        await hooks.between();
      }
    }
    if (batches >= MAX_BATCHES_PER_RUN) result.more = true;
    return rows;
  }

  /** The first of the blocks (oldest first) whose events add up to `events`, at least one. */
  private upTo(blocks: DoomedBlock[], events: number): DoomedBlock[] {
    let sum = 0;
    for (let i = 0; i < blocks.length; i++) {
      sum += blocks[i]!.count;
      if (sum >= events) return blocks.slice(0, i + 1);
    }
    return blocks;
  }

  sizeBytes(): number {
    return this.pageBytes.get() as number;
  }

  /** Give the free pages back to the file system (auto_vacuum = INCREMENTAL). */
  private vacuum(): void {
    this.db.pragma('incremental_vacuum');
  }
}
