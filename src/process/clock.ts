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
 * the measurement's own jitter (~1 µs), not a step: it is not taken, so
 * that times stay in order across measurements.
 */
const STEP_NS = 1_000_000n;

let offsetNs = 0n;
/** offsetNs as whole seconds and the nanoseconds left (0..1e9), for the number path of ktimeAtToTime */
let offsetSec = 0;
let offsetNsec = 0;
let calibratedAt = 0;
let calls = 0;

/**
 * Wall-clock ns minus CLOCK_MONOTONIC ns, as measured now. Date.now() is
 * in whole ms: the monotonic clock is read at the moment it turns to the
 * next ms (a wait of 0.5 ms on average), which puts the offset within ~1 µs.
 * `wallMs` stands for Date.now() (tests give a clock of their own).
 */
export function measureRealtimeOffsetNs(wallMs: () => number = Date.now): bigint {
  const start = wallMs();
  const deadline = process.hrtime.bigint() + 2_000_000n;
  let mono: bigint;
  let ms: number;
  do {
    mono = process.hrtime.bigint();
    ms = wallMs();
  } while (ms === start && mono < deadline);
  // a clock that did not turn within 2 ms (a test's, or a stalled one): the middle of its ms
  const wallNs = BigInt(ms) * 1_000_000n + (ms === start ? 500_000n : 0n);
  return wallNs - mono;
}

/** Measure the offset again; take it if the wall clock was set (or when forced, at start). */
export function calibrate(wallMs: () => number = Date.now, force = false): void {
  const measured = measureRealtimeOffsetNs(wallMs);
  // on the monotonic clock: a wall clock set back must not put off the next measurement
  calibratedAt = performance.now();
  const d = measured - offsetNs;
  if (!force && d < STEP_NS && d > -STEP_NS) return;
  offsetNs = measured;
  const sec = offsetNs / 1_000_000_000n - (offsetNs < 0n ? 1n : 0n);
  offsetSec = Number(sec);
  offsetNsec = Number(offsetNs - sec * 1_000_000_000n);
}
calibrate(Date.now, true);
// also while no event comes (the conversions check it too, every 1,024): the first after a step is right
setInterval(() => calibrate(), RECALIBRATE_MS).unref();

function maybeRecalibrate(): void {
  // checking the clock on every call would cost more than the conversion itself
  if ((++calls & 1023) === 0 && performance.now() - calibratedAt > RECALIBRATE_MS) calibrate();
}

/** Wall-clock ns at CLOCK_MONOTONIC ktimeNs. */
export function ktimeToWallNs(ktimeNs: bigint): bigint {
  maybeRecalibrate();
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
  maybeRecalibrate();
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
