import { availableParallelism } from 'node:os';
import {
  type BpfMap,
  bpfObjectPath,
  bytes,
  type Codec,
  Collection,
  type CollectionOptions,
  native,
  possibleCpus,
  RecordReader,
  ringBufferBytes,
  u32,
  u64,
} from '../../kernel/index.js';
import { decodeTracingRecord, type TracingRecord } from './decode.js';
import { CONFIG, Counter, OSP_LIMITS } from './layout.js';
import {
  encodeTables,
  type KernelTables,
  type PolicyMode,
  type PolicyTables,
  validateTables,
} from './tables.js';

export interface PolicyProgramOptions {
  /** called with each batch of decoded records, in ring order */
  onRecords: (records: TracingRecord[]) => void;
  /**
   * fd of the process sensor's osprey_procs map (ProcessSensor.procsMapFd()).
   * Required when a selector has matchBinaries or matchParentBinaries.
   */
  procsMapFd?: number;
  /** act only on tasks in this cgroup v2 directory and below */
  scopeCgroup?: string;
  /** bytes of this policy's ring buffer: a power of 2, at least 4096 (default 1 MiB) */
  /** wake-up coalescing of the ring reader, ms (default 0: off) */
  holdoffMs?: number;
  ringBytes?: number;
  /** the object to load (tests); default bpf/.output/generic.bpf.o */
  objectFile?: string;
}

export interface PolicyCounters {
  /** events written to the ring */
  posted: number;
  /** enforcement actions taken (signal sent, enforcer notified) */
  actionsTaken: number;
  /** enforcement actions not taken because the policy is in monitor mode */
  actionsMonitored: number;
  /** enforcement actions refused: the target was PID 1, a kernel thread or the agent */
  actionsRefused: number;
  /** enforcement actions whose helper failed */
  actionsFailed: number;
  /** events not posted: a rate limit held them back */
  rateLimited: number;
  /** events lost: the ring buffer was full */
  ringbufDrops: number;
  /** enter events lost: too many threads inside the syscall at once */
  pendingDrops: number;
  /** records user space could not decode */
  decodeErrors: number;
  /** bytes of records in the ring or read and not handled yet */
  ringPendingBytes: number;
}

/** Bits of osprey_proc.follow in use by loaded policies of this process. */
const followBitsInUse = new Set<number>();

function allocFollowBit(): number {
  for (let b = 0; b < 64; b++) {
    if (!followBitsInUse.has(b)) {
      followBitsInUse.add(b);
      return b;
    }
  }
  throw new Error('every followChildren bit (64) is in use: unload a policy with followChildren first');
}

const PROGRAM = 'osprey_generic';
const ENFORCER = 'osprey_enforcer';
const FOLLOW = 'osprey_follow_fork';

/**
 * One TracingPolicy in the kernel: one instance of bpf/generic.bpf.c whose
 * maps hold the policy's tables, its generic program attached once per hook
 * (cookie = hook index; hooks sharing a tracepoint ride on the first one's
 * attachment), and the ring reader that turns its events into
 * TracingRecords. Loading is atomic: on any failure everything loaded or
 * attached so far is closed before the error is thrown.
 *
 * Events go to a ring buffer of the policy's own, so one policy's burst
 * cannot push another's events out and unloading frees its memory.
 */
export class PolicyProgram {
  private readonly coll: Collection;
  private readonly reader: RecordReader<TracingRecord>;
  private readonly counterMap: BpfMap<number, bigint>;
  private readonly cfg: BpfMap<number, Buffer>;
  private closed = false;

  private constructor(
    readonly tables: PolicyTables,
    coll: Collection,
    private readonly kt: KernelTables,
    private readonly opts: PolicyProgramOptions,
  ) {
    this.coll = coll;
    this.counterMap = coll.map('counters', u32, u64);
    this.cfg = coll.map('osp_cfg', u32, bytes(CONFIG.SIZE) as Codec<Buffer>);
    this.reader = new RecordReader(
      coll.mapInfo('events').fd,
      (buf, off, len) => decodeTracingRecord(buf, off, len, tables.hooks),
      (records) => opts.onRecords(records),
      opts.holdoffMs ?? 0,
      coll.mapInfo('ring_waits').fd,
    );
  }

  /** Validate, load, fill and attach one policy. Throws (with nothing left behind) on any failure. */
  static load(tables: PolicyTables, opts: PolicyProgramOptions): PolicyProgram {
    const p = PolicyProgram.prepare(tables, opts);
    let coll: Collection;
    try {
      // a spare object verified ahead of time makes an add a matter of
      // filling maps and attaching; the verifier is what takes time
      coll =
        takeSpare(opts, p.maxEntries) ??
        Collection.load(opts.objectFile ?? bpfObjectPath('generic'), collectionOptions(opts, p.maxEntries));
    } catch (err) {
      p.release();
      throw err;
    }
    return PolicyProgram.finish(tables, coll, p, opts);
  }

  /**
   * As load(), but the kernel's verifier runs off the event loop: with no
   * spare ready, it waits for the one being verified, or verifies an object
   * of its own on a worker thread. The agent goes on taking events meanwhile.
   */
  static async loadAsync(tables: PolicyTables, opts: PolicyProgramOptions): Promise<PolicyProgram> {
    const p = PolicyProgram.prepare(tables, opts);
    let coll: Collection;
    try {
      coll =
        takeSpare(opts, p.maxEntries) ??
        (await spareWhenReady(opts, p.maxEntries)) ??
        (await Collection.loadAsync(
          opts.objectFile ?? bpfObjectPath('generic'),
          collectionOptions(opts, p.maxEntries),
        ));
    } catch (err) {
      p.release();
      throw err;
    }
    return PolicyProgram.finish(tables, coll, p, opts);
  }

  /** Check and encode the tables; allocates the followChildren bits (release() gives them back). */
  private static prepare(tables: PolicyTables, opts: PolicyProgramOptions): Prepared {
    validateTables(tables);
    const ringBytes = ringBufferBytes(opts.ringBytes ?? 1 << 20);
    const bits: number[] = [];
    let kt: KernelTables;
    try {
      kt = encodeTables(tables, () => {
        const b = allocFollowBit();
        bits.push(b);
        return b;
      });
    } catch (err) {
      for (const b of bits) followBitsInUse.delete(b);
      throw err;
    }
    const release = () => {
      for (const b of kt.followBits) followBitsInUse.delete(b);
    };
    if (kt.needsProcs && opts.procsMapFd === undefined) {
      release();
      throw new Error(
        "this policy matches binaries: pass procsMapFd, the process sensor's osprey_procs map (start the process sensor first)",
      );
    }
    if (kt.follow.length > OSP_LIMITS.MAX_FOLLOW) {
      release();
      throw new Error(
        `${kt.follow.length} followChildren filters exceed the limit of ${OSP_LIMITS.MAX_FOLLOW} per policy`,
      );
    }
    const sized = (n: number) => Math.max(1, n);
    const maxEntries: Record<string, number> = {
      heap: Math.max(possibleCpus(), availableParallelism()),
      events: ringBytes,
      int_set: sized(kt.intSet.length),
      str_prefix: sized(kt.prefix.length),
      str_postfix: sized(kt.postfix.length),
      addr_lpm: sized(kt.addr.length),
      substr: sized(Math.max(0, ...kt.needles.keys()) + 1),
    };
    kt.strEq.forEach((keys, b) => {
      maxEntries[`str_eq_${b}`] = sized(keys.length);
    });
    return { kt, maxEntries, release };
  }

  /** Fill the loaded object's maps and attach its programs; on failure close it and release. */
  private static finish(
    tables: PolicyTables,
    coll: Collection,
    { kt, release }: Prepared,
    opts: PolicyProgramOptions,
  ): PolicyProgram {
    let prog: PolicyProgram | undefined;
    try {
      fillMaps(coll, kt);
      if (opts.scopeCgroup) {
        coll.setCgroup('scope_cgroups', 0, opts.scopeCgroup);
        kt.config.writeUInt32LE(1, CONFIG.scope_cgroup);
      }
      prog = new PolicyProgram(tables, coll, kt, opts);
      prog.cfg.update(0, kt.config);
      // the enforcer and followChildren first: a hook must never act
      // without the program that completes its action
      if (kt.needsEnforcer) coll.attachTracepoint(ENFORCER, 'raw_syscalls', 'sys_exit');
      if (kt.follow.length) coll.attach(FOLLOW);
      kt.attach.forEach((i) => {
        const h = tables.hooks[i]!;
        try {
          coll.attachTracepoint(PROGRAM, h.category, h.name, BigInt(i));
        } catch (err) {
          throw new Error(`hook ${i} (${h.category}/${h.name}): ${(err as Error).message}`, { cause: err });
        }
      });
      return prog;
    } catch (err) {
      prog?.reader.close();
      coll.close();
      release();
      throw err;
    }
  }

  /** Switch between monitor (actions counted, not taken) and enforce, live. */
  setMode(mode: PolicyMode): void {
    if (mode !== 'monitor' && mode !== 'enforce')
      throw new Error(`mode "${mode}" is neither monitor nor enforce`);
    this.kt.config.writeUInt32LE(mode === 'monitor' ? 1 : 0, CONFIG.mode);
    this.cfg.update(0, this.kt.config);
  }

  get mode(): PolicyMode {
    return this.cfg.lookup(0)?.readUInt32LE(CONFIG.mode) === 1 ? 'monitor' : 'enforce';
  }

  counters(): PolicyCounters {
    const sum = (i: number) => Number((this.counterMap.lookupPerCpu(i) ?? []).reduce((a, b) => a + b, 0n));
    return {
      posted: sum(Counter.POSTED),
      actionsTaken: sum(Counter.TAKEN),
      actionsMonitored: sum(Counter.MONITORED),
      actionsRefused: sum(Counter.REFUSED),
      actionsFailed: sum(Counter.ACTION_FAILED),
      rateLimited: sum(Counter.RATE_LIMITED),
      ringbufDrops: sum(Counter.RINGBUF_DROP),
      pendingDrops: sum(Counter.PENDING_DROP),
      decodeErrors: this.reader.decodeErrors,
      ringPendingBytes: this.reader.pendingBytes,
    };
  }

  /** Records ready in the ring now, delivered synchronously. */
  drain(): void {
    if (this.closed) return;
    this.reader.drain();
  }

  /** This policy's maps (the shared process table is not its own). */
  maps(): { name: string; fd: number }[] {
    return this.coll
      .maps()
      .filter((m) => m.name !== 'osprey_procs')
      .map((m) => ({ name: m.name, fd: m.fd }));
  }

  /** Programs with their hooks, for status. */
  programs(): { name: string; hook: string; fd: number }[] {
    const fds = new Map(this.coll.programs().map((p) => [p.name, p.fd]));
    return this.coll.attached().map((l) => ({ name: l.program, hook: l.hook, fd: fds.get(l.program) ?? -1 }));
  }

  /**
   * As close(), with the programs detached off the event loop, all at once:
   * each detach waits for a grace period in the kernel (~70 ms here), which
   * close() waits for one after the other on the agent's thread. The hooks
   * go first, then the enforcer and followChildren programs they rely on.
   * Events keep being delivered until the end.
   */
  async closeAsync(): Promise<void> {
    if (this.closed) return;
    const links = this.coll.attached();
    await Promise.all(links.filter((l) => l.program === PROGRAM).map((l) => l.destroyAsync()));
    await Promise.all(links.filter((l) => l.program !== PROGRAM).map((l) => l.destroyAsync()));
    this.close();
  }

  /** Detach everything, deliver what is in the ring, free the object. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    for (const l of this.coll.attached()) l.destroy();
    try {
      this.drain();
    } finally {
      this.closed = true;
      this.reader.close();
      if (this.kt.followBits.length && this.opts.procsMapFd !== undefined) this.clearFollowBits();
      this.coll.close();
      for (const b of this.kt.followBits) followBitsInUse.delete(b);
    }
  }

  /** Take this policy's followChildren marks off every process, so the bits can be reused. */
  private clearFollowBits(): void {
    let mask = 0n;
    for (const b of this.kt.followBits) mask |= 1n << BigInt(b);
    const info = this.coll.mapInfo('osprey_procs');
    const procs = this.coll.map('osprey_procs', u32, bytes(info.valueSize) as Codec<Buffer>);
    const FOLLOW_OFF = 24; // struct osprey_proc.follow
    try {
      for (const [pid, v] of procs.entries()) {
        const f = v.readBigUInt64LE(FOLLOW_OFF);
        if (f & mask) {
          v.writeBigUInt64LE(f & ~mask, FOLLOW_OFF);
          try {
            procs.update(pid, v, 2 /* BPF_EXIST */);
          } catch {
            // the process exited meanwhile
          }
        }
      }
    } catch {
      // best effort: a stale bit only matters if the same bit is reused
    }
  }
}

/**
 * Map sizes of a spare object: a policy whose tables fit is loaded by filling
 * a spare, any other by a load of its own. The string-equality buckets hold
 * keys of up to 4 KiB, so they are kept small.
 */
const SPARE_CAPACITY: Record<string, number> = {
  int_set: 1024,
  str_prefix: 1024,
  str_postfix: 1024,
  addr_lpm: 1024,
  substr: 64,
  ...Object.fromEntries(Array.from({ length: 8 }, (_, b) => [`str_eq_${b}`, 64])),
};

interface SparePool {
  spare?: Collection;
  loading?: Promise<void>;
  /** the next spare's verification, due a moment after an add took the last one */
  due?: NodeJS.Timeout;
  lastError?: string;
}

/**
 * How long after an add takes the spare the next one starts verifying: the
 * verifier takes a core for ~450 ms, and on a small machine it slowed the
 * rest of the add (filling maps, attaching, storing, answering) and the
 * client that waits for it by ~10 ms. An add that comes within this time
 * starts it at once.
 */
const NEXT_SPARE_DELAY_MS = 200;

/** Pools by what an object is loaded with (object file, shared process table, ring size). */
const pools = new Map<string, SparePool>();

function poolKey(opts: Pick<PolicyProgramOptions, 'objectFile' | 'procsMapFd' | 'ringBytes'>): string {
  return `${opts.objectFile ?? ''}|${opts.procsMapFd ?? -1}|${opts.ringBytes ?? 1 << 20}`;
}

function spareEntries(opts: Pick<PolicyProgramOptions, 'ringBytes'>): Record<string, number> {
  return {
    ...SPARE_CAPACITY,
    heap: Math.max(possibleCpus(), availableParallelism()),
    events: opts.ringBytes ?? 1 << 20,
  };
}

/** A policy's tables ready for an object: what its maps need, and how to give its followChildren bits back. */
interface Prepared {
  kt: KernelTables;
  maxEntries: Record<string, number>;
  release: () => void;
}

function collectionOptions(
  opts: Pick<PolicyProgramOptions, 'procsMapFd'>,
  maxEntries: Record<string, number>,
): CollectionOptions {
  const reuseMaps: Record<string, number> = {};
  if (opts.procsMapFd !== undefined) reuseMaps.osprey_procs = opts.procsMapFd;
  return { maxEntries, reuseMaps };
}

/**
 * The spare being verified, once it is ready, if it fits (undefined when none
 * is on its way or it failed): waiting for it is shorter than verifying a
 * second object beside it on two cores.
 */
async function spareWhenReady(
  opts: PolicyProgramOptions,
  need: Record<string, number>,
): Promise<Collection | undefined> {
  const pool = pools.get(poolKey(opts));
  if (!pool || !spareFits(opts, need)) return undefined;
  if (pool.due) {
    clearTimeout(pool.due);
    pool.due = undefined;
    prewarmPool(opts, pool);
  }
  if (!pool.loading) return undefined;
  await pool.loading;
  return takeSpare(opts, need);
}

function spareFits(opts: PolicyProgramOptions, need: Record<string, number>): boolean {
  const have = spareEntries(opts);
  for (const [map, n] of Object.entries(need)) {
    if (map === 'heap') continue;
    if (have[map] === undefined || n > have[map]!) return false;
  }
  return true;
}

/** A ready spare whose maps are large enough for these sizes, or undefined. Starts making the next one. */
function takeSpare(opts: PolicyProgramOptions, need: Record<string, number>): Collection | undefined {
  const pool = pools.get(poolKey(opts));
  if (!pool?.spare || !spareFits(opts, need)) return undefined;
  const coll = pool.spare;
  pool.spare = undefined;
  pool.due = setTimeout(() => {
    pool.due = undefined;
    if (pools.get(poolKey(opts)) === pool) prewarmPool(opts, pool);
  }, NEXT_SPARE_DELAY_MS);
  pool.due.unref();
  return coll;
}

function prewarmPool(
  opts: Pick<PolicyProgramOptions, 'objectFile' | 'procsMapFd' | 'ringBytes'>,
  pool: SparePool,
): void {
  if (pool.spare || pool.loading) return;
  pool.loading = Collection.loadAsync(
    opts.objectFile ?? bpfObjectPath('generic'),
    collectionOptions(opts, spareEntries(opts)),
  ).then(
    (c) => {
      pool.loading = undefined;
      if (pools.get(poolKey(opts)) === pool) pool.spare = c;
      else c.close(); // the pool was closed meanwhile
    },
    (err: Error) => {
      // no spare: adds load their own object, as without a pool
      pool.loading = undefined;
      pool.lastError = err.message;
    },
  );
}

/**
 * Keep one verified, unattached object ready for the next PolicyProgram.load
 * with these options (and another after each use). Returns once the first
 * spare is ready, or failed (then loads go on without one).
 */
export async function prewarmPolicyObjects(
  opts: Pick<PolicyProgramOptions, 'objectFile' | 'procsMapFd' | 'ringBytes'>,
): Promise<void> {
  const key = poolKey(opts);
  let pool = pools.get(key);
  if (!pool) {
    pool = {};
    pools.set(key, pool);
  }
  prewarmPool(opts, pool);
  await pool.loading;
}

/** Free every spare (they are loaded, never attached). Loads still running free theirs when done. */
export function closePolicySpares(): void {
  for (const pool of pools.values()) {
    clearTimeout(pool.due);
    pool.spare?.close();
  }
  pools.clear();
}

function fillMaps(coll: Collection, kt: KernelTables): void {
  const put = (map: string, key: Buffer, value: Buffer) => {
    try {
      native().mapUpdate(coll.mapInfo(map).fd, key, value, 0);
    } catch (err) {
      throw new Error(`fill map ${map}: ${(err as Error).message}`, { cause: err });
    }
  };
  const one = Buffer.from([1]);
  const idx = (i: number) => {
    const k = Buffer.alloc(4);
    k.writeUInt32LE(i, 0);
    return k;
  };
  kt.hooks.forEach((h, i) => {
    put('hooks', idx(i), h);
  });
  for (const [k, s] of kt.selectors) put('selectors', idx(k), s);
  for (const k of kt.intSet) put('int_set', k, one);
  kt.strEq.forEach((keys, b) => {
    for (const k of keys) put(`str_eq_${b}`, k, one);
  });
  for (const k of kt.prefix) put('str_prefix', k, one);
  for (const k of kt.postfix) put('str_postfix', k, one);
  for (const k of kt.addr) put('addr_lpm', k, one);
  for (const [i, n] of kt.needles) put('substr', idx(i), n);
  kt.follow.forEach((f, i) => {
    put('follow_filters', idx(i), f);
  });
}
