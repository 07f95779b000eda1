/**
 * Event times as integer nanoseconds since the epoch, the store's time axis.
 * Events carry RFC 3339 strings with nanoseconds; a JS number cannot hold
 * nanoseconds since 1970 exactly, so the store keeps them as bigint
 * (SQLite INTEGER is 64-bit).
 */

const RFC3339 = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

// events come in bursts within the same second: parse the date part once
let lastSecondText = '';
let lastSecondMs = 0;

// the agent's own times ("2026-11-25T08:13:22.123456789Z", UTC, nine digits): the
// second they are in, as text and as ns, for a parse without the regular expression
let lastUtcSecond = '';
let lastUtcSecondNs = 0n;
/** the same second, as seconds since the epoch */
let lastUtcSec = 0;

/**
 * The ns within the second of a time in the agent's own form in the second
 * seen last, or -1 when it is another form or another second.
 */
function sameSecondFrac(text: string): number {
  if (
    lastUtcSecond === '' ||
    text.length !== 30 ||
    text.charCodeAt(29) !== 0x5a ||
    text.charCodeAt(19) !== 0x2e
  ) {
    return -1;
  }
  if (!text.startsWith(lastUtcSecond)) return -1;
  let frac = 0;
  for (let i = 20; i < 29; i++) {
    const d = text.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    frac = frac * 10 + d;
  }
  return frac;
}

/** "2026-11-25T08:13:22.123456789Z" -> ns since the epoch; undefined when it is not RFC 3339. */
export function timeToNs(text: string): bigint | undefined {
  const same = sameSecondFrac(text);
  if (same >= 0) return lastUtcSecondNs + BigInt(same);
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const secondText = m[1]! + m[3]!;
  let ms: number;
  if (secondText === lastSecondText) {
    ms = lastSecondMs;
  } else {
    ms = Date.parse(secondText);
    if (Number.isNaN(ms)) return undefined;
    lastSecondText = secondText;
    lastSecondMs = ms;
  }
  const frac = m[2] === undefined ? 0n : BigInt(m[2].padEnd(9, '0'));
  if (m[3] === 'Z' && m[2]?.length === 9) {
    lastUtcSecond = m[1]!;
    lastUtcSecondNs = BigInt(ms) * 1_000_000n;
    lastUtcSec = ms / 1000;
  }
  return BigInt(ms) * 1_000_000n + frac;
}

/**
 * A time as whole seconds since the epoch and nanoseconds within the
 * second: two numbers, exact, with no bigint made per event (the store
 * takes every event's time; a bigint or two per event was ~5 % of its cost
 * on the agent's thread).
 */
export interface TimeParts {
  sec: number;
  nsec: number;
}

/** Fills `out` with the time of an RFC 3339 text; false (out untouched) when it is not one. */
export function timeParts(text: string, out: TimeParts): boolean {
  const frac = sameSecondFrac(text);
  if (frac >= 0) {
    out.sec = lastUtcSec;
    out.nsec = frac;
    return true;
  }
  const ns = timeToNs(text);
  if (ns === undefined) return false;
  nsToParts(ns, out);
  return true;
}

/** ns since the epoch -> seconds and ns within the second (the second rounded down, also before 1970). */
export function nsToParts(ns: bigint, out: TimeParts): void {
  let sec = ns / 1_000_000_000n;
  if (ns < 0n && sec * 1_000_000_000n !== ns) sec -= 1n;
  out.sec = Number(sec);
  out.nsec = Number(ns - sec * 1_000_000_000n);
}

/** seconds and ns within the second -> ns since the epoch */
export function partsToNs(sec: number, nsec: number): bigint {
  return BigInt(sec) * 1_000_000_000n + BigInt(nsec);
}

/** A bound of a time range: ns since the epoch (bigint or number), a Date, or an RFC 3339 string. */
export type TimeBound = bigint | number | Date | string;

/** A TimeBound as ns since the epoch; `what` names it in the error. */
export function boundToNs(bound: TimeBound, what: string): bigint {
  if (typeof bound === 'bigint') return bound;
  if (typeof bound === 'number') {
    if (!Number.isFinite(bound)) throw new Error(`${what} ${bound} is not a time in ns since the epoch`);
    return BigInt(Math.trunc(bound));
  }
  if (bound instanceof Date) {
    const ms = bound.getTime();
    if (Number.isNaN(ms)) throw new Error(`${what} is an invalid Date`);
    return BigInt(ms) * 1_000_000n;
  }
  const ns = timeToNs(bound);
  if (ns !== undefined) return ns;
  const ms = Date.parse(bound);
  if (Number.isNaN(ms)) {
    throw new Error(`${what} "${bound}" is not a time: use RFC 3339 (2026-11-25T08:13:22Z), a Date or ns`);
  }
  return BigInt(ms) * 1_000_000n;
}

export function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}
