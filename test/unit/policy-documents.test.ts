// Large policy texts are read on a thread of their own: what comes back must
// be what the parsers give on the event loop, errors and all.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isNetworkPolicyText } from '../../src/agent/netpolicies.js';
import {
  OFF_LOOP_BYTES,
  packNetworkParse,
  policyDocuments,
  readPolicyText,
  unpackNetworkParse,
} from '../../src/agent/policy-documents.js';
import { parseNetworkPolicyText } from '../../src/netpolicy/parse.js';
import { NO_EXTRA_KERNEL_FEATURES } from '../../src/policy/kernel-caps.js';
import { parsePolicyText } from '../../src/policy/parse.js';
import { openatPrefixPolicyText } from '../lib/policies.js';
import { threadNices } from '../lib/threads.js';

/** A CiliumNetworkPolicy of n /32s (and v6 /128s) in rules of 100, each with an except-bearing CIDRSet. */
function bigPolicy(name: string, n: number, broken = false): string {
  let y = `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: ${name}\nspec:\n  endpointSelector:\n    matchLabels: {app: web}\n  egress:\n`;
  for (let g = 0; g * 100 < n; g++) {
    const cidrs: string[] = [];
    for (let i = g * 100; i < Math.min(n, g * 100 + 100); i++)
      cidrs.push(
        i % 2
          ? `172.${16 + ((i >> 16) & 15)}.${(i >> 8) & 255}.${i & 255}/32`
          : `fd00::${i.toString(16)}/128`,
      );
    y += `    - toCIDR: [${cidrs.join(', ')}]\n      toPorts: [{ports: [{port: "${1024 + g}", protocol: TCP}]}]\n`;
    y += `    - toCIDRSet: [{cidr: 10.${g & 255}.0.0/16, except: [10.${g & 255}.1.0/24]}]\n`;
  }
  if (broken) y += `    - toPorts: [{ports: [{port: "70000", protocol: TCP}]}]\n`;
  return y;
}

/** As data: a field left undefined and one left out are the same to the compiler (and to JSON). */
const plain = (x: unknown): unknown => JSON.parse(JSON.stringify(x));

describe('policy texts read off the event loop', () => {
  it('gives a large network policy exactly as the parser on the loop does, and remembers its documents', async () => {
    const text = bigPolicy('big', 8000);
    assert.ok(Buffer.byteLength(text) >= OFF_LOOP_BYTES, 'large enough to go to a thread');
    const got = await readPolicyText(text, 'big.yaml');
    assert.deepEqual(got.docs, [{ kind: 'CiliumNetworkPolicy', name: 'big' }]);
    const want = parseNetworkPolicyText(text, 'big.yaml');
    assert.equal(got.network?.errors.length, 0);
    assert.deepStrictEqual(plain(got.network?.policies), plain(want.policies));
    const cidr = got.network!.policies[0]!.egress[0]!.peers;
    assert.ok(cidr !== 'any' && Buffer.isBuffer(cidr.cidrs[0]!.cidr.addr), 'addresses come back as Buffers');
    // the routing questions asked afterwards are answered without parsing the text again
    assert.equal(policyDocuments(text), got.docs);
    assert.equal(isNetworkPolicyText(text), true);
  });

  it("reports a large policy's errors at their file and line", async () => {
    const text = bigPolicy('broken', 8000, true);
    const got = await readPolicyText(text, 'broken.yaml');
    const lines = text.split('\n').length - 1;
    assert.equal(got.network?.policies.length, 0);
    assert.equal(got.network?.errors.length, 1);
    assert.match(got.network!.errors[0]!, new RegExp(`^broken\\.yaml:${lines}:\\d+: .*port.*70000`));
    assert.deepEqual(got.network?.errors, parseNetworkPolicyText(text, 'broken.yaml').errors.map(String));
  });

  it('reads only the documents of a large text of another kind, and reads small texts on the loop', async () => {
    const tp = `apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: tp\nspec:\n  kprobes: []\n# ${'x'.repeat(OFF_LOOP_BYTES)}\n`;
    const got = await readPolicyText(tp, 'tp.yaml');
    assert.deepEqual(got, { docs: [{ kind: 'TracingPolicy', name: 'tp' }] });
    const small = bigPolicy('small', 10);
    const s = await readPolicyText(small, 'small.yaml');
    assert.deepStrictEqual(s.network?.policies, parseNetworkPolicyText(small, 'small.yaml').policies);
  });

  it('parses a large TracingPolicy there too when asked, as the parser on the loop does, errors at their line', async () => {
    const opts = { kernel: NO_EXTRA_KERNEL_FEATURES };
    const text = openatPrefixPolicyText(
      'bigtp',
      Array.from({ length: 2000 }, (_, i) => `/srv/data/tenant${i}/`),
    );
    assert.ok(Buffer.byteLength(text) >= OFF_LOOP_BYTES, 'large enough to go to a thread');
    const got = await readPolicyText(text, 'bigtp.yaml', opts);
    assert.deepEqual(got.docs, [{ kind: 'TracingPolicy', name: 'bigtp' }]);
    const want = parsePolicyText(text, 'bigtp.yaml', opts);
    assert.deepEqual(got.tracing?.errors, []);
    assert.deepStrictEqual(got.tracing?.policies, want.policies);
    assert.equal(got.tracing?.policies[0]?.hooks.length, 1);

    const broken = `${text}        operator: Prefix\n`;
    const bad = await readPolicyText(broken, 'broken.yaml', opts);
    assert.deepEqual(bad.tracing?.errors, parsePolicyText(broken, 'broken.yaml', opts).errors.map(String));
    assert.match(bad.tracing!.errors.join('\n'), /^broken\.yaml:\d+:\d+: /);
    // without the options, the documents only (the caller parses)
    assert.equal((await readPolicyText(text, 'bigtp.yaml')).tracing, undefined);
  });

  it('reads on a thread at a lower priority than the event loop (nice 10)', async () => {
    const before = new Set(threadNices().keys());
    const mainNice = threadNices().get(process.pid);
    const seen = new Map<number, number>();
    const reading = readPolicyText(bigPolicy('nice', 20000), 'nice.yaml');
    let done = false;
    void reading.finally(() => {
      done = true;
    });
    while (!done) {
      for (const [tid, nice] of threadNices()) if (!before.has(tid)) seen.set(tid, nice);
      await new Promise((r) => setTimeout(r, 2));
    }
    assert.equal((await reading).network?.policies.length, 1);
    // the reading thread, and no other new thread of ours, at nice 10 (V8's helpers keep their own)
    assert.ok([...seen.values()].includes(10), `a new thread at nice 10 (new threads: ${[...seen]})`);
    assert.equal(threadNices().get(process.pid), mainNice, 'the event loop keeps its priority');
  });

  it('packs and unpacks a parse without losing an address', async () => {
    const text = bigPolicy('p', 300);
    const want = parseNetworkPolicyText(text, 'p.yaml').policies;
    const packed = packNetworkParse(parseNetworkPolicyText(text, 'p.yaml').policies, []);
    assert.equal(packed.addrs.length, (300 + 2 * 3) * 16, 'a CIDR, and each CIDRSet with its except');
    assert.equal(packed.rules.length, 3 * 2, 'a rule of CIDRs and a rule of a CIDRSet per 100');
    assert.deepStrictEqual(plain((await unpackNetworkParse(packed)).policies), plain(want));
    // slices of 0 ms: a pause after every rule
    const again = packNetworkParse(parseNetworkPolicyText(text, 'p.yaml').policies, []);
    assert.deepStrictEqual(plain((await unpackNetworkParse(again, 0)).policies), plain(want));
  });
});
