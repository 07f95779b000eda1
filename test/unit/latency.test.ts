import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LatencyHistogram } from '../../src/agent/latency.js';

describe('LatencyHistogram', () => {
  it('reports zeros before any sample', () => {
    const h = new LatencyHistogram();
    assert.deepEqual(h.summary(), { count: 0, p50_ms: 0, p99_ms: 0, max_ms: 0, mean_ms: 0, buckets: [] });
  });

  it('puts percentiles within the bucket error of the exact values', () => {
    const h = new LatencyHistogram();
    // 1 µs .. 10 ms, uniform
    const samples: number[] = [];
    for (let i = 1; i <= 10_000; i++) samples.push(i * 1000);
    // shuffled order must not matter
    for (const s of [...samples].reverse()) h.record(s);
    const exact = (q: number) => samples[Math.ceil(q * samples.length) - 1]!;
    for (const q of [0.5, 0.9, 0.99]) {
      const got = h.quantile(q);
      assert.ok(got >= exact(q), `q${q}: ${got} under-reports ${exact(q)}`);
      assert.ok(got <= exact(q) * 1.1, `q${q}: ${got} is more than 10% above ${exact(q)}`);
    }
    const s = h.summary();
    assert.equal(s.count, 10_000);
    assert.equal(s.max_ms, 10);
    assert.ok(Math.abs(s.mean_ms - 5.0005) < 0.001);
  });

  it('lists its non-empty buckets with their upper edges, so two readings can be subtracted', () => {
    const h = new LatencyHistogram();
    for (let i = 0; i < 3; i++) h.record(1_000_000); // 1 ms
    h.record(5_000_000);
    h.record(2 ** 41); // beyond the range: the last bucket, with no upper edge
    const b = h.summary().buckets;
    assert.deepEqual(
      b.map(([, n]) => n),
      [3, 1, 1],
    );
    const [oneMs, fiveMs, last] = b.map(([edge]) => edge);
    assert.ok(oneMs! > 1 && oneMs! <= 1.1, `1 ms in a bucket up to ${oneMs}`);
    assert.ok(fiveMs! > 5 && fiveMs! <= 5.5, `5 ms in a bucket up to ${fiveMs}`);
    assert.equal(last, null);
    // JSON keeps it as it is
    assert.deepEqual(JSON.parse(JSON.stringify(b)), b);
  });

  it('never reports a percentile above the max or below the min', () => {
    const h = new LatencyHistogram();
    h.record(1_234_567);
    assert.equal(h.quantile(0.5), 1_234_567);
    assert.equal(h.quantile(0.99), 1_234_567);
    h.record(1_000_000);
    const low = h.quantile(0.01);
    assert.ok(low >= 1_000_000 && low <= 1_100_000, `${low}`);
  });

  it('keeps huge and zero samples in range', () => {
    const h = new LatencyHistogram();
    h.record(0);
    h.record(1e15);
    assert.equal(h.count, 2);
    assert.ok(h.quantile(0.5) < 1.1, 'the lowest bucket is below 1.1 ns');
    assert.equal(h.quantile(1), 1e15);
  });

  it('counts negative samples apart instead of recording them', () => {
    const h = new LatencyHistogram();
    h.record(-5);
    h.record(Number.NaN);
    assert.equal(h.count, 0);
    assert.equal(h.negative, 2);
  });

  it('forgets everything on reset', () => {
    const h = new LatencyHistogram();
    h.record(5000);
    h.reset();
    assert.equal(h.summary().count, 0);
    assert.equal(h.summary().max_ms, 0);
  });
});
