// Tetragon's own example policies, unchanged, on the real kernel: parse ->
// compile -> load, scoped to a cgroup of the test's own, then a test process
// in that cgroup does what each policy watches for, and the events built
// from the engine's records (with the process cache of the process sensor)
// are what their authors meant.
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type CompiledPolicy, compilePolicy } from '../../src/policy/compile.js';
import { parsePolicyFile, parsePolicyText, type TracingPolicy } from '../../src/policy/index.js';
import type { PolicyProgram, TracingRecord } from '../../src/sensors/tracing/index.js';
import { compileC } from '../lib/cc.js';
import { bytesArg, eventsOf, load, pidsSeen, proc, runIn, withPolicy } from '../lib/policy-run.js';
import { exitOf, watch } from '../lib/process.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/tetragon/', import.meta.url));

const TARGET_C = `
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs its arguments as a script of syscalls. With GATE set it first waits
 * for a byte on stdin, so the test can load a policy naming its pid. */
int main(int argc, char **argv)
{
	if (getenv("GATE")) {
		char c;
		if (read(0, &c, 1) != 1)
			return 3;
	}
	for (int i = 1; i < argc; i++) {
		const char *op = argv[i];
		if (!strcmp(op, "stdout")) {
			const char *s = argv[++i];
			if (write(1, s, strlen(s)) < 0)
				return 5;
		} else if (!strcmp(op, "setuid")) {
			if (syscall(SYS_setuid, atoi(argv[++i])) != 0)
				return 6;
		} else if (!strcmp(op, "openw") || !strcmp(op, "openr")) {
			int fd = open(argv[++i], op[4] == 'w' ? O_WRONLY : O_RDONLY);
			if (fd < 0)
				return 7;
			close(fd);
		} else if (!strcmp(op, "read77")) {
			/* read(2) of up to 77 bytes: a count no one else asks for */
			char buf[77];
			int fd = open(argv[++i], O_RDONLY);
			if (fd < 0 || read(fd, buf, sizeof(buf)) < 0)
				return 8;
			close(fd);
		} else if (!strcmp(op, "lseek")) {
			int fd = open("/dev/null", O_RDONLY);
			lseek(fd, 0, atoi(argv[++i]));
			close(fd);
		} else if (!strcmp(op, "fork")) {
			/* the child runs the rest of the script */
			int st;
			pid_t p = fork();
			if (p == 0)
				continue;
			waitpid(p, &st, 0);
			return WIFEXITED(st) ? WEXITSTATUS(st) : 9;
		} else {
			return 2;
		}
	}
	return 0;
}
`;

let tmp: string;
let target: string;
let policyId = 100;

before(() => {
  tmp = mkdtempSync('/tmp/osprey-policies-');
  chmodSync(tmp, 0o755);
  target = compileC(tmp, 'target', TARGET_C);
});

after(() => {
  rmSync(tmp, { recursive: true, force: true });
});

function fixture(name: string): TracingPolicy {
  return fixtureAt(path.join(FIXTURES, name));
}

function fixtureAt(file: string): TracingPolicy {
  const r = parsePolicyFile(file);
  assert.deepEqual(r.errors.map(String), []);
  assert.equal(r.policies.length, 1);
  return r.policies[0]!;
}

function compile(p: TracingPolicy): CompiledPolicy {
  return compilePolicy(p, { policyId: policyId++, agentPid: process.pid });
}

/** How many generations up from this process PID 1 is. */
function depthToInit(pid = process.pid): number {
  let d = 0;
  let p = pid;
  while (p > 1 && d < 64) {
    const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
    p = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    d++;
  }
  return d;
}

// ---------------------------------------------------------------------------

test('write.yaml: writes to stdout of processes outside the init tree post the fd, the bytes and the count', async () => {
  const c = compile(fixture('write.yaml'));
  await withPolicy('write', c, async (l) => {
    // followForks NotIn 1: a process with PID 1 among its 8 nearest ancestors
    // is in the init tree; nine forks deep it is not
    const deep = await runIn(l.w.cgroup, [target, ...Array(9).fill('fork'), 'stdout', 'hello-osprey']);
    assert.equal(deep.code, 0);
    const shallow = await runIn(l.w.cgroup, [target, 'stdout', 'from-the-init-tree']);
    assert.equal(shallow.code, 0);
    const all = await eventsOf(l, c, shallow.pid, pidsSeen(l.w));
    const hello = all.filter((e) => bytesArg(e.process_kprobe?.args?.[1]) === b64('hello-osprey'));
    assert.equal(hello.length, 1, JSON.stringify(all));
    const k = hello[0]!.process_kprobe!;
    assert.equal(k.function_name, '__x64_sys_write');
    assert.deepEqual(k.args, [{ int_arg: 1 }, { bytes_arg: b64('hello-osprey') }, { size_arg: '12' }]);
    assert.equal(k.policy_name, 'sys-write');
    assert.equal(k.action, 'KPROBE_ACTION_POST');
    assert.equal(proc(k.process).binary, target);
    assert.equal(proc(k.process).flags, 'clone', 'the writer is a forked child of the target');
    assert.equal(proc(k.parent).binary, target);
    assert.equal(hello[0]!.node_name, 'test-node');
    // Tetragon and the engine look for PID 1 in the process and its 8 nearest ancestors
    if (depthToInit() + 1 <= 8) {
      assert.equal(
        all.filter((e) => bytesArg(e.process_kprobe?.args?.[1]) === b64('from-the-init-tree')).length,
        0,
      );
    }
    assert.ok(
      all.every((e) => JSON.stringify(e.process_kprobe?.args?.[0]) === '{"int_arg":1}'),
      'only fd 1 is watched',
    );
  });
});

test('returnCopy and matchReturnActions: read(2) posts the bytes it returned, and a non-empty read is killed at return', async () => {
  const file = path.join(tmp, 'returned.txt');
  writeFileSync(file, 'secret-bytes-read-back');
  const empty = path.join(tmp, 'empty.txt');
  writeFileSync(empty, '');
  const yaml = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: read-back
spec:
  kprobes:
    - call: sys_read
      syscall: true
      return: true
      args:
        - index: 0
          type: int
        - index: 1
          type: char_buf
          returnCopy: true
        - index: 2
          type: size_t
      returnArg:
        index: 0
        type: long
      selectors:
        - matchArgs:
            - index: 2
              operator: Equal
              values: ["77"]
          matchReturnArgs:
            - operator: GT
              values: ["0"]
          matchActions:
            - action: Post
          matchReturnActions:
            - action: Sigkill
`;
  const policyFile = path.join(tmp, 'read-back.yaml');
  writeFileSync(policyFile, yaml);
  const c = compile(fixtureAt(policyFile));
  await withPolicy('read-back', c, async (l) => {
    const full = await runIn(l.w.cgroup, [target, 'read77', file, 'stdout', 'after']);
    assert.equal(full.signal, 'SIGKILL', 'killed when read(2) returned bytes');
    const none = await runIn(l.w.cgroup, [target, 'read77', empty]);
    assert.equal(none.code, 0, 'an empty read is not matched: no kill');
    const all = await eventsOf(l, c, none.pid, pidsSeen(l.w));
    const reads = all.filter((e) => e.process_kprobe?.args?.[2] !== undefined).map((e) => e.process_kprobe!);
    assert.equal(reads.length, 1, JSON.stringify(all));
    const k = reads[0]!;
    assert.equal(k.function_name, '__x64_sys_read');
    // the buffer as read(2) filled it, as many bytes as it returned
    assert.deepEqual(k.args?.[1], { bytes_arg: b64('secret-bytes-read-back') });
    assert.deepEqual(k.args?.[2], { size_arg: '77' });
    assert.deepEqual(k.return, { long_arg: '22' });
    assert.equal(k.action, 'KPROBE_ACTION_SIGKILL');
    assert.equal(proc(k.process).pid, full.pid);
  });
});

test('sys_setuid.yaml: setuid(4242) posts the uid', async () => {
  const c = compile(fixture('sys_setuid.yaml'));
  await withPolicy('setuid', c, async (l) => {
    const r = await runIn(l.w.cgroup, [target, 'setuid', '4242']);
    assert.equal(r.code, 0);
    const evs = await eventsOf(l, c, r.pid, new Set([r.pid]));
    assert.equal(evs.length, 1, JSON.stringify(evs));
    const k = evs[0]!.process_kprobe!;
    assert.equal(k.function_name, '__x64_sys_setuid');
    assert.deepEqual(k.args, [{ int_arg: 4242 }]);
    assert.equal(k.policy_name, 'syscalls');
    assert.equal(k.action, 'KPROBE_ACTION_POST');
    assert.equal(proc(k.process).binary, target);
    assert.equal(k.process.pid, r.pid);
    assert.equal(k.process.tid, r.pid);
    assert.equal(k.return, undefined);
  });
});

test('openat_write.yaml: opening /etc/passwd for writing posts the open and its fd, reading does not', async () => {
  const c = compile(fixture('openat_write.yaml'));
  assert.equal(c.tables.hooks.length, 2, 'an enter/exit pair for the return value');
  // the test process sees a scratch file at /etc/passwd, in a mount namespace of its own
  const fake = path.join(tmp, 'passwd');
  writeFileSync(fake, 'root:x:0:0::/root:/bin/sh\n');
  const before = statSync(fake).mtimeMs;
  await withPolicy('openat', c, async (l) => {
    const r = await runIn(l.w.cgroup, [
      'unshare',
      '--mount',
      '--propagation',
      'private',
      '/bin/sh',
      '-c',
      'mount --bind "$0" /etc/passwd && exec "$@"',
      fake,
      target,
      'openr',
      '/etc/passwd',
      'openw',
      '/etc/passwd',
    ]);
    assert.equal(r.code, 0);
    const evs = await eventsOf(l, c, r.pid, pidsSeen(l.w));
    assert.equal(evs.length, 1, JSON.stringify(evs));
    const k = evs[0]!.process_kprobe!;
    assert.equal(k.function_name, '__x64_sys_openat');
    assert.deepEqual(k.args, [{ int_arg: -100 }, { string_arg: '/etc/passwd' }, { int_arg: 1 }]);
    assert.deepEqual(k.return, { int_arg: 3 });
    assert.equal(k.policy_name, 'sys-openat');
    assert.equal(k.action, 'KPROBE_ACTION_POST');
    assert.equal(proc(k.process).binary, target);
    assert.equal(k.process.pid, r.pid);
  });
  assert.equal(statSync(fake).mtimeMs, before);
});

test('raw_syscalls.yaml: every syscall of the cgroup posts its id', async () => {
  const c = compile(fixture('raw_syscalls.yaml'));
  await withPolicy('raw', c, async (l) => {
    const r = await runIn(l.w.cgroup, [target, 'lseek', '0', 'setuid', '0']);
    assert.equal(r.code, 0);
    const evs = await eventsOf(l, c, r.pid, new Set([r.pid]));
    assert.ok(evs.length > 10, `only ${evs.length} events`);
    const ids: number[] = [];
    for (const e of evs) {
      const t = e.process_tracepoint!;
      assert.equal(t.subsys, 'raw_syscalls');
      assert.equal(t.event, 'sys_enter');
      assert.equal(t.policy_name, 'raw-syscalls');
      assert.equal(t.action, 'KPROBE_ACTION_POST');
      const [a, ...rest] = t.args ?? [];
      assert.ok(a && 'syscall_id' in a && rest.length === 0, JSON.stringify(t.args));
      assert.equal(a.syscall_id.abi, 'x64');
      ids.push(a.syscall_id.id);
    }
    // lseek (8), setuid (105), exit_group (231), in that order
    const want = [8, 105, 231];
    const at = want.map((id) => ids.lastIndexOf(id));
    assert.ok(
      at.every((i) => i >= 0),
      `ids ${ids.join(',')}`,
    );
    assert.deepEqual(
      [...at].sort((a, b) => a - b),
      at,
    );
    const lseek = evs[at[0]!]!.process_tracepoint!;
    assert.equal(proc(lseek.process).binary, target);
  });
});

test('policies on sched_process_exec and sched_process_exit: strings of the record (__data_loc, char arrays), and the exiting process known by its binary', async () => {
  // The process sensor's exit program runs first (it was attached first) and
  // takes the process out of the kernel's table; the policy still knows it.
  // filename is a __data_loc char[] field, comm a char[16]: both strings
  // held in the record, filtered (Prefix, Equal: the quick reject) and posted.
  const text = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: exits
spec:
  tracepoints:
    - subsystem: sched
      event: sched_process_exec
      args:
        - index: 4
          type: string
          label: filename
      selectors:
        - matchArgs:
            - index: 4
              operator: Prefix
              values: [${JSON.stringify(`${tmp}/`)}]
    - subsystem: sched
      event: sched_process_exit
      args:
        - index: 4
          type: string
          label: comm
        - index: 5
          type: int
      selectors:
        - matchBinaries:
            - operator: In
              values: [${JSON.stringify(target)}]
          matchArgs:
            - index: 4
              operator: Equal
              values: [target]
`;
  const parsed = parsePolicyText(text, 'exits.yaml');
  assert.deepEqual(parsed.errors.map(String), []);
  const c = compile(parsed.policies[0]!);
  await withPolicy('exits', c, async (l) => {
    const r = await runIn(l.w.cgroup, [target, 'fork', 'stdout', 'child']);
    const other = await runIn(l.w.cgroup, ['/bin/true']);
    assert.equal(r.code, 0);
    assert.equal(other.code, 0);
    const tps = (await eventsOf(l, c, other.pid, pidsSeen(l.w))).map((e) => e.process_tracepoint!);
    assert.deepEqual(
      tps.map((t) => [t.event, t.process.pid]),
      [
        ['sched_process_exec', r.pid],
        ['sched_process_exit', tps[1]?.process.pid],
        ['sched_process_exit', r.pid],
      ],
      JSON.stringify(tps),
    );
    assert.notEqual(tps[1]!.process.pid, r.pid, 'the child exits first');
    assert.deepEqual(tps[0]!.args, [{ string_arg: target, label: 'filename' }]);
    for (const t of tps.slice(1)) {
      assert.equal(proc(t.process).binary, target);
      assert.deepEqual(t.args, [{ string_arg: 'target', label: 'comm' }, { int_arg: t.process.pid }]);
    }
  });
});

test('a policy on sched_process_exec sees the new binary of an exec made by a thread, though another program there runs before the process sensor', async () => {
  // execve(2) from a thread that is not the process's first: the kernel
  // makes it the leader during the exec, after sched_prepare_exec
  const threadExec = compileC(
    tmp,
    'thread-exec',
    `#include <pthread.h>
#include <unistd.h>
static char **args;
static void *run(void *x) { (void)x; execv(args[1], &args[1]); return 0; }
int main(int argc, char **argv) {
	pthread_t t;
	(void)argc;
	args = argv;
	pthread_create(&t, 0, run, 0);
	pthread_join(t, 0);
	return 4;
}
`,
    ['-pthread'],
  );
  const payload = path.join(tmp, 'thread-payload');
  copyFileSync('/bin/true', payload);
  chmodSync(payload, 0o755);
  const text = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: thread-exec
spec:
  tracepoints:
    - subsystem: sched
      event: sched_process_exec
      selectors:
        - matchBinaries:
            - operator: In
              values: [${JSON.stringify(payload)}]
          matchActions:
            - action: Sigkill
`;
  const parsed = parsePolicyText(text, 'thread-exec.yaml');
  assert.deepEqual(parsed.errors.map(String), []);
  // the same policy, loaded first beside a process sensor of its own: the
  // tracepoint's perf side is registered before the second sensor's program
  const first = await watch('thread-exec-first');
  let decoy: PolicyProgram | undefined;
  try {
    decoy = load(first, compile(parsed.policies[0]!), []);
    const c = compile(parsed.policies[0]!);
    await withPolicy('thread-exec', c, async (l) => {
      const r = await runIn(l.w.cgroup, [threadExec, payload]);
      assert.equal(r.signal, 'SIGKILL', JSON.stringify(r));
      const tps = (await eventsOf(l, c, r.pid, new Set([r.pid]))).map((e) => e.process_tracepoint!);
      assert.equal(tps.length, 1, JSON.stringify(tps));
      assert.equal(proc(tps[0]!.process).binary, payload);
      assert.equal(tps[0]!.action, 'KPROBE_ACTION_SIGKILL');
    });
  } finally {
    try {
      decoy?.close();
    } finally {
      first.stop();
    }
  }
});

test('sigkill_tracepoint.yaml.tmpl: lseek whence 5555 by the matched pid is killed with SIGKILL, and the event says so', async () => {
  const tmpl = readFileSync(path.join(FIXTURES, 'sigkill_tracepoint.yaml.tmpl'), 'utf8');
  const w = await watch('sigkill');
  const records: TracingRecord[] = [];
  let prog: PolicyProgram | undefined;
  let c: CompiledPolicy | undefined;
  try {
    const r = await runIn(w.cgroup, [target, 'lseek', '0', 'lseek', '5555', 'stdout', 'survived'], (pid) => {
      // as Tetragon's test fills its template
      const text = tmpl.replace('{{.MatchedPID}}', String(pid)).replace('{{.NamespacePID}}', 'false');
      const parsed = parsePolicyText(text, 'sigkill_tracepoint.yaml');
      assert.deepEqual(parsed.errors.map(String), []);
      c = compile(parsed.policies[0]!);
      prog = load(w, c, records);
    });
    assert.equal(r.signal, 'SIGKILL');
    const evs = await eventsOf({ w, prog: prog!, records }, c!, r.pid, new Set([r.pid]));
    assert.equal(evs.length, 1, JSON.stringify(evs));
    const t = evs[0]!.process_tracepoint!;
    assert.equal(t.subsys, 'syscalls');
    assert.equal(t.event, 'sys_enter_lseek');
    assert.deepEqual(t.args, [{ int_arg: 5555 }]);
    assert.equal(t.policy_name, 'sigkilltest');
    assert.equal(t.action, 'KPROBE_ACTION_SIGKILL');
    assert.equal(proc(t.process).binary, target);
    assert.equal(t.process.pid, r.pid);
    assert.equal(prog!.counters().actionsTaken, 1);
    assert.equal(exitOf(w.events, r.pid)?.signal, 'SIGKILL');
  } finally {
    try {
      prog?.close();
    } finally {
      w.stop();
    }
  }
});

function b64(s: string): string {
  return Buffer.from(s).toString('base64');
}
