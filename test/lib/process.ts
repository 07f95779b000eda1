// Runs the process sensor and pipeline in-process, scoped to one test cgroup.
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExportEvent, Process } from '../../src/events/types.js';
import { ProcessPipeline } from '../../src/process/index.js';
import { ProcessSensor } from '../../src/sensors/process/sensor.js';
import { makeTestCgroup } from './bpf.js';

export interface Watch {
  cgroup: string;
  pipeline: ProcessPipeline;
  sensor: ProcessSensor;
  events: ExportEvent[];
  /** Run argv inside the test cgroup; resolves with the exit code/signal of the shell wrapper. */
  run(
    argv: string[],
    opts?: { cwd?: string },
  ): Promise<{ pid: number; code: number | null; signal: string | null }>;
  /** Wait until pred holds over the collected events (draining the ring), or throw. */
  until<T>(pred: (evs: ExportEvent[]) => T | undefined, what: string, ms?: number): Promise<T>;
  stop(): void;
}

export async function watch(tag: string, opts: { argsMax?: number; seed?: boolean } = {}): Promise<Watch> {
  const cg = makeTestCgroup(tag);
  const pipeline = new ProcessPipeline({ nodeName: 'test-node' });
  const events: ExportEvent[] = [];
  if (opts.seed) pipeline.seedFromProc();
  let sensor: ProcessSensor;
  try {
    sensor = ProcessSensor.start({
      scopeCgroup: cg.path,
      argsMax: opts.argsMax,
      onRecords: (recs) => events.push(...pipeline.apply(recs)),
    });
  } catch (err) {
    cg.remove();
    throw err;
  }
  const w: Watch = {
    cgroup: cg.path,
    pipeline,
    sensor,
    events,
    run(argv, runOpts = {}) {
      // the wrapper joins the cgroup, then becomes the command
      const child = spawn('/bin/sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cg.path, ...argv], {
        cwd: runOpts.cwd,
        stdio: 'ignore',
      });
      return new Promise((resolve, reject) => {
        child.once('error', reject);
        child.once('exit', (code, signal) => resolve({ pid: child.pid!, code, signal }));
      });
    },
    async until(pred, what, ms = 5000) {
      const deadline = Date.now() + ms;
      for (;;) {
        sensor.drain();
        const r = pred(events);
        if (r !== undefined && r !== false) return r;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await sleep(20);
      }
    },
    stop() {
      try {
        sensor.stop();
      } finally {
        cg.remove();
      }
    },
  };
  return w;
}

type Exec = { process: Process; parent?: Process };
type Exit = { process: Process; parent?: Process; signal?: string; status?: number };

export function execs(evs: ExportEvent[]): Exec[] {
  return evs.flatMap((e) => ('process_exec' in e ? [e.process_exec as Exec] : []));
}

export function exits(evs: ExportEvent[]): Exit[] {
  return evs.flatMap((e) => ('process_exit' in e ? [e.process_exit as Exit] : []));
}

export function execOf(evs: ExportEvent[], binary: string | RegExp): Exec | undefined {
  return execs(evs).find((e) =>
    typeof binary === 'string' ? e.process.binary === binary : binary.test(e.process.binary),
  );
}

export function exitOf(evs: ExportEvent[], pid: number): Exit | undefined {
  return exits(evs).find((e) => e.process.pid === pid);
}
