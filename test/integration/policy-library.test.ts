// The detection policies shipped in policies/, each loaded from its file as
// the agent loads it (scoped to a cgroup of the test's own) and met with the
// attack it is written for: the process is killed (in enforce mode) or
// reported, with the event an operator will read, and the look-alike that is
// not an attack goes through untouched.
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type CompiledPolicy, compilePolicy } from '../../src/policy/compile.js';
import type { PolicyMode } from '../../src/policy/index.js';
import { parsePolicyFile } from '../../src/policy/index.js';
import type { PolicyProgram } from '../../src/sensors/tracing/index.js';
import { CONNECT_OP_C, compileC } from '../lib/cc.js';
import { makeTestNet, type TestNet } from '../lib/netns.js';
import {
  type Ev,
  eventsOf,
  type Loaded,
  load,
  pidsSeen,
  proc,
  runIn,
  withPolicy,
} from '../lib/policy-run.js';
import { watch } from '../lib/process.js';

const LIBRARY = fileURLToPath(new URL('../../../policies/', import.meta.url));

const HELPER_C = `
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Each op makes the raw system call it names and ignores its result (a path
 * that does not exist is as good as one that does for the hook), so the only
 * way this ends other than with status 0 is a signal. */
int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *op = argv[i];
		if (!strcmp(op, "open")) {
			const char *p = argv[++i];
			long fd = syscall(SYS_open, p, (int)strtol(argv[++i], NULL, 0), 0600);
			if (fd >= 0)
				close(fd);
		} else if (!strcmp(op, "openat")) {
			const char *p = argv[++i];
			long fd = syscall(SYS_openat, AT_FDCWD, p, (int)strtol(argv[++i], NULL, 0), 0600);
			if (fd >= 0)
				close(fd);
		} else if (!strcmp(op, "openat2")) {
			struct open_how how = { .flags = O_RDONLY };
			long fd = syscall(SYS_openat2, AT_FDCWD, argv[++i], &how, sizeof how);
			if (fd >= 0)
				close(fd);
		} else if (!strcmp(op, "rename")) {
			const char *from = argv[++i];
			syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, argv[++i], 0);
		} else if (!strcmp(op, "setuid")) {
			syscall(SYS_setuid, atoi(argv[++i]));
		} else if (!strcmp(op, "setresgid")) {
			int r = atoi(argv[++i]), e = atoi(argv[++i]);
			syscall(SYS_setresgid, r, e, atoi(argv[++i]));
${CONNECT_OP_C}
		} else {
			return 2;
		}
	}
	return 0;
}
`;

/** memfd_create(2)'s number, for perl's syscall() */
const MEMFD_CREATE = process.arch === 'arm64' ? 279 : 319;

/** The test's scratch directory: below /tmp, where exec-from-writable-dirs looks. */
let tmp: string;
let helper: string;
let policyId = 900;

before(() => {
  tmp = mkdtempSync('/tmp/osprey-library-');
  chmodSync(tmp, 0o755);
  helper = compileC(tmp, 'helper', HELPER_C);
});

after(() => {
  rmSync(tmp, { recursive: true, force: true });
});

const TESTED = new Set<string>();

/** A policy of the library, compiled in `mode` (or its own) as the agent would. */
function library(file: string, mode?: PolicyMode): CompiledPolicy {
  TESTED.add(file);
  const r = parsePolicyFile(path.join(LIBRARY, file));
  assert.deepEqual(r.errors.map(String), [], file);
  assert.equal(r.policies.length, 1, file);
  return compilePolicy(r.policies[0]!, { policyId: policyId++, agentPid: process.pid, mode });
}

type Run = Awaited<ReturnType<typeof runIn>>;

function killed(r: Run): boolean {
  return r.signal === 'SIGKILL' || r.code === 128 + 9;
}

/** The events of the runs, once the process sensor has seen the last one end. */
async function eventsOfRuns(l: Loaded, c: CompiledPolicy, runs: Run[]): Promise<Ev[]> {
  return eventsOf(l, c, runs[runs.length - 1]!.pid, pidsSeen(l.w));
}

function kprobes(evs: Ev[]) {
  return evs.map((e) => e.process_kprobe).filter((k) => k !== undefined);
}

function stringArg(k: { args?: unknown[] }, i: number): string | undefined {
  const a = k.args?.[i] as { string_arg?: string } | undefined;
  return a?.string_arg;
}

test('sensitive-files: opens of credential files are killed at the call, by open, openat and openat2; other files are not', async () => {
  const c = library('sensitive-files.yaml', 'enforce');
  await withPolicy('lib-sensitive', c, async (l) => {
    const shadow = await runIn(l.w.cgroup, [helper, 'openat', '/etc/shadow', '0']);
    const gshadow = await runIn(l.w.cgroup, [helper, 'openat2', '/etc/gshadow']);
    const sudoers = await runIn(l.w.cgroup, [helper, 'open', '/etc/sudoers', '0']);
    const climbed = await runIn(l.w.cgroup, [helper, 'openat', '/usr/../etc/shadow', '0']);
    const passwd = await runIn(l.w.cgroup, [
      helper,
      'openat',
      '/etc/passwd',
      '0',
      'open',
      '/etc/hostname',
      '0',
    ]);
    assert.ok(killed(shadow), `openat of /etc/shadow: ${JSON.stringify(shadow)}`);
    assert.ok(killed(gshadow), `openat2 of /etc/gshadow: ${JSON.stringify(gshadow)}`);
    assert.ok(killed(sudoers), `open of /etc/sudoers: ${JSON.stringify(sudoers)}`);
    assert.ok(killed(climbed), `a path climbing to /etc/shadow: ${JSON.stringify(climbed)}`);
    assert.equal(passwd.code, 0, 'other files in /etc are not touched');

    const ks = kprobes(await eventsOfRuns(l, c, [shadow, gshadow, sudoers, climbed, passwd]));
    const seen = ks.map((k) => [k.function_name, stringArg(k, k.function_name === '__x64_sys_open' ? 0 : 1)]);
    assert.deepEqual(seen, [
      ['__x64_sys_openat', '/etc/shadow'],
      ['__x64_sys_openat2', '/etc/gshadow'],
      ['__x64_sys_open', '/etc/sudoers'],
      ['__x64_sys_openat', '/usr/../etc/shadow'],
    ]);
    for (const k of ks) {
      assert.equal(k.policy_name, 'sensitive-files');
      assert.equal(k.action, 'KPROBE_ACTION_SIGKILL');
      assert.equal(k.message, 'credential file opened');
      assert.equal(proc(k.process).binary, helper);
    }
    assert.deepEqual(ks[0]!.args, [
      { int_arg: -100 },
      { string_arg: '/etc/shadow', label: 'path' },
      { int_arg: 0, label: 'flags' },
    ]);
  });
});

test('sensitive-files as shipped (monitor mode): the open is reported, the process lives', async () => {
  const c = library('sensitive-files.yaml');
  await withPolicy('lib-sensitive-monitor', c, async (l) => {
    const r = await runIn(l.w.cgroup, [helper, 'openat', '/etc/shadow', '0']);
    assert.equal(r.code, 0, 'monitor mode kills nothing');
    const ks = kprobes(await eventsOfRuns(l, c, [r]));
    assert.equal(ks.length, 1, JSON.stringify(ks));
    assert.equal(stringArg(ks[0]!, 1), '/etc/shadow');
    assert.equal(ks[0]!.action, 'KPROBE_ACTION_POST');
    assert.equal(ks[0]!.monitored_action, 'KPROBE_ACTION_SIGKILL', 'what enforce mode would have done');
  });
});

test('exec-from-writable-dirs: a program in /tmp, run by its path or from its directory, and one run from a memfd, die before their first instruction', async () => {
  const c = library('exec-from-writable-dirs.yaml', 'enforce');
  const dir = mkdtempSync(path.join(tmp, 'drop-'));
  chmodSync(dir, 0o755);
  const payload = path.join(dir, 'payload');
  copyFileSync('/usr/bin/touch', payload);
  chmodSync(payload, 0o755);
  const ran = path.join(dir, 'ran');
  // Another program on sched_process_exec first (here the same policy, in a
  // watch of its own), as another agent or a tracing tool may have put
  // there before this one started: the kernel then runs the policy before
  // the process sensor's exec program, and the policy must still see the
  // new binary.
  const first = await watch('lib-exec-first');
  let decoy: PolicyProgram | undefined;
  try {
    decoy = load(first, library('exec-from-writable-dirs.yaml'), []);
    await withPolicy('lib-exec-tmp', c, (l) => execFromTmp(l));
  } finally {
    try {
      decoy?.close();
    } finally {
      first.stop();
    }
  }

  async function execFromTmp(l: Loaded): Promise<void> {
    // the payload would leave a file behind if any of it ran
    const byPath = await runIn(l.w.cgroup, [payload, ran]);
    const relative = await runIn(l.w.cgroup, [
      '/bin/sh',
      '-c',
      'cd "$0" && ./payload ran; echo $? > status',
      dir,
    ]);
    // perl (in /usr/bin) copies /bin/true into a memfd and runs it from there
    const memfd = await runIn(l.w.cgroup, [
      'perl',
      '-e',
      [
        `my $name = "osprey-payload"; my $fd = syscall(${MEMFD_CREATE}, $name, 0); die "memfd_create: $!" if $fd < 0;`,
        'open(my $out, ">&=", $fd) or die; open(my $in, "<:raw", "/bin/true") or die;',
        'binmode $out; { local $/; print {$out} <$in>; } $out->flush;',
        'exec { "/proc/self/fd/$fd" } "payload" or die "exec: $!";',
      ].join(' '),
    ]);
    const system = await runIn(l.w.cgroup, ['/bin/true']);
    assert.equal(existsSync(ran), false, 'no code of the payload ran');
    assert.ok(killed(byPath), `by path: ${JSON.stringify(byPath)}`);
    assert.equal(relative.code, 0);
    assert.equal(
      readFileSync(path.join(dir, 'status'), 'utf8').trim(),
      '137',
      'the relative exec was killed',
    );
    assert.ok(killed(memfd), `from a memfd: ${JSON.stringify(memfd)}`);
    assert.equal(system.code, 0, 'a program in /usr/bin runs');

    const evs = await eventsOfRuns(l, c, [byPath, relative, memfd, system]);
    const tps = evs.map((e) => e.process_tracepoint).filter((t) => t !== undefined);
    assert.deepEqual(
      tps.map((t) => proc(t.process).binary),
      [payload, payload, '/memfd:osprey-payload (deleted)'],
      JSON.stringify(evs),
    );
    for (const t of tps) {
      assert.equal(t.subsys, 'sched');
      assert.equal(t.event, 'sched_process_exec');
      assert.equal(t.policy_name, 'exec-from-writable-dirs');
      assert.equal(t.action, 'KPROBE_ACTION_SIGKILL');
    }
    assert.equal(proc(tps[1]!.process).cwd, dir, 'the relative exec, resolved to its file');
    // the path as given to execve
    assert.deepEqual(
      tps.slice(0, 2).map((t) => t.args),
      [[{ string_arg: payload, label: 'filename' }], [{ string_arg: './payload', label: 'filename' }]],
    );
    assert.match(
      JSON.stringify(tps[2]!.args),
      /^\[\{"string_arg":"\/proc\/self\/fd\/\d+","label":"filename"\}\]$/,
    );
  }
});

test('java-spawns-shell: a shell started by a JVM dies before it runs, the JVM goes on; other children run', async () => {
  const c = library('java-spawns-shell.yaml', 'enforce');
  // a "JVM": a copy of the system shell named java, which starts children
  const java = path.join(tmp, 'java');
  copyFileSync('/bin/sh', java);
  chmodSync(java, 0o755);
  const status = path.join(tmp, 'java-children');
  await withPolicy('lib-java', c, async (l) => {
    const r = await runIn(l.w.cgroup, [
      java,
      '-c',
      '/bin/sh -c "exit 7"; a=$?; /bin/true; echo "$a $?" > "$0"',
      status,
    ]);
    assert.equal(r.code, 0, 'the JVM itself lives');
    // 137: the shell was killed (128 + SIGKILL); 0: /bin/true ran
    assert.equal(readFileSync(status, 'utf8').trim(), '137 0');
    const tps = (await eventsOfRuns(l, c, [r]))
      .map((e) => e.process_tracepoint)
      .filter((t) => t !== undefined);
    assert.equal(tps.length, 1, JSON.stringify(tps));
    const t = tps[0]!;
    assert.equal(t.policy_name, 'java-spawns-shell');
    assert.equal(t.action, 'KPROBE_ACTION_SIGKILL');
    assert.match(proc(t.process).binary, /\/(dash|bash|sh)$/);
    assert.equal(proc(t.parent).binary, java);
    assert.deepEqual(t.args, [{ string_arg: '/bin/sh', label: 'filename' }]);
  });
});

test('reverse-shell: bash connecting out over IPv4 or IPv6 is killed at connect(2); loopback and other programs are not', async () => {
  const c = library('reverse-shell.yaml', 'enforce');
  let net: TestNet | undefined;
  try {
    net = makeTestNet(61);
    const { nsV4, nsV6 } = net;
    await withPolicy('lib-revshell', c, async (l) => {
      const v4 = await runIn(l.w.cgroup, ['/bin/bash', '-c', `exec 3<>/dev/tcp/${nsV4}/4444`]);
      const v6 = await runIn(l.w.cgroup, ['/bin/bash', '-c', `exec 3<>/dev/tcp/${nsV6}/4444`]);
      const loop = await runIn(l.w.cgroup, ['/bin/bash', '-c', 'exec 3<>/dev/tcp/127.0.0.1/9; exit 0']);
      const other = await runIn(l.w.cgroup, [helper, 'connect', nsV4, '4444']);
      assert.ok(killed(v4), `IPv4: ${JSON.stringify(v4)}`);
      assert.ok(killed(v6), `IPv6: ${JSON.stringify(v6)}`);
      assert.equal(loop.code, 0, 'loopback is left out');
      assert.equal(other.code, 0, 'a program that is not a shell connects');
      const ks = kprobes(await eventsOfRuns(l, c, [v4, v6, loop, other]));
      assert.deepEqual(
        ks.map((k) => k.args?.[1]),
        [
          { sockaddr_arg: { family: 'AF_INET', addr: nsV4, port: 4444 }, label: 'address' },
          { sockaddr_arg: { family: 'AF_INET6', addr: nsV6, port: 4444 }, label: 'address' },
        ],
      );
      for (const k of ks) {
        assert.equal(k.policy_name, 'reverse-shell');
        assert.equal(k.function_name, '__x64_sys_connect');
        assert.equal(k.action, 'KPROBE_ACTION_SIGKILL');
        assert.equal(proc(k.process).binary, '/usr/bin/bash');
      }
    });
  } finally {
    net?.remove();
  }
});

test('setuid-in-container: id 0 asked for in a PID namespace of its own is reported, on the host it is not', async () => {
  const c = library('setuid-in-container.yaml');
  await withPolicy('lib-setuid', c, async (l) => {
    const inside = await runIn(l.w.cgroup, [
      'unshare',
      '--pid',
      '--fork',
      helper,
      'setuid',
      '0',
      'setresgid',
      '5',
      '0',
      '5',
      'setuid',
      '1000',
    ]);
    const host = await runIn(l.w.cgroup, [helper, 'setuid', '0']);
    assert.equal(inside.code, 0);
    assert.equal(host.code, 0);
    const ks = kprobes(await eventsOfRuns(l, c, [inside, host]));
    assert.deepEqual(
      ks.map((k) => [k.function_name, k.args]),
      [
        ['__x64_sys_setuid', [{ int_arg: 0, label: 'id' }]],
        [
          '__x64_sys_setresgid',
          [
            { int_arg: 5, label: 'real' },
            { int_arg: 0, label: 'effective' },
            { int_arg: 5, label: 'saved' },
          ],
        ],
      ],
    );
    for (const k of ks) {
      assert.equal(k.policy_name, 'setuid-in-container');
      assert.equal(k.action, 'KPROBE_ACTION_POST');
      assert.equal(proc(k.process).binary, helper);
      assert.notEqual(k.process.pid, host.pid);
    }
  });
});

test('system-binaries-written: opens for writing and renames onto system directories, and the preload list, are reported; reads are not', async () => {
  const c = library('system-binaries-written.yaml');
  // paths in directories that do not exist: the calls fail, nothing is written
  const nowhere = '/usr/bin/osprey-test-no-such-dir';
  await withPolicy('lib-sysbin', c, async (l) => {
    const r = await runIn(l.w.cgroup, [
      helper,
      'openat',
      `${nowhere}/ls`,
      '0x241',
      'rename',
      '/osprey-test-no-such-file',
      `${nowhere}/ls`,
      'openat',
      '/etc/ld.so.preload',
      '0x1',
      'openat',
      '/usr/bin/true',
      '0',
      'openat',
      '/etc/hostname',
      '0x1',
    ]);
    assert.equal(r.code, 0);
    assert.equal(existsSync(nowhere), false);
    const ks = kprobes(await eventsOfRuns(l, c, [r]));
    assert.deepEqual(
      ks.map((k) => [k.function_name, k.args?.slice(1)]),
      [
        [
          '__x64_sys_openat',
          [
            { string_arg: `${nowhere}/ls`, label: 'path' },
            { int_arg: 0x241, label: 'flags' },
          ],
        ],
        ['__x64_sys_renameat2', [{ string_arg: `${nowhere}/ls`, label: 'to' }]],
        [
          '__x64_sys_openat',
          [
            { string_arg: '/etc/ld.so.preload', label: 'path' },
            { int_arg: 1, label: 'flags' },
          ],
        ],
      ],
    );
    assert.deepEqual(ks[1]!.args?.[0], { string_arg: '/osprey-test-no-such-file', label: 'from' });
    for (const k of ks) assert.equal(k.policy_name, 'system-binaries-written');
  });
});

test('every policy in policies/ has a test here, and they load side by side', () => {
  const files = readdirSync(LIBRARY)
    .filter((f) => f.endsWith('.yaml'))
    .sort();
  assert.deepEqual([...TESTED].sort(), files);
  const names = files.map((f) => library(f).name);
  assert.equal(new Set(names).size, files.length, 'names are distinct');
});
