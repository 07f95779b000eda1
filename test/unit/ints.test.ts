// 64-bit integers of kernel records: the same values Buffer's own readers give, made with one bigint.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { i64At, u64At } from '../../src/sensors/ints.js';

const EDGES = [
  0n,
  1n,
  -1n,
  -100n,
  524_288n,
  2n ** 32n - 1n,
  2n ** 32n,
  -(2n ** 32n),
  2n ** 53n - 1n,
  2n ** 53n,
  -(2n ** 53n),
  -(2n ** 53n) - 1n,
  2n ** 63n - 1n,
  -(2n ** 63n),
  3_181_370_581_731_400n,
];

describe('u64At / i64At', () => {
  test('read what Buffer.readBigUInt64LE / readBigInt64LE read, at any offset', () => {
    const b = Buffer.alloc(24);
    for (const v of EDGES) {
      for (const off of [0, 3, 16]) {
        b.writeBigInt64LE(v, off);
        assert.equal(i64At(b, off), b.readBigInt64LE(off), `i64 ${v} at ${off}`);
        assert.equal(u64At(b, off), b.readBigUInt64LE(off), `u64 ${v} at ${off}`);
      }
    }
    b.writeBigUInt64LE(2n ** 64n - 1n, 0);
    assert.equal(u64At(b, 0), 2n ** 64n - 1n);
    assert.equal(i64At(b, 0), -1n);
  });

  test('refuse to read past the buffer, as Buffer does', () => {
    assert.throws(() => u64At(Buffer.alloc(7), 0), RangeError);
    assert.throws(() => i64At(Buffer.alloc(8), 1), RangeError);
  });
});
