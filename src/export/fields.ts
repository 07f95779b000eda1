/**
 * Field filters, as Tetragon's --field-filters:
 *
 *   {"event_set": ["PROCESS_EXEC"], "fields": "process.binary,process.pid,parent.binary", "action": "INCLUDE"}
 *
 * Paths are dotted and relative to the event's payload (process.cap,
 * parent.binary); node_name and time are always kept. INCLUDE keeps only
 * the listed fields, EXCLUDE removes them. A path through a list applies to
 * every element (ancestors.binary). Filters apply in order to the events of
 * their event_set (every event when it is empty; every event not in it with
 * invert_event_set). Events are never changed in place: they are shared with
 * the other sinks, so a filtered event is a copy along the paths it touches.
 */
import type { ExportEvent } from '../events/types.js';
import { asObject, describe, ExportOptionError, jsonList, stringList } from './json-list.js';

export type FieldAction = 'INCLUDE' | 'EXCLUDE';

export interface FieldFilterSpec {
  event_set?: string[];
  /** comma-separated in Tetragon's JSON; a list is accepted too */
  fields: string[];
  action: FieldAction;
  /** apply to the events NOT in event_set */
  invert_event_set?: boolean;
}

const PATH = /^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/;
const EVENT_TYPE = /^[A-Za-z_]+$/;
const KEYS = ['event_set', 'fields', 'action', 'invert_event_set'];

export function parseFieldFilterSpec(v: unknown, where: string): FieldFilterSpec {
  const obj = asObject(v, where);
  for (const k of Object.keys(obj)) {
    if (!KEYS.includes(k)) {
      throw new ExportOptionError(
        `${where}: ${k}: unknown field filter field; known fields: ${KEYS.join(', ')}`,
      );
    }
  }
  const rawFields = obj['fields'];
  if (rawFields === undefined)
    throw new ExportOptionError(`${where}: "fields" is missing (e.g. "process.binary,process.pid")`);
  const fields = (
    typeof rawFields === 'string' ? rawFields.split(',') : stringList(rawFields, `${where}: fields`)
  )
    .map((f) => f.trim())
    .filter((f) => f !== '');
  if (fields.length === 0) throw new ExportOptionError(`${where}: fields: no field listed`);
  for (const f of fields) {
    if (!PATH.test(f)) {
      throw new ExportOptionError(
        `${where}: fields: "${f}" is not a dotted field path (e.g. process.cap.effective)`,
      );
    }
  }
  const action = obj['action'] ?? 'INCLUDE';
  if (action !== 'INCLUDE' && action !== 'EXCLUDE') {
    throw new ExportOptionError(`${where}: action: expected "INCLUDE" or "EXCLUDE", got ${describe(action)}`);
  }
  const spec: FieldFilterSpec = { fields, action };
  if (obj['event_set'] !== undefined) {
    spec.event_set = stringList(obj['event_set'], `${where}: event_set`).map((t, i) => {
      if (!EVENT_TYPE.test(t)) {
        throw new ExportOptionError(
          `${where}: event_set[${i}]: "${t}" is not an event type (e.g. PROCESS_EXEC)`,
        );
      }
      return t.toLowerCase();
    });
  }
  const inv = obj['invert_event_set'];
  if (inv !== undefined) {
    if (typeof inv !== 'boolean') {
      throw new ExportOptionError(`${where}: invert_event_set: expected true or false, got ${describe(inv)}`);
    }
    spec.invert_event_set = inv;
  }
  return spec;
}

export function parseFieldFilters(input: unknown, what: string): FieldFilterSpec[] {
  return jsonList(input, what).map((e) => parseFieldFilterSpec(e.value, `${what} ${e.where}`));
}

/** Path segments as a tree: a leaf (true) takes the whole value. */
type PathTree = Map<string, PathTree | true>;

function pathTree(paths: readonly string[]): PathTree {
  const root: PathTree = new Map();
  for (const p of paths) {
    const segs = p.split('.');
    let node = root;
    for (let i = 0; i < segs.length; i++) {
      const s = segs[i]!;
      const cur = node.get(s);
      if (cur === true) break; // a shorter path already takes all of it
      if (i === segs.length - 1) {
        node.set(s, true);
        break;
      }
      let next = cur;
      if (next === undefined) {
        next = new Map();
        node.set(s, next);
      }
      node = next;
    }
  }
  return root;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** A copy with only the fields of the tree; undefined when none is there. */
function pick(v: unknown, tree: PathTree): unknown {
  if (Array.isArray(v)) return v.map((e) => pick(e, tree) ?? {});
  if (!isObject(v)) return undefined;
  const out: Record<string, unknown> = {};
  let any = false;
  for (const [k, sub] of tree) {
    if (!(k in v)) continue;
    const val = sub === true ? v[k] : pick(v[k], sub);
    if (val === undefined) continue;
    out[k] = val;
    any = true;
  }
  return any ? out : undefined;
}

/** A copy without the fields of the tree, sharing every untouched branch. */
function omit(v: unknown, tree: PathTree): unknown {
  if (Array.isArray(v)) return v.map((e) => omit(e, tree));
  if (!isObject(v)) return v;
  let out: Record<string, unknown> | undefined;
  for (const [k, sub] of tree) {
    if (!(k in v)) continue;
    out ??= { ...v };
    if (sub === true) delete out[k];
    else out[k] = omit(v[k], sub);
  }
  return out ?? v;
}

export class FieldFilter {
  private readonly tree: PathTree;
  private readonly types: Set<string> | undefined;

  constructor(readonly spec: FieldFilterSpec) {
    this.tree = pathTree(spec.fields);
    this.types = spec.event_set && spec.event_set.length > 0 ? new Set(spec.event_set) : undefined;
  }

  appliesTo(type: string): boolean {
    if (!this.types) return true;
    return this.types.has(type) !== (this.spec.invert_event_set === true);
  }

  /** The event with the filter applied to its payload (the same object when the filter does not apply). */
  apply(ev: ExportEvent, type: string): ExportEvent {
    if (!this.appliesTo(type)) return ev;
    const payload = (ev as Record<string, unknown>)[type];
    if (!isObject(payload)) return ev;
    const next = this.spec.action === 'INCLUDE' ? (pick(payload, this.tree) ?? {}) : omit(payload, this.tree);
    if (next === payload) return ev;
    return { ...ev, [type]: next } as ExportEvent;
  }
}
