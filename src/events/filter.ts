import { closest } from '../policy/yaml-view.js';
import { payloadProcess } from './compact.js';
import { EVENT_TYPES, type ExportEvent, eventType } from './types.js';

export interface FilterOptions {
  /** top-level event keys to keep (process_exec, process_exit, ...); empty or absent keeps all */
  eventTypes?: string[];
  /** regular expression searched in the event's process.binary + ' ' + process.arguments */
  process?: string;
}

/**
 * Throws unless every one of types is an event type this build emits
 * (EVENT_TYPES): a misspelt one is refused with the name it is closest to,
 * rather than match nothing, silently, forever.
 */
export function checkEventTypes(types: readonly string[]): void {
  const known: readonly string[] = EVENT_TYPES;
  for (const t of types) {
    if (!known.includes(t)) {
      const guess = closest(t, known);
      throw new Error(
        `unknown event type "${t}": ${guess ? `did you mean "${guess}"? ` : ''}known types: ${known.join(', ')}`,
      );
    }
  }
}

/**
 * A predicate for the events a user asked for (event types as
 * checkEventTypes takes them). Events without a process never match a
 * process filter.
 */
export function makeFilter(opts: FilterOptions): (ev: ExportEvent) => boolean {
  let types: Set<string> | undefined;
  if (opts.eventTypes && opts.eventTypes.length > 0) {
    checkEventTypes(opts.eventTypes);
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
