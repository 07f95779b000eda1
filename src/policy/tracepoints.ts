/**
 * Tracepoint formats from tracefs: the fields of
 * `<tracefs>/events/<subsystem>/<event>/format`, in file order, common fields
 * included. A TracingPolicy's tracepoint arg `index` counts these fields (so
 * syscalls/sys_enter_lseek's `whence` is index 7), and a BPF tracepoint
 * program reads field i at `offset` from its context.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const DEFAULT_TRACEFS = '/sys/kernel/tracing';

export interface TracepointField {
  name: string;
  /** the C type as tracefs prints it, without the name: "unsigned int", "const char *", "unsigned long[6]" */
  type: string;
  offset: number;
  size: number;
  signed: boolean;
  /** `common_*` fields belong to every event */
  common: boolean;
  /** fixed array (`char comm[16]`) */
  array: boolean;
  /** `__data_loc`: a dynamic array whose field holds (length << 16 | offset) */
  dataLoc: boolean;
  /** `*` in the type: a pointer, possibly to user memory */
  pointer: boolean;
}

export interface TracepointFormat {
  subsystem: string;
  event: string;
  /** the perf event id (`ID:` line) */
  id: number;
  fields: TracepointField[];
}

/** Parse the text of a tracefs `format` file; throws on text that is not one. */
export function parseTracepointFormat(text: string, subsystem: string, event: string): TracepointFormat {
  let id = -1;
  const fields: TracepointField[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('ID:')) {
      id = Number(line.slice(3).trim());
      continue;
    }
    if (!line.startsWith('field:')) continue;
    // field:unsigned int whence;	offset:32;	size:8;	signed:0;
    const parts = line.split(';').map((p) => p.trim());
    const decl = parts[0]!.slice('field:'.length).trim();
    const attrs = new Map<string, string>();
    for (const p of parts.slice(1)) {
      const i = p.indexOf(':');
      if (i > 0) attrs.set(p.slice(0, i), p.slice(i + 1));
    }
    const offset = Number(attrs.get('offset'));
    const size = Number(attrs.get('size'));
    if (!Number.isInteger(offset) || !Number.isInteger(size)) {
      throw new Error(`format of ${subsystem}/${event}: cannot read offset/size in "${line}"`);
    }
    fields.push({ ...splitDeclaration(decl), offset, size, signed: attrs.get('signed') === '1' });
  }
  if (id < 0 || fields.length === 0) {
    throw new Error(`format of ${subsystem}/${event}: no ID or no fields; is this a tracefs format file?`);
  }
  return { subsystem, event, id, fields };
}

/** "const char * filename" -> name "filename", type "const char *"; "char comm[16]" -> array. */
function splitDeclaration(
  decl: string,
): Pick<TracepointField, 'name' | 'type' | 'common' | 'array' | 'dataLoc' | 'pointer'> {
  const m = /^(.*?)([A-Za-z_][A-Za-z0-9_]*)\s*(\[[^\]]*\])?$/.exec(decl);
  const base = (m?.[1] ?? decl).trim();
  const name = m?.[2] ?? decl;
  const dims = m?.[3] ?? '';
  const dataLoc = base.startsWith('__data_loc');
  const type = `${base}${dims}`.trim();
  return {
    name,
    type,
    common: name.startsWith('common_'),
    array: dims !== '' && !dataLoc,
    dataLoc,
    pointer: base.includes('*'),
  };
}

/** Why a format could not be read. */
export type FormatLookup =
  | { ok: true; format: TracepointFormat }
  | { ok: false; reason: 'no-tracefs' | 'no-such-event' | 'unreadable'; detail: string };

const NAME = /^[A-Za-z0-9_]+$/;

/**
 * Formats read so far, by tracefs root and event, shared by every Tracefs: a
 * tracepoint's format is fixed while the kernel runs, and reading and parsing
 * them was ~18 % of parsing a typical policy, every time one is added. Only
 * formats found are kept: an event missing now may come with a module later.
 */
const FOUND = new Map<string, FormatLookup>();

/**
 * Reads tracepoint formats under one tracefs root, each at most once per
 * process (a policy with `list:` syscalls may ask for hundreds).
 */
export class Tracefs {
  private readonly cache = new Map<string, FormatLookup>();
  private eventLists = new Map<string, string[]>();

  constructor(readonly root: string = DEFAULT_TRACEFS) {}

  /** tracefs is mounted here (it has an events/ directory). */
  mounted(): boolean {
    return existsSync(path.join(this.root, 'events'));
  }

  format(subsystem: string, event: string): FormatLookup {
    const key = `${subsystem}/${event}`;
    let hit = this.cache.get(key);
    if (!hit) {
      const shared = `${this.root}\0${key}`;
      hit = FOUND.get(shared);
      if (!hit) {
        hit = this.read(subsystem, event);
        if (hit.ok) FOUND.set(shared, hit);
      }
      this.cache.set(key, hit);
    }
    return hit;
  }

  exists(subsystem: string, event: string): boolean {
    return this.format(subsystem, event).ok;
  }

  /** Event names of a subsystem, sorted; [] when it does not exist. */
  events(subsystem: string): string[] {
    let list = this.eventLists.get(subsystem);
    if (!list) {
      list = [];
      if (NAME.test(subsystem)) {
        try {
          const dir = path.join(this.root, 'events', subsystem);
          list = readdirSync(dir, { withFileTypes: true })
            .filter((d) => d.isDirectory())
            .map((d) => d.name)
            .sort();
        } catch {
          list = [];
        }
      }
      this.eventLists.set(subsystem, list);
    }
    return list;
  }

  private read(subsystem: string, event: string): FormatLookup {
    // Names go into a path: refuse anything that could walk out of events/.
    if (!NAME.test(subsystem) || !NAME.test(event)) {
      return { ok: false, reason: 'no-such-event', detail: 'names are letters, digits and _' };
    }
    if (!this.mounted()) {
      return { ok: false, reason: 'no-tracefs', detail: `no tracefs at ${this.root}` };
    }
    const file = path.join(this.root, 'events', subsystem, event, 'format');
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR')
        return { ok: false, reason: 'no-such-event', detail: file };
      return { ok: false, reason: 'unreadable', detail: `${file}: ${(e as Error).message}` };
    }
    try {
      return { ok: true, format: parseTracepointFormat(text, subsystem, event) };
    } catch (e) {
      return { ok: false, reason: 'unreadable', detail: (e as Error).message };
    }
  }
}
