import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeRecord } from '../../src/sensors/process/decode.js';
import { EXEC, EXIT, FORK, HDR, RecordType } from '../../src/sensors/process/layout.js';
import { NS_NAMES } from '../../src/sensors/process/records.js';

function header(buf: Buffer, type: number, pid: number): void {
  buf.writeUInt16LE(type, HDR.type);
  buf.writeUInt16LE(1, HDR.cpu);
  buf.writeUInt32LE(buf.length, HDR.size);
  buf.writeBigUInt64LE(2n ** 60n + 5n, HDR.ktime);
  buf.writeUInt32LE(pid, HDR.pid);
  buf.writeUInt32LE(pid + 1, HDR.tid);
}

test('an exec record decodes field by field, its namespaces by name in NS_NAMES order', () => {
  const parts = ['/usr/bin/ls', 'ls', 'ls\0-l\0', '/home/ü'].map((s) => Buffer.from(s));
  const buf = Buffer.alloc(EXEC.SIZE + parts.reduce((n, p) => n + p.length, 0));
  header(buf, RecordType.EXEC, 77);
  buf.writeUInt32LE(76, EXEC.ppid);
  buf.writeUInt32LE(1000, EXEC.uid);
  buf.writeUInt32LE(4294967295, EXEC.auid);
  buf.writeBigUInt64LE(0x1ffffffffffn, EXEC.cap_effective);
  buf.writeBigUInt64LE(123n, EXEC.start_time);
  for (let i = 0; i < NS_NAMES.length; i++) buf.writeUInt32LE(4026531800 + i, EXEC.ns + 4 * i);
  buf.writeUInt16LE(parts[0]!.length, EXEC.path_len);
  buf.writeUInt16LE(parts[1]!.length, EXEC.filename_len);
  buf.writeUInt32LE(parts[2]!.length, EXEC.args_len);
  buf.writeUInt16LE(parts[3]!.length, EXEC.cwd_len);
  Buffer.concat(parts).copy(buf, EXEC.SIZE);
  const r = decodeRecord(buf, 0, buf.length);
  assert.ok(r?.kind === 'exec');
  assert.equal(r.cpu, 1);
  assert.equal(r.ktime, 2n ** 60n + 5n);
  assert.equal(r.pid, 77);
  assert.equal(r.tid, 78);
  assert.equal(r.ppid, 76);
  assert.equal(r.uid, 1000);
  assert.equal(r.auid, 4294967295);
  assert.equal(r.capEffective, 0x1ffffffffffn);
  assert.equal(r.startTime, 123n);
  assert.deepEqual(Object.keys(r.ns), [...NS_NAMES]);
  assert.deepEqual(
    Object.values(r.ns),
    NS_NAMES.map((_, i) => 4026531800 + i),
  );
  assert.equal(r.path, '/usr/bin/ls');
  assert.equal(r.filename, 'ls');
  assert.deepEqual(r.argv, ['ls', '-l']);
  assert.equal(r.cwd, '/home/ü');
  assert.throws(() => decodeRecord(buf, 0, buf.length - 1), /shorter than its parts/);
});

test('fork and exit records decode; an unknown type is undefined; a short record throws', () => {
  const fork = Buffer.alloc(FORK.SIZE);
  header(fork, RecordType.FORK, 10);
  fork.writeUInt32LE(9, FORK.ppid);
  fork.writeBigUInt64LE(2n ** 63n, FORK.start_time);
  const f = decodeRecord(fork, 0, fork.length);
  assert.ok(f?.kind === 'fork');
  assert.equal(f.ppid, 9);
  assert.equal(f.startTime, 2n ** 63n);
  const exit = Buffer.alloc(EXIT.SIZE);
  header(exit, RecordType.EXIT, 11);
  exit.writeUInt32LE(9 << 8, EXIT.exit_code);
  const e = decodeRecord(exit, 0, exit.length);
  assert.ok(e?.kind === 'exit');
  assert.equal(e.exitCode, 9 << 8);
  assert.equal(e.tid, 12);
  fork.writeUInt16LE(99, HDR.type);
  assert.equal(decodeRecord(fork, 0, fork.length), undefined);
  assert.throws(() => decodeRecord(exit, 0, EXIT.SIZE - 1), /exit record of 47 bytes is shorter than 48/);
  assert.throws(() => decodeRecord(exit, 0, 8), /shorter than its header/);
});
