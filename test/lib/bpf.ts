// Helpers for tests that check what is loaded in the kernel.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import { cgroup2Root } from '../../src/kernel/mounts.js';

export interface LoadedProgram {
  id: number;
  name?: string;
  type: string;
}

/** Programs loaded in the kernel now, from bpftool. */
export function loadedPrograms(): LoadedProgram[] {
  return JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' })) as LoadedProgram[];
}

export function programLoaded(id: number): boolean {
  return loadedPrograms().some((p) => p.id === id);
}

export function countPrograms(name: string): number {
  return loadedPrograms().filter((p) => p.name === name).length;
}

let seq = 0;

/** A fresh cgroup v2 directory for one test; remove() kills what is left in it and removes it. */
export function makeTestCgroup(tag: string): { path: string; remove: () => void } {
  const dir = path.join(cgroup2Root(), `osprey-test-${tag}-${process.pid}-${seq++}`);
  mkdirSync(dir);
  return {
    path: dir,
    remove() {
      try {
        execFileSync('sh', ['-c', `[ -f ${dir}/cgroup.kill ] && echo 1 > ${dir}/cgroup.kill || true`]);
      } catch {}
      for (let i = 0; i < 50; i++) {
        try {
          rmdirSync(dir);
          return;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
          execFileSync('sleep', ['0.05']);
        }
      }
    },
  };
}
