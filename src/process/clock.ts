/**
 * Kernel timestamps to wall-clock RFC 3339 strings.
 *
 * The kernel stamps records with CLOCK_MONOTONIC (bpf_ktime_get_ns, and
 * task->start_time). process.hrtime reads the same clock on Linux, so the
 * offset to wall time is measured by reading both clocks back to back.
 *
 * The wall clock is Date.now(): it follows the system clock when it is set
 * (an NTP step after boot, a VM resumed). performance.timeOrigin + now(),
 * used before for its precision, is the wall time at the agent's start plus
 * the monotonic time since, which never follows a step: every event's time
 * stayed off by the step until the agent was restarted.
 */

/** Re-measure the offset this often, so that clock steps are followed. */
const RECALIBRATE_MS = 60_000;
/**
 * A measured offset that differs from the one in use by less than this is
 * not a step of the clock (NTP steps only past 128 ms and slews the rest,
 * which moves both clocks alike) but the measurement's own error: it is
 * not taken, so that times stay in order across measurements.
 */
const STEP_NS = 10_000_000n;
/** Measurements after one that saw a step, and how near they must come to it. */
const CONFIRM = 2;
const CONFIRM_NS = 1_000_000n;
/** A turn of Date.now()'s ms seen within this much monotonic time is used (see measureRealtimeOffsetNs). */
const BRACKET_NS = 200_000n;
/** How long a measurement may wait for such a turn. */
const MEASURE_NS = 5_000_000n;

let offsetNs = 0n;
/** offsetNs as whole seconds and the nanoseconds left (0..1e9), for the number path of ktimeAtToTime */
let offsetSec = 0;
let offsetNsec = 0;

/**
 * Wall-clock ns minus CLOCK_MONOTONIC ns, as measured now. Date.now() is
 * in whole ms, so the monotonic clock is taken at the moment it turns to
 * the next ms: the turn lies between the last read that saw the old ms and
 * the first that sees the new one, each bracketed by monotonic reads. A
 * turn bracketed within BRACKET_NS puts the offset within half of that; a
 * wider one (the thread kept from running between the reads, on a busy
 * machine) is not used, and the next turn is waited for (at most
 * MEASURE_NS in all; then the narrowest seen). ~0.5 ms of waiting on
 * average. `wallMs` stands for Date.now() (tests give a clock of their own).
 */
export function measureRealtimeOffsetNs(wallMs: () => number = Date.now): bigint {
  const end = process.hrtime.bigint() + MEASURE_NS;
  let before = process.hrtime.bigint();
  let last = wallMs();
  let best: { offset: bigint; width: bigint } | undefined;
  for (;;) {
    const m1 = process.hrtime.bigint();
    const ms = wallMs();
    const m2 = process.hrtime.bigint();
    if (ms !== last) {
      // the turn: after the read of `last` (which came after `before`), before this read (before m2)
      const width = m2 - before;
      const offset = BigInt(ms) * 1_000_000n - (before + m2) / 2n;
      if (best === undefined || width < best.width) best = { offset, width };
      if (width <= BRACKET_NS) return offset;
      last = ms;
    }
    before = m1;
    if (m2 > end) break;
  }
  // a clock that never turned (a test's): the middle of its ms
  return best?.offset ?? BigInt(last) * 1_000_000n + 500_000n - process.hrtime.bigint();
}

const near = (a: bigint, b: bigint, within: bigint) => a - b < within && b - a < within;

/**
 * Measure the offset again; take it if the wall clock was set (or when
 * forced, at start). A step measures the same again; a measurement spoilt
 * by the thread being kept from running (see measureRealtimeOffsetNs) does
 * not: CONFIRM more must agree before a step is taken.
 */
export function calibrate(wallMs: () => number = Date.now, force = false): void {
  const measured = measureRealtimeOffsetNs(wallMs);
  if (!force) {
    if (near(measured, offsetNs, STEP_NS)) return;
    for (let i = 0; i < CONFIRM; i++)
      if (!near(measureRealtimeOffsetNs(wallMs), measured, CONFIRM_NS)) return;
  }
  offsetNs = measured;
  const sec = offsetNs / 1_000_000_000n - (offsetNs < 0n ? 1n : 0n);
  offsetSec = Number(sec);
  offsetNsec = Number(offsetNs - sec * 1_000_000_000n);
}
calibrate(Date.now, true);
// on a timer of the monotonic clock (a wall clock set back does not put it off), events or not:
// the conversions themselves need not look at the clock
setInterval(() => calibrate(), RECALIBRATE_MS).unref();

/** Wall-clock ns at CLOCK_MONOTONIC ktimeNs. */
export function ktimeToWallNs(ktimeNs: bigint): bigint {
  return ktimeNs + offsetNs;
}

/** Stamps below this are exact as numbers (2^53 ns: 104 days of uptime). */
const EXACT_NS = 2n ** 53n;

/**
 * CLOCK_MONOTONIC ns to RFC 3339 UTC with nanoseconds, e.g.
 * "2026-11-25T08:13:22.123456789Z". A stamp below 2^53 ns is converted
 * in plain numbers (records are read at the rate of events, and bigint
 * arithmetic allocates at every step).
 */
export function ktimeToTime(ktimeNs: bigint): string {
  if (ktimeNs >= 0n && ktimeNs < EXACT_NS) return numberKtimeToTime(Number(ktimeNs));
  return wallNsToTime(ktimeToWallNs(ktimeNs));
}

let lastSecond = -1;
let lastPrefix = '';

/** RFC 3339 UTC of a wall-clock second and its nanoseconds. */
function formatTime(sec: number, nsec: number): string {
  // events come in bursts within the same second: format the date part once
  if (sec !== lastSecond) {
    lastPrefix = new Date(sec * 1000).toISOString().slice(0, 19);
    lastSecond = sec;
  }
  const frac = String(nsec);
  return `${lastPrefix}.${'000000000'.slice(frac.length)}${frac}Z`;
}

/** The u64 CLOCK_MONOTONIC stamp little-endian at buf[off], as ktimeToTime writes it, without making a bigint. */
export function ktimeAtToTime(buf: Buffer, off: number): string {
  const hi = buf.readUInt32LE(off + 4);
  if (hi >= 0x200000) return ktimeToTime(buf.readBigUInt64LE(off));
  return numberKtimeToTime(hi * 4294967296 + buf.readUInt32LE(off));
}

/** ktimeToTime of a stamp below 2^53 ns, given as a number. */
function numberKtimeToTime(k: number): string {
  let sec = Math.floor(k / 1e9);
  let nsec = k - sec * 1e9;
  // the division rounds: put the remainder back in 0..1e9
  if (nsec < 0) {
    sec--;
    nsec += 1e9;
  } else if (nsec >= 1e9) {
    sec++;
    nsec -= 1e9;
  }
  sec += offsetSec;
  nsec += offsetNsec;
  if (nsec >= 1e9) {
    sec++;
    nsec -= 1e9;
  }
  return sec < 0 ? formatTime(0, 0) : formatTime(sec, nsec);
}

/** Wall-clock ns since the epoch to RFC 3339 UTC with nanoseconds. */
export function wallNsToTime(wallNs: bigint): string {
  const ns = wallNs < 0n ? 0n : wallNs;
  return formatTime(Number(ns / 1_000_000_000n), Number(ns % 1_000_000_000n));
}
