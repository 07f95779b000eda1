import { payloadProcess } from './compact.js';
import { EVENT_TYPES, type ExportEvent, eventType } from './types.js';

export interface FilterOptions {
  /** top-level event keys to keep (process_exec, process_exit, ...); empty or absent keeps all */
  eventTypes?: string[];
  /** regular expression searched in the event's process.binary + ' ' + process.arguments */
  process?: string;
}

const TYPE_NAME = /^[a-z_]+$/;

/**
 * A predicate for the events a user asked for. Event types are not checked
 * against a closed list, because sensors added later bring their own; a
 * name that cannot be an event type at all is refused. Events without a
 * process never match a process filter.
 */
export function makeFilter(opts: FilterOptions): (ev: ExportEvent) => boolean {
  let types: Set<string> | undefined;
  if (opts.eventTypes && opts.eventTypes.length > 0) {
    for (const t of opts.eventTypes) {
      if (!TYPE_NAME.test(t)) {
        throw new Error(
          `event type "${t}" is not a valid name (lower case letters and "_"); known types: ${EVENT_TYPES.join(', ')}`,
        );
      }
    }
    types = new Set(opts.eventTypes);
  }
  let re: RegExp | undefined;
  if (opts.process !== undefined && opts.process !== '') {
    try {
      re = new RegExp(opts.process);
    } catch (err) {
      throw new Error(
        `process filter "${opts.process}" is not a valid regular expression: ${(err as Error).message}`,
      );
    }
  }
  if (!types && !re) return () => true;
  return (ev) => {
    if (types && !types.has(eventType(ev))) return false;
    if (re) {
      const p = payloadProcess(ev);
      if (!p || !re.test(`${p.binary} ${p.arguments}`)) return false;
    }
    return true;
  };
}
