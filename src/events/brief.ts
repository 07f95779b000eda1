/**
 * Brief processes: a process as the events it did not start name it, without
 * its capability sets and namespaces (most of its JSON), each linked to the
 * full process it was made from (see ProcessCache in src/process/cache.ts).
 */
import { slot } from './kept.js';
import type { Process } from './types.js';

/** The full process behind a brief one (ProcessEntry.brief, thread()), or the process itself. */
const FULL_OF = slot<Process>();

/** The process with every detail the cache has: the one a brief process was made from, or p itself. */
export function fullProcess(p: Process): Process {
  return FULL_OF.get(p) ?? p;
}

/** p's brief form with the thread tid: no cap, no ns (kept in place as undefined: the same shape, no key written). */
export function briefProcess(p: Process, tid: number): Process {
  const b: Process = { ...p, tid, cap: undefined, ns: undefined };
  FULL_OF.set(b, p);
  return b;
}
