/**
 * Export options come as lists of JSON objects, written the way Tetragon's
 * flags take them: one object per line (blank lines and lines starting with
 * "#" are skipped), a JSON array of objects, or one object alone. A config
 * file may hand over the parsed value instead. Each entry keeps where it
 * came from ("line 3", "entry 2"), so an error can point at it.
 */

export interface ListEntry {
  value: unknown;
  /** "line 3" or "entry 2" */
  where: string;
}

/** An export option the user wrote wrong; the message names the option and the place. */
export class ExportOptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExportOptionError';
  }
}

export function jsonList(input: unknown, what: string): ListEntry[] {
  if (input === undefined || input === null) return [];
  if (Array.isArray(input)) return input.map((value, i) => ({ value, where: `entry ${i + 1}` }));
  if (typeof input === 'object') return [{ value: input, where: 'entry 1' }];
  if (typeof input !== 'string') {
    throw new ExportOptionError(`${what}: expected JSON text, a list or an object, got ${typeof input}`);
  }
  const text = input.trim();
  if (text === '') return [];
  if (text.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new ExportOptionError(`${what}: not valid JSON: ${(err as Error).message}`);
    }
    return jsonList(parsed, what);
  }
  const out: ListEntry[] = [];
  const lines = input.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    try {
      out.push({ value: JSON.parse(line), where: `line ${i + 1}` });
    } catch (err) {
      throw new ExportOptionError(
        `${what}: line ${i + 1} is not valid JSON (${(err as Error).message}); ` +
          'write one JSON object per line, or a JSON array of objects',
      );
    }
  }
  return out;
}

/** The value as a plain object, or an error naming where it is. */
export function asObject(v: unknown, where: string): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new ExportOptionError(`${where}: expected a JSON object, got ${describe(v)}`);
  }
  return v as Record<string, unknown>;
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string')
    return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** A list of strings (a lone string is taken as a list of one). */
export function stringList(v: unknown, where: string): string[] {
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v))
    throw new ExportOptionError(`${where}: expected a list of strings, got ${describe(v)}`);
  return v.map((s, i) => {
    if (typeof s !== 'string')
      throw new ExportOptionError(`${where}[${i}]: expected a string, got ${describe(s)}`);
    return s;
  });
}

/**
 * A regular expression from a filter. Filters written for Tetragon use Go's
 * RE2 syntax; the common subset is the same in JavaScript, and a leading
 * inline flag group such as "(?i)" is turned into JavaScript flags.
 */
export function compileRegex(src: string, where: string, extraFlags = ''): RegExp {
  let body = src;
  let flags = extraFlags;
  const m = /^\(\?([ims]+)\)/.exec(body);
  if (m) {
    body = body.slice(m[0].length);
    for (const f of m[1]!) if (!flags.includes(f)) flags += f;
  }
  try {
    return new RegExp(body, flags);
  } catch (err) {
    throw new ExportOptionError(
      `${where}: "${src}" is not a valid regular expression: ${(err as Error).message}`,
    );
  }
}
