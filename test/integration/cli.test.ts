/**
 * The `osprey` command as a user meets it: usage errors, start-up errors
 * that leave nothing attached, a socket already served by another agent,
 * and the commands that talk to a running agent. Runs as root against the
 * real kernel.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const OSPREY = path.join(repo, 'bin/osprey');
const version = (JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')) as { version: string })
  .version;

const tmp = mkdtempSync(path.join(os.tmpdir(), 'osprey-cli-test-'));
const children = new Set<ChildProcess>();

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  pid: number;
}

/** Run `osprey ARGS` to its end (killed after timeoutMs). */
function osprey(
  args: string[],
  opts: { input?: string; cwd?: string; cmd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
) {
  // an agent that gets far enough must not touch the host's state, store or ports
  if (args[0] === 'agent' && !args.includes('--config') && !args.includes('--state-dir')) {
    args = [
      'agent',
      '--state-dir',
      path.join(tmp, 'state-cli'),
      '--metrics-address',
      '',
      '--ui-address',
      '',
      ...args.slice(1),
    ];
  }
  return new Promise<Run>((resolve, reject) => {
    const child = spawn(opts.cmd ?? OSPREY, args, {
      cwd: opts.cwd ?? tmp,
      ...(opts.env ? { env: opts.env } : {}),
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d;
    });
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d;
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 15_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, stdout, stderr, pid: child.pid! });
    });
  });
}

interface Agent {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Start `osprey agent ARGS` and wait for its ready line. */
async function startAgent(args: string[]): Promise<Agent> {
  // each agent keeps its state and listeners to itself
  const own = [
    '--state-dir',
    path.join(tmp, `state-${children.size}`),
    '--metrics-address',
    '',
    '--ui-address',
    '',
  ];
  const child = spawn(OSPREY, ['agent', ...own, ...args], { cwd: tmp, stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let stderr = '';
  const exited = new Promise<number | null>((resolve) =>
    child.on('close', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`agent not ready in 15 s: ${stderr}`)), 15_000);
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d;
      if (stderr.includes('ready:')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`agent exited (${code}) before it was ready: ${stderr}`));
    });
  });
  return { child, stderr: () => stderr, exited };
}

interface BpfProg {
  id: number;
  name?: string;
}

function osprePrograms(): BpfProg[] {
  const all = JSON.parse(execFileSync('bpftool', ['prog', 'show', '-j'], { encoding: 'utf8' })) as BpfProg[];
  return all.filter((p) => p.name?.startsWith('osprey_'));
}

/** Program ids some live process holds a program or link fd for. */
function heldProgramIds(): Set<number> {
  const held = new Set<number>();
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fdinfo`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^prog_id:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
        if (m) held.add(Number(m[1]));
      } catch {
        // the fd or the process went away
      }
    }
  }
  return held;
}

/**
 * Osprey programs that appeared since `before` and that no live process
 * holds: what a failed start would have left in the kernel (pinned, or
 * leaked by a process still on its way out). Programs of other tests running
 * in parallel are held by their processes and so are not counted. Freeing
 * is asynchronous in the kernel, so it looks again for a while.
 */
async function leftBehind(before: Set<number>): Promise<BpfProg[]> {
  let orphans: BpfProg[] = [];
  for (let i = 0; i < 20; i++) {
    const held = heldProgramIds();
    orphans = osprePrograms().filter((p) => !before.has(p.id) && !held.has(p.id));
    if (orphans.length === 0) return [];
    await new Promise((r) => setTimeout(r, 100));
  }
  return orphans;
}

const programIds = () => new Set(osprePrograms().map((p) => p.id));

/** A fresh, empty cgroup v2 directory, so a test agent watches nothing of the host's. */
function cgroup2Root(): string {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (post?.startsWith('cgroup2 ')) return pre!.split(' ')[4]!;
  }
  throw new Error('no cgroup v2 mount');
}
const cgroups: string[] = [];
function makeCgroup(): string {
  const dir = path.join(cgroup2Root(), `osprey-cli-test-${process.pid}-${cgroups.length}`);
  mkdirSync(dir);
  cgroups.push(dir);
  return dir;
}

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 200));
  for (const c of cgroups) {
    try {
      rmdirSync(c);
    } catch {
      // still busy or already gone
    }
  }
  rmSync(tmp, { recursive: true, force: true });
});

describe('osprey CLI', () => {
  it('refuses an unknown flag with its name, the usage and exit code 2, attaching nothing', async () => {
    const before = programIds();
    const sock = path.join(tmp, 'flag.sock');
    const r = await osprey(['agent', '--api-socket', sock, '--bogus-flag']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^osprey agent: unknown flag --bogus-flag\n/);
    assert.match(r.stderr, /Usage: osprey agent/);
    assert.ok(!existsSync(sock));
    assert.deepEqual(await leftBehind(before), []);
  });

  it('refuses an unknown command with the usage and exit code 2', async () => {
    const r = await osprey(['frobnicate']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^osprey: unknown command "frobnicate"/);
    assert.match(r.stderr, /Commands:\n\s+agent/);
    const s = await osprey(['status', '--bogus']);
    assert.equal(s.code, 2);
    assert.match(s.stderr, /^osprey status: unknown flag --bogus\n\nUsage: osprey status/);
    // a flag before its command: where it goes
    const before = await osprey(['--socket', '/nonexistent.sock', 'policy', 'list']);
    assert.equal(before.code, 2);
    assert.match(
      before.stderr,
      /^osprey: --socket: flags go after the command \(osprey policy \.\.\. --socket \.\.\.\)/,
    );
  });

  it('names the file and line of an unknown config key, attaching nothing', async () => {
    const before = programIds();
    const cfg = path.join(tmp, 'bad.yaml');
    writeFileSync(cfg, `api-socket: ${path.join(tmp, 'cfg.sock')}\nargs-max: 512\nexport-flie: /tmp/x.log\n`);
    const r = await osprey(['agent', '--config', cfg]);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      `osprey agent: ${cfg}:3:1: unknown key "export-flie"; did you mean "export-file"? Fix or remove it.\n`,
    );
    assert.ok(!existsSync(path.join(tmp, 'cfg.sock')));
    assert.deepEqual(await leftBehind(before), []);
  });

  it('refuses an export file it cannot write, before attaching anything', async () => {
    const before = programIds();
    const sock = path.join(tmp, 'export.sock');
    const r = await osprey([
      'agent',
      '--api-socket',
      sock,
      '--export-file',
      '/proc/osprey/x',
      '--no-export-stdout',
    ]);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      'osprey agent: cannot create directory /proc/osprey for export file /proc/osprey/x: ' +
        'ENOENT: no such file or directory; choose a writable path with --export-file\n',
    );
    assert.ok(!existsSync(sock), 'no socket is left behind');
    assert.deepEqual(await leftBehind(before), []);
  });

  it('refuses a --cgroup that is not a cgroup v2 directory', async () => {
    const before = programIds();
    const r = await osprey(['agent', '--api-socket', path.join(tmp, 'cg.sock'), '--cgroup', tmp]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^osprey agent: --cgroup ${tmp} is not in a cgroup v2 hierarchy`));
    assert.deepEqual(await leftBehind(before), []);
  });

  describe('with an agent running', () => {
    const sock = path.join(tmp, 'run', 'agent.sock');
    let first: Agent;
    let firstPrograms: number[] = [];

    before(async () => {
      // leave a stale socket behind, as an agent killed with SIGKILL does
      mkdirSync(path.dirname(sock), { recursive: true });
      const holder = spawn(
        process.execPath,
        ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => console.log('up'))`],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      children.add(holder);
      await new Promise((r) => holder.stdout!.once('data', r));
      holder.kill('SIGKILL');
      await new Promise((r) => holder.once('close', r));
      assert.ok(existsSync(sock), 'the stale socket is there');

      first = await startAgent([
        '--api-socket',
        sock,
        '--no-export-file',
        '--no-export-stdout',
        '--no-seed',
        '--cgroup',
        makeCgroup(),
      ]);
      const st = await osprey(['status', '-o', 'json', '--socket', sock]);
      firstPrograms = (JSON.parse(st.stdout) as { programs: { id: number }[] }).programs.map((p) => p.id);
    });

    after(async () => {
      first?.child.kill('SIGTERM');
      await first?.exited;
    });

    it('took over the stale socket, root-only', () => {
      assert.match(first.stderr(), /ready: .*API on /);
      assert.equal(execFileSync('stat', ['-c', '%a %F', sock], { encoding: 'utf8' }).trim(), '600 socket');
    });

    it('refuses to start a second agent on the same socket, and the first keeps working', async () => {
      const before = programIds();
      const r = await osprey(['agent', '--api-socket', sock, '--no-export-file', '--no-export-stdout']);
      assert.equal(r.code, 1);
      assert.equal(
        r.stderr,
        `osprey agent: another agent (pid ${first.child.pid}) is serving on ${sock}; stop it or pass --api-socket\n`,
      );
      assert.deepEqual(await leftBehind(before), []);

      const st = await osprey(['status', '-o', 'json', '--socket', sock]);
      assert.equal(st.code, 0, st.stderr);
      const status = JSON.parse(st.stdout) as { pid: number; programs: { id: number; name: string }[] };
      assert.equal(status.pid, first.child.pid);
      assert.deepEqual(
        status.programs.map((p) => p.name),
        ['osprey_exec', 'osprey_fork', 'osprey_exit', 'osprey_prepare_exec'],
      );
      const live = programIds();
      for (const id of firstPrograms) assert.ok(live.has(id), `program ${id} of the first agent is loaded`);
    });

    it('prints a readable status', async () => {
      const r = await osprey(['status', '--socket', sock]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        new RegExp(`^Osprey agent ${version.replace(/\./g, '\\.')} on .* \\(pid ${first.child.pid}\\)`),
      );
      assert.match(r.stdout, /osprey_exec\s+tp_btf\/sched_process_exec/);
      assert.match(r.stdout, /kernel_ringbuf\s+0/);
      // the values of a section in one column, the longest key's too
      const drops = r.stdout.split('Drops\n')[1]!.split('\n\n')[0]!.split('\n');
      assert.ok(
        drops.some((l) => l.startsWith('  api_clients_disconnected ')),
        drops.join('\n'),
      );
      const columns = new Set(drops.map((l) => /^ {2}\S+ +/.exec(l)?.[0].length));
      assert.equal(columns.size, 1, drops.join('\n'));
    });

    it('leaves BPF run-time statistics off unless asked (--bpf-stats)', async (t) => {
      if (readFileSync('/proc/sys/kernel/bpf_stats_enabled', 'utf8').trim() !== '0')
        return t.skip('the host has kernel.bpf_stats_enabled on');
      const st = await osprey(['status', '-o', 'json', '--socket', sock]);
      const s = JSON.parse(st.stdout) as { bpf_stats: boolean; programs: { run_count: number }[] };
      assert.equal(s.bpf_stats, false);
      assert.equal(s.programs.length, 4);
      assert.ok(
        s.programs.every((p) => p.run_count === 0),
        JSON.stringify(s.programs),
      );
      const r = await osprey(['status', '--socket', sock]);
      assert.match(r.stdout, /^Programs \(runs not counted: start the agent with --bpf-stats\)$/m);
    });

    it('refuses a bad filter with exit code 2', async () => {
      const r = await osprey(['events', '--socket', sock, '--process', '(unclosed']);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /^osprey events: process filter "\(unclosed" is not a valid regular expression/);
    });
  });

  it('says so when no agent is listening, with exit code 1', async () => {
    const sock = path.join(tmp, 'nobody.sock');
    const r = await osprey(['status', '--socket', sock]);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      `osprey status: no agent is listening on ${sock}; start one with \`osprey agent\`\n`,
    );
    const e = await osprey(['events', '--socket', sock]);
    assert.equal(e.code, 1);
    assert.equal(
      e.stderr,
      `osprey events: no agent is listening on ${sock}; start one with \`osprey agent\`\n`,
    );
  });

  it('validates policy files with no agent: each valid one named, every problem at its file and line', async () => {
    const ok = await osprey([
      'policy',
      'validate',
      path.join(repo, 'policies'),
      path.join(repo, 'test/fixtures/tetragon/sys_setuid.yaml'),
      path.join(repo, 'test/fixtures/netpolicy/web.yaml'),
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /policies\/reverse-shell\.yaml: reverse-shell \(TracingPolicy\): valid\n/);
    assert.match(ok.stdout, /sys_setuid\.yaml: syscalls \(TracingPolicy\): valid\n/);
    assert.match(ok.stdout, /web\.yaml: \S+ \(CiliumNetworkPolicy\): valid\n/);
    assert.equal(ok.stdout.trim().split('\n').length, 9, 'six, one, and web.yaml holds two');
    const bad = await osprey([
      'policy',
      'validate',
      path.join(repo, 'test/fixtures/policies/bad/bad-cidr.yaml'),
      path.join(repo, 'test/fixtures/netpolicy/bad.yaml'),
    ]);
    assert.equal(bad.code, 1);
    assert.equal(bad.stdout, '');
    assert.match(
      bad.stderr,
      /bad-cidr\.yaml:20:19: spec\.kprobes\[0\]\.selectors\[0\]\.matchArgs\[0\]\.values\[0\]: /,
    );
    assert.match(
      bad.stderr,
      /netpolicy\/bad\.yaml:12:21: spec\.egress\[0\]\.toPorts\[0\]\.ports\[0\]\.port: port 70000/,
    );
    assert.match(bad.stderr, /osprey policy validate: 4 problems\n$/);
    const none = await osprey(['policy', 'validate']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /validate takes one or more files or directories of policies/);
    const missing = await osprey(['policy', 'validate', path.join(tmp, 'no-such-policies')]);
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr,
      /no-such-policies: ENOENT: no such file or directory \(check the policy validate path\)/,
    );
  });

  it('works from any directory and through a symlink', async () => {
    const link = path.join(tmp, 'bin-link', 'osprey');
    mkdirSync(path.dirname(link), { recursive: true });
    symlinkSync(OSPREY, link);
    const r = await osprey(['version'], { cmd: link, cwd: '/' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `osprey ${version}\n`);
    const h = await osprey(['help', 'events'], { cmd: link, cwd: os.homedir() });
    assert.equal(h.code, 0);
    assert.match(h.stdout, /^Usage: osprey events/);
  });

  it('runs client commands from the bundled CLI while it is current, from the ES modules once tsc has run since', async () => {
    const cli = path.join(repo, 'dist/src/cli');
    const bundle = path.join(cli, 'osprey-cli.cjs');
    const main = path.join(cli, 'main.js');
    // Node's module debug output names each CommonJS file it loads
    const env = { ...process.env, NODE_DEBUG: 'module' };
    const current = await osprey(['version'], { env });
    assert.equal(current.code, 0, current.stderr);
    assert.equal(current.stdout, `osprey ${version}\n`);
    assert.match(current.stderr, /load "[^"]*\/dist\/src\/cli\/osprey-cli\.cjs"/);
    const before = statSync(main);
    try {
      const later = new Date(statSync(bundle).mtimeMs + 10_000);
      utimesSync(main, later, later);
      const stale = await osprey(['version'], { env });
      assert.equal(stale.code, 0, stale.stderr);
      assert.equal(stale.stdout, `osprey ${version}\n`);
      assert.doesNotMatch(stale.stderr, /load "[^"]*osprey-cli\.cjs"/);
      // with no terminal on stderr it says nothing of it (a person at one is told how to rebuild)
      assert.doesNotMatch(stale.stderr, /older than the compiled/);
    } finally {
      utimesSync(main, before.atime, before.mtime);
    }
  });

  it('renders JSON lines from stdin, naming the lines that are not JSON', async () => {
    const proc = (bin: string, args: string) => ({
      exec_id: 'eA==',
      pid: 42,
      uid: 0,
      cwd: '/',
      binary: bin,
      arguments: args,
      flags: 'execve',
      start_time: '2024-01-01T00:00:00Z',
      auid: 0,
      tid: 42,
    });
    const lines = [
      JSON.stringify({
        process_exec: { process: proc('/usr/bin/curl', '-s example.com') },
        node_name: 'n',
        time: 't',
      }),
      '{not json',
      JSON.stringify({
        process_exit: { process: proc('/usr/bin/curl', '-s example.com'), status: 7, time: 't' },
        node_name: 'n',
        time: 't',
      }),
      '',
    ];
    const r = await osprey(['events', '-o', 'compact'], { input: lines.join('\n') });
    assert.equal(r.code, 1);
    assert.equal(
      r.stdout,
      '🚀 process /usr/bin/curl -s example.com\n💥 exit    /usr/bin/curl -s example.com 7\n',
    );
    assert.match(r.stderr, /^osprey events: line 2: not JSON \(/);
    assert.match(r.stderr, /1 of 3 lines skipped/);

    const f = await osprey(['events', '-o', 'json', '--event-types', 'process_exit'], {
      input: lines.join('\n'),
    });
    assert.equal(f.stdout, `${lines[2]}\n`);
  });

  it('writes all of a long answer to a pipe whose reader is slow, and ends quietly when the reader goes away', async () => {
    // ~1 MiB of events: far more than a pipe holds (64 KiB) when its reader is not reading yet
    const line = (i: number) =>
      JSON.stringify({
        process_exec: {
          process: { exec_id: `e${i}`, pid: i, binary: '/usr/bin/true', arguments: 'x'.repeat(900) },
        },
        node_name: 'n',
        time: '2026-11-27T00:00:00.000000000Z',
      });
    const input = `${Array.from({ length: 1100 }, (_, i) => line(i)).join('\n')}\n`;
    const file = path.join(tmp, 'long-input.json');
    writeFileSync(file, input);
    for (const [output, want] of [
      ['json', input],
      ['compact', `${'🚀 process /usr/bin/true '.concat('x'.repeat(900), '\n').repeat(1100)}`],
    ] as const) {
      const child = spawn('sh', ['-c', `exec "$0" events -o ${output} < "$1"`, OSPREY, file], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.add(child);
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d;
      });
      const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
      // the reader starts late: the command has long finished rendering by then
      await new Promise((r) => setTimeout(r, 1500));
      const chunks: Buffer[] = [];
      for await (const d of child.stdout!) chunks.push(d as Buffer);
      const code = await closed;
      children.delete(child);
      assert.equal(code, 0, stderr);
      const got = Buffer.concat(chunks).toString('utf8');
      assert.equal(
        got.length,
        want.length,
        `-o ${output}: ${got.length} of ${want.length} characters arrived`,
      );
      assert.equal(got, want);
    }
    // `osprey events ... | head -c 10`: the reader leaves early; no error, exit 0
    const head = execFileSync(
      'bash',
      ['-c', '"$0" events -o json < "$1" 2>"$1.err" | head -c 10; echo " $PIPESTATUS"', OSPREY, file],
      { encoding: 'utf8' },
    );
    assert.equal(head, '{"process_ 0\n');
    assert.equal(readFileSync(`${file}.err`, 'utf8'), '');
  });
});
