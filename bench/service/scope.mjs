// The benchmark's own cgroup. Every agent is started with --cgroup on it, so
// that on a shared machine other people's processes (test suites, exec
// storms) add no events to the agent's work: everything it handles comes
// from the open loop or the markers, and both run in the cgroup — the loop
// through a wrapper that joins it before exec, the markers opened by a
// long-lived shell in it.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isAlive, killAndWaitSync, sleep, sleepSync } from '../lib/proc.mjs';
import { cleanup } from '../policy/common.mjs';

function cgroup2Root() {
  for (const l of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
    const f = l.split(' ');
    if (f[2] === 'cgroup2') return f[1];
  }
  throw new Error('no cgroup v2 hierarchy is mounted');
}

const shq = (s) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Creates <cgroup2>/osprey-bench-service-PID; removed (its processes killed) at clean-up. */
export function makeScope() {
  const dir = path.join(cgroup2Root(), `osprey-bench-service-${process.pid}`);
  mkdirSync(dir);
  cleanup.add(`cgroup ${dir}`, () => {
    if (!existsSync(dir)) return;
    try {
      writeFileSync(path.join(dir, 'cgroup.kill'), '1');
    } catch {
      // no cgroup.kill (kernel < 5.14): its processes are ours and stopped already
    }
    for (let i = 0; i < 100; i++) {
      try {
        rmdirSync(dir);
        return;
      } catch (err) {
        if (err.code === 'ENOENT') return;
        sleepSync(50);
      }
    }
    rmdirSync(dir);
  });
  return dir;
}

/** A script that joins the cgroup and execs the open loop with its arguments: a drop-in for ctx.driver. */
export function driverInScope(work, driver, cg) {
  const script = path.join(work, 'openloop-in-scope.sh');
  writeFileSync(
    script,
    `#!/bin/sh\necho $$ > ${shq(path.join(cg, 'cgroup.procs'))} || exit 1\nexec ${shq(driver)} "$@"\n`,
    { mode: 0o755 },
  );
  return script;
}

/**
 * A shell in the cgroup that opens (and closes) each path written to its
 * stdin: `: < PATH` runs in the shell itself, so a marker costs one openat
 * and no exec. Resolves once the shell is in the cgroup.
 */
export async function startOpener(cg) {
  const child = spawn(
    'sh',
    ['-c', 'echo $$ > "$0/cgroup.procs" || exit 1; while IFS= read -r f; do : < "$f"; done', cg],
    { stdio: ['pipe', 'ignore', 'inherit'] },
  );
  const pid = child.pid;
  cleanup.add(`stop marker opener (pid ${pid})`, () => {
    child.stdin.destroy();
    if (pid && isAlive(pid)) killAndWaitSync(pid, 'SIGKILL', 5000);
  });
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  const t0 = Date.now();
  for (;;) {
    const procs = readFileSync(path.join(cg, 'cgroup.procs'), 'utf8').split('\n').map(Number);
    if (procs.includes(pid)) break;
    if (exited || Date.now() - t0 > 10000) throw new Error(`the marker opener did not join ${cg}`);
    await sleep(10);
  }
  return {
    pid,
    open(file) {
      if (exited) throw new Error('the marker opener exited');
      child.stdin.write(`${file}\n`);
    },
  };
}
