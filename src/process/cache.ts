import { briefProcess, threadProcess } from '../events/brief.js';
import type { Process } from '../events/types.js';

/** Where an entry's knowledge came from. */
export type EntryOrigin = 'exec' | 'clone' | 'procfs';

/** One process image the cache knows: a program run (exec), a forked child before exec, or a /proc seed. */
export interface ProcessEntry {
  /** the exported shape; shared with events, so read-only */
  readonly process: Process;
  readonly parentExecId?: string;
  /** it exited, or a later exec in the same pid replaced it (see replacedBy) */
  readonly exited: boolean;
  readonly pid: number;
  /** task start time, CLOCK_MONOTONIC ns; for a /proc seed, ns since boot at tick resolution */
  readonly startNs: bigint;
  readonly origin: EntryOrigin;
  /** exec_id of the exec that replaced this image in the same pid */
  readonly replacedBy?: string;
  /**
   * The process as the events it did not start name it (its parent's exec,
   * its policy events, its exit): without cap and ns unless the cache keeps
   * them in every event (ProcessCache's `briefEvents` off), else the process
   * itself. Made once; fullProcess() gives the process back.
   */
  readonly brief: Process;
  /** brief as one of its threads: brief itself for the process's own tid, else a copy with that tid, made once */
  thread(tid: number): Process;
}

/** Thread copies an entry keeps (a server's worker threads); past this many they are made again. */
const MAX_THREAD_VIEWS = 16;

/** The cache's record of an entry: the public view plus the links that decide how long it stays. */
class Entry implements ProcessEntry {
  exited = false;
  replacedBy: string | undefined = undefined;
  parent: Entry | undefined = undefined;
  children: Set<Entry> | undefined = undefined;
  /** children that are held (live, or with held children of their own) */
  heldChildren = 0;
  /** links in the queue of entries not held; queued tells whether it is in it */
  queued = false;
  older: Entry | undefined = undefined;
  newer: Entry | undefined = undefined;
  /** thread(tid)'s copies: each keeps its own encoding, so an event of a thread does not encode its process again */
  private threads: Map<number, Process> | undefined = undefined;
  private brief_: Process | undefined = undefined;

  constructor(
    readonly process: Process,
    readonly parentExecId: string | undefined,
    readonly pid: number,
    readonly startNs: bigint,
    readonly origin: EntryOrigin,
    private readonly briefEvents: boolean,
  ) {}

  get brief(): Process {
    if (this.brief_ === undefined) {
      const p = this.process;
      this.brief_ =
        this.briefEvents && (p.cap !== undefined || p.ns !== undefined) ? briefProcess(p, p.tid) : p;
    }
    return this.brief_;
  }

  get execId(): string {
    return this.process.exec_id;
  }

  thread(tid: number): Process {
    const b = this.brief;
    if (b.tid === tid) return b;
    let t = this.threads?.get(tid);
    if (t === undefined) {
      // cached Process objects are shared with events: a copy carries the thread
      t = b === this.process ? threadProcess(b, tid) : briefProcess(this.process, tid);
      this.threads ??= new Map();
      if (this.threads.size >= MAX_THREAD_VIEWS) this.threads.clear();
      this.threads.set(tid, t);
    }
    return t;
  }

  /**
   * Lets go of the brief and thread copies once the process has ended: its
   * exit event (made just before) holds what it named, and an exited
   * process is rarely named again (made anew if it is). Kept, each
   * process's copy lived on in the old generation for as long as the
   * exited entry (thousands of processes later): in an exec storm, ~10 MB
   * more heap between major collections.
   */
  forgetCopies(): void {
    this.brief_ = undefined;
    this.threads = undefined;
  }

  get held(): boolean {
    return !this.exited || this.heldChildren > 0;
  }
}

export interface ProcessCacheStats {
  size: number;
  live: number;
  exited: number;
  evictions: number;
}

/** ancestors() stops after this many, so a corrupted chain cannot loop. */
const MAX_DEPTH = 4096;

/**
 * Processes by pid and by exec_id, with bounded memory.
 *
 * An entry is held while its process lives or while some held child
 * references it, so that every live process can name all its ancestors
 * however long ago they exited. Entries that are not held wait in a queue of
 * at most maxExited entries, oldest first out (counted as evictions), so
 * that events arriving just after an exit still find the process. A forked
 * child's entry that an exec replaced before anything referenced it is
 * dropped at once: no event ever carried its exec_id.
 *
 * A process's capability sets and namespaces are three quarters of its
 * JSON; by default only its own process_exec carries them, and the events
 * that name it later take its brief form (ProcessEntry.brief), which the
 * event store, given one, turns back into the full process (fullProcess).
 *
 * Mutations (add, end) are for the ProcessPipeline; everyone else reads.
 */
export class ProcessCache {
  private readonly pids = new Map<number, Entry>();
  private readonly execs = new Map<string, Entry>();
  /**
   * Entries not held, oldest first: an intrusive list, because a Map used as
   * a queue slows down as deletions at its head pile up.
   */
  private oldest: Entry | undefined = undefined;
  private newest: Entry | undefined = undefined;
  private queued = 0;
  private liveCount = 0;
  private evictions = 0;
  readonly maxExited: number;
  /** events other than a process's own exec name it without cap and ns (ProcessEntry.brief) */
  readonly briefEvents: boolean;

  constructor(maxExited = 8192, opts: { briefEvents?: boolean } = {}) {
    if (!Number.isInteger(maxExited) || maxExited < 0) {
      throw new Error(`maxExited ${maxExited} is not a whole number >= 0`);
    }
    this.maxExited = maxExited;
    this.briefEvents = opts.briefEvents ?? true;
  }

  /** The current entry of a pid: its live process, or the last one that ran under it while still cached. */
  get(pid: number): ProcessEntry | undefined {
    return this.pids.get(pid);
  }

  byExecId(execId: string): ProcessEntry | undefined {
    return this.execs.get(execId);
  }

  /** The known ancestors, parent first, up to the oldest still cached. */
  ancestors(execId: string): Process[] {
    const out: Process[] = [];
    let e = this.execs.get(execId);
    while (e?.parentExecId !== undefined && out.length < MAX_DEPTH) {
      e = this.execs.get(e.parentExecId);
      if (!e) break;
      out.push(e.process);
    }
    return out;
  }

  /** Cached children (live or exited) of a process image. */
  children(execId: string): Process[] {
    const kids = this.execs.get(execId)?.children;
    if (!kids) return [];
    return [...kids].map((c) => c.process);
  }

  stats(): ProcessCacheStats {
    const size = this.execs.size;
    return { size, live: this.liveCount, exited: size - this.liveCount, evictions: this.evictions };
  }

  /** Live entries, for a reconciliation pass against /proc. */
  *live(): IterableIterator<ProcessEntry> {
    for (const e of this.pids.values()) if (!e.exited) yield e;
  }

  /**
   * Add a live process image and make it the pid's current entry (a live
   * entry still current for that pid is ended first: its exit was missed).
   * parent, when given, must be an entry of this cache; the new entry holds it.
   * replaces: the image an exec replaced in the same pid; it is ended once
   * the new one is in, so that an ancestor they share is never let go of
   * in between. Adding an exec_id that is already cached returns the cached entry.
   */
  add(
    process: Process,
    opts: {
      pid: number;
      startNs: bigint;
      origin: EntryOrigin;
      parent?: ProcessEntry | undefined;
      replaces?: ProcessEntry | undefined;
    },
  ): ProcessEntry {
    const dup = this.execs.get(process.exec_id);
    if (dup) return dup;
    const stale = this.pids.get(opts.pid);
    if (stale && !stale.exited && stale !== opts.replaces) this.end(stale);
    const e = new Entry(
      process,
      process.parent_exec_id,
      opts.pid,
      opts.startNs,
      opts.origin,
      this.briefEvents,
    );
    this.execs.set(e.execId, e);
    this.pids.set(e.pid, e);
    this.liveCount++;
    const parent = opts.parent as Entry | undefined;
    if (parent && this.execs.get(parent.execId) === parent) {
      e.parent = parent;
      if (!parent.children) parent.children = new Set();
      parent.children.add(e);
      this.holdParentOf(e);
    }
    if (opts.replaces) this.end(opts.replaces, e.execId);
    return e;
  }

  /** Mark an entry ended: its process exited, or (replacedBy) an exec in the same pid replaced the image. */
  end(entry: ProcessEntry, replacedBy?: string): void {
    const e = entry as Entry;
    if (e.exited || this.execs.get(e.execId) !== e) return;
    e.exited = true;
    e.replacedBy = replacedBy;
    e.forgetCopies();
    this.liveCount--;
    if (e.heldChildren === 0) this.release(e);
  }

  /** e became held: take it out of the queue and hold its ancestors in turn. */
  private holdParentOf(child: Entry): void {
    let p = child.parent;
    while (p) {
      const wasHeld = p.held;
      p.heldChildren++;
      if (wasHeld) return;
      this.unqueue(p);
      p = p.parent;
    }
  }

  /** e stopped being held: queue it (or drop it) and let go of its parent. */
  private release(entry: Entry): void {
    let e: Entry | undefined = entry;
    while (e) {
      const p: Entry | undefined = e.parent;
      if (e.origin === 'clone' && e.replacedBy !== undefined && !e.children?.size) {
        this.remove(e, false);
      } else {
        this.enqueue(e);
      }
      if (!p) break;
      p.heldChildren--;
      e = p.held ? undefined : p;
    }
    while (this.queued > this.maxExited && this.oldest) this.remove(this.oldest, true);
  }

  /** Forget an entry that is not held; its children keep its exec_id as their parent_exec_id. */
  private remove(e: Entry, evicted: boolean): void {
    this.unqueue(e);
    if (this.execs.get(e.execId) === e) this.execs.delete(e.execId);
    if (this.pids.get(e.pid) === e) this.pids.delete(e.pid);
    const p = e.parent;
    if (p) {
      p.children?.delete(e);
      if (p.children?.size === 0) p.children = undefined;
      e.parent = undefined;
    }
    if (e.children) {
      for (const c of e.children) c.parent = undefined;
      e.children = undefined;
    }
    if (evicted) this.evictions++;
  }

  private enqueue(e: Entry): void {
    if (e.queued) this.unqueue(e);
    e.queued = true;
    e.older = this.newest;
    e.newer = undefined;
    if (this.newest) this.newest.newer = e;
    else this.oldest = e;
    this.newest = e;
    this.queued++;
  }

  private unqueue(e: Entry): void {
    if (!e.queued) return;
    if (e.older) e.older.newer = e.newer;
    else this.oldest = e.newer;
    if (e.newer) e.newer.older = e.older;
    else this.newest = e.older;
    e.older = undefined;
    e.newer = undefined;
    e.queued = false;
    this.queued--;
  }
}
