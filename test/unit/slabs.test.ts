// The API streams' slab pool: pieces of a slab are used again only once every holder released them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SLAB_BYTES, SLAB_PIECE_MAX, SlabPool } from '../../src/agent/slabs.js';

describe('slab pool', () => {
  it('cuts pieces from one slab, and uses a full slab again only once all its pieces are released', () => {
    const pool = new SlabPool();
    const n = SLAB_PIECE_MAX;
    const pieces = [pool.take(n), pool.take(n), pool.take(n), pool.take(n)];
    assert.equal(pool.made, 1);
    assert.ok(pieces.every((p) => p.slab === pieces[0]!.slab && p.bytes.length === n));
    pieces[0]!.bytes.fill(0x61);
    // a fifth does not fit: a new slab; the full one is still held
    const fifth = pool.take(n);
    assert.equal(pool.made, 2);
    assert.notEqual(fifth.slab, pieces[0]!.slab);
    // a second holder (another client) keeps it held after the first lets go
    pool.retain(pieces[0]!);
    for (const p of pieces) pool.release(p);
    assert.equal(pool.freeSlabs, 0);
    // bytes still held are not overwritten by new pieces
    // (the second slab's three more pieces, then a third slab)
    for (let i = 0; i < 4; i++) pool.take(n);
    assert.equal(pool.made, 3);
    assert.ok(pieces[0]!.bytes.every((b) => b === 0x61));
    pool.release(pieces[0]!);
    assert.equal(pool.freeSlabs, 1);
    // the next slab needed is the released one
    for (let i = 0; i < 4; i++) pool.take(n);
    assert.equal(pool.made, 3);
    assert.equal(pool.freeSlabs, 0);
  });

  it('gives a piece larger than SLAB_PIECE_MAX a buffer of its own; pieces start 8-aligned', () => {
    const pool = new SlabPool();
    const big = pool.take(SLAB_PIECE_MAX + 1);
    assert.equal(big.slab, undefined);
    assert.equal(big.bytes.length, SLAB_PIECE_MAX + 1);
    pool.retain(big);
    pool.release(big);
    assert.equal(pool.made, 0);
    const a = pool.take(5);
    const b = pool.take(3);
    assert.equal(b.bytes.byteOffset - a.bytes.byteOffset, 8);
    assert.ok(SLAB_BYTES >= 4 * SLAB_PIECE_MAX);
  });

  it('counts a release without a reference instead of throwing (it runs in write callbacks)', () => {
    const pool = new SlabPool();
    const p = pool.take(10);
    pool.release(p);
    assert.equal(pool.overReleased, 0);
    pool.release(p);
    assert.equal(pool.overReleased, 1);
  });
});
