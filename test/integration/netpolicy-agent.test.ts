/**
 * Network policy as a feature of the running agent, end to end: a real
 * agent (its own socket, state directory and export file), workloads started
 * with `osprey run`, CiliumNetworkPolicies loaded with `osprey policy add`,
 * flows read with `osprey flows`, and servers in a network namespace test
 * host this test creates (10.248.60.0/24) and removes, with the workload
 * cgroups, whatever happens.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { cgroup2Root } from '../../src/kernel/mounts.js';
import { makeTestNet, type Server, startServer, type TestNet } from '../lib/netns.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const OSPREY = path.join(repo, 'bin/osprey');
const NET = 60;

/**
 * The workload's application. `once HOST PORT`: connect, send "hi", print
 * what happened as JSON ({ok, reply} or {ok: false, code}) and exit 0 or 1.
 * `stream HOST PORT`: keep one connection, send a byte every 30 ms, print
 * {echoes: N} as echoes come back.
 */
const CLIENT_JS = `
import net from 'node:net';
const [mode, host, port] = process.argv.slice(2);
const print = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const c = net.connect({ host, port: Number(port) });
if (mode === 'once') {
  const done = (r) => { print(r); process.exit(r.ok ? 0 : 1); };
  setTimeout(() => done({ ok: false, code: 'TIMEOUT' }), 3000);
  c.on('connect', () => c.write('hi'));
  c.on('data', (d) => { c.end(); done({ ok: true, reply: String(d) }); });
  c.on('error', (e) => done({ ok: false, code: e.code }));
} else {
  let echoes = 0;
  c.on('connect', () => { print({ connected: true }); setInterval(() => c.write('x'), 30); });
  c.on('data', (d) => { echoes += d.length / 6; print({ echoes }); });
  c.on('error', (e) => print({ error: e.code }));
}
`;

interface FlowLine {
  flow: {
    verdict: string;
    IP: { source: string; destination: string };
    l4: { TCP?: { source_port: number; destination_port: number } };
    source: { labels: string[]; workload?: string };
    destination: { labels: string[] };
    egress_allowed_by?: { name: string; rule?: string; default_deny?: true }[];
    egress_denied_by?: { name: string; rule?: string; default_deny?: true }[];
    osprey: { event: string };
  };
  node_name: string;
  time: string;
}

/** A child whose output is kept. */
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

  jsonLines<T>(): T[] {
    return this.stdout
      .split('\n')
      .filter((l) => l.trim().startsWith('{'))
      .map((l) => JSON.parse(l) as T);
  }
}

async function waitFor<T>(what: string, f: () => T | undefined | false, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('network policy in the agent: osprey run, policy add, flows', { timeout: 240_000 }, () => {
  const tmp = mkdtempSync('/tmp/osprey-netpolicy-agent-');
  chmodSync(tmp, 0o755);
  const sock = path.join(tmp, 'run', 'osprey.sock');
  const stateDir = path.join(tmp, 'state');
  const exportFile = path.join(tmp, 'events.log');
  const clientJs = path.join(tmp, 'client.mjs');
  const workloadCg = path.join(cgroup2Root(), `osprey-test-npagent-${process.pid}`);
  const children: Child[] = [];
  const servers: Server[] = [];
  let net: TestNet;
  let agent: Child | undefined;
  let flows: Child;

  const spawnChild = (args: string[], env?: NodeJS.ProcessEnv) => {
    const c = new Child(spawn(OSPREY, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env } : {}) }));
    children.push(c);
    return c;
  };
  const cli = async (...args: string[]) => {
    const c = spawnChild([...args, '--socket', sock]);
    await c.exited;
    return c;
  };
  /** `osprey run` with the client, to completion. */
  const runClient = async (labels: string[], port: number, name?: string) => {
    const c = spawnChild([
      'run',
      '--socket',
      sock,
      ...labels.flatMap((l) => ['--label', l]),
      ...(name ? ['--name', name] : []),
      '--',
      process.execPath,
      clientJs,
      'once',
      net.nsV4,
      String(port),
    ]);
    await c.exited;
    const out = c.jsonLines<{ ok: boolean; reply?: string; code?: string }>()[0];
    assert.ok(out, `osprey run printed the client's result; stderr: ${c.stderr}`);
    return { ...out, exit: c.code };
  };
  const policyFile = (name: string, text: string) => {
    const f = path.join(tmp, name);
    writeFileSync(f, text);
    return f;
  };
  const startAgent = async (extra: string[] = []) => {
    const a = spawnChild([
      'agent',
      '--api-socket',
      sock,
      '--state-dir',
      stateDir,
      '--no-export-stdout',
      '--export-file',
      exportFile,
      '--node-name',
      'np-agent-test',
      '--cgroup',
      workloadCg,
      '--workload-cgroup',
      workloadCg,
      '--no-metrics-address',
      '--no-ui-address',
      '--store-path',
      path.join(stateDir, 'events.db'),
      ...extra,
    ]);
    await waitFor('the agent to be ready', () => a.stderr.includes('ready:') || a.code !== null, 30_000);
    assert.ok(a.stderr.includes('ready:'), `the agent started; its stderr: ${a.stderr}`);
    return a;
  };
  const stopAgent = async () => {
    if (!agent) return;
    agent.proc.kill('SIGTERM');
    await agent.exited;
    agent = undefined;
  };
  const flowLines = () => flows.jsonLines<FlowLine>();
  const waitFlow = (what: string, pred: (f: FlowLine['flow']) => boolean) =>
    waitFor(`flow: ${what}`, () => flowLines().find((l) => pred(l.flow)), 8000).catch((err) => {
      throw new Error(
        `${(err as Error).message}; osprey flows printed:\n${flows.stdout.slice(-3000)}\n${flows.stderr}`,
      );
    });
  const status = async () => {
    const r = await cli('status', '-o', 'json');
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as {
      network: { generation: string; datapath: { dropped: number; audited: number; revoked: number } };
    };
  };

  const WEB_EGRESS = () => `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: web-egress
spec:
  endpointSelector:
    matchLabels: {app: web}
  egress:
    - toCIDR: [${net.nsV4}/32]
      toPorts:
        - ports: [{port: "8080", protocol: TCP}]
  egressDeny:
    - toCIDR: [${net.nsV4}/32]
      toPorts:
        - ports: [{port: "8081", protocol: TCP}]
`;

  before(async () => {
    writeFileSync(clientJs, CLIENT_JS);
    mkdirSync(workloadCg, { recursive: true });
    net = makeTestNet(NET);
    for (const port of [8080, 8081, 8090])
      servers.push(await startServer({ netns: net.ns }, 'tcp', net.nsV4, port));
    agent = await startAgent();
    flows = spawnChild(['flows', '-o', 'json', '--label', 'app=web', '--socket', sock]);
    // the stream is open once the agent counts it as an API client
    await sleep(500);
  });

  after(async () => {
    try {
      await stopAgent();
    } finally {
      for (const c of children) if (c.code === null && c.signal === null) c.proc.kill('SIGKILL');
      for (const s of servers) s.stop();
      net?.remove();
      // workloads left by a failed test: kill what runs in them, then remove them
      for (const d of existsSync(workloadCg) ? readdirSync(workloadCg, { withFileTypes: true }) : []) {
        if (!d.isDirectory()) continue;
        const dir = path.join(workloadCg, d.name);
        try {
          writeFileSync(path.join(dir, 'cgroup.kill'), '1');
        } catch {}
        for (let i = 0; i < 50; i++) {
          try {
            rmdirSync(dir);
            break;
          } catch {
            await sleep(50);
          }
        }
      }
      try {
        rmdirSync(workloadCg);
      } catch {}
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it("osprey run: allowed egress works, the exit status is the command's, process events carry the labels", async () => {
    const r = await runClient(['app=web', 'tier=front'], 8080, 'web-first');
    assert.deepEqual(r, { ok: true, reply: 'echo:hi', exit: 0 });

    const sh = spawnChild(['run', '--socket', sock, '--label', 'app=web', '--', '/bin/sh', '-c', 'exit 7']);
    await sh.exited;
    assert.equal(sh.code, 7, sh.stderr);
    // bin/osprey's own malloc setting stays with it; NODE_EXTRA_CA_CERTS,
    // which bin/osprey keeps from Node, reaches the command as it was given
    const caFile = path.join(tmp, 'extra-ca.pem');
    const env = spawnChild(['run', '--socket', sock, '--label', 'app=web', '--', '/usr/bin/env'], {
      ...process.env,
      NODE_EXTRA_CA_CERTS: caFile,
    });
    await env.exited;
    assert.equal(env.code, 0, env.stderr);
    assert.match(env.stdout, /^PATH=/m);
    assert.doesNotMatch(env.stdout, /MALLOC_ARENA_MAX/);
    assert.match(env.stdout, new RegExp(`^NODE_EXTRA_CA_CERTS=${caFile}$`, 'm'));
    assert.doesNotMatch(env.stdout, /OSPREY_NODE_EXTRA_CA_CERTS/);
    const { NODE_EXTRA_CA_CERTS: _ca, ...without } = process.env;
    const envNoCa = spawnChild(
      ['run', '--socket', sock, '--label', 'app=web', '--', '/usr/bin/env'],
      without,
    );
    await envNoCa.exited;
    assert.equal(envNoCa.code, 0, envNoCa.stderr);
    assert.doesNotMatch(envNoCa.stdout, /NODE_EXTRA_CA_CERTS/);
    const missing = spawnChild(['run', '--socket', sock, '--label', 'app=web', '--', '/nonexistent/cmd']);
    await missing.exited;
    assert.equal(missing.code, 127, missing.stderr);
    assert.match(missing.stderr, /command not found/);

    // the client's exec is in the workload, with its labels
    const exec = await waitFor('the client exec in the export file', () =>
      readFileSync(exportFile, 'utf8')
        .split('\n')
        .filter((l) => l.includes('process_exec') && l.includes('client.mjs'))
        .map(
          (l) =>
            JSON.parse(l) as {
              process_exec: {
                process: {
                  arguments: string;
                  workload?: { cgroup_path: string; labels?: Record<string, string> };
                };
              };
            },
        )
        .find((e) => e.process_exec.process.arguments.includes('8080')),
    );
    assert.deepEqual(exec.process_exec.process.workload?.labels, { app: 'web', tier: 'front' });
    assert.match(exec.process_exec.process.workload?.cgroup_path ?? '', /\/web-first$/);

    // the agent removes a workload's cgroup once it is empty
    await waitFor('the emptied workloads to go', () => {
      const left = readdirSync(workloadCg, { withFileTypes: true }).filter((d) => d.isDirectory());
      return left.length === 0;
    });
    const list = await cli('workload', 'list', '-o', 'json');
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(JSON.parse(list.stdout), []);
    // commands that are gone before the agent looks: their workloads go too, not after the
    // 30-s grace for workloads nothing joined
    const quick = Array.from({ length: 8 }, () =>
      spawnChild(['run', '--socket', sock, '--label', 'app=quick', '--', '/bin/true']),
    );
    for (const q of quick) {
      await q.exited;
      assert.equal(q.code, 0, q.stderr);
    }
    await waitFor(
      'the quick workloads to go',
      () => readdirSync(workloadCg, { withFileTypes: true }).filter((d) => d.isDirectory()).length === 0,
      5000,
    );
  });

  it('a CiliumNetworkPolicy added with osprey policy add denies egress: EPERM, and osprey flows shows DROPPED with policy and rule', async () => {
    const add = await cli('policy', 'add', policyFile('web-egress.yaml', WEB_EGRESS()));
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /network policy "web-egress" added: enabled, enforce, 2 rules/);

    assert.deepEqual(await runClient(['app=web'], 8080), { ok: true, reply: 'echo:hi', exit: 0 });
    assert.deepEqual(await runClient(['app=web'], 8081), { ok: false, code: 'EPERM', exit: 1 });
    // no rule allows 8090: default deny in the egress direction
    assert.deepEqual(await runClient(['app=web'], 8090), { ok: false, code: 'EPERM', exit: 1 });
    // a workload the policy does not select is not affected
    assert.deepEqual(await runClient(['app=other'], 8081), { ok: true, reply: 'echo:hi', exit: 0 });

    const denied = await waitFlow(
      'DROPPED to 8081',
      (f) => f.verdict === 'DROPPED' && f.l4.TCP?.destination_port === 8081,
    );
    assert.deepEqual(denied.flow.egress_denied_by, [{ name: 'web-egress', rule: 'spec.egressDeny[0]' }]);
    assert.deepEqual(denied.flow.source.labels, ['app=web']);
    assert.equal(denied.flow.IP.destination, net.nsV4);
    assert.equal(denied.node_name, 'np-agent-test');
    const dflt = await waitFlow(
      'DROPPED to 8090',
      (f) => f.verdict === 'DROPPED' && f.l4.TCP?.destination_port === 8090,
    );
    assert.deepEqual(dflt.flow.egress_denied_by, [{ name: 'web-egress', default_deny: true }]);
    const allowed = await waitFlow(
      'FORWARDED to 8080 by web-egress',
      (f) =>
        f.verdict === 'FORWARDED' && f.l4.TCP?.destination_port === 8080 && f.egress_allowed_by !== undefined,
    );
    assert.deepEqual(allowed.flow.egress_allowed_by, [{ name: 'web-egress', rule: 'spec.egress[0]' }]);
    // --label app=web: the app=other client's flows are not in this stream
    assert.ok(flowLines().every((l) => l.flow.source.labels.includes('app=web')));

    // the same flows reached the export file; the compact view names policy and rule
    await sleep(300);
    const compact = spawn(OSPREY, ['flows', '-o', 'compact', '--verdict', 'DROPPED', '--port', '8081'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const cc = new Child(compact);
    compact.stdin?.end(readFileSync(exportFile));
    await cc.exited;
    assert.equal(cc.code, 0, cc.stderr);
    assert.match(
      cc.stdout,
      new RegExp(
        `:\\d+ \\(.*app=web\\) -> ${net.nsV4.replace(/\./g, '\\.')}:8081 \\(.*\\) TCP DROPPED web-egress/spec\\.egressDeny\\[0\\]`,
      ),
    );

    const list = await cli('policy', 'list', '-o', 'json');
    const p = (
      JSON.parse(list.stdout) as { name: string; kind: string; state: string; flows: { dropped: number } }[]
    ).find((x) => x.name === 'web-egress');
    assert.equal(p?.kind, 'CiliumNetworkPolicy');
    assert.equal(p?.state, 'enabled');
    assert.ok((p?.flows.dropped ?? 0) >= 2);
    assert.ok((await status()).network.datapath.dropped >= 2);
    const text = await cli('status');
    assert.match(text.stdout, /Network policy\n[\s\S]*datapath dropped/);
  });

  it("flows name the process that connected (osprey.exec_id); the process's history and --policy find them", async () => {
    const r = await runClient(['app=web'], 8080, 'web-proc');
    assert.deepEqual(r, { ok: true, reply: 'echo:hi', exit: 0 });
    type Line = {
      process_exec?: { process: { exec_id: string; pid: number; workload?: { cgroup_path: string } } };
    };
    const exec = await waitFor('the client exec in the export file', () =>
      readFileSync(exportFile, 'utf8')
        .split('\n')
        .filter((l) => l.includes('process_exec') && l.includes('web-proc'))
        .map((l) => (JSON.parse(l) as Line).process_exec?.process)
        .find((p) => p?.workload?.cgroup_path.endsWith('/web-proc')),
    );
    const execId = exec.exec_id;
    type Flow = { flow: FlowLine['flow'] & { osprey: { exec_id?: string; event: string; pid?: number } } };
    const ofProcess = () =>
      readFileSync(exportFile, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('{"flow"') && l.includes(execId))
        .map((l) => (JSON.parse(l) as Flow).flow);
    // the connect names it by pid; ESTABLISHED and CLOSED, posted outside the process, by its socket
    const mine = await waitFor("the connection's three flows", () => {
      const f = ofProcess();
      return f.length >= 3 ? f : undefined;
    });
    assert.deepEqual(
      mine.map((f) => f.osprey.event),
      ['NEW', 'ESTABLISHED', 'CLOSED'],
    );
    assert.ok(mine.every((f) => f.osprey.exec_id === execId && f.l4.TCP?.destination_port === 8080));
    assert.equal(mine[0]!.osprey.pid, exec.pid);
    assert.ok(mine.every((f) => f.egress_allowed_by?.[0]?.name === 'web-egress'));

    // the store keeps them under the process: osprey process shows its connections
    type Tree = { events: { flow?: { osprey: { event: string } } }[] };
    let tree: Tree | undefined;
    for (const end = Date.now() + 10_000; Date.now() < end; await sleep(100)) {
      const c = await cli('process', execId, '-o', 'json');
      if (c.code !== 0) continue;
      const t = JSON.parse(c.stdout) as Tree;
      if (t.events.filter((e) => e.flow).length >= 3) {
        tree = t;
        break;
      }
    }
    assert.ok(tree, 'osprey process shows the process with its three flows within 10 s');
    assert.deepEqual(
      tree.events
        .filter((e) => e.flow)
        .map((e) => e.flow!.osprey.event)
        .sort(),
      ['CLOSED', 'ESTABLISHED', 'NEW'],
    );
    const text = await cli('process', execId);
    assert.match(text.stdout, /🌐 flow .*:8080 .*TCP FORWARDED web-egress\/spec\.egress\[0\] ESTABLISHED/);
    // history by the deciding policy finds flows, allowed and denied
    const hist = await cli(
      'events',
      '--since',
      '10m',
      '--type',
      'flow',
      '--policy',
      'web-egress',
      '-o',
      'json',
    );
    assert.equal(hist.code, 0, hist.stderr);
    const found = hist.stdout
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as Flow).flow);
    assert.ok(found.some((f) => f.osprey.exec_id === execId));
    assert.ok(found.some((f) => f.verdict === 'DROPPED'));
    assert.ok(found.every((f) => (f.egress_allowed_by ?? f.egress_denied_by)?.[0]?.name === 'web-egress'));
  });

  it('a bad network policy via policy add prints file:line:field and changes nothing', async () => {
    const before = (await status()).network.generation;
    const bad = policyFile(
      'bad-net.yaml',
      `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: web-egress
spec:
  endpointSelector:
    matchLabels: {app: web}
  egress:
    - toCIDR: [10.300.0.1/33]
      toPorts:
        - ports: [{port: "99999", protocol: TCP}]
`,
    );
    const r = await cli('policy', 'add', bad);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(`${bad.replace(/[.]/g, '\\.')}:9:\\d+: spec\\.egress\\[0\\]\\.toCIDR\\[0\\]: `),
    );
    assert.match(
      r.stderr,
      /:11:\d+: spec\.egress\[0\]\.toPorts\[0\]\.ports\[0\]\.port: port 99999 is out of range/,
    );
    assert.equal((await status()).network.generation, before, 'the tables were not touched');
    assert.deepEqual(await runClient(['app=web'], 8081), { ok: false, code: 'EPERM', exit: 1 });
    assert.deepEqual(await runClient(['app=web'], 8080), { ok: true, reply: 'echo:hi', exit: 0 });
  });

  it('audit mode reports AUDIT and drops nothing; delete restores; set-mode enforces again', async () => {
    const del = await cli('policy', 'delete', 'web-egress');
    assert.equal(del.code, 0, del.stderr);
    assert.deepEqual(await runClient(['app=web'], 8081), { ok: true, reply: 'echo:hi', exit: 0 });
    assert.deepEqual(await runClient(['app=web'], 8090), { ok: true, reply: 'echo:hi', exit: 0 });

    const add = await cli('policy', 'add', '--mode', 'monitor', policyFile('web-egress.yaml', WEB_EGRESS()));
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /audit \(monitor\)/);
    const mark = flowLines().length;
    assert.deepEqual(await runClient(['app=web'], 8081), { ok: true, reply: 'echo:hi', exit: 0 });
    const audit = await waitFlow(
      'AUDIT to 8081',
      (f) => f.verdict === 'AUDIT' && f.l4.TCP?.destination_port === 8081 && f.osprey.event === 'NEW',
    );
    assert.deepEqual(audit.flow.egress_denied_by, [{ name: 'web-egress', rule: 'spec.egressDeny[0]' }]);
    assert.ok(
      flowLines()
        .slice(mark)
        .every((l) => l.flow.verdict !== 'DROPPED'),
      'nothing dropped in audit mode',
    );
    assert.ok((await status()).network.datapath.audited >= 1);

    const m = await cli('policy', 'set-mode', 'web-egress', 'enforce');
    assert.equal(m.code, 0, m.stderr);
    assert.deepEqual(await runClient(['app=web'], 8081), { ok: false, code: 'EPERM', exit: 1 });

    // disable keeps it (listed, stored) and lifts it; enable puts it back
    const dis = await cli('policy', 'disable', 'web-egress');
    assert.equal(dis.code, 0, dis.stderr);
    assert.deepEqual(await runClient(['app=web'], 8081), { ok: true, reply: 'echo:hi', exit: 0 });
    const listed = await cli('policy', 'list');
    assert.match(listed.stdout, /^web-egress\s+CiliumNetworkPolicy\s+disabled\s+enforce/m);
    const en = await cli('policy', 'enable', 'web-egress');
    assert.equal(en.code, 0, en.stderr);
    assert.deepEqual(await runClient(['app=web'], 8081), { ok: false, code: 'EPERM', exit: 1 });
  });

  it('a live policy change cuts an open connection', async () => {
    const allow = policyFile(
      'live-allow.yaml',
      `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: live-allow}
spec:
  endpointSelector: {matchLabels: {app: live}}
  egress:
    - toCIDR: [${net.nsV4}/32]
      toPorts: [{ports: [{port: "8090", protocol: TCP}]}]
`,
    );
    const deny = policyFile(
      'live-deny.yaml',
      `apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: live-deny}
spec:
  endpointSelector: {matchLabels: {app: live}}
  egressDeny:
    - toCIDR: [${net.nsV4}/32]
`,
    );
    assert.equal((await cli('policy', 'add', allow)).code, 0);
    const streamer = spawnChild([
      'run',
      '--socket',
      sock,
      '--label',
      'app=live',
      '--name',
      'live',
      '--',
      process.execPath,
      clientJs,
      'stream',
      net.nsV4,
      '8090',
    ]);
    const echoes = () => {
      const e = streamer.jsonLines<{ echoes?: number }>().filter((x) => x.echoes !== undefined);
      return e.length ? e[e.length - 1]!.echoes! : 0;
    };
    try {
      await waitFor('echoes over the open connection', () => echoes() >= 5, 8000);
      const revokedBefore = (await status()).network.datapath.revoked;
      const add = await cli('policy', 'add', deny);
      assert.equal(add.code, 0, add.stderr);
      await sleep(700);
      const atCut = echoes();
      await sleep(1000);
      assert.equal(echoes(), atCut, 'no echo after the permission was revoked');
      assert.ok(
        (await status()).network.datapath.revoked > revokedBefore,
        'the datapath counted the revoked packets',
      );
      // deleting the deny lets the same connection through again
      assert.equal((await cli('policy', 'delete', 'live-deny')).code, 0);
      await waitFor('echoes to resume', () => echoes() > atCut, 8000);
      const w = await cli('workload', 'list');
      assert.match(w.stdout, /^live\s+app=live\s+\d+\s+run\s+yes/m);
    } finally {
      streamer.proc.kill('SIGTERM');
      await streamer.exited;
    }
    // SIGTERM reached the client through osprey run, and the workload went with it
    await waitFor('the live workload to go', () => !existsSync(path.join(workloadCg, 'live')));
    assert.equal((await cli('policy', 'delete', 'live-allow')).code, 0);
  });

  it('restart with the same --state-dir keeps the network policy; --policy takes network policies too', async () => {
    const flag = policyFile(
      'flag-net.yaml',
      `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: flag-net}
spec:
  endpointSelector: {matchLabels: {app: flagged}}
  egress:
    - toPorts: [{ports: [{port: "8081", protocol: TCP}]}]
`,
    );
    // a workload that outlives the agent is taken over by the next one, labels and all
    const keeper = spawnChild([
      'run',
      '--socket',
      sock,
      '--label',
      'app=web',
      '--name',
      'keeper',
      '--',
      'sleep',
      '60',
    ]);
    await waitFor('the keeper workload to have its process', () => {
      try {
        return (
          readFileSync(path.join(workloadCg, 'keeper', 'cgroup.procs'), 'utf8')
            .trim()
            .split('\n').length >= 2
        );
      } catch {
        return false;
      }
    });
    flows.proc.kill('SIGTERM');
    await stopAgent();
    assert.ok(existsSync(path.join(workloadCg, 'keeper')), 'a running workload survives the agent');
    agent = await startAgent(['--policy', flag]);
    const wl = await cli('workload', 'list', '-o', 'json');
    const kept = (
      JSON.parse(wl.stdout) as { name: string; labels: Record<string, string>; populated: boolean }[]
    ).find((w) => w.name === 'keeper');
    assert.deepEqual(kept?.labels, { app: 'web' });
    assert.equal(kept?.populated, true);
    keeper.proc.kill('SIGTERM');
    await keeper.exited;
    await waitFor('the keeper workload to go', () => !existsSync(path.join(workloadCg, 'keeper')));
    const list = await cli('policy', 'list', '-o', 'json');
    assert.equal(list.code, 0, list.stderr);
    const byName = new Map(
      (JSON.parse(list.stdout) as { name: string; state: string; source: string; mode: string }[]).map(
        (p) => [p.name, p],
      ),
    );
    assert.equal(byName.get('web-egress')?.state, 'enabled');
    assert.equal(byName.get('web-egress')?.mode, 'enforce');
    assert.equal(byName.get('web-egress')?.source, 'api');
    assert.equal(byName.get('flag-net')?.source, 'flag');
    assert.deepEqual(await runClient(['app=web'], 8081), { ok: false, code: 'EPERM', exit: 1 });
    assert.deepEqual(await runClient(['app=web'], 8080), { ok: true, reply: 'echo:hi', exit: 0 });
    assert.deepEqual(await runClient(['app=flagged'], 8081), { ok: true, reply: 'echo:hi', exit: 0 });
    assert.deepEqual(await runClient(['app=flagged'], 8080), { ok: false, code: 'EPERM', exit: 1 });
  });
});
