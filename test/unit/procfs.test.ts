import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fullProcess } from '../../src/events/brief.js';
import type { Process } from '../../src/events/types.js';
import {
  listProcesses,
  makeExecId,
  ProcessPipeline,
  parseCmdline,
  parseStat,
  parseStatus,
  readProcess,
  readUptimeNs,
} from '../../src/process/index.js';

interface FakeProc {
  pid: number;
  ppid: number;
  comm?: string;
  state?: string;
  startTicks: number;
  cmdline: string[];
  exe?: string;
  cwd?: string;
  uid?: [number, number, number];
  cgroup?: string;
  loginuid?: number;
  kthread?: boolean;
}

function statLine(p: FakeProc): string {
  // 52 fields as proc(5) lists them; only ppid (4) and starttime (22) matter here
  const f: string[] = new Array(50).fill('0');
  f[0] = p.state ?? 'S';
  f[1] = String(p.ppid);
  f[19] = String(p.startTicks);
  return `${p.pid} (${p.comm ?? 'x'}) ${f.join(' ')}\n`;
}

function writeFake(root: string, p: FakeProc): void {
  const dir = path.join(root, String(p.pid));
  mkdirSync(path.join(dir, 'ns'), { recursive: true });
  writeFileSync(path.join(dir, 'stat'), statLine(p));
  const [r, e, s] = p.uid ?? [0, 0, 0];
  writeFileSync(
    path.join(dir, 'status'),
    [
      `Name:\t${p.comm ?? 'x'}`,
      `Pid:\t${p.pid}`,
      `PPid:\t${p.ppid}`,
      `Uid:\t${r}\t${e}\t${s}\t${e}`,
      `Gid:\t${r}\t${e}\t${s}\t${e}`,
      `NSpid:\t${p.pid}`,
      'CapInh:\t0000000000000000',
      'CapPrm:\t0000000000200001',
      'CapEff:\t0000000000200000',
      // older kernels have no Kthread line: pid 3 below is found by the cmdline heuristic
      ...(p.kthread === undefined ? [] : [`Kthread:\t${p.kthread ? 1 : 0}`]),
      '',
    ].join('\n'),
  );
  writeFileSync(path.join(dir, 'cmdline'), p.cmdline.map((a) => `${a}\0`).join(''));
  if (p.exe !== undefined) symlinkSync(p.exe, path.join(dir, 'exe'));
  if (p.cwd !== undefined) symlinkSync(p.cwd, path.join(dir, 'cwd'));
  writeFileSync(path.join(dir, 'cgroup'), `1:name=systemd:/\n0::${p.cgroup ?? '/'}\n`);
  writeFileSync(path.join(dir, 'loginuid'), String(p.loginuid ?? 4294967295));
  symlinkSync('mnt:[4026531832]', path.join(dir, 'ns', 'mnt'));
  symlinkSync(`net:[${p.pid === 1 ? 4026531840 : 4026532999}]`, path.join(dir, 'ns', 'net'));
}

let tmp: string;
let procRoot: string;
let cgRoot: string;

before(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'osprey-procfs-'));
  procRoot = path.join(tmp, 'proc');
  cgRoot = path.join(tmp, 'cgroup');
  mkdirSync(path.join(cgRoot, 'system.slice', 'sshd.service'), { recursive: true });
  mkdirSync(procRoot);
  writeFileSync(path.join(procRoot, 'uptime'), '1000.00 1900.00\n');
  const procs: FakeProc[] = [
    { pid: 1, ppid: 0, startTicks: 1, cmdline: ['/sbin/init'], exe: '/usr/lib/systemd/systemd', cwd: '/' },
    { pid: 2, ppid: 0, startTicks: 1, cmdline: [], comm: 'kthreadd', kthread: true },
    { pid: 3, ppid: 2, startTicks: 2, cmdline: [], comm: 'kworker/0:0' },
    // children with lower pids than their parents: the order must come from the tree, not the pids
    {
      pid: 900,
      ppid: 1,
      startTicks: 500,
      cmdline: ['sshd: /usr/sbin/sshd -D'],
      exe: '/usr/sbin/sshd',
      cwd: '/',
      cgroup: '/system.slice/sshd.service',
    },
    {
      pid: 40,
      ppid: 900,
      startTicks: 90_000,
      comm: 'bash) (x',
      cmdline: ['-bash', 'with space'],
      exe: '/usr/bin/bash',
      cwd: '/home/u',
      uid: [1000, 1000, 1000],
      loginuid: 1000,
    },
    {
      pid: 30,
      ppid: 40,
      startTicks: 95_000,
      cmdline: ['./a.out'],
      exe: '/home/u/a.out (deleted)',
      cwd: '/home/u',
    },
    { pid: 20, ppid: 40, state: 'Z', startTicks: 96_000, cmdline: [] },
  ];
  for (const p of procs) writeFake(procRoot, p);
  // a pid directory without files: vanished while we looked
  mkdirSync(path.join(procRoot, '77'));
});

after(() => rmSync(tmp, { recursive: true, force: true }));

describe('procfs parsers', () => {
  test('stat: fields counted from the last ")", whatever comm holds', () => {
    const p = parseStat('40 (bash) (x) S 900 40 40 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 90000 1 2 3\n');
    assert.deepEqual(p, { ppid: 900, state: 'S', startTicks: 90000n });
    assert.equal(parseStat('garbage'), undefined);
  });

  test('status: ids, capabilities, NSpid, Kthread', () => {
    const s = parseStatus(
      'Uid:\t1000\t0\t2\t0\nGid:\t5\t6\t7\t6\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t0000000000000001\nNSpid:\t4242\t7\nKthread:\t0\n',
    );
    assert.deepEqual(s.uid, [1000, 0, 2]);
    assert.deepEqual(s.gid, [5, 6, 7]);
    assert.equal(s.capPermitted, 0x1ffffffffffn);
    assert.equal(s.capEffective, 1n);
    assert.deepEqual(s.nspid, [4242, 7]);
    assert.equal(s.kthread, false);
  });

  test('cmdline: NUL-split without a phantom last argument', () => {
    assert.deepEqual(parseCmdline('a\0b c\0\0'), ['a', 'b c', '']);
    assert.deepEqual(parseCmdline(''), []);
  });

  test('uptime', () => {
    assert.equal(readUptimeNs(procRoot), 1_000_000_000_000n);
  });
});

describe('listProcesses on a fake tree', () => {
  test('skips kernel threads, zombies and vanished pids; parents come first', () => {
    const list = listProcesses(procRoot);
    const pids = list.map((p) => p.pid);
    assert.deepEqual(
      [...pids].sort((a, b) => a - b),
      [1, 30, 40, 900],
    );
    for (const p of list) {
      const parentAt = pids.indexOf(p.ppid);
      assert.ok(parentAt < pids.indexOf(p.pid), `${p.ppid} must come before ${p.pid}`);
    }
  });

  test('reads what the cache needs', () => {
    const p = readProcess(procRoot, 40)!;
    assert.equal(p.ppid, 900);
    assert.deepEqual(p.argv, ['-bash', 'with space']);
    assert.equal(p.exe, '/usr/bin/bash');
    assert.equal(p.cwd, '/home/u');
    assert.equal(p.uid, 1000);
    assert.equal(p.auid, 1000);
    assert.equal(p.cgroupPath, '/');
    assert.equal(p.startBootNs, 900_000_000_000n);
    assert.deepEqual(p.ns, { mnt: 4026531832, net: 4026532999 });
    assert.equal(readProcess(procRoot, 77), undefined);
    assert.equal(readProcess(procRoot, 12345), undefined);
  });
});

describe('ProcessPipeline.seedFromProc', () => {
  test('seeds the fake tree with ancestry, flags procFS and exec_ids from the start time', () => {
    const pl = new ProcessPipeline({ nodeName: 'n1', procRoot, cgroupRoot: cgRoot });
    assert.equal(pl.seedFromProc(), 4);
    const bash = pl.cache.get(40)!;
    const sshd = pl.cache.get(900)!;
    const init = pl.cache.get(1)!;
    assert.equal(bash.process.exec_id, makeExecId('n1', 900_000_000_000n, 40));
    assert.equal(bash.process.flags, 'procFS');
    assert.equal(bash.process.binary, '/usr/bin/bash');
    assert.equal(bash.process.arguments, '"with space"');
    assert.equal(bash.parentExecId, sshd.process.exec_id);
    assert.equal(sshd.parentExecId, init.process.exec_id);
    assert.equal(init.parentExecId, undefined);
    assert.deepEqual(sshd.process.workload, {
      // the id of a cgroup is its directory's inode
      cgroup_id: String(statSync(path.join(cgRoot, 'system.slice/sshd.service')).ino),
      cgroup_path: '/system.slice/sshd.service',
    });
    assert.deepEqual(bash.process.cap?.permitted, ['CAP_CHOWN', 'CAP_SYS_ADMIN']);
    assert.deepEqual(bash.process.ns, {
      mnt: { inum: 4026531832, is_host: true },
      net: { inum: 4026532999 },
    });
    assert.deepEqual(
      pl.cache.ancestors(pl.cache.get(30)!.process.exec_id).map((p) => p.pid),
      [40, 900, 1],
    );
    // booted 1000 s ago (uptime); bash started 900 s after boot
    const started = Date.parse(bash.process.start_time);
    assert.ok(Math.abs(started - (Date.now() - 100_000)) < 1000, bash.process.start_time);
    assert.equal(pl.cache.get(30)!.process.binary, '/home/u/a.out (deleted)');
    assert.equal(pl.seedFromProc(), 0, 'seeding twice adds nothing');
  });

  test('a kernel record for a seeded process finds it by pid', () => {
    const pl = new ProcessPipeline({ nodeName: 'n1', procRoot, cgroupRoot: cgRoot });
    pl.seedFromProc();
    const bash = pl.cache.get(40)!.process;
    pl.apply([
      {
        kind: 'fork',
        ktime: 5n,
        cpu: 0,
        pid: 41,
        tid: 41,
        ppid: 40,
        startTime: 5n,
        parentStartTime: 1n,
        cgroupId: 1n,
      },
    ]);
    assert.equal(pl.cache.get(41)?.parentExecId, bash.exec_id);
    assert.equal(pl.cache.get(41)?.process.binary, '/usr/bin/bash');
    const [ev] = pl.apply([
      {
        kind: 'exit',
        ktime: 9n,
        cpu: 0,
        pid: 40,
        tid: 40,
        ppid: 900,
        startTime: 3n,
        exitCode: 0,
        cgroupId: 1n,
      },
    ]);
    const exited = (ev as { process_exit: { process: Process } }).process_exit.process;
    assert.equal(fullProcess(exited), bash);
    assert.equal(exited.cap, undefined, 'brief: cap and ns were in its exec (or, seeded, in the store)');
  });
});

describe('seedFromProc on this machine', () => {
  test('finds this test process with its parent and its cgroup', () => {
    const pl = new ProcessPipeline({ nodeName: 'real' });
    assert.ok(pl.seedFromProc() > 1);
    const me = pl.cache.get(process.pid);
    assert.ok(me, 'this process is seeded');
    assert.equal(me.process.flags, 'procFS');
    assert.equal(me.process.binary, realpathSync(process.execPath));
    assert.equal(me.process.ppid, process.ppid);
    const parent = pl.cache.get(process.ppid);
    assert.ok(parent, 'its parent is seeded');
    assert.equal(me.parentExecId, parent.process.exec_id);
    const v2 = /^0::(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'));
    if (v2) assert.equal(me.process.workload?.cgroup_path, v2[1]);
  });

  test('a process running a deleted binary shows " (deleted)" and the inode', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'osprey-deleted-'));
    const bin = path.join(dir, 'sleepy');
    copyFileSync('/bin/sleep', bin);
    const child = spawn(bin, ['30'], { stdio: 'ignore' });
    try {
      await once(child, 'spawn');
      unlinkSync(bin);
      const p = readProcess('/proc', child.pid!)!;
      assert.equal(p.exe, `${realpathSync(dir)}/sleepy (deleted)`);
      assert.equal(p.exeInode?.links, 0);
    } finally {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
