import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { type NamespaceName, NS_NAMES } from '../sensors/process/records.js';

/** USER_HZ: the unit of /proc/PID/stat times; 100 on every Linux architecture we run on. */
export const CLK_TCK = 100;
const NS_PER_TICK = BigInt(1e9 / CLK_TCK);

/** What /proc says about one process (thread group). */
export interface ProcSnapshot {
  pid: number;
  ppid: number;
  /** state letter from stat: R, S, D, Z, ... */
  state: string;
  /** start time since boot in clock ticks (stat field 22) */
  startTicks: bigint;
  /** startTicks in ns since boot (CLOCK_BOOTTIME, tick resolution) */
  startBootNs: bigint;
  uid: number;
  euid: number;
  suid: number;
  gid: number;
  egid: number;
  sgid: number;
  capInheritable: bigint;
  capPermitted: bigint;
  capEffective: bigint;
  /** the pid in each pid namespace, outermost first (status NSpid) */
  nspid: number[];
  /** cmdline split at NUL; empty for kernel threads and zombies */
  argv: string[];
  /** target of the exe link, " (deleted)" suffix included; "" when unreadable */
  exe: string;
  /** inode and links of the executable, read only when it was deleted */
  exeInode?: { number: bigint; links: number };
  cwd: string;
  /** the cgroup v2 path (the "0::" line of /proc/PID/cgroup); undefined without one */
  cgroupPath?: string;
  /** loginuid; 4294967295 when unset */
  auid: number;
  ns: Partial<Record<NamespaceName, number>>;
  kernelThread: boolean;
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function readLink(file: string): string | undefined {
  try {
    return readlinkSync(file);
  } catch {
    return undefined;
  }
}

/** Namespace inode numbers from a /proc/PID/ns directory ("mnt:[4026531832]"); unreadable links are left out. */
export function readNamespaces(nsDir: string): Partial<Record<NamespaceName, number>> {
  const out: Partial<Record<NamespaceName, number>> = {};
  for (const name of NS_NAMES) {
    const link = readLink(`${nsDir}/${name}`);
    const m = link ? /\[(\d+)\]$/.exec(link) : null;
    if (m) out[name] = Number(m[1]);
  }
  return out;
}

/** Parse /proc/PID/stat: comm may hold spaces and parentheses, so fields are counted from the last ')'. */
export function parseStat(text: string): { ppid: number; state: string; startTicks: bigint } | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  // fields[0] is field 3 (state) of proc(5)
  const fields = text.slice(close + 2).split(' ');
  const ppid = Number(fields[1]);
  const start = fields[19];
  if (!Number.isInteger(ppid) || start === undefined || !/^\d+$/.test(start)) return undefined;
  return { ppid, state: fields[0] ?? '?', startTicks: BigInt(start) };
}

export interface ProcStatus {
  uid: [number, number, number];
  gid: [number, number, number];
  capInheritable: bigint;
  capPermitted: bigint;
  capEffective: bigint;
  nspid: number[];
  /** the "Kthread:" line (Linux 6.x); undefined on kernels without it */
  kthread?: boolean;
}

/** Parse the lines of /proc/PID/status that the process cache needs. */
export function parseStatus(text: string): ProcStatus {
  const st: ProcStatus = {
    uid: [0, 0, 0],
    gid: [0, 0, 0],
    capInheritable: 0n,
    capPermitted: 0n,
    capEffective: 0n,
    nspid: [],
  };
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon);
    const val = line.slice(colon + 1).trim();
    switch (key) {
      case 'Uid':
      case 'Gid': {
        const [r, e, s] = val.split(/\s+/).map(Number);
        const ids: [number, number, number] = [r ?? 0, e ?? 0, s ?? 0];
        if (key === 'Uid') st.uid = ids;
        else st.gid = ids;
        break;
      }
      case 'CapInh':
        st.capInheritable = BigInt(`0x${val}`);
        break;
      case 'CapPrm':
        st.capPermitted = BigInt(`0x${val}`);
        break;
      case 'CapEff':
        st.capEffective = BigInt(`0x${val}`);
        break;
      case 'NSpid':
        st.nspid = val.split(/\s+/).map(Number);
        break;
      case 'Kthread':
        st.kthread = val === '1';
        break;
    }
  }
  return st;
}

/** The v2 path from /proc/PID/cgroup (its "0::" line), or undefined on a v1-only host. */
export function parseCgroupFile(text: string): string | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('0::')) return line.slice(3);
  }
  return undefined;
}

/** Split /proc/PID/cmdline at NUL; the trailing NUL does not make an empty last argument. */
export function parseCmdline(text: string): string[] {
  if (text.length === 0) return [];
  const parts = text.split('\0');
  if (parts[parts.length - 1] === '') parts.pop();
  return parts;
}

const DELETED = ' (deleted)';

/**
 * Read one process from procRoot/PID. Returns undefined when it vanished
 * while we read it (or was never there): a race with exit, not an error.
 */
export function readProcess(procRoot: string, pid: number): ProcSnapshot | undefined {
  const dir = `${procRoot}/${pid}`;
  const statText = readText(`${dir}/stat`);
  const statusText = readText(`${dir}/status`);
  if (statText === undefined || statusText === undefined) return undefined;
  const stat = parseStat(statText);
  if (!stat) return undefined;
  const status = parseStatus(statusText);
  const argv = parseCmdline(readText(`${dir}/cmdline`) ?? '');
  const kernelThread = status.kthread ?? (argv.length === 0 && (stat.ppid === 2 || pid === 2));
  const exe = readLink(`${dir}/exe`) ?? '';
  let exeInode: ProcSnapshot['exeInode'];
  if (exe.endsWith(DELETED)) {
    try {
      // stat follows the magic link to the open (deleted) file
      const s = statSync(`${dir}/exe`, { bigint: true });
      exeInode = { number: s.ino, links: Number(s.nlink) };
    } catch {
      // gone meanwhile, or a fake tree: the path says enough
    }
  }
  const cgroup = readText(`${dir}/cgroup`);
  const loginuid = Number((readText(`${dir}/loginuid`) ?? '').trim());
  return {
    pid,
    ppid: stat.ppid,
    state: stat.state,
    startTicks: stat.startTicks,
    startBootNs: stat.startTicks * NS_PER_TICK,
    uid: status.uid[0],
    euid: status.uid[1],
    suid: status.uid[2],
    gid: status.gid[0],
    egid: status.gid[1],
    sgid: status.gid[2],
    capInheritable: status.capInheritable,
    capPermitted: status.capPermitted,
    capEffective: status.capEffective,
    nspid: status.nspid.length > 0 ? status.nspid : [pid],
    argv,
    exe,
    exeInode,
    cwd: readLink(`${dir}/cwd`) ?? '',
    cgroupPath: cgroup === undefined ? undefined : parseCgroupFile(cgroup),
    auid: Number.isInteger(loginuid) && loginuid >= 0 ? loginuid : 4294967295,
    ns: readNamespaces(`${dir}/ns`),
    kernelThread,
  };
}

/**
 * Every user-space process under procRoot, parents before children so that
 * a consumer that links each to its parent always finds the parent first.
 * Kernel threads, zombies (their exit already happened) and processes that
 * vanish while being read are left out.
 */
export function listProcesses(procRoot = '/proc'): ProcSnapshot[] {
  const byPid = new Map<number, ProcSnapshot>();
  for (const name of readdirSync(procRoot)) {
    if (!/^\d+$/.test(name)) continue;
    const p = readProcess(procRoot, Number(name));
    if (!p || p.kernelThread || p.state === 'Z' || p.state === 'X') continue;
    byPid.set(p.pid, p);
  }
  const out: ProcSnapshot[] = [];
  const placed = new Set<number>();
  for (const p of byPid.values()) {
    // walk up to the first placed (or unknown) ancestor, then emit top-down
    const chain: ProcSnapshot[] = [];
    let cur: ProcSnapshot | undefined = p;
    while (cur && !placed.has(cur.pid) && !chain.includes(cur)) {
      chain.push(cur);
      cur = byPid.get(cur.ppid);
    }
    for (let i = chain.length - 1; i >= 0; i--) {
      placed.add(chain[i]!.pid);
      out.push(chain[i]!);
    }
  }
  return out;
}

/** CLOCK_BOOTTIME now, in ns, from procRoot/uptime (10 ms resolution); undefined when unreadable. */
export function readUptimeNs(procRoot = '/proc'): bigint | undefined {
  const text = readText(`${procRoot}/uptime`);
  const m = text ? /^(\d+)\.(\d+)/.exec(text) : null;
  if (!m) return undefined;
  return BigInt(m[1]!) * 1_000_000_000n + BigInt(m[2]!.padEnd(9, '0').slice(0, 9));
}
