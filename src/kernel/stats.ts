import { readFileSync } from 'node:fs';
import { native } from './native.js';

export interface ProgramStats {
  id: number;
  name: string;
  runCount: number;
  runTimeNs: number;
  verifiedInsns: number;
}

/** Kernel-side counters of a loaded program (non-zero once run-time stats are on). */
export function programStats(fd: number): ProgramStats {
  const i = native().progInfo(fd);
  return {
    id: i.id,
    name: i.name,
    runCount: i.runCount,
    runTimeNs: i.runTimeNs,
    verifiedInsns: i.verifiedInsns,
  };
}

let statsFd: number | undefined;

/** Turn on BPF run-time statistics for as long as this process lives. */
export function enableRunTimeStats(): boolean {
  if (statsFd !== undefined) return true;
  try {
    statsFd = native().enableStats();
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether the kernel is counting program runs now: this process turned the
 * statistics on, or the host did (sysctl kernel.bpf_stats_enabled).
 */
export function runTimeStatsOn(): boolean {
  if (statsFd !== undefined) return true;
  try {
    return readFileSync('/proc/sys/kernel/bpf_stats_enabled', 'latin1').trim() === '1';
  } catch {
    return false;
  }
}
