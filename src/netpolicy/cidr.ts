/** IPv4/IPv6 prefixes: parsing, containment, and formatting for flows. */
import { isIPv4, isIPv6 } from 'node:net';
import type { Cidr } from './model.js';

/** 16 bytes of an address (IPv4 in the first 4), or undefined when it is not one. */
export function addressBytes(text: string): { family: 4 | 6; addr: Buffer } | undefined {
  if (isIPv4(text)) {
    const addr = Buffer.alloc(16);
    for (const [i, o] of text.split('.').entries()) addr[i] = Number(o);
    return { family: 4, addr };
  }
  if (!isIPv6(text)) return undefined;
  let s = text.split('%')[0]!;
  // a trailing dotted quad is the last 32 bits
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (quad) {
    const b = addressBytes(quad[1]!)!.addr;
    s = `${s.slice(0, -quad[1]!.length)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const addr = Buffer.alloc(16);
  for (const [i, g] of groups.entries()) addr.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  return { family: 6, addr };
}

/** `a.b.c.d/n`, `x::y/n`, or a bare address (a /32 or /128). Host bits are cleared. */
export function parseCidr(text: string): Cidr | string {
  const slash = text.indexOf('/');
  const ip = slash < 0 ? text : text.slice(0, slash);
  const a = addressBytes(ip);
  if (!a) return `"${ip}" is not an IPv4 or IPv6 address`;
  const max = a.family === 4 ? 32 : 128;
  let bits = max;
  if (slash >= 0) {
    const b = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(b) || Number(b) > max) return `prefix length "/${b}" is not in 0..${max}`;
    bits = Number(b);
  }
  const addr = maskTo(a.addr, bits);
  return { family: a.family, bits, addr, text: `${formatAddress(a.family, addr)}/${bits}` };
}

export function maskTo(addr: Buffer, bits: number): Buffer {
  const out = Buffer.from(addr);
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    out[i] = out[i]! & ((0xff << (8 - keep)) & 0xff);
  }
  return out;
}

/** Whether `outer` contains every address of `inner`. */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || outer.bits > inner.bits) return false;
  return maskTo(inner.addr, outer.bits).equals(outer.addr);
}

/** Text form of 16 address bytes (IPv4 from the first 4). */
export function formatAddress(family: 4 | 6, addr: Buffer): string {
  if (family === 4) return `${addr[0]}.${addr[1]}.${addr[2]}.${addr[3]}`;
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(addr.readUInt16BE(i * 2));
  // the longest run of two or more zero groups becomes ::
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

export const ANY_V4: Cidr = { family: 4, bits: 0, addr: Buffer.alloc(16), text: '0.0.0.0/0' };
export const ANY_V6: Cidr = { family: 6, bits: 0, addr: Buffer.alloc(16), text: '::/0' };
