/**
 * Event filters in the shape of Tetragon's export filters:
 *
 *   {"binary_regex": ["^/usr/bin/(curl|wget)$"], "event_set": ["PROCESS_EXEC"]}
 *
 * Within one filter every field must match (AND); within one field any
 * value may match (OR). An allow list lets an event through when any of its
 * filters matches (an empty allow list lets everything through); a deny list
 * stops an event when any of its filters matches, and deny wins over allow.
 * A field about something the event does not have (a binary, a parent, a
 * policy) does not match it.
 */
import { decidingPolicy } from '../events/flow.js';
import type { ExportEvent, Process } from '../events/types.js';
import { asObject, compileRegex, describe, ExportOptionError, jsonList, stringList } from './json-list.js';

/** One filter as written (Tetragon's Filter message, the fields Osprey supports). */
export interface EventFilterSpec {
  /** the process binary matches any of these */
  binary_regex?: string[];
  /** the process arguments match any of these */
  arguments_regex?: string[];
  parent_binary_regex?: string[];
  parent_arguments_regex?: string[];
  /** the parent or any ancestor the event carries matches any of these */
  ancestor_binary_regex?: string[];
  /** the process pid is one of these */
  pid?: number[];
  /** the process or an ancestor has one of these pids (followed to descendants as they appear) */
  pid_set?: number[];
  /** event types: PROCESS_EXEC or process_exec */
  event_set?: string[];
  /** the event's policy_name is one of these */
  policy_names?: string[];
}

export type EventPredicate = (ev: ExportEvent) => boolean;

const REGEX_FIELDS = [
  'binary_regex',
  'arguments_regex',
  'parent_binary_regex',
  'parent_arguments_regex',
  'ancestor_binary_regex',
] as const;
const SUPPORTED = [...REGEX_FIELDS, 'pid', 'pid_set', 'event_set', 'policy_names'] as const;

/** Tetragon filter fields Osprey knows of but does not (yet) offer, and why. */
const UNSUPPORTED: Record<string, string> = {
  namespace: 'Kubernetes namespaces are not known to Osprey',
  labels: 'Kubernetes pod labels are not known to Osprey',
  pod_regex: 'Kubernetes pods are not known to Osprey',
  container_id: 'container IDs are not known to Osprey',
  health_check: 'Osprey has no health-check events',
  capabilities: 'capability filters are not supported yet',
  cel_expression: 'CEL expressions are not supported',
  in_init_tree: 'init-tree tracking is not supported',
};

const EVENT_TYPE = /^[A-Za-z_]+$/;

/** Check and normalise one filter object; `where` prefixes every error. */
export function parseFilterSpec(v: unknown, where: string): EventFilterSpec {
  const obj = asObject(v, where);
  const spec: EventFilterSpec = {};
  for (const [key, value] of Object.entries(obj)) {
    const at = `${where}: ${key}`;
    if ((REGEX_FIELDS as readonly string[]).includes(key)) {
      const list = stringList(value, at);
      for (const [i, s] of list.entries()) compileRegex(s, `${at}[${i}]`);
      spec[key as (typeof REGEX_FIELDS)[number]] = list;
    } else if (key === 'pid' || key === 'pid_set') {
      if (!Array.isArray(value))
        throw new ExportOptionError(`${at}: expected a list of pids, got ${describe(value)}`);
      spec[key] = value.map((p, i) => {
        const n = typeof p === 'string' && /^\d+$/.test(p) ? Number(p) : p;
        if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 0xffffffff) {
          throw new ExportOptionError(`${at}[${i}]: ${describe(p)} is not a pid`);
        }
        return n;
      });
    } else if (key === 'event_set') {
      spec.event_set = stringList(value, at).map((t, i) => {
        if (!EVENT_TYPE.test(t)) {
          throw new ExportOptionError(
            `${at}[${i}]: "${t}" is not an event type (e.g. PROCESS_EXEC, process_kprobe)`,
          );
        }
        return t.toLowerCase();
      });
    } else if (key === 'policy_names') {
      spec.policy_names = stringList(value, at);
    } else if (key in UNSUPPORTED) {
      throw new ExportOptionError(`${at}: not supported by Osprey (${UNSUPPORTED[key]})`);
    } else {
      throw new ExportOptionError(`${at}: unknown filter field; known fields: ${SUPPORTED.join(', ')}`);
    }
  }
  return spec;
}

/** Filters from JSON lines, a JSON array, one object, or already parsed values; `what` names the option. */
export function parseFilterList(input: unknown, what: string): EventFilterSpec[] {
  return jsonList(input, what).map((e) => parseFilterSpec(e.value, `${what} ${e.where}`));
}

interface EventView {
  type: string;
  payload: Record<string, unknown> | undefined;
  process: Partial<Process> | undefined;
  parent: Partial<Process> | undefined;
  ancestors: Partial<Process>[] | undefined;
}

function view(ev: ExportEvent): EventView {
  let type = 'unknown';
  for (const k in ev) {
    if (k !== 'node_name' && k !== 'time' && k !== 'aggregation_info') {
      type = k;
      break;
    }
  }
  const p = (ev as Record<string, unknown>)[type];
  const payload = p !== null && typeof p === 'object' ? (p as Record<string, unknown>) : undefined;
  const obj = (v: unknown) => (v !== null && typeof v === 'object' ? (v as Partial<Process>) : undefined);
  const anc = payload?.['ancestors'];
  return {
    type,
    payload,
    process: obj(payload?.['process']),
    parent: obj(payload?.['parent']),
    ancestors: Array.isArray(anc) ? (anc as Partial<Process>[]) : undefined,
  };
}

const anyMatch = (res: RegExp[], s: unknown) => typeof s === 'string' && res.some((re) => re.test(s));

/** Most exec_ids a pid_set filter remembers; past it the oldest are forgotten. */
const MAX_TRACKED = 65_536;

/** One filter as a predicate. A pid_set filter keeps state: the exec_ids of the processes it matched. */
export function compileFilter(spec: EventFilterSpec): EventPredicate {
  const checks: ((v: EventView) => boolean)[] = [];
  const res = (list: string[] | undefined, where: string) =>
    (list ?? []).map((s, i) => compileRegex(s, `${where}[${i}]`));
  if (spec.pid_set && spec.pid_set.length > 0) {
    const pids = new Set(spec.pid_set);
    // processes of the set's trees seen so far, so that a grandchild whose event
    // carries only its parent is still recognised; checked first, so that it sees
    // every event even when another field of the filter rejects it
    const tracked = new Set<string>();
    checks.push((v) => {
      const p = v.process;
      if (!p) return false;
      const hit =
        (typeof p.pid === 'number' && pids.has(p.pid)) ||
        (typeof v.parent?.pid === 'number' && pids.has(v.parent.pid)) ||
        (v.ancestors ?? []).some((a) => typeof a.pid === 'number' && pids.has(a.pid)) ||
        (typeof p.parent_exec_id === 'string' && tracked.has(p.parent_exec_id)) ||
        (typeof p.exec_id === 'string' && tracked.has(p.exec_id));
      if (hit && typeof p.exec_id === 'string' && !tracked.has(p.exec_id)) {
        if (tracked.size >= MAX_TRACKED) tracked.delete(tracked.values().next().value as string);
        tracked.add(p.exec_id);
      }
      return hit;
    });
  }
  if (spec.event_set && spec.event_set.length > 0) {
    const types = new Set(spec.event_set);
    checks.push((v) => types.has(v.type));
  }
  if (spec.policy_names && spec.policy_names.length > 0) {
    const names = new Set(spec.policy_names);
    checks.push((v) => {
      // a flow's policy is the one that decided it
      const name = v.type === 'flow' && v.payload ? decidingPolicy(v.payload) : v.payload?.['policy_name'];
      return typeof name === 'string' && names.has(name);
    });
  }
  if (spec.pid && spec.pid.length > 0) {
    const pids = new Set(spec.pid);
    checks.push((v) => typeof v.process?.pid === 'number' && pids.has(v.process.pid));
  }
  if (spec.binary_regex?.length) {
    const r = res(spec.binary_regex, 'binary_regex');
    checks.push((v) => anyMatch(r, v.process?.binary));
  }
  if (spec.arguments_regex?.length) {
    const r = res(spec.arguments_regex, 'arguments_regex');
    checks.push((v) => anyMatch(r, v.process?.arguments));
  }
  if (spec.parent_binary_regex?.length) {
    const r = res(spec.parent_binary_regex, 'parent_binary_regex');
    checks.push((v) => anyMatch(r, v.parent?.binary));
  }
  if (spec.parent_arguments_regex?.length) {
    const r = res(spec.parent_arguments_regex, 'parent_arguments_regex');
    checks.push((v) => anyMatch(r, v.parent?.arguments));
  }
  if (spec.ancestor_binary_regex?.length) {
    const r = res(spec.ancestor_binary_regex, 'ancestor_binary_regex');
    checks.push(
      (v) => anyMatch(r, v.parent?.binary) || (v.ancestors ?? []).some((a) => anyMatch(r, a.binary)),
    );
  }
  if (checks.length === 0) return () => true;
  return (ev) => {
    const v = view(ev);
    for (const c of checks) if (!c(v)) return false;
    return true;
  };
}

/** True when any filter matches; false for an empty list. */
export function anyFilter(specs: readonly EventFilterSpec[]): EventPredicate {
  const preds = specs.map(compileFilter);
  if (preds.length === 0) return () => false;
  if (preds.length === 1) return preds[0]!;
  if (specs.some((s) => s.pid_set && s.pid_set.length > 0)) {
    // a pid_set filter must see every event to follow its trees: no short cut
    return (ev) => {
      let hit = false;
      for (const p of preds) if (p(ev)) hit = true;
      return hit;
    };
  }
  return (ev) => {
    for (const p of preds) if (p(ev)) return true;
    return false;
  };
}

export interface AllowDenyLists {
  allow?: readonly EventFilterSpec[];
  deny?: readonly EventFilterSpec[];
}

/** What passes the allow list (any filter, or everything when empty) and no deny filter. */
export function makeAllowDeny(lists: AllowDenyLists): EventPredicate {
  const allow = lists.allow && lists.allow.length > 0 ? anyFilter(lists.allow) : undefined;
  const deny = lists.deny && lists.deny.length > 0 ? anyFilter(lists.deny) : undefined;
  if (!allow && !deny) return () => true;
  // both are evaluated, so that pid_set filters see every event they need to track
  return (ev) => {
    const allowed = allow ? allow(ev) : true;
    const denied = deny ? deny(ev) : false;
    return allowed && !denied;
  };
}
