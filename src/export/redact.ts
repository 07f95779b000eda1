/**
 * Redaction of secrets in process arguments, as Tetragon's
 * --redaction-filters:
 *
 *   {"match": [{"binary_regex": ["^/usr/bin/mysql$"]}], "redact": ["(?:--password|-p)(?:\\s+|=)(\\S+)"]}
 *
 * Where a redact expression matches, the text of each of its capture groups
 * becomes "*****"; the rest of the match stays, so the reader still sees
 * which option was given. An expression without a capture group would
 * redact nothing and is refused. `match` (the export filter language; any
 * filter may match) and `binary_regex` narrow the events a filter applies
 * to. The arguments of the process, its parent and the ancestors the event
 * carries are redacted; the event is copied, never changed in place.
 */
import type { ExportEvent, Process } from '../events/types.js';
import { anyFilter, type EventFilterSpec, type EventPredicate, parseFilterSpec } from './filter.js';
import { asObject, compileRegex, ExportOptionError, jsonList, stringList } from './json-list.js';

export const REDACTED = '*****';

export interface RedactionFilterSpec {
  /** events it applies to: any of these filters matches (all events when absent) */
  match?: EventFilterSpec[];
  /** applies only when the process binary matches one of these */
  binary_regex?: string[];
  /** expressions whose capture groups are redacted */
  redact: string[];
}

const KEYS = ['match', 'redact', 'binary_regex'];

function groupCount(re: RegExp): number {
  // an alternative that matches the empty string makes exec report every group
  return new RegExp(`${re.source}|`, re.flags.replace(/[gyd]/g, '')).exec('')!.length - 1;
}

export function parseRedactionFilterSpec(v: unknown, where: string): RedactionFilterSpec {
  const obj = asObject(v, where);
  for (const k of Object.keys(obj)) {
    if (!KEYS.includes(k)) {
      throw new ExportOptionError(
        `${where}: ${k}: unknown redaction filter field; known fields: ${KEYS.join(', ')}`,
      );
    }
  }
  if (obj['redact'] === undefined) {
    throw new ExportOptionError(`${where}: "redact" is missing (a list of expressions with capture groups)`);
  }
  const redact = stringList(obj['redact'], `${where}: redact`);
  if (redact.length === 0) throw new ExportOptionError(`${where}: redact: no expression listed`);
  redact.forEach((src, i) => {
    const re = compileRegex(src, `${where}: redact[${i}]`);
    if (groupCount(re) === 0) {
      throw new ExportOptionError(
        `${where}: redact[${i}]: "${src}" has no capture group, so it would redact nothing; ` +
          'put the secret part in parentheses, e.g. "--password=(\\\\S+)"',
      );
    }
  });
  const spec: RedactionFilterSpec = { redact };
  const match = obj['match'];
  if (match !== undefined) {
    const list = Array.isArray(match) ? match : [match];
    spec.match = list.map((m, i) => parseFilterSpec(m, `${where}: match[${i}]`));
  }
  if (obj['binary_regex'] !== undefined) {
    const list = stringList(obj['binary_regex'], `${where}: binary_regex`);
    for (const [i, s] of list.entries()) compileRegex(s, `${where}: binary_regex[${i}]`);
    spec.binary_regex = list;
  }
  return spec;
}

export function parseRedactionFilters(input: unknown, what: string): RedactionFilterSpec[] {
  return jsonList(input, what).map((e) => parseRedactionFilterSpec(e.value, `${what} ${e.where}`));
}

/** `text` with the capture groups of every match of each expression replaced by REDACTED. */
export function redactText(text: string, expressions: readonly RegExp[]): string {
  let out = text;
  for (const src of expressions) {
    const re =
      src.global && src.hasIndices ? src : new RegExp(src.source, `${src.flags.replace(/[gd]/g, '')}gd`);
    re.lastIndex = 0;
    const ranges: [number, number][] = [];
    for (let m = re.exec(out); m !== null; m = re.exec(out)) {
      if (m[0].length === 0) re.lastIndex++;
      const idx = m.indices!;
      for (let g = 1; g < idx.length; g++) {
        const r = idx[g];
        if (r && r[1] > r[0]) ranges.push([r[0], r[1]]);
      }
    }
    if (ranges.length === 0) continue;
    // nested or overlapping groups become one redaction
    ranges.sort((a, b) => a[0] - b[0]);
    let s = '';
    let pos = 0;
    let cur = ranges[0]!;
    const flush = (r: [number, number]) => {
      s += out.slice(pos, r[0]) + REDACTED;
      pos = r[1];
    };
    for (let i = 1; i < ranges.length; i++) {
      const r = ranges[i]!;
      if (r[0] < cur[1]) cur = [cur[0], Math.max(cur[1], r[1])];
      else {
        flush(cur);
        cur = r;
      }
    }
    flush(cur);
    out = s + out.slice(pos);
  }
  return out;
}

interface CompiledRedaction {
  match: EventPredicate | undefined;
  binaries: RegExp[] | undefined;
  redact: RegExp[];
}

export class Redactor {
  /** events that had something redacted */
  redacted = 0;
  private readonly filters: CompiledRedaction[];

  constructor(specs: readonly RedactionFilterSpec[]) {
    this.filters = specs.map((s) => ({
      match: s.match && s.match.length > 0 ? anyFilter(s.match) : undefined,
      binaries: s.binary_regex?.map((r, i) => compileRegex(r, `binary_regex[${i}]`)),
      redact: s.redact.map((r, i) => compileRegex(r, `redact[${i}]`, 'gd')),
    }));
  }

  get active(): boolean {
    return this.filters.length > 0;
  }

  /** The event with secrets redacted: the same object when there was nothing to redact. */
  apply(ev: ExportEvent, type: string): ExportEvent {
    if (this.filters.length === 0) return ev;
    const payload = (ev as Record<string, unknown>)[type];
    if (payload === null || typeof payload !== 'object') return ev;
    const body = payload as { process?: Partial<Process>; parent?: Partial<Process>; ancestors?: unknown };
    const binary = body.process?.binary;
    const expressions: RegExp[] = [];
    for (const f of this.filters) {
      if (f.binaries && !(typeof binary === 'string' && f.binaries.some((re) => re.test(binary)))) continue;
      if (f.match && !f.match(ev)) continue;
      expressions.push(...f.redact);
    }
    if (expressions.length === 0) return ev;
    let next: Record<string, unknown> | undefined;
    const redactProcess = (p: unknown): unknown => {
      if (p === null || typeof p !== 'object') return p;
      const args = (p as Partial<Process>).arguments;
      if (typeof args !== 'string' || args === '') return p;
      const red = redactText(args, expressions);
      return red === args ? p : { ...(p as object), arguments: red };
    };
    for (const key of ['process', 'parent'] as const) {
      const before = body[key];
      const after = redactProcess(before);
      if (after !== before) {
        next ??= { ...(payload as Record<string, unknown>) };
        next[key] = after;
      }
    }
    if (Array.isArray(body.ancestors)) {
      const after = body.ancestors.map(redactProcess);
      if (after.some((a, i) => a !== (body.ancestors as unknown[])[i])) {
        next ??= { ...(payload as Record<string, unknown>) };
        next['ancestors'] = after;
      }
    }
    if (!next) return ev;
    this.redacted++;
    return { ...ev, [type]: next } as ExportEvent;
  }
}
