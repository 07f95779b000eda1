/**
 * Workloads in a running agent: the labelled cgroups network policies select
 * and process events name.
 *
 *   - `osprey run` asks for a managed workload (POST /v1/workloads): a new
 *     cgroup under the workload parent directory, removed once it has had
 *     processes and is empty again (or when nothing joined it within a grace
 *     period, say because the client died first), or on `osprey workload
 *     delete`. Managed workloads are kept in STATE_DIR/workloads.json so that
 *     a restarted agent takes them over, labels and all, instead of leaving
 *     their processes unlabelled and unenforced.
 *   - the config file labels existing cgroups by path (`workloads:`). A path
 *     that does not exist yet (a service not started) is labelled when it
 *     appears, and forgotten when it goes.
 *
 * Every other process is in the reserved host workload.
 */
import { existsSync, type FSWatcher, readFileSync, rmdirSync, watch } from 'node:fs';
import path from 'node:path';
import { cgroup2Root } from '../kernel/mounts.js';
import type { Labels } from '../netpolicy/model.js';
import { HOST_WORKLOAD_LABELS, labelProblems } from '../workload/labels.js';
import { type Workload, WorkloadRegistry } from '../workload/registry.js';
import { describeFsError, mkdirp } from './fs-util.js';
import { atomicWrite } from './policy-store.js';

/** One entry of the config key `workloads`. */
export interface ConfiguredWorkload {
  /** default: the last part of the path */
  name?: string;
  /** cgroup v2 directory, absolute or relative to the cgroup2 mount */
  path: string;
  labels: Record<string, string>;
}

export type WorkloadSource = 'run' | 'config';

/** A workload as GET /v1/workloads and `osprey workload list` show it. */
export interface WorkloadInfo {
  name: string;
  labels: Record<string, string>;
  identity: number;
  cgroup_path: string;
  cgroup_id: string;
  source: WorkloadSource;
  /** created (and removed) by the agent */
  managed: boolean;
  /** processes in it now */
  populated: boolean;
  created_at: string;
}

export type WorkloadOpCode = 'invalid' | 'exists' | 'not-found' | 'refused' | 'failed';

export class WorkloadOpError extends Error {
  constructor(
    readonly code: WorkloadOpCode,
    message: string,
  ) {
    super(message);
    this.name = 'WorkloadOpError';
  }
}

export interface WorkloadManagerOptions {
  /** absolute directory for managed workloads (default <cgroup2>/osprey.workloads) */
  parentDir?: string;
  /** cgroup v2 mount (default: detected) */
  cgroupRoot?: string;
  stateDir: string;
  configured: ConfiguredWorkload[];
  log: (line: string) => void;
  /** a managed workload nothing joined is removed after this long (default 30 s) */
  joinGraceMs?: number;
  /** how often workloads are checked besides inotify (default 1 s) */
  pollMs?: number;
}

interface Tracked {
  source: WorkloadSource;
  createdAt: string;
  createdMs: number;
  everPopulated: boolean;
  watcher?: FSWatcher;
  /** config: the configured path, for re-adoption when it comes back */
  configured?: ConfiguredWorkload;
}

interface StateFile {
  version: 1;
  workloads: { name: string; path: string; labels: Record<string, string>; created_at: string }[];
}

export class WorkloadManager {
  readonly registry: WorkloadRegistry;
  private readonly tracked = new Map<string, Tracked>();
  /** configured workloads whose cgroup does not exist (yet) */
  private waiting: ConfiguredWorkload[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly stateFile: string;
  private closed = false;

  constructor(private readonly opts: WorkloadManagerOptions) {
    const root = opts.cgroupRoot ?? cgroup2Root();
    let parent = 'osprey.workloads';
    if (opts.parentDir) {
      const rel = path.relative(root, path.resolve(opts.parentDir));
      if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
        throw new Error(
          `workload-cgroup ${opts.parentDir} is not below the cgroup v2 mount ${root}; give a directory inside it`,
        );
      }
      parent = rel;
    }
    this.registry = new WorkloadRegistry({ root, parent });
    this.stateFile = path.join(opts.stateDir, 'workloads.json');
  }

  /** The cgroup directory managed workloads are created in. */
  get parentDir(): string {
    return this.registry.parentDir;
  }

  /**
   * Take over the managed workloads a previous agent left running, and label
   * the configured cgroups. Problems are logged; nothing here stops the start
   * except a configured workload that is invalid (checked with the config).
   */
  start(): void {
    for (const s of this.readState()) {
      const dir = path.join(this.registry.parentDir, path.basename(s.path));
      if (!existsSync(path.join(dir, 'cgroup.procs'))) continue;
      if (!populated(dir)) {
        try {
          rmdirSync(dir);
        } catch {}
        continue;
      }
      try {
        this.registry.adopt(s.name, dir, s.labels, { managed: true });
        this.track(s.name, { source: 'run', createdAt: s.created_at, everPopulated: true });
        this.opts.log(`workload "${s.name}" (${labelsLine(s.labels)}) taken over from the previous agent`);
      } catch (err) {
        this.opts.log(`warning: workload "${s.name}" not taken over: ${(err as Error).message}`);
      }
    }
    for (const c of this.opts.configured) {
      if (!this.adoptConfigured(c)) {
        this.waiting.push(c);
        this.opts.log(
          `workload "${configuredName(c)}": cgroup ${this.absolute(c.path)} does not exist yet; it is labelled when it appears`,
        );
      }
    }
    this.saveState();
    this.timer = setInterval(() => this.poll(), this.opts.pollMs ?? 1000);
    this.timer.unref();
  }

  /** A new managed workload for `osprey run`. */
  create(name: string | undefined, labels: Record<string, string>): WorkloadInfo {
    if (this.closed) throw new WorkloadOpError('refused', 'the agent is stopping');
    const problems = labelProblems(labels);
    if (Object.keys(labels).length === 0) problems.push('give at least one label (--label key=value)');
    if (problems.length) throw new WorkloadOpError('invalid', problems.join('; '));
    const n = name ?? `w-${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
    if (this.registry.list().some((w) => w.name === n)) {
      throw new WorkloadOpError(
        'exists',
        `workload "${n}" exists already; pick another --name or delete it: osprey workload delete ${n}`,
      );
    }
    let w: Workload;
    try {
      w = this.registry.create(n, labels);
    } catch (err) {
      const msg = (err as Error).message;
      throw new WorkloadOpError(/must be/.test(msg) ? 'invalid' : 'failed', msg);
    }
    this.track(n, { source: 'run', createdAt: new Date().toISOString(), everPopulated: false });
    this.saveState();
    return this.info(w);
  }

  /** Forget a workload; a managed one is emptied (its processes killed) and removed. */
  delete(name: string): void {
    const w = this.find(name);
    const t = this.tracked.get(name);
    if (t?.source === 'config') {
      throw new WorkloadOpError(
        'refused',
        `workload "${name}" comes from the config file (${w.cgroupPath}); remove it there and restart the agent`,
      );
    }
    this.forget(name);
  }

  list(): WorkloadInfo[] {
    return this.registry
      .list()
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((w) => this.info(w));
  }

  get(name: string): WorkloadInfo {
    return this.info(this.find(name));
  }

  /**
   * The labels of the workload a cgroup is (process events): one Map lookup.
   * A cgroup no workload owns is the reserved host workload.
   */
  labelsOf = (cgroupId: string): Labels => this.registry.byCgroupId(cgroupId)?.labels ?? HOST_WORKLOAD_LABELS;

  /**
   * The agent is stopping: stop watching; remove the managed workloads that
   * are empty, keep (and remember) the ones that still run.
   */
  stop(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const [name, t] of this.tracked) {
      t.watcher?.close();
      const w = this.registry.list().find((x) => x.name === name);
      if (w?.managed && !populated(w.cgroupPath)) this.registry.remove(name);
    }
    this.saveState();
    // a directory given with workload-cgroup is the operator's (maybe also --cgroup): it stays
    if (this.opts.parentDir) return;
    try {
      rmdirSync(this.registry.parentDir);
    } catch {
      // not empty, or never created
    }
  }

  // ---------------------------------------------------------------------------

  private find(name: string): Workload {
    const w = this.registry.list().find((x) => x.name === name);
    if (!w) {
      const known = this.registry.list().map((x) => x.name);
      throw new WorkloadOpError(
        'not-found',
        `no workload "${name}"; ${known.length ? `there are: ${known.join(', ')}` : 'there is none'} (see osprey workload list)`,
      );
    }
    return w;
  }

  private forget(name: string): void {
    const t = this.tracked.get(name);
    t?.watcher?.close();
    this.tracked.delete(name);
    try {
      this.registry.remove(name);
    } catch (err) {
      this.opts.log(`workload "${name}": while removing: ${(err as Error).message}`);
    }
    if (t?.source === 'run') this.saveState();
  }

  private track(name: string, t: Omit<Tracked, 'createdMs'>): void {
    const entry: Tracked = { ...t, createdMs: Date.now() };
    this.tracked.set(name, entry);
    if (t.source !== 'run') return;
    const w = this.registry.get(name);
    try {
      // cgroup.events changes (populated 0/1) raise inotify modify events; the first one means a
      // process joined, even when it has left again by the time the event is handled (a command
      // that ran for a millisecond would otherwise wait out the join grace)
      entry.watcher = watch(path.join(w.cgroupPath, 'cgroup.events'), () => {
        entry.everPopulated = true;
        this.check(name);
      });
      entry.watcher.on('error', () => entry.watcher?.close());
    } catch {
      // the poll covers it
    }
  }

  /** Remove a managed workload that has emptied, or that nothing joined in time. */
  private check(name: string): void {
    if (this.closed) return;
    const t = this.tracked.get(name);
    if (t?.source !== 'run') return;
    const w = this.registry.list().find((x) => x.name === name);
    if (!w) return;
    if (!existsSync(w.cgroupPath)) {
      this.forget(name);
      return;
    }
    if (populated(w.cgroupPath)) {
      t.everPopulated = true;
      return;
    }
    if (t.everPopulated || Date.now() - t.createdMs > (this.opts.joinGraceMs ?? 30_000)) this.forget(name);
  }

  private poll(): void {
    for (const [name, t] of [...this.tracked]) {
      if (t.source === 'run') this.check(name);
      else if (t.configured && !existsSync(this.absolute(t.configured.path))) {
        this.opts.log(`workload "${name}": cgroup ${this.absolute(t.configured.path)} is gone; unlabelled`);
        this.forget(name);
        this.waiting.push(t.configured);
      }
    }
    if (this.waiting.length) {
      this.waiting = this.waiting.filter((c) => {
        const ok = this.adoptConfigured(c);
        if (ok)
          this.opts.log(
            `workload "${configuredName(c)}": cgroup ${this.absolute(c.path)} appeared; labelled`,
          );
        return !ok;
      });
    }
  }

  /** false when its cgroup does not exist (yet). */
  private adoptConfigured(c: ConfiguredWorkload): boolean {
    const dir = this.absolute(c.path);
    if (!existsSync(path.join(dir, 'cgroup.procs'))) return false;
    const name = configuredName(c);
    try {
      this.registry.adopt(name, dir, c.labels);
    } catch (err) {
      this.opts.log(`warning: workload "${name}" (${dir}) not labelled: ${(err as Error).message}`);
      return true;
    }
    this.track(name, {
      source: 'config',
      createdAt: new Date().toISOString(),
      everPopulated: true,
      configured: c,
    });
    return true;
  }

  private absolute(p: string): string {
    return path.isAbsolute(p) ? p : path.join(this.registry.root, p);
  }

  private info(w: Workload): WorkloadInfo {
    const t = this.tracked.get(w.name);
    return {
      name: w.name,
      labels: { ...w.labels },
      identity: w.identity,
      cgroup_path: w.cgroupPath,
      cgroup_id: w.cgroupId.toString(),
      source: t?.source ?? 'run',
      managed: w.managed,
      populated: populated(w.cgroupPath),
      created_at: t?.createdAt ?? '',
    };
  }

  private readState(): StateFile['workloads'] {
    let text: string;
    try {
      text = readFileSync(this.stateFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.opts.log(`warning: cannot read ${this.stateFile}: ${describeFsError(err)}`);
      }
      return [];
    }
    try {
      const doc = JSON.parse(text) as Partial<StateFile>;
      if (doc.version !== 1 || !Array.isArray(doc.workloads))
        throw new Error('expected {version: 1, workloads: [...]}');
      return doc.workloads.filter(
        (w) =>
          typeof w?.name === 'string' &&
          typeof w.path === 'string' &&
          w.labels !== null &&
          typeof w.labels === 'object' &&
          labelProblems(w.labels).length === 0,
      );
    } catch (err) {
      this.opts.log(`warning: ${this.stateFile} is not a workload list (${(err as Error).message}); ignored`);
      return [];
    }
  }

  private saveState(): void {
    const workloads: StateFile['workloads'] = [];
    for (const w of this.registry.list()) {
      const t = this.tracked.get(w.name);
      if (!w.managed || t?.source !== 'run') continue;
      workloads.push({ name: w.name, path: w.cgroupPath, labels: { ...w.labels }, created_at: t.createdAt });
    }
    if (workloads.length === 0 && !existsSync(this.stateFile)) return;
    try {
      // the state directory is created by the first thing that needs it
      mkdirp(path.dirname(this.stateFile), 0o700);
      atomicWrite(
        this.stateFile,
        `${JSON.stringify({ version: 1, workloads } satisfies StateFile, null, 2)}\n`,
      );
    } catch (err) {
      this.opts.log(`warning: workloads not remembered for the next start: ${(err as Error).message}`);
    }
  }
}

/** The name a configured workload gets: its own, or the last part of its path. */
export function configuredName(c: ConfiguredWorkload): string {
  if (c.name) return c.name;
  return (
    path
      .basename(c.path)
      .replace(/[^A-Za-z0-9._-]/g, '-')
      .replace(/^[^A-Za-z0-9]+/, '')
      .slice(0, 128) || 'workload'
  );
}

/** Whether a cgroup has processes (in it or below): cgroup.events "populated 1". */
export function populated(dir: string): boolean {
  try {
    return /^populated 1$/m.test(readFileSync(path.join(dir, 'cgroup.events'), 'utf8'));
  } catch {
    return false;
  }
}

function labelsLine(l: Record<string, string>): string {
  return Object.entries(l)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}
