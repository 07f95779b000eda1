// Engine records to Tetragon-shaped process_kprobe / process_tracepoint
// events, and their compact lines.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { renderCompact } from '../../src/events/compact.js';
import { encodeEvent, processJson } from '../../src/events/encode.js';
import {
  buildTracingEvent,
  type KprobeHookMeta,
  type PolicyEventMeta,
  type TracepointHookMeta,
} from '../../src/events/tracing.js';
import type { Process } from '../../src/events/types.js';
import { ProcessCache } from '../../src/process/cache.js';
import type { TracingArg, TracingRecord } from '../../src/sensors/tracing/decode.js';

function proc(pid: number, binary: string, parent?: Process): Process {
  const p: Process = {
    exec_id: `exec-${pid}`,
    pid,
    uid: 0,
    cwd: '/',
    binary,
    arguments: '--flag',
    flags: 'execve',
    start_time: '2026-01-01T00:00:00.000000000Z',
    auid: 4294967295,
    tid: pid,
  };
  if (parent) p.parent_exec_id = parent.exec_id;
  return p;
}

const shell = proc(100, '/usr/bin/bash');
const app = proc(200, '/usr/bin/app', shell);

function cache(): ProcessCache {
  const c = new ProcessCache();
  const s = c.add(shell, { pid: 100, startNs: 1n, origin: 'exec' });
  c.add(app, { pid: 200, startNs: 2n, origin: 'exec', parent: s });
  return c;
}

function rec(hook: number, args: TracingArg[], extra: Partial<TracingRecord> = {}): TracingRecord {
  return {
    kind: 'tracing',
    cpu: 0,
    ktime: 123_456_789n,
    pid: 200,
    tid: 201,
    policyId: 1,
    hook,
    selector: 0,
    action: 'none',
    actionResult: 'none',
    signal: 0,
    args,
    ...extra,
  };
}

const int = (v: bigint): TracingArg => ({ type: 'int', value: v });
const str = (value: string): TracingArg => ({ type: 'string', value, truncated: false, fault: false });

function kprobe(functionName: string, args: KprobeHookMeta['args'], extra: Partial<KprobeHookMeta> = {}) {
  return { shape: 'kprobe', hookId: 'kprobes[0]', tags: [], functionName, args, ...extra } as KprobeHookMeta;
}

function tracepoint(subsys: string, event: string, args: TracepointHookMeta['args']): TracepointHookMeta {
  return { shape: 'tracepoint', hookId: 'tracepoints[0]', tags: [], subsys, event, args };
}

const META: PolicyEventMeta = {
  policyName: 'pol',
  hooks: [
    // 0: write(fd as int, buf, count)
    kprobe('__x64_sys_write', [{ type: 'int' }, { type: 'char_buf', sizeArg: 2 }, { type: 'size_t' }]),
    // 1: openat with its return, an exit hook after it
    kprobe('__x64_sys_openat', [{ type: 'int' }, { type: 'string', label: 'path' }, { type: 'int' }], {
      returnType: 'int',
      message: 'opened',
      tags: ['file'],
    }),
    undefined,
    // 3: setuid
    kprobe('__x64_sys_setuid', [{ type: 'int' }]),
    // 4: lseek whence
    tracepoint('syscalls', 'sys_enter_lseek', [{ type: 'int32' }]),
    // 5: raw_syscalls
    tracepoint('raw_syscalls', 'sys_enter', [{ type: 'syscall64' }]),
    // 6: read(fd, buf) with a hidden count
    kprobe('__x64_sys_read', [
      { type: 'fd' },
      { type: 'char_buf', sizeArg: 2 },
      { type: 'uint64', hidden: true },
    ]),
    // 7: connect, and ints of every width
    kprobe('__x64_sys_connect', [
      { type: 'sockaddr' },
      { type: 'long' },
      { type: 'uint32' },
      { type: 'int8' },
    ]),
    // 8: a syscall without a form of its own
    kprobe('__x64_sys_dup', [{ type: 'fd' }]),
  ],
};

function build(r: TracingRecord, meta = META, node = 'node-1') {
  const ev = buildTracingEvent(r, meta, cache(), node);
  // the events are JSON lines: what the tests see is what a pipeline reads
  const text = encodeEvent(ev);
  // the line the builder wrote as it built the event is byte for byte the event's JSON,
  // and what the encoder writes for a copy (which it walks field by field)
  assert.equal(text, JSON.stringify(ev));
  assert.equal(encodeEvent(structuredClone(ev)), text);
  return { json: JSON.parse(text), line: renderCompact(ev), ev };
}

describe('process_kprobe', () => {
  test('write: process with the thread, parent, args as Tetragon writes them', () => {
    const { json, line } = build(
      rec(0, [
        int(1n),
        { type: 'bytes', value: Buffer.from('hello'), truncated: false, fault: false },
        int(5n),
      ]),
    );
    assert.deepEqual(Object.keys(json), ['process_kprobe', 'node_name', 'time']);
    assert.equal(json.node_name, 'node-1');
    assert.match(json.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    const k = json.process_kprobe;
    assert.deepEqual(Object.keys(k), ['process', 'parent', 'function_name', 'args', 'action', 'policy_name']);
    assert.deepEqual(k.process, { ...app, tid: 201 });
    assert.deepEqual(k.parent, shell);
    assert.equal(k.function_name, '__x64_sys_write');
    assert.deepEqual(k.args, [
      { int_arg: 1 },
      { bytes_arg: Buffer.from('hello').toString('base64') },
      { size_arg: '5' },
    ]);
    assert.equal(k.action, 'KPROBE_ACTION_POST');
    assert.equal(k.policy_name, 'pol');
    assert.equal(line, '📝 write   /usr/bin/app 5 bytes');
    assert.equal(app.tid, 200, 'the cached process is not changed');
  });

  test('openat: return value, label, message and tags; a kill taken says so', () => {
    const { json, line } = build(
      rec(1, [int(-100n), str('/etc/shadow'), int(0n)], {
        ret: -13n,
        action: 'sigkill',
        actionResult: 'taken',
        signal: 9,
      }),
    );
    const k = json.process_kprobe;
    assert.deepEqual(Object.keys(k), [
      'process',
      'parent',
      'function_name',
      'args',
      'return',
      'action',
      'policy_name',
      'message',
      'tags',
    ]);
    assert.deepEqual(k.args, [
      { int_arg: -100 },
      { string_arg: '/etc/shadow', label: 'path' },
      { int_arg: 0 },
    ]);
    assert.deepEqual(k.return, { int_arg: -13 });
    assert.equal(k.action, 'KPROBE_ACTION_SIGKILL');
    assert.equal(k.message, 'opened');
    assert.deepEqual(k.tags, ['file']);
    assert.equal(line, '📬 openat  /usr/bin/app /etc/shadow ☠️ SIGKILL');
  });

  test('an action held back (monitor mode) or refused is reported as Post, beside what was held back or refused', () => {
    const monitored = build(
      rec(1, [int(-100n), str('/x'), int(0n)], { action: 'sigkill', actionResult: 'monitored' }),
    );
    assert.equal(monitored.json.process_kprobe.action, 'KPROBE_ACTION_POST');
    assert.equal(monitored.json.process_kprobe.monitored_action, 'KPROBE_ACTION_SIGKILL');
    // the fields' order, as protojson writes them
    const last5 = (p: object) => Object.keys(p).slice(-5).join(' ');
    assert.equal(last5(monitored.json.process_kprobe), 'action monitored_action policy_name message tags');
    assert.equal(monitored.line, '📬 openat  /usr/bin/app /x 👁 monitor: would ☠️ SIGKILL');
    const refused = build(
      rec(1, [int(-100n), str('/x'), int(0n)], { action: 'sigkill', actionResult: 'refused' }),
    );
    assert.equal(refused.json.process_kprobe.action, 'KPROBE_ACTION_POST');
    assert.equal(refused.json.process_kprobe.monitored_action, undefined);
    assert.equal(refused.json.process_kprobe.refused_action, 'KPROBE_ACTION_SIGKILL');
    assert.equal(last5(refused.json.process_kprobe), 'action refused_action policy_name message tags');
    assert.equal(refused.line, '📬 openat  /usr/bin/app /x 🛡 refused: ☠️ SIGKILL (protected target)');
    const refusedTp = build(rec(4, [int(1n)], { action: 'signal', actionResult: 'refused', signal: 10 }));
    assert.equal(refusedTp.json.process_tracepoint.refused_action, 'KPROBE_ACTION_SIGNAL');
    assert.equal(refusedTp.json.process_tracepoint.monitored_action, undefined);
    assert.match(refusedTp.line, /🛡 refused: ☠️ signal \(protected target\)$/);
    assert.equal(monitored.json.process_kprobe.refused_action, undefined);
    const tp = build(rec(4, [int(1n)], { action: 'signal', actionResult: 'monitored', signal: 10 }));
    assert.equal(tp.json.process_tracepoint.action, 'KPROBE_ACTION_POST');
    assert.equal(tp.json.process_tracepoint.monitored_action, 'KPROBE_ACTION_SIGNAL');
    assert.match(tp.line, /👁 monitor: would ☠️ signal$/);
    const posted = build(rec(3, [int(0n)], { action: 'none', actionResult: 'monitored' }));
    assert.equal(posted.json.process_kprobe.monitored_action, undefined);
    const sig = build(rec(3, [int(0n)], { action: 'signal', actionResult: 'taken', signal: 10 }));
    assert.equal(sig.json.process_kprobe.action, 'KPROBE_ACTION_SIGNAL');
    assert.equal(sig.line, '🔑 setuid  /usr/bin/app 0 ☠️ signal');
    const enf = build(rec(3, [int(0n)], { action: 'notify-enforcer', actionResult: 'failed', signal: 9 }));
    assert.equal(enf.json.process_kprobe.action, 'KPROBE_ACTION_NOTIFYENFORCER');
  });

  test('setuid', () => {
    const { json, line } = build(rec(3, [int(4242n)]));
    assert.deepEqual(json.process_kprobe.args, [{ int_arg: 4242 }]);
    assert.equal(line, '🔑 setuid  /usr/bin/app 4242');
  });

  test('read: the fd as file_arg, a truncated buffer with its size, the hidden count left out', () => {
    const { json, line } = build(
      rec(6, [
        { type: 'fd', fd: 3, path: '/etc/hosts', truncated: false },
        { type: 'bytes', value: Buffer.from('abcd'), truncated: true, fault: false },
        int(4096n),
      ]),
    );
    assert.deepEqual(json.process_kprobe.args, [
      { file_arg: { path: '/etc/hosts' } },
      { truncated_bytes_arg: { bytes_arg: Buffer.from('abcd').toString('base64'), orig_size: '4096' } },
    ]);
    // the count is Tetragon's args[2], which the policy did not declare
    assert.equal(line, '📚 read    /usr/bin/app /etc/hosts');
    const closed = build(
      rec(6, [{ type: 'fd', fd: 9, path: undefined, truncated: false }, int(0n), int(0n)]),
    );
    assert.deepEqual(closed.json.process_kprobe.args[0], { int_arg: 9 });
  });

  test('sockaddr and ints of every width', () => {
    const { json, line } = build(
      rec(7, [
        { type: 'sockaddr', family: 10, addr: '::1', port: 443, fault: false },
        int(-5n),
        int(0xffffffffn),
        int(-1n),
      ]),
    );
    assert.deepEqual(json.process_kprobe.args, [
      { sockaddr_arg: { family: 'AF_INET6', addr: '::1', port: 443 } },
      { long_arg: '-5' },
      { uint_arg: 4294967295 },
      { int_arg: -1 },
    ]);
    assert.equal(line, '☎  syscall /usr/bin/app __x64_sys_connect');
    const unix = build(
      rec(7, [{ type: 'sockaddr', family: 1, addr: '', port: 0, fault: false }, int(0n), int(0n), int(0n)]),
    );
    assert.deepEqual(unix.json.process_kprobe.args[0], { sockaddr_arg: {} });
    // 32-bit fields take the low 32 bits of the 64 the engine read, whatever their size
    const widths: [bigint, number, number][] = [
      [0x7fffffffn, 2147483647, 2147483647],
      [0x80000000n, 2147483648, -2147483648],
      [2n ** 64n - 1n, 4294967295, -1],
      [2n ** 53n + 5n, 5, 5],
      [-(2n ** 53n) - 3n, 4294967293, -3],
      [-(2n ** 63n), 0, 0],
    ];
    for (const [v, u32, i32] of widths) {
      const w = build(
        rec(7, [{ type: 'sockaddr', family: 1, addr: '', port: 0, fault: false }, int(v), int(v), int(v)]),
      );
      assert.deepEqual(w.json.process_kprobe.args.slice(2), [{ uint_arg: u32 }, { int_arg: i32 }], `${v}`);
    }
  });

  test('a process the cache does not know: pid and tid, no parent', () => {
    const { json, line } = build(
      rec(8, [{ type: 'fd', fd: 1, path: '/dev/pts/0', truncated: false }], { pid: 999, tid: 999 }),
    );
    assert.deepEqual(json.process_kprobe.process, { pid: 999, tid: 999 });
    assert.equal(json.process_kprobe.parent, undefined);
    assert.equal(line, '☎  syscall [pid 999] __x64_sys_dup');
  });

  test('a record of a hook the policy does not have is an error', () => {
    assert.throws(
      () => buildTracingEvent(rec(2, []), META, cache(), 'n'),
      /policy "pol": the record names hook 2/,
    );
    assert.throws(() => buildTracingEvent(rec(40, []), META, cache(), 'n'), /hook 40/);
  });
});

describe('process_tracepoint', () => {
  test('lseek whence: subsys, event, args; the kill', () => {
    const { json, line } = build(
      rec(4, [int(5555n)], { action: 'sigkill', actionResult: 'taken', signal: 9 }),
    );
    const t = json.process_tracepoint;
    assert.deepEqual(Object.keys(t), [
      'process',
      'parent',
      'subsys',
      'event',
      'args',
      'policy_name',
      'action',
    ]);
    assert.equal(t.subsys, 'syscalls');
    assert.equal(t.event, 'sys_enter_lseek');
    assert.deepEqual(t.args, [{ int_arg: 5555 }]);
    assert.equal(t.action, 'KPROBE_ACTION_SIGKILL');
    assert.equal(t.process.binary, '/usr/bin/app');
    assert.equal(line, '⁉️ tracepoint /usr/bin/app syscalls sys_enter_lseek ☠️ SIGKILL');
  });

  test('raw_syscalls: the id as syscall_id, named in the compact line', () => {
    const { json, line } = build(rec(5, [int(8n)]));
    assert.deepEqual(json.process_tracepoint.args, [{ syscall_id: { id: 8, abi: 'x64' } }]);
    if (process.arch === 'x64') assert.equal(line, '☎  syscall /usr/bin/app lseek');
    const odd = build(rec(5, [int(4000n)]));
    assert.match(odd.line, /^☎ {2}syscall \/usr\/bin\/app unknown$/);
  });
});

describe("the builder's own line", () => {
  test('one process`s lines stay right across hooks, parents and the process ring going round', () => {
    // a process's events copy its opening and processes as one run of bytes kept on it: a
    // kprobe's and a tracepoint's differ, a new parent differs, and the ring they live in
    // is overwritten once 4 MiB of other processes went through it
    const c = cache();
    const other = proc(300, '/usr/bin/other');
    let parent: Process | undefined = c.byExecId(shell.exec_id)!.brief;
    const lookup = {
      get: (pid: number) => c.get(pid),
      byExecId: (id: string) => (id === shell.exec_id && parent ? { brief: parent } : undefined),
    };
    const lines = () => {
      for (const r of [
        rec(0, [
          int(1n),
          { type: 'bytes', value: Buffer.from('x'), truncated: false, fault: false },
          int(1n),
        ]),
        rec(4, [int(7n)]),
        rec(3, [int(0n)]),
      ]) {
        const ev = buildTracingEvent(r, META, lookup, 'n');
        assert.equal(encodeEvent(ev), JSON.stringify(ev));
      }
    };
    lines();
    lines();
    parent = other;
    lines();
    parent = undefined;
    lines();
    parent = other;
    lines();
    // 5 MiB of other processes' JSON through the ring
    const big = 'a'.repeat(4096);
    for (let i = 0; i < 1300; i++) processJson({ ...proc(10_000 + i, `/bin/${i}`), arguments: big });
    lines();
    assert.match(
      encodeEvent(buildTracingEvent(rec(3, [int(0n)]), META, lookup, 'n')),
      /"parent":\{"exec_id":"exec-300"/,
    );
  });

  test('escapes what needs it in the names, message and tags, with an unknown process and a kill', () => {
    const meta: PolicyEventMeta = {
      policyName: 'pol "quoted" \\ é',
      hooks: [
        kprobe('__x64_sys_openat', [{ type: 'string', label: 'p\tath' }], {
          returnType: 'int',
          message: 'line\nbreak "q"',
          tags: ['a"b', 'ü', 'x\u0001'],
        }),
        { ...tracepoint('sys"calls', 'ev\\t', [{ type: 'int32' }]), message: 'm', tags: ['t'] },
      ],
    };
    const k = build(
      rec(0, [str('/tmp/\u2028"x"\n')], {
        pid: 999,
        tid: 999,
        ret: -2n,
        action: 'sigkill',
        actionResult: 'taken',
      }),
      meta,
      'node "n" é',
    );
    assert.deepEqual(k.json.process_kprobe.process, { pid: 999, tid: 999 });
    assert.equal(k.json.process_kprobe.action, 'KPROBE_ACTION_SIGKILL');
    assert.equal(k.json.process_kprobe.args[0].string_arg, '/tmp/\u2028"x"\n');
    assert.equal(k.json.node_name, 'node "n" é');
    const t = build(rec(1, [int(-5n)]), meta, 'n');
    assert.deepEqual(Object.keys(t.json.process_tracepoint), [
      'process',
      'parent',
      'subsys',
      'event',
      'args',
      'policy_name',
      'action',
      'message',
      'tags',
    ]);
    // the same hook under another node name gets its own text
    const again = build(rec(1, [int(7n)]), meta, 'other');
    assert.equal(again.json.node_name, 'other');
  });
});
