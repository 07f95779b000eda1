// Managed workloads (`osprey run`) on the real cgroup v2 tree: the agent
// removes one once a process has been in it and it is empty again.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkloadManager } from '../../src/agent/workloads.js';
import { cgroup2Root } from '../../src/kernel/mounts.js';

const stateDir = mkdtempSync(path.join(os.tmpdir(), 'osprey-workloads-test-'));
after(() => rmSync(stateDir, { recursive: true, force: true }));

test('a workload whose process joined and left before the agent looked is removed at once, not after the join grace', async () => {
  const parentDir = path.join(cgroup2Root(), `osprey-test-workloads-${process.pid}`);
  const m = new WorkloadManager({ parentDir, stateDir, configured: [], log: () => {}, joinGraceMs: 60_000 });
  try {
    m.start();
    const w = m.create('blink', { app: 'blink' });
    // the loop is blocked while the process joins and exits: by the time the agent handles
    // the cgroup's change, it is empty again
    execFileSync('/bin/sh', ['-c', `echo $$ > ${path.join(w.cgroup_path, 'cgroup.procs')}; exit 0`]);
    const t0 = Date.now();
    while (existsSync(w.cgroup_path) && Date.now() - t0 < 3000) await sleep(20);
    assert.equal(existsSync(w.cgroup_path), false, 'the emptied workload is gone');
    assert.deepEqual(m.list(), []);
  } finally {
    // removes the empty workloads; the parent given with parentDir is ours to remove
    m.stop();
    for (const d of [path.join(parentDir, 'blink'), parentDir]) {
      try {
        rmdirSync(d);
      } catch {
        // gone already
      }
    }
  }
});
