import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { FileExporter } from '../../src/agent/export-file.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'osprey-export-test-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => path.join(root, `t${++n}`, 'events.log');

const line = (i: number) => JSON.stringify({ seq: i, pad: 'x'.repeat(20) });
const lines = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => line(from + k));
const gz = (p: string) => gunzipSync(readFileSync(p)).toString('utf8').split('\n').filter(Boolean);
const read = (p: string) => (existsSync(p) ? readFileSync(p, 'utf8').split('\n').filter(Boolean) : []);

describe('FileExporter', () => {
  it('creates missing directories and appends JSON lines', async () => {
    const file = fresh();
    const ex = FileExporter.open({ path: file, maxBytes: 1 << 20, maxBackups: 2 });
    await ex.write(lines(0, 3));
    await ex.write(lines(3, 5));
    await ex.close();
    assert.deepEqual(read(file), lines(0, 5));
    const s = ex.stats();
    assert.equal(s.events_written, 5);
    assert.equal(s.bytes_written, statSync(file).size);
    assert.equal(s.rotations, 0);
  });

  it('takes a copy of the lines as they are handed over, and counts them until they are written', async () => {
    const file = fresh();
    const ex = FileExporter.open({ path: file, maxBytes: 1 << 20, maxBackups: 2 });
    const bytes = Buffer.from(line(1));
    // batches handed over back to back, the later ones waiting behind the first write
    const first = ex.write(lines(0, 1));
    const second = ex.write([bytes, line(2)]);
    assert.deepEqual(ex.backlog(), { events: 3, bytes: 3 * (Buffer.byteLength(line(0)) + 1) });
    // what the caller does with its buffers afterwards is not what is written
    bytes.fill(0x21);
    await Promise.all([first, second]);
    assert.deepEqual(ex.backlog(), { events: 0, bytes: 0 });
    await ex.close();
    assert.deepEqual(read(file), lines(0, 3));
  });

  it('writes batches handed over while a write is under way together, in order, across rotations', async () => {
    const file = fresh();
    const size = Buffer.byteLength(line(0)) + 1;
    // room for 40 lines a file: the 60 batches of 3 below fill files 1..4 and part of a fifth
    const ex = FileExporter.open({ path: file, maxBytes: size * 40, maxBackups: 10 });
    const done: Promise<void>[] = [];
    for (let b = 0; b < 60; b++) done.push(ex.write(lines(b * 3, b * 3 + 3)));
    await Promise.all(done);
    await ex.close();
    const all = [5, 4, 3, 2, 1].flatMap((k) => read(`${file}.${k}`)).concat(read(file));
    assert.deepEqual(all, lines(0, 180));
    for (const k of [1, 2, 3, 4]) assert.ok(statSync(`${file}.${k}`).size <= size * 40);
    assert.equal(ex.stats().events_written, 180);
  });

  it('lets lines that find it idle wait the write delay for the ones after them, and writes them together', async () => {
    const file = fresh();
    const ex = FileExporter.open({ path: file, maxBytes: 1 << 20, maxBackups: 2, writeDelayMs: 50 });
    const t0 = performance.now();
    const first = ex.write(lines(0, 2));
    await new Promise((r) => setTimeout(r, 10));
    const second = ex.write(lines(2, 4));
    assert.equal(second, first, 'one write for both');
    await second;
    assert.ok(performance.now() - t0 >= 49, 'not before the delay');
    await ex.close();
    assert.deepEqual(read(file), lines(0, 4));
  });

  it('rotates file -> file.1 -> file.2, keeps max-backups, and never exceeds the size', async () => {
    const file = fresh();
    const size = Buffer.byteLength(line(0)) + 1;
    const maxBytes = size * 4; // four short lines per file, three of the longer ones
    const ex = FileExporter.open({ path: file, maxBytes, maxBackups: 2 });
    // batches of 3 lines over 7 batches: 21 lines
    for (let b = 0; b < 7; b++) await ex.write(lines(b * 3, b * 3 + 3));
    await ex.close();

    for (const p of [file, `${file}.1`, `${file}.2`]) {
      assert.ok(existsSync(p), `${p} exists`);
      assert.ok(statSync(p).size <= maxBytes, `${p} is ${statSync(p).size} bytes, over ${maxBytes}`);
    }
    assert.ok(!existsSync(`${file}.3`), 'no more backups than max-backups');
    // oldest to newest, the kept files hold a contiguous run ending at the last line
    const kept = [...read(`${file}.2`), ...read(`${file}.1`), ...read(file)].map(
      (l) => (JSON.parse(l) as { seq: number }).seq,
    );
    assert.equal(kept.at(-1), 20);
    for (let k = 1; k < kept.length; k++) assert.equal(kept[k], kept[k - 1]! + 1);
    assert.ok(ex.stats().rotations >= 4);
    assert.equal(ex.stats().events_written, 21);
  });

  it('gzips rotated files and shifts the .gz backups', async () => {
    const file = fresh();
    // two-digit sequence numbers: every line has the same length
    const size = Buffer.byteLength(line(10)) + 1;
    const ex = FileExporter.open({ path: file, maxBytes: size * 4, maxBackups: 2, compress: true });
    for (let b = 0; b < 3; b++) await ex.write(lines(10 + b * 4, 14 + b * 4));
    await ex.close();
    assert.deepEqual(gz(`${file}.2.gz`), lines(10, 14));
    assert.deepEqual(gz(`${file}.1.gz`), lines(14, 18));
    assert.deepEqual(read(file), lines(18, 22));
    assert.ok(!existsSync(`${file}.1`) && !existsSync(`${file}.2`), 'no uncompressed backups left');
    assert.equal(ex.stats().compress, true);
  });

  it('keeps writing while a gzip fails, and leaves the rotated file for the next agent to gzip', async () => {
    const file = fresh();
    const size = Buffer.byteLength(line(10)) + 1;
    const errors: string[] = [];
    const ex = FileExporter.open({
      path: file,
      maxBytes: size * 4,
      maxBackups: 3,
      compress: true,
      onError: (e) => errors.push(e.message),
    });
    // the gzip's output cannot be created
    mkdirSync(`${file}.gz.tmp`);
    for (let b = 0; b < 2; b++) await ex.write(lines(10 + b * 4, 14 + b * 4));
    await ex.close();
    assert.deepEqual(read(file), lines(14, 18), 'writing went on in a fresh file');
    assert.equal(ex.stats().events_written, 8);
    assert.match(errors.join('\n'), /compress .*events\.log\.rotated\.\d+\.0: /);
    const left = readdirSync(path.dirname(file)).filter((f) => f.includes('.rotated.'));
    assert.equal(left.length, 1, `left: ${left.join(' ')}`);
    assert.equal(ex.stats().compress_pending, 0);
    // the next agent on the same file gzips it
    rmdirSync(`${file}.gz.tmp`);
    const next = FileExporter.open({ path: file, maxBytes: size * 4, maxBackups: 3, compress: true });
    await next.close();
    assert.deepEqual(gz(`${file}.1.gz`), lines(10, 14));
    assert.deepEqual(
      readdirSync(path.dirname(file)).sort(),
      ['events.log', 'events.log.1.gz'],
      'nothing else left',
    );
  });

  it('gzips files left rotated, oldest first, and only as many as there are backups to keep', async () => {
    const file = fresh();
    mkdirSync(path.dirname(file), { recursive: true });
    // five files an agent rotated and left, two in the same millisecond
    const names = ['1000.0', '1000.1', '999.7', '2000.0', '1500.3'];
    for (const [k, n] of names.entries()) writeFileSync(`${file}.rotated.${n}`, `${line(k)}\n`);
    writeFileSync(`${file}.rotated.x`, 'not ours\n');
    const ex = FileExporter.open({ path: file, maxBytes: 1 << 20, maxBackups: 2, compress: true });
    await ex.compressed();
    // oldest first: 999.7, 1000.0, 1000.1, 1500.3, 2000.0; the two newest kept
    assert.deepEqual(gz(`${file}.1.gz`), [line(3)]);
    assert.deepEqual(gz(`${file}.2.gz`), [line(4)]);
    assert.deepEqual(readdirSync(path.dirname(file)).sort(), [
      'events.log',
      'events.log.1.gz',
      'events.log.2.gz',
      'events.log.rotated.x',
    ]);
    await ex.close();
  });

  it('opens the path again once it no longer names the file it writes (removed, renamed away, its directory removed)', async () => {
    const file = fresh();
    const ex = FileExporter.open({ path: file, maxBytes: 1 << 20, maxBackups: 2 });
    try {
      await ex.write(lines(0, 2));
      unlinkSync(file);
      // looked at once a second: until then the lines go where they went
      await new Promise((r) => setTimeout(r, 1100));
      await ex.write(lines(2, 4));
      assert.deepEqual(read(file), lines(2, 4), 'a removed file is made again');
      renameSync(file, `${file}.theirs`);
      await new Promise((r) => setTimeout(r, 1100));
      await ex.write(lines(4, 6));
      assert.deepEqual(read(file), lines(4, 6));
      assert.deepEqual(read(`${file}.theirs`), lines(2, 4), 'a file renamed away keeps what it had');
      assert.equal(ex.stats().events_written, 6);
      assert.equal(ex.stats().size_bytes, statSync(file).size);
      // its whole directory removed: made again, as at the start
      rmSync(path.dirname(file), { recursive: true });
      await new Promise((r) => setTimeout(r, 1100));
      await ex.write(lines(6, 8));
      assert.deepEqual(read(file), lines(6, 8), 'a removed directory is made again');
      assert.equal(ex.stats().events_written, 8);
      assert.equal(ex.stats().events_lost, 0);
    } finally {
      await ex.close();
    }
  });

  it('rotates a non-empty file when the rotation interval has passed, and leaves an empty one', async () => {
    const file = fresh();
    const ex = FileExporter.open({ path: file, maxBytes: 1 << 20, maxBackups: 3, rotateIntervalMs: 150 });
    await ex.write(lines(0, 2));
    await new Promise((r) => setTimeout(r, 400));
    await ex.flush();
    await ex.write(lines(2, 3));
    await new Promise((r) => setTimeout(r, 400));
    await ex.flush();
    const rotations = ex.stats().rotations;
    await new Promise((r) => setTimeout(r, 400));
    await ex.close();
    assert.deepEqual(read(`${file}.2`), lines(0, 2));
    assert.deepEqual(read(`${file}.1`), lines(2, 3));
    assert.deepEqual(read(file), []);
    assert.equal(rotations, 2);
    assert.equal(ex.stats().rotations, 2, 'an empty file is not rotated');
  });

  it('splits a batch that crosses the limit at a line boundary', async () => {
    const file = fresh();
    const size = Buffer.byteLength(line(0)) + 1;
    const ex = FileExporter.open({ path: file, maxBytes: size * 4, maxBackups: 3 });
    await ex.write(lines(0, 10)); // one batch: 4 + 4 + 2
    await ex.close();
    assert.deepEqual(read(`${file}.2`), lines(0, 4));
    assert.deepEqual(read(`${file}.1`), lines(4, 8));
    assert.deepEqual(read(file), lines(8, 10));
    assert.equal(ex.stats().rotations, 2);
  });

  it('counts an existing file toward the limit when it opens', async () => {
    const file = fresh();
    const size = Buffer.byteLength(line(0)) + 1;
    FileExporter.open({ path: file, maxBytes: 1, maxBackups: 1 }); // creates the directory
    writeFileSync(file, `${lines(100, 103).join('\n')}\n`);
    const ex = FileExporter.open({ path: file, maxBytes: size * 4, maxBackups: 1 });
    await ex.write(lines(0, 2));
    await ex.close();
    assert.deepEqual(read(`${file}.1`), lines(100, 103));
    assert.deepEqual(read(file), lines(0, 2));
  });

  it('with max-backups 0 starts over without keeping old files', async () => {
    const file = fresh();
    const size = Buffer.byteLength(line(0)) + 1;
    const ex = FileExporter.open({ path: file, maxBytes: size * 2, maxBackups: 0 });
    await ex.write(lines(0, 5));
    await ex.close();
    assert.deepEqual(read(file), lines(4, 5));
    assert.ok(!existsSync(`${file}.1`));
  });

  it('writes a line larger than the limit alone into its own file', async () => {
    const file = fresh();
    const big = JSON.stringify({ big: 'y'.repeat(500) });
    const ex = FileExporter.open({ path: file, maxBytes: 100, maxBackups: 3 });
    await ex.write([line(0), big, line(1)]);
    await ex.close();
    assert.deepEqual(read(`${file}.2`), [line(0)]);
    assert.deepEqual(read(`${file}.1`), [big]);
    assert.deepEqual(read(file), [line(1)]);
  });

  it('refuses an unwritable path at open, naming it and what to do', () => {
    const blocker = path.join(root, 'not-a-dir');
    writeFileSync(blocker, '');
    assert.throws(
      () => FileExporter.open({ path: path.join(blocker, 'events.log'), maxBytes: 100, maxBackups: 1 }),
      (err: Error) =>
        err.message.includes(blocker) && /ENOTDIR/.test(err.message) && err.message.includes('--export-file'),
    );
    assert.throws(
      () => FileExporter.open({ path: '/proc/osprey-no/x', maxBytes: 100, maxBackups: 1 }),
      /cannot create directory \/proc\/osprey-no .*ENOENT/,
    );
  });

  it('rejects a bad size or backup count', () => {
    assert.throws(() => FileExporter.open({ path: fresh(), maxBytes: 0, maxBackups: 1 }), /size limit 0/);
    assert.throws(() => FileExporter.open({ path: fresh(), maxBytes: 10, maxBackups: -1 }), /backups -1/);
  });
});
