import assert from 'node:assert/strict';
import { test } from 'node:test';
import { warmUpPolicyCode } from '../../src/agent/policy-warmup.js';

test('the warm-up policy parses and compiles on this kernel, with the common hooks, filters and actions', async () => {
  const kernel = { kprobes: false, bpfLsm: false, fentry: false, overrideReturn: false };
  const r = await warmUpPolicyCode(kernel, undefined, { rounds: 4 });
  assert.equal(r.problem, undefined);
  assert.equal(r.rounds, 4);
  assert.ok(r.ms > 0);
});

test('the warm-up stops between rounds once the agent is stopping', async () => {
  const kernel = { kprobes: false, bpfLsm: false, fentry: false, overrideReturn: false };
  let checks = 0;
  const r = await warmUpPolicyCode(kernel, undefined, { rounds: 30, stopped: () => ++checks > 2 });
  assert.equal(r.problem, undefined);
  assert.equal(r.rounds, 2);
});

test('a warm-up that cannot parse says why instead of throwing', async () => {
  const kernel = { kprobes: false, bpfLsm: false, fentry: false, overrideReturn: false };
  const r = await warmUpPolicyCode(kernel, '/nonexistent-tracefs');
  assert.match(r.problem ?? '', /tracefs is not mounted/);
});
