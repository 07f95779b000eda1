/**
 * Parsers for the scalar values a policy writes as strings: integers (Go's
 * base-0 syntax, as Tetragon reads them), ranges, IP addresses and CIDRs,
 * ports, address families, rate limits. Each returns the value or a message
 * saying what is wrong with it; none throws.
 */
import { isIPv4, isIPv6 } from 'node:net';

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T>(message: string): Parsed<T> => ({ ok: false, message });

/**
 * An integer written as Go's strconv.ParseInt(s, 0, 64) reads it: optional
 * sign, then decimal, 0x hex, 0o or leading-0 octal, or 0b binary. So "0644"
 * is octal 420, as it is in Tetragon.
 */
export function parseInteger(text: string): Parsed<bigint> {
  const s = text.trim();
  const m = /^([+-]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]+|0|[1-9][0-9]*)$/.exec(s);
  if (!m) return fail(`"${text}" is not an integer (decimal, 0x hex, 0o octal or 0b binary)`);
  const digits = m[2]!;
  let v: bigint;
  if (/^0[0-7]+$/.test(digits)) v = BigInt(`0o${digits.slice(1)}`);
  else v = BigInt(digits.replace(/^0[XOB]/, (p) => p.toLowerCase()));
  return ok(m[1] === '-' ? -v : v);
}

/**
 * Fit an integer to a `bits`-wide arg. Both the signed and the unsigned
 * reading of the width are accepted (a mask 0xffffffff on an int is the bit
 * pattern of -1); the result is normalized to the arg's own signedness, which
 * is how the kernel will compare it.
 */
export function fitInteger(v: bigint, bits: number, signed: boolean): Parsed<bigint> {
  const lo = -(1n << BigInt(bits - 1));
  const hi = (1n << BigInt(bits)) - 1n;
  if (v < lo || v > hi) return fail(`${v} does not fit in ${bits} bits (${lo}..${hi})`);
  return ok(signed ? BigInt.asIntN(bits, v) : BigInt.asUintN(bits, v));
}

export interface IntRange {
  min: bigint;
  max: bigint;
}

/** "min:max", both ends included; min must not exceed max. */
export function parseRange(text: string): Parsed<{ min: bigint; max: bigint }> {
  const parts = text.split(':');
  if (parts.length !== 2) return fail(`"${text}" is not a range; write it as "min:max"`);
  const a = parseInteger(parts[0]!);
  if (!a.ok) return a;
  const b = parseInteger(parts[1]!);
  if (!b.ok) return b;
  if (a.value > b.value) return fail(`range "${text}" starts after it ends`);
  return ok({ min: a.value, max: b.value });
}

export interface Cidr {
  family: 4 | 6;
  /** network byte order, 4 or 16 bytes, host bits as written */
  address: Uint8Array;
  prefixLength: number;
  /** as written */
  text: string;
}

/** An IPv4/IPv6 address ("10.0.0.1", "::1") or CIDR ("10.0.0.0/8", "2001:db8::/32"). */
export function parseCidr(text: string): Parsed<Cidr> {
  const s = text.trim();
  const slash = s.indexOf('/');
  const addrText = slash >= 0 ? s.slice(0, slash) : s;
  let family: 4 | 6;
  let address: Uint8Array;
  if (isIPv4(addrText)) {
    family = 4;
    address = Uint8Array.from(addrText.split('.').map(Number));
  } else if (isIPv6(addrText) && !addrText.includes('%')) {
    family = 6;
    address = ipv6Bytes(addrText);
  } else {
    return fail(`"${text}" is not an IP address or CIDR (e.g. 10.0.0.0/8, 2001:db8::/32)`);
  }
  const maxLen = family === 4 ? 32 : 128;
  let prefixLength = maxLen;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > maxLen) {
      return fail(`"${text}" has prefix length "${p}"; IPv${family} allows 0..${maxLen}`);
    }
    prefixLength = Number(p);
  }
  return ok({ family, address, prefixLength, text: s });
}

/** Bytes of an address node's isIPv6 accepted (so well formed), "::" and dotted tails included. */
function ipv6Bytes(text: string): Uint8Array {
  let s = text;
  const tail: number[] = [];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted) {
    const b = dotted[1]!.split('.').map(Number);
    tail.push((b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!);
    s = s.slice(0, -dotted[1]!.length);
    if (s.endsWith(':') && !s.endsWith('::')) s = s.slice(0, -1);
  }
  const [head, rest] = s.includes('::') ? s.split('::') : [s, undefined];
  const groups = (x: string | undefined): number[] =>
    (x ? x.split(':').filter((g) => g !== '') : []).map((g) => Number.parseInt(g, 16));
  const h = groups(head);
  const r = groups(rest);
  const words =
    rest === undefined
      ? [...h, ...tail]
      : [...h, ...new Array(8 - h.length - r.length - tail.length).fill(0), ...r, ...tail];
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[i * 2] = (w >> 8) & 0xff;
    out[i * 2 + 1] = w & 0xff;
  });
  return out;
}

/** A port ("443") or port range ("1024:65535"), each in 0..65535. */
export function parsePortRange(text: string): Parsed<IntRange> {
  const parts = text.split(':');
  if (parts.length > 2) return fail(`"${text}" is not a port or "min:max" port range`);
  const ends: bigint[] = [];
  for (const p of parts) {
    const n = parseInteger(p);
    if (!n.ok || n.value < 0n || n.value > 65535n) {
      return fail(`"${text}" is not a port: ports are 0..65535, ranges "min:max"`);
    }
    ends.push(n.value);
  }
  const min = ends[0]!;
  const max = ends[1] ?? min;
  if (min > max) return fail(`port range "${text}" starts after it ends`);
  return ok({ min, max });
}

/** Address families by name, as Family values may give them. */
export const ADDRESS_FAMILIES: Readonly<Record<string, number>> = {
  AF_UNSPEC: 0,
  AF_UNIX: 1,
  AF_LOCAL: 1,
  AF_INET: 2,
  AF_INET6: 10,
  AF_NETLINK: 16,
  AF_PACKET: 17,
  AF_VSOCK: 40,
};

/** "AF_INET" or a number 0..255. */
export function parseFamily(text: string): Parsed<number> {
  const named = ADDRESS_FAMILIES[text.trim().toUpperCase()];
  if (named !== undefined) return ok(named);
  const n = parseInteger(text);
  if (n.ok && n.value >= 0n && n.value <= 255n) return ok(Number(n.value));
  return fail(`"${text}" is not an address family (${Object.keys(ADDRESS_FAMILIES).join(', ')} or a number)`);
}

const RATE_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * A rate-limit window: a positive integer with an optional unit ms, s
 * (the default, as in Tetragon), m or h. Returns milliseconds.
 */
export function parseRateLimit(text: string): Parsed<number> {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(text.trim());
  if (!m)
    return fail(`rateLimit "${text}" is not a duration: write a number with unit ms, s, m or h (e.g. "1m")`);
  const ms = Number(m[1]) * RATE_UNITS[m[2] ?? 's']!;
  if (ms <= 0) return fail(`rateLimit "${text}" must be longer than zero`);
  if (!Number.isSafeInteger(ms)) return fail(`rateLimit "${text}" is too long`);
  return ok(ms);
}

/** UTF-8 length: the kernel compares bytes, and the limits are in bytes. */
export function byteLength(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}
