import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { briefProcess } from '../../src/events/brief.js';
import { encodeEvent, eventLine } from '../../src/events/encode.js';
import { buildTracingEvent, type PolicyEventMeta } from '../../src/events/tracing.js';
import type { ExportEvent, Process } from '../../src/events/types.js';
import { ProcessCache } from '../../src/process/cache.js';
import {
  ALL_BLOCKS_SQL,
  BlockBuilder,
  type BlockRowRead,
  MAX_BLOCK_SPAN_NS,
  StoredBlock,
  storedEvents,
} from '../../src/store/blocks.js';
import { EventStore, StoreError } from '../../src/store/index.js';
import { QueryError, StoreQueries } from '../../src/store/queries.js';
import { MIGRATIONS } from '../../src/store/schema.js';
import { nsToParts, partsToNs, timeParts, timeToNs } from '../../src/store/time.js';
import { threadNices } from '../lib/threads.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'osprey-store-test-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => path.join(root, `t${++n}`, 'events.db');

const NODE = 'test-node';
const BASE_MS = Date.parse('2026-01-10T12:00:00Z');
/** RFC 3339 with nanoseconds, `ms` after BASE plus `ns` */
const at = (ms: number, ns = 0) => {
  const d = new Date(BASE_MS + ms).toISOString().slice(0, 23); // ...ss.mmm
  return `${d}${String(ns).padStart(6, '0')}Z`;
};

function proc(execId: string, pid: number, binary: string, parent?: string, args = ''): Process {
  const p: Process = {
    exec_id: execId,
    pid,
    uid: 0,
    cwd: '/',
    binary,
    arguments: args,
    flags: 'execve',
    start_time: at(0),
    auid: 0,
    tid: pid,
  };
  if (parent) p.parent_exec_id = parent;
  return p;
}

const exec = (p: Process, time: string, parent?: Process): ExportEvent => ({
  process_exec: parent ? { process: p, parent } : { process: p },
  node_name: NODE,
  time,
});
const exit = (p: Process, time: string, signal?: string): ExportEvent => ({
  process_exit: { process: p, time, status: signal ? 0 : 1, ...(signal ? { signal } : {}) },
  node_name: NODE,
  time,
});
const kprobe = (p: Process, time: string, policy: string): ExportEvent => ({
  process_kprobe: {
    process: p,
    function_name: '__x64_sys_openat',
    action: 'KPROBE_ACTION_POST',
    policy_name: policy,
  },
  node_name: NODE,
  time,
});
const times = (evs: ExportEvent[]) => evs.map((e) => e.time);

/** What `read` makes of the store's file, opened read-only beside the store and closed again. */
function readStore<T>(file: string, read: (db: Database.Database) => T): T {
  const db = new Database(file, { readonly: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

/** Every stored event's JSON as the file holds it, in the order written. */
const storedJson = (file: string) =>
  readStore(file, (db) =>
    [...storedEvents(db.prepare(ALL_BLOCKS_SQL).iterate() as Iterable<BlockRowRead>)].map((e) => e.json),
  );

describe('EventStore', () => {
  const init = proc('aW5pdA', 1, '/sbin/init');
  const bash = proc('YmFzaA', 100, '/bin/bash', init.exec_id);
  const curl = proc('Y3VybA', 101, '/usr/bin/curl', bash.exec_id, '-s https://example.org');
  const sh = proc('c2g', 102, '/bin/sh', bash.exec_id, '-c "ls | grep x"');
  const grep = proc('Z3JlcA', 103, '/usr/bin/grep', sh.exec_id, 'x');
  const history: ExportEvent[] = [
    exec(bash, at(1000), init),
    exec(curl, at(2000), bash),
    kprobe(curl, at(2500), 'file-monitor'),
    exec(sh, at(3000), bash),
    exec(grep, at(3000, 500), sh),
    kprobe(grep, at(3500), 'other-policy'),
    exit(grep, at(4000)),
    exit(curl, at(5000), 'SIGKILL'),
  ];

  it('writes and queries events: types, binary regex, policy, process, time range, limit', () => {
    const store = EventStore.open(fresh(), { retentionIntervalMs: 0 });
    try {
      assert.equal(store.append(history), history.length);
      assert.deepEqual(store.query(), history, 'all events, oldest first');

      const execs = store.query({ types: ['process_exec'] });
      assert.deepEqual(times(execs), [at(1000), at(2000), at(3000), at(3000, 500)]);

      assert.deepEqual(
        store.query({ binary: 'curl$' }).map((e) => Object.keys(e)[0]),
        ['process_exec', 'process_kprobe', 'process_exit'],
      );
      assert.deepEqual(store.query({ policy: 'file-monitor' }), [history[2]]);
      assert.deepEqual(store.query({ policy: ['file-monitor', 'other-policy'] }).length, 2);
      assert.deepEqual(times(store.query({ execId: grep.exec_id })), [at(3000, 500), at(3500), at(4000)]);

      // since is inclusive, until exclusive; ns precision survives
      assert.deepEqual(times(store.query({ since: at(3000, 500), until: at(4000) })), [
        at(3000, 500),
        at(3500),
      ]);
      assert.deepEqual(
        times(store.query({ since: new Date(BASE_MS + 3000), until: new Date(BASE_MS + 3001) })),
        [at(3000), at(3000, 500)],
      );
      const ns = BigInt(BASE_MS + 3000) * 1_000_000n + 500n;
      assert.deepEqual(times(store.query({ since: ns, until: ns + 1n })), [at(3000, 500)]);

      // the newest N, newest last
      assert.deepEqual(times(store.query({ limit: 2 })), [at(4000), at(5000)]);

      assert.throws(
        () => store.query({ binary: '(' }),
        /binary filter "\(" is not a valid regular expression/,
      );
      assert.throws(() => store.query({ types: ['Process Exec'] }), /not a valid name/);
      assert.throws(() => store.query({ limit: 0 }), /limit 0 must be/);
      assert.throws(
        () => EventStore.open(fresh(), { maxBytes: -1 }),
        /maximum size \(bytes\) -1 must be a number >= 0/,
      );

      const s = store.stats();
      assert.equal(s.rows, history.length);
      assert.equal(s.written, history.length);
      assert.equal(s.processes, 5);
      assert.ok(s.bytes > 0);
      assert.equal(s.journal_mode, 'wal');
    } finally {
      store.close();
    }
  });

  it('finds the newest events across blocks whose times overlap', () => {
    const file = fresh();
    const store = EventStore.open(file, { retentionIntervalMs: 0 });
    try {
      // three batches: 2,500 events (three blocks), then two whose times reach back into the first
      const mk = (i: number) => kprobe(i % 2 === 0 ? curl : grep, at(i), i % 3 === 0 ? 'p3' : 'other');
      const first = Array.from({ length: 2500 }, (_, i) => mk(i * 2));
      const second = Array.from({ length: 300 }, (_, i) => mk(i * 2 + 1));
      const third = [mk(6001), mk(4999)];
      store.append(first);
      store.append(second);
      store.append(third);
      const all = [...first, ...second, ...third].sort(
        (a, b) => Date.parse(a.time as string) - Date.parse(b.time as string),
      );
      assert.equal(store.stats().rows, all.length);
      // a block spans at most a second: five for the first batch, one, then two (4.999 s and 6.001 s)
      assert.equal(
        readStore(file, (db) => db.prepare('SELECT count(*) FROM event_blocks').pluck().get()),
        8,
      );
      assert.deepEqual(times(store.query({ limit: 3 })), [at(4998), at(4999), at(6001)]);
      assert.deepEqual(store.query({ limit: 100_000 }).length, all.length);
      assert.deepEqual(times(store.query({ until: at(4), limit: 10 })), [at(0), at(1), at(2), at(3)]);
      const p3 = all.filter(
        (e) =>
          (e as unknown as { process_kprobe: { policy_name: string } }).process_kprobe.policy_name === 'p3',
      );
      assert.deepEqual(times(store.query({ policy: 'p3', limit: 5 })), times(p3.slice(-5)));
      const grepEvents = all.filter(
        (e) =>
          (e as unknown as { process_kprobe: { process: Process } }).process_kprobe.process.exec_id ===
          grep.exec_id,
      );
      assert.deepEqual(
        times(store.query({ execId: grep.exec_id, since: at(500), limit: 4 })),
        times(grepEvents.slice(-4)),
      );
      assert.deepEqual(store.query({ binary: 'curl$', since: at(1000), until: at(1010) }).length, 5);
      assert.deepEqual(store.query({ types: ['process_exec'] }), []);
    } finally {
      store.close();
    }
  });

  it('writes a burst as blocks of at most 1,024 events, and reads it back in order', () => {
    const file = fresh();
    const store = EventStore.open(file, { retentionIntervalMs: 0 });
    try {
      const burst = Array.from({ length: 2100 }, (_, i) => kprobe(curl, at(7000, i), 'burst'));
      store.append(burst);
      assert.deepEqual(
        readStore(file, (db) => db.prepare('SELECT count FROM event_blocks ORDER BY id').pluck().all()),
        [1024, 1024, 52],
      );
      assert.deepEqual(store.query({ limit: 100_000 }), burst);
      assert.deepEqual(times(store.query({ limit: 2 })), [at(7000, 2098), at(7000, 2099)]);
    } finally {
      store.close();
    }
  });

  it('answers a process with its ancestors, descendants and events', () => {
    const store = EventStore.open(fresh(), { retentionIntervalMs: 0 });
    try {
      store.append(history);
      const t = store.process(bash.exec_id);
      assert.ok(t);
      assert.equal(t.process.binary, '/bin/bash');
      assert.deepEqual(
        t.ancestors.map((a) => a.exec_id),
        [init.exec_id],
      );
      assert.deepEqual(
        t.descendants.map((d) => [d.binary, d.depth]),
        [
          ['/usr/bin/curl', 1],
          ['/bin/sh', 1],
          ['/usr/bin/grep', 2],
        ],
      );
      assert.deepEqual(times(t.events), [at(1000)]);

      const g = store.process(grep.exec_id);
      assert.ok(g);
      assert.deepEqual(
        g.ancestors.map((a) => a.binary),
        ['/bin/sh', '/bin/bash', '/sbin/init'],
      );
      assert.equal(g.descendants.length, 0);
      assert.equal(g.process.exit_time, at(4000));
      assert.equal(g.process.exit_status, 1);

      const c = store.process(curl.exec_id);
      assert.equal(c?.process.exit_signal, 'SIGKILL');
      assert.equal(c?.process.process.arguments, '-s https://example.org');
      assert.equal(store.process('bm9wZQ'), undefined);
    } finally {
      store.close();
    }
  });

  it('keeps an exit whether it comes in the batch of its exec or a later one, one row a process', () => {
    const file = fresh();
    const store = EventStore.open(file, { retentionIntervalMs: 0 });
    try {
      const sh = proc('c2g', 10, '/bin/sh');
      const a = proc('YQ', 11, '/bin/true', sh.exec_id);
      const b = proc('Yg', 12, '/bin/false', sh.exec_id);
      // a: exec and exit in one batch; b: exec now, exit (by a signal) in the next
      store.append([exec(sh, at(100)), exec(a, at(200), sh), exit(a, at(300)), exec(b, at(400), sh)]);
      assert.equal(store.process(b.exec_id)?.process.exit_time, undefined);
      store.append([exit(b, at(500), 'SIGTERM'), kprobe(sh, at(600), 'p')]);
      const ra = store.process(a.exec_id)!.process;
      assert.deepEqual([ra.exit_time, ra.exit_status, ra.exit_signal], [at(300), 1, undefined]);
      const rb = store.process(b.exec_id)!.process;
      assert.deepEqual([rb.exit_time, rb.exit_status, rb.exit_signal], [at(500), 0, 'SIGTERM']);
      assert.equal(store.process(sh.exec_id)?.process.exit_time, undefined);
      assert.deepEqual(
        store.process(sh.exec_id)!.descendants.map((d) => d.binary),
        ['/bin/true', '/bin/false'],
      );
    } finally {
      store.close();
    }
    assert.equal(
      readStore(file, (db) => db.prepare('SELECT count(*) FROM processes').pluck().get()),
      3,
    );
  });

  it('keeps the parts processes share (capabilities, namespaces) once, and puts them back on reading', () => {
    const file = fresh();
    const caps = { permitted: ['CAP_CHOWN', 'CAP_KILL'], effective: ['CAP_KILL'], inheritable: [] };
    const ns = { mnt: { inum: 4026531832, is_host: true }, pid: { inum: 4026531836, is_host: true } };
    const other = { permitted: [], effective: [], inheritable: [] };
    // shared objects, as the process builder interns them
    const withParts = (p: Process, cap: object) => ({ ...p, cap, ns }) as Process;
    const sh = withParts(proc('c2g', 10, '/bin/sh'), caps);
    const a = withParts(proc('YQ', 11, '/bin/cat', sh.exec_id, '/etc/hosts'), caps);
    const b = withParts(proc('Yg', 12, '/bin/ping', sh.exec_id), other);
    const evs = [exec(sh, at(100)), exec(a, at(200), sh), exec(b, at(300), sh), kprobe(a, at(400), 'p')];
    const store = EventStore.open(file, { retentionIntervalMs: 0 });
    try {
      store.append(evs.slice(0, 2));
      store.append(evs.slice(2));
      const back = (s: EventStore) => {
        assert.deepEqual(s.process(a.exec_id)?.process.process, a);
        assert.deepEqual(
          s.process(sh.exec_id)?.descendants.map((d) => d.process),
          [a, b],
        );
        assert.deepEqual(s.query({}), evs);
      };
      back(store);
      store.close();
      const again = EventStore.open(file, { retentionIntervalMs: 0 });
      try {
        back(again);
      } finally {
        again.close();
      }
    } finally {
      store.close();
    }
    readStore(file, (db) => {
      // caps, other, ns: each once
      assert.equal((db.prepare('SELECT count(*) AS n FROM process_parts').get() as { n: number }).n, 3);
      const json = db
        .prepare('SELECT json FROM processes WHERE exec_id = ?')
        .pluck()
        .get(a.exec_id) as string;
      assert.match(json, /"cap":\{"\$part":"[\w-]+"\},/);
      assert.doesNotMatch(json, /CAP_CHOWN/);
    });
  });

  it('stores policy events built with their lines, also once the ring of lines has gone past them', () => {
    const file = fresh();
    const cache = new ProcessCache();
    const sh = proc('c2g', 10, '/bin/sh');
    const cat = proc('Y2F0', 11, '/bin/cat', sh.exec_id);
    cache.add(cat, {
      pid: 11,
      startNs: 2n,
      origin: 'exec',
      parent: cache.add(sh, { pid: 10, startNs: 1n, origin: 'exec' }),
    });
    const meta = {
      policyName: 'p',
      hooks: [
        {
          shape: 'kprobe',
          hookId: 'kprobes[0]',
          tags: [],
          functionName: '__x64_sys_openat',
          args: [{ type: 'int' }, { type: 'string' }],
        },
      ],
    } as unknown as PolicyEventMeta;
    const built = (i: number, pid: number) =>
      buildTracingEvent(
        {
          kind: 'tracing',
          cpu: 0,
          ktime: 1_000_000_000n + BigInt(i),
          pid,
          tid: pid,
          policyId: 1,
          hook: 0,
          selector: 0,
          action: 'none',
          actionResult: 'none',
          signal: 0,
          args: [
            { type: 'int', value: -100n },
            { type: 'string', value: `/tmp/café-${i}`, truncated: false, fault: false },
          ],
        },
        meta,
        cache,
        NODE,
      ) as ExportEvent;
    // lines made now (as the export file makes them before the store takes the events) ...
    const early = [built(0, 11), built(1, 10), built(2, 999)];
    for (const ev of early) eventLine(ev);
    // ... and some whose lines the ring of lines has gone past since (8 MiB)
    const stale = [built(3, 11)];
    eventLine(stale[0]!);
    for (let i = 0; i < 9000; i++)
      eventLine({ ...kprobe(proc('eA', 1, `/x/${'y'.repeat(1000)}${i}`), at(1), 'z') });
    const late = [built(4, 11), built(5, 10)];
    const evs = [...early, ...stale, ...late];
    const store = EventStore.open(file, { retentionIntervalMs: 0 });
    try {
      store.append(evs);
      const back = store.query({ types: ['process_kprobe'] });
      assert.deepEqual(
        back.map((e) => JSON.stringify(e)),
        evs.map((e) => encodeEvent(e)),
      );
      assert.match(JSON.stringify(back[0]), /"parent":\{"exec_id":"c2g"/);
    } finally {
      store.close();
    }
  });

  it('keeps the full process when events name its brief form (no cap, no ns)', () => {
    const file = fresh();
    const caps = { permitted: ['CAP_KILL'], effective: ['CAP_KILL'], inheritable: [] };
    const ns = { mnt: { inum: 4026531832, is_host: true } };
    const sh = { ...proc('c2g', 10, '/bin/sh'), cap: caps, ns } as Process;
    const a = { ...proc('YQ', 11, '/bin/cat', sh.exec_id), cap: caps, ns } as Process;
    // a's policy event and its exit name it briefly, a's exec names sh briefly; the first event naming sh is brief
    const shBrief = briefProcess(sh, 10);
    const aBrief = briefProcess(a, 11);
    const aThread = briefProcess(a, 12);
    const store = EventStore.open(file, { retentionIntervalMs: 0 });
    try {
      store.append([kprobe(shBrief, at(100), 'p'), exec(a, at(200), shBrief)]);
      store.append([kprobe(aThread, at(300), 'p'), exit(aBrief, at(400))]);
      assert.deepEqual(
        store.process(sh.exec_id)?.process.process.cap,
        caps,
        'first seen brief, stored whole',
      );
      const ra = store.process(a.exec_id)!.process.process;
      assert.deepEqual([ra.cap, ra.ns, ra.tid], [caps, ns, 11], 'its exit (brief) did not overwrite it');
      const back = store.query({});
      assert.equal(back.length, 4);
      // stored events name their processes by reference: read back, they are whole
      for (const ev of back) {
        const body = Object.values(ev).find((v) => typeof v === 'object' && v && 'process' in v) as {
          process: Process;
        };
        assert.deepEqual(body.process.cap, caps, JSON.stringify(ev));
      }
    } finally {
      store.close();
    }
  });

  it('reads a store of schema 1 (processes whole in their rows) and brings it forward', () => {
    const file = fresh();
    const caps = { permitted: ['CAP_KILL'], effective: [], inheritable: [] };
    const old = { ...proc('b2xk', 20, '/bin/old'), cap: caps } as Process;
    mkdirSync(path.dirname(file), { recursive: true });
    const db = new Database(file);
    db.pragma('application_id = 0x4f535052');
    db.exec('CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);');
    db.exec(MIGRATIONS[0]!);
    db.prepare(
      'INSERT INTO processes (exec_id, pid, binary, arguments, last_seen_ns, json) VALUES (?, ?, ?, ?, ?, ?)',
    ).run(old.exec_id, old.pid, old.binary, '', 1, JSON.stringify(old));
    db.close();
    const store = EventStore.open(file, { retentionIntervalMs: 0 });
    try {
      assert.deepEqual(store.process(old.exec_id)?.process.process, old);
      const young = { ...proc('eW91bmc', 21, '/bin/young', old.exec_id), cap: caps } as Process;
      store.append([exec(young, at(10), old)]);
      assert.deepEqual(store.process(young.exec_id)?.process.process, young);
      assert.deepEqual(
        store.process(old.exec_id)?.descendants.map((d) => d.process),
        [young],
      );
    } finally {
      store.close();
    }
  });

  it('moves the events of a store of schema 2 (a row each) into blocks, and finds them as before', () => {
    const file = fresh();
    mkdirSync(path.dirname(file), { recursive: true });
    const db = new Database(file);
    db.pragma('application_id = 0x4f535052');
    db.exec('CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (2);');
    db.exec(MIGRATIONS[0]!);
    db.exec(MIGRATIONS[1]!);
    const insert = db.prepare(
      'INSERT INTO events (time_ns, type, exec_id, policy_name, binary, json) VALUES (?, ?, ?, ?, ?, ?)',
    );
    for (const ev of history) {
      const [type, body] = Object.entries(ev).find(([k]) => k.startsWith('process_')) as [
        string,
        { process: Process; policy_name?: string },
      ];
      // schema 2 kept processes whole in some rows: they come back as they were
      insert.run(
        timeToNs(ev.time as string),
        type,
        body.process.exec_id,
        body.policy_name ?? null,
        body.process.binary,
        JSON.stringify(ev),
      );
    }
    db.close();
    const store = EventStore.open(file, { retentionIntervalMs: 0 });
    try {
      assert.deepEqual(store.query(), history);
      assert.equal(store.stats().rows, history.length);
      assert.deepEqual(store.query({ policy: 'file-monitor' }), [history[2]]);
      assert.deepEqual(store.query({ execId: curl.exec_id }), [history[1], history[2], history[7]]);
      assert.deepEqual(store.query({ binary: '^/usr/bin/curl$', types: ['process_exit'] }), [history[7]]);
    } finally {
      store.close();
    }
    readStore(file, (after) => {
      const tables = after.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all();
      assert.ok(!tables.includes('events'), `the old table is gone: ${tables.join(', ')}`);
      assert.equal(after.prepare('SELECT max(version) FROM schema_version').pluck().get(), MIGRATIONS.length);
    });
  });

  it('returns earlier events after close and reopen', () => {
    const file = fresh();
    const a = EventStore.open(file, { retentionIntervalMs: 0 });
    a.append(history.slice(0, 4));
    a.enqueue(history[4]!); // still queued: close writes it
    a.close();
    assert.ok(a.closed);
    const b = EventStore.open(file, { retentionIntervalMs: 0 });
    try {
      assert.deepEqual(b.query(), history.slice(0, 5));
      assert.equal(b.stats().rows, 5);
      b.append(history.slice(5));
      assert.deepEqual(b.query(), history);
    } finally {
      b.close();
    }
  });

  it('deletes events older than maxAgeMs, and the processes nothing refers to', async () => {
    const store = EventStore.open(fresh(), { retentionIntervalMs: 0, maxAgeMs: 60_000, maxBytes: 0 });
    try {
      const old = proc('b2xk', 200, '/usr/bin/old', init.exec_id);
      store.append([exec(old, at(0), init), exit(old, at(1000))]);
      store.append([exec(curl, at(120_000), bash), kprobe(curl, at(125_000), 'p')]);
      // "now" is 2.5 min after BASE: the first two events are over a minute old
      const r = await store.runRetention(BASE_MS + 150_000);
      assert.equal(r.by_age, 2);
      assert.deepEqual(times(store.query()), [at(120_000), at(125_000)]);
      const s = store.stats();
      assert.equal(s.deleted_by_retention, 2);
      assert.equal(s.rows, 2);
      // the exited process without events goes; the ancestry of curl stays whole
      assert.equal(store.process(old.exec_id), undefined);
      assert.deepEqual(
        store.process(curl.exec_id)?.ancestors.map((a) => a.binary),
        ['/bin/bash', '/sbin/init'],
      );
      assert.equal(r.processes, 1);
    } finally {
      store.close();
    }
  });

  it('drops the parts no process row can name any more, and keeps those that are named', async () => {
    const file = fresh();
    const store = EventStore.open(file, { retentionIntervalMs: 0, maxAgeMs: 3_600_000, maxBytes: 0 });
    const H = 3_600_000;
    const ns = { mnt: { inum: 4026531832, is_host: true } };
    const capsOld = { permitted: ['CAP_SYS_ADMIN'], effective: [], inheritable: [] };
    const capsYoung = { permitted: ['CAP_NET_RAW'], effective: [], inheritable: [] };
    const old = { ...proc('b2xk', 200, '/usr/bin/old'), cap: capsOld, ns } as Process;
    const young = { ...proc('eW91bmc', 201, '/usr/bin/young'), cap: capsYoung, ns } as Process;
    const parts = () =>
      readStore(file, (db) =>
        (db.prepare('SELECT json FROM process_parts ORDER BY json').pluck().all() as string[]).map((j) =>
          JSON.parse(j),
        ),
      );
    try {
      store.append([exec(old, at(0)), exit(old, at(1000))]);
      // four hours later: the namespaces part is named again (and its seen_ns moves on)
      store.append([exec(young, at(4 * H)), kprobe(young, at(4 * H + 1000), 'p')]);
      assert.equal(parts().length, 3);
      const r = await store.runRetention(BASE_MS + 4 * H + 60_000);
      assert.equal(r.processes, 1);
      assert.equal(store.process(old.exec_id), undefined);
      assert.deepEqual(
        parts()
          .map((p) => JSON.stringify(p))
          .sort(),
        [JSON.stringify(ns), JSON.stringify(capsYoung)].sort(),
      );
      assert.deepEqual(store.process(young.exec_id)?.process.process, young);
    } finally {
      store.close();
    }
  });

  it('with a writer thread, retention runs on the thread too, after what was sent before it', async () => {
    const store = EventStore.open(fresh(), {
      retentionIntervalMs: 0,
      maxAgeMs: 60_000,
      maxBytes: 0,
      writeInThread: true,
    });
    try {
      const old = proc('b2xk', 200, '/usr/bin/old', init.exec_id);
      store.enqueueBatch([exec(old, at(0), init), exit(old, at(1000))]);
      store.enqueueBatch([exec(curl, at(120_000), bash), kprobe(curl, at(125_000), 'p')]);
      store.flush();
      // not settled: the deletes queue behind the inserts on the thread
      const r = await store.runRetention(BASE_MS + 150_000);
      assert.equal(r.by_age, 2);
      assert.equal(r.processes, 1);
      await store.settle();
      assert.deepEqual(times(store.query()), [at(120_000), at(125_000)]);
      const s = store.stats();
      assert.equal(s.deleted_by_retention, 2);
      assert.equal(s.rows, 2);
      assert.equal(s.retention_errors, 0);
      assert.equal(store.process(old.exec_id), undefined);
    } finally {
      await store.closeAsync();
    }
  });

  it('runs its writer thread at a lower priority than the agent (nice 10), so that it yields the cores to the event path', async () => {
    const niceOf = threadNices;
    const niced = (m: Map<number, number>) => [...m.values()].filter((n) => n === 10).length;
    const before = niceOf();
    const store = EventStore.open(fresh(), { retentionIntervalMs: 0, writeInThread: true });
    try {
      store.enqueueBatch([exec(curl, at(1000), bash)]);
      store.flush();
      await store.settle();
      assert.equal(times(store.query()).length, 1);
      const after = niceOf();
      assert.equal(niced(after), niced(before) + 1);
      // the agent's own thread keeps its priority
      assert.equal(after.get(process.pid), before.get(process.pid));
    } finally {
      await store.closeAsync();
    }
  });

  it('keeps the file under maxBytes by deleting the oldest events', async () => {
    const maxBytes = 512 * 1024;
    const store = EventStore.open(fresh(), { retentionIntervalMs: 0, maxAgeMs: 0, maxBytes });
    try {
      const pad = 'a'.repeat(400);
      const evs: ExportEvent[] = [];
      for (let i = 0; i < 6000; i++) {
        evs.push(exec(proc(`ZXhl${i}`, 1000 + i, `/usr/bin/tool${i % 7}`, bash.exec_id, pad), at(i * 10)));
      }
      for (let i = 0; i < evs.length; i += 500) store.append(evs.slice(i, i + 500));
      assert.ok(store.stats().bytes > maxBytes, `filled past the limit: ${store.stats().bytes}`);

      // several runs may be needed (each is bounded); it must get there
      for (let k = 0; k < 20 && store.stats().bytes > maxBytes; k++) await store.runRetention(BASE_MS);
      const s = store.stats();
      assert.ok(s.bytes <= maxBytes, `${s.bytes} bytes after retention, limit ${maxBytes}`);
      assert.ok(s.deleted_by_retention > 0);
      assert.equal(s.rows + s.deleted_by_retention, 6000);
      const left = store.query({ limit: 100_000 });
      assert.equal(left.length, s.rows);
      // what is left is the newest run of events
      assert.equal(left.at(-1)?.time, at(59_990));
      assert.equal(left[0]?.time, at((6000 - s.rows) * 10));
    } finally {
      store.close();
    }
  });

  it('between retention runs, gets back under maxBytes by itself soon after the file goes over', async () => {
    const maxBytes = 512 * 1024;
    // the retention timer's own run is a minute away: the size check and the catch-up do it
    const store = EventStore.open(fresh(), {
      retentionIntervalMs: 60_000,
      maxAgeMs: 0,
      maxBytes,
      retentionBatch: 20,
    });
    try {
      const pad = 'a'.repeat(400);
      const evs: ExportEvent[] = [];
      for (let i = 0; i < 6000; i++) {
        evs.push(exec(proc(`c2l6${i}`, 1000 + i, `/usr/bin/tool${i % 7}`, bash.exec_id, pad), at(i * 10)));
      }
      // blocks of 20 events, each retention transaction one block: more than one run's worth
      for (let i = 0; i < evs.length; i += 20) store.append(evs.slice(i, i + 20));
      assert.ok(store.stats().bytes > 4 * maxBytes, `filled past the limit: ${store.stats().bytes}`);
      const t0 = Date.now();
      while (store.stats().bytes > maxBytes && Date.now() - t0 < 10_000) await sleep(100);
      const s = store.stats();
      assert.ok(
        s.bytes <= maxBytes,
        `${s.bytes} bytes ${Date.now() - t0} ms later, limit ${maxBytes}; ${s.deleted_by_retention} deleted`,
      );
      assert.ok(s.deleted_by_retention > 50 * 20, `${s.deleted_by_retention} deleted: more than one run`);
      assert.equal(s.rows + s.deleted_by_retention, 6000);
      assert.equal(store.query({ limit: 100_000 }).at(-1)?.time, at(59_990), 'the newest are kept');
    } finally {
      store.close();
    }
  });

  it('counts the events it skips when the queue is full, and writes the rest', () => {
    const store = EventStore.open(fresh(), { retentionIntervalMs: 0, maxQueue: 10, flushEvents: 1000 });
    try {
      for (let i = 0; i < 25; i++) store.enqueue(exec(proc(`cQ${i}`, i + 2, '/bin/true'), at(i)));
      assert.equal(store.stats().queued, 10);
      assert.equal(store.stats().skipped, 15);
      assert.equal(store.flush(), 10);
      const s = store.stats();
      assert.equal(s.written, 10);
      assert.equal(s.rows, 10);
      assert.equal(s.queued, 0);
    } finally {
      store.close();
    }
    // a closed store skips too, without throwing
    store.enqueue(history[0]!);
    assert.equal(store.stats().skipped, 16);
  });

  it('writes queued events on a writer thread: the same rows, the same answers', async () => {
    const file = fresh();
    const store = EventStore.open(file, { retentionIntervalMs: 0, writeInThread: true, flushEvents: 3 });
    try {
      store.enqueueBatch(history);
      await store.settle();
      const s = store.stats();
      assert.equal(s.writer, 'thread');
      assert.equal(s.written, history.length);
      assert.equal(s.rows, history.length);
      assert.equal(s.queued, 0);
      assert.equal(s.failed, 0);
      // read back on the agent thread's own connection
      assert.deepEqual(times(store.query({})), times(history));
      assert.deepEqual(store.query({ policy: 'file-monitor' }), [history[2]]);
      const tree = store.process(sh.exec_id);
      assert.equal(tree?.process.binary, '/bin/sh');
      assert.deepEqual(
        tree?.ancestors.map((a) => a.binary),
        ['/bin/bash', '/sbin/init'],
      );
    } finally {
      await store.closeAsync();
    }
    assert.ok(store.closed);
    // nothing was left for the thread to write after close: a new connection sees every row
    assert.equal(storedJson(file).length, history.length);
  });

  it('a batch the writer thread cannot write is counted as failed, and the store goes on', async () => {
    const file = fresh();
    const store = EventStore.open(file, { retentionIntervalMs: 0, writeInThread: true, busyTimeoutMs: 0 });
    const errors: string[] = [];
    (store as unknown as { onError: (e: Error) => void }).onError = (e) => errors.push(e.message);
    // another connection holds the write lock: the thread's transaction cannot start
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    try {
      store.enqueueBatch(history.slice(0, 2));
      await store.settle();
      assert.equal(store.stats().failed, 2);
      assert.equal(store.stats().written, 0);
      assert.match(errors[0] ?? '', /writing events failed: database is locked/);
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    store.enqueueBatch(history.slice(2, 4));
    await store.settle();
    assert.equal(store.stats().written, 2);
    await store.closeAsync();
  });

  it('keeps each process once: events name it by reference and come back whole', () => {
    const file = fresh();
    const store = EventStore.open(file, { retentionIntervalMs: 0 });
    try {
      store.append(history);
      const rows = storedJson(file);
      const first = JSON.parse(rows[0]!) as { process_exec: { process: unknown; parent: unknown } };
      assert.deepEqual(first.process_exec.process, { $ref: bash.exec_id });
      assert.deepEqual(first.process_exec.parent, { $ref: init.exec_id });
      assert.ok(!rows.some((r) => r.includes('"binary"')), 'no process JSON inside an event row');
      assert.deepEqual(store.query({ execId: curl.exec_id }), [history[1], history[2], history[7]]);
      assert.deepEqual(store.process(curl.exec_id)?.events, [history[1], history[2], history[7]]);
    } finally {
      store.close();
    }
    // a process row that is gone leaves its exec_id in the event
    const db = new Database(file);
    db.prepare('DELETE FROM processes WHERE exec_id = ?').run(init.exec_id);
    db.close();
    const again = EventStore.open(file, { retentionIntervalMs: 0 });
    try {
      const ev = again.query({ execId: bash.exec_id })[0] as { process_exec: { parent: unknown } };
      assert.deepEqual(ev.process_exec.parent, { exec_id: init.exec_id });
    } finally {
      again.close();
    }
  });

  it('writes the queue on its timer', async () => {
    const store = EventStore.open(fresh(), { retentionIntervalMs: 0, flushIntervalMs: 20 });
    try {
      store.enqueueBatch(history);
      for (let k = 0; k < 100 && store.stats().written < history.length; k++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(store.stats().written, history.length);
      assert.deepEqual(store.query(), history);
    } finally {
      store.close();
    }
  });

  it('writes a queue that reached flushEvents at the next turn of the event loop, never in enqueue', async () => {
    const store = EventStore.open(fresh(), {
      retentionIntervalMs: 0,
      flushIntervalMs: 60_000,
      flushEvents: 100,
      maxQueue: 1000,
    });
    try {
      for (let i = 0; i < 350; i++) store.enqueue(exec(proc(`Y2g${i}`, i + 2, '/bin/true'), at(i)));
      assert.equal(store.stats().written, 0, 'enqueue never writes itself');
      assert.equal(store.stats().queued, 350);
      await new Promise((r) => setImmediate(r));
      assert.equal(store.stats().written, 350, 'written at the next turn, the timer a minute away');
      assert.equal(store.stats().queued, 0);
      assert.equal(store.query({ limit: 1000 }).length, 350);
      assert.equal((statSync(store.path).mode & 0o777).toString(8), '640');
    } finally {
      store.close();
    }
  });

  it('counts a failed write, keeps the error and never throws from enqueue or flush', () => {
    const errors: StoreError[] = [];
    const store = EventStore.open(fresh(), { retentionIntervalMs: 0, onError: (e) => errors.push(e) });
    try {
      const bad = exec(proc('YmFk', 9, '/bin/bad'), at(0)) as Record<string, unknown>;
      bad['self'] = bad; // JSON cannot write it
      store.enqueue(history[0]!);
      assert.doesNotThrow(() => store.enqueue(bad as ExportEvent));
      assert.doesNotThrow(() => store.flush());
      const s = store.stats();
      assert.equal(s.write_errors, 1);
      assert.equal(s.failed, 1, 'the event that cannot be written is lost alone');
      assert.equal(s.rows, 1);
      assert.match(s.last_error ?? '', /event store .*events\.db: storing an event: .*circular/i);
      assert.equal(errors.length, 1);
      // the store still works afterwards
      store.enqueue(history[1]!);
      assert.equal(store.flush(), 1);
      assert.deepEqual(store.query(), history.slice(0, 2));
    } finally {
      store.close();
    }
  });

  it('says a file that is not a database is not one, and what to do', () => {
    const file = fresh();
    EventStore.open(file).close(); // make the directory
    writeFileSync(file, Buffer.alloc(8192, 'garbage!'));
    rmSync(`${file}-wal`, { force: true });
    rmSync(`${file}-shm`, { force: true });
    assert.throws(
      () => EventStore.open(file),
      (err: unknown) => {
        assert.ok(err instanceof StoreError);
        assert.equal(
          err.message,
          `event store ${file} is not a SQLite database (file is not a database); ` +
            'move it aside or choose --store-path',
        );
        return true;
      },
    );
  });

  it('refuses a SQLite database of another program', () => {
    const file = fresh();
    EventStore.open(file).close();
    rmSync(file);
    rmSync(`${file}-wal`, { force: true });
    rmSync(`${file}-shm`, { force: true });
    const other = new Database(file);
    other.exec('CREATE TABLE accounts (id INTEGER)');
    other.close();
    assert.throws(
      () => EventStore.open(file),
      /is a SQLite database of another program .*accounts.*--store-path/,
    );
  });

  it('fails fast, naming the file, when another connection holds the lock', () => {
    const file = fresh();
    EventStore.open(file).close();
    const holder = new Database(file);
    holder.exec('BEGIN EXCLUSIVE');
    try {
      const t0 = Date.now();
      assert.throws(
        () => EventStore.open(file, { busyTimeoutMs: 50 }),
        (err: unknown) => {
          assert.ok(err instanceof StoreError);
          assert.match(
            err.message,
            /^event store .*events\.db is locked by another process \(database is locked\)/,
          );
          assert.match(err.message, /--store-path$/);
          return true;
        },
      );
      assert.ok(Date.now() - t0 < 2000, `open gave up after ${Date.now() - t0} ms`);
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    // and opens once the lock is gone
    EventStore.open(file).close();
  });
});

describe('StoreQueries: queries on a thread of their own', () => {
  it('answers history and process trees off the event loop, with the same events as the store', async () => {
    const file = fresh();
    const store = EventStore.open(file, { retentionIntervalMs: 0 });
    const queries = new StoreQueries({ file, busyTimeoutMs: 1000 });
    try {
      const init = proc('aW5pdA', 1, '/sbin/init');
      const evs: ExportEvent[] = [];
      for (let i = 0; i < 30_000; i++) {
        const p = proc(`cTQ${i}`, 1000 + i, `/usr/bin/tool${i % 5}`, init.exec_id, 'x'.repeat(200));
        evs.push(exec(p, at(i), init));
      }
      for (let i = 0; i < evs.length; i += 1000) store.append(evs.slice(i, i + 1000));
      let ticks = 0;
      const timer = setInterval(() => ticks++, 1);
      let body: Buffer;
      try {
        body = (await queries.history({ limit: 100_000 })).body;
      } finally {
        clearInterval(timer);
      }
      assert.ok(queries.running);
      assert.ok(ticks > 0, 'timers ran while the query did');
      const answer = JSON.parse(body.toString('utf8')) as { events: ExportEvent[]; count: number };
      assert.equal(answer.count, 30_000);
      assert.deepEqual(answer.events.slice(-3), store.query({ limit: 3 }));
      // the after-filters apply there too
      const some = JSON.parse(
        (await queries.history({ limit: 100_000 }, { allow: '{"binary_regex":["tool3$"]}' })).body.toString(),
      ) as { count: number; truncated: boolean };
      assert.deepEqual(some, { ...some, count: 6000, truncated: false });
      const tree = JSON.parse((await queries.process('cTQ7', {}))!.toString()) as {
        process: { pid: number };
      };
      assert.equal(tree.process.pid, 1007);
      assert.equal(await queries.process('bm9uZQ', {}), undefined);
      // what the request got wrong, apart from what the store failed at
      await assert.rejects(queries.history({ types: ['Bad-Type'] }), (err: Error) => {
        assert.ok(err instanceof QueryError, err.constructor.name);
        assert.match(err.message, /event type "Bad-Type" is not a valid name/);
        return true;
      });
    } finally {
      await queries.close();
      store.close();
    }
    assert.equal(queries.running, false);
    await assert.rejects(queries.history({}), /closed/);
  });

  it("ends an idle thread and starts another for the next query, which the old one's end does not refuse", async () => {
    const file = fresh();
    const store = EventStore.open(file, { retentionIntervalMs: 0 });
    const queries = new StoreQueries({ file, busyTimeoutMs: 1000 }, 20);
    try {
      store.append([exec(proc('aWRsZQ', 4242, '/usr/bin/idle'), at(0))]);
      for (let round = 0; round < 3; round++) {
        const a = JSON.parse((await queries.history({})).body.toString()) as { count: number };
        assert.equal(a.count, 1);
        const t0 = Date.now();
        while (queries.running && Date.now() - t0 < 2000) await sleep(1);
        assert.equal(queries.running, false, 'the idle thread ended');
        // at once: the ended thread's exit comes while this one is in flight
      }
    } finally {
      await queries.close();
      store.close();
    }
  });
});

describe('event times as ns', () => {
  it("reads the agent's own times, one second after another, and every other RFC 3339 form", () => {
    const ns = (sec: string, frac: string) => BigInt(Date.parse(`${sec}Z`)) * 1_000_000n + BigInt(frac);
    const cases: [string, bigint | undefined][] = [
      ['2026-11-25T08:13:22.123456789Z', ns('2026-11-25T08:13:22', '123456789')],
      // the same second again: the quick path
      ['2026-11-25T08:13:22.000000001Z', ns('2026-11-25T08:13:22', '1')],
      ['2026-11-25T08:13:22.999999999Z', ns('2026-11-25T08:13:22', '999999999')],
      // the next second, and back
      ['2026-11-25T08:13:23.000000000Z', ns('2026-11-25T08:13:23', '0')],
      ['2026-11-25T08:13:22.500000000Z', ns('2026-11-25T08:13:22', '500000000')],
      // other forms of the same second
      ['2026-11-25T08:13:22.5Z', ns('2026-11-25T08:13:22', '500000000')],
      ['2026-11-25T10:13:22.123456789+02:00', ns('2026-11-25T08:13:22', '123456789')],
      ['2026-11-25T08:13:22Z', ns('2026-11-25T08:13:22', '0')],
      // not times, however close
      ['2026-11-25T08:13:22.12345678xZ', undefined],
      ['2026-11-25T08:13:22,123456789Z', undefined],
      ['yesterday', undefined],
    ];
    for (const [text, want] of cases) assert.equal(timeToNs(text), want, text);
  });
});

describe('event times as seconds and ns within the second', () => {
  it('gives the same time as timeToNs for every form, and nothing for a text that is not a time', () => {
    const texts = [
      '2026-11-25T08:13:22.123456789Z',
      '2026-11-25T08:13:22.000000001Z',
      '2026-11-25T08:13:23.999999999Z',
      '2026-11-25T08:13:22.5Z',
      '2026-11-25T10:13:22.123456789+02:00',
      '1969-12-31T23:59:59.5Z',
      '2106-02-07T06:28:16.000000001Z',
    ];
    for (const text of texts) {
      const out = { sec: -1, nsec: -1 };
      assert.equal(timeParts(text, out), true, text);
      assert.ok(out.nsec >= 0 && out.nsec < 1e9, `${text}: nsec ${out.nsec}`);
      assert.equal(partsToNs(out.sec, out.nsec), timeToNs(text), text);
    }
    const untouched = { sec: 7, nsec: 8 };
    assert.equal(timeParts('2026-11-25T08:13:22.12345678xZ', untouched), false);
    assert.deepEqual(untouched, { sec: 7, nsec: 8 });
    const before1970 = { sec: 0, nsec: 0 };
    nsToParts(-1n, before1970);
    assert.deepEqual(before1970, { sec: -1, nsec: 999_999_999 });
  });

  it("keeps each event's time exact in its block's entry, and the block's span, across seconds and the low word's carry", () => {
    // times whose low 32 bits of ns carry into the high word within a second, and far ones
    const base = 1_795_000_000n * 1_000_000_000n;
    const carry = ((base >> 32n) + 1n) << 32n;
    const times = [
      carry - 3n,
      carry - 1n,
      carry,
      carry + 1n,
      base + 999_999_999n,
      base,
      -1_500_000_000n,
      4_294_967_296n * 1_000_000_000n + 5n,
    ];
    const b = new BlockBuilder();
    for (const [i, t] of times.entries()) b.addNs(t, 'process_kprobe', `e${i % 2}`, null, null, `{"i":${i}}`);
    const blocks = b.take();
    const got: bigint[] = [];
    for (const row of blocks) {
      const stored = new StoredBlock(1, row.meta, row.dict, Buffer.from(row.text));
      const inBlock: bigint[] = [];
      for (let i = 0; i < stored.count; i++) inBlock.push(stored.event(i).timeNs);
      const sorted = [...inBlock].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
      assert.equal(row.minNs, sorted[0]);
      assert.equal(row.maxNs, sorted[sorted.length - 1]);
      assert.ok(row.maxNs - row.minNs <= MAX_BLOCK_SPAN_NS, 'a block spans at most a second');
      got.push(...inBlock);
    }
    assert.deepEqual(got, times);
    // the dictionary's last-value shortcut names the right process for alternating ones
    const first = new StoredBlock(1, blocks[0]!.meta, blocks[0]!.dict, Buffer.from(blocks[0]!.text));
    for (let i = 0; i < first.count; i++) assert.equal(first.dict.execs[first.event(i).exec], `e${i % 2}`);
  });
});
