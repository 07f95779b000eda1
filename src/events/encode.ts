import { encodeFlowLine, type FlowEvent } from './flow.js';
import type { ExportEvent } from './types.js';

function bigintAsString(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/**
 * JSON of each process object, made once and kept on the object under a
 * symbol (which for...in, JSON.stringify and structured clones all skip).
 * Process objects are shared by the cache and every event that names them
 * and are never changed after they are built (see src/process/builder.ts),
 * so an event's process, parent and ancestors cost a property read instead
 * of a walk: they are most of an event's bytes, and every process appears in
 * several events. A symbol rather than a WeakMap: tens of thousands of
 * WeakMap entries made the garbage collector's ephemeron pass a measurable
 * part of the agent's CPU in exec storms.
 */
const JSON_OF = Symbol('osprey.json');

type WithJson = { [JSON_OF]?: string };

/** Not enumerable, so that copies made with spread or Object.assign do not inherit a stale JSON. */
function keep(o: object, s: string): void {
  // frozen shared constants are encoded each time
  if (!Object.isExtensible(o)) return;
  Object.defineProperty(o, JSON_OF, { value: s, enumerable: false, writable: false, configurable: false });
}

/**
 * JSON of an object kept on the object itself, made once: for objects that
 * never change after they are made, such as events once published.
 */
export function cachedJson<T extends object>(v: T, make: (v: T) => string): string {
  const o = v as WithJson;
  let s = o[JSON_OF];
  if (s === undefined) {
    s = make(v);
    keep(o, s);
  }
  return s;
}

/** A process object's JSON, as in events (made once per process object). */
export function processJson(p: object): string {
  return cachedJson(p as Record<string, unknown>, encodeFields);
}

/**
 * A process's own fields. Its nested objects (capability sets, namespaces,
 * workload) are shared between many processes, so their JSON is kept too.
 */
function encodeFields(p: Record<string, unknown>): string {
  let out = '{';
  let first = true;
  for (const key in p) {
    const v = p[key];
    if (v === undefined) continue;
    // capability name lists are shared arrays; other arrays are small
    const s =
      v !== null && typeof v === 'object' && (!Array.isArray(v) || v.length > 8)
        ? encodeShared(v)
        : stringify(v);
    out += `${first ? '' : ','}${JSON.stringify(key)}:${s}`;
    first = false;
  }
  return `${out}}`;
}

const encodeSharedFresh = (x: object): string =>
  Array.isArray(x) ? stringify(x) : encodeFields(x as Record<string, unknown>);

function encodeShared(v: object): string {
  return cachedJson(v, encodeSharedFresh);
}

const PROCESS_KEYS = new Set(['process', 'parent']);

/** An event's payload ({process, parent, ...}) with its processes from the cache. */
function encodePayload(payload: Record<string, unknown>): string {
  let out = '{';
  let first = true;
  for (const key in payload) {
    const v = payload[key];
    if (v === undefined) continue;
    let s: string;
    if (PROCESS_KEYS.has(key) && v !== null && typeof v === 'object') s = processJson(v);
    else if (key === 'ancestors' && Array.isArray(v))
      s = `[${v.map((a) => processJson(a as object)).join(',')}]`;
    else s = stringify(v);
    out += `${first ? '' : ','}${JSON.stringify(key)}:${s}`;
    first = false;
  }
  return `${out}}`;
}

/**
 * One event as one line of JSON (no newline), byte for byte what
 * JSON.stringify gives. Absent optional fields are left out, as protojson
 * does. Events carry no bigint by design; should a sensor slip one in, it is
 * written as a string (as protojson writes 64-bit integers) instead of
 * failing the whole stream.
 */
export function encodeEvent(ev: ExportEvent): string {
  // flows come at the rate of new connections: they have an encoder of their own
  if ((ev as { flow?: unknown }).flow !== undefined) return encodeFlowLine(ev as unknown as FlowEvent);
  let out = '{';
  let first = true;
  const rec = ev as Record<string, unknown>;
  for (const key in rec) {
    const v = rec[key];
    if (v === undefined) continue;
    const s =
      v !== null && typeof v === 'object' && !Array.isArray(v) && 'process' in v
        ? encodePayload(v as Record<string, unknown>)
        : stringify(v);
    out += `${first ? '' : ','}${JSON.stringify(key)}:${s}`;
    first = false;
  }
  return `${out}}`;
}

function stringify(v: unknown): string {
  try {
    return JSON.stringify(v);
  } catch (err) {
    // the replacer costs on every value, so only the rare value that needs it pays for it
    if (err instanceof TypeError && /BigInt/i.test(err.message)) return JSON.stringify(v, bigintAsString);
    throw err;
  }
}
