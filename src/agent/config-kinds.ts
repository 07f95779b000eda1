/**
 * Checks of the setting kinds the service options brought (durations, listen
 * addresses), kept apart from config.ts so that it stays a table of settings.
 */
import { parseListenAddress } from './address.js';
import { parseDuration } from './duration.js';

export interface Checked {
  value?: unknown;
  error?: string;
}

/** A duration setting: "7d", "1h30m", or a number of seconds; the value is in ms. */
export function checkDuration(key: string, v: unknown): Checked {
  if (typeof v === 'number') {
    return Number.isFinite(v) && v >= 0
      ? { value: Math.round(v * 1000) }
      : { error: `expected a duration such as 30s, 1h or 7d, got ${JSON.stringify(v)}` };
  }
  if (typeof v !== 'string') return { error: `expected a duration such as 30s, 1h or 7d, got ${String(v)}` };
  try {
    return { value: parseDuration(v, key) };
  } catch (err) {
    return { error: (err as Error).message.replace(`${key} `, '') };
  }
}

/** A listen address setting: HOST:PORT, [V6]:PORT or :PORT; "" and null turn it off. */
export function checkAddress(key: string, v: unknown): Checked {
  if (v === null || v === '' || v === undefined) return { value: undefined };
  if (typeof v === 'number') v = String(v);
  if (typeof v !== 'string') return { error: `expected HOST:PORT, got ${JSON.stringify(v)}` };
  try {
    parseListenAddress(v, key);
    return { value: v };
  } catch (err) {
    return { error: (err as Error).message.replace(`${key} `, '') };
  }
}
