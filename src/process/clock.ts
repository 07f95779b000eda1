/**
 * Kernel timestamps to wall-clock RFC 3339 strings.
 *
 * The kernel stamps records with CLOCK_MONOTONIC (bpf_ktime_get_ns, and
 * task->start_time). process.hrtime reads the same clock on Linux, so the
 * offset to wall time is measured by reading both clocks back to back.
 */

/** Re-measure the offset this often, so NTP slews and clock steps are followed. */
const RECALIBRATE_MS = 60_000;

let offsetNs = 0n;
/** offsetNs as whole seconds and the nanoseconds left (0..1e9), for the number path of ktimeAtToTime */
let offsetSec = 0;
let offsetNsec = 0;
let calibratedAt = 0;
let calls = 0;

/** Wall-clock ns minus CLOCK_MONOTONIC ns, as measured now. */
export function measureRealtimeOffsetNs(): bigint {
  // performance.timeOrigin + now() keeps sub-microsecond precision that Date.now() lacks
  const mono = process.hrtime.bigint();
  const wallNs = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
  return wallNs - mono;
}

function calibrate(): void {
  offsetNs = measureRealtimeOffsetNs();
  const sec = offsetNs / 1_000_000_000n - (offsetNs < 0n ? 1n : 0n);
  offsetSec = Number(sec);
  offsetNsec = Number(offsetNs - sec * 1_000_000_000n);
  calibratedAt = Date.now();
}
calibrate();

function maybeRecalibrate(): void {
  // checking the clock on every call would cost more than the conversion itself
  if ((++calls & 1023) === 0 && Date.now() - calibratedAt > RECALIBRATE_MS) calibrate();
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
