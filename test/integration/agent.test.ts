/**
 * The agent end to end, against the real kernel: scoped to a cgroup this
 * test creates, it must see a process run there, export its exec and exit
 * to the file, to stdout and to API streams, count them in status, and stop
 * on SIGTERM with exit code 0 and its programs gone.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ApiServer } from '../../src/agent/api.js';
import { EventBus } from '../../src/agent/bus.js';
import { lineSink, openStream } from '../../src/cli/stream-client.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const OSPREY = path.join(repo, 'bin/osprey');

interface Proc {
  exec_id: string;
  pid: number;
  binary: string;
  arguments: string;
  parent_exec_id?: string;
}
interface Ev {
  node_name: string;
  time: string;
  process_exec?: { process: Proc; parent?: Proc };
  process_exit?: { process: Proc; status?: number; signal?: string };
}

function cgroup2Root(): string {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (post?.startsWith('cgroup2 ')) return pre!.split(' ')[4]!;
  }
  throw new Error('no cgroup v2 hierarchy is mounted');
}

/** A child that keeps its output, for assertions and for debugging failures. */
class Child {
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;
  constructor(readonly proc: ChildProcess) {
    proc.stdout?.on('data', (d: Buffer) => {
      this.stdout += d;
    });
    proc.stderr?.on('data', (d: Buffer) => {
      this.stderr += d;
    });
    this.exited = new Promise((resolve) => proc.on('close', (code) => resolve(code)));
  }
}

async function waitFor<T>(
  what: string,
  f: () => T | undefined | Promise<T | undefined>,
  ms = 8000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function getJson<T>(socketPath: string, p: string): Promise<T> {
  return new Promise((resolve, reject) => {
    http
      .get({ socketPath, path: p }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => {
          try {
            resolve(JSON.parse(body) as T);
          } catch (err) {
            reject(err);
          }
        });
      })
      .on('error', reject);
  });
}

const parseLines = (text: string): Ev[] =>
  text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Ev);

describe('osprey agent, scoped to a cgroup', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'osprey-agent-test-'));
  const cg = path.join(cgroup2Root(), `osprey-agent-test-${process.pid}-${Date.now()}`);
  const sock = path.join(tmp, 'run', 'osprey.sock');
  const exportFile = path.join(tmp, 'log', 'events.log');
  const children: Child[] = [];
  const spawnChild = (cmd: string, args: string[]) => {
    const c = new Child(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    children.push(c);
    return c;
  };
  let agent: Child;
  let stream: Child;
  let exitsOnly: Child;
  let agentExit: number | null = null;
  let programIds: number[] = [];
  let echo: { exec: Ev; exit: Ev } | undefined;

  before(async () => {
    mkdirSync(cg);
    agent = spawnChild(OSPREY, [
      'agent',
      '--cgroup',
      cg,
      '--api-socket',
      sock,
      '--export-file',
      exportFile,
      '--export-stdout',
      '--stdout-format',
      'json',
      '--node-name',
      'agent-test-node',
      '--bpf-stats',
      // keep this agent's state and listeners to itself
      '--state-dir',
      path.join(tmp, 'state'),
      '--metrics-address',
      '',
      '--ui-address',
      '',
    ]);
    await waitFor('the agent to be ready', () => agent.stderr.includes('ready:') || undefined, 15_000).catch(
      (err: Error) => {
        throw new Error(`${err.message}; agent stderr: ${agent.stderr}`);
      },
    );
  });

  after(async () => {
    for (const c of children) c.proc.kill('SIGKILL');
    await Promise.all(children.map((c) => c.exited));
    // the cgroup can only go once its processes have; they are gone by now
    for (let i = 0; i < 20 && existsSync(cg); i++) {
      try {
        rmdirSync(cg);
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    rmSync(tmp, { recursive: true, force: true });
  });

  it('serves events to API streams, filtered on the server', async () => {
    stream = spawnChild(OSPREY, ['events', '-o', 'json', '--socket', sock]);
    exitsOnly = spawnChild(OSPREY, [
      'events',
      '-o',
      'json',
      '--event-types',
      'process_exit',
      '--socket',
      sock,
    ]);
    const st = await waitFor('two stream clients', async () => {
      const s = await getJson<{ api: { clients: number } }>(sock, '/v1/status');
      return s.api.clients >= 2 ? s : undefined;
    });
    assert.equal(st.api.clients, 2);
  });

  it('sees a process run in the cgroup: exec with its arguments, exit with status 0', async () => {
    const sh = spawnChild('/bin/sh', ['-c', `echo $$ > ${cg}/cgroup.procs; exec /bin/echo hi there`]);
    assert.equal(await sh.exited, 0, sh.stderr);
    assert.equal(sh.stdout, 'hi there\n');

    echo = await waitFor('exec and exit of echo in the export file', () => {
      if (!existsSync(exportFile)) return undefined;
      const evs = parseLines(readFileSync(exportFile, 'utf8'));
      const exec = evs.find(
        (e) =>
          e.process_exec?.process.binary === '/usr/bin/echo' && e.process_exec.process.pid === sh.proc.pid,
      );
      const exit =
        exec && evs.find((e) => e.process_exit?.process.exec_id === exec.process_exec!.process.exec_id);
      return exec && exit ? { exec, exit } : undefined;
    });
    const p = echo.exec.process_exec!.process;
    assert.equal(p.arguments, 'hi there');
    assert.equal(echo.exec.node_name, 'agent-test-node');
    const x = echo.exit.process_exit!;
    assert.equal(x.status ?? 0, 0);
    assert.equal(x.signal, undefined);
    assert.equal(x.process.binary, '/usr/bin/echo');

    // the scope holds: nothing from outside the cgroup was exported
    const all = parseLines(readFileSync(exportFile, 'utf8'));
    for (const e of all) {
      const proc = e.process_exec?.process ?? e.process_exit?.process;
      assert.equal(
        proc?.pid,
        sh.proc.pid,
        `only the test's process is in scope: ${JSON.stringify(e).slice(0, 200)}`,
      );
    }
  });

  it('delivers the same events on the stream, on stdout and, filtered, on the exits-only stream', async () => {
    assert.ok(echo, 'the previous test saw the process');
    const execId = echo.exec.process_exec!.process.exec_id;
    const onStream = await waitFor('the events on the stream', () => {
      const evs = parseLines(stream.stdout);
      return evs.some((e) => e.process_exec?.process.exec_id === execId) &&
        evs.some((e) => e.process_exit?.process.exec_id === execId)
        ? evs
        : undefined;
    });
    assert.deepEqual(
      onStream.find((e) => e.process_exec?.process.exec_id === execId),
      echo.exec,
    );
    assert.deepEqual(
      onStream.find((e) => e.process_exit?.process.exec_id === execId),
      echo.exit,
    );

    const onStdout = await waitFor('the events on stdout', () => {
      const evs = parseLines(agent.stdout);
      return evs.some((e) => e.process_exit?.process.exec_id === execId) ? evs : undefined;
    });
    assert.deepEqual(
      onStdout.find((e) => e.process_exec?.process.exec_id === execId),
      echo.exec,
    );

    const exits = await waitFor('the exit on the filtered stream', () => {
      const evs = parseLines(exitsOnly.stdout);
      return evs.some((e) => e.process_exit?.process.exec_id === execId) ? evs : undefined;
    });
    assert.ok(
      exits.every((e) => e.process_exit !== undefined),
      'the exits-only stream carries nothing else',
    );
  });

  it('counts what it did in `osprey status -o json`', async () => {
    const run = spawnChild(OSPREY, ['status', '-o', 'json', '--socket', sock]);
    assert.equal(await run.exited, 0, run.stderr);
    const s = JSON.parse(run.stdout) as {
      node_name: string;
      scope_cgroup: string;
      bpf_stats: boolean;
      programs: { name: string; id: number; run_count: number }[];
      events: { total: number; by_type: Record<string, number> };
      drops: Record<string, number>;
      export_file: { path: string; events_written: number };
      export_stdout: { format: string; events_written: number };
      latency: { count: number; p50_ms: number; p99_ms: number; max_ms: number };
      api: { clients: number };
      memory: { rss_bytes: number; peak_rss_bytes: number };
      process_cache: { size: number };
      ring: { pending_bytes: Record<string, number> };
    };
    assert.equal(s.node_name, 'agent-test-node');
    assert.equal(s.scope_cgroup, cg);
    assert.deepEqual(
      s.programs.map((p) => p.name),
      ['osprey_exec', 'osprey_fork', 'osprey_exit', 'osprey_prepare_exec'],
    );
    // the programs run for every task on the host (counted: --bpf-stats); the scope filters after
    assert.equal(s.bpf_stats, true);
    assert.ok(s.programs.every((p) => p.run_count > 0));
    assert.equal(s.events.by_type.process_exec, 1);
    assert.equal(s.events.by_type.process_exit, 1);
    assert.equal(s.events.total, 2);
    assert.deepEqual(s.drops, {
      kernel_ringbuf: 0,
      kernel_args: 0,
      decode_errors: 0,
      bus_queue_overflow: 0,
      api_slow_client_dropped: 0,
      api_clients_disconnected: 0,
    });
    assert.equal(s.export_file.path, exportFile);
    assert.equal(s.export_file.events_written, 2);
    assert.equal(s.export_stdout.events_written, 2);
    assert.equal(s.latency.count, 1);
    assert.ok(s.latency.max_ms > 0 && s.latency.max_ms < 5000, `latency ${s.latency.max_ms} ms`);
    assert.ok(s.latency.p50_ms <= s.latency.max_ms);
    assert.equal(s.api.clients, 2);
    // the process ring's depth, in bytes (a quiet ring: little or nothing)
    assert.ok(Number.isInteger(s.ring.pending_bytes.process) && s.ring.pending_bytes.process >= 0);
    assert.ok(s.memory.rss_bytes > 0 && s.memory.peak_rss_bytes >= s.memory.rss_bytes / 2);
    assert.ok(s.process_cache.size > 0, 'the cache was seeded from /proc');
    programIds = s.programs.map((p) => p.id);
  });

  it('keeps a quiet stream open', async () => {
    // longer than the keep-alive socket timeouts of Node's HTTP client and server
    await new Promise((r) => setTimeout(r, 6000));
    const sh = spawnChild('/bin/sh', ['-c', `echo $$ > ${cg}/cgroup.procs; exec /bin/echo still here`]);
    assert.equal(await sh.exited, 0, sh.stderr);
    const found = await waitFor('the late exec on the stream', () =>
      parseLines(stream.stdout).find((e) => e.process_exec?.process.arguments === 'still here'),
    );
    assert.equal(found.process_exec!.process.pid, sh.proc.pid);
    await waitFor('the late exit on the exits-only stream', () =>
      parseLines(exitsOnly.stdout).find((e) => e.process_exit?.process.pid === sh.proc.pid),
    );
    assert.equal(stream.proc.exitCode, null, 'the stream client is still running');
  });

  it('stops on SIGTERM with exit code 0, ends the streams and leaves nothing attached', async () => {
    assert.ok(programIds.length === 4, 'status gave the program ids');
    const loaded = () =>
      new Set(
        (
          JSON.parse(execFileSync('bpftool', ['prog', 'show', '-j'], { encoding: 'utf8' })) as {
            id: number;
          }[]
        ).map((p) => p.id),
      );
    for (const id of programIds) assert.ok(loaded().has(id), `program ${id} is loaded while the agent runs`);

    agent.proc.kill('SIGTERM');
    agentExit = await agent.exited;
    assert.equal(agentExit, 0, agent.stderr);
    assert.match(agent.stderr, /SIGTERM: stopping/);
    assert.ok(!existsSync(sock), 'the socket is removed');
    // the streams end cleanly when the agent goes
    assert.equal(await stream.exited, 0, stream.stderr);
    assert.equal(await exitsOnly.exited, 0, exitsOnly.stderr);
    assert.match(stream.stderr, /the agent ended the stream/);
    // the kernel frees programs asynchronously once their last reference is gone
    await waitFor(
      'the programs to be unloaded',
      () => {
        const now = loaded();
        return programIds.every((id) => !now.has(id)) || undefined;
      },
      3000,
    );
    // everything exported before the stop is in the file, complete lines only
    const text = readFileSync(exportFile, 'utf8');
    assert.ok(text.endsWith('\n'));
    assert.equal(parseLines(text).length, 4);
  });
});

describe('API event streams with a client that stops reading', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'osprey-api-test-'));
  const sock = path.join(tmp, 'api.sock');
  const bus = new EventBus<{ seq: number; pad: string }>();
  let api: ApiServer<{ seq: number; pad: string }>;
  const sockets: net.Socket[] = [];

  before(async () => {
    api = await ApiServer.listen({
      socketPath: sock,
      bus,
      status: () => ({}),
      health: () => ({ pid: process.pid }),
      encode: (ev) => JSON.stringify(ev),
      makeFilter: () => () => true,
      clientMaxEvents: 50,
      slowClientGraceMs: 300,
    });
  });

  after(async () => {
    for (const s of sockets) s.destroy();
    await api.close(100);
    rmSync(tmp, { recursive: true, force: true });
  });

  /** A raw client of /v1/events; resolves once the response headers are in. */
  function connect(): Promise<{ socket: net.Socket; body: () => string; closed: Promise<void> }> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(sock);
      sockets.push(socket);
      let text = '';
      let headersDone = false;
      const closed = new Promise<void>((r) => socket.on('close', () => r()));
      socket.setEncoding('utf8');
      socket.on('error', () => {});
      socket.on('connect', () => socket.write('GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n'));
      socket.on('data', (d: string) => {
        text += d;
        if (!headersDone && text.includes('\r\n\r\n')) {
          headersDone = true;
          if (!text.startsWith('HTTP/1.1 200')) reject(new Error(text));
          resolve({ socket, body: () => text.slice(text.indexOf('\r\n\r\n') + 4), closed });
        }
      });
    });
  }

  it('makes the socket root-only', () => {
    assert.equal(execFileSync('stat', ['-c', '%a', sock], { encoding: 'utf8' }).trim(), '600');
  });

  it('drops for the slow client only, counts it, and disconnects it when it stays behind', async () => {
    const slow = await connect();
    const fast = await connect();
    await waitFor('two clients', () => api.clientCount === 2 || undefined);
    slow.socket.pause(); // stops reading: the kernel buffers fill, then res.write says no

    // each stream's socket got the large send buffer (the kernel keeps twice what was asked)
    const sndbufs = [
      ...execFileSync('ss', ['-x', '-m', 'src', sock], { encoding: 'utf8' }).matchAll(/tb(\d+)/g),
    ].map((m) => Number(m[1]));
    assert.equal(sndbufs.length, 2, 'the two streams');
    assert.ok(
      sndbufs.every((b) => b >= 2 * 4 * 1024 * 1024),
      `send buffers ${sndbufs.join(', ')}`,
    );

    const pad = 'x'.repeat(48 * 1024);
    let seq = 0;
    const total = 400; // 19 MB: far more than the socket buffers hold (8 MiB each)
    while (seq < total) {
      bus.publish(Array.from({ length: 20 }, () => ({ seq: seq++, pad })));
      await new Promise((r) => setTimeout(r, 15));
    }
    await waitFor(
      'the slow client to be disconnected',
      () => api.clientsDisconnected === 1 || undefined,
      5000,
    );
    assert.ok(bus.dropped('api') > 0, 'drops are counted');
    assert.equal(api.clientCount, 1, 'the fast client stays');

    // the fast client got every event, in order, while the slow one was stuck
    const got = await waitFor('all events at the fast client', () => {
      const seqs = fast
        .body()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => (JSON.parse(l) as { seq: number }).seq);
      return seqs.length === total ? seqs : undefined;
    });
    assert.deepEqual(
      got,
      Array.from({ length: total }, (_, i) => i),
    );
    // the slow client finds its connection closed once it reads again
    slow.socket.resume();
    await slow.closed;
  });
});

describe('API event streams with filters side by side', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'osprey-api-test-'));
  const sock = path.join(tmp, 'api.sock');
  type Ev = { seq: number; kind: string };
  const bus = new EventBus<Ev>();
  let api: ApiServer<Ev>;
  before(async () => {
    api = await ApiServer.listen({
      socketPath: sock,
      bus,
      status: () => ({}),
      health: () => ({ pid: process.pid }),
      encode: (ev) => JSON.stringify(ev),
      makeFilter: (f) => (ev) => !f.eventTypes || f.eventTypes.includes(ev.kind),
    });
  });
  after(async () => {
    await api.close(100);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('gives each client its own events, whether or not clients share their batches', async () => {
    const kinds = ['a', 'b', 'c'];
    const clients = await Promise.all(
      // two filters whose batches start with the same event and are as long: a,b and a,c
      ['', '', '?types=a,b', '?types=a,c', '?types=b'].map(async (q) => {
        const s = await openStream(sock, `/v1/events${q}`);
        assert.equal(s.status, 200);
        const got: Ev[] = [];
        const done = s.pipe(lineSink((l) => got.push(JSON.parse(l) as Ev)));
        return { q, s, got, done };
      }),
    );
    await waitFor('five clients', () => api.clientCount === 5 || undefined);
    let seq = 0;
    for (let round = 0; round < 50; round++) {
      bus.publish(
        Array.from({ length: 3 * (1 + (round % 3)) }, () => {
          const i = seq++;
          return { seq: i, kind: kinds[i % 3]! };
        }),
      );
      if (round % 10 === 0) await new Promise((r) => setTimeout(r, 15));
    }
    const want = (q: string) =>
      Array.from({ length: seq }, (_, i) => ({ seq: i, kind: kinds[i % 3]! })).filter(
        (e) => q === '' || q.slice('?types='.length).split(',').includes(e.kind),
      );
    for (const c of clients) {
      await waitFor(`the events of client "${c.q}"`, () => c.got.length >= want(c.q).length || undefined);
      assert.deepEqual(c.got, want(c.q), `client "${c.q}"`);
      c.s.close();
      await c.done;
    }
  });
});
