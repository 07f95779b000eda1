// The network policy compiler: its tables, looked up the way the kernel
// looks them up, must give the verdict a direct reading of the rules gives,
// for every peer and port; and selectors that select nothing are reported.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addressBytes, cidrContains, maskTo, parseCidr } from '../../src/netpolicy/cidr.js';
import {
  type CompiledTables,
  compileNetworkPolicies,
  compileNetworkPoliciesSliced,
  type Endpoint,
  type NumberedPolicy,
  rangeToPrefixes,
  type Verdict,
} from '../../src/netpolicy/compile.js';
import { HOST_IDENTITY, selectorMatches, WORLD_IDENTITY } from '../../src/netpolicy/identity.js';
import type { Cidr, Direction, NetworkPolicy, NetworkRule } from '../../src/netpolicy/model.js';
import { parseNetworkPolicyText } from '../../src/netpolicy/parse.js';
import { cidrPolicyText } from '../lib/policies.js';

function parse(yaml: string): NetworkPolicy[] {
  const r = parseNetworkPolicyText(yaml, 'c.yaml');
  assert.deepEqual(
    r.errors.map((e) => e.toString()),
    [],
  );
  return r.policies;
}

const P = parse(`
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: web }
spec:
  endpointSelector: { matchLabels: { app: web } }
  egress:
    - toEndpoints: [{ matchLabels: { app: db } }]
      toPorts: [{ ports: [{ port: "5432", protocol: TCP }] }]
    - toCIDRSet: [{ cidr: 10.0.0.0/8, except: [10.96.0.0/12, 10.1.2.3/32] }]
      toPorts: [{ ports: [{ port: "1000", endPort: 2000 }] }]
    - toCIDR: [10.96.5.0/24, "fd00:1::/32"]
    - toPorts: [{ ports: [{ port: "53", protocol: UDP }] }]
    - toEntities: [host]
      toPorts: [{ ports: [{ port: "22", protocol: TCP }] }]
  ingress:
    - fromEntities: [world]
      toPorts: [{ ports: [{ port: "8000", endPort: 8099, protocol: TCP }] }]
    - fromEndpoints: [{ matchExpressions: [{ key: app, operator: NotIn, values: [web] }] }]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: deny }
spec:
  endpointSelector: { matchExpressions: [{ key: app, operator: Exists }] }
  egressDeny:
    - toCIDR: [10.0.0.0/16]
      toPorts: [{ ports: [{ port: "1500", endPort: 1600, protocol: TCP }] }]
  enableDefaultDeny: { egress: false }
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: audit
  annotations: { osprey.io/audit-mode: "true" }
spec:
  endpointSelector: { matchLabels: { app: db } }
  ingress:
    - fromEndpoints: [{ matchLabels: { app: web } }]
      toPorts: [{ ports: [{ port: "5432" }] }]
  egressDeny:
    - toEntities: [world]
      toPorts: [{ ports: [{ port: "25" }] }]
`);

const POLICIES: NumberedPolicy[] = P.map((policy, i) => ({ id: i + 1, policy }));
const ENDPOINTS: Endpoint[] = [
  { identity: 256, labels: { app: 'web' } },
  { identity: 257, labels: { app: 'db' } },
  { identity: 258, labels: { app: 'cache', tier: 'x' } },
  { identity: 259, labels: { other: 'y' } },
];

// ---- the kernel's lookups, in TypeScript -------------------------------------

type Peer = { identity: number } | { family: 4 | 6; addr: Buffer };

function tableVerdict(
  t: CompiledTables,
  identity: number,
  dir: Direction,
  peer: Peer,
  proto: number,
  port: number,
): Verdict | 'none' {
  let cls = 0;
  if ('identity' in peer) {
    cls =
      t.peers.find((p) => p.identity === identity && p.dir === dir && p.remote === peer.identity)?.cls ?? 0;
  } else {
    let best = -1;
    for (const c of t.cidrs) {
      if (c.identity !== identity || c.dir !== dir || c.cidr.family !== peer.family) continue;
      if (c.cidr.bits > best && maskTo(peer.addr, c.cidr.bits).equals(c.cidr.addr)) {
        best = c.cidr.bits;
        cls = c.cls;
      }
    }
  }
  let bestBits = -1;
  let v: Verdict | undefined;
  for (const e of t.ports) {
    if (e.identity !== identity || e.dir !== dir || e.cls !== cls || e.proto !== proto) continue;
    const mask = e.bits === 0 ? 0 : (0xffff << (16 - e.bits)) & 0xffff;
    if ((port & mask) === e.port && e.bits > bestBits) {
      bestBits = e.bits;
      v = e.verdict;
    }
  }
  if (v) return v;
  return t.defaults.find((d) => d.identity === identity && d.dir === dir)?.verdict ?? 'none';
}

// ---- the rules, read directly ----------------------------------------------

function ruleSelects(
  rule: NetworkRule,
  peer: Peer,
  labelsOf: (id: number) => Record<string, string>,
): boolean {
  if (rule.peers === 'any') return true;
  const { entities, endpoints, cidrs } = rule.peers;
  if (entities.includes('all')) return true;
  if ('identity' in peer) {
    if (entities.includes('cluster')) return true;
    if (peer.identity === HOST_IDENTITY) {
      return (
        entities.includes('host') ||
        endpoints.some(
          (s) =>
            Object.keys(s.matchLabels).some((k) => k.startsWith('reserved:')) &&
            selectorMatches(s, { 'reserved:host': '' }),
        )
      );
    }
    return endpoints.some((s) => selectorMatches(s, labelsOf(peer.identity)));
  }
  if (entities.includes('world')) return true;
  if (entities.includes('world-ipv4') && peer.family === 4) return true;
  if (entities.includes('world-ipv6') && peer.family === 6) return true;
  const host = { family: peer.family, bits: peer.family === 4 ? 32 : 128, addr: peer.addr, text: '' };
  return cidrs.some((c) => cidrContains(c.cidr, host) && !c.except.some((e) => cidrContains(e, host)));
}

function rulePort(rule: NetworkRule, proto: number, port: number): boolean {
  if (!rule.ports) return true;
  return rule.ports.some(
    (p) =>
      (p.protocol === 'ANY' || (p.protocol === 'TCP' ? 6 : 17) === proto) &&
      p.port <= port &&
      port <= p.endPort,
  );
}

function directVerdict(
  identity: number,
  dir: Direction,
  peer: Peer,
  proto: number,
  port: number,
): Verdict | 'none' {
  const labels = ENDPOINTS.find((e) => e.identity === identity)!.labels;
  const labelsOf = (id: number) => ENDPOINTS.find((e) => e.identity === id)!.labels;
  const selected = POLICIES.filter((p) => selectorMatches(p.policy.endpointSelector, labels));
  const matching: { id: number; p: NetworkPolicy; r: NetworkRule; deny: boolean }[] = [];
  for (const { id, policy } of selected) {
    const [a, d] =
      dir === 'egress' ? (['egress', 'egressDeny'] as const) : (['ingress', 'ingressDeny'] as const);
    for (const r of policy[a])
      if (ruleSelects(r, peer, labelsOf) && rulePort(r, proto, port))
        matching.push({ id, p: policy, r, deny: false });
    for (const r of policy[d])
      if (ruleSelects(r, peer, labelsOf) && rulePort(r, proto, port))
        matching.push({ id, p: policy, r, deny: true });
  }
  const ed = matching.find((m) => m.deny && !m.p.audit);
  if (ed) return { verdict: 2, flags: 2, rule: ed.r.index, policy: ed.id };
  const ad = matching.find((m) => m.deny && m.p.audit);
  if (ad) return { verdict: 3, flags: 2, rule: ad.r.index, policy: ad.id };
  const al = matching.find((m) => !m.deny);
  if (al) return { verdict: 1, flags: 0, rule: al.r.index, policy: al.id };
  const dd = (p: NetworkPolicy) =>
    p.enableDefaultDeny[dir] ??
    (dir === 'egress' ? p.egress.length + p.egressDeny.length : p.ingress.length + p.ingressDeny.length) > 0;
  const enf = selected.find((s) => !s.policy.audit && dd(s.policy));
  if (enf) return { verdict: 2, flags: 1, rule: 0xffff, policy: enf.id };
  const aud = selected.find((s) => s.policy.audit && dd(s.policy));
  if (aud) return { verdict: 3, flags: 1, rule: 0xffff, policy: aud.id };
  const any = selected.some((s) => {
    const [a, d] =
      dir === 'egress' ? (['egress', 'egressDeny'] as const) : (['ingress', 'ingressDeny'] as const);
    return s.policy[a].length + s.policy[d].length > 0;
  });
  return any ? { verdict: 1, flags: 0, rule: 0xffff, policy: 0 } : 'none';
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

test('tables looked up like the kernel agree with the rules read directly (random peers and ports)', () => {
  const t = compileNetworkPolicies(POLICIES, ENDPOINTS);
  const rand = rng(42);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const addrs = [
    '10.0.0.1',
    '10.0.200.9',
    '10.1.2.3',
    '10.1.2.4',
    '10.96.5.7',
    '10.97.0.1',
    '10.96.0.1',
    '192.0.2.1',
    'fd00:1::5',
    'fd00:2::5',
    '8.8.8.8',
  ];
  const ports = [
    0, 22, 25, 53, 999, 1000, 1499, 1500, 1600, 1601, 2000, 2001, 5432, 7999, 8000, 8050, 8099, 8100, 65535,
  ];
  for (let i = 0; i < 4000; i++) {
    const identity = pick(ENDPOINTS).identity;
    const dir = pick<Direction>(['egress', 'ingress']);
    const peer: Peer =
      rand() < 0.5
        ? { identity: pick([HOST_IDENTITY, ...ENDPOINTS.map((e) => e.identity)]) }
        : (addressBytes(pick(addrs)) as { family: 4 | 6; addr: Buffer });
    const proto = pick([6, 17]);
    const port = rand() < 0.7 ? pick(ports) : Math.floor(rand() * 65536);
    const want = directVerdict(identity, dir, peer, proto, port);
    const got = tableVerdict(t, identity, dir, peer, proto, port);
    assert.deepEqual(
      got,
      want,
      `identity ${identity} ${dir} ${JSON.stringify('identity' in peer ? peer : { family: peer.family, addr: peer.addr.toString('hex') })} proto ${proto} port ${port}`,
    );
  }
});

test('specific verdicts: deny beats allow, except, audit, default-deny, no policy', () => {
  const t = compileNetworkPolicies(POLICIES, ENDPOINTS);
  const v4 = (s: string) => addressBytes(s) as { family: 4; addr: Buffer };
  // web -> 10.0.0.1:1550/TCP: allowed by web rule 1, denied by policy "deny" rule 0
  assert.deepEqual(tableVerdict(t, 256, 'egress', v4('10.0.0.1'), 6, 1550), {
    verdict: 2,
    flags: 2,
    rule: 0,
    policy: 2,
  });
  // the same over UDP: the deny is TCP only
  assert.deepEqual(tableVerdict(t, 256, 'egress', v4('10.0.0.1'), 17, 1550), {
    verdict: 1,
    flags: 0,
    rule: 1,
    policy: 1,
  });
  // an except of rule 1 falls to default-deny ... unless rule 2 names it
  assert.deepEqual(tableVerdict(t, 256, 'egress', v4('10.1.2.3'), 6, 1200), {
    verdict: 2,
    flags: 1,
    rule: 0xffff,
    policy: 1,
  });
  assert.deepEqual(tableVerdict(t, 256, 'egress', v4('10.96.5.1'), 6, 1200), {
    verdict: 1,
    flags: 0,
    rule: 2,
    policy: 1,
  });
  // toPorts-only rule 3: UDP 53 to anyone, world or local
  assert.deepEqual(tableVerdict(t, 256, 'egress', v4('192.0.2.1'), 17, 53), {
    verdict: 1,
    flags: 0,
    rule: 3,
    policy: 1,
  });
  assert.deepEqual(tableVerdict(t, 256, 'egress', { identity: 258 }, 17, 53), {
    verdict: 1,
    flags: 0,
    rule: 3,
    policy: 1,
  });
  // host by entity, workloads by labels
  assert.deepEqual(tableVerdict(t, 256, 'egress', { identity: HOST_IDENTITY }, 6, 22), {
    verdict: 1,
    flags: 0,
    rule: 4,
    policy: 1,
  });
  assert.deepEqual(tableVerdict(t, 256, 'egress', { identity: 257 }, 6, 5432), {
    verdict: 1,
    flags: 0,
    rule: 0,
    policy: 1,
  });
  assert.deepEqual(tableVerdict(t, 256, 'egress', { identity: 258 }, 6, 5432), {
    verdict: 2,
    flags: 1,
    rule: 0xffff,
    policy: 1,
  });
  // CIDR rules never select local peers
  assert.deepEqual(tableVerdict(t, 256, 'egress', { identity: HOST_IDENTITY }, 6, 1200), {
    verdict: 2,
    flags: 1,
    rule: 0xffff,
    policy: 1,
  });
  // db: audit ingress (default-deny reported, not enforced), audit egress deny of world:25
  assert.deepEqual(tableVerdict(t, 257, 'ingress', { identity: 258 }, 6, 5432), {
    verdict: 3,
    flags: 1,
    rule: 0xffff,
    policy: 3,
  });
  assert.deepEqual(tableVerdict(t, 257, 'ingress', { identity: 256 }, 6, 5432), {
    verdict: 1,
    flags: 0,
    rule: 0,
    policy: 3,
  });
  assert.deepEqual(tableVerdict(t, 257, 'egress', v4('8.8.8.8'), 6, 25), {
    verdict: 3,
    flags: 2,
    rule: 0,
    policy: 3,
  });
  // enableDefaultDeny.egress false: the deny-only policy leaves other traffic alone
  assert.deepEqual(tableVerdict(t, 258, 'egress', v4('8.8.8.8'), 6, 80), {
    verdict: 1,
    flags: 0,
    rule: 0xffff,
    policy: 0,
  });
  // no policy selects identity 259 in ingress
  assert.equal(tableVerdict(t, 259, 'ingress', v4('8.8.8.8'), 6, 80), 'none');
  // world and host are distinct peers: identity numbers
  assert.equal(HOST_IDENTITY, 1);
  assert.equal(WORLD_IDENTITY, 2);
});

test('port ranges become the fewest aligned prefixes', () => {
  assert.deepEqual(rangeToPrefixes(0, 65535), [[0, 0]]);
  assert.deepEqual(rangeToPrefixes(80, 80), [[80, 16]]);
  assert.deepEqual(rangeToPrefixes(1022, 1025), [
    [1022, 15],
    [1024, 15],
  ]);
  const rand = rng(7);
  for (let i = 0; i < 300; i++) {
    const a = Math.floor(rand() * 65536);
    const b = a + Math.floor(rand() * (65536 - a));
    const prefixes = rangeToPrefixes(a, b);
    let next = a;
    for (const [p, bits] of prefixes) {
      assert.equal(p, next);
      const size = 2 ** (16 - bits);
      assert.equal(p % size, 0, 'aligned');
      next = p + size;
    }
    assert.equal(next, b + 1);
    assert.ok(prefixes.length <= 30);
  }
});

test('selectors that select nothing are warned about, with file, line and field', () => {
  const t = compileNetworkPolicies(POLICIES, [{ identity: 300, labels: { app: 'web' } }]);
  const msgs = t.warnings.map((w) => `${w.policy} ${w.file}:${w.line} ${w.fieldPath}: ${w.message}`);
  assert.ok(
    msgs.some((m) =>
      /^web c\.yaml:8 spec\.egress\[0\]\.toEndpoints\[0\]: this selector matches no workload/.test(m),
    ),
    msgs.join('\n'),
  );
  assert.ok(
    msgs.some((m) =>
      /^audit c\.yaml:\d+ spec\.endpointSelector: endpointSelector selects no workload/.test(m),
    ),
    msgs.join('\n'),
  );
});

test("a CIDR all of whose addresses are the host's is warned about: CIDR rules never select the host", () => {
  const policies = parse(`
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: loop }
spec:
  endpointSelector: { matchLabels: { app: web } }
  egress:
    - toCIDR: [10.0.0.0/8]
    - toCIDR: [127.0.0.1/32, 192.0.2.0/24]
  ingress:
    - fromCIDRSet: [{ cidr: "::1/128" }]
`).map((policy, i) => ({ id: i + 1, policy }));
  const endpoints = [{ identity: 300, labels: { app: 'web' } }];
  const host = ['127.0.0.0/8', '::1/128', '10.1.2.3/32'].map((c) => parseCidr(c) as Cidr);
  const msgs = compileNetworkPolicies(policies, endpoints, { hostCidrs: host }).warnings.map(
    (w) => `${w.file}:${w.line} ${w.fieldPath}: ${w.message}`,
  );
  assert.deepEqual(msgs, [
    "c.yaml:9 spec.egress[1]: 127.0.0.1/32 is this host's address: CIDR rules never select the host " +
      '(as in Cilium), so it selects nothing; use toEntities: [host]',
    "c.yaml:11 spec.ingress[0]: ::1/128 is this host's address: CIDR rules never select the host " +
      '(as in Cilium), so it selects nothing; use fromEntities: [host]',
  ]);
  // without the host's addresses the compile cannot tell
  assert.deepEqual(compileNetworkPolicies(policies, endpoints).warnings, []);
});

test('policy ids must be unique and positive', () => {
  assert.throws(() => compileNetworkPolicies([{ id: 0, policy: P[0]! }], []), /id 0 is not a unique integer/);
  assert.throws(
    () =>
      compileNetworkPolicies(
        [
          { id: 1, policy: P[0]! },
          { id: 1, policy: P[1]! },
        ],
        [],
      ),
    /id 1 is not a unique integer/,
  );
});

test('CIDR parsing normalizes and contains', () => {
  const c = parseCidr('10.1.2.3/8');
  assert.ok(typeof c !== 'string');
  assert.equal(c.text, '10.0.0.0/8');
  const v6 = parseCidr('fd00:248:1::2');
  assert.ok(typeof v6 !== 'string');
  assert.equal(v6.text, 'fd00:248:1::2/128');
  assert.equal((parseCidr('::ffff:1.2.3.4/128') as { text: string }).text, '::ffff:102:304/128');
  assert.match(parseCidr('1.2.3/8') as string, /not an IPv4 or IPv6 address/);
});

test('the compile in slices of the event loop gives the same tables, and lets timers run', async () => {
  const want = compileNetworkPolicies(POLICIES, ENDPOINTS);
  // slices of 0 ms: a pause at every step, the most the slicing can change
  assert.deepEqual(await compileNetworkPoliciesSliced(POLICIES, ENDPOINTS, {}, 0), want);
  // 5,000 CIDRs: some twenty pauses
  const cidrs = Array.from({ length: 5000 }, (_, i) => `198.18.${i >> 8}.${i & 255}/32`);
  const big: NumberedPolicy[] = [
    ...POLICIES,
    {
      id: POLICIES.length + 1,
      policy: parse(cidrPolicyText('big', 'web', cidrs, 443))[0]!,
    },
  ];
  let turns = 0;
  const timer = setInterval(() => turns++, 0);
  try {
    const got = await compileNetworkPoliciesSliced(big, ENDPOINTS, {}, 0);
    assert.deepEqual(got, compileNetworkPolicies(big, ENDPOINTS));
    assert.ok(got.cidrs.length > 5000);
    assert.ok(turns > 0, 'timers ran between the slices');
  } finally {
    clearInterval(timer);
  }
});
