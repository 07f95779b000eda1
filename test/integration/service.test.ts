/**
 * The agent as a service, against the real kernel, scoped to a cgroup this
 * test creates: history from the event store (across a restart), process
 * trees, stream filters, a slow API client, metrics over HTTP, the TCP API
 * and its token, the OpenAPI document, a corrupted store, and the export
 * file's rotation, compression, field filters, redaction and rate limit.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { compareRoutes, documentedRoutes, type OpenApiDocument } from '../../src/agent/openapi.js';
import { type Json, request } from '../lib/api.js';
import { openatPrefixPolicyText } from '../lib/policies.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const OSPREY = path.join(repo, 'bin/osprey');

function cgroup2Root(): string {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (post?.startsWith('cgroup2 ')) return pre!.split(' ')[4]!;
  }
  throw new Error('no cgroup v2 hierarchy is mounted');
}

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
  ms = 10_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A live NDJSON stream of the API, collecting its events. */
class Stream {
  events: Json[] = [];
  status = 0;
  private req: http.ClientRequest;
  constructor(socketPath: string, p: string) {
    let rest = '';
    this.req = http.get({ socketPath, path: p, agent: false }, (res) => {
      this.status = res.statusCode ?? 0;
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        rest += c;
        const lines = rest.split('\n');
        rest = lines.pop()!;
        for (const l of lines) if (l.trim()) this.events.push(JSON.parse(l) as Json);
      });
    });
    this.req.on('error', () => undefined);
  }
  close(): void {
    this.req.destroy();
  }
}

const payload = (ev: Json): [string, Json] => {
  const k = Object.keys(ev).find((x) => x !== 'node_name' && x !== 'time')!;
  return [k, ev[k] as Json];
};

describe('the agent as a service', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'osprey-service-test-'));
  const cg = path.join(cgroup2Root(), `osprey-service-test-${process.pid}-${Date.now()}`);
  const storePath = path.join(tmp, 'store', 'events.db');
  const tokenFile = path.join(tmp, 'token');
  const children: Child[] = [];
  const spawnChild = (cmd: string, args: string[]) => {
    const c = new Child(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    children.push(c);
    return c;
  };

  /** Run a shell script inside the test cgroup; resolves with its exit code. */
  const inCgroup = async (script: string): Promise<number | null> => {
    const c = spawnChild('/bin/sh', ['-c', `echo $$ > ${cg}/cgroup.procs; ${script}`]);
    const code = await c.exited;
    assert.equal(code, 0, c.stderr);
    return code;
  };

  interface Agent {
    child: Child;
    sock: string;
    status: () => Promise<Json>;
    stop: () => Promise<number | null>;
  }
  let n = 0;
  const startAgent = async (args: string[]): Promise<Agent> => {
    const sock = path.join(tmp, `agent-${++n}.sock`);
    const child = spawnChild(OSPREY, [
      'agent',
      '--cgroup',
      cg,
      '--api-socket',
      sock,
      '--state-dir',
      path.join(tmp, `state-${n}`),
      '--no-export-stdout',
      '--no-seed',
      '--node-name',
      'service-test',
      '--metrics-address',
      '127.0.0.1:0',
      ...args,
    ]);
    await waitFor('the agent to be ready', () => child.stderr.includes('ready:') || undefined, 20_000).catch(
      (err: Error) => {
        throw new Error(`${err.message}; agent stderr: ${child.stderr}`);
      },
    );
    return {
      child,
      sock,
      status: async () => (await request({ socketPath: sock }, 'GET', '/v1/status')).json(),
      stop: async () => {
        child.proc.kill('SIGTERM');
        return child.exited;
      },
    };
  };

  before(() => {
    mkdirSync(cg);
  });

  after(async () => {
    // agents stop cleanly (programs detached, socket removed); anything left is killed
    for (const c of children) c.proc.kill('SIGTERM');
    const all = Promise.all(children.map((c) => c.exited));
    await Promise.race([all, new Promise((r) => setTimeout(r, 8000))]);
    for (const c of children) c.proc.kill('SIGKILL');
    await all;
    for (let i = 0; i < 40 && existsSync(cg); i++) {
      try {
        rmdirSync(cg);
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    rmSync(tmp, { recursive: true, force: true });
  });

  describe('with the event store, metrics and the TCP API', () => {
    let agent: Agent;
    let treeExecIds: { parent: string; child: string } | undefined;

    before(async () => {
      agent = await startAgent([
        // the metrics test reads the programs' run counts
        '--bpf-stats',
        '--store-path',
        storePath,
        '--export-file',
        path.join(tmp, 'a', 'events.log'),
        '--api-address',
        '127.0.0.1:0',
        '--api-token-file',
        tokenFile,
        // the slow-client test floods past this
        '--api-client-buffer-mb',
        '8',
      ]);
    });

    it('filters the live stream with Tetragon allow/deny lists on the server', async () => {
      const allow = encodeURIComponent('{"binary_regex":["^/usr/bin/echo$"]}');
      const deny = encodeURIComponent('[{"event_set":["PROCESS_EXIT"]}]');
      const filtered = new Stream(agent.sock, `/v1/events?allow=${allow}&deny=${deny}`);
      const all = new Stream(agent.sock, '/v1/events');
      try {
        await waitFor('two stream clients', async () =>
          (await agent.status()).api.clients >= 2 ? true : undefined,
        );
        await inCgroup('/bin/echo filter-marker >/dev/null; /bin/true filter-marker');
        await waitFor(
          'the exit of true on the unfiltered stream',
          () =>
            all.events.some((e) => {
              const [k, p] = payload(e);
              return k === 'process_exit' && p.process?.binary === '/usr/bin/true';
            }) || undefined,
        );
        const kinds = filtered.events.map((e) => `${payload(e)[0]} ${payload(e)[1].process?.binary}`);
        assert.deepEqual(kinds, ['process_exec /usr/bin/echo']);
        const bad = await request(
          { socketPath: agent.sock },
          'GET',
          `/v1/events?allow=${encodeURIComponent('{"binary_regexp":["x"]}')}`,
        );
        assert.equal(bad.status, 400);
        assert.match(bad.json().error, /allow filter line 1: binary_regexp: unknown filter field/);
      } finally {
        filtered.close();
        all.close();
      }
    });

    it('answers history queries and shows a process with its ancestors, children and events', async () => {
      await inCgroup('exec /bin/sh -c "/bin/true tree-child-marker; exit 0"');
      const history = await waitFor('the tree in the store', async () => {
        const a = await request(
          { socketPath: agent.sock },
          'GET',
          `/v1/events/history?since=10m&type=process_exec&binary=${encodeURIComponent('^/usr/bin/(true|dash|sh|bash)$')}`,
        );
        assert.equal(a.status, 200, a.body);
        const evs = a.json().events as Json[];
        const child = evs.find((e) => e.process_exec.process.arguments === 'tree-child-marker');
        return child ? evs : undefined;
      });
      const child = history.find((e) => e.process_exec.process.arguments === 'tree-child-marker')!;
      const parentId = child.process_exec.process.parent_exec_id as string;
      const childId = child.process_exec.process.exec_id as string;
      treeExecIds = { parent: parentId, child: childId };
      const tree = await waitFor('the exit of the child in the store', async () => {
        const a = await request(
          { socketPath: agent.sock },
          'GET',
          `/v1/processes/${encodeURIComponent(childId)}`,
        );
        assert.equal(a.status, 200, a.body);
        const t = a.json();
        return (t.events as Json[]).some((e) => e.process_exit) ? t : undefined;
      });
      assert.equal(tree.process.exec_id, childId);
      assert.equal(tree.process.binary, '/usr/bin/true');
      assert.equal(tree.ancestors[0].exec_id, parentId);
      assert.match(tree.ancestors[0].binary, /\/(dash|sh|bash)$/);
      assert.deepEqual(
        (tree.events as Json[]).map((e) => payload(e)[0]),
        ['process_exec', 'process_exit'],
      );
      const up = (
        await request({ socketPath: agent.sock }, 'GET', `/v1/processes/${encodeURIComponent(parentId)}`)
      ).json();
      assert.deepEqual(
        (up.children as Json[]).map((c) => c.exec_id),
        [childId],
      );
      const text = spawnChild(OSPREY, ['process', parentId, '--socket', agent.sock]);
      assert.equal(await text.exited, 0, text.stderr);
      assert.match(text.stdout, /\* \/usr\/bin\/(dash|sh|bash) -c/);
      assert.match(text.stdout, /└─ \/usr\/bin\/true tree-child-marker {2}\(pid \d+, exited 0\)/);
      const missing = await request(
        { socketPath: agent.sock },
        'GET',
        '/v1/processes/bm90LWEtcHJvY2Vzcw%3D%3D',
      );
      assert.equal(missing.status, 404);
      const badSince = await request({ socketPath: agent.sock }, 'GET', '/v1/events/history?since=yesterday');
      assert.equal(badSince.status, 400);
      assert.match(badSince.json().error, /since "yesterday" is neither a duration/);
    });

    it('disconnects and counts a client that reads nothing, while another keeps receiving', async () => {
      // a raw client that sends its request and then never reads
      const slow = net.connect(agent.sock);
      slow.pause();
      await new Promise<void>((resolve) => slow.once('connect', () => resolve()));
      slow.write('GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n');
      slow.on('error', () => undefined);
      // the other client asks for small events only, interleaved with the flood
      const reader = new Stream(agent.sock, '/v1/events?types=process_exec&process=small-marker');
      try {
        await waitFor('two stream clients', async () =>
          (await agent.status()).api.clients >= 2 ? true : undefined,
        );
        // 2000 processes with 4000 bytes of arguments each: ~20 MB of events, more than the
        // slow client's 8 MiB buffer (--api-client-buffer-mb) and the socket buffers hold; every 10th, a small one
        const arg = 'x'.repeat(4000);
        const count = 200;
        await inCgroup(
          `i=0; while [ $i -lt ${count * 10} ]; do /bin/true slow-marker ${arg}; ` +
            '[ $((i % 10)) -eq 0 ] && /bin/true small-marker; i=$((i+1)); done; true',
        );
        const s = await waitFor(
          'the slow client to be disconnected',
          async () => {
            const st = await agent.status();
            return st.drops.api_clients_disconnected >= 1 ? st : undefined;
          },
          20_000,
        );
        assert.ok(s.drops.api_slow_client_dropped > 0, 'the slow client had events dropped');
        await waitFor(`all ${count} small execs on the reading client`, () =>
          reader.events.length >= count ? true : undefined,
        ).catch(async (err: Error) => {
          throw new Error(
            `${err.message}: got ${reader.events.length}; drops ${JSON.stringify((await agent.status()).drops)}`,
          );
        });
        assert.equal(reader.events.length, count);
        assert.equal((await agent.status()).api.clients, 1, 'the reading client is still connected');
        assert.equal(s.drops.bus_queue_overflow, 0, 'the exporters lost nothing');
      } finally {
        slow.destroy();
        reader.close();
      }
    });

    it('serves Prometheus metrics that move as events happen', async () => {
      const st = await agent.status();
      const url = st.metrics.url as string;
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const scrape = async () => {
        const u = new URL(url);
        const a = await request({ host: u.hostname, port: Number(u.port) }, 'GET', '/metrics');
        assert.equal(a.status, 200);
        return a.body;
      };
      const value = (text: string, re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
      const execs = /^osprey_events_total\{type="process_exec",policy="",binary="\/usr\/bin\/echo"\} (\d+)$/m;
      const before = value(await scrape(), execs);
      await inCgroup('/bin/echo metrics-marker >/dev/null; /bin/echo metrics-marker >/dev/null');
      const text = await waitFor('the execs counted', async () => {
        const t = await scrape();
        return value(t, execs) >= before + 2 ? t : undefined;
      });
      assert.match(text, /^osprey_event_drops_total\{stage="api_slow_client_dropped"\} [1-9]\d*$/m);
      assert.match(text, /^osprey_api_clients_disconnected_total [1-9]\d*$/m);
      assert.match(text, /^osprey_store_size_bytes [1-9]\d*$/m);
      assert.match(text, /^osprey_store_written_total [1-9]\d*$/m);
      assert.match(text, /^osprey_api_clients \d+$/m);
      assert.match(text, /^osprey_process_cache_size [1-9]\d*$/m);
      assert.match(text, /^osprey_bpf_program_runs_total\{program="osprey_exec",hook="[^"]+"\} [1-9]\d*$/m);
      assert.match(text, /^osprey_queue_depth\{queue="store"\} \d+$/m);
      assert.match(text, /^osprey_ringbuf_pending_bytes\{ring="process"\} \d+$/m);
    });

    it('refuses a policy change over TCP without the token and takes it with the token', async () => {
      const st = await agent.status();
      const [host, port] = (st.api.tcp.address as string).split(':') as [string, string];
      const tcp = { host, port: Number(port) };
      const token = readFileSync(tokenFile, 'utf8').trim();
      assert.ok(token.length >= 32);
      const yaml = openatPrefixPolicyText('tcp-token-test', ['/tmp/osprey-tcp-token-test']);
      const headers = { 'content-type': 'application/yaml' };
      const refused = await request(tcp, 'POST', '/v1/policies', { body: yaml, headers });
      assert.equal(refused.status, 401);
      assert.match(refused.json().error, /needs "Authorization: Bearer TOKEN"/);
      const wrong = await request(tcp, 'POST', '/v1/policies', {
        body: yaml,
        headers: { ...headers, authorization: `Bearer ${'0'.repeat(token.length)}` },
      });
      assert.equal(wrong.status, 401);
      assert.equal(
        (await request(tcp, 'GET', '/v1/policies/tcp-token-test')).status,
        404,
        'nothing was added',
      );
      const auth = { authorization: `Bearer ${token}` };
      const added = await request(tcp, 'POST', '/v1/policies', {
        body: yaml,
        headers: { ...headers, ...auth },
      });
      assert.equal(added.status, 201, added.body);
      assert.equal(added.json().state, 'enabled');
      // reads need no token
      assert.equal((await request(tcp, 'GET', '/v1/policies/tcp-token-test')).status, 200);
      assert.equal((await request(tcp, 'DELETE', '/v1/policies/tcp-token-test')).status, 401);
      const deleted = await request(tcp, 'DELETE', '/v1/policies/tcp-token-test', { headers: auth });
      assert.equal(deleted.status, 200, deleted.body);
      // a name that is not this host's is refused (DNS rebinding)
      const rebound = await request(tcp, 'GET', '/v1/status', { headers: { host: 'attacker.example:80' } });
      assert.equal(rebound.status, 421);
      assert.ok((await agent.status()).api.tcp.unauthorized >= 3);
    });

    it('serves an OpenAPI document that lists every route the server registers', async () => {
      const a = await request({ socketPath: agent.sock }, 'GET', '/v1/openapi.json');
      assert.equal(a.status, 200);
      const doc = a.json() as OpenApiDocument;
      assert.equal(doc.openapi, '3.0.3');
      const routes = (await agent.status()).api.routes as string[];
      assert.ok(routes.includes('GET /v1/events/history'));
      assert.deepEqual(compareRoutes(routes, doc), { undocumented: [], unregistered: [] });
      assert.deepEqual(documentedRoutes(doc), [...routes].sort());
      // every $ref resolves
      for (const m of a.body.matchAll(/"\$ref":"#\/components\/schemas\/([A-Za-z]+)"/g)) {
        assert.ok(doc.components.schemas[m[1]!], `schema ${m[1]} is defined`);
      }
      assert.doesNotMatch(agent.child.stderr, /OpenAPI document and the API disagree/);
    });

    it('answers history from before a restart', async () => {
      assert.ok(treeExecIds, 'the tree test ran');
      assert.equal(await agent.stop(), 0, agent.child.stderr);
      agent = await startAgent(['--store-path', storePath, '--no-export-file']);
      const a = await request(
        { socketPath: agent.sock },
        'GET',
        `/v1/events/history?since=1h&binary=${encodeURIComponent('^/usr/bin/true$')}&type=process_exec&limit=5`,
      );
      assert.equal(a.status, 200, a.body);
      const h = a.json();
      assert.equal(h.count, 5);
      assert.equal(h.truncated, true, 'the slow-client test stored 2000 of them');
      // the same as JSON lines, what it holds in the headers
      const lines = await request(
        { socketPath: agent.sock },
        'GET',
        `/v1/events/history?since=1h&binary=${encodeURIComponent('^/usr/bin/true$')}&type=process_exec&limit=5&format=lines`,
      );
      assert.equal(lines.status, 200, lines.body);
      assert.match(String(lines.headers['content-type']), /^application\/x-ndjson/);
      assert.deepEqual(
        lines.body
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Json),
        h.events,
      );
      assert.deepEqual(
        [
          lines.headers['x-osprey-count'],
          lines.headers['x-osprey-limit'],
          lines.headers['x-osprey-truncated'],
        ],
        ['5', '5', 'true'],
      );
      // the CLI asks for lines; a truncated answer is said on stderr with what to do
      const five = spawnChild(OSPREY, [
        'events',
        '--since',
        '1h',
        '--binary',
        '^/usr/bin/true$',
        '--type',
        'process_exec',
        '--limit',
        '5',
        '-o',
        'compact',
        '--socket',
        agent.sock,
      ]);
      assert.equal(await five.exited, 0, five.stderr);
      const shown = five.stdout.split('\n').filter(Boolean);
      assert.equal(shown.length, 5, five.stdout);
      for (const l of shown) assert.match(l, /^🚀 process \/usr\/bin\/true/);
      assert.match(five.stderr, /the newest 5 matching events are shown; older ones exist/);
      const badFormat = await request({ socketPath: agent.sock }, 'GET', '/v1/events/history?format=xml');
      assert.equal(badFormat.status, 400);
      assert.match(badFormat.json().error, /format=xml: give json \(the default\) or lines/);
      const cli = spawnChild(OSPREY, [
        'events',
        '--since',
        '1h',
        '--binary',
        '^/usr/bin/true$',
        '--process',
        'tree-child-marker',
        '--limit',
        '100000',
        '-o',
        'json',
        '--socket',
        agent.sock,
      ]);
      assert.equal(await cli.exited, 0, cli.stderr);
      const evs = cli.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Json);
      assert.deepEqual(
        evs.map((e) => `${payload(e)[0]} ${payload(e)[1].process.exec_id}`),
        [`process_exec ${treeExecIds.child}`, `process_exit ${treeExecIds.child}`],
      );
      const tree = await request(
        { socketPath: agent.sock },
        'GET',
        `/v1/processes/${encodeURIComponent(treeExecIds.child)}`,
      );
      assert.equal(tree.json().ancestors[0].exec_id, treeExecIds.parent);
      assert.equal(await agent.stop(), 0, agent.child.stderr);
    });
  });

  describe('with a corrupted store and export options', () => {
    const badStore = path.join(tmp, 'bad', 'events.db');
    const exportDir = path.join(tmp, 'export');
    const exportFile = path.join(exportDir, 'events.log');
    let agent: Agent;
    let stream: Stream;

    before(async () => {
      mkdirSync(path.dirname(badStore), { recursive: true });
      writeFileSync(badStore, Buffer.alloc(64 * 1024, 'this is not a database '));
      agent = await startAgent([
        '--store-path',
        badStore,
        '--export-file',
        exportFile,
        '--export-file-rotation-interval',
        '1s',
        '--export-file-compress',
        '--field-filters',
        '{"event_set":["PROCESS_EXEC"],"fields":"process.binary,process.arguments,process.exec_id","action":"INCLUDE"}',
        '--redaction-filters',
        '{"redact":["--password[= ](\\\\S+)"]}',
        '--export-rate-limit',
        '20',
        '--export-file-max-backups',
        '50',
      ]);
      stream = new Stream(agent.sock, '/v1/events?types=process_exec');
      await waitFor('the stream client', async () =>
        (await agent.status()).api.clients >= 1 ? true : undefined,
      );
    });

    after(() => stream?.close());

    it('says clearly that the store cannot be used, and keeps streaming without it', async () => {
      assert.match(agent.child.stderr, /warning: event store .*events\.db is not a SQLite database/);
      assert.match(agent.child.stderr, /running without the event store/);
      const st = await agent.status();
      assert.equal(st.store.enabled, false);
      assert.match(st.store.error, /is not a SQLite database .*move it aside or choose --store-path/);
      const h = await request({ socketPath: agent.sock }, 'GET', '/v1/events/history?since=1h');
      assert.equal(h.status, 503);
      assert.match(h.json().error, /the event store is not available: .*not a SQLite database/);
      await inCgroup('/bin/echo still-streaming >/dev/null');
      await waitFor(
        'the exec on the stream',
        () => stream.events.some((e) => e.process_exec?.process.arguments === 'still-streaming') || undefined,
      );
    });

    it('redacts before the bus, filters fields, rotates by interval with gzip, and reports its rate limit', async () => {
      await inCgroup('/bin/echo --password=hunter2 --user ana >/dev/null');
      // the live stream already has it redacted: no sink sees the secret
      const live = await waitFor('the redacted exec on the stream', () =>
        stream.events.find((e) => /--user ana/.test(e.process_exec?.process.arguments ?? '')),
      );
      assert.equal(live.process_exec.process.arguments, '--password=***** --user ana');
      // past the file's limit of 20 events a minute (the stream is not limited)
      await inCgroup('i=0; while [ $i -lt 40 ]; do /bin/true rate-marker; i=$((i+1)); done');
      // let the interval rotate the file and gzip it
      await waitFor(
        'a rotated, compressed export file',
        () => readdirSync(exportDir).some((f) => f.endsWith('.gz')) || undefined,
        5000,
      );
      assert.equal(await agent.stop(), 0, agent.child.stderr);
      assert.equal(
        stream.events.filter((e) => e.process_exec.process.arguments === 'rate-marker').length,
        40,
      );

      const files = readdirSync(exportDir);
      assert.ok(!files.some((f) => /\.\d+$/.test(f)), `no uncompressed backups: ${files.join(' ')}`);
      let text = existsSync(exportFile) ? readFileSync(exportFile, 'utf8') : '';
      for (const f of files
        .filter((x) => x.endsWith('.gz'))
        .sort()
        .reverse()) {
        text += gunzipSync(readFileSync(path.join(exportDir, f))).toString('utf8');
      }
      assert.doesNotMatch(text, /hunter2/);
      const evs = text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Json);
      const execs = evs.filter((e) => e.process_exec);
      assert.ok(execs.length > 0);
      for (const e of execs) {
        assert.deepEqual(Object.keys(e.process_exec).sort(), ['process']);
        for (const k of Object.keys(e.process_exec.process)) {
          assert.ok(['binary', 'arguments', 'exec_id'].includes(k), `field ${k} was filtered out`);
        }
      }
      assert.ok(
        execs.some((e) => e.process_exec.process.arguments === '--password=***** --user ana'),
        'the redacted exec is in the file',
      );
      // exits are not in the field filter's event_set: whole
      const exit = evs.find((e) => e.process_exit);
      assert.ok(exit?.process_exit.process.pid > 0);
      const limited = evs.filter((e) => !e.rate_limit_info);
      // 20 at once, then one every 3 s
      assert.ok(limited.length <= 25, `${limited.length} events written, the limit is 20 a minute`);
      const infos = evs.filter((e) => e.rate_limit_info);
      const dropped = infos.reduce(
        (a, e) => a + Number(e.rate_limit_info.number_of_dropped_process_events),
        0,
      );
      assert.ok(infos.length >= 1, 'a rate_limit_info event was written');
      assert.ok(dropped >= 40, `${dropped} events reported dropped`);
      assert.equal(infos.at(-1)!.node_name, 'service-test');
    });
  });
});
