/**
 * Live TracingPolicy management, end to end against the real kernel: an
 * agent scoped to a cgroup this test creates, driven with `osprey policy`,
 * events read with `osprey events` and from the export file. Policies load
 * into the running agent with no restart and no lost events, an invalid one
 * leaves nothing behind, and what was added survives a restart.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseAnswer } from '../../src/cli/client.js';
import { request } from '../lib/api.js';
import { loadedPrograms, makeTestCgroup } from '../lib/bpf.js';
import { compileC } from '../lib/cc.js';
import { openatPrefixPolicyText } from '../lib/policies.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const OSPREY = path.join(repo, 'bin/osprey');

/** Opens DIR/file-00000 .. DIR/file-<N-1> (they need not exist), sleeping DELAY_US between opens. */
const OPENER_C = `
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	int n = atoi(argv[2]), delay = argc > 3 ? atoi(argv[3]) : 0;
	char p[4096];
	for (int i = 0; i < n; i++) {
		snprintf(p, sizeof p, "%s/file-%05d", argv[1], i);
		int fd = open(p, O_RDONLY);
		if (fd >= 0)
			close(fd);
		if (delay)
			usleep(delay);
	}
	return 0;
}
`;

interface KprobeArg {
  string_arg?: string;
}
interface Ev {
  node_name: string;
  process_kprobe?: {
    process: { pid: number; binary?: string };
    function_name: string;
    args?: KprobeArg[];
    action: string;
    monitored_action?: string;
    policy_name: string;
  };
}
interface PolicyInfo {
  name: string;
  state: string;
  error?: string;
  mode: string;
  source: string;
  file: string;
  hooks: number;
  programs: number;
  memory_bytes: number;
  load_ms?: number;
  counters: null | {
    events_posted: number;
    events_delivered: number;
    actions_taken: number;
    actions_monitored: number;
    drops: number;
  };
}

/** A child whose output is kept, for assertions and for the message of a failure. */
class Child {
  stdout = '';
  stderr = '';
  code: number | null = null;
  signal: NodeJS.Signals | null = null;
  readonly exited: Promise<void>;
  constructor(readonly proc: ChildProcess) {
    proc.stdout?.on('data', (d: Buffer) => {
      this.stdout += d;
    });
    proc.stderr?.on('data', (d: Buffer) => {
      this.stderr += d;
    });
    this.exited = new Promise((resolve) =>
      proc.on('close', (code, signal) => {
        this.code = code;
        this.signal = signal;
        resolve();
      }),
    );
  }

  /** The JSON lines written so far. */
  events(): Ev[] {
    return this.stdout
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Ev);
  }
}

async function waitFor<T>(
  what: string,
  f: () => T | undefined | false | Promise<T | undefined | false>,
  ms = 10_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** The opened paths of the process_kprobe events of one policy. */
function pathsOf(evs: Ev[], policy: string): string[] {
  return evs.flatMap((e) =>
    e.process_kprobe?.policy_name === policy ? [e.process_kprobe.args?.[1]?.string_arg ?? ''] : [],
  );
}

function policyYaml(name: string, prefix: string, action: 'Post' | 'Sigkill'): string {
  return openatPrefixPolicyText(name, [prefix], action);
}

const BAD_POLICY = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: bad-policy
spec:
  kprobes:
    - call: sys_openat
      syscall: true
      args:
        - index: 1
          type: strng
    - call: sys_openat
      syscall: true
      args:
        - index: 1
          type: string
      selectors:
        - matchArgs:
            - index: 1
              operator: Prefixx
              values: ["/tmp/"]
`;

const POLICY_PROGRAMS = new Set(['osprey_generic', 'osprey_enforcer', 'osprey_follow_fork']);

/** Ids of the policy engine's programs loaded in the kernel now. */
/** Policy programs attached to a hook now (a loaded spare object is not attached). */
function attachedPolicyProgramIds(): Set<number> {
  const policy = policyProgramIds();
  const links = JSON.parse(execFileSync('bpftool', ['-j', 'link', 'show'], { encoding: 'utf8' })) as {
    prog_id: number;
  }[];
  return new Set(links.map((l) => l.prog_id).filter((id) => policy.has(id)));
}

function policyProgramIds(): Set<number> {
  return new Set(
    loadedPrograms()
      .filter((p) => p.name !== undefined && POLICY_PROGRAMS.has(p.name))
      .map((p) => p.id),
  );
}

/** BPF programs (and links' programs) a process holds open, from its fdinfo. */
function progIdsOf(pid: number | string): Set<number> {
  const ids = new Set<number>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fdinfo`);
  } catch {
    return ids;
  }
  for (const fd of fds) {
    try {
      const m = /^prog_id:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      if (m) ids.add(Number(m[1]));
    } catch {
      // closed meanwhile
    }
  }
  return ids;
}

/**
 * Policy programs loaded since `before` that no process holds: what a failed
 * load would have left behind. Programs other work on this machine loads
 * meanwhile are held by their processes, so they do not count.
 */
/** progIdsOf(pid) once it has not changed for a second (at most 15 s). */
async function settledProgIds(pid: number): Promise<Set<number>> {
  const same = (a: Set<number>, b: Set<number>) => a.size === b.size && [...a].every((x) => b.has(x));
  let last = progIdsOf(pid);
  let since = Date.now();
  const until = Date.now() + 15_000;
  while (Date.now() - since < 1000) {
    if (Date.now() > until) throw new Error(`the programs of pid ${pid} kept changing for 15 s`);
    await sleep(100);
    const now = progIdsOf(pid);
    if (!same(now, last)) {
      last = now;
      since = Date.now();
    }
  }
  return last;
}

function leftBehind(before: Set<number>): number[] {
  const fresh = [...policyProgramIds()].filter((id) => !before.has(id));
  if (fresh.length === 0) return [];
  const held = new Set<number>();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    for (const id of progIdsOf(pid)) held.add(id);
  }
  return fresh.filter((id) => !held.has(id));
}

describe('osprey policy: live TracingPolicy management', { timeout: 180_000 }, () => {
  const tmp = mkdtempSync('/tmp/osprey-policy-manager-');
  chmodSync(tmp, 0o755);
  const cg = makeTestCgroup('policies');
  const sock = path.join(tmp, 'run', 'osprey.sock');
  const stateDir = path.join(tmp, 'state');
  const exportFile = path.join(tmp, 'events.log');
  const opener = path.join(tmp, 'opener');
  const dirA = path.join(tmp, 'a');
  const dirB = path.join(tmp, 'b');
  const dirK = path.join(tmp, 'k');
  const dirC = path.join(tmp, 'c');
  const files = {
    a: path.join(tmp, 'watch-a.yaml'),
    b: path.join(tmp, 'watch-b.yaml'),
    k: path.join(tmp, 'kill-k.yaml'),
    c: path.join(tmp, 'flag-c.yaml'),
    bad: path.join(tmp, 'bad.yaml'),
  };
  const children: Child[] = [];
  let agent: Child;
  /** events of policy watch-a only, filtered by the agent */
  let streamA: Child;
  /** every process_kprobe event */
  let streamKprobes: Child;

  const spawnChild = (args: string[]) => {
    const c = new Child(spawn(OSPREY, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    children.push(c);
    return c;
  };

  const cli = async (...args: string[]) => {
    const t0 = process.hrtime.bigint();
    const c = spawnChild([...args, '--socket', sock]);
    await c.exited;
    return {
      code: c.code,
      stdout: c.stdout,
      stderr: c.stderr,
      ms: Number(process.hrtime.bigint() - t0) / 1e6,
    };
  };

  const list = async (): Promise<PolicyInfo[]> => {
    const r = await cli('policy', 'list', '-o', 'json');
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as PolicyInfo[];
  };

  const one = async (name: string): Promise<PolicyInfo> => {
    const p = (await list()).find((x) => x.name === name);
    assert.ok(p, `policy ${name} is listed`);
    return p;
  };

  /** Run the opener in the test cgroup. */
  const open = (dir: string, n: number, delayUs = 0) => {
    const child = spawn(
      '/bin/sh',
      ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cg.path, opener, dir, String(n), String(delayUs)],
      { stdio: 'ignore' },
    );
    return new Promise<{ pid: number; code: number | null; signal: NodeJS.Signals | null }>(
      (resolve, reject) => {
        child.once('error', reject);
        child.once('exit', (code, signal) => resolve({ pid: child.pid!, code, signal }));
      },
    );
  };

  const startAgent = async (extra: string[] = []) => {
    const a = spawnChild([
      'agent',
      '--cgroup',
      cg.path,
      '--api-socket',
      sock,
      '--state-dir',
      stateDir,
      '--no-export-stdout',
      '--export-file',
      exportFile,
      '--node-name',
      'policy-test-node',
      ...extra,
    ]);
    await waitFor('the agent to be ready', () => a.stderr.includes('ready:') || a.code !== null, 30_000);
    assert.ok(a.stderr.includes('ready:'), `the agent started; its stderr: ${a.stderr}`);
    return a;
  };

  const stopAgent = async (a: Child) => {
    a.proc.kill('SIGTERM');
    await a.exited;
  };

  const stream = async (...filter: string[]) => {
    const s = spawnChild(['events', '-o', 'json', '--socket', sock, ...filter]);
    // the stream is open once the agent counts its client
    await waitFor('the event stream to connect', () => {
      try {
        const st = JSON.parse(
          execFileSync(OSPREY, ['status', '-o', 'json', '--socket', sock], { encoding: 'utf8' }),
        );
        return st.api.clients >= 1 && s.code === null ? true : undefined;
      } catch {
        return undefined;
      }
    });
    await sleep(200);
    return s;
  };

  const exported = (): Ev[] =>
    existsSync(exportFile)
      ? readFileSync(exportFile, 'utf8')
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l) as Ev)
      : [];

  before(async () => {
    for (const d of [dirA, dirB, dirK, dirC]) mkdirSync(d);
    compileC(tmp, 'opener', OPENER_C);
    writeFileSync(files.a, policyYaml('watch-a', `${dirA}/`, 'Post'));
    writeFileSync(files.b, policyYaml('watch-b', `${dirB}/`, 'Post'));
    writeFileSync(files.k, policyYaml('kill-k', `${dirK}/`, 'Sigkill'));
    writeFileSync(files.c, policyYaml('flag-c', `${dirC}/`, 'Post'));
    writeFileSync(files.bad, BAD_POLICY);
    agent = await startAgent();
    streamA = await stream('--policy', 'watch-a');
    streamKprobes = await stream('--event-types', 'process_kprobe');
  });

  after(async () => {
    // the agent first, with SIGTERM, so that it detaches what it loaded
    for (const c of children) if (c.code === null && c.signal === null) c.proc.kill('SIGTERM');
    const settled = Promise.all(children.map((c) => c.exited));
    const timeout = sleep(10_000).then(() => {
      for (const c of children) c.proc.kill('SIGKILL');
    });
    await Promise.race([settled, timeout]);
    await settled;
    cg.remove();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('adds a policy live: its events reach `osprey events` and the export file', async (t) => {
    const before = attachedPolicyProgramIds();
    const r = await cli('policy', 'add', files.a);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /policy "watch-a" added: enabled, enforce mode/);
    t.diagnostic(
      `osprey policy add (1 syscall kprobe, Prefix + Post): ${r.ms.toFixed(0)} ms wall time, CLI included`,
    );
    // enforced in the kernel by the time the command returns
    const added = [...attachedPolicyProgramIds()].filter((id) => !before.has(id));
    assert.ok(added.length >= 1, 'the policy program is attached in the kernel');

    const run = await open(dirA, 3);
    assert.equal(run.code, 0);
    const want = [0, 1, 2].map((i) => `${dirA}/file-${String(i).padStart(5, '0')}`);
    await waitFor('the events of watch-a on the stream', () =>
      want.every((p) => pathsOf(streamA.events(), 'watch-a').includes(p)) ? true : undefined,
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}; policies: ${JSON.stringify(await list())}`);
    });
    const ev = streamA.events().find((e) => e.process_kprobe?.args?.[1]?.string_arg === want[0])!;
    assert.equal(ev.node_name, 'policy-test-node');
    assert.equal(ev.process_kprobe!.function_name, '__x64_sys_openat');
    assert.equal(ev.process_kprobe!.action, 'KPROBE_ACTION_POST');
    assert.equal(ev.process_kprobe!.process.pid, run.pid);
    assert.equal(ev.process_kprobe!.process.binary, opener);
    // --event-types process_kprobe sees them too, and only kprobe events
    await waitFor('the events on the process_kprobe stream', () =>
      pathsOf(streamKprobes.events(), 'watch-a').length >= 3 ? true : undefined,
    );
    assert.ok(streamKprobes.events().every((e) => e.process_kprobe !== undefined));
    await waitFor('the events in the export file', () =>
      want.every((p) => pathsOf(exported(), 'watch-a').includes(p)) ? true : undefined,
    );

    const p = await one('watch-a');
    assert.equal(p.state, 'enabled');
    assert.equal(p.source, 'api');
    assert.equal(p.file, files.a);
    assert.equal(p.hooks, 1);
    assert.ok(p.counters && p.counters.events_posted >= 3, JSON.stringify(p));
    assert.ok(p.memory_bytes > 0, 'the kernel memory of its maps is counted');
    t.diagnostic(
      `in the agent: parse + compile + load + attach ${p.load_ms} ms; kernel memory of its maps ${p.memory_bytes} bytes`,
    );
    const text = await cli('policy', 'list');
    assert.match(text.stdout, /^NAME\s+STATE\s+MODE/);
    assert.match(text.stdout, /\nwatch-a\s+enabled\s+enforce\s+api\s+1\s+\d+/);
    // and in status
    const st = JSON.parse((await cli('status', '-o', 'json')).stdout) as {
      policies: PolicyInfo[];
      programs: { policy?: string }[];
      events: { by_type: Record<string, number> };
    };
    assert.ok(st.policies.some((x) => x.name === 'watch-a' && (x.counters?.events_posted ?? 0) >= 3));
    assert.ok(st.programs.some((x) => x.policy === 'watch-a'));
    assert.ok((st.events.by_type.process_kprobe ?? 0) >= 3);
  });

  it('refuses a second policy of the same name', async () => {
    const r = await cli('policy', 'add', files.a);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /policy "watch-a" is already loaded .*delete it first/);
  });

  it('takes changes one at a time, each seeing the one before it', async () => {
    const yamlBody = (text: string) => ({ body: text, headers: { 'content-type': 'application/yaml' } });
    const yaml = (name: string, dir: string) => policyYaml(name, `${dir}/`, 'Post');
    // the agent's programs: its sensors' and a verified spare's (once the spare the test
    // before took has been replaced: counted while it is being verified, the count is short)
    const before = (await settledProgIds(agent.proc.pid!)).size;
    // two adds of one name sent together: one loads, the other is refused
    const same = await Promise.all([
      request({ socketPath: sock }, 'POST', '/v1/policies?source=one', yamlBody(yaml('watch-d', dirB))),
      request({ socketPath: sock }, 'POST', '/v1/policies?source=two', yamlBody(yaml('watch-d', dirB))),
    ]);
    assert.deepEqual(same.map((r) => r.status).sort(), [201, 409], same.map((r) => r.body).join('\n'));
    // adds back to back (the second finds no verified spare and waits for
    // one), with a delete of the second sent before either has answered:
    // the delete finds it, as it would have after both answers
    const [d, e, del] = await Promise.all([
      request({ socketPath: sock }, 'POST', '/v1/policies?source=d', yamlBody(yaml('watch-e', dirB))),
      request({ socketPath: sock }, 'POST', '/v1/policies?source=e', yamlBody(yaml('watch-f', dirB))),
      request({ socketPath: sock }, 'DELETE', '/v1/policies/watch-f'),
    ]);
    assert.equal(d.status, 201, d.body);
    assert.equal(e.status, 201, e.body);
    assert.equal(del.status, 200, del.body);
    const names = (await list()).map((p) => p.name);
    assert.ok(
      names.includes('watch-d') && names.includes('watch-e') && !names.includes('watch-f'),
      names.join(),
    );
    for (const n of ['watch-d', 'watch-e']) {
      assert.equal((await cli('policy', 'delete', n)).code, 0);
    }
    // none of the three policies' programs left: the agent holds what it did
    // before (once the spare taken by the last add has been replaced)
    await waitFor('the agent to hold as many programs as before', () =>
      progIdsOf(agent.proc.pid!).size === before ? true : undefined,
    );
  });

  it('switches a Sigkill policy between monitor and enforce, live', async () => {
    const r = await cli('policy', 'add', files.k);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await cli('policy', 'set-mode', 'kill-k', 'monitor')).code, 0);
    assert.equal((await one('kill-k')).mode, 'monitor');
    const survived = await open(dirK, 1);
    assert.equal(survived.signal, null, 'monitor mode: the process is not killed');
    assert.equal(survived.code, 0);
    await waitFor('the monitored action to be counted', async () => {
      const c = (await one('kill-k')).counters;
      return c && c.actions_monitored >= 1 ? true : undefined;
    });
    assert.equal((await one('kill-k')).counters!.actions_taken, 0);
    const monitored = streamKprobes.events().find((e) => e.process_kprobe?.process.pid === survived.pid);
    assert.equal(monitored?.process_kprobe?.action, 'KPROBE_ACTION_POST', 'the event claims no kill');
    assert.equal(
      monitored?.process_kprobe?.monitored_action,
      'KPROBE_ACTION_SIGKILL',
      'it says what was held back',
    );

    assert.equal((await cli('policy', 'set-mode', 'kill-k', 'enforce')).code, 0);
    const killed = await open(dirK, 1);
    assert.equal(killed.signal, 'SIGKILL', 'enforce mode: the process dies');
    const c = (await one('kill-k')).counters!;
    assert.ok(c.actions_taken >= 1, JSON.stringify(c));
    await waitFor('the kill event', () =>
      streamKprobes
        .events()
        .find(
          (e) =>
            e.process_kprobe?.process.pid === killed.pid &&
            e.process_kprobe.action === 'KPROBE_ACTION_SIGKILL',
        ),
    );
    // the mode is stored with the policy
    const index = JSON.parse(readFileSync(path.join(stateDir, 'policies/index.json'), 'utf8')) as {
      policies: { name: string; mode: string }[];
    };
    assert.equal(index.policies.find((x) => x.name === 'kill-k')?.mode, 'enforce');
  });

  it("loses none of one policy's events while another is added and deleted", async (t) => {
    const N = 2000;
    const sub = path.join(dirA, 'burst');
    mkdirSync(sub);
    const seenBefore = pathsOf(streamA.events(), 'watch-a').length;
    // ~1 ms apart: the burst overlaps every add and delete below
    const burst = open(sub, N, 1000);
    let cycles = 0;
    let running = true;
    void burst.then(() => {
      running = false;
    });
    while (running || cycles < 3) {
      const add = await cli('policy', 'add', files.b);
      assert.equal(add.code, 0, add.stderr);
      const del = await cli('policy', 'delete', 'watch-b');
      assert.equal(del.code, 0, del.stderr);
      cycles++;
    }
    const run = await burst;
    assert.equal(run.code, 0);
    t.diagnostic(`policy watch-b added and deleted ${cycles} times during ${N} opens`);
    const want = new Set(Array.from({ length: N }, (_, i) => `${sub}/file-${String(i).padStart(5, '0')}`));
    const count = (evs: Ev[]) => new Set(pathsOf(evs, 'watch-a').filter((p) => want.has(p))).size;
    await waitFor(
      `all ${N} events of watch-a on the stream`,
      () => (count(streamA.events()) === N ? true : undefined),
      20_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: got ${count(streamA.events())}`);
    });
    await waitFor(`all ${N} events of watch-a in the export file`, () =>
      count(exported()) === N ? true : undefined,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: got ${count(exported())}`);
    });
    // each exactly once
    assert.equal(pathsOf(streamA.events(), 'watch-a').length, seenBefore + N);
    const a = await one('watch-a');
    assert.equal(a.counters!.drops, 0);
    assert.ok(!(await list()).some((p) => p.name === 'watch-b'));
    assert.ok(!existsSync(path.join(stateDir, 'policies/watch-b.yaml')), 'a deleted policy leaves no file');
  });

  it('refuses an invalid policy with every problem located, and changes nothing', async () => {
    const listed = (await list()).map((p) => `${p.name}:${p.state}`);
    const progs = policyProgramIds();
    // the agent verifies its next spare policy object in the background a
    // moment after an add: compare with its programs once that is done
    const agentProgs = await settledProgIds(agent.proc.pid!);
    const r = await cli('policy', 'add', files.bad);
    assert.equal(r.code, 1);
    const lines = r.stderr.split('\n');
    const at = (re: RegExp) => lines.find((l) => re.test(l));
    assert.ok(
      at(/bad\.yaml:11:\d+: spec\.kprobes\[0\]\.args\[0\]\.type: unknown arg type "strng"/),
      r.stderr,
    );
    assert.ok(
      at(/bad\.yaml:20:\d+: spec\.kprobes\[1\]\.selectors\[0\]\.matchArgs\[0\]\.operator: unknown operator/),
      r.stderr,
    );
    assert.deepEqual(
      (await list()).map((p) => `${p.name}:${p.state}`),
      listed,
    );
    assert.deepEqual(progIdsOf(agent.proc.pid!), agentProgs, 'the agent loaded no program');
    assert.deepEqual(leftBehind(progs), [], 'no program was left behind');
    // a text past the API's limit: the limit, the file and what to do
    const huge = path.join(tmp, 'huge.yaml');
    writeFileSync(huge, `# ${'x'.repeat(17 * 1024 * 1024)}\n`);
    const h = await cli('policy', 'add', huge);
    assert.equal(h.code, 1);
    assert.match(
      h.stderr,
      /huge\.yaml: the policy is larger than 16 MiB, the most the agent takes: split it into smaller policies/,
    );
    // the agent's own answer to such a body (the CLI does not send it): its
    // length alone is refused, before the body is read
    const raw = await new Promise<Buffer>((resolve, reject) => {
      const s = net.createConnection(sock);
      const got: Buffer[] = [];
      s.on('data', (c) => got.push(c));
      s.on('end', () => resolve(Buffer.concat(got)));
      s.on('error', reject);
      s.write(
        `POST /v1/policies?source=${encodeURIComponent(huge)} HTTP/1.1\r\nHost: localhost\r\n` +
          `Content-Type: application/yaml\r\nContent-Length: ${17 * 1024 * 1024}\r\nConnection: close\r\n\r\n`,
      );
    });
    const answer = parseAnswer(raw);
    assert.equal(answer.status, 413);
    assert.match(
      (JSON.parse(answer.body) as { error: string }).error,
      /huge\.yaml: the policy is larger than 16 MiB, the most the agent takes: split it into smaller policies/,
    );
    assert.deepEqual(
      (await list()).map((p) => `${p.name}:${p.state}`),
      listed,
    );
  });

  it('adds every policy of a directory, each on its own, and names the one that did not load', async () => {
    const dir = path.join(tmp, 'library');
    mkdirSync(dir);
    writeFileSync(path.join(dir, '1-x.yaml'), openatPrefixPolicyText('dir-x', [`${tmp}/x/`]));
    copyFileSync(files.bad, path.join(dir, '2-bad.yml'));
    writeFileSync(path.join(dir, '3-y.yaml'), openatPrefixPolicyText('dir-y', [`${tmp}/y/`]));
    writeFileSync(path.join(dir, 'README.txt'), 'not a policy');
    const r = await cli('policy', 'add', dir);
    assert.equal(r.code, 1, 'one of them failed');
    assert.match(r.stdout, /^policy "dir-x" added: .*\npolicy "dir-y" added: /);
    assert.match(r.stderr, /2-bad\.yml: the policy is not valid \(2 problems; nothing was loaded\)/);
    assert.match(
      r.stderr,
      /2-bad\.yml:11:\d+: spec\.kprobes\[0\]\.args\[0\]\.type: unknown arg type "strng"/,
    );
    assert.match(r.stderr, /1 of 3 policies in .*library not added/);
    const names = (await list()).map((p) => p.name);
    assert.ok(names.includes('dir-x') && names.includes('dir-y'), names.join(','));
    for (const n of ['dir-x', 'dir-y']) assert.equal((await cli('policy', 'delete', n)).code, 0);
    const empty = path.join(tmp, 'no-policies');
    mkdirSync(empty);
    const e = await cli('policy', 'add', empty);
    assert.equal(e.code, 1);
    assert.match(e.stderr, /no-policies: no \*\.yaml or \*\.yml files in this directory/);
  });

  it('disables and enables a policy', async () => {
    const ids = async () => {
      const st = JSON.parse((await cli('status', '-o', 'json')).stdout) as {
        programs: { policy?: string; id: number }[];
      };
      return st.programs.filter((p) => p.policy === 'watch-a').map((p) => p.id);
    };
    const loaded = await ids();
    assert.ok(loaded.length > 0);
    const typo = await cli('policy', 'disable', 'wach-a');
    assert.equal(typo.code, 1);
    assert.match(typo.stderr, /no policy "wach-a"; did you mean "watch-a"\? \(see osprey policy list\)/);
    const d = await cli('policy', 'disable', 'watch-a');
    assert.equal(d.code, 0, d.stderr);
    const p = await one('watch-a');
    assert.equal(p.state, 'disabled');
    assert.equal(p.counters, null);
    // the kernel frees a detached program after an RCU grace period, not at once
    await waitFor('its programs to be gone from the kernel', () => {
      const now = new Set(loadedPrograms().map((x) => x.id));
      return loaded.every((id) => !now.has(id)) || undefined;
    });
    const index = () =>
      (
        JSON.parse(readFileSync(path.join(stateDir, 'policies/index.json'), 'utf8')) as {
          policies: { name: string; enabled: boolean }[];
        }
      ).policies.find((x) => x.name === 'watch-a');
    assert.equal(index()?.enabled, false);

    const off = path.join(dirA, 'while-disabled');
    await open(off, 2);
    const e = await cli('policy', 'enable', 'watch-a');
    assert.equal(e.code, 0, e.stderr);
    assert.equal((await one('watch-a')).state, 'enabled');
    assert.equal(index()?.enabled, true);
    const on = path.join(dirA, 'after-enable');
    await open(on, 2);
    await waitFor('events after enable', () =>
      pathsOf(streamA.events(), 'watch-a').some((x) => x.startsWith(`${on}/`)) ? true : undefined,
    );
    assert.ok(
      !pathsOf(streamA.events(), 'watch-a').some((x) => x.startsWith(`${off}/`)),
      'no events while disabled',
    );
  });

  it('keeps added policies across a restart; --policy ones come from the flag', async () => {
    await stopAgent(agent);
    assert.equal(agent.code, 0, agent.stderr);
    await Promise.all([streamA.exited, streamKprobes.exited]);
    agent = await startAgent(['--policy', files.c]);
    const ps = await list();
    const by = new Map(ps.map((p) => [p.name, p]));
    assert.equal(by.get('watch-a')?.state, 'enabled');
    assert.equal(by.get('watch-a')?.source, 'api');
    assert.equal(by.get('kill-k')?.state, 'enabled');
    assert.equal(by.get('kill-k')?.mode, 'enforce');
    assert.equal(by.get('flag-c')?.source, 'flag');
    assert.equal(by.get('flag-c')?.state, 'enabled');
    streamA = await stream('--policy', 'watch-a');
    const again = path.join(dirA, 'after-restart');
    await open(again, 3);
    await waitFor('events of the restored policy', () =>
      pathsOf(streamA.events(), 'watch-a').filter((x) => x.startsWith(`${again}/`)).length === 3
        ? true
        : undefined,
    );
    const killed = await open(dirK, 1);
    assert.equal(killed.signal, 'SIGKILL', 'the restored Sigkill policy enforces');
    // flag policies are not stored
    const index = JSON.parse(readFileSync(path.join(stateDir, 'policies/index.json'), 'utf8')) as {
      policies: { name: string }[];
    };
    assert.deepEqual(index.policies.map((x) => x.name).sort(), ['kill-k', 'watch-a']);
    // delete removes it from the state directory
    assert.equal((await cli('policy', 'delete', 'kill-k')).code, 0);
    assert.ok(!existsSync(path.join(stateDir, 'policies/kill-k.yaml')));
    assert.ok(!(await list()).some((p) => p.name === 'kill-k'));
  });

  it('`osprey agent --policy bad.yaml` fails with the file and line, with nothing attached', async () => {
    const progs = policyProgramIds();
    const badSock = path.join(tmp, 'run', 'bad.sock');
    const c = spawnChild([
      'agent',
      '--cgroup',
      cg.path,
      '--api-socket',
      badSock,
      '--state-dir',
      path.join(tmp, 'state-bad'),
      '--no-export-stdout',
      '--no-export-file',
      '--policy',
      files.c,
      '--policy',
      files.bad,
    ]);
    await c.exited;
    assert.equal(c.code, 1, c.stderr);
    assert.match(c.stderr, /bad\.yaml:11:\d+: spec\.kprobes\[0\]\.args\[0\]\.type: unknown arg type/);
    assert.match(c.stderr, /bad\.yaml:20:\d+: spec\.kprobes\[1\]\.selectors\[0\]\.matchArgs\[0\]\.operator/);
    assert.ok(!existsSync(badSock), 'no socket left behind');
    assert.deepEqual(leftBehind(progs), [], 'no program was left behind');
  });
});
