import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Process } from '../../src/events/types.js';
import { type EntryOrigin, ProcessCache, type ProcessEntry } from '../../src/process/index.js';

function proc(execId: string, pid: number, parentExecId?: string): Process {
  return {
    exec_id: execId,
    pid,
    uid: 0,
    cwd: '/',
    binary: `/bin/${execId}`,
    arguments: '',
    flags: 'execve',
    start_time: '2026-01-01T00:00:00.000000000Z',
    auid: 4294967295,
    parent_exec_id: parentExecId,
    tid: pid,
  };
}

function add(
  c: ProcessCache,
  execId: string,
  pid: number,
  parent?: ProcessEntry,
  origin: EntryOrigin = 'exec',
  replaces?: ProcessEntry,
): ProcessEntry {
  return c.add(proc(execId, pid, parent?.process.exec_id), {
    pid,
    startNs: BigInt(pid),
    origin,
    parent,
    replaces,
  });
}

describe('ProcessCache', () => {
  test('finds entries by pid and exec_id, and counts live and exited', () => {
    const c = new ProcessCache(10);
    const a = add(c, 'a', 1);
    const b = add(c, 'b', 2, a);
    assert.equal(c.get(2), b);
    assert.equal(c.byExecId('a'), a);
    assert.deepEqual(c.stats(), { size: 2, live: 2, exited: 0, evictions: 0 });
    c.end(b);
    assert.equal(c.get(2)?.exited, true, 'a recently exited pid is still found');
    assert.deepEqual(c.stats(), { size: 2, live: 1, exited: 1, evictions: 0 });
  });

  test("a thread's view of its process is a copy with its tid, made once and kept", () => {
    const c = new ProcessCache(10);
    const a = add(c, 'a', 100);
    assert.equal(a.thread(100), a.process, 'the main thread is the process itself');
    const t = a.thread(101);
    assert.notEqual(t, a.process);
    // the same JSON (the copy names every field of a process, absent ones as undefined)
    assert.equal(JSON.stringify(t), JSON.stringify({ ...a.process, tid: 101 }));
    assert.equal(a.process.tid, 100, 'the cached process is not changed');
    assert.equal(a.thread(101), t, 'the same copy for the next event of that thread');
    // a process with many threads: copies are made again past the bound, never wrong
    for (let tid = 102; tid < 140; tid++) assert.equal(a.thread(tid).tid, tid);
    assert.equal(a.thread(101).tid, 101);
  });

  test('ancestors are parent first; children are the direct ones', () => {
    const c = new ProcessCache(10);
    const a = add(c, 'a', 1);
    const b = add(c, 'b', 2, a);
    const d = add(c, 'd', 3, b);
    add(c, 'e', 4, b);
    assert.deepEqual(
      c.ancestors(d.process.exec_id).map((p) => p.exec_id),
      ['b', 'a'],
    );
    assert.deepEqual(
      c
        .children('b')
        .map((p) => p.exec_id)
        .sort(),
      ['d', 'e'],
    );
    assert.deepEqual(c.ancestors('nope'), []);
    assert.deepEqual(c.children('nope'), []);
  });

  test('exited ancestors of a live process are never evicted, however many exit after them', () => {
    const c = new ProcessCache(2);
    const a = add(c, 'a', 1);
    const b = add(c, 'b', 2, a);
    const d = add(c, 'd', 3, b);
    c.end(a);
    c.end(b);
    for (let i = 0; i < 50; i++) c.end(add(c, `x${i}`, 100 + i));
    assert.deepEqual(
      c.ancestors('d').map((p) => p.exec_id),
      ['b', 'a'],
    );
    assert.equal(c.stats().evictions, 48);
    // once the last live descendant exits, they queue up and age out like any other
    c.end(d);
    for (let i = 0; i < 3; i++) c.end(add(c, `y${i}`, 200 + i));
    assert.equal(c.byExecId('a'), undefined);
    assert.equal(c.byExecId('b'), undefined);
    assert.equal(c.byExecId('d'), undefined);
    assert.equal(c.stats().size, 2);
  });

  test('the oldest exited entries go first and are counted', () => {
    const c = new ProcessCache(3);
    for (let i = 0; i < 5; i++) c.end(add(c, `p${i}`, 10 + i));
    assert.deepEqual(c.stats(), { size: 3, live: 0, exited: 3, evictions: 2 });
    assert.equal(c.byExecId('p0'), undefined);
    assert.equal(c.byExecId('p1'), undefined);
    assert.ok(c.byExecId('p4'));
    assert.equal(c.get(10), undefined, 'an evicted pid is no longer found');
  });

  test('maxExited 0 keeps only what is live or held', () => {
    const c = new ProcessCache(0);
    const a = add(c, 'a', 1);
    const b = add(c, 'b', 2, a);
    c.end(a);
    assert.ok(c.byExecId('a'), 'held by its live child');
    c.end(b);
    assert.equal(c.stats().size, 0);
  });

  test('a forked entry replaced by exec before it had children is dropped at once', () => {
    const c = new ProcessCache(10);
    const sh = add(c, 'sh', 1);
    const clone = add(c, 'clone', 2, sh, 'clone');
    const ls = add(c, 'ls', 2, sh, 'exec', clone);
    assert.equal(c.byExecId('clone'), undefined);
    assert.equal(c.get(2), ls);
    assert.deepEqual(c.stats(), { size: 2, live: 2, exited: 0, evictions: 0 });
  });

  test('an exec chain keeps the old image while its children live', () => {
    const c = new ProcessCache(10);
    const init = add(c, 'init', 1);
    const old = add(c, 'old', 5, init);
    const kid = add(c, 'kid', 6, old);
    const next = add(c, 'new', 5, init, 'exec', old);
    assert.equal(old.exited, true);
    assert.equal(old.replacedBy, 'new');
    assert.equal(c.get(5), next);
    assert.deepEqual(
      c.ancestors(kid.process.exec_id).map((p) => p.exec_id),
      ['old', 'init'],
    );
  });

  test('a live entry under a pid that gets a new process is ended (its exit was missed)', () => {
    const c = new ProcessCache(10);
    const a = add(c, 'a', 7);
    add(c, 'b', 7);
    assert.equal(a.exited, true);
    assert.equal(c.stats().live, 1);
  });

  test('adding a cached exec_id again returns the cached entry', () => {
    const c = new ProcessCache(10);
    const a = add(c, 'a', 7);
    assert.equal(add(c, 'a', 7), a);
    assert.equal(c.stats().size, 1);
  });

  test('live() lists live entries only', () => {
    const c = new ProcessCache(10);
    add(c, 'a', 1);
    c.end(add(c, 'b', 2));
    assert.deepEqual(
      [...c.live()].map((e) => e.pid),
      [1],
    );
  });

  test('refuses a bad maxExited with the value in the message', () => {
    assert.throws(() => new ProcessCache(-1), /maxExited -1/);
    assert.throws(() => new ProcessCache(1.5), /maxExited 1.5/);
  });
});
