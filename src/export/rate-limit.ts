/**
 * The export rate limit, as Tetragon's --export-rate-limit: at most N
 * events a minute reach the sink; the rest are dropped, and once per
 * interval in which something was dropped a rate_limit_info event says how
 * many, so the gap in the stream is visible in the stream itself.
 *
 * A token bucket of N tokens refilled at N per minute: a quiet minute lets
 * a burst of N through at once, and a steady stream gets N a minute.
 */
import type { ExportEvent } from '../events/types.js';
import { wallNsToTime } from '../process/clock.js';

// a type, not an interface, so that it is assignable to ExportEvent's record form
export type RateLimitInfoEvent = {
  rate_limit_info: {
    /** a 64-bit count, written as a string as protojson writes uint64 */
    number_of_dropped_process_events: string;
  };
  node_name: string;
  time: string;
};

export interface RateLimiterOptions {
  eventsPerMinute: number;
  nodeName: string;
  /** how often at most a rate_limit_info is due (default one minute) */
  intervalMs?: number;
}

export class RateLimiter {
  /** events dropped since start */
  dropped = 0;
  private readonly perMs: number;
  private readonly burst: number;
  private readonly intervalMs: number;
  private tokens: number;
  private last: number | undefined;
  private droppedSinceInfo = 0;
  private intervalStart: number | undefined;

  constructor(private readonly opts: RateLimiterOptions) {
    const n = opts.eventsPerMinute;
    if (!Number.isInteger(n) || n < 1) {
      throw new Error(`export rate limit ${n} must be a whole number of events per minute >= 1`);
    }
    this.burst = n;
    this.perMs = n / 60_000;
    this.tokens = n;
    this.intervalMs = opts.intervalMs ?? 60_000;
    if (!(this.intervalMs > 0)) throw new Error(`rate limit interval ${this.intervalMs} ms must be > 0`);
  }

  /** Whether one more event may pass now; counts it as dropped when not. */
  allow(nowMs: number): boolean {
    if (this.last === undefined) {
      this.last = nowMs;
      this.intervalStart = nowMs;
    } else if (nowMs > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + (nowMs - this.last) * this.perMs);
      this.last = nowMs;
    }
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    this.dropped++;
    this.droppedSinceInfo++;
    return false;
  }

  /**
   * The rate_limit_info event when an interval has passed since the last one
   * and events were dropped in it; undefined otherwise. Call it often (each
   * batch, and from a timer so a silent stream still reports). `force`
   * reports before the interval is over, for an exporter that is closing.
   */
  takeInfo(nowMs: number, force = false): RateLimitInfoEvent | undefined {
    if (this.intervalStart === undefined) return undefined;
    if (!force && nowMs - this.intervalStart < this.intervalMs) return undefined;
    this.intervalStart = nowMs;
    if (this.droppedSinceInfo === 0) return undefined;
    const n = this.droppedSinceInfo;
    this.droppedSinceInfo = 0;
    return {
      rate_limit_info: { number_of_dropped_process_events: String(n) },
      node_name: this.opts.nodeName,
      time: wallNsToTime(BigInt(Math.round(nowMs)) * 1_000_000n),
    };
  }
}

export function isRateLimitInfo(ev: ExportEvent): ev is ExportEvent & RateLimitInfoEvent {
  return 'rate_limit_info' in ev;
}
