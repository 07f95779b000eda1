import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TURN_INITIAL, TURN_KEEP, TurnBuffers } from '../../src/agent/turn-buffers.js';

describe('TurnBuffers', () => {
  it('holds lines with their newlines and where each ends, and hands them over whole', () => {
    const t = new TurnBuffers();
    const ends: number[] = [];
    assert.equal(t.append(['a', Buffer.from('bc'), 'dé'], ends), 2 + 3 + 4);
    assert.deepEqual(ends, [2, 5, 9]);
    assert.equal(t.length, 9);
    const { bytes } = t.take();
    assert.equal(bytes.toString(), 'a\nbc\ndé\n');
    assert.equal(t.length, 0, 'lines after a take go to the other buffer');
  });

  it('takes turns: lines appended while one is written do not touch it, and a written one is used again', () => {
    const t = new TurnBuffers();
    t.append(['first']);
    const one = t.take();
    t.append(['second']);
    assert.equal(one.bytes.toString(), 'first\n', 'the buffer being written keeps its bytes');
    const two = t.take();
    assert.equal(two.bytes.toString(), 'second\n');
    assert.notEqual(one.bytes.buffer, two.bytes.buffer);
    one.written();
    t.append(['third']); // into the buffer that took over from two
    const three = t.take();
    t.append(['fourth']);
    const four = t.take();
    assert.equal(three.bytes.toString(), 'third\n');
    assert.equal(four.bytes.toString(), 'fourth\n');
    assert.equal(four.bytes.buffer, one.bytes.buffer, 'the written buffer came back');
  });

  it('grows for a burst, keeping what it held, and lets a buffer that grew past the keep size go', () => {
    const t = new TurnBuffers();
    t.append(['x']);
    const big = 'y'.repeat(TURN_INITIAL);
    t.append([big]);
    assert.equal(t.length, 2 + big.length + 1);
    const burst = t.take();
    assert.equal(burst.bytes.subarray(0, 2).toString(), 'x\n');
    assert.equal(burst.bytes.at(-1), 0x0a);
    burst.written(); // under the keep size: kept

    t.append(['z'.repeat(TURN_KEEP)]);
    const huge = t.take();
    assert.ok(huge.bytes.buffer.byteLength > TURN_KEEP);
    huge.written(); // past the keep size: let go
    const seen: ArrayBufferLike[] = [];
    for (const line of ['w', 'v', 'u']) {
      t.append([line]);
      const turn = t.take();
      assert.equal(turn.bytes.toString(), `${line}\n`);
      seen.push(turn.bytes.buffer);
      turn.written();
    }
    assert.equal(seen[0], burst.bytes.buffer, 'the buffer kept after the burst is used again');
    assert.ok(!seen.includes(huge.bytes.buffer), 'the one past the keep size is not');
  });
});
