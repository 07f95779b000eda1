import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

export interface CgroupPathsOptions {
  /** least time between two rescans of the hierarchy (default 100 ms) */
  minRescanMs?: number;
  /** clock in ms, for tests */
  now?: () => number;
}

/** Forget ids known to be gone beyond this many, so the set stays bounded. */
const MAX_GONE = 65536;

/**
 * cgroup v2 id -> path. The id the kernel reports (bpf_get_current_cgroup_id)
 * is the inode number of the cgroup's directory, so walking the cgroup2 mount
 * and stat-ing each directory gives the map. New cgroups appear all the time
 * (every systemd unit, every container), so a miss triggers a rescan, at most
 * one per minRescanMs so that a storm of new ids costs a bounded amount.
 */
export class CgroupPaths {
  private byId = new Map<string, string>();
  private byPath = new Map<string, string>();
  /** ids a scan that began after we first met them did not find: deleted cgroups */
  private gone = new Set<string>();
  /** ids missed since the last scan, with when we first met them */
  private pending = new Map<string, number>();
  private lastScan = Number.NEGATIVE_INFINITY;
  private readonly minRescanMs: number;
  private readonly now: () => number;
  scans = 0;

  /** root: the cgroup2 mount point, or undefined when there is none (every path is then ""). */
  constructor(
    readonly root: string | undefined,
    opts: CgroupPathsOptions = {},
  ) {
    this.minRescanMs = opts.minRescanMs ?? 100;
    this.now = opts.now ?? Date.now;
  }

  /** Path relative to the cgroup2 root ("/" for the root itself), or "" when unknown. */
  path(id: bigint | string): string {
    const key = typeof id === 'string' ? id : id.toString();
    const hit = this.byId.get(key);
    if (hit !== undefined) return hit;
    if (this.root === undefined || this.gone.has(key)) return '';
    const t = this.now();
    if (!this.pending.has(key)) this.pending.set(key, t);
    if (t - this.lastScan < this.minRescanMs) return '';
    this.rescan();
    return this.byId.get(key) ?? '';
  }

  /** The id of a cgroup given by its path relative to the root, or undefined. */
  idOf(rel: string): string | undefined {
    const hit = this.byPath.get(rel);
    if (hit !== undefined || this.root === undefined) return hit;
    try {
      const id = statSync(path.join(this.root, rel), { bigint: true }).ino.toString();
      this.byId.set(id, rel);
      this.byPath.set(rel, id);
      return id;
    } catch {
      return undefined;
    }
  }

  /** Walk the whole hierarchy again; the old map is replaced, so deleted cgroups drop out. */
  rescan(): void {
    if (this.root === undefined) return;
    const started = this.now();
    this.lastScan = started;
    this.scans++;
    const byId = new Map<string, string>();
    const byPath = new Map<string, string>();
    const stack: string[] = ['/'];
    while (stack.length > 0) {
      const rel = stack.pop()!;
      const abs = rel === '/' ? this.root : this.root + rel;
      try {
        const id = statSync(abs, { bigint: true }).ino.toString();
        byId.set(id, rel);
        byPath.set(rel, id);
        for (const d of readdirSync(abs, { withFileTypes: true })) {
          if (d.isDirectory()) stack.push(rel === '/' ? `/${d.name}` : `${rel}/${d.name}`);
        }
      } catch {
        // removed while we walked: it is gone, which the map then says
      }
    }
    this.byId = byId;
    this.byPath = byPath;
    for (const [id, firstSeen] of this.pending) {
      // a cgroup met before this scan began existed then; if the scan missed it, it is gone for good
      if (!byId.has(id) && firstSeen <= started) {
        if (this.gone.size >= MAX_GONE) this.gone.clear();
        this.gone.add(id);
      }
    }
    this.pending.clear();
  }

  get size(): number {
    return this.byId.size;
  }
}
