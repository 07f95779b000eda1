/**
 * Workloads: cgroup v2 directories with labels. The agent creates managed
 * ones (under <cgroup2>/osprey.workloads/) and moves processes in, or labels
 * cgroups that exist already (a systemd unit, a container). Each distinct
 * label set has a numeric identity; the kernel knows a workload by the
 * cgroup id (the directory's inode number) of the socket's cgroup.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cgroup2Root } from '../kernel/mounts.js';
import { IdentityAllocator } from '../netpolicy/identity.js';
import type { Labels } from '../netpolicy/model.js';

export interface Workload {
  name: string;
  /** absolute path of the cgroup directory */
  cgroupPath: string;
  /** inode number of the directory: what bpf_get_current_cgroup_id() returns */
  cgroupId: bigint;
  labels: Labels;
  identity: number;
  /** created by the registry (removed with it) rather than an existing cgroup labelled */
  managed: boolean;
}

export type WorkloadChange = { kind: 'added' | 'removed'; workload: Workload };

export interface WorkloadRegistryOptions {
  /** cgroup v2 mount point (default: detected) */
  root?: string;
  /** directory under root for managed workloads (default osprey.workloads) */
  parent?: string;
  identities?: IdentityAllocator;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export class WorkloadRegistry {
  readonly root: string;
  readonly parentDir: string;
  readonly identities: IdentityAllocator;
  private byName = new Map<string, Workload>();
  private byId = new Map<string, Workload>();
  private listeners = new Set<(c: WorkloadChange) => void>();

  constructor(opts: WorkloadRegistryOptions = {}) {
    this.root = opts.root ?? cgroup2Root();
    this.parentDir = path.join(this.root, opts.parent ?? 'osprey.workloads');
    this.identities = opts.identities ?? new IdentityAllocator();
  }

  /** Create a managed cgroup for a new workload. */
  create(name: string, labels: Labels): Workload {
    checkName(name);
    if (this.byName.has(name)) throw new Error(`workload "${name}" exists already`);
    if (!existsSync(this.parentDir)) mkdirSync(this.parentDir, { recursive: true });
    const dir = path.join(this.parentDir, name);
    try {
      mkdirSync(dir);
    } catch (err) {
      throw new Error(`create cgroup ${dir} for workload "${name}": ${(err as Error).message}`);
    }
    return this.add(name, dir, labels, true);
  }

  /**
   * Label an existing cgroup v2 directory (absolute, or relative to the
   * cgroup2 root). `managed` takes over a directory the registry created
   * before (an agent restart): it is then removed with the workload.
   */
  adopt(name: string, cgroupPath: string, labels: Labels, opts: { managed?: boolean } = {}): Workload {
    checkName(name);
    if (this.byName.has(name)) throw new Error(`workload "${name}" exists already`);
    const dir = path.isAbsolute(cgroupPath) ? cgroupPath : path.join(this.root, cgroupPath);
    if (!dir.startsWith(this.root + path.sep) && dir !== this.root) {
      throw new Error(`${dir} is not inside the cgroup v2 hierarchy at ${this.root}`);
    }
    if (!existsSync(path.join(dir, 'cgroup.procs'))) {
      throw new Error(`${dir} is not a cgroup v2 directory (no cgroup.procs)`);
    }
    return this.add(name, dir, labels, opts.managed === true);
  }

  /** Move a process (all its threads) into the workload's cgroup. */
  addProcess(name: string, pid: number): void {
    const w = this.get(name);
    try {
      writeFileSync(path.join(w.cgroupPath, 'cgroup.procs'), `${pid}\n`);
    } catch (err) {
      throw new Error(`move pid ${pid} into workload "${name}": ${(err as Error).message}`);
    }
  }

  /**
   * Forget a workload. A managed one's cgroup is emptied (cgroup.kill) and
   * removed; an adopted cgroup is left as it was.
   */
  remove(name: string): void {
    const w = this.byName.get(name);
    if (!w) return;
    this.byName.delete(name);
    this.byId.delete(w.cgroupId.toString());
    this.identities.release(w.labels);
    this.emit({ kind: 'removed', workload: w });
    if (w.managed) removeCgroup(w.cgroupPath);
  }

  /** Remove every workload, and the managed parent directory when it is empty. */
  close(): void {
    for (const name of [...this.byName.keys()]) this.remove(name);
    try {
      rmdirSync(this.parentDir);
    } catch {}
  }

  get(name: string): Workload {
    const w = this.byName.get(name);
    if (!w) throw new Error(`no workload named "${name}"`);
    return w;
  }

  byCgroupId(id: bigint | string): Workload | undefined {
    return this.byId.get(typeof id === 'string' ? id : id.toString());
  }

  list(): Workload[] {
    return [...this.byName.values()];
  }

  /** Called after every add and remove. Returns the unsubscribe function. */
  onChange(f: (c: WorkloadChange) => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  private add(name: string, dir: string, labels: Labels, managed: boolean): Workload {
    const cgroupId = statSync(dir, { bigint: true }).ino;
    if (this.byId.has(cgroupId.toString())) {
      if (managed) removeCgroup(dir);
      throw new Error(`cgroup ${dir} is workload "${this.byId.get(cgroupId.toString())!.name}" already`);
    }
    const frozen = Object.freeze({ ...labels });
    const w: Workload = {
      name,
      cgroupPath: dir,
      cgroupId,
      labels: frozen,
      identity: this.identities.acquire(frozen),
      managed,
    };
    this.byName.set(name, w);
    this.byId.set(cgroupId.toString(), w);
    this.emit({ kind: 'added', workload: w });
    return w;
  }

  private emit(c: WorkloadChange): void {
    for (const f of this.listeners) f(c);
  }
}

function checkName(name: string): void {
  if (!NAME.test(name)) {
    throw new Error(`workload name "${name}" must be 1-128 letters, digits, ".", "_" or "-"`);
  }
}

function removeCgroup(dir: string): void {
  try {
    writeFileSync(path.join(dir, 'cgroup.kill'), '1');
  } catch {}
  for (let i = 0; i < 100; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      execFileSync('sleep', ['0.02']);
    }
  }
}
