// A TracingPolicy loaded through the engine as the agent loads it, scoped to
// a test cgroup beside the process sensor, and the events its records make.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeEvent } from '../../src/events/encode.js';
import {
  buildTracingEvent,
  type EventProcess,
  type KprobeArgument,
  type ProcessKprobe,
  type ProcessTracepoint,
} from '../../src/events/tracing.js';
import type { Process } from '../../src/events/types.js';
import type { CompiledPolicy } from '../../src/policy/compile.js';
import { PolicyProgram, type TracingRecord } from '../../src/sensors/tracing/index.js';
import { exitOf, type Watch, watch } from './process.js';

export interface Loaded {
  w: Watch;
  prog: PolicyProgram;
  records: TracingRecord[];
}

/** Run argv inside the cgroup; with gate, `onPid` runs before the process is let go. */
export function runIn(
  cgroup: string,
  argv: string[],
  onPid?: (pid: number) => void | Promise<void>,
): Promise<{ pid: number; code: number | null; signal: string | null }> {
  const child = spawn('/bin/sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup, ...argv], {
    stdio: ['pipe', 'ignore', 'ignore'],
    env: onPid ? { ...process.env, GATE: '1' } : process.env,
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('spawn', async () => {
      child.stdin.on('error', () => {});
      try {
        if (onPid) await onPid(child.pid!);
        child.stdin.end(onPid ? 'g' : undefined);
      } catch (err) {
        child.kill('SIGKILL');
        reject(err);
      }
    });
    child.once('close', (code, signal) => resolve({ pid: child.pid!, code, signal }));
  });
}

export function load(w: Watch, c: CompiledPolicy, records: TracingRecord[]): PolicyProgram {
  return PolicyProgram.load(c.tables, {
    scopeCgroup: w.cgroup,
    procsMapFd: w.sensor.processTableFd(),
    onRecords: (r) => records.push(...r),
  });
}

export async function withPolicy(
  tag: string,
  c: CompiledPolicy,
  body: (l: Loaded) => Promise<void>,
): Promise<void> {
  const w = await watch(tag);
  const records: TracingRecord[] = [];
  let prog: PolicyProgram | undefined;
  try {
    prog = load(w, c, records);
    await body({ w, prog, records });
  } finally {
    try {
      prog?.close();
    } finally {
      w.stop();
    }
  }
}

/** An event as its JSON line reads back. */
export interface Ev {
  process_kprobe?: ProcessKprobe;
  process_tracepoint?: ProcessTracepoint;
  node_name: string;
}

export function proc(p: EventProcess | Process | undefined): Process {
  assert.ok(p && 'binary' in p, `no cached process: ${JSON.stringify(p)}`);
  return p;
}

export function bytesArg(a: KprobeArgument | undefined): string | undefined {
  return a && 'bytes_arg' in a ? a.bytes_arg : undefined;
}

/**
 * The JSON events of the records of `pids`, built once the process sensor has
 * reported the exit of `exitPid` (so the cache knows every process involved).
 */
export async function eventsOf(
  l: { w: Watch; prog: PolicyProgram; records: TracingRecord[] },
  c: CompiledPolicy,
  exitPid: number,
  pids: ReadonlySet<number>,
): Promise<Ev[]> {
  await l.w.until((evs) => exitOf(evs, exitPid), `exit of ${exitPid}`);
  // records of the last syscalls may be a wake-up behind
  await sleep(50);
  l.prog.drain();
  return l.records
    .filter((r) => pids.has(r.pid))
    .map((r) => JSON.parse(encodeEvent(buildTracingEvent(r, c.meta, l.w.pipeline.cache, 'test-node'))) as Ev);
}

/** pids of the processes the sensor saw start in the cgroup (execs and the exits of forks). */
export function pidsSeen(w: Watch): Set<number> {
  const out = new Set<number>();
  for (const e of w.events) {
    const x = e as { process_exec?: { process: Process }; process_exit?: { process: Process } };
    const p = x.process_exec?.process ?? x.process_exit?.process;
    if (p) out.add(p.pid);
  }
  return out;
}
