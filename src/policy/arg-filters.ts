/**
 * matchArgs and matchReturnArgs: which arg a filter names, whether its
 * operator applies to the arg's type, and its values parsed for that type.
 */
import { isScalar } from 'yaml';
import {
  ALL_OPERATORS,
  ARG_TYPES,
  type ArgType,
  lookupOperator,
  OPERATORS_FOR,
  operatorValues,
} from './arg-types.js';
import type { PolicyContext } from './context.js';
import { readValues } from './filter-fields.js';
import { LIMITS } from './limits.js';
import { LIST_PREFIX, listRef } from './lists.js';
import type { ArgFilter, FilterValue } from './model.js';
import type { SelectorHost } from './selectors.js';
import {
  byteLength,
  type Cidr,
  fitInteger,
  type IntRange,
  parseCidr,
  parseFamily,
  parseInteger,
  parsePortRange,
  parseRange,
} from './values.js';
import { closest, type Field, isNull } from './yaml-view.js';

const ARG_FILTER_FIELDS = ['index', 'args', 'operator', 'values'] as const;

/** One matchArgs filter, or (ret) one matchReturnArgs filter; undefined, after reporting, when refused. */
export function readArgFilter(
  ctx: PolicyContext,
  f: Field,
  host: SelectorHost,
  ret: boolean,
): ArgFilter | undefined {
  const { r } = ctx;
  const what = ret ? 'a matchReturnArgs filter' : 'a matchArgs filter';
  const o = r.object(f, ARG_FILTER_FIELDS, what);
  if (!o) {
    if (isNull(f)) r.missing(f, what);
    return undefined;
  }
  // Which arg: returnArg, or by written index, or by position (`args: [n]`).
  let argPosition = -1;
  let argType: ArgType | undefined;
  let argName: string;
  if (ret) {
    if (o.has('args'))
      ctx.error(o.get('args'), 'args does not apply to matchReturnArgs: they filter the returnArg');
    const ra = host.returnArg;
    // without a returnArg the hook itself was refused: "return: true needs a returnArg"
    if (!ra) return undefined;
    const idx = r.int(o.get('index'), 'index', 0, 0x7fffffff);
    if (idx !== undefined && idx !== ra.index) {
      ctx.error(
        o.get('index'),
        `matchReturnArgs index ${idx} is not the returnArg's (${ra.index})`,
        `use index: ${ra.index}`,
      );
      return undefined;
    }
    argType = ra.type;
    argName = 'the returnArg';
  } else {
    const hasIndex = o.has('index');
    const hasArgs = o.has('args');
    if (hasIndex && hasArgs) {
      ctx.error(
        o.get('args'),
        'give index or args, not both',
        'index names the arg by its index; args by its position',
      );
      return undefined;
    }
    if (hasArgs) {
      const items = r.list(o.get('args'), 'args');
      if (items.length !== 1) {
        ctx.error(
          o.get('args'),
          `args takes one position, not ${items.length}`,
          'name one arg by its position in args',
        );
        return undefined;
      }
      const pos = r.int(items[0]!, 'args position', 0, 0x7fffffff);
      if (pos === undefined) return undefined;
      if (pos >= host.args.length) {
        ctx.error(
          items[0]!,
          `args position ${pos} is out of range: ${host.label} declares ${host.args.length} args`,
          host.args.length ? `positions 0..${host.args.length - 1}` : 'declare args first',
        );
        return undefined;
      }
      argPosition = pos;
    } else {
      const indexF = o.get('index');
      const index = r.int(indexF, 'index', 0, 0x7fffffff, true);
      if (index === undefined) return undefined;
      const pos = host.argIndexes.indexOf(index);
      if (pos < 0) {
        // When an arg's own index was unreadable, it may be the one meant: stay quiet.
        if (!host.argIndexes.includes(undefined)) {
          const declared = host.argIndexes as number[];
          ctx.error(
            indexF,
            `matchArgs index ${index} does not name an arg of ${host.label}`,
            declared.length ? `declared arg indexes: ${declared.join(', ')}` : 'declare it under args first',
          );
        }
        return undefined;
      }
      argPosition = pos;
    }
    const arg = host.args[argPosition];
    if (!arg) return undefined; // refused, reported there
    argType = arg.type;
    argName = `arg ${arg.index}`;
  }

  const opF = o.get('operator');
  const opText = r.string(opF, 'operator', true);
  if (opText === undefined) return undefined;
  const lookup = lookupOperator(opText);
  if (!lookup.ok) {
    if (lookup.tetragonOnly) {
      ctx.error(opF, `operator ${opText} applies to ${lookup.tetragonOnly}, which Osprey does not read`);
    } else {
      const guess = closest(opText, ALL_OPERATORS);
      ctx.error(
        opF,
        `unknown operator "${opText}"`,
        guess ? `did you mean "${guess}"?` : `operators: ${ALL_OPERATORS.join(', ')}`,
      );
    }
    return undefined;
  }
  const operator = lookup.operator;
  const info = ARG_TYPES[argType];
  const allowed = OPERATORS_FOR[info.class];
  if (!allowed.includes(operator)) {
    if (OPERATORS_FOR.sockaddr.includes(operator)) {
      ctx.error(opF, `operator ${operator} needs a sockaddr arg; ${argName} is ${argType}`);
    } else {
      ctx.error(
        opF,
        `operator ${operator} does not apply to ${argName} of type ${argType}`,
        `operators for ${argType}: ${allowed.join(', ')}`,
      );
    }
    return undefined;
  }

  let kind = operatorValues(operator, info.class);
  const valuesF = o.get('values');
  if (kind === 'none') {
    if (!isNull(valuesF) && r.list(valuesF, 'values').length > 0) {
      ctx.error(valuesF, `operator ${operator} takes no values`);
      return undefined;
    }
    return { argPosition, argType, operator, value: { kind: 'none' }, source: ctx.ref(f) };
  }
  const items = readValues(ctx, o, `operator ${operator}`);
  if (!items) return undefined;
  if (info.class === 'fd' && kind === 'ints') {
    // An fd compares as its descriptor number, or as the path it is open on.
    const texts = items.map((i) => (isScalar(i.node) ? String(i.node.source ?? i.node.value) : ''));
    const numeric = texts.filter((t) => parseInteger(t).ok).length;
    if (numeric === 0 && (operator === 'Equal' || operator === 'NotEqual')) kind = 'strings';
    else if (numeric !== texts.length && (operator === 'Equal' || operator === 'NotEqual')) {
      ctx.errorAtKey(
        valuesF,
        `operator ${operator} on fd ${argName} mixes descriptor numbers and paths`,
        'use one filter for each',
      );
      return undefined;
    }
  }
  const value = readFilterValues(ctx, items, kind, operator, argType);
  if (!value) return undefined;
  return { argPosition, argType, operator, value, source: ctx.ref(f) };
}

const STRING_LIMITS: Readonly<Record<string, number>> = {
  Equal: LIMITS.stringValueBytes,
  NotEqual: LIMITS.stringValueBytes,
  Prefix: LIMITS.prefixBytes,
  NotPrefix: LIMITS.prefixBytes,
  Postfix: LIMITS.postfixBytes,
  NotPostfix: LIMITS.postfixBytes,
  SubString: LIMITS.substringBytes,
};

/** Parse every value; report each bad one; undefined when any was bad. */
function readFilterValues(
  ctx: PolicyContext,
  items: Field[],
  kind: ReturnType<typeof operatorValues>,
  operator: string,
  argType: ArgType,
): FilterValue | undefined {
  const { r } = ctx;
  const info = ARG_TYPES[argType];
  let ok = true;
  const bad = (f: Field, message: string, hint?: string): void => {
    ctx.error(f, message, hint);
    ok = false;
  };
  const fit = (f: Field, v: bigint): bigint | undefined => {
    const p = fitInteger(v, info.bits, info.signed);
    if (p.ok) return p.value;
    bad(f, `value for ${argType} arg: ${p.message}`);
    return undefined;
  };
  const ints: bigint[] = [];
  const ranges: IntRange[] = [];
  const strings: string[] = [];
  const cidrs: Cidr[] = [];
  const families: number[] = [];

  for (const item of items) {
    const text = r.text(item, 'value');
    if (text === undefined) {
      ok = false;
      continue;
    }
    switch (kind) {
      case 'ints': {
        const p = parseInteger(text);
        if (!p.ok) {
          bad(
            item,
            p.message,
            argType === 'fd'
              ? `${operator} compares an fd's number; its path takes Equal, Prefix, Postfix or SubString`
              : undefined,
          );
          break;
        }
        const v = fit(item, p.value);
        if (v !== undefined) ints.push(v);
        break;
      }
      case 'ranges': {
        if (!text.includes(':')) {
          bad(
            item,
            `${operator} value "${text}" is not a range`,
            `write it as "min:max", e.g. "${text}:${text}"`,
          );
          break;
        }
        const p = parseRange(text);
        if (!p.ok) {
          bad(item, p.message);
          break;
        }
        const min = fit(item, p.value.min);
        const max = fit(item, p.value.max);
        if (min !== undefined && max !== undefined) {
          if (min > max) bad(item, `range "${text}" starts after it ends as ${argType}`);
          else ranges.push({ min, max });
        }
        break;
      }
      case 'set': {
        if (text.startsWith(LIST_PREFIX)) {
          const list = listRef(ctx, item, text);
          if (!list) {
            ok = false;
            break;
          }
          if (list.type === 'none') {
            bad(item, `list "${list.name}" is not a syscall list`, 'InMap lists must have type: syscalls');
            break;
          }
          if (argType !== 'syscall64') {
            bad(item, `syscall list "${list.name}" needs a syscall64 arg; this one is ${argType}`);
            break;
          }
          for (const t of list.syscalls) {
            if (t.nr === undefined) {
              bad(
                item,
                `the number of syscall ${t.name} is not known on ${ctx.arch}`,
                'list syscall numbers instead',
              );
              break;
            }
            ints.push(BigInt(t.nr));
          }
          break;
        }
        if (text.includes(':')) {
          const p = parseRange(text);
          if (!p.ok) bad(item, p.message);
          else {
            const min = fit(item, p.value.min);
            const max = fit(item, p.value.max);
            if (min !== undefined && max !== undefined) ranges.push({ min, max });
          }
          break;
        }
        const p = parseInteger(text);
        if (!p.ok) bad(item, p.message, 'InMap values are integers, "min:max" ranges or list:NAME');
        else {
          const v = fit(item, p.value);
          if (v !== undefined) ints.push(v);
        }
        break;
      }
      case 'strings': {
        const limit = STRING_LIMITS[operator] ?? LIMITS.stringValueBytes;
        const len = byteLength(text);
        if (len > limit) bad(item, `${operator} value is ${len} bytes; the limit is ${limit}`);
        else if (len === 0 && operator !== 'Equal' && operator !== 'NotEqual') {
          bad(item, `${operator} value is empty: it would match everything`);
        } else strings.push(text);
        break;
      }
      case 'cidrs': {
        const p = parseCidr(text);
        if (p.ok) cidrs.push(p.value);
        else bad(item, p.message);
        break;
      }
      case 'ports': {
        const p = parsePortRange(text);
        if (p.ok) ranges.push(p.value);
        else bad(item, p.message);
        break;
      }
      case 'families': {
        const p = parseFamily(text);
        if (p.ok) families.push(p.value);
        else bad(item, p.message);
        break;
      }
      case 'none':
        break;
    }
  }
  if (!ok) return undefined;
  const valuesF: Field = { node: undefined, path: items[0]!.path.replace(/\[\d+\]$/, ''), at: items[0]!.at };
  const tooMany = (n: number, limit: number, what: string): boolean => {
    if (n <= limit) return false;
    ctx.error(
      valuesF,
      `too many ${what}: ${n} (the limit is ${limit} per filter)`,
      'split the filter, or use InMap for single values',
    );
    return true;
  };
  if (tooMany(ranges.length, LIMITS.rangesPerFilter, kind === 'ports' ? 'port ranges' : 'ranges'))
    return undefined;
  if (tooMany(families.length, LIMITS.familiesPerFilter, 'families')) return undefined;
  if (operator === 'SubString' && tooMany(strings.length, LIMITS.substringValues, 'SubString values'))
    return undefined;
  switch (kind) {
    case 'ints':
      return { kind, values: ints };
    case 'ranges':
      return { kind, ranges };
    case 'set':
      return { kind, values: ints, ranges };
    case 'strings':
      return { kind, values: strings };
    case 'cidrs':
      return { kind, cidrs };
    case 'ports':
      return { kind, ranges };
    case 'families':
      return { kind, values: families };
    default:
      return { kind: 'none' };
  }
}
