import assert from 'node:assert/strict';
import { test } from 'node:test';
import { warmUpPolicyCode } from '../../src/agent/policy-warmup.js';

test('the warm-up policy parses and compiles on this kernel, with the common hooks, filters and actions', () => {
  const kernel = { kprobes: false, bpfLsm: false, fentry: false, overrideReturn: false };
  const r = warmUpPolicyCode(kernel);
  assert.equal(r.problem, undefined);
  assert.ok(r.ms > 0);
});

test('a warm-up that cannot parse says why instead of throwing', () => {
  const kernel = { kprobes: false, bpfLsm: false, fentry: false, overrideReturn: false };
  const r = warmUpPolicyCode(kernel, '/nonexistent-tracefs');
  assert.match(r.problem ?? '', /tracefs is not mounted/);
});
