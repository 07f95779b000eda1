/**
 * The event filters of the API and of `osprey events`: the event module's
 * (types, process) plus the policy an event came from.
 */
import { type FilterOptions, makeFilter } from '../events/filter.js';
import { type ExportEvent, eventType } from '../events/types.js';

export interface EventFilterOptions extends FilterOptions {
  /** only events of the policy of this name (policy_name of process_kprobe, process_tracepoint ...) */
  policy?: string;
}

/** A predicate for the events asked for; throws on a bad type name or regular expression. */
export function eventFilter(opts: EventFilterOptions): (ev: ExportEvent) => boolean {
  const { policy, ...rest } = opts;
  const base = makeFilter(rest);
  if (policy === undefined || policy === '') return base;
  return (ev) => base(ev) && policyName(ev) === policy;
}

/** The policy_name of an event's payload, if it has one. */
export function policyName(ev: ExportEvent): string | undefined {
  const payload = (ev as Record<string, unknown>)[eventType(ev)];
  if (payload === null || typeof payload !== 'object') return undefined;
  const name = (payload as { policy_name?: unknown }).policy_name;
  return typeof name === 'string' ? name : undefined;
}
