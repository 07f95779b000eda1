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

/**
 * p as the thread tid, with the given cap and ns, made by one object literal
 * in the process builder's key order: a copy by spread kept its fields out of
 * the object, and with the private fields the encoder adds on top V8 turned
 * it into a dictionary (~4× the memory, slow to read): an exec storm's agent
 * held ~30 MB more.
 */
function copyProcess(p: Process, tid: number, cap: Process['cap'], ns: Process['ns']): Process {
  return {
    exec_id: p.exec_id,
    pid: p.pid,
    uid: p.uid,
    cwd: p.cwd,
    binary: p.binary,
    arguments: p.arguments,
    flags: p.flags,
    start_time: p.start_time,
    auid: p.auid,
    parent_exec_id: p.parent_exec_id,
    cap,
    ns,
    tid,
    process_credentials: p.process_credentials,
    binary_properties: p.binary_properties,
    interpreter: p.interpreter,
    ppid: p.ppid,
    workload: p.workload,
    refcnt: p.refcnt,
  };
}

/** p's brief form with the thread tid: no cap, no ns (kept as undefined: the same shape, no key written). */
export function briefProcess(p: Process, tid: number): Process {
  const b = copyProcess(p, tid, undefined, undefined);
  FULL_OF.set(b, p);
  return b;
}

/** p as another of its threads (cap and ns as p has them). */
export function threadProcess(p: Process, tid: number): Process {
  return copyProcess(p, tid, p.cap, p.ns);
}
