import type { Namespaces } from '../events/types.js';
import { type NamespaceName, NS_NAMES } from '../sensors/process/records.js';
import { readNamespaces } from './procfs.js';

export type NamespaceInums = Partial<Record<NamespaceName, number>>;

export interface HostNamespaces {
  inums: NamespaceInums;
  /** where they came from: PID 1, or (when PID 1's links are unreadable) the agent itself */
  source: 'pid1' | 'self' | 'none';
}

/**
 * The host's namespaces, to mark a process's as is_host. PID 1's links can
 * be unreadable even to root (a non-dumpable init, as in some micro-VMs);
 * the agent runs in the host's namespaces by design, so its own are the
 * next best reference, and the source says which was used.
 */
export function readHostNamespaces(procRoot = '/proc'): HostNamespaces {
  const pid1 = readNamespaces(`${procRoot}/1/ns`);
  if (Object.keys(pid1).length > 0) return { inums: pid1, source: 'pid1' };
  const self = readNamespaces(`${procRoot}/self/ns`);
  if (Object.keys(self).length > 0) return { inums: self, source: 'self' };
  return { inums: {}, source: 'none' };
}

/** Most processes share a handful of namespace sets: keep one object per set, up to this many. */
const MAX_INTERNED = 4096;

/**
 * Builds the `ns` object of a Process. Objects are shared between processes
 * with the same namespaces, so they must be treated as read-only.
 */
export class NamespaceTable {
  private readonly interned = new Map<string, Namespaces>();
  /** the last set looked up: consecutive execs nearly always share it, and comparing is cheaper than a key */
  private readonly last: number[] = NS_NAMES.map(() => -1);
  private lastNs: Namespaces = {};

  constructor(private readonly host: NamespaceInums) {}

  get(inums: NamespaceInums): Namespaces {
    let same = true;
    for (let i = 0; i < NS_NAMES.length; i++) {
      if ((inums[NS_NAMES[i]!] ?? 0) !== this.last[i]) {
        same = false;
        break;
      }
    }
    if (same) return this.lastNs;
    let key = '';
    for (let i = 0; i < NS_NAMES.length; i++) {
      const inum = inums[NS_NAMES[i]!] ?? 0;
      this.last[i] = inum;
      key += `${inum},`;
    }
    let ns = this.interned.get(key);
    if (!ns) {
      ns = this.build(inums);
      if (this.interned.size >= MAX_INTERNED) this.interned.clear();
      this.interned.set(key, ns);
    }
    this.lastNs = ns;
    return ns;
  }

  private build(inums: NamespaceInums): Namespaces {
    const ns: Namespaces = {};
    for (const name of NS_NAMES) {
      const inum = inums[name];
      // 0: the kernel has no such namespace (e.g. time before 5.6); protojson would omit it too
      if (!inum) continue;
      ns[name] = this.host[name] === inum ? { inum, is_host: true } : { inum };
    }
    return ns;
  }
}
