import { existsSync } from 'node:fs';
import { LifecycleEvents } from '../events/lifecycle.js';
import { decodeWaitStatus } from '../events/signals.js';
import type { ExportEvent, Process } from '../events/types.js';
import { cgroup2Root } from '../kernel/mounts.js';
import type { ExecRecord, ExitRecord, ForkRecord, ProcessRecord } from '../sensors/process/records.js';
import { ProcessBuilder } from './builder.js';
import { ProcessCache, type ProcessEntry } from './cache.js';
import { CgroupPaths } from './cgroups.js';
import { ktimeToTime, measureRealtimeOffsetNs } from './clock.js';
import { type HostNamespaces, NamespaceTable, readHostNamespaces } from './namespaces.js';
import { listProcesses, readUptimeNs } from './procfs.js';

export interface ProcessPipelineOptions {
  nodeName: string;
  /** exited processes kept for late lookups (default 8192) */
  maxExited?: number;
  /** the cgroup v2 mount; default: detected from this process's mounts */
  cgroupRoot?: string;
  /** where procfs is mounted (default /proc); tests point it at a fake tree */
  procRoot?: string;
  /** realpath used when an exec looks like a script (default fs.realpathSync); for tests */
  realpath?: (p: string) => string;
  /** labels of the workload a cgroup id (decimal) belongs to: process.workload.labels */
  workloadLabels?: (cgroupId: string) => Readonly<Record<string, string>> | undefined;
  /** process.cap in events (default true) */
  caps?: boolean;
  /** process.ns in events (default true) */
  namespaces?: boolean;
  /** process.cap and process.ns in every event that names the process, not only its own process_exec (default false) */
  capsNsEveryEvent?: boolean;
}

/**
 * Kernel process records in, Tetragon-shaped process_exec / process_exit
 * events out, with the process cache kept in step.
 *
 * apply() touches the file system only for what it cannot know otherwise:
 * a cgroup id it has not seen (a rate-limited rescan of the hierarchy) and
 * an exec that looks like a script (one realpath).
 */
export class ProcessPipeline {
  readonly cache: ProcessCache;
  readonly nodeName: string;
  /** what the pipeline could not set up as asked; the agent should log these once */
  readonly warnings: string[] = [];
  readonly hostNamespaces: HostNamespaces;
  readonly cgroups: CgroupPaths;
  private readonly builder: ProcessBuilder;
  private readonly events: LifecycleEvents;
  private readonly procRoot: string;

  constructor(opts: ProcessPipelineOptions) {
    if (!opts.nodeName) throw new Error('ProcessPipeline needs a nodeName: it is part of every exec_id');
    this.nodeName = opts.nodeName;
    this.events = new LifecycleEvents(opts.nodeName);
    this.procRoot = opts.procRoot ?? '/proc';
    this.cache = new ProcessCache(opts.maxExited ?? 4096, { briefEvents: opts.capsNsEveryEvent !== true });
    let root = opts.cgroupRoot;
    if (root === undefined) {
      try {
        root = cgroup2Root();
      } catch (err) {
        this.warnings.push(`workload.cgroup_path will be empty: ${(err as Error).message}`);
      }
    }
    this.cgroups = new CgroupPaths(root);
    this.hostNamespaces = readHostNamespaces(this.procRoot);
    if (this.hostNamespaces.source === 'self') {
      this.warnings.push(
        `${this.procRoot}/1/ns is unreadable: ns.is_host compares with the agent's own namespaces instead`,
      );
    } else if (this.hostNamespaces.source === 'none') {
      this.warnings.push(`${this.procRoot}/1/ns and ${this.procRoot}/self/ns are unreadable: no ns.is_host`);
    }
    this.builder = new ProcessBuilder(
      this.nodeName,
      this.cgroups,
      new NamespaceTable(this.hostNamespaces.inums),
      opts.realpath,
    );
    this.builder.workloadLabels = opts.workloadLabels;
    this.builder.withCaps = opts.caps ?? true;
    this.builder.withNamespaces = opts.namespaces ?? true;
  }

  /**
   * Seed the cache with the processes that were running before the agent
   * (flags "procFS"), parents first so that each links to its parent.
   * Returns how many were added; emits no events. Attach the sensor before
   * seeding and apply its records after: a process that exits in between is
   * then still seen to exit.
   */
  seedFromProc(): number {
    const uptime = readUptimeNs(this.procRoot);
    // wall clock at boot: now minus time since boot (boot time, suspend included, as /proc counts it)
    const nowWall = process.hrtime.bigint() + measureRealtimeOffsetNs();
    const bootWallNs = uptime === undefined ? measureRealtimeOffsetNs() : nowWall - uptime;
    let n = 0;
    for (const snap of listProcesses(this.procRoot)) {
      const cur = this.cache.get(snap.pid);
      if (cur && !cur.exited) continue;
      const parent = this.cache.get(snap.ppid);
      const live = parent && !parent.exited ? parent : undefined;
      const proc = this.builder.fromProc(snap, live?.process.exec_id, bootWallNs);
      this.cache.add(proc, { pid: snap.pid, startNs: snap.startBootNs, origin: 'procfs', parent: live });
      n++;
    }
    return n;
  }

  /** Apply one batch of records in order; returns the events they make, in order. */
  apply(records: ProcessRecord[]): ExportEvent[] {
    const out: ExportEvent[] = [];
    const execd = records.length > 1 ? execdForks(records) : undefined;
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      switch (r.kind) {
        case 'exec':
          out.push(this.onExec(r));
          break;
        case 'fork':
          if (execd === undefined || !execd.has(i)) this.onFork(r);
          break;
        case 'exit':
          out.push(this.onExit(r));
          break;
      }
    }
    return out;
  }

  /**
   * Mark live entries whose pid is gone from /proc as exited, without an
   * event: their exit record was lost (ring-buffer overflow). Returns how
   * many. Cheap enough to run every minute or so.
   */
  prune(): number {
    const gone: ProcessEntry[] = [];
    for (const e of this.cache.live()) {
      if (!existsSync(`${this.procRoot}/${e.pid}`)) gone.push(e);
    }
    for (const e of gone) this.cache.end(e);
    return gone.length;
  }

  private onExec(r: ExecRecord): ExportEvent {
    const time = ktimeToTime(r.ktime);
    const parent = this.findParent(r.ppid, r.parentStartTime);
    const proc = this.builder.fromExec(r, this.parentExecId(parent, r.ppid, r.parentStartTime), time);
    const cur = this.cache.get(r.pid);
    const replaces = cur && !cur.exited && this.sameProcess(cur, r.startTime) ? cur : undefined;
    this.cache.add(proc, { pid: r.pid, startNs: r.startTime, origin: 'exec', parent, replaces });
    return this.events.exec(proc, parent?.brief, time);
  }

  private onFork(r: ForkRecord): void {
    const cur = this.cache.get(r.pid);
    // the same fork twice: keep what we have
    if (cur && !cur.exited && cur.origin !== 'procfs' && cur.startNs === r.startTime) return;
    const parent = this.findParent(r.ppid, r.parentStartTime);
    const proc = this.builder.fromFork(
      r,
      parent?.process,
      this.parentExecId(parent, r.ppid, r.parentStartTime),
    );
    this.cache.add(proc, { pid: r.pid, startNs: r.startTime, origin: 'clone', parent });
  }

  private onExit(r: ExitRecord): ExportEvent {
    const time = ktimeToTime(r.ktime);
    const cur = this.cache.get(r.pid);
    const entry = cur && this.sameProcess(cur, r.startTime) ? cur : undefined;
    let proc: Process;
    let parent: Process | undefined;
    if (entry) {
      proc = entry.brief;
      parent = entry.parentExecId === undefined ? undefined : this.cache.byExecId(entry.parentExecId)?.brief;
      this.cache.end(entry);
    } else {
      // a live entry under this pid that is not this process missed its own exit
      if (cur && !cur.exited) this.cache.end(cur);
      // an exit record has no parent start time: trust the pid only while it lives
      const p = this.cache.get(r.ppid);
      const live = p && !p.exited ? p : undefined;
      proc = this.builder.forUnknownExit(r, live?.process.exec_id);
      parent = live?.brief;
    }
    return this.events.exit(proc, parent, decodeWaitStatus(r.exitCode), time);
  }

  /**
   * The cached parent, if the pid's current entry is that process. Kernel
   * entries carry the exact start time; a /proc seed only a tick-resolution
   * boot-clock one, so for those the pid alone decides while they live.
   */
  private findParent(ppid: number, parentStartTime: bigint): ProcessEntry | undefined {
    if (ppid === 0) return undefined;
    const p = this.cache.get(ppid);
    return p && this.sameProcess(p, parentStartTime) ? p : undefined;
  }

  private sameProcess(e: ProcessEntry, startNs: bigint): boolean {
    return e.origin === 'procfs' ? !e.exited : e.startNs === startNs;
  }

  /** The parent's exec_id, or a stable stand-in from what the kernel says about it. */
  private parentExecId(
    parent: ProcessEntry | undefined,
    ppid: number,
    parentStartTime: bigint,
  ): string | undefined {
    if (parent) return parent.process.exec_id;
    return ppid === 0 ? undefined : this.builder.execId(parentStartTime, ppid);
  }
}

/**
 * The forks of a batch whose child execs later in the same batch with no
 * record in between naming it (as its pid or as a parent): their clone
 * entries would be replaced by the exec before anything could name them
 * (no event carries a replaced clone's exec_id, and the cache drops it at
 * once), so they are not made at all. Most forks are such: a shell's, a
 * build's, an exec storm's children exec at once. By index into records;
 * undefined when there are none.
 */
function execdForks(records: readonly ProcessRecord[]): Set<number> | undefined {
  let pending: Map<number, number> | undefined;
  let out: Set<number> | undefined;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    if (pending !== undefined && pending.size > 0) {
      const f = pending.get(r.pid);
      if (f !== undefined) {
        pending.delete(r.pid);
        if (r.kind === 'exec' && r.startTime === (records[f] as ForkRecord).startTime) {
          out ??= new Set();
          out.add(f);
        }
      }
      pending.delete(r.ppid);
    }
    if (r.kind === 'fork') {
      pending ??= new Map();
      pending.set(r.pid, i);
    }
  }
  return out;
}
