/**
 * A fixed-bucket latency histogram: constant memory and O(1) record, so it
 * can sit on the hot path of every batch. Buckets grow geometrically, eight
 * per power of two, which bounds the error of a reported percentile to about
 * 9% of its value while covering 1 ns to ~18 minutes in 320 buckets.
 */

const SUB_BUCKETS = 8;
const POWERS = 40; // 2^40 ns ~ 1100 s
const BUCKETS = SUB_BUCKETS * POWERS;

export interface LatencySummary {
  count: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  mean_ms: number;
  /**
   * The non-empty buckets, in order, as [upper edge in ms (null for the last,
   * which has none), samples]: two readings' difference gives the
   * percentiles of what happened between them (bench/exec does so for its
   * storm alone).
   */
  buckets: [number | null, number][];
}

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKETS);
  private total = 0;
  private sumNs = 0;
  private maxNs = 0;
  private minNs = Number.POSITIVE_INFINITY;
  /** samples below zero: the clocks disagreed (should not happen with CLOCK_MONOTONIC) */
  negative = 0;

  /** Record one sample in nanoseconds. */
  record(ns: number): void {
    if (!(ns >= 0)) {
      this.negative++;
      return;
    }
    this.counts[bucketOf(ns)]!++;
    this.total++;
    this.sumNs += ns;
    if (ns > this.maxNs) this.maxNs = ns;
    if (ns < this.minNs) this.minNs = ns;
  }

  get count(): number {
    return this.total;
  }

  /**
   * The value below which fraction q (0..1) of the samples fall, in ns. The
   * answer is the upper edge of the bucket holding that rank, clamped to the
   * observed range, so it never under-reports and never exceeds the max.
   */
  quantile(q: number): number {
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(Math.max(upperEdge(i), this.minNs), this.maxNs);
    }
    return this.maxNs;
  }

  summary(): LatencySummary {
    const ms = (ns: number) => Math.round(ns / 1e3) / 1e3; // microsecond resolution
    return {
      count: this.total,
      p50_ms: ms(this.quantile(0.5)),
      p99_ms: ms(this.quantile(0.99)),
      max_ms: ms(this.maxNs),
      mean_ms: ms(this.total ? this.sumNs / this.total : 0),
      buckets: this.buckets(),
    };
  }

  private buckets(): [number | null, number][] {
    const out: [number | null, number][] = [];
    for (let i = 0; i < BUCKETS; i++) {
      const n = this.counts[i]!;
      if (n === 0) continue;
      const edge = upperEdge(i);
      out.push([Number.isFinite(edge) ? edge / 1e6 : null, n]);
    }
    return out;
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
    this.sumNs = 0;
    this.maxNs = 0;
    this.minNs = Number.POSITIVE_INFINITY;
    this.negative = 0;
  }
}

function bucketOf(ns: number): number {
  if (ns < 1) return 0;
  const i = Math.floor(Math.log2(ns) * SUB_BUCKETS);
  return i >= BUCKETS ? BUCKETS - 1 : i;
}

function upperEdge(i: number): number {
  // the last bucket also holds everything beyond the range
  if (i === BUCKETS - 1) return Number.POSITIVE_INFINITY;
  return 2 ** ((i + 1) / SUB_BUCKETS);
}
