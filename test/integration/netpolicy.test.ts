// Workload network policy on the real kernel: workloads are test cgroups,
// peers are servers in test network namespaces (10.248.N.0/24,
// fd00:248:N::/64) or on loopback. Every test checks what the application
// saw (EPERM, a timeout, the echo) and the flow record the kernel posted.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { MAX_HANDOFF } from '../../src/kernel/ring.js';
import { type HubbleFlowLine, NetworkPolicyController } from '../../src/netpolicy/controller.js';
import type { NetworkPolicy } from '../../src/netpolicy/model.js';
import { parseNetworkPolicyText } from '../../src/netpolicy/parse.js';
import type { FlowRecord } from '../../src/sensors/network/decode.js';
import { FlowEvent } from '../../src/sensors/network/layout.js';
import { HOST_ADDRESS_CHECK_MS } from '../../src/sensors/network/loader.js';
import { WorkloadRegistry } from '../../src/workload/registry.js';
import {
  type ClientResult,
  makeTestNet,
  runClient,
  type Server,
  startServer,
  startStreamer,
  type TestNet,
} from '../lib/netns.js';
import { cidrPolicyText } from '../lib/policies.js';

interface Env {
  net: TestNet;
  registry: WorkloadRegistry;
  controller: NetworkPolicyController;
  flows: { line: HubbleFlowLine; rec: FlowRecord }[];
  /** flows.length at each onFlowsEnd */
  ends: number[];
  servers: Server[];
}

let seq = 0;

async function setup(n: number): Promise<Env> {
  const net = makeTestNet(n);
  let registry: WorkloadRegistry | undefined;
  try {
    registry = new WorkloadRegistry({ parent: `osprey-test-np-${process.pid}-${n}-${seq++}` });
    const flows: Env['flows'] = [];
    const ends: number[] = [];
    const controller = NetworkPolicyController.start({
      registry,
      nodeName: 'test-node',
      onFlow: (line, rec) => flows.push({ line, rec }),
      onFlowsEnd: () => ends.push(flows.length),
    });
    return { net, registry, controller, flows, ends, servers: [] };
  } catch (err) {
    registry?.close();
    net.remove();
    throw err;
  }
}

function teardown(env: Env | undefined): void {
  if (!env) return;
  for (const s of env.servers) s.stop();
  try {
    env.controller.stop();
  } finally {
    env.registry.close();
    env.net.remove();
  }
}

function policy(yaml: string): NetworkPolicy {
  const r = parseNetworkPolicyText(yaml, 'test.yaml');
  assert.deepEqual(
    r.errors.map((e) => e.toString()),
    [],
  );
  assert.equal(r.policies.length, 1);
  return r.policies[0]!;
}

/** Policy `name` for the workloads labelled app=name: egress only to host (/32 or /128) on TCP port. */
function allowTcpTo(name: string, host: string, port: number): NetworkPolicy {
  return policy(cidrPolicyText(name, name, [`${host}/${host.includes(':') ? 128 : 32}`], port));
}

/**
 * Policy `name` for the workloads labelled app=name: 20,000 /32s under PREFIX that match nothing
 * (in rules of 100, each its own port when `ports`), then egress to host on TCP port.
 */
function largePolicy(
  name: string,
  prefix: string,
  ports: boolean,
  host: string,
  port: number,
): NetworkPolicy {
  let rules = '';
  for (let g = 0; g < 200; g++) {
    const cidrs = Array.from({ length: 100 }, (_, i) => `${prefix}.${g}.${i}/32`);
    rules += `    - toCIDR: [${cidrs.join(', ')}]\n`;
    if (ports) rules += `      toPorts: [{ ports: [{ port: "${2000 + g}", protocol: TCP }] }]\n`;
  }
  return policy(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: ${name} }
spec:
  endpointSelector: { matchLabels: { app: ${name} } }
  egress:
${rules}    - toCIDR: [${host}/32]
      toPorts: [{ ports: [{ port: "${port}", protocol: TCP }] }]
`);
}

async function server(
  env: Env,
  where: { cgroup: string } | 'netns',
  proto: 'tcp' | 'udp',
  host: string,
  port = 0,
) {
  const s = await startServer(where === 'netns' ? { netns: env.net.ns } : where, proto, host, port);
  env.servers.push(s);
  return s;
}

async function waitFlow(
  env: Env,
  pred: (r: FlowRecord) => boolean,
  what: string,
  ms = 3000,
): Promise<{ line: HubbleFlowLine; rec: FlowRecord }> {
  const deadline = Date.now() + ms;
  for (;;) {
    env.controller.drain();
    const hit = env.flows.find((f) => pred(f.rec));
    if (hit) return hit;
    if (Date.now() > deadline) {
      const seen = env.flows.map((f) => f.line.flow.Summary).join('\n  ');
      throw new Error(`timed out waiting for flow: ${what}; saw:\n  ${seen}`);
    }
    await sleep(20);
  }
}

function assertOk(r: ClientResult, msg = 'hi'): void {
  assert.deepEqual(r, { ok: true, reply: `echo:${msg}` });
}

describe('network policy', { concurrency: false }, () => {
  describe('egress TCP: CIDR and ports, flows with policy and rule', () => {
    let env: Env;
    before(async () => {
      env = await setup(11);
    });
    after(() => teardown(env));

    test('allowed connect works, others get EPERM, flows name the rule or default-deny', async () => {
      const { net } = env;
      const w = env.registry.create('client', { app: 'client' });
      const ok = await server(env, 'netns', 'tcp', net.nsV4, 8080);
      const other = await server(env, 'netns', 'tcp', net.nsV4, 8081);
      env.controller.apply(
        policy(`
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: client-egress }
spec:
  endpointSelector: { matchLabels: { app: client } }
  egress:
    - toCIDR: [192.0.2.99/32]
    - toCIDR: [${net.nsV4}/32]
      toPorts: [{ ports: [{ port: "8080", protocol: TCP }] }]
`),
      );
      assertOk(await runClient({ cgroup: w.cgroupPath }, 'tcp', net.nsV4, ok.port));
      const denied = await runClient({ cgroup: w.cgroupPath }, 'tcp', net.nsV4, other.port);
      assert.deepEqual(denied, { ok: false, code: 'EPERM' });

      const allowed = await waitFlow(
        env,
        (r) => r.event === 'NEW' && r.dstPort === 8080 && r.verdict === 'FORWARDED',
        'NEW FORWARDED to 8080',
      );
      assert.equal(allowed.rec.direction, 'EGRESS');
      assert.equal(allowed.rec.dstAddr, net.nsV4);
      assert.equal(allowed.rec.srcIdentity, w.identity);
      assert.equal(allowed.rec.dstIdentity, 2); // world
      assert.equal(allowed.rec.policyId, env.controller.policyId('client-egress'));
      assert.equal(allowed.rec.rule, 1);
      assert.deepEqual(allowed.line.flow.egress_allowed_by, [
        { name: 'client-egress', rule: 'spec.egress[1]' },
      ]);
      assert.equal(allowed.line.flow.verdict, 'FORWARDED');
      assert.deepEqual(allowed.line.flow.l4, { TCP: { source_port: 0, destination_port: 8080 } });
      assert.deepEqual(allowed.line.flow.source.labels, ['app=client']);
      assert.equal(allowed.line.flow.source.workload, 'client');
      assert.ok(allowed.rec.pid > 0);

      const drop = await waitFlow(env, (r) => r.event === 'NEW' && r.dstPort === 8081, 'NEW DROPPED to 8081');
      assert.equal(drop.rec.verdict, 'DROPPED');
      assert.equal(drop.rec.defaultDeny, true);
      assert.equal(drop.rec.rule, undefined);
      assert.equal(drop.line.flow.drop_reason_desc, 'POLICY_DENIED');
      assert.deepEqual(drop.line.flow.egress_denied_by, [{ name: 'client-egress', default_deny: true }]);

      // the connection's life: established, then closed with its byte counts
      const est = await waitFlow(env, (r) => r.event === 'ESTABLISHED' && r.dstPort === 8080, 'ESTABLISHED');
      assert.equal(est.rec.srcAddr, net.hostV4);
      assert.ok(est.rec.srcPort > 0);
      const closed = await waitFlow(env, (r) => r.event === 'CLOSED' && r.dstPort === 8080, 'CLOSED');
      assert.equal(closed.rec.bytesSent, '2'); // "hi"
      assert.equal(closed.rec.bytesReceived, '7'); // "echo:hi"
      assert.equal(closed.rec.cookie, est.rec.cookie);
      assert.equal(closed.line.flow.osprey.bytes_sent, '2');
    });

    test('flows come in hand-offs of at most MAX_HANDOFF, each ended by onFlowsEnd', () => {
      const { net } = env;
      const w = env.registry.create('burst', { app: 'burst' });
      env.controller.apply(
        policy(`
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: burst }
spec:
  endpointSelector: { matchLabels: { app: burst } }
  egress:
    - toCIDR: [192.0.2.99/32]
`),
      );
      env.controller.drain();
      const before = env.flows.length;
      const endsBefore = env.ends.length;
      // 400 denied connects while this thread is blocked: their flows wait in the ring for one read
      const n = 400;
      const script = `
const net = require('node:net');
const a = JSON.parse(process.argv[1]);
let eperm = 0, done = 0;
const end = () => { if (++done === a.n) console.log(JSON.stringify({ eperm })); };
for (let i = 0; i < a.n; i++) {
  const c = net.connect({ host: a.host, port: a.port });
  c.on('connect', () => { c.destroy(); end(); });
  c.on('error', (e) => { if (e.code === 'EPERM') eperm++; end(); });
}`;
      const out = execFileSync(
        '/bin/sh',
        [
          '-c',
          'echo $$ > "$0/cgroup.procs" && exec "$@"',
          w.cgroupPath,
          process.execPath,
          '-e',
          script,
          JSON.stringify({ n, host: net.nsV4, port: 9 }),
        ],
        { encoding: 'utf8', timeout: 20_000 },
      );
      assert.deepEqual(JSON.parse(out), { eperm: n });
      env.controller.drain();
      const burst = env.flows
        .slice(before)
        .filter((f) => f.rec.dstPort === 9 && f.rec.srcIdentity === w.identity);
      assert.equal(burst.length, n);
      assert.ok(burst.every((f) => f.rec.verdict === 'DROPPED' && f.rec.event === 'NEW'));
      // every flow handed over is followed by an end, and no more than MAX_HANDOFF between two ends
      const ends = env.ends.slice(endsBefore);
      assert.equal(ends.at(-1), env.flows.length);
      let last = before;
      for (const e of ends) {
        assert.ok(e > last && e - last <= MAX_HANDOFF, `a hand-off of ${e - last} flows`);
        last = e;
      }
      assert.ok(ends.length >= Math.ceil(n / MAX_HANDOFF), `${ends.length} hand-offs for ${n} flows`);
    });

    test('a sliced apply lets the event loop run, and compiles again for a workload created meanwhile', async () => {
      const { net } = env;
      await server(env, 'netns', 'tcp', net.nsV4, 8090);
      const other = await server(env, 'netns', 'tcp', net.nsV4, 8091);
      const a = env.registry.create('sliced-a', { app: 'sliced' });
      // 20,000 CIDRs that match nothing (several slices of compiling), then the server on one port
      const p = largePolicy('sliced', '198.18', true, net.nsV4, 8090);
      let turns = 0;
      const timer = setInterval(() => turns++, 1);
      try {
        const pending = env.controller.applySliced(p);
        // a workload that joins while the policy compiles: its identity is in the tables swapped in
        const b = env.registry.create('sliced-b', { app: 'sliced' });
        const r = await pending;
        assert.ok(turns > 0, 'timers ran while the policy compiled');
        for (const w of [a, b]) {
          assert.ok(
            r.tables.defaults.some((d) => d.identity === w.identity && d.dir === 'egress'),
            `${w.name} is in the tables`,
          );
          assert.equal(
            r.tables.cidrs.filter((c) => c.identity === w.identity && c.dir === 'egress').length,
            20003,
          );
          assertOk(await runClient({ cgroup: w.cgroupPath }, 'tcp', net.nsV4, 8090));
          assert.deepEqual(await runClient({ cgroup: w.cgroupPath }, 'tcp', net.nsV4, other.port), {
            ok: false,
            code: 'EPERM',
          });
        }
        assert.equal(env.controller.lastInstall, r);
      } finally {
        clearInterval(timer);
        env.controller.remove('sliced');
      }
    });

    test('with large policies, workloads join and leave with their tables compiled in slices', async () => {
      const { net } = env;
      await server(env, 'netns', 'tcp', net.nsV4, 8092);
      const other = await server(env, 'netns', 'tcp', net.nsV4, 8093);
      env.controller.apply(largePolicy('large', '198.19', false, net.nsV4, 8092));
      let turns = 0;
      const timer = setInterval(() => turns++, 1);
      try {
        const gen = env.controller.lastInstall!.generation;
        const w = env.registry.create('large-1', { app: 'large' });
        // not attached yet: its tables are being compiled (20,001 CIDRs, past LARGE_CIDRS)
        assert.equal(env.controller.lastInstall!.generation, gen, 'no tables swapped in synchronously');
        await env.controller.attached(w.cgroupId);
        assert.ok(turns > 0, 'timers ran while the tables were compiled');
        assert.ok(env.controller.lastInstall!.generation > gen);
        assertOk(await runClient({ cgroup: w.cgroupPath }, 'tcp', net.nsV4, 8092));
        assert.deepEqual(await runClient({ cgroup: w.cgroupPath }, 'tcp', net.nsV4, other.port), {
          ok: false,
          code: 'EPERM',
        });
        // a workload that leaves while large policies are loaded: its tables go in slices too
        const w2 = env.registry.create('large-2', { app: 'large', n: '2' });
        await env.controller.attached(w2.cgroupId);
        const gen2 = env.controller.lastInstall!.generation;
        env.registry.remove('large-2');
        assert.equal(env.controller.lastInstall!.generation, gen2, 'no tables swapped in synchronously');
        await env.controller.settled();
        assert.ok(env.controller.lastInstall!.generation > gen2);
        assert.ok(!env.controller.lastInstall!.tables.defaults.some((d) => d.identity === w2.identity));
        // a delete by removeSliced (what is left compiles in slices); the workload is then free to connect
        assert.equal(await env.controller.removeSliced('large'), true);
        assertOk(await runClient({ cgroup: w.cgroupPath }, 'tcp', net.nsV4, other.port));
        assert.equal(await env.controller.removeSliced('large'), false);
      } finally {
        clearInterval(timer);
        env.controller.remove('large');
      }
    });

    test('CIDR except and port ranges', async () => {
      const { net } = env;
      const w = env.registry.create('ranges', { app: 'ranges' });
      for (const p of [9000, 9005, 9010, 9011]) await server(env, 'netns', 'tcp', net.nsV4, p);
      await server(env, 'netns', 'tcp', net.nsV4, 7000);
      env.controller.apply(
        policy(`
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: ranges }
spec:
  endpointSelector: { matchLabels: { app: ranges } }
  egress:
    - toCIDRSet:
        - cidr: 10.248.${net.nsV4.split('.')[2]}.0/24
          except: [${net.nsV4}/32]
    - toCIDR: [${net.nsV4}/32]
      toPorts: [{ ports: [{ port: "9000", endPort: 9010, protocol: TCP }] }]
`),
      );
      const place = { cgroup: w.cgroupPath };
      assertOk(await runClient(place, 'tcp', net.nsV4, 9000));
      assertOk(await runClient(place, 'tcp', net.nsV4, 9005));
      assertOk(await runClient(place, 'tcp', net.nsV4, 9010));
      assert.deepEqual(await runClient(place, 'tcp', net.nsV4, 9011), { ok: false, code: 'EPERM' });
      // the except takes the address out of rule 0: 7000 is not allowed by any rule
      assert.deepEqual(await runClient(place, 'tcp', net.nsV4, 7000), { ok: false, code: 'EPERM' });
      const r9005 = await waitFlow(env, (r) => r.dstPort === 9005 && r.event === 'NEW', '9005');
      assert.equal(r9005.rec.rule, 1);
      const r7000 = await waitFlow(env, (r) => r.dstPort === 7000 && r.event === 'NEW', '7000');
      assert.equal(r7000.rec.verdict, 'DROPPED');
      assert.equal(r7000.rec.defaultDeny, true);
    });
  });

  describe('UDP and IPv6', () => {
    let env: Env;
    before(async () => {
      env = await setup(12);
    });
    after(() => teardown(env));

    test('UDP both ways under ingress default-deny; a denied sendto gets EPERM', async () => {
      const { net } = env;
      const w = env.registry.create('udp', { app: 'udp' });
      await server(env, 'netns', 'udp', net.nsV4, 5353);
      await server(env, 'netns', 'udp', net.nsV4, 5354);
      env.controller.apply(
        policy(`
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: udp }
spec:
  endpointSelector: { matchLabels: { app: udp } }
  enableDefaultDeny: { ingress: true }
  egress:
    - toCIDR: [${net.nsV4}/32]
      toPorts: [{ ports: [{ port: "5353", protocol: UDP }] }]
`),
      );
      const place = { cgroup: w.cgroupPath };
      // the echo comes back although ingress is default-deny: it is a reply
      assertOk(await runClient(place, 'udp', net.nsV4, 5353));
      assert.deepEqual(await runClient(place, 'udp', net.nsV4, 5354), { ok: false, code: 'EPERM' });
      const f = await waitFlow(env, (r) => r.protocol === 'UDP' && r.dstPort === 5353, 'UDP 5353');
      assert.equal(f.rec.verdict, 'FORWARDED');
      assert.equal(f.rec.rule, 0);
      // node binds the socket before it sends: the source port is known already
      assert.equal(f.line.flow.l4.UDP?.destination_port, 5353);
      assert.ok((f.line.flow.l4.UDP?.source_port ?? 0) > 0);
      const d = await waitFlow(env, (r) => r.protocol === 'UDP' && r.dstPort === 5354, 'UDP 5354');
      assert.equal(d.rec.verdict, 'DROPPED');
      assert.equal(d.rec.defaultDeny, true);
    });

    test('IPv6 TCP and UDP', async () => {
      const { net } = env;
      const w = env.registry.create('v6', { app: 'v6' });
      await server(env, 'netns', 'tcp', net.nsV6, 8443);
      await server(env, 'netns', 'tcp', net.nsV6, 8444);
      await server(env, 'netns', 'udp', net.nsV6, 5355);
      env.controller.apply(
        policy(`
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: v6 }
spec:
  endpointSelector: { matchLabels: { app: v6 } }
  egress:
    - toCIDR: ["fd00:248:${net.nsV4.split('.')[2]}::/64"]
      toPorts: [{ ports: [{ port: "8443" }, { port: "5355", protocol: UDP }] }]
`),
      );
      const place = { cgroup: w.cgroupPath };
      assertOk(await runClient(place, 'tcp', net.nsV6, 8443));
      assert.deepEqual(await runClient(place, 'tcp', net.nsV6, 8444), { ok: false, code: 'EPERM' });
      assertOk(await runClient(place, 'udp', net.nsV6, 5355));
      const f = await waitFlow(env, (r) => r.dstPort === 8443 && r.event === 'NEW', 'v6 8443');
      assert.equal(f.rec.ipVersion, 6);
      assert.equal(f.rec.dstAddr, net.nsV6);
      assert.equal(f.line.flow.IP.ipVersion, 'IPv6');
      assert.equal(f.rec.verdict, 'FORWARDED');
      const d = await waitFlow(env, (r) => r.dstPort === 8444 && r.event === 'NEW', 'v6 8444');
      assert.equal(d.rec.verdict, 'DROPPED');
    });
  });

  describe('ingress', () => {
    let env: Env;
    before(async () => {
      env = await setup(13);
    });
    after(() => teardown(env));

    test('ingress denied by source, then allowed', async () => {
      const { net } = env;
      const w = env.registry.create('web', { app: 'web' });
      const s = await server(env, { cgroup: w.cgroupPath }, 'tcp', net.hostV4, 0);
      env.controller.apply(
        policy(`
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: web-ingress }
spec:
  endpointSelector: { matchLabels: { app: web } }
  ingress:
    - fromCIDR: [10.248.${net.nsV4.split('.')[2]}.3/32]
`),
      );
      const denied = await runClient({ netns: net.ns }, 'tcp', net.hostV4, s.port, { timeoutMs: 1000 });
      assert.deepEqual(denied, { ok: false, code: 'TIMEOUT' });
      const d = await waitFlow(env, (r) => r.direction === 'INGRESS' && r.dstPort === s.port, 'ingress drop');
      assert.equal(d.rec.verdict, 'DROPPED');
      assert.equal(d.rec.defaultDeny, true);
      assert.equal(d.rec.srcAddr, net.nsV4);
      assert.equal(d.rec.srcIdentity, 2);
      assert.equal(d.rec.dstIdentity, w.identity);
      assert.deepEqual(d.line.flow.ingress_denied_by, [{ name: 'web-ingress', default_deny: true }]);

      env.controller.apply(
        policy(`
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: web-ingress }
spec:
  endpointSelector: { matchLabels: { app: web } }
  ingress:
    - fromCIDR: [${net.nsV4}/32]
      toPorts: [{ ports: [{ port: "${s.port}", protocol: TCP }] }]
`),
      );
      assertOk(await runClient({ netns: net.ns }, 'tcp', net.hostV4, s.port));
      const f = await waitFlow(
        env,
        (r) => r.direction === 'INGRESS' && r.event === 'NEW' && r.verdict === 'FORWARDED',
        'ingress forwarded',
      );
      assert.equal(f.rec.rule, 0);
      assert.deepEqual(f.line.flow.ingress_allowed_by, [{ name: 'web-ingress', rule: 'spec.ingress[0]' }]);
      // The server's side of the byte counts, on the connection that carried the
      // message. Not simply the first connection seen: a SYN the denied client
      // retransmitted just as the policy changed can open a connection of its
      // own (no bytes) before its client's socket is gone.
      const closed = await waitFlow(
        env,
        (r) =>
          r.direction === 'INGRESS' &&
          r.event === 'CLOSED' &&
          r.dstPort === s.port &&
          r.bytesReceived !== '0',
        'ingress closed with the message',
      );
      assert.equal(closed.rec.bytesSent, '7');
      assert.equal(closed.rec.bytesReceived, '2');
      const est = await waitFlow(
        env,
        (r) =>
          r.direction === 'INGRESS' &&
          r.event === 'ESTABLISHED' &&
          r.dstPort === s.port &&
          r.srcPort === closed.rec.srcPort,
        'ingress est of that connection',
      );
      assert.equal(est.rec.srcAddr, net.nsV4);
      assert.equal(est.rec.dstIdentity, w.identity);
      assert.equal(est.rec.cookie, closed.rec.cookie);
    });

    test('UDP ingress: a datagram server in a workload, replies pass egress default-deny', async () => {
      const { net } = env;
      const w = env.registry.create('dns', { app: 'dns' });
      const s = await server(env, { cgroup: w.cgroupPath }, 'udp', net.hostV4, 0);
      env.controller.apply(
        policy(`
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: dns-ingress }
spec:
  endpointSelector: { matchLabels: { app: dns } }
  enableDefaultDeny: { egress: true }
  ingress:
    - fromCIDRSet: [{ cidr: ${net.nsV4}/32 }]
      toPorts: [{ ports: [{ port: "${s.port}", protocol: UDP }] }]
`),
      );
      assertOk(await runClient({ netns: net.ns }, 'udp', net.hostV4, s.port));
      const f = await waitFlow(
        env,
        (r) => r.direction === 'INGRESS' && r.protocol === 'UDP' && r.dstPort === s.port,
        'udp ingress',
      );
      assert.equal(f.rec.verdict, 'FORWARDED');
      assert.equal(f.rec.srcAddr, net.nsV4);
      assert.deepEqual(f.line.flow.ingress_allowed_by, [{ name: 'dns-ingress', rule: 'spec.ingress[0]' }]);
      // the same server refuses a peer the policy does not name: a second namespace address is not set
      // up, so take the permission away instead and see the datagram dropped
      env.controller.apply(
        policy(`
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: dns-ingress }
spec:
  endpointSelector: { matchLabels: { app: dns } }
  ingress:
    - fromCIDR: [192.0.2.77/32]
`),
      );
      assert.deepEqual(await runClient({ netns: net.ns }, 'udp', net.hostV4, s.port, { timeoutMs: 800 }), {
        ok: false,
        code: 'TIMEOUT',
      });
      await waitFlow(
        env,
        (r) =>
          r.direction === 'INGRESS' &&
          r.protocol === 'UDP' &&
          r.dstPort === s.port &&
          r.verdict === 'DROPPED',
        'udp ingress dropped',
      );
    });

    test('workload to workload over loopback, by labels', async () => {
      const a = env.registry.create('wa', { app: 'a' });
      const b = env.registry.create('wb', { app: 'b' });
      const c = env.registry.create('wc', { app: 'c' });
      const sb = await server(env, { cgroup: b.cgroupPath }, 'tcp', '127.0.0.1', 0);
      const host = await server(env, 'netns', 'tcp', env.net.nsV4, 0);
      env.controller.apply(
        policy(`
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: b-from-a }
spec:
  endpointSelector: { matchLabels: { app: b } }
  ingress:
    - fromEndpoints: [{ matchLabels: { app: a } }]
`),
      );
      env.controller.apply(
        policy(`
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: a-to-b }
spec:
  endpointSelector: { matchLabels: { app: a } }
  egress:
    - toEndpoints: [{ matchExpressions: [{ key: app, operator: In, values: [b] }] }]
`),
      );
      assertOk(await runClient({ cgroup: a.cgroupPath }, 'tcp', '127.0.0.1', sb.port));
      // a may reach b and nothing else
      assert.deepEqual(await runClient({ cgroup: a.cgroupPath }, 'tcp', env.net.nsV4, host.port), {
        ok: false,
        code: 'EPERM',
      });
      // c is not a: b's ingress drops its SYN
      assert.deepEqual(
        await runClient({ cgroup: c.cgroupPath }, 'tcp', '127.0.0.1', sb.port, { timeoutMs: 1000 }),
        {
          ok: false,
          code: 'TIMEOUT',
        },
      );
      const out = await waitFlow(
        env,
        (r) =>
          r.direction === 'EGRESS' &&
          r.event === 'NEW' &&
          r.srcIdentity === a.identity &&
          r.dstPort === sb.port,
        'a -> b egress',
      );
      assert.equal(out.rec.dstIdentity, b.identity);
      assert.equal(out.rec.verdict, 'FORWARDED');
      assert.deepEqual(out.line.flow.destination.labels, ['app=b']);
      const inA = await waitFlow(
        env,
        (r) => r.direction === 'INGRESS' && r.event === 'NEW' && r.srcIdentity === a.identity,
        'a -> b ingress',
      );
      assert.equal(inA.rec.verdict, 'FORWARDED');
      assert.equal(inA.rec.policyId, env.controller.policyId('b-from-a'));
      const inC = await waitFlow(
        env,
        (r) => r.direction === 'INGRESS' && r.event === 'NEW' && r.srcIdentity === c.identity,
        'c -> b ingress',
      );
      assert.equal(inC.rec.verdict, 'DROPPED');
      assert.equal(inC.rec.defaultDeny, true);
      const cOut = await waitFlow(
        env,
        (r) => r.direction === 'EGRESS' && r.event === 'NEW' && r.srcIdentity === c.identity,
        'c egress (no policy)',
      );
      assert.equal(cOut.rec.noPolicy, true);
      assert.equal(cOut.line.flow.osprey.no_policy, true);
    });
  });

  describe('precedence, audit and revocation', () => {
    let env: Env;
    before(async () => {
      env = await setup(14);
    });
    after(() => teardown(env));

    test('deny beats allow across policies', async () => {
      const { net } = env;
      const w = env.registry.create('deny', { app: 'deny' });
      await server(env, 'netns', 'tcp', net.nsV4, 6000);
      await server(env, 'netns', 'tcp', net.nsV4, 6001);
      env.controller.apply(
        policy(`
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: allow-all-world }
spec:
  endpointSelector: { matchLabels: { app: deny } }
  egress:
    - toEntities: [world]
`),
      );
      env.controller.apply(
        policy(`
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: deny-6000 }
spec:
  endpointSelector: { matchLabels: { app: deny } }
  egressDeny:
    - toCIDR: [${net.nsV4}/32]
      toPorts: [{ ports: [{ port: "6000" }] }]
`),
      );
      const place = { cgroup: w.cgroupPath };
      assert.deepEqual(await runClient(place, 'tcp', net.nsV4, 6000), { ok: false, code: 'EPERM' });
      assertOk(await runClient(place, 'tcp', net.nsV4, 6001));
      const d = await waitFlow(env, (r) => r.dstPort === 6000 && r.event === 'NEW', '6000');
      assert.equal(d.rec.verdict, 'DROPPED');
      assert.equal(d.rec.denyRule, true);
      assert.deepEqual(d.line.flow.egress_denied_by, [{ name: 'deny-6000', rule: 'spec.egressDeny[0]' }]);
      const a = await waitFlow(env, (r) => r.dstPort === 6001 && r.event === 'NEW', '6001');
      assert.deepEqual(a.line.flow.egress_allowed_by, [{ name: 'allow-all-world', rule: 'spec.egress[0]' }]);
    });

    test('audit mode drops nothing and reports AUDIT', async () => {
      const { net } = env;
      const w = env.registry.create('audit', { app: 'audit' });
      await server(env, 'netns', 'tcp', net.nsV4, 6100);
      env.controller.apply(
        policy(`
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: audited
  annotations: { osprey.io/audit-mode: "true" }
spec:
  endpointSelector: { matchLabels: { app: audit } }
  egress:
    - toPorts: [{ ports: [{ port: "53", protocol: UDP }] }]
`),
      );
      assertOk(await runClient({ cgroup: w.cgroupPath }, 'tcp', net.nsV4, 6100));
      const f = await waitFlow(env, (r) => r.dstPort === 6100 && r.event === 'NEW', 'audit');
      assert.equal(f.rec.verdict, 'AUDIT');
      assert.equal(f.rec.defaultDeny, true);
      assert.equal(f.line.flow.verdict, 'AUDIT');
      assert.deepEqual(f.line.flow.egress_denied_by, [{ name: 'audited', default_deny: true }]);
      assert.ok(env.controller.datapath.counters().audited >= 1);
    });

    // every flow reported: the connection has socket storage from connect(); allowed flows not
    // reported: it has none until the change, when the agent's socket pass gives it storage
    const quiet = (1 << FlowEvent.NEW) | (1 << FlowEvent.ESTABLISHED) | (1 << FlowEvent.CLOSED);
    for (const [flows, port, skip, v6] of [
      ['every flow reported', 6200, 0, false],
      ['allowed flows not reported', 6250, quiet, false],
      ['allowed flows not reported, IPv6', 6260, quiet, true],
    ] as const) {
      test(`a live policy change cuts an established connection (${flows})`, async () => {
        const { net } = env;
        const name = `live${skip ? '-quiet' : ''}${v6 ? '-6' : ''}`;
        const host = v6 ? net.nsV6 : net.nsV4;
        const w = env.registry.create(name, { app: name });
        const s = await server(env, 'netns', 'tcp', host, port);
        const allow = (p: number) => allowTcpTo(name, host, p);
        env.controller.datapath.setFlowSkip(skip);
        env.controller.apply(allow(s.port));
        // the workload's older sockets are marked before its connections may go without storage
        await env.controller.datapath.passesSettled();
        const light = env.controller.datapath.counters().light;
        const st = startStreamer({ cgroup: w.cgroupPath }, host, s.port, 30);
        try {
          const deadline = Date.now() + 3000;
          while (st.echoes() < 5 && Date.now() < deadline) await sleep(20);
          assert.ok(st.echoes() >= 5, `echoes before the change: ${st.echoes()}`);
          assert.equal(
            env.controller.datapath.counters().light - light,
            skip ? 1 : 0,
            skip ? 'the connection has no socket storage' : 'the connection has socket storage',
          );
          const { generation } = env.controller.apply(allow(s.port + 1));
          const rv = await waitFlow(env, (r) => r.event === 'REVOKED' && r.dstPort === s.port, 'REVOKED');
          // let echoes already in flight (and the child's stdout) settle, then watch for a second
          await sleep(500);
          const atCut = st.echoes();
          await sleep(1000);
          assert.equal(st.echoes(), atCut, 'no echo after the permission was revoked');
          assert.equal(rv.rec.verdict, 'DROPPED');
          assert.equal(rv.rec.defaultDeny, true);
          assert.equal(rv.rec.generation, String(generation));
          assert.equal(rv.rec.policyId, env.controller.policyId(name));
          assert.ok(rv.rec.srcPort > 0, `the revoked connection's own port: ${rv.rec.srcPort}`);
          assert.ok(env.controller.datapath.counters().revoked >= 1);
          // and giving it back lets the same connection through again
          env.controller.apply(allow(s.port));
          const resumed = Date.now() + 5000;
          while (st.echoes() === atCut && Date.now() < resumed) await sleep(50);
          assert.ok(st.echoes() > atCut, 'echoes resume when the permission is back');
        } finally {
          st.stop();
          env.controller.datapath.setFlowSkip(0);
        }
      });
    }
    test('a connection opened before its cgroup became a workload is left alone by policy changes', async () => {
      const { net } = env;
      const s = await server(env, 'netns', 'tcp', net.nsV4, 6280);
      const dir = path.join(env.registry.parentDir, 'before');
      mkdirSync(dir, { recursive: true });
      const st = startStreamer({ cgroup: dir }, net.nsV4, s.port, 30);
      try {
        const deadline = Date.now() + 3000;
        while (st.echoes() < 5 && Date.now() < deadline) await sleep(20);
        assert.ok(st.echoes() >= 5, `echoes before the workload: ${st.echoes()}`);
        env.registry.adopt('before', dir, { app: 'before' }, { managed: true });
        // a default-deny egress policy for it: its next connection is refused, the open one is not judged
        env.controller.apply(allowTcpTo('before', net.nsV4, s.port + 1));
        assert.deepEqual(await runClient({ cgroup: dir }, 'tcp', net.nsV4, s.port), {
          ok: false,
          code: 'EPERM',
        });
        const atChange = st.echoes();
        await sleep(1000);
        assert.ok(st.echoes() > atChange + 5, `echoes after the change: ${atChange} -> ${st.echoes()}`);
        assert.deepEqual(
          env.flows.filter((f) => f.rec.event === 'REVOKED' && f.rec.dstPort === s.port).length,
          0,
          'no REVOKED flow for the connection from before',
        );
      } finally {
        st.stop();
      }
    });
    test('denied flows only: allowed traffic posts nothing, a drop and a revocation still do', async () => {
      const { net } = env;
      const w = env.registry.create('quiet', { app: 'quiet' });
      const s = await server(env, 'netns', 'tcp', net.nsV4, 6300);
      const allow = (port: number) => allowTcpTo('quiet', net.nsV4, port);
      env.controller.datapath.setFlowSkip(
        (1 << FlowEvent.NEW) | (1 << FlowEvent.ESTABLISHED) | (1 << FlowEvent.CLOSED),
      );
      const st = startStreamer({ cgroup: w.cgroupPath }, net.nsV4, s.port, 30);
      try {
        env.controller.apply(allow(s.port));
        assertOk(await runClient({ cgroup: w.cgroupPath }, 'tcp', net.nsV4, s.port));
        const denied = await runClient({ cgroup: w.cgroupPath }, 'tcp', net.nsV4, s.port + 1);
        assert.deepEqual(denied, { ok: false, code: 'EPERM' });
        const drop = await waitFlow(env, (r) => r.event === 'NEW' && r.dstPort === s.port + 1, 'NEW DROPPED');
        assert.equal(drop.rec.verdict, 'DROPPED');
        const deadline = Date.now() + 3000;
        while (st.echoes() < 5 && Date.now() < deadline) await sleep(20);
        assert.ok(st.echoes() >= 5, `echoes before the change: ${st.echoes()}`);
        env.controller.apply(allow(s.port + 2));
        const rv = await waitFlow(env, (r) => r.event === 'REVOKED' && r.dstPort === s.port, 'REVOKED');
        assert.equal(rv.rec.verdict, 'DROPPED');
        const ofAllowed = env.flows.filter((f) => f.rec.dstPort === s.port && f.rec.event !== 'REVOKED');
        assert.deepEqual(
          ofAllowed.map((f) => `${f.rec.event} ${f.rec.verdict}`),
          [],
          'no NEW, ESTABLISHED or CLOSED flow of allowed traffic',
        );
      } finally {
        st.stop();
        env.controller.datapath.setFlowSkip(0);
      }
    });
  });

  describe("the host's addresses", () => {
    let env: Env;
    before(async () => {
      env = await setup(15);
    });
    after(() => teardown(env));

    test('an address the host gets after the start is the host, not the world, within seconds', async () => {
      // TEST-NET-1, on loopback for the test's length only
      const addr = '192.0.2.177';
      const isHost = () => env.controller.datapath.hostCidrs.some((c) => c.text === `${addr}/32`);
      const w = env.registry.create('hostaddr', { app: 'hostaddr' });
      const srv = env.registry.create('hostaddr-srv', { app: 'hostaddr-srv' });
      env.controller.apply(
        policy(`
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: world-only }
spec:
  endpointSelector: { matchLabels: { app: hostaddr } }
  egress:
    - toEntities: [world]
`),
      );
      assert.equal(isHost(), false);
      execFileSync('ip', ['addr', 'add', `${addr}/32`, 'dev', 'lo']);
      try {
        const s = await server(env, { cgroup: srv.cgroupPath }, 'tcp', addr);
        // the world may be reached, the host may not: once the address is known as the host's
        const deadline = Date.now() + 3 * HOST_ADDRESS_CHECK_MS;
        let r: ClientResult;
        do r = await runClient({ cgroup: w.cgroupPath }, 'tcp', addr, s.port);
        while (r.ok && Date.now() < deadline);
        assert.deepEqual(
          r,
          { ok: false, code: 'EPERM' },
          'a world-only workload reached the new host address',
        );
        assert.ok(isHost());
      } finally {
        execFileSync('ip', ['addr', 'del', `${addr}/32`, 'dev', 'lo']);
      }
      const deadline = Date.now() + 3 * HOST_ADDRESS_CHECK_MS;
      while (isHost() && Date.now() < deadline) await sleep(50);
      assert.equal(isHost(), false, 'a removed address is no longer the host');
    });
  });
});
