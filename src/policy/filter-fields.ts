/** Reading helpers shared by the selector filters. */
import { isSeq } from 'yaml';
import type { PolicyContext } from './context.js';
import { closest, type Field, isNull, type ObjectView } from './yaml-view.js';

/** Report (at its key) a list longer than the engine's limit. */
export function atMost(
  ctx: PolicyContext,
  f: Field,
  items: Field[],
  limit: number,
  what: string,
  per: string,
  hint?: string,
): void {
  if (items.length > limit) {
    ctx.errorAtKey(f, `too many ${what}: ${items.length} (the limit is ${limit} ${per})`, hint);
  }
}

export function lastKey(path: string): string {
  return path.slice(path.lastIndexOf('.') + 1);
}

export function collect<T>(items: Field[], read: (f: Field) => T | undefined): T[] {
  const out: T[] = [];
  for (const i of items) {
    const v = read(i);
    if (v !== undefined) out.push(v);
  }
  return out;
}

/** Read a filter's `operator` among `allowed`. */
export function readEnum<T extends string>(
  ctx: PolicyContext,
  o: ObjectView,
  key: string,
  allowed: readonly T[],
  what: string,
  opts: { caseInsensitive?: boolean; default?: T } = {},
): T | undefined {
  const f = o.get(key);
  const v = ctx.r.string(f, what, opts.default === undefined);
  if (v === undefined) return opts.default;
  const hit = allowed.find((a) => (opts.caseInsensitive ? a.toLowerCase() === v.toLowerCase() : a === v));
  if (hit) return hit;
  const guess = closest(v, allowed);
  ctx.error(
    f,
    `unknown ${what} "${v}"`,
    guess ? `did you mean "${guess}"?` : `${what}s: ${allowed.join(', ')}`,
  );
  return undefined;
}

/** `values`: a non-empty list. */
export function readValues(ctx: PolicyContext, o: ObjectView, what: string): Field[] | undefined {
  const f = o.get('values');
  const items = ctx.r.list(f, 'values');
  if (items.length === 0) {
    // a non-list was reported by list(); absent and [] are reported here
    if (isNull(f) || isSeq(f.node)) ctx.r.errorAtKey(f, `${what} needs values`, 'list at least one value');
    return undefined;
  }
  return items;
}
