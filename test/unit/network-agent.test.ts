// The pure parts of network policy in the agent: labels, the workloads config
// key, routing policies by kind, `osprey run` arguments, the flow filter and
// the compact flow line.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { UserError } from '../../src/agent/fs-util.js';
import { documentKinds, isNetworkPolicyText } from '../../src/agent/netpolicies.js';
import { policyDocuments } from '../../src/agent/policy-documents.js';
import { parseConfiguredWorkloads } from '../../src/agent/workload-config.js';
import { configuredName } from '../../src/agent/workloads.js';
import { parseRunArgs } from '../../src/cli/run.js';
import { encodeEvent, eventLine } from '../../src/events/encode.js';
import {
  BuiltFlowEvent,
  encodeFlowLine,
  type FlowEvent,
  makeFlowFilter,
  renderFlowCompact,
} from '../../src/events/flow.js';
import type { ExportEvent } from '../../src/events/types.js';
import { compileFilter } from '../../src/export/filter.js';
import { ktimeToTime } from '../../src/process/clock.js';
import {
  decodeFlowRecord,
  EXEC_BY_COOKIE_MAX,
  FlowBuilder,
  type FlowRecord,
  toHubbleFlow,
} from '../../src/sensors/network/decode.js';
import { FLOW, NP, VERDICT } from '../../src/sensors/network/layout.js';
import { eventColumns } from '../../src/store/columns.js';
import { labelProblems, labelsText, parseLabelArgs } from '../../src/workload/labels.js';

const flow = (over: Partial<FlowEvent['flow']> = {}): FlowEvent => ({
  flow: {
    time: '2026-11-25T08:13:22.123456789Z',
    verdict: 'DROPPED',
    drop_reason_desc: 'POLICY_DENIED',
    IP: { source: '10.248.60.1', destination: '10.248.60.2', ipVersion: 'IPv4' },
    l4: { TCP: { source_port: 0, destination_port: 8081 } },
    source: { identity: 256, labels: ['app=web', 'tier=front'], workload: 'web-1' },
    destination: { identity: 2, labels: ['reserved:world'] },
    Type: 'L3_L4',
    node_name: 'n',
    traffic_direction: 'EGRESS',
    is_reply: false,
    Summary: '',
    egress_denied_by: [{ name: 'web-egress', rule: 'spec.egressDeny[0]' }],
    osprey: { event: 'NEW', socket_cookie: '1', policy_generation: '3' },
    ...over,
  },
  node_name: 'n',
  time: '2026-11-25T08:13:22.123456789Z',
});
const ev = (f: FlowEvent) => f as unknown as ExportEvent;

describe('workload labels', () => {
  it('parses key=value and refuses what a selector could not name', () => {
    assert.deepEqual(parseLabelArgs(['app=web', 'tier=front', 'k8s.io/role=db']), {
      app: 'web',
      tier: 'front',
      'k8s.io/role': 'db',
    });
    assert.throws(() => parseLabelArgs(['app']), /not key=value/);
    assert.throws(() => parseLabelArgs(['app=a', 'app=b']), /given twice/);
    assert.throws(() => parseLabelArgs(['reserved:host=x']), /reserved/);
    assert.throws(() => parseLabelArgs(['app=has space']), /value "has space"/);
    assert.deepEqual(labelProblems({ 'Bad_Prefix.x/app': 'v' }).length, 1);
    assert.equal(labelsText({ tier: 'front', app: 'web', flag: '' }), 'app=web,flag,tier=front');
  });
});

describe('the workloads config key', () => {
  it('reads a list of {path, labels, name?} and names each problem with its line', () => {
    assert.deepEqual(
      parseConfiguredWorkloads([{ path: 'system.slice/nginx.service', labels: { app: 'nginx', v: 2 } }]),
      [{ path: 'system.slice/nginx.service', labels: { app: 'nginx', v: '2' } }],
    );
    assert.equal(configuredName({ path: 'system.slice/nginx.service', labels: {} }), 'nginx.service');
    assert.deepEqual(parseConfiguredWorkloads('{"path":"a/b","labels":{"app":"x"},"name":"bee"}'), [
      { path: 'a/b', labels: { app: 'x' }, name: 'bee' },
    ]);
    const dir = mkdtempSync('/tmp/osprey-wlcfg-');
    const file = path.join(dir, 'osprey.yaml');
    try {
      writeFileSync(
        file,
        'args-max: 10\nworkloads:\n  - path: a\n    labels: {app: ok}\n  - path: b\n    labels: {}\n    extra: 1\n',
      );
      assert.throws(
        () =>
          parseConfiguredWorkloads(
            [
              { path: 'a', labels: { app: 'ok' } },
              { path: 'b', labels: {}, extra: 1 },
            ],
            file,
          ),
        (err: unknown) => {
          assert.ok(err instanceof UserError);
          assert.match(err.message, new RegExp(`${file}:5:5: workloads\\[1\\]\\.extra: unknown field`));
          assert.match(err.message, /workloads\[1\]\.labels: give at least one label/);
          return true;
        },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.throws(
      () =>
        parseConfiguredWorkloads([
          { path: 'x/a', labels: { app: 'a' } },
          { path: 'y/a', labels: { app: 'b' } },
        ]),
      /a second workload named "a"/,
    );
  });
});

describe('policies routed by kind', () => {
  it('tells network policies from TracingPolicies', () => {
    const cnp = 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: a}\n';
    const ccnp = 'apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: b}\n';
    const tp = 'apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: c}\n';
    assert.equal(isNetworkPolicyText(cnp), true);
    assert.equal(isNetworkPolicyText(ccnp), true);
    assert.equal(isNetworkPolicyText(tp), false);
    assert.equal(isNetworkPolicyText('not: [valid'), false);
    assert.deepEqual(documentKinds(`${cnp}---\n${ccnp}`), [
      'CiliumNetworkPolicy',
      'CiliumClusterwideNetworkPolicy',
    ]);

    // the text read last is answered from memory; another text is read again
    for (const [text, want] of [
      [cnp, true],
      [cnp, true],
      [tp, false],
      [cnp, true],
      [tp, false],
    ] as const) {
      assert.equal(isNetworkPolicyText(text), want);
    }
    assert.deepEqual(policyDocuments(tp), [{ kind: 'TracingPolicy', name: 'c' }]);
    assert.deepEqual(policyDocuments(`${tp}---\n${cnp}`), [
      { kind: 'TracingPolicy', name: 'c' },
      { kind: 'CiliumNetworkPolicy', name: 'a' },
    ]);
  });
});

describe('osprey run arguments', () => {
  it('takes flags up to -- or the first argument, the rest is the command', () => {
    assert.deepEqual(parseRunArgs(['--label', 'app=web', '-l', 'x=y', '--name=n', '--', 'curl', '-s', 'u']), {
      labels: ['app=web', 'x=y'],
      name: 'n',
      help: false,
      command: ['curl', '-s', 'u'],
    });
    assert.deepEqual(parseRunArgs(['--label=app=web', 'sleep', '--help']).command, ['sleep', '--help']);
    assert.throws(() => parseRunArgs(['--bogus', 'x']), /unknown flag --bogus/);
    assert.throws(() => parseRunArgs(['--label']), /needs a value/);
  });
});

describe('flow filter and compact line', () => {
  it('filters by verdict, labels on either end, port and policy', () => {
    const f = ev(flow());
    assert.equal(makeFlowFilter({})(f), true);
    assert.equal(makeFlowFilter({ verdicts: ['dropped'] })(f), true);
    assert.equal(makeFlowFilter({ verdicts: ['FORWARDED', 'AUDIT'] })(f), false);
    assert.equal(makeFlowFilter({ labels: ['app=web', 'tier=front'] })(f), true);
    assert.equal(makeFlowFilter({ labels: ['app=web', 'tier=back'] })(f), false);
    assert.equal(makeFlowFilter({ labels: ['reserved:world'] })(f), true);
    assert.equal(makeFlowFilter({ ports: [8081] })(f), true);
    assert.equal(makeFlowFilter({ ports: [80] })(f), false);
    assert.equal(makeFlowFilter({ policy: 'web-egress' })(f), true);
    assert.equal(makeFlowFilter({ policy: 'other' })(f), false);
    assert.equal(makeFlowFilter({})({ process_exec: {}, node_name: 'n', time: 't' } as ExportEvent), false);
    assert.throws(() => makeFlowFilter({ verdicts: ['LOST'] }), /verdict "LOST"/);
    assert.throws(() => makeFlowFilter({ ports: [70000] }), /port 70000/);
  });

  it('renders time, ends with labels, protocol, verdict and policy/rule', () => {
    assert.equal(
      renderFlowCompact(flow()),
      'Nov 25 08:13:22.123 10.248.60.1:0 (web-1: app=web,tier=front) -> 10.248.60.2:8081 (reserved:world) TCP DROPPED web-egress/spec.egressDeny[0]',
    );
    const closed = flow({
      verdict: 'FORWARDED',
      egress_denied_by: undefined,
      osprey: {
        event: 'CLOSED',
        socket_cookie: '1',
        policy_generation: '3',
        bytes_sent: '2',
        bytes_received: '7',
      },
    });
    assert.match(renderFlowCompact(closed), / TCP FORWARDED - CLOSED sent 2 received 7$/);
    const dd = flow({ egress_denied_by: [{ name: 'p', default_deny: true }] });
    assert.match(renderFlowCompact(dd), / TCP DROPPED p\/default-deny$/);
  });
});

/** A flow record as the kernel posts one; tests change what they need. */
const RECORD: FlowRecord = {
  time: '2026-11-25T08:13:22.123456789Z',
  cpu: 1,
  pid: 4242,
  tid: 4242,
  cgroupId: 12345n,
  cookie: '99',
  generation: '3',
  event: 'NEW',
  direction: 'EGRESS',
  protocol: 'TCP',
  ipVersion: 4,
  srcAddr: '10.248.60.1',
  dstAddr: '10.248.60.2',
  srcPort: 0,
  dstPort: 8080,
  srcIdentity: 256,
  dstIdentity: 2,
  verdict: 'FORWARDED',
  defaultDeny: false,
  denyRule: false,
  noPolicy: false,
  policyId: 1,
  rule: 0,
  bytesSent: '0',
  bytesReceived: '0',
};

describe('flow JSON', () => {
  it('the flow encoder writes what JSON.stringify writes, for every shape toHubbleFlow builds', () => {
    // the registry hands out the label set it keeps for an identity, the same object each time
    const web = { app: 'web', 'k8s.io/x': 'y' };
    const ctx = {
      nodeName: 'node "a"',
      labels: (id: number) => (id === 256 ? web : undefined),
      workloadName: (cg: bigint) => (cg === 12345n ? 'web-1' : undefined),
      policyName: (id: number) => (id === 1 ? 'web-egress' : undefined),
    };
    const variants: Partial<FlowRecord>[] = [
      {},
      { event: 'CLOSED', bytesSent: '2', bytesReceived: '7' },
      { verdict: 'DROPPED', defaultDeny: true, rule: undefined },
      { verdict: 'DROPPED', denyRule: true, rule: 3 },
      { verdict: 'AUDIT', policyId: 7, rule: undefined, defaultDeny: true },
      { noPolicy: true, policyId: 0, rule: undefined, pid: 0 },
      { direction: 'INGRESS', protocol: 'UDP', srcIdentity: 1, dstIdentity: 256, event: 'REVOKED' },
      { ipVersion: 6, srcAddr: 'fd00:248:60::1', dstAddr: '', cgroupId: 1n },
    ];
    const builder = new FlowBuilder(ctx);
    const base = RECORD;
    for (const v of variants) {
      const line = builder.build({ ...base, ...v }) as unknown as FlowEvent;
      // the line the builder wrote along with the object
      assert.equal(encodeFlowLine(line), JSON.stringify(line));
      assert.equal(encodeEvent(line as unknown as ExportEvent), JSON.stringify(line));
      // a copy (what an export filter makes) goes through the encoder of objects
      const copy = { ...line, flow: { ...line.flow } };
      assert.equal(BuiltFlowEvent.encodedOf(copy), undefined);
      assert.equal(encodeFlowLine(copy), JSON.stringify(line));
      // what gives the line again (the ring went round, or the store wants its text) gives the same
      assert.equal((line as BuiltFlowEvent).linePieces().join(''), JSON.stringify(line));
      const encoded = eventLine(line as unknown as ExportEvent);
      const stored = Buffer.alloc(encoded.length);
      assert.equal(stored.toString('utf8', 0, encoded.writeStored(stored, 0)), JSON.stringify(line));
      // built alone, it is the same
      assert.equal(JSON.stringify(toHubbleFlow({ ...base, ...v }, ctx)), JSON.stringify(line));
    }
    // names beyond ASCII are written as UTF-8
    const intl = new FlowBuilder({
      ...ctx,
      nodeName: 'nœud',
      workloadName: () => 'wéb-1',
      policyName: () => 'politique-été',
    });
    for (const v of variants) {
      const ev = intl.build({ ...base, ...v });
      assert.equal(encodeFlowLine(ev), JSON.stringify(ev));
      assert.equal(eventLine(ev as unknown as ExportEvent).length, Buffer.byteLength(JSON.stringify(ev)));
    }
    // what flows share is frozen: a reader cannot change another flow through it
    const a = builder.build(base);
    const b = builder.build({ ...base, cookie: '100' });
    assert.equal(a.flow.source, b.flow.source);
    assert.ok(Object.isFrozen(a.flow.source) && Object.isFrozen(a.flow.source.labels));
    assert.ok(Object.isFrozen(a.flow.egress_allowed_by));
    // a workload renamed, or an identity's labels changed, is seen by the next flow
    let wl = 'web-1';
    const moving = new FlowBuilder({ ...ctx, workloadName: () => wl });
    assert.equal(moving.build(base).flow.source.workload, 'web-1');
    wl = 'web-2';
    assert.equal(moving.build(base).flow.source.workload, 'web-2');
    // any other shape is JSON.stringify's
    const odd = { flow: { verdict: 'DROPPED' }, node_name: 'n', time: 't' } as unknown as FlowEvent;
    assert.equal(encodeFlowLine(odd), JSON.stringify(odd));
  });
});

describe('the process of a flow', () => {
  // posted outside any process unless a test gives it a pid
  const rec = (over: Partial<FlowRecord>): FlowRecord => ({ ...RECORD, pid: 0, tid: 0, ...over });
  const execs = new Map([[4242, 'ZXhlYy00MjQy']]);
  const lookups: number[] = [];
  const builder = new FlowBuilder({
    nodeName: 'n',
    labels: () => undefined,
    policyName: () => 'web-egress',
    execIdOf: (pid) => {
      lookups.push(pid);
      return execs.get(pid);
    },
  });

  it("names the process by its pid, and a TCP connection's later flows (posted outside it) by its socket", () => {
    const connect = builder.build(rec({ pid: 4242, tid: 4243, cookie: '10' }));
    assert.equal(connect.flow.osprey.exec_id, 'ZXhlYy00MjQy');
    assert.equal(encodeFlowLine(connect), JSON.stringify(connect));
    assert.match(encodeFlowLine(connect), /"pid":4242,"exec_id":"ZXhlYy00MjQy"/);
    const est = builder.build(rec({ event: 'ESTABLISHED', cookie: '10', srcPort: 40000 }));
    assert.equal(est.flow.osprey.exec_id, 'ZXhlYy00MjQy');
    assert.equal(est.flow.osprey.pid, undefined);
    assert.equal(encodeFlowLine(est), JSON.stringify(est));
    const closed = builder.build(rec({ event: 'CLOSED', cookie: '10', bytesSent: '5', bytesReceived: '9' }));
    assert.equal(closed.flow.osprey.exec_id, 'ZXhlYy00MjQy');
    // the connection is over: its cookie is forgotten
    assert.equal(builder.build(rec({ event: 'ESTABLISHED', cookie: '10' })).flow.osprey.exec_id, undefined);
    // another socket, or a pid the cache does not know: no exec_id, and no key in the JSON
    const other = builder.build(rec({ event: 'ESTABLISHED', cookie: '11' }));
    assert.equal(other.flow.osprey.exec_id, undefined);
    assert.doesNotMatch(encodeFlowLine(other), /exec_id/);
    assert.equal(builder.build(rec({ pid: 7, cookie: '12' })).flow.osprey.exec_id, undefined);
    assert.deepEqual(lookups, [4242, 7]);
  });

  it('remembers at most EXEC_BY_COOKIE_MAX open connections, forgetting the oldest', () => {
    const b = new FlowBuilder({
      nodeName: 'n',
      labels: () => undefined,
      policyName: () => 'p',
      execIdOf: () => 'ZQ==',
    });
    for (let i = 0; i <= EXEC_BY_COOKIE_MAX; i++) b.build(rec({ pid: 1, cookie: String(i) }));
    assert.equal(b.build(rec({ event: 'ESTABLISHED', cookie: '0' })).flow.osprey.exec_id, undefined);
    assert.equal(b.build(rec({ event: 'ESTABLISHED', cookie: '1' })).flow.osprey.exec_id, 'ZQ==');
    assert.equal(
      b.build(rec({ event: 'ESTABLISHED', cookie: String(EXEC_BY_COOKIE_MAX) })).flow.osprey.exec_id,
      'ZQ==',
    );
  });

  it('the store indexes a flow under its process and its deciding policy; policy_names filters match it', () => {
    const allowed = builder.build(rec({ pid: 4242, cookie: '20' })) as unknown as ExportEvent;
    const c = eventColumns(allowed);
    assert.equal(c.type, 'flow');
    assert.equal(c.execId, 'ZXhlYy00MjQy');
    assert.equal(c.policyName, 'web-egress');
    assert.equal(c.process, undefined);
    const denied = builder.build(
      rec({ pid: 9, cookie: '21', verdict: 'DROPPED', defaultDeny: true, rule: undefined }),
    ) as unknown as ExportEvent;
    assert.deepEqual([eventColumns(denied).execId, eventColumns(denied).policyName], [null, 'web-egress']);
    const unpoliced = builder.build(rec({ cookie: '22', noPolicy: true, policyId: 0, rule: undefined }));
    assert.equal(eventColumns(unpoliced as unknown as ExportEvent).policyName, null);
    const byPolicy = compileFilter({ policy_names: ['web-egress'] });
    assert.equal(byPolicy(allowed), true);
    assert.equal(byPolicy(denied), true);
    assert.equal(byPolicy(unpoliced as unknown as ExportEvent), false);
    assert.equal(compileFilter({ policy_names: ['other'] })(allowed), false);
  });
});

describe('flow records', () => {
  /** An np_flow as the kernel writes it. */
  function record(o: {
    ktime: bigint;
    cookie: bigint;
    bytesSent: bigint;
    family: number;
    src: number[];
    dst: number[];
  }): Buffer {
    const b = Buffer.alloc(FLOW.SIZE + 8);
    const at = 8; // not at the start of its buffer, as in a batch
    b.writeUInt16LE(NP.REC_FLOW, at + FLOW.type);
    b.writeBigUInt64LE(o.ktime, at + FLOW.ktime);
    b.writeBigUInt64LE(12345n, at + FLOW.cgroup_id);
    b.writeBigUInt64LE(o.cookie, at + FLOW.cookie);
    b.writeBigUInt64LE(7n, at + FLOW.generation);
    b.writeBigUInt64LE(o.bytesSent, at + FLOW.bytes_sent);
    b[at + FLOW.event] = 3;
    b[at + FLOW.proto] = NP.PROTO_TCP;
    b[at + FLOW.family] = o.family;
    b[at + FLOW.v + VERDICT.verdict] = 1;
    b.writeUInt16LE(NP.RULE_NONE, at + FLOW.v + VERDICT.rule);
    Buffer.from(o.src).copy(b, at + FLOW.src_addr);
    Buffer.from(o.dst).copy(b, at + FLOW.dst_addr);
    return b;
  }

  it('decodes times, 64-bit counters and addresses as the flow JSON writes them', () => {
    const stamps = [
      0n,
      1n,
      999_999_999n,
      1_000_000_000n,
      86_400_123_456_789n,
      2n ** 53n - 1n,
      2n ** 53n,
      2n ** 60n + 999_999_999n,
    ];
    for (const ktime of stamps) {
      for (const cookie of [0n, 42n, 2n ** 53n - 1n, 2n ** 53n + 1n, 2n ** 64n - 1n]) {
        const b = record({
          ktime,
          cookie,
          bytesSent: cookie,
          family: NP.FAMILY_INET,
          src: [10, 248, 60, 1],
          dst: [],
        });
        const r = decodeFlowRecord(b, 8, FLOW.SIZE);
        assert.equal(r.time, ktimeToTime(ktime), `time of ${ktime}`);
        assert.equal(r.cookie, cookie.toString());
        assert.equal(r.bytesSent, cookie.toString());
        assert.equal(r.generation, '7');
        assert.equal(r.cgroupId, 12345n);
        assert.equal(r.srcAddr, '10.248.60.1');
        assert.equal(r.dstAddr, '', 'an address of zeros is not known yet');
        assert.equal(r.event, 'CLOSED');
        assert.equal(r.rule, undefined);
      }
    }
    const v6 = [0xfd, 0, 2, 0x48, 0, 0x60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const r6 = decodeFlowRecord(
      record({
        ktime: 5n,
        cookie: 1n,
        bytesSent: 0n,
        family: NP.FAMILY_INET6,
        src: v6,
        dst: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
      }),
      8,
      FLOW.SIZE,
    );
    assert.equal(r6.ipVersion, 6);
    assert.equal(r6.srcAddr, 'fd00:248:60::1');
    assert.equal(r6.dstAddr, '::1');
    assert.throws(() => decodeFlowRecord(Buffer.alloc(16), 0, 16), /flow record of 16 bytes/);
  });
});
