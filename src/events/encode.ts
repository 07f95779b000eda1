import type { ExportEvent } from './types.js';

function bigintAsString(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/**
 * One event as one line of JSON (no newline). Absent optional fields are
 * left out, as protojson does. Events carry no bigint by design; should a
 * sensor slip one in, it is written as a string (as protojson writes 64-bit
 * integers) instead of failing the whole stream.
 */
export function encodeEvent(ev: ExportEvent): string {
  try {
    return JSON.stringify(ev);
  } catch (err) {
    // the replacer costs on every value, so only the rare event that needs it pays for it
    if (err instanceof TypeError && /BigInt/i.test(err.message)) return JSON.stringify(ev, bigintAsString);
    throw err;
  }
}
