// The process lifecycle sensor end to end on the real kernel: each test runs
// its processes in its own cgroup, with the sensor scoped to that cgroup.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot } from '../../src/kernel/native.js';
import { makeTestCgroup } from '../lib/bpf.js';
import { execOf, execs, exitOf, watch } from '../lib/process.js';

let tmp: string;

before(() => {
  tmp = mkdtempSync('/tmp/osprey-proc-');
  chmodSync(tmp, 0o755);
});

after(() => {
  rmSync(tmp, { recursive: true, force: true });
});

test('exec of a known binary: path, arguments, cwd, uid, credentials, namespaces, cgroup', async () => {
  const w = await watch('exec');
  try {
    const r = await w.run(
      ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '/usr/bin/echo', 'hello', 'big world'],
      {
        cwd: '/usr/share',
      },
    );
    assert.equal(r.code, 0);
    const ev = await w.until((evs) => execOf(evs, '/usr/bin/echo'), 'exec of echo');
    const p = ev.process;
    assert.equal(p.arguments, 'hello "big world"');
    assert.equal(p.cwd, '/usr/share');
    assert.equal(p.uid, 65534);
    assert.equal(p.process_credentials?.euid, 65534);
    assert.equal(p.process_credentials?.gid, 65534);
    assert.match(p.flags, /execve/);
    assert.equal(p.pid, r.pid);
    assert.ok(Buffer.from(p.exec_id, 'base64').toString().startsWith(`test-node:`));
    assert.ok(p.ns?.mnt?.is_host, 'host mount namespace');
    assert.equal(p.workload?.cgroup_path, `/${path.basename(w.cgroup)}`);
    // sh -> setpriv -> echo is one process exec'ing twice; its parent is this test
    assert.equal(ev.process.ppid, process.pid);
    assert.ok(ev.process.parent_exec_id);
    const setpriv = execOf(w.events, '/usr/bin/setpriv');
    assert.equal(setpriv?.process.pid, r.pid);
    assert.equal(setpriv?.process.uid, 0);
    const exit = await w.until((evs) => exitOf(evs, r.pid), 'exit of echo');
    assert.equal(exit.status, 0);
    assert.equal(exit.signal ?? '', '');
    assert.equal(exit.process.exec_id, p.exec_id);
  } finally {
    w.stop();
  }
});

test('relative path exec is resolved as the kernel resolved it', async () => {
  const w = await watch('relative');
  try {
    await w.run(['./true'], { cwd: '/usr/bin' });
    const ev = await w.until((evs) => execOf(evs, '/usr/bin/true'), 'exec of ./true');
    assert.equal(ev.process.cwd, '/usr/bin');
    // the kernel's process table held it while it lived, and dropped it at exit
    await w.until((evs) => exitOf(evs, ev.process.pid), 'exit of true');
    assert.equal(w.sensor.processTableEntry(ev.process.pid), undefined);
  } finally {
    w.stop();
  }
});

test('symlinked binary is reported by its real path', async () => {
  const link = path.join(tmp, 'mytrue');
  symlinkSync('/usr/bin/true', link);
  const w = await watch('symlink');
  try {
    await w.run([link, 'via-link']);
    const ev = await w.until((evs) => execOf(evs, '/usr/bin/true'), 'exec through the symlink');
    assert.equal(ev.process.arguments, 'via-link');
  } finally {
    w.stop();
  }
});

test('shell script: the script is the binary and the interpreter is visible', async () => {
  const script = path.join(tmp, 'job.sh');
  writeFileSync(script, '#!/bin/sh\nexit 3\n');
  chmodSync(script, 0o755);
  const w = await watch('script');
  try {
    const r = await w.run([script, 'alpha', 'beta']);
    assert.equal(r.code, 3);
    const ev = await w.until((evs) => execOf(evs, script), 'exec of the script');
    assert.equal(ev.process.interpreter, '/usr/bin/dash');
    assert.equal(ev.process.arguments, 'alpha beta');
    const exit = await w.until((evs) => exitOf(evs, r.pid), 'exit of the script');
    assert.equal(exit.status, 3);
  } finally {
    w.stop();
  }
});

test('a child forked without exec has the right parent, and so does its later exec', async () => {
  const w = await watch('fork');
  try {
    // first subshell: forks (no exec) and runs a grandchild; second: forks, then execs
    await w.run([
      '/bin/sh',
      '-c',
      '( /usr/bin/true grandchild; exit 0 ); ( sleep 0.1; exec /usr/bin/true child-exec ); exit 0',
    ]);
    const byArgs = (a: string) => (evs: typeof w.events) =>
      execs(evs).find((e) => e.process.binary === '/usr/bin/true' && e.process.arguments === a);
    const grandchild = await w.until(byArgs('grandchild'), 'exec of the grandchild');
    const childExec = await w.until(byArgs('child-exec'), 'exec in the forked child');
    const shell = execOf(w.events, '/usr/bin/dash');
    assert.ok(shell);
    // the grandchild's parent is the forked subshell, which never exec'd
    const forked = w.pipeline.cache.byExecId(grandchild.process.parent_exec_id!);
    assert.ok(forked, 'the forked subshell is in the cache');
    assert.match(forked.process.flags, /clone/);
    assert.equal(forked.process.binary, '/usr/bin/dash');
    assert.notEqual(forked.process.pid, shell.process.pid);
    assert.equal(forked.process.parent_exec_id, shell.process.exec_id);
    assert.equal(grandchild.parent?.exec_id, forked.process.exec_id);
    // the second subshell exec'd: its parent is the shell that forked it
    assert.equal(childExec.parent?.exec_id, shell.process.exec_id);
    assert.notEqual(childExec.process.pid, shell.process.pid);
  } finally {
    w.stop();
  }
});

test('exit by status and by signal, once per process', async () => {
  const w = await watch('exit');
  try {
    const a = await w.run(['/bin/sh', '-c', 'exit 7']);
    const b = await w.run(['/bin/sh', '-c', 'kill -KILL $$']);
    assert.equal(b.signal, 'SIGKILL');
    const ea = await w.until((evs) => exitOf(evs, a.pid), 'exit 7');
    const eb = await w.until((evs) => exitOf(evs, b.pid), 'killed');
    assert.equal(ea.status, 7);
    assert.equal(eb.signal, 'SIGKILL');
    // a multi-threaded process exits once: node's worker threads
    const c = await w.run([
      process.execPath,
      '-e',
      'new (require("worker_threads").Worker)("setTimeout(()=>{},50)", {eval:true})',
    ]);
    await w.until((evs) => exitOf(evs, c.pid), 'exit of node');
    await sleep(100);
    w.pipeline.cache; // keep the pipeline alive until here
    const n = w.events.filter(
      (e) => 'process_exit' in e && (e.process_exit as { process: { pid: number } }).process.pid === c.pid,
    );
    assert.equal(n.length, 1);
  } finally {
    w.stop();
  }
});

test('a process that existed before the agent started is seeded with its parent', async () => {
  const cg = makeTestCgroup('seed-pre');
  // start the long-lived process first, under a shell that stays its parent
  const child = spawn('/bin/sh', ['-c', `echo $$ > "${cg.path}/cgroup.procs"; sleep 30 & echo $!; wait`], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  try {
    const sleepPid = await new Promise<number>((resolve) =>
      child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))),
    );
    const w = await watch('seed', { seed: true });
    try {
      const seeded = w.pipeline.cache.get(sleepPid);
      assert.ok(seeded, 'sleep is in the cache');
      assert.match(seeded.process.flags, /procFS/);
      assert.equal(seeded.process.binary, '/usr/bin/sleep');
      assert.equal(seeded.process.arguments, '30');
      const parent = w.pipeline.cache.get(child.pid!);
      assert.ok(parent, 'its shell is in the cache');
      assert.equal(parent.process.binary, '/usr/bin/dash');
      assert.equal(seeded.process.parent_exec_id, parent.process.exec_id);
      assert.ok(w.pipeline.cache.ancestors(seeded.process.exec_id).some((a) => a.pid === child.pid));
      // and the kernel's process table learns it too, for policy programs
      const seededProcs = [seeded, parent].map((e) => ({
        pid: e.process.pid,
        ppid: e.process.ppid ?? 0,
        binary: e.process.binary,
        startNs: 0n,
      }));
      assert.equal(w.sensor.seedProcessTable(seededProcs), 2);
      assert.equal(w.sensor.processTableEntry(sleepPid)?.binary, '/usr/bin/sleep');
    } finally {
      w.stop();
    }
  } finally {
    cg.remove(); // kills the shell and its sleep
  }
});

test('argv longer than the cap is truncated and flagged', async () => {
  const w = await watch('argv', { argsMax: 256 });
  try {
    const args = Array.from({ length: 100 }, (_, i) => `arg-${String(i).padStart(5, '0')}`);
    await w.run(['/usr/bin/true', ...args]);
    const ev = await w.until((evs) => execOf(evs, '/usr/bin/true'), 'exec of true');
    assert.match(ev.process.flags, /truncArgs/);
    assert.ok(ev.process.arguments.startsWith('arg-00000 arg-00001'));
    assert.ok(ev.process.arguments.length < 256);
  } finally {
    w.stop();
  }
});

test('a setuid binary is flagged', async () => {
  const bin = path.join(tmp, 'suid-id');
  copyFileSync('/usr/bin/id', bin);
  chmodSync(bin, 0o4755);
  const w = await watch('setuid');
  try {
    await w.run(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', bin]);
    const ev = await w.until((evs) => execOf(evs, bin), 'exec of the setuid copy');
    assert.equal(ev.process.uid, 65534);
    assert.equal(ev.process.binary_properties?.setuid, 0);
    assert.equal(ev.process.process_credentials?.euid, 0);
    // and a plain binary run the same way is not
    await w.run(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '/usr/bin/id']);
    const plain = await w.until((evs) => execOf(evs, '/usr/bin/id'), 'exec of id');
    assert.equal(plain.process.binary_properties?.setuid, undefined);
  } finally {
    w.stop();
  }
});

test('exec of a memfd is flagged as a file with no links', async () => {
  const helper = path.join(tmp, 'memfd_exec');
  execFileSync('cc', ['-O2', '-o', helper, path.join(repoRoot, 'test/helpers/memfd_exec.c')]);
  const w = await watch('memfd');
  try {
    const r = await w.run([helper, '/usr/bin/true', 'from-memfd']);
    assert.equal(r.code, 0);
    const ev = await w.until((evs) => execOf(evs, /memfd:osprey-test/), 'exec of the memfd');
    assert.equal(ev.process.binary_properties?.file?.inode?.links, 0);
    assert.match(ev.process.binary, /\(deleted\)$/);
    assert.equal(ev.process.arguments, 'from-memfd');
  } finally {
    w.stop();
  }
});
