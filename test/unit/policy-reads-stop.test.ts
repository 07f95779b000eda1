// A stopping agent gives up the policy texts it is reading on worker threads
// (a file of its own: stopping is for the rest of the process).
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { PolicyReadError, readPolicyText, stopPolicyReads } from '../../src/agent/policy-documents.js';
import { cidrPolicyText } from '../lib/policies.js';
import { threadNices } from '../lib/threads.js';

it('gives up a text being read when the agent stops, and reads no more', async () => {
  const cidrs = Array.from({ length: 20000 }, (_, i) => `172.16.${i >> 8}.${i & 255}/32`);
  const text = cidrPolicyText('big', 'web', cidrs);
  const threads = threadNices().size;
  const t0 = Date.now();
  const reading = readPolicyText(text, 'big.yaml');
  // once its thread is there
  while (threadNices().size === threads && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 2));
  stopPolicyReads();
  await assert.rejects(reading, (err: unknown) => {
    assert.ok(err instanceof PolicyReadError);
    assert.equal(err.stopping, true);
    assert.match(err.message, /^big\.yaml: not read: the agent is stopping$/);
    return true;
  });
  await assert.rejects(readPolicyText(text, 'again.yaml'), /again\.yaml: not read: the agent is stopping/);
});
