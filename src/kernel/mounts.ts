import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';

export interface MountEntry {
  mountPoint: string;
  fsType: string;
}

/** Mounts of this process's mount namespace, from /proc/self/mountinfo. */
export function mounts(): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (!line) continue;
    const [pre, post] = line.split(' - ');
    const mountPoint = unescapeMount(pre!.split(' ')[4]!);
    const fsType = post!.split(' ')[0]!;
    out.push({ mountPoint, fsType });
  }
  return out;
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

/** The cgroup v2 (unified) hierarchy's mount point: /sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts. */
export function cgroup2Root(): string {
  const m = mounts().filter((e) => e.fsType === 'cgroup2');
  if (m.length === 0) {
    throw new Error('no cgroup v2 hierarchy is mounted; mount one (mount -t cgroup2 none /sys/fs/cgroup)');
  }
  const preferred =
    m.find((e) => e.mountPoint === '/sys/fs/cgroup') ??
    m.find((e) => e.mountPoint.startsWith('/sys/fs/cgroup'));
  return (preferred ?? m[0]!).mountPoint;
}

const REQUIRED: { fsType: string; path: string; source: string }[] = [
  { fsType: 'bpf', path: '/sys/fs/bpf', source: 'bpf' },
  { fsType: 'tracefs', path: '/sys/kernel/tracing', source: 'tracefs' },
  { fsType: 'securityfs', path: '/sys/kernel/security', source: 'securityfs' },
];

/**
 * Mount bpffs, tracefs and securityfs where they are expected, unless they
 * already are. Idempotent. Returns what it mounted.
 */
export function ensureMounts(): string[] {
  const have = mounts();
  const done: string[] = [];
  for (const r of REQUIRED) {
    if (have.some((m) => m.mountPoint === r.path && m.fsType === r.fsType)) continue;
    if (!existsSync(r.path)) mkdirSync(r.path, { recursive: true });
    const res = spawnSync('mount', ['-t', r.fsType, r.source, r.path], { encoding: 'utf8' });
    if (res.status !== 0) {
      throw new Error(`mount ${r.fsType} on ${r.path}: ${(res.stderr || res.error?.message || '').trim()}`);
    }
    done.push(r.path);
  }
  return done;
}

/** The tracefs mount point, or undefined when none is mounted. */
export function tracefsRoot(): string | undefined {
  const m = mounts().find((e) => e.fsType === 'tracefs');
  return m?.mountPoint;
}
