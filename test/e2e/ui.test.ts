/**
 * The web UI end to end, in real headless Chromium (Debian's chromium,
 * driven by playwright-core): a real agent scoped to a cgroup this test
 * creates, serving the UI on a free loopback port; processes run in that
 * cgroup; the browser signs in, watches them live (pausing without losing
 * any), finds a process tree with its ancestors and what each process did,
 * adds policies through the editor (a bad one is marked at its line),
 * deletes one, shows flows and status. Screenshots go to test/artifacts/ui/.
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
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { SETTINGS } from '../../src/agent/config.js';
import { cgroup2Root } from '../../src/kernel/mounts.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const OSPREY = path.join(repo, 'bin/osprey');
const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(repo, 'test/artifacts/ui');
const NODE = 'ui-e2e-node';
const hasSetting = (key: string) => SETTINGS.some((s) => s.key === key);

const BAD_POLICY = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: ui-e2e-bad
spec:
  kprobes:
  - call: "sys_openat"
    syscall: true
    args:
    - index: 1
      type: "strang"
    selectors:
    - matchActions:
      - action: Post
`;

const goodPolicy = (prefix: string) => `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: ui-e2e-open
spec:
  kprobes:
  - call: "sys_openat"
    syscall: true
    args:
    - index: 1
      type: "string"
    selectors:
    - matchArgs:
      - index: 1
        operator: "Prefix"
        values:
        - "${prefix}"
`;

/** Connects to 127.0.0.1:PORT, prints ok or the error code, exits. */
const CLIENT_JS = `
import net from 'node:net';
const c = net.connect({ host: '127.0.0.1', port: Number(process.argv[2]) });
const done = (r) => { process.stdout.write(r + '\\n'); process.exit(0); };
setTimeout(() => done('TIMEOUT'), 3000);
c.on('connect', () => { c.end(); done('ok'); });
c.on('error', (e) => done(e.code));
`;

class Child {
  stdout = '';
  stderr = '';
  code: number | null = null;
  readonly exited: Promise<number | null>;
  constructor(readonly proc: ChildProcess) {
    proc.stdout?.on('data', (d: Buffer) => {
      this.stdout += d;
    });
    proc.stderr?.on('data', (d: Buffer) => {
      this.stderr += d;
    });
    this.exited = new Promise((resolve) =>
      proc.on('close', (code) => {
        this.code = code;
        resolve(code);
      }),
    );
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

/** A request to the UI server (not the browser): status and body. */
function request(
  url: string,
  opts: { method?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers ?? {} }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('web UI in headless Chromium', { timeout: 240_000 }, () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'osprey-ui-e2e-'));
  const cg = path.join(cgroup2Root(), `osprey-ui-e2e-${process.pid}-${Date.now()}`);
  const sock = path.join(tmp, 'osprey.sock');
  const stateDir = path.join(tmp, 'state');
  const markerDir = path.join(tmp, 'ui-e2e-marker');
  const markerFile = path.join(markerDir, 'secret.txt');
  const children: Child[] = [];
  let agent: Child;
  let base = '';
  let token = '';
  let ctx: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];

  const spawnChild = (cmd: string, args: string[]) => {
    const c = new Child(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    children.push(c);
    return c;
  };
  /** Run argv inside the test cgroup to completion. */
  const runIn = async (...argv: string[]) => {
    const c = spawnChild('/bin/sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cg, ...argv]);
    await c.exited;
    return c;
  };
  const api = async <T>(p: string, method = 'GET'): Promise<T> => {
    const r = await request(`${base}${p.slice(1)}`, {
      method,
      headers: { authorization: `Bearer ${token}` },
    });
    return JSON.parse(r.body) as T;
  };
  /** Each test may run alone (--test-name-pattern): sign in unless the sign-in test did. */
  const signedIn = async () => {
    if ((await ctx.cookies(base)).some((c) => c.name === 'osprey_ui')) return;
    await page.goto(`${base}?token=${token}`);
  };
  const shot = (name: string) =>
    page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

  before(async () => {
    assert.ok(
      existsSync(CHROMIUM),
      `${CHROMIUM} is missing: install Debian's chromium package (scripts/setup.sh does)`,
    );
    mkdirSync(ARTIFACTS, { recursive: true });
    mkdirSync(cg);
    mkdirSync(markerDir, { recursive: true });
    writeFileSync(markerFile, 'not really\n');
    const args = [
      'agent',
      '--cgroup',
      cg,
      '--api-socket',
      sock,
      '--state-dir',
      stateDir,
      '--no-export-file',
      '--no-export-stdout',
      '--node-name',
      NODE,
      '--ui-address',
      '127.0.0.1:0',
    ];
    if (hasSetting('store-path')) args.push('--store-path', path.join(tmp, 'events.db'));
    if (hasSetting('metrics-address')) args.push('--no-metrics-address');
    if (hasSetting('workload-cgroup')) args.push('--workload-cgroup', cg);
    agent = spawnChild(OSPREY, args);
    await waitFor(
      'the agent to be ready',
      () => agent.stderr.includes('ready:') || agent.code !== null,
      30_000,
    );
    assert.ok(agent.stderr.includes('ready:'), `the agent started; its stderr: ${agent.stderr}`);
    const m = /web UI on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(agent.stderr);
    assert.ok(m, `the agent names the UI's address; its stderr: ${agent.stderr}`);
    base = m[1]!;
    token = readFileSync(path.join(stateDir, 'ui-token'), 'utf8').trim();

    ctx = await chromium.launchPersistentContext(mkdtempSync(path.join(tmp, 'chromium-')), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1400, height: 900 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = ctx.pages()[0] ?? (await ctx.newPage());
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });

  after(async () => {
    await ctx?.close().catch(() => {});
    if (agent && agent.code === null) {
      agent.proc.kill('SIGTERM');
      await Promise.race([agent.exited, sleep(10_000)]);
    }
    for (const c of children) if (c.code === null) c.proc.kill('SIGKILL');
    // whatever still runs in the cgroup or its workloads, then the cgroups
    const dirs = existsSync(cg)
      ? readdirSync(cg, { withFileTypes: true })
          .filter((d) => d.isDirectory())
          .map((d) => path.join(cg, d.name))
      : [];
    for (const d of [...dirs, cg]) {
      try {
        writeFileSync(path.join(d, 'cgroup.kill'), '1');
      } catch {}
    }
    for (const d of [...dirs, cg]) {
      for (let i = 0; i < 50 && existsSync(d); i++) {
        try {
          rmdirSync(d);
        } catch {
          await sleep(50);
        }
      }
    }
    rmSync(tmp, { recursive: true, force: true });
  });

  it('the UI server answers only a signed-in client on a loopback host name', async () => {
    assert.equal((await request(`${base}v1/health`)).status, 401);
    const ok = await request(`${base}v1/health`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200);
    assert.equal((JSON.parse(ok.body) as { node_name: string }).node_name, NODE);
    const rebound = await request(`${base}v1/health`, {
      headers: { authorization: `Bearer ${token}`, host: `attacker.example:${new URL(base).port}` },
    });
    assert.equal(rebound.status, 421);
    // a change without the UI's header is refused even with the token (no cross-site forms)
    const post = await request(`${base}v1/policies`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/yaml' },
    });
    assert.equal(post.status, 403);
    const signIn = await request(`${base}?token=${token}`);
    assert.equal(signIn.status, 303);
    assert.equal(signIn.headers.location, '/');
    assert.match(String(signIn.headers['set-cookie']), /osprey_ui=.*HttpOnly; SameSite=Strict/);
    const html = await request(base);
    assert.match(String(html.headers['content-security-policy']), /script-src 'self'/);
  });

  it('asks for the token, refuses a wrong one and signs in with the right one', async () => {
    await page.goto(`${base}#/events`);
    await page.locator('#signin').waitFor();
    await page.fill('#signin-token', 'not-the-token');
    await page.click('#signin button[type=submit]');
    await page.locator('#signin-error', { hasText: 'not right' }).waitFor();
    await shot('signin');
    await page.fill('#signin-token', token);
    await page.click('#signin button[type=submit]');
    await page.locator('#agent-health .dot-ok').waitFor();
    assert.match((await page.textContent('#agent-health')) ?? '', new RegExp(NODE));
    assert.equal(await page.locator('#signin').count(), 0);
  });

  it('shows a bad policy rejected at its line, adds a good one and changes its mode', async () => {
    await signedIn();
    await page.goto(`${base}#/policies`);
    await page.locator('#add-policy').waitFor();
    await page.fill('#policy-yaml', BAD_POLICY);
    await page.click('#policy-add');
    const problem = page.locator('#policy-errors li.problem[data-line="11"]');
    await problem.waitFor();
    assert.match(
      (await problem.textContent()) ?? '',
      /spec\.kprobes\[0\]\.args\[0\]\.type.*unknown arg type "strang"/,
    );
    assert.match((await problem.textContent()) ?? '', /line 11, column 13/);
    // marked in the editor at that line: the gutter and the line itself, with the message
    assert.equal(await page.locator('.gutter .ln-error').first().textContent(), '11');
    const mark = page.locator('.backdrop .bl-error[data-line="11"] .bl-msg');
    assert.match((await mark.textContent()) ?? '', /unknown arg type "strang"/);
    assert.ok(await mark.isVisible());
    await shot('policy-rejected');
    const none = await api<{ policies: unknown[] }>('/v1/policies');
    assert.deepEqual(none.policies, [], 'nothing was loaded');

    await page.fill('#policy-yaml', goodPolicy(`${markerDir}/`));
    await page.click('#policy-add');
    const row = page.locator('#policies-table tr[data-policy="ui-e2e-open"]');
    await row.waitFor();
    assert.equal(await row.locator('.state').textContent(), 'enabled');
    assert.equal(await page.locator('#policy-errors li').count(), 0);

    await row.locator('select.mode-select').selectOption('enforce');
    await page.locator('#policy-notices', { hasText: 'enforce mode' }).waitFor();
    const info = await api<{ mode: string; state: string }>('/v1/policies/ui-e2e-open');
    assert.equal(info.mode, 'enforce');
    await row.locator('select.mode-select').selectOption('monitor');
    await page.locator('#policy-notices', { hasText: 'monitor mode' }).waitFor();
    assert.equal((await api<{ mode: string }>('/v1/policies/ui-e2e-open')).mode, 'monitor');
    await shot('policies');
  });

  it('streams live events, and pausing buffers what arrives until resume', async () => {
    await signedIn();
    await page.goto(`${base}#/events`);
    await page.locator('#stream-state.state-live').waitFor();
    await runIn('/bin/echo', 'ui-e2e-live-1');
    await page.locator('#events-body tr.ev', { hasText: 'ui-e2e-live-1' }).first().waitFor();

    await page.click('#pause');
    await page.locator('#buffer-state', { hasText: 'paused' }).waitFor();
    const r = await runIn('/bin/echo', 'ui-e2e-paused-1');
    assert.equal(r.code, 0);
    // its exec and exit wait in the buffer, not in the table
    await page.locator('#buffer-state', { hasText: /[2-9] buffered|\d\d+ buffered/ }).waitFor();
    assert.equal(await page.locator('#events-body tr.ev', { hasText: 'ui-e2e-paused-1' }).count(), 0);
    assert.match((await page.textContent('#buffer-state')) ?? '', /0 dropped/);
    await shot('events-paused');

    await page.click('#pause');
    await page.locator('#events-body tr.ev', { hasText: 'ui-e2e-paused-1' }).first().waitFor();
    assert.ok(await page.locator('#buffer-state').isHidden());
    const exits = page.locator('#events-body tr.ev[data-type="process_exit"]', { hasText: '/usr/bin/echo' });
    assert.ok((await exits.count()) >= 2, 'the exits of both echos are shown');
    await shot('events');
  });

  it('filters on the agent: binary regex and event types', async () => {
    await signedIn();
    await page.goto(`${base}#/events?binary=%2Fecho%24&types=process_exec`);
    await page.locator('#stream-state.state-live').waitFor();
    assert.equal(await page.inputValue('#f-binary'), '/echo$');
    await runIn('/bin/sh', '-c', '/bin/true; /bin/echo ui-e2e-filtered');
    await page.locator('#events-body tr.ev', { hasText: 'ui-e2e-filtered' }).first().waitFor();
    // true and the shell ran before echo on the same stream: had they passed the filter, they would be here
    assert.equal(await page.locator('#events-body tr.ev', { hasText: '/usr/bin/true' }).count(), 0);
    assert.equal(await page.locator('#events-body tr.ev[data-type="process_exit"]').count(), 0);
    assert.equal(await page.locator('#events-body tr.ev', { hasText: '/usr/bin/dash' }).count(), 0);
  });

  it('finds a process, shows its ancestors and its events, and the tree under an ancestor', async () => {
    await signedIn();
    await page.goto(`${base}#/processes`);
    await page.locator('#proc-search').waitFor();
    // sh -> sh -> cat (which opens the file the policy watches) and echo
    const inner = `/bin/cat ${markerFile}; /bin/echo ui-e2e-leaf`;
    const r = await runIn('/bin/sh', '-c', `/bin/sh -c "${inner}"; /bin/true ui-e2e-outer`);
    assert.equal(r.code, 0, r.stderr);

    await page.fill('#proc-search', 'ui-e2e-marker');
    await page.click('#proc-search-go');
    const catRow = page.locator('#proc-results tr.proc-row', { hasText: '/usr/bin/cat' });
    await catRow.first().waitFor();
    await catRow.first().locator('a').click();

    await page.locator('#proc-tree li.self', { hasText: 'cat' }).waitFor();
    const ancestors = page.locator('#proc-tree li.ancestor');
    const texts = await ancestors.allTextContents();
    assert.ok(
      texts.some((t) => t.includes('/bin/cat') && t.includes('ui-e2e-leaf')),
      `the inner sh is an ancestor: ${texts.join(' | ')}`,
    );
    assert.ok(
      texts.some((t) => t.includes('ui-e2e-outer')),
      `the outer sh is an ancestor: ${texts.join(' | ')}`,
    );
    // the inner sh is the nearest ancestor: the last listed, just above the process
    assert.match(texts.at(-1) ?? '', /ui-e2e-leaf/);
    const events = page.locator('#proc-events');
    await events.locator('tr[data-kind="exec"]').first().waitFor();
    await events.locator('tr[data-kind="exit"]').first().waitFor();
    // what it did: the openat the policy caught
    const open = events.locator('tr[data-kind="kprobe"]', { hasText: 'openat' });
    await open.first().waitFor();
    assert.match((await open.first().textContent()) ?? '', /secret\.txt/);
    assert.match((await page.textContent('#proc-card')) ?? '', new RegExp(markerFile.replaceAll('.', '\\.')));
    await shot('process');

    // up to the outer sh: its tree holds the inner sh, cat and echo, and their events
    await ancestors.filter({ hasText: 'ui-e2e-outer' }).locator('a').click();
    await page.locator('#proc-tree li.self', { hasText: 'ui-e2e-outer' }).waitFor();
    const desc = page.locator('#proc-tree li.descendant');
    await desc.filter({ hasText: 'cat' }).first().waitFor();
    await desc.filter({ hasText: 'ui-e2e-leaf' }).first().waitFor();
    await page.locator('#proc-events tr[data-kind="kprobe"]', { hasText: 'openat' }).first().waitFor();
    await shot('process-tree');
  });

  it('shows the kernel, the programs (the policy among them) and the drops on the status page', async () => {
    await signedIn();
    await page.goto(`${base}#/status`);
    await page.locator('#status-kernel', { hasText: os.release() }).waitFor();
    await page.locator('#status-programs', { hasText: 'osprey_exec' }).waitFor();
    await page.locator('#status-programs', { hasText: 'ui-e2e-open' }).waitFor();
    // this agent runs without --bpf-stats: the page says why runs show no numbers
    await page.locator('#status-programs', { hasText: 'start the agent with --bpf-stats' }).waitFor();
    await page.locator('#status-drops', { hasText: 'kernel ringbuf' }).waitFor();
    await shot('status');
  });

  it('deletes a policy after a confirmation', async () => {
    await signedIn();
    await page.goto(`${base}#/policies`);
    const row = page.locator('#policies-table tr[data-policy="ui-e2e-open"]');
    await row.waitFor();
    await row.locator('button[data-action="delete"]').click();
    await row.locator('button[data-action="confirm-delete"]').click();
    await page.locator('#policies-empty').waitFor();
    assert.deepEqual((await api<{ policies: unknown[] }>('/v1/policies')).policies, []);
  });

  it('draws flows as a table and a graph, dropped ones marked', async (t) => {
    await signedIn();
    const wl = await request(`${base}v1/workloads`, { headers: { authorization: `Bearer ${token}` } });
    if (wl.status === 404 || wl.status === 503) {
      t.skip(`this agent has no workloads (${wl.status}): no flows to draw`);
      return;
    }
    // two local servers; the policy lets the workload reach one and not the other
    const servers = await Promise.all(
      [0, 1].map(
        () =>
          new Promise<net.Server>((resolve) => {
            const s = net.createServer((c) => c.end());
            s.listen(0, '127.0.0.1', () => resolve(s));
          }),
      ),
    );
    const [okPort, deniedPort] = servers.map((s) => (s.address() as net.AddressInfo).port);
    try {
      await page.goto(`${base}#/flows`);
      await page.locator('#flow-info').waitFor();
      const policy = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: ui-e2e-egress
spec:
  endpointSelector:
    matchLabels: {app: ui-e2e-web}
  egress:
    - toEntities: [host]
      toPorts:
        - ports: [{port: "${okPort}", protocol: TCP}]
  egressDeny:
    - toEntities: [host]
      toPorts:
        - ports: [{port: "${deniedPort}", protocol: TCP}]
`;
      const add = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request(
          `${base}v1/policies`,
          {
            method: 'POST',
            headers: {
              authorization: `Bearer ${token}`,
              'content-type': 'application/yaml',
              'x-osprey-ui': '1',
            },
          },
          (res) => {
            let body = '';
            res.on('data', (c) => {
              body += c;
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on('error', reject);
        req.end(policy);
      });
      assert.equal(add.status, 201, add.body);
      const clientJs = path.join(tmp, 'client.mjs');
      writeFileSync(clientJs, CLIENT_JS);
      const run = async (port: number) => {
        const c = spawnChild(OSPREY, [
          'run',
          '--socket',
          sock,
          '--label',
          'app=ui-e2e-web',
          '--name',
          `ui-e2e-web-${port}`,
          '--',
          process.execPath,
          clientJs,
          String(port),
        ]);
        await c.exited;
        return c.stdout.trim();
      };
      assert.equal(await run(okPort!), 'ok');
      assert.equal(await run(deniedPort!), 'EPERM');

      await page.locator('#flows-table tr.flow-dropped').first().waitFor();
      await page
        .locator('#flows-table tr.flow', { hasText: String(okPort) })
        .first()
        .waitFor();
      await page.locator('#flow-graph svg .edge-drop').first().waitFor();
      assert.ok((await page.locator('#flow-graph svg .node').count()) >= 2);
      assert.match((await page.textContent('#flows-table tr.flow-dropped')) ?? '', /ui-e2e-egress/);
      await shot('flows');

      // the allowed client's connection leads to its process (the flow names it: osprey.exec_id),
      // whose timeline shows the connection's flows, from the store and the live stream
      await page
        .locator('#flows-table tr.flow', { hasText: `:${okPort}` })
        .locator('a.flow-process')
        .first()
        .click();
      await page.locator('#proc-tree li.self', { hasText: 'client.mjs' }).waitFor();
      const execId = decodeURIComponent(new URL(page.url()).hash.replace('#/processes/', ''));
      for (const what of ['tcp new', 'tcp established', 'tcp closed']) {
        await page
          .locator('#proc-events tr[data-kind="flow"]', { hasText: what })
          .filter({ hasText: `:${okPort}` })
          .first()
          .waitFor();
      }
      // the store keeps them under that process, and under the policy that decided them
      type Hist = {
        events: { flow?: { osprey: { exec_id?: string }; l4: { TCP?: { destination_port: number } } } }[];
      };
      let stored = 0;
      for (const end = Date.now() + 10_000; stored < 3 && Date.now() < end; await sleep(200)) {
        const h = await api<Hist>('/v1/events/history?since=10m&type=flow&policy=ui-e2e-egress');
        stored = h.events.filter(
          (e) => e.flow?.l4.TCP?.destination_port === okPort && e.flow.osprey.exec_id === execId,
        ).length;
      }
      assert.equal(stored, 3, `the store has the connection's three flows under ${execId}`);
      await shot('process-flows');
      await api('/v1/policies/ui-e2e-egress', 'DELETE').catch(() => {});
    } finally {
      for (const s of servers) s.close();
    }
  });

  it('degrades without the store and flow endpoints: live processes, and says what is missing', async () => {
    await signedIn();
    // an agent without the store or the network sensor answers 404 here
    const missing = JSON.stringify({ error: 'no endpoint (test)' });
    await page.route(/\/v1\/(processes\/|events\/history|flows)/, (route) =>
      route.fulfill({ status: 404, contentType: 'application/json', body: missing }),
    );
    try {
      await page.goto(`${base}#/processes`);
      await page.reload();
      await page.locator('#agent-health .dot-ok').waitFor();
      await runIn('/bin/sh', '-c', '/bin/echo ui-e2e-degraded; /bin/true');
      await page.fill('#proc-search', 'ui-e2e-degraded');
      await page.click('#proc-search-go');
      await page.locator('.banner', { hasText: 'no event store' }).waitFor();
      await page
        .locator('#proc-results tr.proc-row', { hasText: 'ui-e2e-degraded' })
        .first()
        .locator('a')
        .click();
      await page.locator('#proc-tree li.self').waitFor();
      await page.locator('#proc-events tr[data-kind="exec"]').first().waitFor();
      await page.goto(`${base}#/flows`);
      await page.locator('.banner', { hasText: '/v1/flows is missing' }).waitFor();
      await shot('flows-missing');
    } finally {
      await page.unroute(/\/v1\/(processes\/|events\/history|flows)/);
    }
    assert.deepEqual(pageErrors, [], 'no script errors in the page');
  });
});
