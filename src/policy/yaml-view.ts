/**
 * Strict, typed reading of a parsed YAML document, in the manner of
 * Kubernetes strict decoding: every field must be known, every value must have
 * the right type, and every problem is reported at the line of the node it
 * concerns (through the ErrorSink) instead of being thrown.
 */
import { type Document, isAlias, isMap, isScalar, isSeq, type LineCounter, type Node } from 'yaml';
import type { ErrorSink, SourcePos } from './errors.js';

/** One value in the document, present or not, with the path and position to report it at. */
export interface Field {
  /** undefined when the field is absent */
  node: Node | undefined;
  path: string;
  /** the value's position, or the owner's when the field is absent */
  at: SourcePos;
  /** the position of its key, for fields of a mapping: where a missing child is reported */
  keyAt?: SourcePos;
}

/** A mapping whose keys have been checked against the known field names. */
export class ObjectView {
  constructor(
    readonly self: Field,
    private readonly fields: Map<string, Field>,
  ) {}

  /** The field, or an absent Field located at this object. */
  get(key: string): Field {
    return (
      this.fields.get(key) ?? {
        node: undefined,
        path: joinPath(this.self.path, key),
        at: this.self.keyAt ?? this.self.at,
      }
    );
  }

  /** Present and not null. */
  has(key: string): boolean {
    const f = this.fields.get(key);
    return f !== undefined && !isNull(f);
  }

  keys(): string[] {
    return [...this.fields.keys()];
  }
}

export function joinPath(parent: string, key: string): string {
  return parent ? `${parent}.${key}` : key;
}

/** YAML `key:` with nothing after it, or `~`/`null`: Kubernetes treats it as unset. */
export function isNull(f: Field): boolean {
  return f.node === undefined || (isScalar(f.node) && f.node.value === null);
}

export class YamlReader {
  constructor(
    readonly sink: ErrorSink,
    private readonly lines: LineCounter,
    private readonly doc: Document.Parsed,
  ) {}

  /** The value behind an alias (`*name`); other nodes as they are. */
  deref(node: Node | null | undefined): Node | undefined {
    if (node === null || node === undefined) return undefined;
    if (isAlias(node)) return (node.resolve(this.doc) as Node | undefined) ?? undefined;
    return node;
  }

  /** The document's root value. */
  root(): Field {
    const node = this.deref(this.doc.contents as Node | null);
    return { node, path: '', at: this.pos(this.doc.contents as Node | null, { line: 1, column: 1 }) };
  }

  pos(node: Node | undefined | null, fallback: SourcePos): SourcePos {
    const start = node?.range?.[0];
    if (start === undefined) return fallback;
    const p = this.lines.linePos(start);
    return { line: p.line, column: p.col };
  }

  posOfOffset(offset: number): SourcePos {
    const p = this.lines.linePos(offset);
    return { line: p.line, column: p.col };
  }

  error(f: Field, message: string, hint?: string): void {
    this.sink.add(f.at, f.path, message, hint);
  }

  /** For problems with a field as a whole (too many items): report at its key. */
  errorAtKey(f: Field, message: string, hint?: string): void {
    this.sink.add(f.keyAt ?? f.at, f.path, message, hint);
  }

  /**
   * Read a mapping. Keys not in `known` are errors naming the key and its
   * path; `what` names the object in messages ("a kprobe"). Returns undefined
   * (after reporting) when the value is not a mapping.
   */
  object(f: Field, known: readonly string[], what: string): ObjectView | undefined {
    if (isNull(f)) return undefined;
    if (!isMap(f.node)) {
      this.error(f, `${what} must be a mapping, not ${describe(f.node)}`);
      return undefined;
    }
    const fields = new Map<string, Field>();
    for (const pair of f.node.items) {
      const keyNode = pair.key as Node | null;
      const keyAt = this.pos(keyNode, f.at);
      if (!isScalar(keyNode) || typeof keyNode.value !== 'string') {
        this.sink.add(
          keyAt,
          f.path,
          `${what} has a key that is not a string: ${describe(keyNode ?? undefined)}`,
        );
        continue;
      }
      const key = keyNode.value;
      const path = joinPath(f.path, key);
      if (!known.includes(key)) {
        const guess = closest(key, known);
        this.sink.add(
          keyAt,
          path,
          `unknown field "${key}" in ${what}`,
          guess ? `did you mean "${guess}"?` : `known fields: ${known.join(', ')}`,
        );
        continue;
      }
      const raw = pair.value as Node | null;
      // `key:` with no value has no node: locate it at the key.
      fields.set(key, { node: this.deref(raw), path, at: raw ? this.pos(raw, keyAt) : keyAt, keyAt });
    }
    return new ObjectView(f, fields);
  }

  /** The items of a sequence; null/absent is the empty list. */
  list(f: Field, what: string): Field[] {
    if (isNull(f)) return [];
    if (!isSeq(f.node)) {
      this.error(f, `${what} must be a list, not ${describe(f.node)}`, 'write it as a YAML list ("- item")');
      return [];
    }
    return f.node.items.map((item, i) => {
      const raw = item as Node | null;
      return { node: this.deref(raw), path: `${f.path}[${i}]`, at: this.pos(raw, f.at) };
    });
  }

  /** A required or optional string. Numbers are not strings here: `call: 42` is an error. */
  string(f: Field, what: string, required = false): string | undefined {
    if (isNull(f)) {
      if (required) this.missing(f, what);
      return undefined;
    }
    if (!isScalar(f.node) || typeof f.node.value !== 'string') {
      this.error(f, `${what} must be a string, not ${describe(f.node)}`);
      return undefined;
    }
    if (required && f.node.value === '') {
      this.error(f, `${what} must not be empty`);
      return undefined;
    }
    return f.node.value;
  }

  /**
   * A scalar list item whose text matters, whatever YAML made of it:
   * `- 0x40`, `- "0x40"` and `- 64` are all accepted and returned as written
   * (the Kubernetes CRD types these as strings).
   */
  text(f: Field, what: string): string | undefined {
    if (isNull(f)) {
      this.error(f, `${what} must not be empty`);
      return undefined;
    }
    if (!isScalar(f.node)) {
      this.error(f, `${what} must be a string or a number, not ${describe(f.node)}`);
      return undefined;
    }
    const v = f.node.value;
    if (typeof v === 'string') return v;
    if (typeof v === 'bigint' || typeof v === 'number') {
      return f.node.source ?? String(v);
    }
    this.error(f, `${what} must be a string or a number, not ${describe(f.node)}`, 'quote it');
    return undefined;
  }

  bool(f: Field, what: string): boolean | undefined {
    if (isNull(f)) return undefined;
    if (!isScalar(f.node) || typeof f.node.value !== 'boolean') {
      this.error(f, `${what} must be true or false, not ${describe(f.node)}`);
      return undefined;
    }
    return f.node.value;
  }

  /** An integer in [min, max]. Quoted numbers are refused, as Kubernetes strict decoding refuses them. */
  int(f: Field, what: string, min: number, max: number, required = false): number | undefined {
    if (isNull(f)) {
      if (required) this.missing(f, what);
      return undefined;
    }
    const v = isScalar(f.node) ? f.node.value : undefined;
    if (typeof v !== 'bigint') {
      const quoted = typeof v === 'string' && /^-?\d+$/.test(v);
      this.error(
        f,
        `${what} must be an integer, not ${describe(f.node)}`,
        quoted ? 'remove the quotes around the number' : undefined,
      );
      return undefined;
    }
    if (v < BigInt(min) || v > BigInt(max)) {
      this.error(f, `${what} ${v} is out of range ${min}..${max}`);
      return undefined;
    }
    return Number(v);
  }

  missing(f: Field, what: string, hint?: string): void {
    this.error(f, `${what} is required`, hint);
  }
}

/** What a node is, for messages: `a string ("x")`, `a list`, `null`. */
export function describe(node: Node | undefined | null): string {
  if (node === undefined || node === null) return 'nothing';
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    const v = node.value;
    if (v === null) return 'null';
    if (typeof v === 'string') return `a string (${JSON.stringify(truncate(v, 40))})`;
    if (typeof v === 'bigint' || typeof v === 'number') return `a number (${node.source ?? String(v)})`;
    if (typeof v === 'boolean') return `a boolean (${v})`;
  }
  return 'an unsupported YAML value';
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n)}...` : s;
}

/** The known name within edit distance `within` (default 2) of a misspelt one, ignoring case: the first closest. */
export function closest(word: string, candidates: readonly string[], within = 2): string | undefined {
  let best: string | undefined;
  let bestD = within + 1;
  const w = word.toLowerCase();
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase(), within);
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return best;
}

/** Levenshtein distance, or more than `within` when the lengths alone say so. */
function editDistance(a: string, b: string, within: number): number {
  if (Math.abs(a.length - b.length) > within) return within + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
