import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { smallJson } from '../../src/events/encode.js';
import {
  copyLine,
  type ExportEvent,
  encodeEvent,
  encodeLine,
  eventLine,
  lineBytes,
  type Process,
} from '../../src/events/index.js';
import { CgroupPaths, NamespaceTable, ProcessBuilder } from '../../src/process/index.js';
import { type ExecRecord, type NamespaceName, NS_NAMES } from '../../src/sensors/process/records.js';

function execRecord(): ExecRecord {
  const ns = {} as Record<NamespaceName, number>;
  for (const n of NS_NAMES) ns[n] = 4026531830;
  return {
    kind: 'exec',
    ktime: 1_000n,
    cpu: 1,
    pid: 4242,
    tid: 4242,
    ppid: 1,
    uid: 0,
    euid: 0,
    gid: 0,
    egid: 0,
    suid: 0,
    sgid: 0,
    auid: 4294967295,
    flags: 0,
    nlink: 1,
    ino: 1n,
    cgroupId: 1n,
    startTime: 900n,
    parentStartTime: 1n,
    capPermitted: 1n << 21n,
    capEffective: 1n << 21n,
    capInheritable: 0n,
    ns,
    fileUid: 0,
    fileGid: 0,
    fileMode: 0o755,
    argc: 3,
    path: '/usr/bin/curl',
    filename: 'curl',
    argv: ['curl', '-s', 'line\nbreak'],
    cwd: '/',
  };
}

function sampleProcess(): Process {
  const b = new ProcessBuilder('node', new CgroupPaths(undefined), new NamespaceTable({ mnt: 4026531830 }));
  return b.fromExec(execRecord(), 'cGFyZW50', '2026-11-25T08:13:22.123456789Z');
}

describe('encodeEvent', () => {
  test('one line of JSON in the export shape: payload first, then node_name and time', () => {
    const process = sampleProcess();
    const ev: ExportEvent = {
      process_exec: { process, parent: undefined },
      node_name: 'node',
      time: '2026-11-25T08:13:22.123456789Z',
    };
    const line = encodeEvent(ev);
    assert.ok(!line.includes('\n'), 'a newline in an argument stays escaped');
    assert.deepEqual(Object.keys(JSON.parse(line)), ['process_exec', 'node_name', 'time']);
    const p = JSON.parse(line).process_exec.process;
    assert.equal(p.exec_id, Buffer.from('node:1000:4242').toString('base64'));
    assert.equal(p.arguments, '-s "line\nbreak"');
    assert.equal(p.parent_exec_id, 'cGFyZW50');
    assert.deepEqual(p.cap, { permitted: ['CAP_SYS_ADMIN'], effective: ['CAP_SYS_ADMIN'] });
    assert.deepEqual(p.ns.mnt, { inum: 4026531830, is_host: true });
    assert.deepEqual(p.ns.net, { inum: 4026531830 });
    assert.deepEqual(p.workload, { cgroup_id: '1', cgroup_path: '' });
    assert.equal(p.start_time, '2026-11-25T08:13:22.123456789Z');
  });

  test('absent optional fields are left out, not written as null', () => {
    const line = encodeEvent({
      process_exit: { process: sampleProcess(), parent: undefined, signal: undefined, status: 0, time: 't' },
      node_name: 'n',
      time: 't',
    });
    const x = JSON.parse(line).process_exit;
    assert.ok(!('parent' in x));
    assert.ok(!('signal' in x));
    assert.equal(x.status, 0);
    assert.ok(!('binary_properties' in x.process));
    assert.ok(!('interpreter' in x.process));
    assert.ok(!line.includes('null'));
  });

  test('snake_case keys only', () => {
    const line = encodeEvent({ process_exec: { process: sampleProcess() }, node_name: 'n', time: 't' });
    const keys: string[] = [];
    JSON.parse(line, (k, v) => {
      if (k !== '' && Number.isNaN(Number(k))) keys.push(k);
      return v;
    });
    for (const k of keys) assert.match(k, /^[a-z0-9_]+$/, k);
  });

  test('a bigint from some sensor is written as a string instead of failing', () => {
    const ev = { process_kprobe: { size: 12345678901234567890n }, node_name: 'n', time: 't' } as ExportEvent;
    assert.equal(
      encodeEvent(ev),
      '{"process_kprobe":{"size":"12345678901234567890"},"node_name":"n","time":"t"}',
    );
  });

  test('the cached encoding is byte for byte JSON.stringify, also when processes repeat', () => {
    const child = sampleProcess();
    const parent = { ...sampleProcess(), pid: 1, exec_id: 'cGFyZW50', binary: '/usr/bin/bash' };
    const events: ExportEvent[] = [
      { process_exec: { process: child, parent }, node_name: 'n', time: 't1' },
      { process_exit: { process: child, parent, status: 3, time: 't2' }, node_name: 'n', time: 't2' },
      {
        process_exec: { process: parent, parent: undefined, ancestors: [parent] },
        node_name: 'n',
        time: 't3',
      },
      {
        process_kprobe: { process: child, parent, function_name: '__x64_sys_openat', args: [{ int_arg: 3 }] },
        node_name: 'n',
        time: 't4',
      } as ExportEvent,
    ];
    for (let round = 0; round < 2; round++) {
      for (const ev of events) assert.equal(encodeEvent(ev), JSON.stringify(ev));
    }
  });

  test('strings that need escapes, and numbers JSON has no form for, are written as JSON.stringify writes them', () => {
    const odd = [
      'quote " here',
      'back\\slash',
      'line\nbreak',
      'ctl \u0001',
      'lone \ud800',
      'pair 😀',
      'é ü ß',
      '',
      'plain',
    ];
    for (const text of odd) {
      const proc = { ...sampleProcess(), binary: text, cwd: text, arguments: text };
      const ev = {
        process_kprobe: {
          process: proc,
          function_name: text,
          args: [{ string_arg: text }],
          policy_name: text,
        },
        node_name: text,
        time: text,
      } as unknown as ExportEvent;
      assert.equal(encodeEvent(ev), JSON.stringify(ev), JSON.stringify(text));
    }
    for (const n of [0, -0, 1.5, -7, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53 + 2]) {
      const ev = {
        process_exit: { process: { pid: n, tid: 1 }, status: n, ok: n > 0 },
        node_name: 'n',
        time: 't',
      };
      assert.equal(encodeEvent(ev as unknown as ExportEvent), JSON.stringify(ev), String(n));
    }
  });

  test('a line copied out after the shared ring has gone round is encoded again, byte for byte', () => {
    const process = sampleProcess();
    const first: ExportEvent = {
      process_kprobe: { process, parent: undefined, function_name: 'é ✓ first', args: [{ int_arg: 1 }] },
      node_name: 'n',
      time: 't0',
    } as ExportEvent;
    const line = eventLine(first);
    const want = Buffer.from(JSON.stringify(first));
    assert.equal(line.length, want.length);
    // more than the ring's 8 MiB of other lines overwrite its bytes there
    const filler = 'x'.repeat(64 * 1024);
    for (let i = 0; i < 300; i++)
      encodeLine({
        process_exec: { process, parent: undefined, filler },
        node_name: 'n',
        time: `t${i}`,
      } as ExportEvent);
    const out = Buffer.alloc(line.length + 2, 0x2a);
    assert.equal(line.copyTo(out, 1), want.length);
    assert.deepEqual(out.subarray(1, 1 + want.length), want);
    assert.equal(out[0], 0x2a);
    assert.equal(out[out.length - 1], 0x2a, 'nothing written past the line');
    // and the cache hands out the same line object for every sink
    assert.equal(eventLine(first), line);
  });

  test("a process whose JSON the processes' ring has gone past is encoded again, byte for byte", () => {
    const old = { ...sampleProcess(), arguments: 'ünïcode ✓ old' };
    const ev = (process: Process, time: string): ExportEvent => ({
      process_exec: { process, parent: undefined },
      node_name: 'n',
      time,
    });
    assert.equal(encodeEvent(ev(old, 't0')), JSON.stringify(ev(old, 't0')));
    // more than the 4 MiB ring of processes' JSON, of other processes
    const long = 'y'.repeat(100_000);
    for (let i = 0; i < 60; i++) {
      const p = { ...sampleProcess(), pid: i, arguments: long };
      assert.equal(encodeEvent(ev(p, `t${i}`)).length, JSON.stringify(ev(p, `t${i}`)).length);
    }
    assert.equal(encodeEvent(ev(old, 't1')), JSON.stringify(ev(old, 't1')));
    // one larger than a sixteenth of that ring has a buffer of its own
    const huge = { ...sampleProcess(), arguments: 'z'.repeat(400_000) };
    assert.equal(encodeEvent(ev(huge, 't2')), JSON.stringify(ev(huge, 't2')));
    assert.equal(encodeEvent(ev(huge, 't3')), JSON.stringify(ev(huge, 't3')));
  });

  test('a line larger than an eighth of the ring gets a buffer of its own', () => {
    const big = {
      process_exec: { process: sampleProcess(), parent: undefined, arg: 'ü'.repeat(3 << 20) },
      node_name: 'n',
      time: 't',
    } as ExportEvent;
    const line = encodeLine(big);
    const want = Buffer.from(JSON.stringify(big));
    assert.equal(line.length, want.length);
    assert.deepEqual(line.toBuffer(), want);
  });

  test('text, bytes and encoded lines copy alike', () => {
    const ev = {
      process_exec: { process: sampleProcess(), parent: undefined },
      node_name: 'ñ',
      time: 't',
    } as ExportEvent;
    const text = JSON.stringify(ev);
    for (const l of [text, Buffer.from(text), encodeLine(ev)]) {
      const n = lineBytes(l);
      assert.equal(n, Buffer.byteLength(text));
      const out = Buffer.alloc(n);
      assert.equal(copyLine(l, out, 0), n);
      assert.equal(out.toString(), text);
    }
  });
});

describe('smallJson (small plain values written without JSON.stringify)', () => {
  test('writes what JSON.stringify writes', () => {
    const cases: unknown[] = [
      [{ int_arg: -100 }, { string_arg: '/etc/passwd' }, { int_arg: 524288, label: 'flags' }],
      { file_arg: { path: '/tmp/a "quoted"\\ file\n' } },
      { sockaddr_arg: { family: 'AF_INET6', addr: '::1', port: 443 } },
      { truncated_bytes_arg: { bytes_arg: 'AAEC', orig_size: '9000' } },
      { a: undefined, b: null, c: true, d: false, e: Number.NaN, f: -0, g: 1e21, h: -Infinity },
      [undefined, null, 1.5, 'x', [], {}],
      { 'key "quoted"': 'v', '\u2028': 'line separator', '\ud800': 'lone surrogate \udc00' },
      { 2: 'b', 1: 'a', z: 'z', y: 'y' },
      Object.assign(Object.create(null), { bare: 1 }),
      [[['deep']]],
    ];
    for (const v of cases) assert.equal(smallJson(v, 0), JSON.stringify(v), JSON.stringify(v));
  });

  test('leaves to JSON.stringify what it does not write the same way', () => {
    class Point {
      x = 1;
    }
    const cases: unknown[] = [
      { n: 10n },
      { when: new Date(0) },
      { toJSON: () => 'x' },
      new Point(),
      { f: () => 1 },
      { s: Symbol('s') },
      [() => 1],
      [[[['too deep']]]],
      new Map([[1, 2]]),
    ];
    for (const v of cases) assert.equal(smallJson(v, 0), undefined, String(v));
  });

  test('a policy event line is byte for byte JSON.stringify with its args written this way', () => {
    const ev = {
      process_kprobe: {
        process: { exec_id: 'eA==', pid: 7, binary: '/bin/cat' },
        function_name: '__x64_sys_openat',
        args: [{ int_arg: -100 }, { string_arg: '/etc/shadow' }, { int_arg: 0 }],
        return: { int_arg: -2 },
        action: 'KPROBE_ACTION_POST',
        policy_name: 'p',
        tags: ['a', 'b'],
      },
      node_name: 'n',
      time: '2026-11-25T00:00:00.000000001Z',
    } as unknown as ExportEvent;
    assert.equal(encodeEvent(ev), JSON.stringify(ev));
  });
});
