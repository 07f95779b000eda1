/**
 * The event filters of the API and of `osprey events`: the event module's
 * (types, process) plus the policy an event came from.
 */
import { type FilterOptions, makeFilter } from '../events/filter.js';
import { type ExportEvent, eventType } from '../events/types.js';
import { makeAllowDeny, parseFilterList } from '../export/filter.js';

export interface EventFilterOptions extends FilterOptions {
  /** only events of the policy of this name (policy_name of process_kprobe, process_tracepoint ...) */
  policy?: string;
  /** regular expression searched in the event's process binary */
  binary?: string;
  /** Tetragon-style allow list: JSON lines or a JSON array of filters; any may match */
  allow?: string;
  /** Tetragon-style deny list: an event matching any of these is left out (deny wins) */
  deny?: string;
}

/** A predicate for the events asked for; throws on a bad type name or regular expression. */
export function eventFilter(opts: EventFilterOptions): (ev: ExportEvent) => boolean {
  const { policy, allow, deny, binary, ...rest } = opts;
  const simple = makeFilter(rest);
  let binaryRe: RegExp | undefined;
  if (binary) {
    try {
      binaryRe = new RegExp(binary);
    } catch (err) {
      throw new Error(
        `binary filter "${binary}" is not a valid regular expression: ${(err as Error).message}`,
      );
    }
  }
  const base =
    (policy === undefined || policy === '') && !binaryRe
      ? simple
      : (ev: ExportEvent) =>
          simple(ev) &&
          (policy === undefined || policy === '' || policyName(ev) === policy) &&
          (!binaryRe || matches(binaryRe, processBinary(ev)));
  if (!allow && !deny) return base;
  // ExportOptionError names the list, the line and the field
  const lists = makeAllowDeny({
    allow: parseFilterList(allow, 'allow filter'),
    deny: parseFilterList(deny, 'deny filter'),
  });
  // the lists see every event (pid_set filters follow process trees), then the simple filters
  return (ev) => lists(ev) && base(ev);
}

/** The policy_name of an event's payload, if it has one. */
export function policyName(ev: ExportEvent): string | undefined {
  const payload = (ev as Record<string, unknown>)[eventType(ev)];
  if (payload === null || typeof payload !== 'object') return undefined;
  const name = (payload as { policy_name?: unknown }).policy_name;
  return typeof name === 'string' ? name : undefined;
}

/** Events without a binary never match a binary filter. */
function matches(re: RegExp, s: string | undefined): boolean {
  return s !== undefined && re.test(s);
}

/** The binary of an event's process, if it has one. */
function processBinary(ev: ExportEvent): string | undefined {
  const payload = (ev as Record<string, unknown>)[eventType(ev)];
  if (payload === null || typeof payload !== 'object') return undefined;
  const p = (payload as { process?: { binary?: unknown } }).process;
  return typeof p?.binary === 'string' ? p.binary : undefined;
}
