// The kernel bridge against the real kernel: load, verifier errors, every
// attach type, typed maps, pinning, the ring-buffer reader, feature probes,
// and detaching on close and on process death.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  bpfObjectPath,
  Collection,
  KernelError,
  probeFeatures,
  programStats,
  repoRoot,
  u32,
  u64,
} from '../../src/kernel/index.js';
import { countPrograms, makeTestCgroup, programLoaded } from '../lib/bpf.js';

const BRIDGE = bpfObjectPath('test/bridge');
const BAD = bpfObjectPath('test/bad');
const opened: Collection[] = [];

function load(): Collection {
  const c = Collection.load(BRIDGE);
  opened.push(c);
  c.map('target', u32, u32).update(0, process.pid);
  return c;
}

after(() => {
  for (const c of opened) c.close();
});

/** A record of the test object's getppid program made by this process (others' calls post too). */
function isOurs(buf: Buffer, off: number): boolean {
  return buf.readUInt32LE(off) === 1 && buf.readUInt32LE(off + 4) === process.pid;
}

/** Keeps the thread busy for ms: a slow consumer. */
function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

test('a verifier rejection names the program and carries the log tail', () => {
  assert.throws(
    () => Collection.load(BAD),
    (err: unknown) => {
      assert.ok(err instanceof KernelError);
      assert.equal(err.program, 'rejected_by_verifier');
      assert.match(err.message, /rejected_by_verifier/);
      // the verifier's verdict on the unchecked map value
      assert.match(err.message, /invalid mem access|map_value_or_null/);
      return true;
    },
  );
  assert.equal(countPrograms('rejected_by_ver'), 0);
});

test('a program left out of a load (skipPrograms: its hook is not in this kernel) is not loaded, and the rest of the object is', () => {
  const c = Collection.load(BAD, { skipPrograms: ['rejected_by_verifier'] });
  try {
    assert.equal(countPrograms('rejected_by_ver'), 0, 'never given to the verifier');
    const p = c.programs().find((x) => x.name === 'rejected_by_verifier');
    assert.ok(p && p.fd < 0, `not loaded: ${JSON.stringify(p)}`);
    assert.throws(() => c.attach('rejected_by_verifier'));
    assert.ok(c.mapInfo('counts').fd >= 0, 'its maps are made');
  } finally {
    c.close();
  }
  assert.throws(
    () => Collection.load(BRIDGE, { skipPrograms: ['no_such_program'] }),
    /no program named no_such_program/,
  );
});

test('a missing object file says how to build it', () => {
  assert.throws(() => Collection.load('/nonexistent/x.bpf.o'), /does not exist; run scripts\/setup.sh/);
});

test('tracepoint program counts into a hash map and a per-CPU map, and the ring delivers batches', async () => {
  const c = load();
  const records: { kind: number; pid: number }[] = [];
  const { RingReader } = await import('../../src/kernel/ring.js');
  const reader = new RingReader(c.mapInfo('ring').fd, (buf, off) => {
    records.push({ kind: buf.readUInt32LE(off), pid: buf.readUInt32LE(off + 4) });
  });
  try {
    const link = c.attachTracepoint('tp_getppid', 'syscalls', 'sys_enter_getppid');
    for (let i = 0; i < 50; i++) void process.ppid; // getppid(2) each time
    await sleep(50);
    reader.drain();
    const hits = c.map('hits', u32, u64);
    assert.equal(hits.lookup(1), 50n);
    const perCpu = c.map('counters', u32, u64).lookupPerCpu(1)!;
    assert.equal(
      perCpu.reduce((a, b) => a + b, 0n),
      50n,
    );
    assert.equal(records.filter((r) => r.kind === 1 && r.pid === process.pid).length, 50);
    // one crossing per wake-up, not per record
    assert.ok(reader.batches <= reader.records);
    link.destroy();
    for (let i = 0; i < 10; i++) void process.ppid;
    assert.equal(hits.lookup(1), 50n, 'no hits after detach');
  } finally {
    reader.close();
  }
});

test('a record reader hands a big wake-up over in pieces of at most MAX_HANDOFF, in ring order', async () => {
  const c = load();
  const { RecordReader, MAX_HANDOFF } = await import('../../src/kernel/ring.js');
  const pieces: number[][] = [];
  let seq = 0;
  const reader = new RecordReader(
    c.mapInfo('ring').fd,
    // ours numbered in the order the ring gives them; others' records refused
    (buf, off) => (isOurs(buf, off) ? seq++ : undefined),
    (items) => pieces.push(items),
  );
  const link = c.attachTracepoint('tp_getppid', 'syscalls', 'sys_enter_getppid');
  try {
    // all in the ring before the reader runs: one wake-up's worth
    for (let i = 0; i < 1000; i++) void process.ppid;
    reader.drain();
    const all = pieces.flat();
    assert.equal(all.length, 1000);
    assert.deepEqual(all, [...all.keys()], 'in ring order, none twice');
    assert.ok(
      pieces.every((p) => p.length >= 1 && p.length <= MAX_HANDOFF),
      `pieces of ${pieces.map((p) => p.length).join(', ')}`,
    );
    assert.ok(pieces.length >= Math.ceil(1000 / MAX_HANDOFF));
  } finally {
    link.destroy();
    reader.close();
  }
});

test('a wake-up that takes longer than a slice lets the loop turn between slices; drain() takes the rest at once', async () => {
  const c = load();
  const { RingReader, SLICE_MS } = await import('../../src/kernel/ring.js');
  const seen: number[] = [];
  // ours counted; others' records (the ring is the test object's) ignored
  const reader = new RingReader(c.mapInfo('ring').fd, (buf, off) => {
    if (!isOurs(buf, off)) return;
    seen.push(seen.length);
    // a slow consumer: 64 records (the reader looks at the clock every 64) outlast a slice
    spin((SLICE_MS * 1.5) / 64);
  });
  const link = c.attachTracepoint('tp_getppid', 'syscalls', 'sys_enter_getppid');
  try {
    let handledWhenImmediateRan = -1;
    // 1,000 records in the ring before the reader's wake-up is handled: one read
    for (let i = 0; i < 1000; i++) void process.ppid;
    const t0 = Date.now();
    while (seen.length === 0 && Date.now() - t0 < 5000) await sleep(1);
    // handling has begun, and a timer set now runs while it goes on
    const handledBefore = seen.length;
    let handledWhenTimerRan = -1;
    await new Promise<void>((resolve) =>
      setTimeout(() => {
        handledWhenTimerRan = seen.length;
        resolve();
      }, 0),
    );
    assert.ok(
      handledBefore > 0 && handledWhenTimerRan < 1000,
      `timers ran after ${handledBefore} and ${handledWhenTimerRan} of 1000 records`,
    );
    assert.ok(reader.yields > 0);
    // what is left comes in one go with drain(), before anything else runs
    setImmediate(() => {
      handledWhenImmediateRan = seen.length;
    });
    reader.drain();
    assert.equal(seen.length, 1000, 'every record, none twice');
    await sleep(5);
    assert.equal(handledWhenImmediateRan, 1000);
    assert.equal(reader.backlogBytes, 0);
  } finally {
    link.destroy();
    reader.close();
  }
});

test('past its bound of records read and not handled, a reader handles a wake-up whole', async () => {
  const c = load();
  const { RingReader, SLICE_MS } = await import('../../src/kernel/ring.js');
  let ours = 0;
  // a bound of 1 byte: any backlog is past it
  const reader = new RingReader(
    c.mapInfo('ring').fd,
    (buf, off) => {
      if (!isOurs(buf, off)) return;
      ours++;
      spin((SLICE_MS * 1.5) / 64);
    },
    undefined,
    0,
    -1,
    SLICE_MS,
    1,
  );
  const link = c.attachTracepoint('tp_getppid', 'syscalls', 'sys_enter_getppid');
  try {
    for (let i = 0; i < 1000; i++) void process.ppid;
    const t0 = Date.now();
    while (ours === 0 && Date.now() - t0 < 5000) await sleep(1);
    // the first turn of the loop after handling began finds it done
    assert.equal(ours, 1000);
    assert.equal(reader.yields, 0);
  } finally {
    link.destroy();
    reader.close();
  }
});

test('a consumer that closes its reader gets no record after that, and one that throws gets the rest on the next turn', async () => {
  const c = load();
  const { RingReader } = await import('../../src/kernel/ring.js');
  const link = c.attachTracepoint('tp_getppid', 'syscalls', 'sys_enter_getppid');
  try {
    let seen = 0;
    const closing: { reader?: InstanceType<typeof RingReader> } = {};
    closing.reader = new RingReader(c.mapInfo('ring').fd, (buf, off) => {
      if (!isOurs(buf, off)) return;
      if (++seen === 10) closing.reader!.close();
    });
    for (let i = 0; i < 100; i++) void process.ppid;
    closing.reader.drain();
    assert.equal(seen, 10, 'nothing after the close');
    assert.equal(closing.reader.backlogBytes, 0);

    let got = 0;
    let thrown = false;
    const throwing = new RingReader(c.mapInfo('ring').fd, (buf, off) => {
      if (!isOurs(buf, off)) return;
      got++;
      if (got === 10 && !thrown) {
        thrown = true;
        throw new Error('consumer failed');
      }
    });
    try {
      for (let i = 0; i < 100; i++) void process.ppid;
      assert.throws(() => throwing.drain(), /consumer failed/);
      assert.equal(got, 10);
      // no new record comes, yet the other 90 are handed over on the next turns of the loop
      const t0 = Date.now();
      while (got < 100 && Date.now() - t0 < 2000) await sleep(1);
      assert.equal(got, 100);
    } finally {
      throwing.close();
    }
  } finally {
    link.destroy();
  }
});

test("a reader's depth: the bytes of records in its ring, and none once they are handled", async () => {
  const c = load();
  const { RingReader } = await import('../../src/kernel/ring.js');
  let ours = 0;
  const reader = new RingReader(c.mapInfo('ring').fd, (buf, off) => {
    if (isOurs(buf, off)) ours++;
  });
  const link = c.attachTracepoint('tp_getppid', 'syscalls', 'sys_enter_getppid');
  try {
    reader.drain();
    const before = reader.pendingBytes;
    // posted by the kernel, not read yet: the reader runs on the event loop, which has not turned
    for (let i = 0; i < 100; i++) void process.ppid;
    const depth = reader.pendingBytes;
    assert.ok(depth - before >= 100 * 16, `depth ${before} -> ${depth} bytes after 100 records`);
    reader.drain();
    assert.equal(ours, 100);
    assert.equal(reader.backlogBytes, 0);
    assert.ok(reader.pendingBytes < depth, `depth ${reader.pendingBytes} after the drain`);
  } finally {
    link.destroy();
    reader.close();
  }
  assert.equal(reader.pendingBytes, 0, 'a closed reader has no depth');
});

test('ring hold-off: a lone record comes at once, a burst after it in one more batch', async () => {
  const c = load();
  const { RingReader } = await import('../../src/kernel/ring.js');
  let batch = 0;
  let ours = 0;
  const batchesWithOurs = new Set<number>();
  const reader = new RingReader(
    c.mapInfo('ring').fd,
    (buf, off) => {
      if (isOurs(buf, off)) {
        ours++;
        batchesWithOurs.add(batch);
      }
    },
    () => batch++,
    50,
  );
  const link = c.attachTracepoint('tp_getppid', 'syscalls', 'sys_enter_getppid');
  try {
    // quiet ring: the first record wakes the reader, no drain() and no 50 ms wait needed
    void process.ppid;
    const t0 = Date.now();
    while (ours === 0 && Date.now() - t0 < 2000) await sleep(1);
    assert.equal(ours, 1, 'the lone record was delivered');
    // five bursts, 2 ms apart: within the hold-off, so read together
    for (let b = 0; b < 5; b++) {
      for (let i = 0; i < 20; i++) void process.ppid;
      await sleep(2);
    }
    const t1 = Date.now();
    while (ours < 101 && Date.now() - t1 < 2000) await sleep(5);
    assert.equal(ours, 101);
    // the lone record's batch, then the bursts in one (two when the machine stalls the test)
    assert.ok(batchesWithOurs.size <= 3, `records came in ${batchesWithOurs.size} batches`);
    await sleep(120);
    // idle again: back to waking on the fd, so one more record comes at once
    const before = ours;
    void process.ppid;
    const t2 = Date.now();
    while (ours === before && Date.now() - t2 < 2000) await sleep(1);
    assert.equal(ours, before + 1);
    assert.ok(Date.now() - t2 < 40, `took ${Date.now() - t2} ms with a 50 ms hold-off`);
  } finally {
    link.destroy();
    reader.close();
  }
  assert.throws(() => new RingReader(c.mapInfo('ring').fd, () => {}, undefined, -1), /hold-off -1 ms/);
});

test('ring wake-up word: the programs wake the reader only while it waits on the fd', async () => {
  const c = load();
  const { RingReader } = await import('../../src/kernel/ring.js');
  const word = c.map('ring_waits', u32, u64);
  const BUSY = 1n;
  const WAITS = 2n;
  let ours = 0;
  /** the word while each of our records was being delivered */
  const wordAtDelivery: (bigint | undefined)[] = [];
  const reader = new RingReader(
    c.mapInfo('ring').fd,
    (buf, off) => {
      if (isOurs(buf, off)) {
        ours++;
        wordAtDelivery.push(word.lookup(0));
      }
    },
    undefined,
    50,
    c.mapInfo('ring_waits').fd,
  );
  const link = c.attachTracepoint('tp_getppid', 'syscalls', 'sys_enter_getppid');
  try {
    assert.equal(word.lookup(0), WAITS, 'a new reader waits on the fd');
    // a lone record wakes it at once, and says so in the word
    void process.ppid;
    const t0 = Date.now();
    while (ours === 0 && Date.now() - t0 < 2000) await sleep(1);
    assert.equal(ours, 1, 'the lone record was delivered');
    assert.ok(Date.now() - t0 < 40, `took ${Date.now() - t0} ms with a 50 ms hold-off`);
    assert.equal(wordAtDelivery[0], BUSY, 'while it reads (and holds off after), records do not wake it');
    // records during the hold-off are read by its timer
    for (let i = 0; i < 20; i++) void process.ppid;
    const t1 = Date.now();
    while (ours < 21 && Date.now() - t1 < 2000) await sleep(5);
    assert.equal(ours, 21);
    // a read that finds nothing goes back to the fd, and the word to waiting
    const t2 = Date.now();
    while (word.lookup(0) !== WAITS && Date.now() - t2 < 2000) await sleep(5);
    assert.equal(word.lookup(0), WAITS);
    void process.ppid;
    const t3 = Date.now();
    while (ours === 21 && Date.now() - t3 < 2000) await sleep(1);
    assert.equal(ours, 22, 'a record after the quiet spell wakes it again');
    // a wake-up that finds nothing to read leaves it waiting, not deaf
    const t4 = Date.now();
    while (word.lookup(0) !== WAITS && Date.now() - t4 < 2000) await sleep(5);
    const spurious = c.attachTracepoint('tp_getuid_wake', 'syscalls', 'sys_enter_getuid');
    try {
      process.getuid?.();
      await sleep(100);
    } finally {
      spurious.destroy();
    }
    assert.equal(word.lookup(0), WAITS, 'after a wake-up with nothing to read');
    void process.ppid;
    const t5 = Date.now();
    while (ours === 22 && Date.now() - t5 < 2000) await sleep(1);
    assert.equal(ours, 23, 'the next record still wakes it');
  } finally {
    link.destroy();
    reader.close();
  }
  assert.equal(word.lookup(0), 0n, 'a closed reader hands wake-ups back to the kernel');
});

for (const holdoffMs of [0, 50]) {
  test(`ring wake-up word: a drain() that takes the records a wake-up was for leaves the reader waiting, not deaf (hold-off ${holdoffMs} ms)`, async () => {
    const c = load();
    const { RingReader } = await import('../../src/kernel/ring.js');
    const word = c.map('ring_waits', u32, u64);
    const WAITS = 2n;
    let ours = 0;
    const reader = new RingReader(
      c.mapInfo('ring').fd,
      (buf, off) => {
        if (isOurs(buf, off)) ours++;
      },
      undefined,
      holdoffMs,
      c.mapInfo('ring_waits').fd,
    );
    const link = c.attachTracepoint('tp_getppid', 'syscalls', 'sys_enter_getppid');
    try {
      assert.equal(word.lookup(0), WAITS);
      // the record's program takes the word (it wakes us) and the drain, before the loop
      // turns, reads the record: as a policy's events drain the process sensor's ring
      void process.ppid;
      assert.equal(reader.drain(), 1, 'the drain read the record');
      assert.equal(ours, 1);
      const after = word.lookup(0);
      await sleep(holdoffMs + 20);
      void process.ppid;
      const t0 = Date.now();
      while (ours === 1 && Date.now() - t0 < 1000) await sleep(1);
      assert.equal(ours, 2, 'the next record woke the reader');
      assert.equal(after, WAITS, 'after the drain the reader said it waits again');
    } finally {
      link.destroy();
      reader.close();
    }
  });
}

test('typed map access: update, lookup, delete, iterate, batch lookup', () => {
  const c = load();
  const hits = c.map('hits', u32, u64);
  for (let k = 100; k < 400; k++) hits.update(k, BigInt(k * 2));
  assert.equal(hits.lookup(123), 246n);
  assert.equal(hits.delete(123), true);
  assert.equal(hits.delete(123), false);
  assert.equal(hits.lookup(123), undefined);
  const keys = [...hits.keys()].filter((k) => k >= 100);
  assert.equal(keys.length, 299);
  const all = hits.lookupAll(64).filter(([k]) => k >= 100);
  assert.equal(all.length, 299);
  assert.ok(all.every(([k, v]) => v === BigInt(k * 2)));
  assert.throws(() => c.map('hits', u64, u64), /key codec is 8 bytes, map key is 4/);
});

test('typed map access: entries written and deleted as packed bytes, in batches and one by one', () => {
  const c = load();
  for (const batched of [true, false]) {
    const hits = c.map('hits', u32, u64);
    // the path the kernel takes when it has no batch operation for a map type
    if (!batched) (hits as unknown as { batches: boolean }).batches = false;
    const n = 300;
    const keys = Buffer.alloc(n * 4);
    const vals = Buffer.alloc(n * 8);
    for (let i = 0; i < n; i++) {
      keys.writeUInt32LE(1000 + i, i * 4);
      vals.writeBigUInt64LE(BigInt(i * 3), i * 8);
    }
    hits.updateMany(keys, vals, n);
    assert.equal(hits.lookup(1000), 0n);
    assert.equal(hits.lookup(1299), 897n);
    assert.equal(hits.lookup(1300), undefined);
    // a key that is not there (1150, deleted first) is passed over, the rest still go
    assert.equal(hits.delete(1150), true);
    assert.equal(hits.deleteMany(keys, n), n - 1, `deleted (${batched ? 'batch' : 'one by one'})`);
    for (let i = 0; i < n; i++) assert.equal(hits.lookup(1000 + i), undefined);
    assert.throws(() => hits.updateMany(keys, vals, n + 1), /301 keys of 4 bytes do not fit 1200/);
  }
  const full = c.map('hits', u32, u64);
  const many = 2000;
  const k = Buffer.alloc(many * 4);
  for (let i = 0; i < many; i++) k.writeUInt32LE(5000 + i, i * 4);
  assert.throws(
    () => full.updateMany(k, Buffer.alloc(many * 8), many),
    /map hits: update batch \(\d+ done before the failure\): .*(too big|No space|Argument list)/i,
    'a map that fills up half-way says how far it got',
  );
  full.deleteMany(k, many);
});

test('raw_tp and tp_btf attach and fire', async () => {
  const c = load();
  c.attach('raw_sys_enter');
  c.attach('btf_sys_enter');
  void process.ppid;
  await sleep(10);
  const hits = c.map('hits', u32, u64);
  assert.ok((hits.lookup(2) ?? 0n) > 0n, 'raw_tp fired');
  assert.ok((hits.lookup(3) ?? 0n) > 0n, 'tp_btf fired');
  const prog = c.programs().find((p) => p.name === 'btf_sys_enter')!;
  assert.equal(programStats(prog.fd).name, 'btf_sys_enter');
});

test('uprobe on a libc function fires for this process', () => {
  const c = load();
  const libc = [
    '/lib/x86_64-linux-gnu/libc.so.6',
    '/usr/lib/x86_64-linux-gnu/libc.so.6',
    '/lib64/libc.so.6',
  ].find(existsSync);
  assert.ok(libc, 'libc found');
  c.attachUprobe('uprobe_fn', libc, 'getppid', { pid: process.pid });
  for (let i = 0; i < 5; i++) void process.ppid;
  assert.ok((c.map('hits', u32, u64).lookup(4) ?? 0n) >= 5n);
});

test('cgroup attach shows on the cgroup and goes away on destroy', () => {
  const c = load();
  const cg = makeTestCgroup('bridge');
  try {
    const link = c.attachCgroup('cg_sock', cg.path);
    const shown = execFileSync('bpftool', ['cgroup', 'show', cg.path], { encoding: 'utf8' });
    assert.match(shown, /cg_sock/);
    link.destroy();
    assert.doesNotMatch(
      execFileSync('bpftool', ['cgroup', 'show', cg.path], { encoding: 'utf8' }),
      /cg_sock/,
    );
  } finally {
    cg.remove();
  }
});

test('tc attach on a veth interface, removed on destroy', () => {
  const c = load();
  const ifname = `ospt${process.pid % 100000}`;
  execFileSync('ip', ['link', 'add', ifname, 'type', 'veth', 'peer', 'name', `${ifname}p`]);
  try {
    const link = c.attachTc('tc_pass', ifname, 'ingress');
    assert.match(
      execFileSync('tc', ['filter', 'show', 'dev', ifname, 'ingress'], { encoding: 'utf8' }),
      /tc_pass/,
    );
    link.destroy();
    assert.doesNotMatch(
      execFileSync('tc', ['filter', 'show', 'dev', ifname, 'ingress'], { encoding: 'utf8' }),
      /tc_pass/,
    );
  } finally {
    execFileSync('ip', ['link', 'del', ifname]);
  }
});

test('pin a map to bpffs and unpin it', () => {
  const c = load();
  const pin = `/sys/fs/bpf/osprey-test-${process.pid}`;
  try {
    c.pinMap('hits', pin);
    assert.ok(existsSync(pin));
    const shown = execFileSync('bpftool', ['-j', 'map', 'show', 'pinned', pin], { encoding: 'utf8' });
    assert.equal(JSON.parse(shown).name, 'hits');
  } finally {
    if (existsSync(pin)) unlinkSync(pin);
  }
  assert.ok(!existsSync(pin));
});

test('close detaches every program of the collection', () => {
  const c = Collection.load(BRIDGE);
  c.attachTracepoint('tp_getppid', 'syscalls', 'sys_enter_getppid');
  const id = programStats(c.programs().find((p) => p.name === 'tp_getppid')!.fd).id;
  assert.ok(programLoaded(id));
  c.close();
  c.close(); // twice is harmless
  assert.ok(!programLoaded(id));
});

test('destroyAsync detaches off the event loop: the link leaves its collection at once, the program stops when it settles', async () => {
  const c = load();
  try {
    const link = c.attachTracepoint('tp_getppid', 'syscalls', 'sys_enter_getppid');
    const hits = c.map('hits', u32, u64);
    const before = hits.lookup(1) ?? 0n;
    for (let i = 0; i < 5; i++) void process.ppid;
    assert.equal(hits.lookup(1), before + 5n);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const done = link.destroyAsync();
    assert.deepEqual(c.attached(), [], 'gone from the collection before the kernel is done');
    await done;
    clearInterval(timer);
    for (let i = 0; i < 5; i++) void process.ppid;
    assert.equal(hits.lookup(1), before + 5n, 'no hits after the detach settled');
    assert.ok(ticks > 0, 'the event loop ran while the kernel detached');
    await link.destroyAsync(); // again: settles, does nothing
  } finally {
    c.close();
  }
});

test('programs are detached when the process that loaded them is killed', async () => {
  const script = `
    import { Collection, bpfObjectPath, programStats } from ${JSON.stringify(path.join(repoRoot, 'dist/src/kernel/index.js'))};
    const c = Collection.load(bpfObjectPath('test/bridge'));
    c.attach('raw_sys_enter');
    console.log(programStats(c.programs().find((p) => p.name === 'raw_sys_enter').fd).id);
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const id = await new Promise<number>((resolve, reject) => {
      child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      child.once('exit', (code) => reject(new Error(`child exited ${code}`)));
    });
    assert.ok(programLoaded(id), 'attached while the child lives');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    for (let i = 0; i < 40 && programLoaded(id); i++) await sleep(50);
    assert.ok(!programLoaded(id), 'gone after SIGKILL');
  } finally {
    child.kill('SIGKILL');
  }
});

test('feature probe reports what this kernel supports', () => {
  const f = probeFeatures();
  assert.equal(f.btf, true);
  assert.equal(f.mapTypes.ringbuf, true);
  assert.equal(f.mapTypes.lpm_trie, true);
  assert.equal(f.progTypes.tracepoint, true);
  assert.equal(f.progTypes.cgroup_sock_addr, true);
  assert.equal(f.helpers.send_signal, true);
  assert.equal(f.kprobes, existsSync('/sys/bus/event_source/devices/kprobe'));
  assert.match(f.kernel, /^\d+\.\d+/);
  assert.ok(repoRoot.length > 0);
});
