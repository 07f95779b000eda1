// The policy engine (bpf/generic.bpf.c + src/sensors/tracing) on the real
// kernel. Every policy is scoped to a cgroup of the test's own, and the
// target processes are a small C program compiled here, run inside it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { programStats } from '../../src/kernel/index.js';
import { ProcessSensor } from '../../src/sensors/process/sensor.js';
import {
  type ArgSpec,
  closePolicySpares,
  type HookTable,
  PolicyProgram,
  type PolicyProgramOptions,
  type PolicyTables,
  prewarmPolicyObjects,
  type SelectorTable,
  TablesError,
  type TracingRecord,
} from '../../src/sensors/tracing/index.js';
import { HOOK } from '../../src/sensors/tracing/layout.js';
import { encodeTables } from '../../src/sensors/tracing/tables.js';
import { loadedPrograms, makeTestCgroup } from '../lib/bpf.js';
import { CONNECT_OP_C, compileC } from '../lib/cc.js';

const TARGET_C = String.raw`
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs its arguments as a little script of syscalls. With GATE set it waits
 * for a byte on stdin first, so the test can learn its pid before it acts. */
int main(int argc, char **argv)
{
	if (getenv("GATE")) {
		char c;
		if (read(0, &c, 1) != 1)
			return 3;
	}
	for (int i = 1; i < argc; i++) {
		const char *op = argv[i];
		if (!strcmp(op, "open")) {
			int fd = open(argv[++i], O_RDONLY);
			printf("open %d\n", fd);
			fflush(stdout);
			if (fd >= 0)
				close(fd);
		} else if (!strcmp(op, "lseek")) {
			int fd = open("/dev/null", O_RDONLY);
			printf("lseek %ld\n", (long)lseek(fd, 0, atoi(argv[++i])));
			fflush(stdout);
		} else if (!strcmp(op, "write")) {
			const char *s = argv[++i];
			int fd = open("/dev/null", O_WRONLY);
			if (write(fd, s, strlen(s)) < 0)
				return 5;
			close(fd);
		} else if (!strcmp(op, "writeto")) {
			const char *p = argv[++i], *s = argv[++i];
			int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
			if (write(fd, s, strlen(s)) < 0)
				return 5;
			close(fd);
${CONNECT_OP_C}
		} else if (!strcmp(op, "fork")) {
			/* the child runs the rest of the script; the parent reports how it ended */
			int st;
			pid_t p = fork();
			if (p == 0)
				continue;
			waitpid(p, &st, 0);
			printf("child %d %s %d\n", p, WIFSIGNALED(st) ? "signal" : "exit",
			       WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
			fflush(stdout);
			return 0;
		} else if (!strcmp(op, "exec")) {
			execv(argv[i + 1], &argv[i + 1]);
			return 4;
		} else if (!strcmp(op, "sleep")) {
			usleep(atoi(argv[++i]) * 1000);
		} else {
			fprintf(stderr, "unknown op %s\n", op);
			return 2;
		}
	}
	return 0;
}
`;

let tmp: string;
let target: string;
/** a copy under another name, for binary filters */
let other: string;

before(() => {
  tmp = mkdtempSync('/tmp/osprey-tracing-');
  chmodSync(tmp, 0o755);
  target = compileC(tmp, 'target', TARGET_C);
  other = path.join(tmp, 'other');
  copyFileSync(target, other);
  chmodSync(other, 0o755);
});

after(() => {
  rmSync(tmp, { recursive: true, force: true });
});

// ---- tracepoint record layouts (from the format files) ----

/** syscalls/sys_enter_*: args are 8-byte slots from offset 16 */
function slot(i: number, type: ArgSpec['type'], extra: Partial<ArgSpec> = {}): ArgSpec {
  const int = type === 'int' || type === 'fd';
  return { type, offset: 16 + 8 * i, size: int ? 4 : 8, signed: int, ...extra };
}

const OPENAT_ARGS: ArgSpec[] = [slot(0, 'int'), slot(1, 'string'), slot(2, 'int')];

function openat(selectors: SelectorTable[], kind: HookTable['kind'] = 'plain'): HookTable {
  return { category: 'syscalls', name: 'sys_enter_openat', kind, args: OPENAT_ARGS, selectors };
}

function tables(hooks: HookTable[], extra: Partial<PolicyTables> = {}): PolicyTables {
  return { policyId: 7, mode: 'enforce', agentPid: process.pid, hostNs: {}, hooks, ...extra };
}

const post = { post: true } as const;

// ---- running a policy against the test's own processes ----

interface Run {
  pid: number;
  code: number | null;
  signal: string | null;
  stdout: string;
}

interface Harness {
  cgroup: string;
  prog: PolicyProgram;
  records: TracingRecord[];
  /** run argv in the test cgroup; with gate, onPid runs before the process is let go */
  run(argv: string[], opts?: { onPid?: (pid: number) => void | Promise<void> }): Promise<Run>;
  /** records of this pid (drains the ring first, waiting up to ms for at least `min`) */
  recordsOf(pid: number, min?: number, ms?: number): Promise<TracingRecord[]>;
  close(): void;
}

async function harness(
  tag: string,
  t: PolicyTables,
  opts: Partial<PolicyProgramOptions> & { procs?: boolean } = {},
): Promise<Harness> {
  const cg = makeTestCgroup(tag);
  const records: TracingRecord[] = [];
  let sensor: ProcessSensor | undefined;
  let prog: PolicyProgram;
  try {
    let procsMapFd: number | undefined;
    if (opts.procs) {
      sensor = ProcessSensor.start({ scopeCgroup: cg.path, onRecords: () => {} });
      procsMapFd = sensor.processTableFd();
    }
    prog = PolicyProgram.load(t, {
      scopeCgroup: cg.path,
      procsMapFd,
      ...opts,
      onRecords: (r) => records.push(...r),
    });
  } catch (err) {
    sensor?.stop();
    cg.remove();
    throw err;
  }
  return {
    cgroup: cg.path,
    prog,
    records,
    run(argv, runOpts = {}) {
      const gate = runOpts.onPid !== undefined;
      const child = spawn('/bin/sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cg.path, ...argv], {
        stdio: ['pipe', 'pipe', 'ignore'],
        env: gate ? { ...process.env, GATE: '1' } : process.env,
      });
      let stdout = '';
      child.stdout.on('data', (d) => {
        stdout += d;
      });
      return new Promise((resolve, reject) => {
        child.once('error', reject);
        child.once('spawn', async () => {
          // a process that is not gated may be gone before we write
          child.stdin.on('error', () => {});
          try {
            if (gate) await runOpts.onPid!(child.pid!);
            child.stdin.end(gate ? 'g' : undefined);
          } catch (err) {
            child.kill('SIGKILL');
            reject(err);
          }
        });
        child.once('close', (code, signal) => resolve({ pid: child.pid!, code, signal, stdout }));
      });
    },
    async recordsOf(pid, min = 1, ms = 2000) {
      const deadline = Date.now() + ms;
      for (;;) {
        prog.drain();
        const mine = records.filter((r) => r.pid === pid);
        if (mine.length >= min || Date.now() > deadline) return mine;
        await sleep(20);
      }
    },
    close() {
      try {
        prog.close();
      } finally {
        try {
          sensor?.stop();
        } finally {
          cg.remove();
        }
      }
    },
  };
}

async function withPolicy(
  tag: string,
  t: PolicyTables,
  body: (h: Harness) => Promise<void>,
  opts: Partial<PolicyProgramOptions> & { procs?: boolean } = {},
): Promise<void> {
  const h = await harness(tag, t, opts);
  try {
    await body(h);
  } finally {
    h.close();
  }
}

function str(r: TracingRecord, i: number): string | undefined {
  const a = r.args[i];
  return a?.type === 'string' ? a.value : undefined;
}

// ---------------------------------------------------------------------------

test('string Equal on openat: posts the matching open with its args, not the others', async () => {
  const secret = path.join(tmp, 'secret-equal');
  writeFileSync(secret, 'x');
  const t = tables([openat([{ matchArgs: [{ arg: 1, op: 'Equal', strings: [secret] }], actions: post }])]);
  await withPolicy('equal', t, async (h) => {
    const r = await h.run([target, 'open', `${secret}-not`, 'open', secret]);
    assert.equal(r.code, 0);
    const recs = await h.recordsOf(r.pid);
    assert.equal(recs.length, 1, JSON.stringify(recs.map((x) => str(x, 1))));
    const ev = recs[0]!;
    assert.equal(ev.policyId, 7);
    assert.equal(ev.hook, 0);
    assert.equal(ev.selector, 0);
    assert.equal(ev.action, 'none');
    assert.equal(ev.tid, r.pid);
    assert.deepEqual(ev.args[0], { type: 'int', value: -100n }); // AT_FDCWD
    assert.equal(str(ev, 1), secret);
    assert.equal(ev.args[2]?.type, 'int');
    assert.equal(ev.ret, undefined);
    assert.equal(h.prog.counters().posted >= 1, true);
  });
});

test('Sigkill: the process that opens the chosen file dies with SIGKILL and the event says so', async () => {
  const secret = path.join(tmp, 'secret-kill');
  writeFileSync(secret, 'x');
  const t = tables([
    openat([
      {
        matchArgs: [{ arg: 1, op: 'Equal', strings: [secret] }],
        actions: { post: true, enforce: { action: 'Sigkill' } },
      },
    ]),
  ]);
  await withPolicy('sigkill', t, async (h) => {
    const ok = await h.run([target, 'open', `${secret}-other`]);
    assert.equal(ok.code, 0, 'a different file is allowed');
    const r = await h.run([target, 'open', secret, 'open', `${secret}-after`]);
    assert.equal(r.signal, 'SIGKILL');
    const [ev] = await h.recordsOf(r.pid);
    assert.equal(ev?.action, 'sigkill');
    assert.equal(ev?.actionResult, 'taken');
    assert.equal(ev?.signal, 9);
    assert.equal(str(ev!, 1), secret);
    assert.equal(h.prog.counters().actionsTaken, 1);
  });
});

test('Signal with argSig: SIGUSR1 ends the process; a non-matching selector sends nothing', async () => {
  const secret = path.join(tmp, 'secret-usr1');
  const t = tables([
    openat([
      {
        matchArgs: [{ arg: 1, op: 'Equal', strings: [secret] }],
        actions: { post: true, enforce: { action: 'Signal', signal: 10 } },
      },
    ]),
  ]);
  await withPolicy('signal', t, async (h) => {
    const r = await h.run([target, 'open', secret]);
    assert.equal(r.signal, 'SIGUSR1');
    const [ev] = await h.recordsOf(r.pid);
    assert.equal(ev?.action, 'signal');
    assert.equal(ev?.signal, 10);
    const ok = await h.run([target, 'open', `${secret}x`]);
    assert.equal(ok.code, 0);
  });
});

test('monitor mode: the action is counted as monitored and the process survives; enforce kills', async () => {
  const secret = path.join(tmp, 'secret-monitor');
  const t = tables(
    [
      openat([
        {
          matchArgs: [{ arg: 1, op: 'Equal', strings: [secret] }],
          actions: { post: true, enforce: { action: 'Sigkill' } },
        },
      ]),
    ],
    { mode: 'monitor' },
  );
  await withPolicy('monitor', t, async (h) => {
    const r = await h.run([target, 'open', secret]);
    assert.equal(r.code, 0);
    const [ev] = await h.recordsOf(r.pid);
    assert.equal(ev?.action, 'sigkill');
    assert.equal(ev?.actionResult, 'monitored');
    assert.equal(h.prog.counters().actionsMonitored, 1);
    assert.equal(h.prog.counters().actionsTaken, 0);
    h.prog.setMode('enforce');
    assert.equal(h.prog.mode, 'enforce');
    const k = await h.run([target, 'open', secret]);
    assert.equal(k.signal, 'SIGKILL');
  });
});

test("lseek whence 5555 (Tetragon's tracepoint sigkill test): format index 7 kills the caller", async () => {
  // syscalls/sys_enter_lseek: fields 5, 6, 7 = fd @16, offset @24, whence @32, each 8 bytes, unsigned
  const lseek: HookTable = {
    category: 'syscalls',
    name: 'sys_enter_lseek',
    kind: 'plain',
    args: [{ type: 'int', offset: 32, size: 8, signed: false }],
    selectors: [
      {
        matchArgs: [{ arg: 0, op: 'Equal', ints: [5555n] }],
        actions: { post: true, enforce: { action: 'Sigkill' } },
      },
    ],
  };
  await withPolicy('lseek', tables([lseek]), async (h) => {
    const ok = await h.run([target, 'lseek', '0']);
    assert.equal(ok.code, 0);
    assert.match(ok.stdout, /lseek 0/);
    const r = await h.run([target, 'lseek', '5555']);
    assert.equal(r.signal, 'SIGKILL');
    const [ev] = await h.recordsOf(r.pid);
    assert.deepEqual(ev?.args, [{ type: 'int', value: 5555n }]);
    assert.equal(ev?.action, 'sigkill');
  });
});

test('return values: an enter/exit pair posts failed opens with ret, filtered by matchReturnArgs', async () => {
  const exists = path.join(tmp, 'exists-ret');
  writeFileSync(exists, 'x');
  const missing = path.join(tmp, 'missing-ret');
  const t = tables([
    {
      ...openat(
        [
          {
            matchArgs: [{ arg: 1, op: 'Prefix', strings: [tmp] }],
            matchReturnArgs: [{ op: 'LT', ints: [0n] }],
            actions: post,
          },
        ],
        'enter',
      ),
      pairWith: 1,
    },
    {
      category: 'syscalls',
      name: 'sys_exit_openat',
      kind: 'exit',
      pairWith: 0,
      args: [],
      ret: { offset: 16, size: 8, signed: true },
      selectors: [],
    },
  ]);
  await withPolicy('ret', t, async (h) => {
    const r = await h.run([target, 'open', exists, 'open', missing]);
    assert.equal(r.code, 0);
    const recs = await h.recordsOf(r.pid);
    assert.equal(recs.length, 1);
    assert.equal(recs[0]?.ret, -2n); // ENOENT
    assert.equal(str(recs[0]!, 1), missing);
    assert.equal(recs[0]?.hook, 0);
  });
});

test('return values without matchReturnArgs: every call posts with its ret', async () => {
  const exists = path.join(tmp, 'exists-ret2');
  writeFileSync(exists, 'x');
  const t = tables([
    {
      ...openat([{ matchArgs: [{ arg: 1, op: 'Equal', strings: [exists] }], actions: post }], 'enter'),
      pairWith: 1,
    },
    {
      category: 'syscalls',
      name: 'sys_exit_openat',
      kind: 'exit',
      pairWith: 0,
      args: [],
      ret: { offset: 16, size: 8, signed: true },
      selectors: [],
    },
  ]);
  await withPolicy('ret2', t, async (h) => {
    const r = await h.run([target, 'open', exists]);
    const fd = Number(/open (\d+)/.exec(r.stdout)?.[1]);
    const [ev] = await h.recordsOf(r.pid);
    assert.equal(ev?.ret, BigInt(fd));
  });
});

test('fd args resolve to the open file path; char_buf reads count bytes (sizeArg) of write()', async () => {
  const out = path.join(tmp, 'written-file');
  const write: HookTable = {
    category: 'syscalls',
    name: 'sys_enter_write',
    kind: 'plain',
    args: [slot(0, 'fd'), slot(1, 'char_buf', { sizeArg: 2 }), slot(2, 'int', { size: 8, signed: false })],
    selectors: [{ matchArgs: [{ arg: 0, op: 'Postfix', strings: ['/written-file'] }], actions: post }],
  };
  await withPolicy('fd', tables([write]), async (h) => {
    const r = await h.run([target, 'write', 'to-dev-null', 'writeto', out, 'hello osprey']);
    assert.equal(r.code, 0);
    const recs = await h.recordsOf(r.pid);
    assert.equal(recs.length, 1, 'the write to /dev/null does not match');
    const [fd, buf, n] = recs[0]!.args;
    assert.equal(fd?.type, 'fd');
    assert.equal(fd?.type === 'fd' && fd.path, out);
    assert.ok(fd?.type === 'fd' && fd.fd >= 3);
    assert.equal(buf?.type, 'bytes');
    assert.equal(buf?.type === 'bytes' && buf.value.toString(), 'hello osprey');
    assert.equal(buf?.type === 'bytes' && buf.truncated, false);
    assert.deepEqual(n, { type: 'int', value: 12n });
  });
});

test('char_buf is capped at maxBytes and flagged truncated', async () => {
  const write: HookTable = {
    category: 'syscalls',
    name: 'sys_enter_write',
    kind: 'plain',
    args: [
      slot(0, 'fd'),
      slot(1, 'char_buf', { sizeArg: 2, maxBytes: 4 }),
      slot(2, 'int', { size: 8, signed: false }),
    ],
    selectors: [{ matchArgs: [{ arg: 0, op: 'Equal', strings: ['/dev/null'] }], actions: post }],
  };
  await withPolicy('charbuf', tables([write]), async (h) => {
    const r = await h.run([target, 'write', 'abcdefgh']);
    const [ev] = await h.recordsOf(r.pid);
    const buf = ev?.args[1];
    assert.equal(buf?.type === 'bytes' && buf.value.toString(), 'abcd');
    assert.equal(buf?.type === 'bytes' && buf.truncated, true);
  });
});

/** Hooks all on one tracepoint, one selector each: which hook posted which value. */
function matrix(
  recs: TracingRecord[],
  value: (r: TracingRecord) => string | bigint | undefined,
): Map<number, Set<string>> {
  const m = new Map<number, Set<string>>();
  for (const r of recs) {
    const v = value(r);
    if (v === undefined) continue;
    if (!m.has(r.hook)) m.set(r.hook, new Set());
    m.get(r.hook)!.add(String(v));
  }
  return m;
}

test('int operators: Equal NotEqual GT LT Mask InRange NotInRange InMap NotInMap, each matching and not', async () => {
  const whence = { type: 'int', offset: 32, size: 8, signed: false } as const;
  const offset = { type: 'int', offset: 24, size: 8, signed: true } as const;
  const cases: [string, SelectorTable['matchArgs'], string[]][] = [
    ['Equal', [{ arg: 0, op: 'Equal', ints: [100n] }], ['100']],
    ['NotEqual', [{ arg: 0, op: 'NotEqual', ints: [100n, 0n] }], ['200', '300']],
    ['GT', [{ arg: 0, op: 'GT', ints: [150n] }], ['200', '300']],
    ['LT', [{ arg: 0, op: 'LT', ints: [150n] }], ['0', '100']],
    ['Mask', [{ arg: 0, op: 'Mask', ints: [4n] }], ['100', '300']],
    [
      'InRange',
      [
        {
          arg: 0,
          op: 'InRange',
          ranges: [
            { min: 90n, max: 110n },
            { min: 299n, max: 301n },
          ],
        },
      ],
      ['100', '300'],
    ],
    ['NotInRange', [{ arg: 0, op: 'NotInRange', ranges: [{ min: 90n, max: 110n }] }], ['0', '200', '300']],
    ['InMap', [{ arg: 0, op: 'InMap', ints: [200n], ranges: [{ min: 299n, max: 300n }] }], ['200', '300']],
    ['NotInMap', [{ arg: 0, op: 'NotInMap', ints: [200n, 0n] }], ['100', '300']],
    // signed: lseek's offset arg is 0 in every call, -1 < 0
    [
      'GT signed',
      [
        { arg: 1, op: 'GT', ints: [-1n] },
        { arg: 0, op: 'Equal', ints: [100n] },
      ],
      ['100'],
    ],
    ['LT signed', [{ arg: 1, op: 'LT', ints: [-1n] }], []],
  ];
  const hooks: HookTable[] = cases.map(([, matchArgs]) => ({
    category: 'syscalls',
    name: 'sys_enter_lseek',
    kind: 'plain',
    args: [whence, offset],
    selectors: [{ matchArgs, actions: post }],
  }));
  await withPolicy('ints', tables(hooks), async (h) => {
    const r = await h.run([target, 'lseek', '0', 'lseek', '100', 'lseek', '200', 'lseek', '300']);
    assert.equal(r.code, 0);
    await h.recordsOf(r.pid, 14);
    const m = matrix(h.records, (x) => (x.args[0]?.type === 'int' ? x.args[0].value : undefined));
    cases.forEach(([name, , want], i) => {
      assert.deepEqual([...(m.get(i) ?? [])].sort(), want.sort(), name);
    });
  });
});

test('string operators on a path: Equal NotEqual Prefix NotPrefix Postfix NotPostfix SubString', async () => {
  const a = path.join(tmp, 'alpha.conf');
  const b = path.join(tmp, 'beta.log');
  const c = path.join(tmp, 'gamma-secret.log');
  const mine = new Set([a, b, c]);
  const cases: [string, SelectorTable['matchArgs'], string[]][] = [
    ['Equal', [{ arg: 1, op: 'Equal', strings: [a, c] }], [a, c]],
    ['NotEqual', [{ arg: 1, op: 'NotEqual', strings: [a] }], [b, c]],
    ['Prefix', [{ arg: 1, op: 'Prefix', strings: [path.join(tmp, 'be'), '/nonexistent'] }], [b]],
    ['NotPrefix', [{ arg: 1, op: 'NotPrefix', strings: [path.join(tmp, 'be')] }], [a, c]],
    ['Postfix', [{ arg: 1, op: 'Postfix', strings: ['.log'] }], [b, c]],
    ['NotPostfix', [{ arg: 1, op: 'NotPostfix', strings: ['.log'] }], [a]],
    ['SubString', [{ arg: 1, op: 'SubString', strings: ['secret', 'pha.c'] }], [a, c]],
    [
      'Prefix AND Postfix',
      [
        { arg: 1, op: 'Prefix', strings: [tmp] },
        { arg: 1, op: 'Postfix', strings: ['.conf'] },
      ],
      [a],
    ],
  ];
  const hooks = cases.map(([, matchArgs]) => openat([{ matchArgs, actions: post }]));
  await withPolicy('strings', tables(hooks), async (h) => {
    const r = await h.run([target, 'open', a, 'open', b, 'open', c]);
    assert.equal(r.code, 0);
    await h.recordsOf(r.pid, 11);
    const m = matrix(h.records, (x) => {
      const s = str(x, 1);
      return s && mine.has(s) ? s : undefined;
    });
    cases.forEach(([name, , want], i) => {
      assert.deepEqual([...(m.get(i) ?? [])].sort(), want.sort(), name);
    });
  });
});

test('Prefix matches paths of every length just past the prefix', async () => {
  // the string read is masked for the verifier: a wrong mask loses length bits
  const dir = path.join(tmp, 'pfx');
  mkdirSync(dir, { recursive: true });
  const files = Array.from({ length: 17 }, (_, k) => path.join(dir, 'f'.repeat(k + 1)));
  for (const f of files) writeFileSync(f, '');
  const t = tables([
    openat([{ matchArgs: [{ arg: 1, op: 'Prefix', strings: [`${dir}/`] }], actions: post }]),
  ]);
  await withPolicy('prefix-lengths', t, async (h) => {
    // a long path of other bytes before each one leaves stale bytes in the scratch key
    const decoy = `/${'z'.repeat(300)}`;
    const r = await h.run([target, ...files.flatMap((f) => ['open', decoy, 'open', f])]);
    assert.equal(r.code, 0);
    const recs = await h.recordsOf(r.pid, files.length);
    assert.deepEqual(recs.map((x) => str(x, 1)).sort(), [...files].sort());
  });
});

test('quick reject (a Prefix or Equal on the path in every selector) passes on whatever some selector matches', async () => {
  const dir = path.join(tmp, 'quick');
  mkdirSync(dir, { recursive: true });
  const one = path.join(dir, 'one');
  const other = path.join(dir, 'other');
  const two = path.join(tmp, 'quick-two');
  // longer than a prefix key's 252 bytes: the kernel compares its first 252
  const long = path.join(dir, 'l'.repeat(250));
  // Equal: the quick check lets both through (each starts with eq), the full match only eq
  const eq = path.join(tmp, 'quick-eq');
  const eqx = `${eq}x`;
  for (const f of [one, other, two, long, eq, eqx]) writeFileSync(f, '');
  const t = tables([
    openat([
      {
        matchArgs: [
          { arg: 1, op: 'Prefix', strings: [`${dir}/`] },
          { arg: 1, op: 'Postfix', strings: ['one'] },
        ],
        actions: post,
      },
      { matchArgs: [{ arg: 1, op: 'Prefix', strings: ['/nonexistent', two] }], actions: post },
      { matchArgs: [{ arg: 1, op: 'Prefix', strings: [`${dir}/lll`] }], actions: post },
      { matchArgs: [{ arg: 1, op: 'Equal', strings: ['/nonexistent', eq] }], actions: post },
    ]),
  ]);
  // the hook does take the quick path
  assert.equal(encodeTables(t, () => 0).hooks[0]!.readUInt8(HOOK.quick_n), 4);
  await withPolicy('quick', t, async (h) => {
    const r = await h.run([
      target,
      'open',
      other,
      'open',
      one,
      'open',
      two,
      'open',
      long,
      'open',
      eqx,
      'open',
      eq,
    ]);
    assert.equal(r.code, 0);
    await h.recordsOf(r.pid, 4);
    await sleep(200);
    const mine = h.records.filter((x) => x.pid === r.pid);
    assert.deepEqual(
      mine.map((x) => [str(x, 1), x.selector]),
      [
        [one, 0],
        [two, 1],
        [long, 2],
        [eq, 3],
      ],
    );
  });
});

test('Equal with hundreds of values of every length (hash buckets) matches exactly', async () => {
  const values: string[] = [];
  for (let i = 0; i < 300; i++) values.push(path.join(tmp, `v${i}-${'x'.repeat(i * 13)}`));
  const pick = [values[0]!, values[150]!, values[299]!];
  const miss = `${values[299]!}y`;
  const t = tables([openat([{ matchArgs: [{ arg: 1, op: 'Equal', strings: values }], actions: post }])]);
  await withPolicy('many', t, async (h) => {
    const r = await h.run([target, ...pick.flatMap((p) => ['open', p]), 'open', miss]);
    assert.equal(r.code, 0);
    const recs = await h.recordsOf(r.pid, 3);
    assert.deepEqual(
      recs.map((x) => str(x, 1)),
      pick,
    );
  });
});

test('sockaddr: DAddr NotDAddr DPort NotDPort Family SAddr on connect(), IPv4 and IPv6', async () => {
  const connect = (matchArgs: SelectorTable['matchArgs']): HookTable => ({
    category: 'syscalls',
    name: 'sys_enter_connect',
    kind: 'plain',
    args: [slot(0, 'int'), slot(1, 'sockaddr'), slot(2, 'int')],
    selectors: [{ matchArgs, actions: post }],
  });
  const cases: [string, SelectorTable['matchArgs'], string[]][] = [
    ['DAddr', [{ arg: 1, op: 'DAddr', cidrs: ['127.0.0.0/31'] }], ['127.0.0.1:9']],
    ['NotDAddr', [{ arg: 1, op: 'NotDAddr', cidrs: ['127.0.0.1'] }], ['127.0.0.2:80', '::1:9']],
    ['DPort', [{ arg: 1, op: 'DPort', ranges: [{ min: 9n, max: 9n }] }], ['127.0.0.1:9', '::1:9']],
    ['NotDPort', [{ arg: 1, op: 'NotDPort', ranges: [{ min: 1n, max: 10n }] }], ['127.0.0.2:80']],
    ['DPortPriv', [{ arg: 1, op: 'DPortPriv' }], ['127.0.0.1:9', '127.0.0.2:80', '::1:9']],
    ['Family', [{ arg: 1, op: 'Family', ints: [10n] }], ['::1:9']],
    ['SAddr v6', [{ arg: 1, op: 'SAddr', cidrs: ['::1/128'] }], ['::1:9']],
  ];
  await withPolicy('sockaddr', tables(cases.map(([, m]) => connect(m))), async (h) => {
    const r = await h.run([
      target,
      'connect',
      '127.0.0.1',
      '9',
      'connect',
      '127.0.0.2',
      '80',
      'connect',
      '::1',
      '9',
    ]);
    assert.equal(r.code, 0);
    await h.recordsOf(r.pid, 11);
    const m = matrix(h.records, (x) => {
      const s = x.args[1];
      return s?.type === 'sockaddr' ? `${s.addr}:${s.port}` : undefined;
    });
    cases.forEach(([name, , want], i) => {
      assert.deepEqual([...(m.get(i) ?? [])].sort(), want.sort(), name);
    });
    const v6 = h.records.find((x) => x.args[1]?.type === 'sockaddr' && x.args[1].family === 10);
    assert.deepEqual(v6?.args[1], { type: 'sockaddr', family: 10, addr: '::1', port: 9, fault: false });
  });
});

test('matchPIDs In and NotIn, and followForks for a forked child', async () => {
  const file = path.join(tmp, 'pids-file');
  const m = [{ arg: 1, op: 'Equal' as const, strings: [file] }];
  let pid = 0;
  const hooks = (p: number) => [
    openat([{ matchPIDs: [{ op: 'In', pids: [p] }], matchArgs: m, actions: post }]),
    openat([{ matchPIDs: [{ op: 'NotIn', pids: [p] }], matchArgs: m, actions: post }]),
    openat([{ matchPIDs: [{ op: 'In', pids: [p], followForks: true }], matchArgs: m, actions: post }]),
  ];
  // the policy needs the pid before the process acts: load it from the gate
  const cg = makeTestCgroup('pids');
  const records: TracingRecord[] = [];
  let prog: PolicyProgram | undefined;
  try {
    const child = spawn(
      '/bin/sh',
      ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cg.path, target, 'open', file, 'fork', 'open', file],
      {
        stdio: ['pipe', 'pipe', 'ignore'],
        env: { ...process.env, GATE: '1' },
      },
    );
    let stdout = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    await new Promise((res) => child.once('spawn', res));
    pid = child.pid!;
    prog = PolicyProgram.load(tables(hooks(pid)), {
      scopeCgroup: cg.path,
      onRecords: (r) => records.push(...r),
    });
    child.stdin.end('g');
    await new Promise((res) => child.once('close', res));
    const kid = Number(/child (\d+)/.exec(stdout)?.[1]);
    assert.ok(kid > 0, stdout);
    await sleep(50);
    prog.drain();
    const by = (hook: number) =>
      records
        .filter((r) => r.hook === hook)
        .map((r) => r.pid)
        .sort();
    assert.deepEqual(by(0), [pid], 'In: the pid only');
    assert.deepEqual(by(1), [kid], 'NotIn: the child only');
    assert.deepEqual(by(2), [pid, kid].sort(), 'followForks: both');
  } finally {
    prog?.close();
    cg.remove();
  }
});

test('matchBinaries In NotIn Prefix Postfix, matchParentBinaries, and followChildren', async () => {
  const file = path.join(tmp, 'bin-file');
  const m = [{ arg: 1, op: 'Equal' as const, strings: [file] }];
  const cases: [string, SelectorTable, string[]][] = [
    ['In', { matchBinaries: { op: 'In', values: [target] }, matchArgs: m, actions: post }, ['target']],
    [
      'NotIn',
      { matchBinaries: { op: 'NotIn', values: [target] }, matchArgs: m, actions: post },
      ['other', 'other-child'],
    ],
    [
      'Prefix',
      { matchBinaries: { op: 'Prefix', values: [path.join(tmp, 'ot')] }, matchArgs: m, actions: post },
      ['other', 'other-child'],
    ],
    [
      'Postfix',
      { matchBinaries: { op: 'Postfix', values: ['/target'] }, matchArgs: m, actions: post },
      ['target'],
    ],
    [
      'Parent',
      { matchParentBinaries: { op: 'In', values: [target] }, matchArgs: m, actions: post },
      ['other-child'],
    ],
    [
      'followChildren',
      { matchBinaries: { op: 'In', values: [target], followChildren: true }, matchArgs: m, actions: post },
      ['target', 'other-child'],
    ],
  ];
  const hooks = cases.map(([, s]) => openat([s]));
  await withPolicy(
    'binaries',
    tables(hooks),
    async (h) => {
      const t1 = await h.run([target, 'open', file]);
      const o1 = await h.run([other, 'open', file]);
      // target forks a child that execs other, which opens the file
      const t2 = await h.run([target, 'fork', 'exec', other, 'open', file]);
      const kid = Number(/child (\d+) exit 0/.exec(t2.stdout)?.[1]);
      assert.ok(kid > 0, t2.stdout);
      await h.recordsOf(kid);
      await sleep(50);
      h.prog.drain();
      const name = new Map([
        [t1.pid, 'target'],
        [o1.pid, 'other'],
        [kid, 'other-child'],
      ]);
      cases.forEach(([label, , want], i) => {
        const got = h.records.filter((r) => r.hook === i).map((r) => name.get(r.pid) ?? `pid ${r.pid}`);
        assert.deepEqual(got.sort(), want.sort(), label);
      });
    },
    { procs: true },
  );
});

test('matchNamespaces In/NotIn host_ns and matchCapabilities In/NotIn, for root and an unprivileged process', async () => {
  const file = path.join(tmp, 'ns-caps-file');
  writeFileSync(file, 'x');
  const m = [{ arg: 1, op: 'Equal' as const, strings: [file] }];
  const CAP_SYS_ADMIN = 1n << 21n;
  const cases: [string, SelectorTable, string[]][] = [
    [
      'Mnt In host_ns',
      { matchNamespaces: [{ namespace: 'Mnt', op: 'In', values: ['host_ns'] }], matchArgs: m, actions: post },
      ['root', 'nobody'],
    ],
    [
      'Mnt NotIn host_ns',
      {
        matchNamespaces: [{ namespace: 'Mnt', op: 'NotIn', values: ['host_ns'] }],
        matchArgs: m,
        actions: post,
      },
      [],
    ],
    [
      'Pid In other',
      { matchNamespaces: [{ namespace: 'Pid', op: 'In', values: [1] }], matchArgs: m, actions: post },
      [],
    ],
    [
      'Effective In SYS_ADMIN',
      {
        matchCapabilities: [{ set: 'Effective', op: 'In', mask: CAP_SYS_ADMIN }],
        matchArgs: m,
        actions: post,
      },
      ['root'],
    ],
    [
      'Effective NotIn SYS_ADMIN',
      {
        matchCapabilities: [{ set: 'Effective', op: 'NotIn', mask: CAP_SYS_ADMIN }],
        matchArgs: m,
        actions: post,
      },
      ['nobody'],
    ],
    [
      'Permitted In SYS_ADMIN',
      {
        matchCapabilities: [{ set: 'Permitted', op: 'In', mask: CAP_SYS_ADMIN }],
        matchArgs: m,
        actions: post,
      },
      ['root'],
    ],
  ];
  // the agent fills hostNs from PID 1; here the test's own namespaces stand in
  const hostNs = { Mnt: statSync('/proc/self/ns/mnt').ino, Pid: statSync('/proc/self/ns/pid').ino };
  await withPolicy(
    'nscaps',
    tables(
      cases.map(([, s]) => openat([s])),
      { hostNs },
    ),
    async (h) => {
      const root = await h.run([target, 'open', file]);
      const nobody = await h.run([
        'setpriv',
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        target,
        'open',
        file,
      ]);
      assert.equal(nobody.code, 0);
      await h.recordsOf(nobody.pid, 2);
      await sleep(50);
      h.prog.drain();
      const name = new Map([
        [root.pid, 'root'],
        [nobody.pid, 'nobody'],
      ]);
      cases.forEach(([label, , want], i) => {
        const got = h.records.filter((r) => r.hook === i).map((r) => name.get(r.pid) ?? `pid ${r.pid}`);
        assert.deepEqual(got.sort(), want.sort(), label);
      });
    },
  );
});

test('rateLimit: one event per window per process; global scope shares the window', async () => {
  const file = path.join(tmp, 'rate-file');
  const sel = (scope: 'process' | 'global'): SelectorTable => ({
    matchArgs: [{ arg: 1, op: 'Equal', strings: [file] }],
    actions: { post: true, rateLimitNs: 60_000_000_000n, rateLimitScope: scope },
  });
  await withPolicy('rate', tables([openat([sel('process')]), openat([sel('global')])]), async (h) => {
    const five = Array.from({ length: 5 }, () => ['open', file]).flat();
    const a = await h.run([target, ...five]);
    const b = await h.run([target, ...five]);
    await h.recordsOf(b.pid, 1);
    await sleep(50);
    h.prog.drain();
    const of = (hook: number, pid: number) =>
      h.records.filter((r) => r.hook === hook && r.pid === pid).length;
    assert.equal(of(0, a.pid), 1);
    assert.equal(of(0, b.pid), 1, 'process scope: a new process has its own window');
    assert.equal(of(1, a.pid) + of(1, b.pid), 1, 'global scope: one event in all');
    assert.equal(h.prog.counters().rateLimited, 8 + 9);
  });
});

test('NotifyEnforcer: the signal is sent as the thread leaves the syscall', async () => {
  const secret = path.join(tmp, 'secret-notify');
  const t = tables([
    openat([
      {
        matchArgs: [{ arg: 1, op: 'Equal', strings: [secret] }],
        actions: { post: true, enforce: { action: 'NotifyEnforcer', signal: 9 } },
      },
    ]),
  ]);
  await withPolicy('notify', t, async (h) => {
    assert.ok(
      h.prog.programs().some((p) => p.name === 'osprey_enforcer' && p.hook.includes('raw_syscalls/sys_exit')),
    );
    const ok = await h.run([target, 'open', `${secret}-no`]);
    assert.equal(ok.code, 0);
    const r = await h.run([target, 'open', secret]);
    assert.equal(r.signal, 'SIGKILL');
    assert.doesNotMatch(r.stdout, /open/, 'killed before the open returned to user space');
    const [ev] = await h.recordsOf(r.pid);
    assert.equal(ev?.action, 'notify-enforcer');
    assert.equal(ev?.actionResult, 'taken');
  });
});

test('the agent itself is never signalled: the action is refused and counted', async () => {
  const secret = path.join(tmp, 'secret-refused');
  const cg = makeTestCgroup('refused');
  const records: TracingRecord[] = [];
  let prog: PolicyProgram | undefined;
  try {
    const child = spawn(
      '/bin/sh',
      ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cg.path, target, 'open', secret],
      {
        stdio: ['pipe', 'ignore', 'ignore'],
        env: { ...process.env, GATE: '1' },
      },
    );
    await new Promise((res) => child.once('spawn', res));
    // pretend the child is the agent
    const t = tables(
      [
        openat([
          {
            matchArgs: [{ arg: 1, op: 'Equal', strings: [secret] }],
            actions: { post: true, enforce: { action: 'Sigkill' } },
          },
        ]),
      ],
      { agentPid: child.pid! },
    );
    prog = PolicyProgram.load(t, { scopeCgroup: cg.path, onRecords: (r) => records.push(...r) });
    child.stdin!.end('g');
    const [code, signal] = await new Promise<[number | null, string | null]>((res) =>
      child.once('close', (c, s) => res([c, s])),
    );
    assert.equal(signal, null);
    assert.equal(code, 0);
    await sleep(50);
    prog.drain();
    assert.equal(records[0]?.actionResult, 'refused');
    assert.equal(prog.counters().actionsRefused, 1);
    assert.equal(prog.counters().actionsTaken, 0);
  } finally {
    prog?.close();
    cg.remove();
  }
});

test('NoPost with Sigkill: the action is taken, no event', async () => {
  const secret = path.join(tmp, 'secret-nopost');
  const t = tables([
    openat([
      {
        matchArgs: [{ arg: 1, op: 'Equal', strings: [secret] }],
        actions: { post: false, enforce: { action: 'Sigkill' } },
      },
    ]),
  ]);
  await withPolicy('nopost', t, async (h) => {
    const r = await h.run([target, 'open', secret]);
    assert.equal(r.signal, 'SIGKILL');
    assert.equal((await h.recordsOf(r.pid, 1, 200)).length, 0);
    assert.equal(h.prog.counters().actionsTaken, 1);
  });
});

test('first matching selector wins; a hook without selectors posts every call', async () => {
  const file = path.join(tmp, 'first-file');
  const t = tables([
    openat([
      { matchArgs: [{ arg: 1, op: 'Prefix', strings: ['/nonexistent'] }], actions: post },
      { matchArgs: [{ arg: 1, op: 'Equal', strings: [file] }], actions: post },
      { matchArgs: [{ arg: 1, op: 'Prefix', strings: [tmp] }], actions: post },
    ]),
    {
      category: 'syscalls',
      name: 'sys_enter_lseek',
      kind: 'plain',
      args: [{ type: 'int', offset: 32, size: 8, signed: false }],
      selectors: [],
    },
  ]);
  await withPolicy('first', t, async (h) => {
    const r = await h.run([target, 'open', file, 'lseek', '1']);
    await h.recordsOf(r.pid, 2);
    const open = h.records.find((x) => x.hook === 0 && str(x, 1) === file);
    assert.equal(open?.selector, 1);
    const seek = h.records.find((x) => x.hook === 1 && x.pid === r.pid);
    assert.equal(seek?.selector, undefined);
    assert.deepEqual(seek?.args, [{ type: 'int', value: 1n }]);
  });
});

test('a policy whose load fails midway leaves nothing loaded or attached', async () => {
  const count = () => loadedPrograms().filter((p) => p.name?.startsWith('osprey_')).length;
  const before = count();
  const t = tables([
    openat([]),
    { category: 'syscalls', name: 'sys_enter_lseek', kind: 'plain', args: [], selectors: [] },
    { category: 'syscalls', name: 'sys_enter_osprey_does_not_exist', kind: 'plain', args: [], selectors: [] },
  ]);
  assert.throws(
    () => PolicyProgram.load(t, { onRecords: () => {} }),
    /hook 2 \(syscalls\/sys_enter_osprey_does_not_exist\)/,
  );
  // the kernel frees a detached program after an RCU grace period
  for (let i = 0; i < 100 && count() > before; i++) await sleep(20);
  assert.ok(count() <= before, `${count()} osprey programs loaded, ${before} before`);
});

test('tables are validated with errors that name the field', () => {
  const pids = Array.from({ length: 9 }, (_, i) => i + 100);
  assert.throws(
    () =>
      PolicyProgram.load(tables([openat([{ matchPIDs: [{ op: 'In', pids }], actions: post }])]), {
        onRecords: () => {},
      }),
    (err: unknown) =>
      err instanceof TablesError &&
      err.message === 'hook 0 selector 0 matchPIDs 0: 9 values exceed the limit of 8',
  );
  assert.throws(
    () =>
      PolicyProgram.load(
        tables([openat([{ matchArgs: [{ arg: 1, op: 'GT', ints: [1n] }], actions: post }])]),
        { onRecords: () => {} },
      ),
    /hook 0 selector 0 filter 0: GT does not apply to a string arg/,
  );
  assert.throws(
    () => PolicyProgram.load(tables([{ ...openat([], 'enter'), pairWith: 3 }]), { onRecords: () => {} }),
    /hook 0 pairWith: an enter hook needs the index of an exit hook/,
  );
  assert.throws(
    () =>
      PolicyProgram.load(
        tables([openat([{ matchBinaries: { op: 'In', values: ['/bin/sh'] }, actions: post }])]),
        {
          onRecords: () => {},
        },
      ),
    /pass procsMapFd/,
  );
});

test('a pre-verified spare serves the next load; a policy too large for it loads its own', async () => {
  const ids = (p: PolicyProgram) => new Set(p.programs().map((x) => programStats(x.fd).id));
  const loaded = () => new Set(loadedPrograms().map((p) => p.id));
  const small = tables([openat([{ matchArgs: [{ arg: 1, op: 'Prefix', strings: [tmp] }], actions: post }])]);
  const big = tables([
    openat([
      {
        matchArgs: [
          { arg: 0, op: 'Equal', ints: Array.from({ length: 2000 }, (_, i) => BigInt(i + 100000)) },
        ],
        actions: post,
      },
    ]),
  ]);
  try {
    await prewarmPolicyObjects({});
    let before = loaded();
    await withPolicy('spare', small, async (h) => {
      // attached programs that were already loaded: the spare's
      assert.ok(
        [...ids(h.prog)].every((id) => before.has(id)),
        'the spare object was used',
      );
      const r = await h.run([target, 'open', path.join(tmp, 'target.c')]);
      assert.equal(r.code, 0);
      assert.equal((await h.recordsOf(r.pid, 1)).length, 1, 'and it works');
    });
    // the next spare is being verified on a worker thread; until then loads make their own
    before = loaded();
    await withPolicy('no-spare-yet', small, async (h) => {
      assert.ok(
        [...ids(h.prog)].every((id) => !before.has(id)),
        'a fresh object was loaded',
      );
    });
    await prewarmPolicyObjects({});
    before = loaded();
    await withPolicy('too-big', big, async (h) => {
      assert.ok(
        [...ids(h.prog)].every((id) => !before.has(id)),
        'too large for the spare: its own object',
      );
    });
  } finally {
    closePolicySpares();
  }
});
