// CiliumNetworkPolicy parsing: the model it builds, and errors that name the
// file, line and field.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../../src/kernel/native.js';
import { parseNetworkPolicyFile, parseNetworkPolicyText } from '../../src/netpolicy/parse.js';

const fixture = (name: string) => path.join(repoRoot, 'test/fixtures/netpolicy', name);

function errorsOf(yaml: string): string[] {
  const r = parseNetworkPolicyText(yaml, 'p.yaml');
  assert.equal(r.policies.length, 0, 'a document with errors yields no policy');
  return r.errors.map((e) => e.toString());
}

const head = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: p }
spec:
  endpointSelector: { matchLabels: { app: web } }
`;

test('a valid file: two policies with rules, ports, CIDR sets, selectors and audit mode', () => {
  const r = parseNetworkPolicyFile(fixture('web.yaml'));
  assert.deepEqual(r.errors, []);
  assert.equal(r.policies.length, 2);
  const [web, meta] = r.policies;
  assert.equal(web!.name, 'web');
  assert.deepEqual(web!.endpointSelector.matchLabels, { app: 'web' });
  assert.equal(web!.egress.length, 2);
  const db = web!.egress[0]!;
  assert.notEqual(db.peers, 'any');
  if (db.peers === 'any') return;
  assert.deepEqual(db.peers.endpoints[0]!.matchLabels, { app: 'db' });
  assert.deepEqual(db.ports, [{ port: 5432, endPort: 5432, protocol: 'TCP' }]);
  assert.equal(db.source.fieldPath, 'spec.egress[0]');
  assert.equal(db.source.line, 12);
  const dns = web!.egress[1]!;
  if (dns.peers === 'any') return assert.fail('peers');
  assert.equal(dns.peers.cidrs[0]!.cidr.text, '10.0.0.0/8');
  assert.deepEqual(
    dns.peers.cidrs[0]!.except.map((c) => c.text),
    ['10.96.0.0/12'],
  );
  assert.deepEqual(web!.ingress[0]!.ports, [{ port: 8000, endPort: 8099, protocol: 'TCP' }]);
  assert.equal(web!.audit, false);
  assert.equal(meta!.audit, true);
  assert.equal(meta!.egressDeny.length, 1);
  assert.deepEqual(meta!.endpointSelector.matchExpressions, [
    { key: 'app', operator: 'In', values: ['web', 'api'] },
  ]);
});

test('errors carry file, line, column and field path', () => {
  const r = parseNetworkPolicyFile(fixture('bad.yaml'));
  assert.equal(r.policies.length, 0);
  const got = r.errors.map((e) => [e.line, e.fieldPath, e.message]);
  assert.deepEqual(got, [
    [9, 'spec.egress[0].toCIDR[0]', 'a CIDR "10.0.0.0/33": prefix length "/33" is not in 0..32'],
    [12, 'spec.egress[0].toPorts[0].ports[0].port', 'port 70000 is out of range 0..65535'],
    [13, 'spec.egress[1].toEndpoint', 'unknown field "toEndpoint" in a rule of egress'],
  ]);
  assert.match(
    r.errors[2]!.toString(),
    /bad\.yaml:13:7: spec\.egress\[1\]\.toEndpoint: .*did you mean "toEndpoints"\?/,
  );
  assert.equal(r.errors[0]!.policy, 'bad');
});

test('bad CIDRs and addresses', () => {
  assert.match(
    errorsOf(`${head}  egress:\n    - toCIDR: [10.0.0.300/8]\n`)[0]!,
    /p\.yaml:7:.*toCIDR\[0\].*not an IPv4 or IPv6 address/,
  );
  assert.match(
    errorsOf(`${head}  egress:\n    - toCIDR: ["fd00::/129"]\n`)[0]!,
    /prefix length "\/129" is not in 0\.\.128/,
  );
  assert.match(
    errorsOf(`${head}  egress:\n    - toCIDRSet: [{ cidr: 10.0.0.0/16, except: [10.1.0.0/24] }]\n`)[0]!,
    /toCIDRSet\[0\]\.except\[0\]: except 10\.1\.0\.0\/24 is not inside cidr 10\.0\.0\.0\/16/,
  );
});

test('ports: range, endPort, protocol, named ports', () => {
  assert.match(
    errorsOf(`${head}  egress:\n    - toPorts: [{ ports: [{ port: "-1" }] }]\n`)[0]!,
    /named port "-1"|out of range/,
  );
  assert.match(
    errorsOf(`${head}  egress:\n    - toPorts: [{ ports: [{ port: "80", endPort: 70 }] }]\n`)[0]!,
    /ports\[0\]\.endPort: endPort 70 is below port 80/,
  );
  assert.match(
    errorsOf(`${head}  egress:\n    - toPorts: [{ ports: [{ port: "80", protocol: SCTP }] }]\n`)[0]!,
    /protocol "SCTP" is not TCP, UDP or ANY \(SCTP is not supported\)/,
  );
  assert.match(
    errorsOf(`${head}  egress:\n    - toPorts: [{ ports: [{ port: http }] }]\n`)[0]!,
    /named port "http"/,
  );
  assert.match(
    errorsOf(`${head}  egress:\n    - toPorts: [{ ports: [{ port: 8080, endPort: 65536 }] }]\n`)[0]!,
    /endPort 65536 is out of range/,
  );
});

test('document-level errors: apiVersion, kind, metadata.name, endpointSelector, unsupported features', () => {
  const e1 = errorsOf(
    'apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: { name: x }\nspec: {}\n',
  );
  assert.ok(e1.some((e) => /apiVersion "cilium.io\/v1alpha1" is not cilium.io\/v2/.test(e)));
  assert.ok(e1.some((e) => /kind "TracingPolicy" is not CiliumNetworkPolicy/.test(e)));
  assert.ok(e1.some((e) => /spec.endpointSelector: spec.endpointSelector is required/.test(e)));
  assert.ok(
    errorsOf(
      'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {}\nspec: { endpointSelector: {} }\n',
    ).some((e) => /metadata.name is required/.test(e)),
  );
  assert.match(
    errorsOf(`${head}  egress:\n    - toFQDNs: [{ matchName: example.com }]\n`)[0]!,
    /toFQDNs is not supported/,
  );
  assert.match(
    errorsOf(`${head}  egress:\n    - toEntities: [kube-apiserver]\n`)[0]!,
    /entity "kube-apiserver" has no meaning on a single host/,
  );
  assert.match(
    errorsOf(
      `${head}  ingress:\n    - fromEndpoints: [{ matchExpressions: [{ key: app, operator: Equals, values: [a] }] }]\n`,
    )[0]!,
    /operator "Equals" is not one of In, NotIn, Exists, DoesNotExist/,
  );
  assert.match(
    errorsOf(`${head}  egress:\n    - toPorts: [{ ports: [{ port: "80" }], rules: { http: [{}] } }]\n`)[0]!,
    /rules \(layer 7\) is not supported/,
  );
  assert.match(
    errorsOf(
      'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: x\n  annotations: { osprey.io/audit-mode: "yes" }\nspec: { endpointSelector: {} }\n',
    )[0]!,
    /audit-mode must be "true" or "false"/,
  );
});

test('one bad document does not hide the good ones; duplicate names are refused', () => {
  const good = `${head}  egress:\n    - toEntities: [world]\n`;
  const r = parseNetworkPolicyText(
    `${good}---\napiVersion: cilium.io/v2\nkind: Nope\n---\n${good}`,
    'm.yaml',
  );
  assert.equal(r.policies.length, 1);
  assert.ok(r.errors.some((e) => /kind "Nope"/.test(e.message)));
  assert.ok(r.errors.some((e) => /a second policy named "p"/.test(e.message)));
});

test('rule shapes: toPorts only selects every peer; an empty rule selects none', () => {
  const r = parseNetworkPolicyText(
    `${head}  egress:\n    - toPorts: [{ ports: [{ port: "53", protocol: UDP }] }]\n    - {}\n`,
    'p.yaml',
  );
  assert.deepEqual(r.errors, []);
  assert.equal(r.policies[0]!.egress[0]!.peers, 'any');
  assert.deepEqual(r.policies[0]!.egress[1]!.peers, { endpoints: [], entities: [], cidrs: [] });
  assert.equal(r.policies[0]!.egress[1]!.ports, undefined);
});
