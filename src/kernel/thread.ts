/**
 * Priorities of the agent's own threads. Linux gives each thread its own
 * nice value, and /proc/thread-self names the calling thread's id, so a
 * worker thread can step back for the event loop; an unprivileged agent may
 * lower its own priority.
 */
import { readlinkSync } from 'node:fs';
import os from 'node:os';

/** Sets the calling thread's nice value; false when it cannot (no /proc). */
export function niceThisThread(nice: number): boolean {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return false;
    os.setPriority(tid, nice);
    return true;
  } catch {
    return false;
  }
}
