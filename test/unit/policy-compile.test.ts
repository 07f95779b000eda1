// The policy compiler: Tetragon's example policies to the engine's tables,
// value shapes the engine takes, and refusals that name the policy, the hook
// and the field. Policies are validated against this machine's tracefs.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  type CompileContext,
  type CompiledPolicy,
  CompileProblem,
  compilePolicy,
  limitDisagreements,
  PolicyCompileError,
} from '../../src/policy/compile.js';
import { parsePolicyFile, parsePolicyText, type TracingPolicy } from '../../src/policy/index.js';
import { FILTER, HOOK, Op, OSP_LIMITS, PREFIX_KEY, SELECTOR } from '../../src/sensors/tracing/layout.js';
import { encodeTables, type HookTable } from '../../src/sensors/tracing/tables.js';

const TRACEFS = '/sys/kernel/tracing';
const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));
const CTX: CompileContext = { policyId: 7, agentPid: 4242 };

before(() => {
  if (!existsSync(path.join(TRACEFS, 'events'))) {
    execFileSync('mount', ['-t', 'tracefs', 'tracefs', TRACEFS]);
  }
});

function fromFile(rel: string): TracingPolicy[] {
  const r = parsePolicyFile(path.join(FIXTURES, rel), { arch: 'x64' });
  assert.deepEqual(r.errors.map(String), []);
  return r.policies;
}

function fromText(text: string): TracingPolicy {
  const r = parsePolicyText(text, 'inline.yaml', { arch: 'x64', kernel: KERNEL });
  assert.deepEqual(r.errors.map(String), []);
  return r.policies[0]!;
}

/** a kernel with everything, so the validator lets through what only the compiler refuses */
const KERNEL = { kprobes: true, bpfLsm: true, fentry: true, overrideReturn: true };

function compile(p: TracingPolicy, ctx: Partial<CompileContext> = {}): CompiledPolicy {
  const c = compilePolicy(p, { ...CTX, ...ctx });
  // whatever compiles, the engine's encoder takes
  encodeTables(c.tables, () => 0);
  return c;
}

function refused(p: TracingPolicy, ctx: Partial<CompileContext> = {}): CompileProblem[] {
  try {
    compilePolicy(p, { ...CTX, ...ctx });
  } catch (err) {
    assert.ok(err instanceof PolicyCompileError, String(err));
    assert.equal(err.policy, p.name);
    for (const q of err.problems) assert.ok(q instanceof CompileProblem);
    assert.equal(err.message, err.problems.map(String).join('\n'));
    return err.problems;
  }
  assert.fail(`policy "${p.name}" compiled`);
}

function policy(spec: string, name = 'inline'): string {
  return `apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: ${name}\nspec:\n${spec}`;
}

/** sys_enter_X args: 8-byte slots from offset 16 */
const slot = (i: number) => 16 + 8 * i;

describe('return values', () => {
  test('return.yaml: returnCopy reads the buffer at exit; matchReturnActions are taken there with matchActions', () => {
    const [reads] = fromFile('policies/good/return.yaml');
    const c = compile(reads!);
    const enter = c.tables.hooks.find((h) => h.name === 'sys_enter_read')!;
    assert.equal(enter.kind, 'enter');
    const buf = enter.args[1]!;
    assert.equal(buf.type, 'char_buf');
    assert.equal(buf.sizeFromReturn, true);
    assert.equal(buf.sizeArg, undefined);
    // matchActions absent (Post) + matchReturnActions [Sigkill]
    assert.deepEqual(enter.selectors[0]!.actions, { post: true, enforce: { action: 'Sigkill' } });
    // NoPost in either list keeps the event
    const quiet = compile(
      fromText(
        policy(`  kprobes:
    - call: sys_read
      syscall: true
      return: true
      args:
        - index: 1
          type: char_buf
          returnCopy: true
      returnArg:
        index: 0
        type: long
      selectors:
        - matchActions:
            - action: NoPost
          matchReturnActions:
            - action: Signal
              argSig: 10
`),
      ),
    );
    assert.deepEqual(quiet.tables.hooks.find((h) => h.kind === 'enter')!.selectors[0]!.actions, {
      post: false,
      enforce: { action: 'Signal', signal: 10 },
    });
  });
});

describe("Tetragon's example policies", () => {
  test('write.yaml: one hook on sys_enter_write; the char_buf sized by the declared count', () => {
    const c = compile(fromFile('tetragon/write.yaml')[0]!);
    assert.equal(c.name, 'sys-write');
    const want: HookTable[] = [
      {
        category: 'syscalls',
        name: 'sys_enter_write',
        kind: 'plain',
        args: [
          { type: 'int', offset: slot(0), size: 4, signed: true },
          { type: 'char_buf', offset: slot(1), size: 8, signed: false, sizeArg: 2 },
          { type: 'int', offset: slot(2), size: 8, signed: false },
        ],
        selectors: [
          {
            matchArgs: [{ arg: 0, op: 'Equal', ints: [1n] }],
            matchPIDs: [{ op: 'NotIn', pids: [1], followForks: true, isNamespacePID: true }],
            actions: { post: true },
          },
        ],
      },
    ];
    assert.deepEqual(c.tables.hooks, want);
    assert.deepEqual(
      { policyId: c.tables.policyId, mode: c.tables.mode, agentPid: c.tables.agentPid },
      { policyId: 7, mode: 'enforce', agentPid: 4242 },
    );
    assert.deepEqual(c.meta, {
      policyName: 'sys-write',
      hooks: [
        {
          shape: 'kprobe',
          hookId: 'kprobes[0]',
          tags: [],
          functionName: '__x64_sys_write',
          args: [{ type: 'int' }, { type: 'char_buf', sizeArg: 2 }, { type: 'size_t' }],
        },
      ],
    });
  });

  test('sys_setuid.yaml: one hook, the uid as a 32-bit signed int, no selectors', () => {
    const c = compile(fromFile('tetragon/sys_setuid.yaml')[0]!);
    assert.deepEqual(c.tables.hooks, [
      {
        category: 'syscalls',
        name: 'sys_enter_setuid',
        kind: 'plain',
        args: [{ type: 'int', offset: slot(0), size: 4, signed: true }],
        selectors: [],
      },
    ]);
    assert.equal(c.meta.hooks[0]?.shape === 'kprobe' && c.meta.hooks[0].functionName, '__x64_sys_setuid');
  });

  test('openat_write.yaml: an enter/exit pair; Mask values ORed; the return compared at exit', () => {
    const c = compile(fromFile('tetragon/openat_write.yaml')[0]!);
    assert.deepEqual(c.tables.hooks, [
      {
        category: 'syscalls',
        name: 'sys_enter_openat',
        kind: 'enter',
        pairWith: 1,
        args: [
          { type: 'int', offset: slot(0), size: 4, signed: true },
          { type: 'string', offset: slot(1), size: 8, signed: false },
          { type: 'int', offset: slot(2), size: 4, signed: true },
        ],
        selectors: [
          {
            matchArgs: [
              { arg: 1, op: 'Equal', strings: ['/etc/passwd'] },
              // O_CREAT | O_WRONLY | O_RDWR: any of them
              { arg: 2, op: 'Mask', ints: [0x43n] },
            ],
            matchReturnArgs: [{ op: 'GT', ints: [0n] }],
            actions: { post: true },
          },
        ],
      },
      {
        category: 'syscalls',
        name: 'sys_exit_openat',
        kind: 'exit',
        pairWith: 0,
        args: [],
        ret: { offset: 16, size: 4, signed: true },
        selectors: [],
      },
    ]);
    const m = c.meta.hooks[0];
    assert.equal(m?.shape === 'kprobe' && m.returnType, 'int');
    assert.equal(c.meta.hooks[1], undefined, 'exit hooks make no events of their own');
  });

  test('raw_syscalls.yaml: raw_syscalls/sys_enter, the id field (index 4) as an unsigned 64-bit int', () => {
    const c = compile(fromFile('tetragon/raw_syscalls.yaml')[0]!);
    assert.deepEqual(c.tables.hooks, [
      {
        category: 'raw_syscalls',
        name: 'sys_enter',
        kind: 'plain',
        args: [{ type: 'int', offset: 8, size: 8, signed: false }],
        selectors: [],
      },
    ]);
    assert.deepEqual(c.meta.hooks[0], {
      shape: 'tracepoint',
      hookId: 'tracepoints[0]',
      tags: [],
      subsys: 'raw_syscalls',
      event: 'sys_enter',
      args: [{ type: 'syscall64' }],
    });
  });

  test('sigkill_tracepoint.yaml.tmpl: whence (format index 7) read as int32; Sigkill for the matched pid', () => {
    const tmpl = readFileSync(path.join(FIXTURES, 'tetragon/sigkill_tracepoint.yaml.tmpl'), 'utf8');
    const text = tmpl.replace('{{.MatchedPID}}', '4321').replace('{{.NamespacePID}}', 'true');
    const c = compile(fromText(text));
    assert.deepEqual(c.tables.hooks, [
      {
        category: 'syscalls',
        name: 'sys_enter_lseek',
        kind: 'plain',
        // whence is an 8-byte slot at 32; int32 reads its low 4 bytes, signed
        args: [{ type: 'int', offset: 32, size: 4, signed: true }],
        selectors: [
          {
            matchArgs: [{ arg: 0, op: 'Equal', ints: [5555n] }],
            matchPIDs: [{ op: 'In', pids: [4321], followForks: false, isNamespacePID: true }],
            actions: { post: true, enforce: { action: 'Sigkill' } },
          },
        ],
      },
    ]);
    assert.equal(c.meta.hooks[0]?.shape, 'tracepoint');
  });
});

describe('compiling', () => {
  test("the validator's limits are the engine's", () => {
    assert.deepEqual(limitDisagreements(), []);
  });

  test('policy-mode and the override', () => {
    const p = fromText(
      policy(
        `  options:\n    - name: policy-mode\n      value: monitor\n  kprobes:\n    - call: sys_setuid\n      syscall: true\n`,
      ),
    );
    assert.equal(compile(p).tables.mode, 'monitor');
    assert.equal(compile(p, { mode: 'enforce' }).tables.mode, 'enforce');
  });

  test('a syscall list expands to one hook per syscall, pairs when the return is read', () => {
    const p = fromText(
      policy(`  lists:
    - name: dups
      type: syscalls
      values: [sys_dup, sys_dup2]
  kprobes:
    - call: list:dups
      syscall: true
      return: true
      message: "dup"
      tags: [fd]
      args:
        - index: 0
          type: fd
          label: oldfd
      returnArg:
        index: 0
        type: int
`),
    );
    const c = compile(p);
    assert.deepEqual(
      c.tables.hooks.map((h) => [h.name, h.kind, h.pairWith]),
      [
        ['sys_enter_dup', 'enter', 1],
        ['sys_exit_dup', 'exit', 0],
        ['sys_enter_dup2', 'enter', 3],
        ['sys_exit_dup2', 'exit', 2],
      ],
    );
    assert.deepEqual(c.tables.hooks[0]!.args, [{ type: 'fd', offset: slot(0), size: 4, signed: true }]);
    assert.deepEqual(c.meta.hooks[2], {
      shape: 'kprobe',
      hookId: 'kprobes[0]',
      tags: ['fd'],
      message: 'dup',
      functionName: '__x64_sys_dup2',
      args: [{ type: 'fd', label: 'oldfd' }],
      returnType: 'int',
    });
  });

  test('several GT, LT and Mask values become the one the engine compares', () => {
    const p = fromText(
      policy(`  tracepoints:
    - subsystem: syscalls
      event: sys_enter_lseek
      args:
        - index: 6
          type: int64
        - index: 7
          type: uint32
      selectors:
        - matchArgs:
            - index: 6
              operator: GT
              values: ["5", "-3", "100"]
            - index: 6
              operator: LT
              values: ["-7", "12"]
            - index: 7
              operator: Mask
              values: ["1", "0x10", "0o4"]
`),
    );
    assert.deepEqual(compile(p).tables.hooks[0]!.selectors[0]!.matchArgs, [
      { arg: 0, op: 'GT', ints: [-3n] },
      { arg: 0, op: 'LT', ints: [12n] },
      { arg: 1, op: 'Mask', ints: [0x15n] },
    ]);
  });

  test("a char_buf's undeclared count is read anyway, and left out of events", () => {
    const p = fromText(
      policy(`  kprobes:
    - call: sys_write
      syscall: true
      args:
        - index: 0
          type: fd
        - index: 1
          type: char_buf
          sizeArgIndex: 3
`),
    );
    const c = compile(p);
    assert.deepEqual(c.tables.hooks[0]!.args, [
      { type: 'fd', offset: slot(0), size: 4, signed: true },
      { type: 'char_buf', offset: slot(1), size: 8, signed: false, sizeArg: 2 },
      { type: 'int', offset: slot(2), size: 8, signed: false },
    ]);
    assert.deepEqual(c.meta.hooks[0]!.args, [
      { type: 'fd' },
      { type: 'char_buf', sizeArg: 2 },
      { type: 'uint64', hidden: true },
    ]);
  });

  test('fd filters: numbers compare the descriptor, paths the file it is open on', () => {
    const p = fromText(
      policy(`  kprobes:
    - call: sys_close
      syscall: true
      args:
        - index: 0
          type: fd
      selectors:
        - matchArgs:
            - index: 0
              operator: Equal
              values: ["1", "2"]
        - matchArgs:
            - index: 0
              operator: Equal
              values: ["/dev/null"]
            - index: 0
              operator: Prefix
              values: ["/tmp/"]
        - matchArgs:
            - index: 0
              operator: InRange
              values: ["3:9"]
`),
    );
    const sels = compile(p).tables.hooks[0]!.selectors;
    assert.deepEqual(
      sels.map((s) => s.matchArgs),
      [
        [{ arg: 0, op: 'Equal', ints: [1n, 2n] }],
        [
          { arg: 0, op: 'Equal', strings: ['/dev/null'] },
          { arg: 0, op: 'Prefix', strings: ['/tmp/'] },
        ],
        [{ arg: 0, op: 'InRange', ranges: [{ min: 3n, max: 9n }] }],
      ],
    );
  });

  test('sockaddr filters, process filters, rate limits and signals (network.yaml, lists.yaml)', () => {
    const [egress] = fromFile('policies/good/network.yaml');
    const c = compile(egress!);
    assert.deepEqual(c.tables.hooks[0]!.selectors[0], {
      matchArgs: [
        {
          arg: 1,
          op: 'DAddr',
          cidrs: ['10.0.0.0/8', '192.168.1.1/32', '2001:db8::/32', '::ffff:10.1.2.3/128'],
        },
        {
          arg: 1,
          op: 'DPort',
          ranges: [
            { min: 443n, max: 443n },
            { min: 8000n, max: 8999n },
          ],
        },
        { arg: 1, op: 'Family', ints: [2n, 10n] },
        { arg: 1, op: 'NotSPortPriv' },
      ],
      actions: { post: true, enforce: { action: 'Signal', signal: 15 } },
    });
    assert.equal(c.tables.hooks[1]!.name, 'sys_enter_bind');
    const [dups] = fromFile('policies/good/lists.yaml');
    const d = compile(dups!);
    const raw = d.tables.hooks[0]!;
    assert.equal(raw.category, 'raw_syscalls');
    assert.deepEqual(raw.selectors[0], {
      matchArgs: [{ arg: 0, op: 'InMap', ints: [32n, 33n, 292n, 60n], ranges: [{ min: 0n, max: 3n }] }],
      matchBinaries: { op: 'In', values: ['/usr/bin/bash'], followChildren: true },
      actions: { post: true, enforce: { action: 'NotifyEnforcer', signal: 9 } },
    });
    const rl = fromText(
      policy(`  kprobes:
    - call: sys_setuid
      syscall: true
      selectors:
        - matchActions:
            - action: Post
              rateLimit: 2m
              rateLimitScope: global
        - matchActions:
            - action: NoPost
            - action: Sigkill
`),
    );
    assert.deepEqual(
      compile(rl).tables.hooks[0]!.selectors.map((s) => s.actions),
      [
        { post: true, rateLimitNs: 120_000_000_000n, rateLimitScope: 'global' },
        { post: false, enforce: { action: 'Sigkill' } },
      ],
    );
  });

  test('host_ns resolves to the host namespaces; isNamespaceCapability is a User namespace filter', () => {
    const p = fromText(
      policy(`  kprobes:
    - call: sys_setuid
      syscall: true
      selectors:
        - matchNamespaces:
            - namespace: Mnt
              operator: In
              values: [host_ns, "4026531841"]
          matchCapabilities:
            - type: Effective
              operator: In
              isNamespaceCapability: true
              values: [CAP_SYS_ADMIN]
`),
    );
    const c = compile(p, { hostNs: { Mnt: 111, User: 222 } });
    assert.deepEqual(c.tables.hostNs, { Mnt: 111, User: 222 });
    const s = c.tables.hooks[0]!.selectors[0]!;
    assert.deepEqual(s.matchNamespaces, [
      { namespace: 'Mnt', op: 'In', values: ['host_ns', 4026531841] },
      { namespace: 'User', op: 'NotIn', values: ['host_ns'] },
    ]);
    assert.deepEqual(s.matchCapabilities, [{ set: 'Effective', op: 'In', mask: 1n << 21n }]);
    // without a context, the host's are read (PID 1's, or the agent's own)
    const own = compile(p).tables.hostNs;
    assert.ok(typeof own.Mnt === 'number' && typeof own.User === 'number', JSON.stringify(own));
  });
});

describe('refusals name the policy, the hook and the field', () => {
  test('two enforcement actions across matchActions and matchReturnActions, or two rate limits', () => {
    const hook = (actions: string) =>
      policy(`  kprobes:
    - call: sys_read
      syscall: true
      return: true
      args:
        - index: 2
          type: size_t
      returnArg:
        index: 0
        type: long
      selectors:
        - matchReturnArgs:
            - operator: GT
              values: ["0"]
${actions}`);
    const two = refused(
      fromText(
        hook(`          matchActions:
            - action: Sigkill
          matchReturnActions:
            - action: Signal
              argSig: 15
`),
      ),
    );
    assert.equal(two.length, 1);
    assert.match(two[0]!.message, /2 enforcement actions; the engine takes one per selector/);
    assert.equal(two[0]!.line, 23);
    const limits = refused(
      fromText(
        hook(`          matchActions:
            - action: Post
              rateLimit: 1m
          matchReturnActions:
            - action: Post
              rateLimit: 2m
`),
      ),
    );
    assert.match(limits[0]!.message, /both give Post a rateLimit/);
  });

  test('a namespaced policy: Osprey has no Kubernetes namespaces', () => {
    const [p] = fromFile('policies/good/selectors.yaml');
    const [q] = refused(p!);
    assert.match(
      q!.message,
      /^policy "file-access": a TracingPolicyNamespaced applies to the pods of Kubernetes namespace "prod"/,
    );
  });

  test('kprobes on kernel functions, lsm hooks and fentries', () => {
    const p = fromText(
      policy(`  kprobes:
    - call: tcp_connect
      syscall: false
  lsmhooks:
    - hook: file_open
`),
    );
    const problems = refused(p);
    assert.deepEqual(
      problems.map((q) => [q.hook, q.message]),
      [
        [
          'kprobes[0]',
          'policy "inline": kprobe "tcp_connect": kprobe hooks are not run by the tracing engine, which attaches to tracepoints only',
        ],
        [
          'lsmhooks[0]',
          'policy "inline": lsmhook "file_open": lsm hooks are not run by the tracing engine, which attaches to tracepoints only',
        ],
      ],
    );
  });

  test('too many args once a char_buf brings its count', () => {
    const p = fromText(
      policy(`  kprobes:
    - call: sys_pwrite64
      syscall: true
      args:
        - index: 0
          type: fd
        - index: 1
          type: char_buf
          sizeArgIndex: 3
        - index: 3
          type: int64
        - index: 0
          type: int
        - index: 1
          type: uint64
`),
    );
    const [q] = refused(p);
    assert.equal(q!.hook, 'kprobes[0]');
    assert.match(
      q!.message,
      /reads 6 args \(1 of them the byte counts of char_buf args\); the engine reads at most 5/,
    );
  });

  test('NotifyEnforcer from a syscall the enforcer does not cover', () => {
    const p = fromText(
      policy(`  enforcers:
    - calls: [sys_dup]
  kprobes:
    - call: sys_close
      syscall: true
      selectors:
        - matchActions:
            - action: NotifyEnforcer
              argSig: 9
`),
    );
    const [q] = refused(p);
    assert.equal(q!.fieldPath, 'spec.kprobes[0].selectors[0].matchActions[0]');
    assert.match(
      q!.message,
      /NotifyEnforcer on kprobe "sys_close": syscall close is not among spec.enforcers calls/,
    );
  });

  test('Override, where a kernel would allow it', () => {
    const p = fromText(
      policy(`  kprobes:
    - call: sys_close
      syscall: true
      selectors:
        - matchActions:
            - action: Override
              argError: -1
`),
    );
    const [q] = refused(p);
    assert.match(q!.message, /action Override is not supported by the tracing engine/);
  });

  test('every problem is reported, not only the first', () => {
    const p = fromText(
      policy(`  kprobes:
    - call: sys_read
      syscall: true
      args:
        - index: 1
          type: char_buf
          returnCopy: true
    - call: sys_write
      syscall: true
      args:
        - index: 1
          type: char_buf
          returnCopy: true
`),
    );
    assert.deepEqual(
      refused(p).map((q) => q.hook),
      ['kprobes[0]', 'kprobes[1]'],
    );
  });
});

describe('quick reject (osp_hook.quick_*)', () => {
  /** per hook: [quick_n, quick_arg, ids], and each selector's first Prefix filter id, from the encoded tables */
  function quick(text: string) {
    const t = encodeTables(compile(fromText(policy(text))).tables, () => 0);
    return t.hooks.map((h, i) => ({
      n: h.readUInt8(HOOK.quick_n),
      arg: h.readUInt8(HOOK.quick_arg),
      ids: [...Array(h.readUInt8(HOOK.quick_n)).keys()].map((k) => h.readUInt32LE(HOOK.quick_ids + 4 * k)),
      prefixIds: [...Array(OSP_LIMITS.MAX_SELECTORS).keys()]
        .map((k) => t.selectors.get(i * OSP_LIMITS.MAX_SELECTORS + k))
        .filter((s) => s !== undefined)
        .map((s) => {
          for (let j = 0; j < s.readUInt8(SELECTOR.nargf); j++) {
            const f = SELECTOR.argf + j * FILTER.SIZE;
            if (s.readUInt8(f + FILTER.op) === Op.PREFIX) return s.readUInt32LE(f + FILTER.id);
          }
          return undefined;
        }),
    }));
  }
  const hook = (selectors: string) => `  kprobes:
    - call: sys_openat
      syscall: true
      args:
        - index: 0
          type: int
        - index: 1
          type: string
      selectors:
${selectors}`;

  test('every selector has a Prefix filter on the same string arg: one id per selector', () => {
    const [h] = quick(
      hook(`        - matchArgs:
            - index: 0
              operator: Equal
              values: ["-100"]
            - index: 1
              operator: Prefix
              values: ["/etc/"]
        - matchArgs:
            - index: 1
              operator: Prefix
              values: ["/root/", "/home/"]
          matchActions:
            - action: Sigkill
`),
    );
    assert.equal(h!.n, 2);
    assert.equal(h!.arg, 1);
    assert.deepEqual(h!.ids, h!.prefixIds);
    assert.equal(new Set(h!.ids).size, 2);
  });

  test("an Equal filter counts too: its values go in the prefix set under the filter's id", () => {
    const long = `/${'x'.repeat(300)}`;
    const t = encodeTables(
      compile(
        fromText(
          policy(
            hook(`        - matchArgs:
            - index: 1
              operator: Equal
              values: ["/etc/passwd", "${long}"]
        - matchArgs:
            - index: 1
              operator: Prefix
              values: ["/etc/shadow"]
`),
          ),
        ),
      ).tables,
      () => 0,
    );
    const h = t.hooks[0]!;
    assert.equal(h.readUInt8(HOOK.quick_n), 2);
    const eqId = h.readUInt32LE(HOOK.quick_ids);
    const keys = t.prefix
      .filter((k) => k.readUInt32LE(PREFIX_KEY.id) === eqId)
      .map((k) => {
        const n = (k.readUInt32LE(PREFIX_KEY.prefixlen) - 32) / 8;
        return k.subarray(PREFIX_KEY.data, PREFIX_KEY.data + n).toString();
      });
    // one longer than a prefix key is cut to its first 252 bytes: still a superset
    assert.deepEqual(keys.sort(), ['/etc/passwd', long.slice(0, OSP_LIMITS.PREFIX_MAX)].sort());
  });

  test('a selector without one, Prefix on an int, NotPrefix or no selectors at all: no quick reject', () => {
    const cases = [
      hook(`        - matchArgs:
            - index: 1
              operator: Prefix
              values: ["/etc/"]
        - matchArgs:
            - index: 1
              operator: Postfix
              values: ["/tmp/x"]
`),
      hook(`        - matchArgs:
            - index: 1
              operator: NotPrefix
              values: ["/etc/"]
`),
      hook(`        - matchActions:
            - action: Post
`),
      `  kprobes:
    - call: sys_openat
      syscall: true
      args:
        - index: 1
          type: string
`,
    ];
    for (const c of cases)
      assert.deepEqual(
        quick(c).map((h) => h.n),
        [0],
        c,
      );
  });
});
