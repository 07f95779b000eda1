/**
 * A hook's `args` (and `returnArg`): their types, and where each is read in
 * the tracepoint records the hook attaches to.
 */
import { isMap } from 'yaml';
import {
  ARG_TYPES,
  type ArgType,
  inferIntType,
  isArgType,
  SUPPORTED_ARG_TYPES,
  TETRAGON_ONLY_ARG_TYPES,
} from './arg-types.js';
import type { PolicyContext } from './context.js';
import { LIMITS } from './limits.js';
import type { ArgField, HookArg, ReturnArg } from './model.js';
import type { TracepointField } from './tracepoints.js';
import { closest, type Field, isNull, type ObjectView } from './yaml-view.js';

export const ARG_FIELDS = [
  'index',
  'type',
  'sizeArgIndex',
  'returnCopy',
  'maxData',
  'label',
  'resolve',
  'btfType',
] as const;

/** A slot that an arg `index` can name, with its place in the format file. */
export interface Slot extends TracepointField {
  formatIndex: number;
}

/**
 * What arg indexes count on one tracepoint the hook attaches to: every field
 * of a tracepoint's format, or the syscall arguments of a sys_enter event.
 */
export interface ArgLayout {
  /** `tracepoint syscalls/sys_enter_lseek`, `syscall openat` */
  what: string;
  /** `field` / `argument` */
  noun: string;
  slots: Slot[];
  /** where a user can look the indexes up */
  hint: string;
}

/** The hook an arg belongs to, as args need to know it. */
export interface ArgHost {
  kind: 'tracepoint' | 'syscall' | 'function';
  /** `kprobe "sys_write"` */
  label: string;
  /** one per target; [] when unknown (kernel functions, or the target failed) */
  layouts: ArgLayout[];
}

/** Slots of a tracepoint: all its fields. */
export function tracepointLayout(what: string, fields: TracepointField[], formatPath: string): ArgLayout {
  return {
    what,
    noun: 'field',
    slots: fields.map((f, i) => ({ ...f, formatIndex: i })),
    hint: `index counts the fields of ${formatPath}, common fields included`,
  };
}

/** Slots of a syscall: the fields after __syscall_nr in its sys_enter format. */
export function syscallLayout(name: string, fields: TracepointField[]): ArgLayout {
  const slots = fields
    .map((f, i) => ({ ...f, formatIndex: i }))
    .filter((f) => !f.common && f.name !== '__syscall_nr');
  const names = slots.map((s, i) => `${i}=${s.name}`).join(', ');
  return {
    what: `syscall ${name}`,
    noun: 'argument',
    slots,
    hint: names ? `its arguments: ${names}` : `${name} takes no arguments`,
  };
}

function argField(s: Slot): ArgField {
  const inRecord = recordString(s);
  return {
    name: s.name,
    ctype: s.type,
    formatIndex: s.formatIndex,
    offset: s.offset,
    size: s.size,
    signed: s.signed,
    ...(inRecord ? { inRecord } : {}),
  };
}

function readable(s: Slot): boolean {
  return !s.array && !s.dataLoc && [1, 2, 4, 8].includes(s.size);
}

/** An 8-byte field that can hold a user pointer. */
function pointerSized(s: Slot): boolean {
  if (s.size !== 8 || s.array || s.dataLoc) return false;
  return s.pointer || /\b(unsigned long|u64|__u64|uintptr_t)\b/.test(s.type);
}

/** A string in the record: `__data_loc char[] name` or `char name[N]` (N < 256). */
function recordString(s: Slot): 'data_loc' | 'array' | undefined {
  if (s.dataLoc)
    return /^__data_loc\s+(const\s+)?(unsigned\s+)?char\s*\[\]$/.test(s.type) ? 'data_loc' : undefined;
  if (s.array)
    return /^(const\s+)?(unsigned\s+)?char\s*\[\d+\]$/.test(s.type) && s.size < 256 ? 'array' : undefined;
  return undefined;
}

/** Why `type` cannot be read from slot `s`, or undefined when it can. */
function slotProblem(type: ArgType, s: Slot): string | undefined {
  const cls = ARG_TYPES[type].class;
  if (s.dataLoc || s.array) {
    const str = recordString(s);
    if (cls === 'string' && str) return undefined;
    const kind = s.dataLoc ? 'a __data_loc (dynamic) field' : 'an array field';
    return str
      ? `field ${s.name} (${s.type}) is a string in the record: read it as type string`
      : `field ${s.name} (${s.type}) is ${kind} of other than char, which Osprey cannot read`;
  }
  if (cls === 'int' || cls === 'fd') {
    return readable(s) ? undefined : `field ${s.name} (${s.type}) is ${s.size} bytes, not an integer`;
  }
  return pointerSized(s)
    ? undefined
    : `field ${s.name} (${s.type}) is not a pointer; ${type} reads memory at a pointer`;
}

function typeHint(): string {
  return `supported types: ${SUPPORTED_ARG_TYPES.join(', ')}`;
}

/**
 * Read an arg type: a supported name, or `auto`/absent (inferred from the
 * field when the layout gives one). Reports and returns undefined otherwise.
 */
function readType(
  ctx: PolicyContext,
  o: ObjectView,
  slots: (Slot | undefined)[],
  host: ArgHost,
): ArgType | undefined {
  const f = o.get('type');
  const t = ctx.r.string(f, 'arg type') ?? 'auto';
  if (t === 'auto') {
    const s = slots[0];
    if (!s) {
      // A tracepoint that could not be read was reported already; functions have no format to infer from.
      if (host.kind === 'function') ctx.error(f.node ? f : o.self, 'arg type is required here', typeHint());
      return undefined;
    }
    const inferred = recordString(s) ? 'string' : inferIntType(s);
    if (!inferred) {
      ctx.error(
        f.node ? f : o.self,
        `cannot infer the type of field ${s.name} (${s.type})`,
        'give a type: string, char_buf or sockaddr for pointers',
      );
    }
    return inferred;
  }
  if (isArgType(t)) return t;
  if (TETRAGON_ONLY_ARG_TYPES.includes(t)) {
    ctx.error(f, `arg type "${t}" is not supported by Osprey`, typeHint());
  } else {
    const guess = closest(t, SUPPORTED_ARG_TYPES);
    ctx.error(f, `unknown arg type "${t}"`, guess ? `did you mean "${guess}"? ${typeHint()}` : typeHint());
  }
  return undefined;
}

/** A hook's args by position: undefined where refused, with the index each was written with. */
export interface ReadArgs {
  args: (HookArg | undefined)[];
  indexes: (number | undefined)[];
}

/**
 * Read `args`. Returns one entry per written arg, undefined where the arg
 * was refused (so matchArgs can tell "refused" from "not declared").
 */
export function readArgs(ctx: PolicyContext, f: Field, host: ArgHost): ReadArgs {
  const out: ReadArgs = { args: [], indexes: [] };
  const items = ctx.r.list(f, 'args');
  if (items.length > LIMITS.argsPerHook) {
    ctx.errorAtKey(
      f,
      `too many args: ${items.length} (the limit is ${LIMITS.argsPerHook} per hook)`,
      'read fewer args',
    );
  }
  for (const item of items) {
    out.args.push(readArg(ctx, item, host, out.args.length));
    const o = isMap(item.node) ? item.node : undefined;
    const idx = o?.get('index');
    out.indexes.push(typeof idx === 'bigint' && idx >= 0n ? Number(idx) : undefined);
  }
  return out;
}

function readArg(ctx: PolicyContext, item: Field, host: ArgHost, position: number): HookArg | undefined {
  const { r } = ctx;
  const o = r.object(item, ARG_FIELDS, 'an arg');
  if (!o) {
    if (isNull(item)) r.missing(item, 'arg');
    return undefined;
  }
  let ok = true;
  for (const k of ['resolve', 'btfType'] as const) {
    if (o.has(k)) {
      ctx.error(
        o.get(k),
        `${k} is not supported by Osprey`,
        'read the arg itself; BTF-resolved fields are not supported',
      );
      ok = false;
    }
  }
  const indexF = o.get('index');
  const index = r.int(indexF, 'arg index', 0, 0x7fffffff, true);
  if (index === undefined) ok = false;

  // The slot this arg reads on each target.
  const slots: (Slot | undefined)[] = [];
  if (index !== undefined) {
    for (const layout of host.layouts) {
      const s = layout.slots[index];
      if (!s) {
        const n = layout.slots.length;
        const range = n === 0 ? 'none' : `index 0..${n - 1}`;
        ctx.error(
          indexF,
          `${layout.what} has ${n} ${layout.noun}${n === 1 ? '' : 's'} (${range}); index ${index} is out of range`,
          layout.hint,
        );
        ok = false;
        break;
      }
      slots.push(s);
    }
  }
  const type = readType(ctx, o, slots, host);
  if (!type) ok = false;

  if (type) {
    for (const s of slots) {
      if (!s) continue;
      const why = slotProblem(type, s);
      if (why) {
        ctx.error(o.get('type').node ? o.get('type') : indexF, `arg ${index} as ${type}: ${why}`);
        ok = false;
        break;
      }
    }
  }

  const label = r.string(o.get('label'), 'label');
  const maxData = r.bool(o.get('maxData'), 'maxData') ?? false;
  const returnCopy = r.bool(o.get('returnCopy'), 'returnCopy') ?? false;
  const sizeF = o.get('sizeArgIndex');
  const sizeRaw = r.int(sizeF, 'sizeArgIndex', 0, 0x7fffffff) ?? 0;
  const sizeArgIndex = sizeRaw === 0 ? undefined : sizeRaw;
  const isBuffer = type === 'char_buf';

  if (maxData && type && !isBuffer) {
    ctx.error(o.get('maxData'), `maxData applies to char_buf args; this one is ${type}`);
    ok = false;
  }
  if (returnCopy) {
    if (host.kind === 'tracepoint') {
      ctx.error(o.get('returnCopy'), 'returnCopy applies to kprobes: a tracepoint has no return');
      ok = false;
    } else if (type && !isBuffer) {
      ctx.error(o.get('returnCopy'), `returnCopy applies to char_buf args; this one is ${type}`);
      ok = false;
    }
  }
  let sizeField: ArgField | undefined;
  if (sizeArgIndex !== undefined) {
    if (type && !isBuffer) {
      ctx.error(sizeF, `sizeArgIndex applies to char_buf args; this one is ${type}`);
      ok = false;
    } else if (index !== undefined && sizeArgIndex === index + 1) {
      ctx.error(
        sizeF,
        `sizeArgIndex ${sizeArgIndex} names this arg itself`,
        'it is 1-based: the size of arg 1 in index 2 is sizeArgIndex: 3',
      );
      ok = false;
    } else {
      for (const layout of host.layouts) {
        const s = layout.slots[sizeArgIndex - 1];
        const n = layout.slots.length;
        if (!s) {
          ctx.error(
            sizeF,
            `sizeArgIndex ${sizeArgIndex} is out of range: ${layout.what} has ${n} ${layout.noun}${n === 1 ? '' : 's'} (sizeArgIndex 1..${n})`,
            `sizeArgIndex is 1-based; ${layout.hint}`,
          );
          ok = false;
          break;
        }
        if (!readable(s) || s.pointer) {
          ctx.error(
            sizeF,
            `sizeArgIndex ${sizeArgIndex} names ${s.name} (${s.type}), which is not an integer size`,
          );
          ok = false;
          break;
        }
        sizeField ??= argField(s);
      }
    }
  } else if (isBuffer && !returnCopy) {
    ctx.error(
      o.get('type'),
      'a char_buf arg needs its size: sizeArgIndex (1-based index of the size arg) or returnCopy: true',
      'e.g. write(fd, buf, count): buf has sizeArgIndex: 3',
    );
    ok = false;
  }
  if (!ok || index === undefined || !type) return undefined;
  return {
    position,
    index,
    type,
    label,
    maxData,
    returnCopy,
    sizeArgIndex,
    field: slots[0] ? argField(slots[0]) : undefined,
    sizeField,
    source: ctx.ref(item),
  };
}

/** Read `returnArg`: an integer type, read from sys_exit's `ret` field for syscall hooks. */
export function readReturnArg(
  ctx: PolicyContext,
  f: Field,
  retField: TracepointField | undefined,
  retIndex: number | undefined,
): ReturnArg | undefined {
  const { r } = ctx;
  const o = r.object(f, ARG_FIELDS, 'the returnArg');
  if (!o) return undefined;
  let ok = true;
  for (const k of ['sizeArgIndex', 'returnCopy', 'maxData', 'resolve', 'btfType'] as const) {
    if (o.has(k)) {
      ctx.error(o.get(k), `${k} does not apply to a returnArg`);
      ok = false;
    }
  }
  const index = r.int(o.get('index'), 'returnArg index', 0, 0x7fffffff) ?? 0;
  const typeF = o.get('type');
  const t = r.string(typeF, 'returnArg type', true);
  if (t === undefined) return undefined;
  if (!isArgType(t) || ARG_TYPES[t].class !== 'int') {
    const ints = SUPPORTED_ARG_TYPES.filter((x) => ARG_TYPES[x].class === 'int');
    ctx.error(
      typeF,
      `returnArg type "${t}" is not supported: a syscall returns an integer`,
      `returnArg types: ${ints.join(', ')}`,
    );
    return undefined;
  }
  if (!ok) return undefined;
  const field: ArgField | undefined =
    retField && retIndex !== undefined
      ? {
          name: retField.name,
          ctype: retField.type,
          formatIndex: retIndex,
          offset: retField.offset,
          size: retField.size,
          signed: retField.signed,
        }
      : undefined;
  return { index, type: t, field, source: ctx.ref(f) };
}
