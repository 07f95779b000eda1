import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeExecId, parseExecId } from '../../src/process/execid.js';

const reference = (node: string, ktime: bigint, pid: number) =>
  Buffer.from(`${node}:${ktime}:${pid}`, 'utf8').toString('base64');

test('exec_id is base64 of node:ktime:pid, for any node name, switching between them', () => {
  const nodes = ['n', 'bench', 'node-ä-ünïcode', 'x'.repeat(300), 'y'.repeat(600), 'bench'];
  const ktimes = [0n, 1n, 61_234_567_890_123n, 2n ** 53n + 7n, 2n ** 64n - 1n];
  const pids = [1, 42, 4_194_304, 2 ** 32 - 1];
  for (const node of nodes) {
    for (const k of ktimes) {
      for (const pid of pids) {
        const id = makeExecId(node, k, pid);
        assert.equal(id, reference(node, k, pid), `${node.slice(0, 20)} ${k} ${pid}`);
        assert.deepEqual(parseExecId(id), { nodeName: node, ktime: k, pid });
      }
    }
  }
});
