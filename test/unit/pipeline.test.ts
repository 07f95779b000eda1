import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fullProcess } from '../../src/events/brief.js';
import { encodeEvent, processJson } from '../../src/events/encode.js';
import { type ExportEvent, eventType, type ProcessExec, type ProcessExit } from '../../src/events/types.js';
import { calibrate, measureRealtimeOffsetNs } from '../../src/process/clock.js';
import {
  CgroupPaths,
  ktimeToTime,
  ktimeToWallNs,
  makeExecId,
  ProcessPipeline,
  parseExecId,
  wallNsToTime,
} from '../../src/process/index.js';
import {
  ExecFlags,
  type ExecRecord,
  type ExitRecord,
  type ForkRecord,
  type NamespaceName,
  NS_NAMES,
} from '../../src/sensors/process/records.js';

const NODE = 'node-a';
const HOST_MNT = 4026531832;
const HOST_NET = 4026531840;

let tmp: string;
let procRoot: string;
let cgRoot: string;

before(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'osprey-pipeline-'));
  // a /proc with only PID 1's namespace links: the host's
  procRoot = path.join(tmp, 'proc');
  mkdirSync(path.join(procRoot, '1', 'ns'), { recursive: true });
  symlinkSync(`mnt:[${HOST_MNT}]`, path.join(procRoot, '1', 'ns', 'mnt'));
  symlinkSync(`net:[${HOST_NET}]`, path.join(procRoot, '1', 'ns', 'net'));
  cgRoot = path.join(tmp, 'cgroup');
  mkdirSync(path.join(cgRoot, 'system.slice', 'ssh.service'), { recursive: true });
});

after(() => rmSync(tmp, { recursive: true, force: true }));

function pipeline(
  extra: {
    maxExited?: number;
    realpath?: (p: string) => string;
    caps?: boolean;
    namespaces?: boolean;
    capsNsEveryEvent?: boolean;
  } = {},
): ProcessPipeline {
  return new ProcessPipeline({
    nodeName: NODE,
    procRoot,
    cgroupRoot: cgRoot,
    realpath: extra.realpath ?? ((p) => p),
    ...(extra.maxExited === undefined ? {} : { maxExited: extra.maxExited }),
    ...(extra.caps === undefined ? {} : { caps: extra.caps }),
    ...(extra.namespaces === undefined ? {} : { namespaces: extra.namespaces }),
    ...(extra.capsNsEveryEvent === undefined ? {} : { capsNsEveryEvent: extra.capsNsEveryEvent }),
  });
}

function ns(over: Partial<Record<NamespaceName, number>> = {}): Record<NamespaceName, number> {
  const out = {} as Record<NamespaceName, number>;
  NS_NAMES.forEach((n, i) => {
    out[n] = over[n] ?? 4026532000 + i;
  });
  return out;
}

function execRec(over: Partial<ExecRecord> = {}): ExecRecord {
  const pid = over.pid ?? 100;
  return {
    kind: 'exec',
    ktime: 5_000_000_000n,
    cpu: 0,
    pid,
    tid: pid,
    ppid: 1,
    uid: 1000,
    euid: 1000,
    gid: 1000,
    egid: 1000,
    suid: 1000,
    sgid: 1000,
    auid: 1000,
    flags: 0,
    nlink: 1,
    ino: 1234n,
    cgroupId: 999_999_999n,
    startTime: 4_000_000_000n,
    parentStartTime: 1_000_000n,
    capPermitted: 0n,
    capEffective: 0n,
    capInheritable: 0n,
    ns: ns(),
    fileUid: 0,
    fileGid: 0,
    fileMode: 0o755,
    argc: 2,
    path: '/usr/bin/ls',
    filename: '/bin/ls',
    argv: ['ls', '-l'],
    cwd: '/home/u',
    ...over,
  };
}

function forkRec(over: Partial<ForkRecord> = {}): ForkRecord {
  const pid = over.pid ?? 101;
  return {
    kind: 'fork',
    ktime: 6_000_000_000n,
    cpu: 0,
    pid,
    tid: pid,
    ppid: 100,
    startTime: 6_000_000_000n,
    parentStartTime: 4_000_000_000n,
    cgroupId: 999_999_999n,
    ...over,
  };
}

/** pid 101's exec, a child of execRec()'s pid 100 (forked at 6 s) */
const childExecRec = (): ExecRecord =>
  execRec({
    pid: 101,
    ppid: 100,
    ktime: 7_000_000_000n,
    startTime: 6_000_000_000n,
    parentStartTime: 4_000_000_000n,
  });

function exitRec(over: Partial<ExitRecord> = {}): ExitRecord {
  const pid = over.pid ?? 101;
  return {
    kind: 'exit',
    ktime: 9_000_000_000n,
    cpu: 0,
    pid,
    tid: pid,
    ppid: 100,
    exitCode: 0,
    startTime: 6_000_000_000n,
    cgroupId: 999_999_999n,
    ...over,
  };
}

function execOf(ev: ExportEvent | undefined): ProcessExec {
  const x = (ev as { process_exec?: ProcessExec } | undefined)?.process_exec;
  assert.ok(x, `expected a process_exec event, got ${JSON.stringify(ev)}`);
  return x;
}

function exitOf(ev: ExportEvent | undefined): ProcessExit {
  const x = (ev as { process_exit?: ProcessExit } | undefined)?.process_exit;
  assert.ok(x, `expected a process_exit event, got ${JSON.stringify(ev)}`);
  return x;
}

describe('exec_id and time', () => {
  test('exec_id is base64 of node:ktime:pid', () => {
    const id = makeExecId(NODE, 123456789n, 42);
    assert.equal(Buffer.from(id, 'base64').toString(), 'node-a:123456789:42');
    assert.deepEqual(parseExecId(id), { nodeName: NODE, ktime: 123456789n, pid: 42 });
  });

  test('ktimeToTime turns CLOCK_MONOTONIC ns into RFC 3339 wall time with nanoseconds', () => {
    const s = ktimeToTime(process.hrtime.bigint());
    assert.match(s, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    assert.ok(Math.abs(Date.parse(s) - Date.now()) < 50, `${s} is not now`);
    // same second, then the next: the cached date part must follow
    assert.equal(wallNsToTime(1_764_058_402_000_000_007n), '2025-11-25T08:13:22.000000007Z');
    assert.equal(wallNsToTime(1_764_058_402_999_999_999n), '2025-11-25T08:13:22.999999999Z');
    assert.equal(wallNsToTime(1_764_058_403_000_000_000n), '2025-11-25T08:13:23.000000000Z');
  });

  test("times follow the wall clock when it is set, not the agent's start; its jitter is not a step", () => {
    // a measurement is within a ms of Date.now(), which follows the system clock (on a busy
    // machine one may be spoilt by the thread waiting for a core: the best of five)
    const errs = Array.from({ length: 5 }, () => {
      const off = measureRealtimeOffsetNs();
      return Math.abs(Number(off + process.hrtime.bigint() - BigInt(Date.now()) * 1_000_000n) / 1e6);
    });
    assert.ok(Math.min(...errs) < 2, `offsets ${errs.join(', ')} ms from Date.now()`);
    /** calibrate on `clock` until times follow it (a busy machine may defer a step to a later measurement) */
    const follow = (clock: () => number): number => {
      let off = Number.POSITIVE_INFINITY;
      for (let i = 0; i < 10 && Math.abs(off) >= 50; i++) {
        calibrate(clock);
        off = Date.parse(ktimeToTime(process.hrtime.bigint())) - clock();
      }
      return off;
    };
    try {
      // the clock set an hour ahead: the measurements take it
      const ahead = () => Date.now() + 3_600_000;
      const off = follow(ahead);
      assert.ok(Math.abs(off) < 50, `an hour ahead: ${off} ms off`);
      // measured again on the same clock, the offset differs by the measurement's error
      // (µs; more when the thread waits for a core): not a step, so the times do not move
      const before = ktimeToWallNs(0n);
      for (let i = 0; i < 5; i++) {
        calibrate(ahead);
        assert.equal(ktimeToWallNs(0n), before);
      }
    } finally {
      // back to the real clock
      const back = follow(Date.now);
      assert.ok(Math.abs(back) < 50, `set back: ${back} ms off`);
    }
  });

  test('ktimeToTime in numbers (stamps below 2^53) writes what the bigint arithmetic writes', () => {
    const now = process.hrtime.bigint();
    const stamps = [
      0n,
      1n,
      999_999_999n,
      1_000_000_000n,
      1_000_000_001n,
      now,
      now + 999_999_999n,
      2n ** 53n - 1n,
    ];
    for (let k = 0n; k < 2_000n; k++) stamps.push(now + k * 499_999_999n);
    for (const k of stamps) {
      assert.equal(ktimeToTime(k), wallNsToTime(ktimeToWallNs(k)), `stamp ${k}`);
    }
    // at and past 2^53 the bigint path itself
    assert.equal(ktimeToTime(2n ** 53n + 7n), wallNsToTime(ktimeToWallNs(2n ** 53n + 7n)));
  });
});

describe('ProcessPipeline.apply', () => {
  test('an exec becomes a process_exec with the Tetragon fields', () => {
    const pl = pipeline();
    const r = execRec({
      capPermitted: (1n << 21n) | 1n,
      capEffective: 1n << 39n,
      ns: ns({ mnt: HOST_MNT, net: 1 }),
      cgroupId: BigInt(statSync(path.join(cgRoot, 'system.slice', 'ssh.service')).ino),
    });
    const [ev] = pl.apply([r]);
    const { process: p, parent } = execOf(ev);
    assert.equal((ev as { node_name: string }).node_name, NODE);
    assert.equal((ev as { time: string }).time, ktimeToTime(r.ktime));
    assert.equal(p.exec_id, makeExecId(NODE, r.ktime, 100));
    assert.equal(p.start_time, ktimeToTime(r.ktime), 'the program started when it was exec`d');
    assert.equal(p.pid, 100);
    assert.equal(p.tid, 100);
    assert.equal(p.ppid, 1);
    assert.equal(p.uid, 1000);
    assert.equal(p.auid, 1000);
    assert.equal(p.binary, '/usr/bin/ls');
    assert.equal(p.arguments, '-l');
    assert.equal(p.cwd, '/home/u');
    assert.equal(p.flags, 'execve');
    assert.equal(p.parent_exec_id, makeExecId(NODE, r.parentStartTime, 1), 'unknown parent: stable stand-in');
    assert.equal(parent, undefined);
    assert.deepEqual(p.cap, {
      permitted: ['CAP_CHOWN', 'CAP_SYS_ADMIN'],
      effective: ['CAP_BPF'],
      inheritable: undefined,
    });
    assert.deepEqual(p.ns?.mnt, { inum: HOST_MNT, is_host: true });
    assert.deepEqual(p.ns?.net, { inum: 1 });
    assert.deepEqual(p.process_credentials, {
      uid: 1000,
      gid: 1000,
      euid: 1000,
      egid: 1000,
      suid: 1000,
      sgid: 1000,
    });
    assert.equal(p.binary_properties, undefined);
    assert.deepEqual(p.workload, {
      cgroup_id: r.cgroupId.toString(),
      cgroup_path: '/system.slice/ssh.service',
    });
  });

  test('process.cap and process.ns can be left out (process-caps / process-ns off)', () => {
    const full = (pipeline().apply([execRec()])[0] as { process_exec: ProcessExec }).process_exec.process;
    assert.ok(full.cap && full.ns);
    const lean = (
      pipeline({ caps: false, namespaces: false }).apply([execRec()])[0] as { process_exec: ProcessExec }
    ).process_exec.process;
    assert.equal(lean.cap, undefined);
    assert.equal(lean.ns, undefined);
    assert.equal(lean.binary, full.binary);
    assert.deepEqual(lean.process_credentials, full.process_credentials);
    const onlyNs = (pipeline({ caps: false }).apply([execRec()])[0] as { process_exec: ProcessExec })
      .process_exec.process;
    assert.equal(onlyNs.cap, undefined);
    assert.deepEqual(onlyNs.ns, full.ns);
  });

  test('cap and ns are in a process`s own exec only, unless caps-ns-every-event', () => {
    for (const every of [false, true]) {
      const pl = pipeline({ capsNsEveryEvent: every });
      const sh = execOf(pl.apply([execRec({ pid: 100, argv: ['bash'], path: '/usr/bin/bash' })])[0]).process;
      assert.ok(sh.cap && sh.ns, 'its own exec has them');
      const [childEv] = pl.apply([childExecRec()]);
      const child = execOf(childEv);
      assert.ok(child.process.cap && child.process.ns);
      const parent = child.parent!;
      assert.equal(parent.exec_id, sh.exec_id);
      assert.equal(fullProcess(parent), sh, 'the brief form leads back to the full process');
      const [exitEv] = pl.apply([exitRec({ pid: 100, startTime: 4_000_000_000n })]);
      const exit = exitOf(exitEv).process;
      assert.equal(exit.exec_id, sh.exec_id);
      const entry = pl.cache.byExecId(sh.exec_id)!;
      assert.equal(entry.process, sh, 'the cache keeps the full process');
      if (every) {
        assert.equal(parent, sh);
        assert.equal(exit, sh);
        assert.equal(entry.thread(555).cap, sh.cap);
      } else {
        assert.equal(parent.cap, undefined);
        assert.equal(parent.ns, undefined);
        assert.equal(exit.cap, undefined);
        assert.equal(exit.ns, undefined);
        // everything else as it was; a brief thread is brief too
        assert.deepEqual(JSON.stringify({ ...parent, cap: sh.cap, ns: sh.ns }), JSON.stringify(sh));
        assert.equal(parent, exit, 'made once');
        const t = entry.thread(555);
        assert.equal(t.tid, 555);
        assert.equal(t.cap, undefined);
        assert.equal(fullProcess(t), sh);
        assert.ok(!JSON.stringify(exitEv).includes('"cap"'), JSON.stringify(exitEv));
      }
    }
  });

  test('a brief process`s line is its full one`s with cap and ns cut out, byte for byte', () => {
    const pl = pipeline();
    // the exec's line places the full process first (its bytes then give the brief's)
    const [execEv] = pl.apply([execRec({ pid: 100, argv: ['bash', 'é'], path: '/usr/bin/bash' })]);
    assert.equal(encodeEvent(execEv!), JSON.stringify(execEv));
    // a child's exec names it briefly; its exit too; then another process, brief before full
    const [childEv] = pl.apply([childExecRec()]);
    const [exitEv] = pl.apply([exitRec({ pid: 100, startTime: 4_000_000_000n })]);
    const [lateEv] = pl.apply([exitRec()]);
    for (const ev of [childEv!, exitEv!, lateEv!]) {
      const line = encodeEvent(ev);
      assert.equal(line, JSON.stringify(ev));
      const body = Object.values(JSON.parse(line))[0] as { process: object; parent?: object };
      for (const p of [...(ev === childEv ? [] : [body.process]), body.parent]) {
        if (p) assert.ok(!('cap' in p) && !('ns' in p), line);
      }
    }
    // a thread of it, briefly: another tid, walked; made anew after the exit let the copies go
    const entry = pl.cache.byExecId(execOf(execEv!).process.exec_id)!;
    assert.ok(entry.exited);
    const t = entry.thread(555);
    assert.equal(processJson(t), JSON.stringify(t));
    assert.equal(processJson(entry.brief), JSON.stringify(entry.brief));
    assert.equal(fullProcess(entry.brief), entry.process);
  });

  test('brief and thread copies stay fast objects once encoded (V8 kept spread copies as dictionaries)', () => {
    // V8's own view of the objects, from a node of its own with its natives syntax on
    const code = `
      const { ProcessCache } = await import(${JSON.stringify(new URL('../../src/process/cache.js', import.meta.url).href)});
      const { eventLine } = await import(${JSON.stringify(new URL('../../src/events/encode.js', import.meta.url).href)});
      const cap = { permitted: ['CAP_KILL'], effective: ['CAP_KILL'], inheritable: undefined };
      const p = { exec_id: 'e', pid: 7, uid: 0, cwd: '/', binary: '/bin/x', arguments: '', flags: 'execve',
        start_time: '2026-01-01T00:00:00.000000000Z', auid: 0, parent_exec_id: undefined, cap, ns: { mnt: { inum: 1 } },
        tid: 7, process_credentials: undefined, binary_properties: undefined, interpreter: undefined, ppid: 1, workload: undefined };
      const e = new ProcessCache().add(p, { pid: 7, startNs: 1n, origin: 'exec' });
      const out = [];
      for (const q of [e.brief, e.thread(8)]) {
        eventLine({ process_exit: { process: q, parent: q, time: 't' }, node_name: 'n', time: 't' });
        out.push(q.cap === undefined && %HasFastProperties(q));
      }
      console.log(JSON.stringify(out));`;
    const r = spawnSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', code], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), [true, true]);
  });

  test('fork makes no event but a "clone" entry with the parent`s program; exec then replaces it', () => {
    const pl = pipeline();
    const [shEv] = pl.apply([execRec({ pid: 100, argv: ['bash', '-i'], path: '/usr/bin/bash' })]);
    const sh = execOf(shEv).process;
    assert.deepEqual(pl.apply([forkRec({ pid: 101 })]), []);
    const clone = pl.cache.get(101)!;
    assert.equal(clone.process.flags, 'clone');
    assert.equal(clone.process.binary, '/usr/bin/bash');
    assert.equal(clone.process.arguments, '-i');
    assert.equal(clone.process.exec_id, makeExecId(NODE, 6_000_000_000n, 101));
    assert.equal(clone.parentExecId, sh.exec_id);
    assert.equal(clone.exited, false);

    const [ev] = pl.apply([childExecRec()]);
    const x = execOf(ev);
    assert.equal(x.process.parent_exec_id, sh.exec_id);
    assert.equal(fullProcess(x.parent!), sh, 'the parent, in its brief form');
    assert.equal(pl.cache.get(101)?.process, x.process);
    assert.equal(pl.cache.byExecId(clone.process.exec_id), undefined, 'nothing referenced the clone');
    assert.deepEqual(
      pl.cache.ancestors(x.process.exec_id).map((p) => p.exec_id),
      [sh.exec_id],
    );
    assert.deepEqual(
      pl.cache.children(sh.exec_id).map((p) => p.exec_id),
      [x.process.exec_id],
    );
  });

  test('a fork and its exec in one batch give what they give in two, and the cache ends the same', () => {
    const sep = pipeline();
    const one = pipeline();
    const sh = execRec({ pid: 100, argv: ['bash', '-i'], path: '/usr/bin/bash' });
    sep.apply([sh]);
    one.apply([sh]);
    const apart = [...sep.apply([forkRec()]), ...sep.apply([childExecRec()]), ...sep.apply([exitRec()])];
    const together = one.apply([forkRec(), childExecRec(), exitRec()]);
    assert.equal(together.length, 2);
    assert.equal(encodeEvent(together[0]!), encodeEvent(apart[0]!));
    assert.equal(encodeEvent(together[1]!), encodeEvent(apart[1]!));
    assert.deepEqual(one.cache.stats(), sep.cache.stats());
    const clone = makeExecId(NODE, 6_000_000_000n, 101);
    assert.equal(one.cache.byExecId(clone), undefined);
  });

  test('exec and exit lines are JSON.stringify`s of the events, with and without parent, status or signal', () => {
    for (const node of [NODE, 'nœud "ü"\\x']) {
      const pl = new ProcessPipeline({ nodeName: node, procRoot, cgroupRoot: cgRoot, realpath: (p) => p });
      const evs = [
        ...pl.apply([execRec({ pid: 100, ppid: 0 })]),
        ...pl.apply([childExecRec()]),
        ...pl.apply([exitRec({ exitCode: 9 })]),
        ...pl.apply([exitRec({ pid: 100, ppid: 0, startTime: 4_000_000_000n, exitCode: 1 << 8 })]),
        ...pl.apply([exitRec({ pid: 555, ppid: 4242, startTime: 7n })]),
      ];
      assert.equal(evs.length, 5);
      assert.equal(execOf(evs[0]).parent, undefined);
      assert.equal(exitOf(evs[2]).signal, 'SIGKILL');
      assert.equal(exitOf(evs[3]).status, 1);
      for (const ev of evs) {
        assert.equal(encodeEvent(ev), JSON.stringify(ev));
        assert.equal(
          encodeEvent({ ...ev }),
          JSON.stringify(ev),
          'a copy (an export filter`s) walked as usual',
        );
        assert.equal(eventType(ev), Object.keys(ev)[0]);
      }
    }
  });

  test('a fork whose child is named before its exec in the batch keeps its clone entry', () => {
    // 101 forks 102, which exits, before 101 execs: 102's exit names 101's clone as its parent
    const pl = pipeline();
    pl.apply([execRec({ pid: 100, argv: ['bash', '-i'], path: '/usr/bin/bash' })]);
    const clone = makeExecId(NODE, 6_000_000_000n, 101);
    const evs = pl.apply([
      forkRec({ pid: 101 }),
      forkRec({ pid: 102, ppid: 101, startTime: 6_500_000_000n, parentStartTime: 6_000_000_000n }),
      exitRec({ pid: 102, ppid: 101, startTime: 6_500_000_000n, ktime: 6_600_000_000n }),
      childExecRec(),
    ]);
    assert.equal(evs.length, 2);
    const exit = exitOf(evs[0]);
    assert.equal(exit.process.parent_exec_id, clone);
    assert.equal(exit.parent?.exec_id, clone);
    assert.equal(exit.parent?.flags, 'clone');
    assert.equal(exit.parent?.binary, '/usr/bin/bash');
    assert.equal(execOf(evs[1]).process.pid, 101);

    // an exec under the pid with another start time is another process: the fork keeps its entry
    const other = pipeline();
    other.apply([execRec({ pid: 100 })]);
    other.apply([
      forkRec({ pid: 101 }),
      execRec({ pid: 101, ppid: 100, ktime: 7_000_000_000n, startTime: 1n }),
    ]);
    assert.equal(other.cache.byExecId(clone)?.exited, true, 'its exit was missed: ended by the exec');
  });

  test('a child that exits without exec reports its clone process and its parent', () => {
    const pl = pipeline();
    const sh = execOf(pl.apply([execRec()])[0]).process;
    pl.apply([forkRec()]);
    const x = exitOf(pl.apply([exitRec({ exitCode: 3 << 8 })])[0]);
    assert.equal(x.process.flags, 'clone');
    assert.equal(fullProcess(x.parent!), sh);
    assert.equal(x.status, 3);
    assert.equal(x.signal, undefined);
    assert.equal(x.time, ktimeToTime(9_000_000_000n));
    assert.equal(pl.cache.get(101)?.exited, true);
  });

  test('exit status and signals', () => {
    const pl = pipeline();
    const cases: [number, string | undefined, number | undefined][] = [
      [0, undefined, 0],
      [1 << 8, undefined, 1],
      [9, 'SIGKILL', undefined],
      [0x80 | 11, 'SIGSEGV', undefined], // dumped core
      [15, 'SIGTERM', undefined],
    ];
    let pid = 300;
    for (const [code, signal, status] of cases) {
      pid++;
      pl.apply([execRec({ pid, startTime: BigInt(pid) })]);
      const x = exitOf(pl.apply([exitRec({ pid, startTime: BigInt(pid), exitCode: code })])[0]);
      assert.equal(x.signal, signal, `code ${code}`);
      assert.equal(x.status, status, `code ${code}`);
      assert.equal(x.process.binary, '/usr/bin/ls');
    }
  });

  test('an exit of an unknown pid still makes an event, with a stable exec_id', () => {
    const pl = pipeline();
    const r = exitRec({ pid: 555, ppid: 77, startTime: 123n, exitCode: 9 });
    const a = exitOf(pl.apply([r])[0]);
    const b = exitOf(pipeline().apply([r])[0]);
    assert.equal(a.process.pid, 555);
    assert.equal(a.process.ppid, 77);
    assert.equal(a.process.exec_id, makeExecId(NODE, 123n, 555));
    assert.equal(a.process.exec_id, b.process.exec_id);
    assert.equal(a.process.flags, 'miss');
    assert.equal(a.signal, 'SIGKILL');
    assert.equal(a.parent, undefined);
    assert.equal(pl.cache.stats().size, 0, 'nothing to cache about it');
  });

  test('the parent stand-in exec_id is the same for every child of an unknown parent', () => {
    const pl = pipeline();
    const a = execOf(pl.apply([execRec({ pid: 10, ppid: 9, parentStartTime: 77n })])[0]).process;
    const b = execOf(
      pl.apply([execRec({ pid: 11, ppid: 9, parentStartTime: 77n, startTime: 1n })])[0],
    ).process;
    assert.equal(a.parent_exec_id, b.parent_exec_id);
    assert.equal(a.parent_exec_id, makeExecId(NODE, 77n, 9));
  });

  test('a parent whose pid was reused is not taken for the parent', () => {
    const pl = pipeline();
    pl.apply([execRec({ pid: 100, startTime: 5n })]);
    const x = execOf(pl.apply([execRec({ pid: 200, ppid: 100, parentStartTime: 6n, startTime: 8n })])[0]);
    assert.equal(x.parent, undefined);
    assert.equal(x.process.parent_exec_id, makeExecId(NODE, 6n, 100));
  });

  test('an exec chain replaces the entry; children of the old image keep naming it', () => {
    const pl = pipeline();
    const first = execOf(pl.apply([execRec({ pid: 100, ktime: 10n })])[0]).process;
    pl.apply([forkRec({ pid: 101, ppid: 100 })]);
    const second = execOf(
      pl.apply([execRec({ pid: 100, ktime: 20n, path: '/usr/bin/top', argv: ['top'] })])[0],
    ).process;
    assert.notEqual(first.exec_id, second.exec_id);
    assert.equal(pl.cache.get(100)?.process, second);
    assert.equal(pl.cache.byExecId(first.exec_id)?.exited, true);
    assert.equal(pl.cache.byExecId(first.exec_id)?.replacedBy, second.exec_id);
    assert.equal(pl.cache.get(101)?.parentExecId, first.exec_id);
    assert.deepEqual(
      pl.cache.ancestors(pl.cache.get(101)!.process.exec_id).map((p) => p.exec_id),
      [first.exec_id],
    );
    assert.equal(pl.cache.stats().live, 2);
  });

  test('a fork under a pid whose exit was missed ends the stale entry', () => {
    const pl = pipeline();
    pl.apply([execRec({ pid: 100 }), execRec({ pid: 200, startTime: 1n })]);
    pl.apply([forkRec({ pid: 200, startTime: 2n })]);
    assert.equal(pl.cache.get(200)?.process.flags, 'clone');
    assert.equal(pl.cache.stats().live, 2);
  });

  test('flags say what was truncated', () => {
    const pl = pipeline();
    const f =
      ExecFlags.ARGS_TRUNCATED |
      ExecFlags.FILENAME_TRUNCATED |
      ExecFlags.PATH_TRUNCATED |
      ExecFlags.CWD_TRUNCATED;
    const p = execOf(pl.apply([execRec({ flags: f })])[0]).process;
    assert.equal(p.flags, 'execve truncFilename truncPath truncArgs truncCwd');
    const q = execOf(pl.apply([execRec({ pid: 7, flags: ExecFlags.ARGS_TRUNCATED })])[0]).process;
    assert.equal(q.flags, 'execve truncArgs');
  });

  test('arguments: argv[1..], an argument with spaces or quotes quoted', () => {
    const pl = pipeline();
    const p = execOf(
      pl.apply([execRec({ argv: ['echo', 'a b', '', 'say "hi"', 'back\\slash', 'plain'] })])[0],
    ).process;
    assert.equal(p.arguments, '"a b" "" "say \\"hi\\"" back\\slash plain');
    const q = execOf(pl.apply([execRec({ pid: 8, argv: ['true'] })])[0]).process;
    assert.equal(q.arguments, '');
  });

  test('setuid, setgid and a deleted binary show in binary_properties', () => {
    const pl = pipeline();
    const p = execOf(
      pl.apply([
        execRec({
          uid: 1000,
          euid: 0,
          egid: 42,
          flags: ExecFlags.SETUID | ExecFlags.SETGID,
          path: '/usr/bin/passwd',
          argv: ['passwd'],
        }),
      ])[0],
    ).process;
    assert.deepEqual(p.binary_properties, {
      setuid: 0,
      setgid: 42,
      privileges_changed: ['PRIVILEGES_RAISED_EXEC_FILE_SETUID', 'PRIVILEGES_RAISED_EXEC_FILE_SETGID'],
      file: undefined,
    });
    const d = execOf(
      pl.apply([execRec({ pid: 9, nlink: 0, ino: 777n, path: '/memfd:x', filename: '/proc/self/fd/3' })])[0],
    ).process;
    assert.equal(d.binary, '/memfd:x (deleted)');
    assert.deepEqual(d.binary_properties?.file, { inode: { number: '777', links: 0 } });
    assert.equal(d.binary_properties?.setuid, undefined);
  });

  test('a script: binary is the script, interpreter the program that ran it', () => {
    const calls: string[] = [];
    const pl = pipeline({
      realpath: (p) => {
        calls.push(p);
        return p === '/bin/sh' ? '/usr/bin/dash' : p;
      },
    });
    // #!/bin/sh with /bin/sh -> dash, run as ./deploy.sh from /srv
    const s = execOf(
      pl.apply([
        execRec({
          path: '/usr/bin/dash',
          filename: './deploy.sh',
          argv: ['/bin/sh', './deploy.sh', 'prod', 'now'],
          cwd: '/srv',
        }),
      ])[0],
    ).process;
    assert.equal(s.binary, '/srv/deploy.sh');
    assert.equal(s.interpreter, '/usr/bin/dash');
    assert.equal(s.arguments, 'prod now');
    // #!/usr/bin/env python3: the interpreter argument sits between
    const e = execOf(
      pl.apply([
        execRec({
          pid: 11,
          path: '/usr/bin/env',
          filename: '/opt/tool.py',
          argv: ['/usr/bin/env', 'python3', '/opt/tool.py', '-v'],
        }),
      ])[0],
    ).process;
    assert.equal(e.binary, '/opt/tool.py');
    assert.equal(e.interpreter, '/usr/bin/env');
    assert.equal(e.arguments, '-v');
    // not a script: the file passed is a link to the program itself
    const n = execOf(
      pl.apply([
        execRec({ pid: 12, path: '/usr/bin/dash', filename: '/bin/sh', argv: ['sh', '/bin/sh'], cwd: '/' }),
      ])[0],
    ).process;
    assert.equal(n.binary, '/usr/bin/dash');
    assert.equal(n.interpreter, undefined);
    assert.equal(n.arguments, '/bin/sh');
    // no file-system access unless argv suggests a script
    calls.length = 0;
    pl.apply([execRec({ pid: 13 })]);
    assert.deepEqual(calls, []);
  });

  test('a deleted interpreter is marked on the interpreter', () => {
    const pl = pipeline();
    const p = execOf(
      pl.apply([
        execRec({ nlink: 0, path: '/tmp/sh', filename: '/x.sh', argv: ['/tmp/sh', '/x.sh'], cwd: '/' }),
      ])[0],
    ).process;
    assert.equal(p.binary, '/x.sh');
    assert.equal(p.interpreter, '/tmp/sh (deleted)');
  });

  test('100k short-lived processes leave the cache at a steady size', () => {
    const maxExited = 1000;
    const pl = pipeline({ maxExited });
    const parentStart = 4_000_000_000n;
    pl.apply([execRec({ pid: 100, startTime: parentStart })]);
    let sizeAt50k = 0;
    const t0 = process.hrtime.bigint();
    const batch: (ExecRecord | ForkRecord | ExitRecord)[] = [];
    let events = 0;
    for (let i = 0; i < 100_000; i++) {
      const pid = 1000 + (i % 30_000);
      const start = 10_000_000_000n + BigInt(i) * 1000n;
      batch.push(
        forkRec({ pid, ppid: 100, startTime: start, parentStartTime: parentStart }),
        execRec({
          pid,
          ppid: 100,
          ktime: start + 100n,
          startTime: start,
          parentStartTime: parentStart,
          path: '/usr/bin/true',
          argv: ['true', `${i}`],
        }),
        exitRec({ pid, ppid: 100, ktime: start + 200n, startTime: start }),
      );
      if (batch.length >= 300) {
        events += pl.apply(batch.splice(0)).length;
      }
      if (i === 49_999) {
        events += pl.apply(batch.splice(0)).length;
        sizeAt50k = pl.cache.stats().size;
      }
    }
    events += pl.apply(batch.splice(0)).length;
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const st = pl.cache.stats();
    assert.equal(events, 200_000);
    assert.equal(st.live, 1);
    assert.ok(st.size <= maxExited + st.live, `size ${st.size} > ${maxExited} + ${st.live}`);
    assert.equal(st.size, sizeAt50k, 'size after 50k == size after 100k');
    assert.equal(st.evictions, 100_000 - maxExited);
    // the parent still names all of its (cached) children and they name it
    assert.equal(pl.cache.children(pl.cache.get(100)!.process.exec_id).length, maxExited);
    const perSec = Math.round(300_000 / (ms / 1000));
    console.log(`# 300k records in ${ms.toFixed(0)} ms: ${perSec} records/s`);
  });
});

describe('CgroupPaths', () => {
  test('maps cgroup ids (directory inodes) to paths relative to the root', () => {
    const cg = new CgroupPaths(cgRoot);
    assert.equal(cg.path(BigInt(statSync(cgRoot).ino)), '/');
    assert.equal(cg.path(BigInt(statSync(path.join(cgRoot, 'system.slice')).ino)), '/system.slice');
    assert.equal(
      cg.idOf('/system.slice/ssh.service'),
      String(statSync(path.join(cgRoot, 'system.slice/ssh.service')).ino),
    );
  });

  test('rescans on a miss, at most once per interval, and remembers ids that are gone', () => {
    let now = 1000;
    const cg = new CgroupPaths(cgRoot, { now: () => now });
    cg.path(BigInt(statSync(cgRoot).ino));
    assert.equal(cg.scans, 1);
    const dir = path.join(cgRoot, 'late.scope');
    mkdirSync(dir);
    try {
      const id = BigInt(statSync(dir).ino);
      now += 10;
      assert.equal(cg.path(id), '', 'within 100 ms of the last scan: no rescan');
      assert.equal(cg.scans, 1);
      now += 100;
      assert.equal(cg.path(id), '/late.scope');
      assert.equal(cg.scans, 2);
      // an id no scan finds is remembered as gone: no more rescans for it
      now += 1000;
      assert.equal(cg.path(123456789012n), '');
      assert.equal(cg.scans, 3);
      now += 1000;
      assert.equal(cg.path(123456789012n), '');
      assert.equal(cg.scans, 3);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  test('without a cgroup2 mount every path is empty', () => {
    const cg = new CgroupPaths(undefined);
    assert.equal(cg.path(1n), '');
    assert.equal(cg.scans, 0);
  });
});
