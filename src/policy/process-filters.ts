/**
 * The filters on the calling process: matchPIDs, matchBinaries and
 * matchParentBinaries, matchNamespaces, matchCapabilities.
 */
import { CAP_NAMES } from '../events/caps.js';
import type { PolicyContext } from './context.js';
import { atMost, lastKey, readEnum, readValues } from './filter-fields.js';
import { LIMITS } from './limits.js';
import type {
  BinaryFilter,
  BinaryOperator,
  CapabilityFilter,
  CapabilitySet,
  NamespaceFilter,
  NamespaceType,
  PidFilter,
} from './model.js';
import { byteLength } from './values.js';
import { closest, type Field, isNull } from './yaml-view.js';

const IN_NOT_IN = ['In', 'NotIn'] as const;

export function readPidFilter(ctx: PolicyContext, f: Field): PidFilter | undefined {
  const { r } = ctx;
  const o = r.object(f, ['operator', 'values', 'isNamespacePID', 'followForks'], 'a matchPIDs filter');
  if (!o) {
    if (isNull(f)) r.missing(f, 'matchPIDs filter');
    return undefined;
  }
  const operator = readEnum(ctx, o, 'operator', IN_NOT_IN, 'operator');
  const isNamespacePID = r.bool(o.get('isNamespacePID'), 'isNamespacePID') ?? false;
  const followForks = r.bool(o.get('followForks'), 'followForks') ?? false;
  const items = readValues(ctx, o, 'matchPIDs');
  if (!operator || !items) return undefined;
  if (items.length > LIMITS.pidsPerFilter) {
    atMost(ctx, o.get('values'), items, LIMITS.pidsPerFilter, 'PIDs', 'per filter');
    return undefined;
  }
  const values: number[] = [];
  let ok = true;
  for (const item of items) {
    const text = r.text(item, 'PID');
    if (text === undefined) {
      ok = false;
      continue;
    }
    if (!/^\d+$/.test(text.trim()) || Number(text) > 0xffffffff) {
      ctx.error(item, `PID "${text}" is not a number 0..4294967295`);
      ok = false;
      continue;
    }
    values.push(Number(text));
  }
  if (!ok) return undefined;
  return { operator, values, followForks, isNamespacePID, source: ctx.ref(f) };
}

const BINARY_OPERATORS: readonly BinaryOperator[] = [
  'In',
  'NotIn',
  'Prefix',
  'NotPrefix',
  'Postfix',
  'NotPostfix',
];

export function readBinaryFilter(ctx: PolicyContext, f: Field): BinaryFilter | undefined {
  const { r } = ctx;
  const what = lastKey(f.path.replace(/\[\d+\]$/, ''));
  const o = r.object(f, ['operator', 'values', 'followChildren'], `a ${what} filter`);
  if (!o) {
    if (isNull(f)) r.missing(f, `${what} filter`);
    return undefined;
  }
  const operator = readEnum(ctx, o, 'operator', BINARY_OPERATORS, 'operator');
  const followChildren = r.bool(o.get('followChildren'), 'followChildren') ?? false;
  const items = readValues(ctx, o, what);
  if (!operator || !items) return undefined;
  let ok = true;
  if (followChildren && operator.startsWith('Not')) {
    ctx.error(
      o.get('followChildren'),
      `followChildren works with operators In, Prefix and Postfix, not ${operator}`,
      'a process is followed from a binary that matched',
    );
    ok = false;
  }
  const values: string[] = [];
  // the kernel keeps the first binaryPathBytes of a process's binary
  const limit = Math.min(
    LIMITS.binaryPathBytes,
    operator === 'Prefix' || operator === 'NotPrefix'
      ? LIMITS.prefixBytes
      : operator === 'Postfix' || operator === 'NotPostfix'
        ? LIMITS.postfixBytes
        : LIMITS.binaryPathBytes,
  );
  for (const item of items) {
    const v = r.string(item, 'binary', true);
    if (v === undefined) {
      ok = false;
      continue;
    }
    if (!operator.endsWith('Postfix') && !v.startsWith('/')) {
      ctx.error(
        item,
        `${what} ${operator} value "${v}" is not an absolute path`,
        'binaries are matched by their full path (e.g. /usr/bin/bash); use Postfix to match a name',
      );
      ok = false;
    } else if (byteLength(v) > limit) {
      ctx.error(item, `${what} ${operator} value is ${byteLength(v)} bytes; the limit is ${limit}`);
      ok = false;
    } else values.push(v);
  }
  if (!ok) return undefined;
  return { operator, values, followChildren, source: ctx.ref(f) };
}

const NAMESPACES: readonly NamespaceType[] = [
  'Uts',
  'Ipc',
  'Mnt',
  'Pid',
  'PidForChildren',
  'Net',
  'Time',
  'TimeForChildren',
  'Cgroup',
  'User',
];

export function readNamespaceFilter(ctx: PolicyContext, f: Field): NamespaceFilter | undefined {
  const { r } = ctx;
  const o = r.object(f, ['namespace', 'operator', 'values'], 'a matchNamespaces filter');
  if (!o) {
    if (isNull(f)) r.missing(f, 'matchNamespaces filter');
    return undefined;
  }
  const namespace = readEnum(ctx, o, 'namespace', NAMESPACES, 'namespace', { caseInsensitive: true });
  const operator = readEnum(ctx, o, 'operator', IN_NOT_IN, 'operator');
  const items = readValues(ctx, o, 'matchNamespaces');
  if (!namespace || !operator || !items) return undefined;
  if (items.length > LIMITS.namespaceValues) {
    atMost(ctx, o.get('values'), items, LIMITS.namespaceValues, 'namespace values', 'per filter');
    return undefined;
  }
  const values: (number | 'host_ns')[] = [];
  let ok = true;
  for (const item of items) {
    const text = r.text(item, 'namespace value');
    if (text === undefined) {
      ok = false;
      continue;
    }
    if (text === 'host_ns') values.push('host_ns');
    else if (/^\d+$/.test(text) && Number(text) <= 0xffffffff) values.push(Number(text));
    else {
      ctx.error(
        item,
        `namespace value "${text}" is neither an inode number nor "host_ns"`,
        'see lsns or /proc/PID/ns/',
      );
      ok = false;
    }
  }
  if (!ok) return undefined;
  return { namespace, operator, values, source: ctx.ref(f) };
}

const CAP_SETS: readonly CapabilitySet[] = ['Effective', 'Permitted', 'Inheritable'];

export function readCapabilityFilter(ctx: PolicyContext, f: Field): CapabilityFilter | undefined {
  const { r } = ctx;
  const o = r.object(
    f,
    ['type', 'operator', 'isNamespaceCapability', 'values'],
    'a matchCapabilities filter',
  );
  if (!o) {
    if (isNull(f)) r.missing(f, 'matchCapabilities filter');
    return undefined;
  }
  const type = readEnum(ctx, o, 'type', CAP_SETS, 'capability set', {
    caseInsensitive: true,
    default: 'Effective',
  });
  const operator = readEnum(ctx, o, 'operator', IN_NOT_IN, 'operator');
  const isNamespaceCapability = r.bool(o.get('isNamespaceCapability'), 'isNamespaceCapability') ?? false;
  const items = readValues(ctx, o, 'matchCapabilities');
  if (!type || !operator || !items) return undefined;
  const values: string[] = [];
  let mask = 0n;
  let ok = true;
  for (const item of items) {
    const text = r.string(item, 'capability', true);
    if (text === undefined) {
      ok = false;
      continue;
    }
    const name = text.trim().toUpperCase();
    const bit = CAP_NAMES.indexOf(name);
    if (bit < 0) {
      const guess = closest(name.startsWith('CAP_') ? name : `CAP_${name}`, CAP_NAMES);
      ctx.error(
        item,
        `unknown capability "${text}"`,
        guess ? `did you mean "${guess}"?` : 'capability names are as in capabilities(7), e.g. CAP_SYS_ADMIN',
      );
      ok = false;
      continue;
    }
    values.push(name);
    mask |= 1n << BigInt(bit);
  }
  if (!ok) return undefined;
  return { type, operator, isNamespaceCapability, values, mask, source: ctx.ref(f) };
}
