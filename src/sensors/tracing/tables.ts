/**
 * The compiled, kernel-ready form of one TracingPolicy: what the policy
 * compiler produces from the parsed YAML model and what PolicyProgram.load
 * installs. Everything here is already resolved against this kernel (which
 * tracepoint, where each field sits in its record), so the engine does no
 * lookups of its own; validateTables() checks the shape and the engine's
 * limits with errors that name the field, and encodeTables() turns it into
 * the map contents of bpf/include/policy.h.
 */
import { isIP } from 'node:net';
import {
  Action,
  ADDR_KEY,
  ARG_SPEC,
  ArgType,
  BIN_FILTER,
  CAP_FILTER,
  CONFIG,
  FILTER,
  FilterFlag,
  HOOK,
  HookKind,
  INT_KEY,
  NEEDLE,
  NS_FILTER,
  Op,
  OSP_LIMITS,
  PID_FILTER,
  POSTFIX_KEY,
  PREFIX_KEY,
  RateScope,
  SELECTOR,
  SetOp,
  STR_KEY,
} from './layout.js';

export type PolicyMode = 'monitor' | 'enforce';

/** Namespace names as in matchNamespaces (Tetragon's spelling). */
export type NamespaceName =
  | 'Uts'
  | 'Ipc'
  | 'Mnt'
  | 'Pid'
  | 'PidForChildren'
  | 'Net'
  | 'Time'
  | 'TimeForChildren'
  | 'Cgroup'
  | 'User';

/** Index of each namespace in enum osprey_ns_index (records.h). */
export const NS_INDEX: Readonly<Record<NamespaceName, number>> = {
  Uts: 0,
  Ipc: 1,
  Mnt: 2,
  Pid: 3,
  PidForChildren: 4,
  Net: 5,
  Time: 6,
  TimeForChildren: 7,
  Cgroup: 8,
  User: 9,
};

export interface PolicyTables {
  /** Identifies the policy in its events (TracingRecord.policyId); any u32. */
  policyId: number;
  /** monitor: enforcement actions are counted as "monitored" and not taken. Changeable later with setMode. */
  mode: PolicyMode;
  /** The agent's own pid: never signalled (the action is refused and counted). */
  agentPid: number;
  /** Inode numbers of the host's (PID 1's) namespaces; 'host_ns' values in matchNamespaces resolve through it. */
  hostNs: Partial<Record<NamespaceName, number>>;
  /** One entry per tracepoint to attach, at most OSP_LIMITS.MAX_HOOKS. Events name hooks by index here. */
  hooks: HookTable[];
}

/**
 * One tracefs tracepoint. A syscall kprobe that needs the return value is two
 * hooks: kind 'enter' on syscalls/sys_enter_X (args and selectors) with
 * pairWith = the index of a kind 'exit' hook on syscalls/sys_exit_X (only
 * `ret`), which completes the event. A kprobe over a list of syscalls is one
 * hook (or pair) per syscall.
 */
export interface HookTable {
  /** tracefs category: "syscalls", "raw_syscalls", "sched" */
  category: string;
  /** tracefs event: "sys_enter_openat" */
  name: string;
  /** plain: decide and act at this tracepoint. enter/exit: see above. */
  kind: 'plain' | 'enter' | 'exit';
  /** enter: index of its exit hook; exit: index of its enter hook. Required for both. */
  pairWith?: number;
  /** Args to read, in the order events carry them and matchArgs refers to them (at most 5). Exit hooks: none. */
  args: ArgSpec[];
  /** exit hooks: the `ret` field of sys_exit_X (offset 16, size 8, signed). */
  ret?: FieldRef;
  /** ORed, first match wins; none = every call posts. Exit hooks: none (the enter hook's apply). */
  selectors: SelectorTable[];
}

/** Where a field sits in the tracepoint record: from the format file. */
export interface FieldRef {
  /** byte offset in the record, common fields included */
  offset: number;
  /** 1, 2, 4 or 8 */
  size: 1 | 2 | 4 | 8;
  /** sign-extend (ints) */
  signed: boolean;
}

/**
 * How to read one arg.
 * - int: the field itself (syscall64, size_t, int...). For a syscall's 32-bit
 *   int arg in its 8-byte slot give size 4 and signed, so -100 reads as -100.
 * - string (also filename): the field is a user pointer to a NUL-terminated string.
 * - char_buf: user pointer, byte count from args[sizeArg] (capped at maxBytes);
 *   or, with sizeFromReturn (returnCopy), read when the syscall returns, as
 *   many bytes as it returned (an enter hook's arg only).
 * - fd: an int fd, resolved in the kernel to the open file's absolute path.
 * - sockaddr: user pointer to struct sockaddr (family, port, IPv4/IPv6 address).
 */
export interface ArgSpec extends Omit<FieldRef, 'size'> {
  /** 1, 2, 4 or 8; a char array in the record (inRecord 'array'): its length, 1..255 */
  size: number;
  type: 'int' | 'string' | 'char_buf' | 'fd' | 'sockaddr';
  /** string, char_buf, fd path: bytes kept (default and maximum 4095) */
  maxBytes?: number;
  /** char_buf: index in args of the int arg holding the byte count */
  sizeArg?: number;
  /** char_buf: read at the syscall's return, the return value's count of bytes (returnCopy) */
  sizeFromReturn?: boolean;
  /** string: in the record itself (a `__data_loc char[]` field of size 4, or a char array of `size` bytes) */
  inRecord?: 'data_loc' | 'array';
  /** for events: the arg's label, if the policy gave one */
  label?: string;
}

export type FilterOperator =
  | 'Equal'
  | 'NotEqual'
  | 'Prefix'
  | 'NotPrefix'
  | 'Postfix'
  | 'NotPostfix'
  | 'SubString'
  | 'Mask'
  | 'GT'
  | 'LT'
  | 'InRange'
  | 'NotInRange'
  | 'InMap'
  | 'NotInMap'
  | 'SAddr'
  | 'NotSAddr'
  | 'DAddr'
  | 'NotDAddr'
  | 'SPort'
  | 'NotSPort'
  | 'DPort'
  | 'NotDPort'
  | 'SPortPriv'
  | 'NotSPortPriv'
  | 'DPortPriv'
  | 'NotDPortPriv'
  | 'Family';

/** An inclusive range. */
export interface IntRange {
  min: bigint;
  max: bigint;
}

/**
 * One matchArgs filter. Which value field is used depends on the operator and
 * the arg's type:
 * - ints: Equal NotEqual InMap NotInMap (any number of values: a hash set),
 *   GT LT Mask (exactly one), Family (address families, at most 16). On an
 *   fd arg, ints compare the descriptor number.
 * - ranges: InRange NotInRange (at most 8), InMap NotInMap (besides ints, at
 *   most 8), SPort DPort NotSPort NotDPort (at most 8).
 * - strings: Equal NotEqual Prefix NotPrefix Postfix NotPostfix SubString on
 *   string, char_buf and fd (its path). Any number, except SubString (at
 *   most 4 needles of at most 32 bytes; only the first 256 bytes are searched).
 *   Equal values of at most 4095 bytes, Prefix 252, Postfix 128.
 * - cidrs: SAddr DAddr NotSAddr NotDAddr: "10.0.0.0/8", "::1/128" or a bare address.
 * Ports and addresses are the sockaddr's own: SAddr and DAddr mean the same.
 */
export interface ArgFilterTable {
  /** index in the hook's args */
  arg: number;
  op: FilterOperator;
  ints?: bigint[];
  ranges?: IntRange[];
  strings?: (string | Buffer)[];
  cidrs?: string[];
}

/** matchReturnArgs: compares the return value (an int). */
export interface ReturnFilterTable {
  op: 'Equal' | 'NotEqual' | 'GT' | 'LT' | 'Mask' | 'InRange' | 'NotInRange' | 'InMap' | 'NotInMap';
  ints?: bigint[];
  ranges?: IntRange[];
}

export interface PidFilterTable {
  op: 'In' | 'NotIn';
  /** at most 8 */
  pids: number[];
  /** also match descendants (up to 8 generations up the parent chain) */
  followForks?: boolean;
  /** pids as the process's own pid namespace numbers them */
  isNamespacePID?: boolean;
}

export interface BinaryFilterTable {
  op: 'In' | 'NotIn' | 'Prefix' | 'NotPrefix' | 'Postfix' | 'NotPostfix';
  /** absolute paths, compared with osprey_procs' binary (its first 255 bytes) */
  values: string[];
  /** also match every process forked (and exec'd) below a matching one; In/Prefix/Postfix only */
  followChildren?: boolean;
}

export interface NamespaceFilterTable {
  namespace: NamespaceName;
  op: 'In' | 'NotIn';
  /** inode numbers, or 'host_ns' for PolicyTables.hostNs[namespace]; at most 4 */
  values: (number | 'host_ns')[];
}

export interface CapabilityFilterTable {
  set: 'Effective' | 'Permitted' | 'Inheritable';
  /** In: the set has any of mask; NotIn: none of them */
  op: 'In' | 'NotIn';
  /** bit (1 << CAP_X) per capability */
  mask: bigint;
}

export type EnforceTable =
  | { action: 'Sigkill' }
  | { action: 'Signal'; signal: number }
  /** sends `signal` when the thread leaves the syscall (raw_syscalls/sys_exit) */
  | { action: 'NotifyEnforcer'; signal: number };

export interface SelectorActions {
  /** post an event (false: NoPost) */
  post: boolean;
  /** post at most one identical event (same hook, selector, args) per window, per scope */
  rateLimitNs?: bigint;
  rateLimitScope?: 'thread' | 'process' | 'global';
  /** at most one enforcement action per selector */
  enforce?: EnforceTable;
}

/** A selector: all its filters must match (AND). */
export interface SelectorTable {
  /** at most 5 */
  matchArgs?: ArgFilterTable[];
  /** enter hooks only; at most 2 */
  matchReturnArgs?: ReturnFilterTable[];
  /** at most 2 */
  matchPIDs?: PidFilterTable[];
  matchBinaries?: BinaryFilterTable;
  matchParentBinaries?: BinaryFilterTable;
  /** at most 4 */
  matchNamespaces?: NamespaceFilterTable[];
  /** at most 3 */
  matchCapabilities?: CapabilityFilterTable[];
  actions: SelectorActions;
}

/** A table that does not fit the engine; the message names the field. */
export class TablesError extends Error {
  constructor(
    readonly where: string,
    what: string,
  ) {
    super(where ? `${where}: ${what}` : what);
    this.name = 'TablesError';
  }
}

const INT_OPS = new Set<FilterOperator>([
  'Equal',
  'NotEqual',
  'GT',
  'LT',
  'Mask',
  'InRange',
  'NotInRange',
  'InMap',
  'NotInMap',
]);
const STRING_OPS = new Set<FilterOperator>([
  'Equal',
  'NotEqual',
  'Prefix',
  'NotPrefix',
  'Postfix',
  'NotPostfix',
  'SubString',
]);
const SOCKADDR_OPS = new Set<FilterOperator>([
  'SAddr',
  'NotSAddr',
  'DAddr',
  'NotDAddr',
  'SPort',
  'NotSPort',
  'DPort',
  'NotDPort',
  'SPortPriv',
  'NotSPortPriv',
  'DPortPriv',
  'NotDPortPriv',
  'Family',
]);

const MAX_STRING = OSP_LIMITS.STR_MAX - 1;
const MAX_RANGES = OSP_LIMITS.MAX_FILTER_VALS / 2;

function isU32(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}

function strBytes(v: string | Buffer): Buffer {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
}

/** Whether an fd filter compares numbers (ints given) rather than paths. */
function fdCompareInts(f: ArgFilterTable): boolean {
  return !INT_OPS.has(f.op) ? false : !STRING_OPS.has(f.op) || f.strings === undefined;
}

/** Check tables against the engine's shape and limits; throws TablesError naming the field. */
export function validateTables(t: PolicyTables): void {
  if (!isU32(t.policyId)) throw new TablesError('policyId', `${t.policyId} is not a u32`);
  if (t.mode !== 'monitor' && t.mode !== 'enforce') {
    throw new TablesError('mode', `"${t.mode}" is neither "monitor" nor "enforce"`);
  }
  if (!isU32(t.agentPid)) throw new TablesError('agentPid', `${t.agentPid} is not a pid`);
  if (!Array.isArray(t.hooks) || t.hooks.length === 0)
    throw new TablesError('hooks', 'a policy needs a hook');
  if (t.hooks.length > OSP_LIMITS.MAX_HOOKS) {
    throw new TablesError('hooks', `${t.hooks.length} hooks exceed the limit of ${OSP_LIMITS.MAX_HOOKS}`);
  }
  t.hooks.forEach((h, i) => {
    validateHook(t, h, i);
  });
}

function validateField(where: string, f: FieldRef): void {
  if (!Number.isInteger(f.offset) || f.offset < 0 || f.offset > 4095) {
    throw new TablesError(where, `offset ${f.offset} is not in 0..4095`);
  }
  if (![1, 2, 4, 8].includes(f.size)) throw new TablesError(where, `size ${f.size} is not 1, 2, 4 or 8`);
  if (typeof f.signed !== 'boolean') throw new TablesError(where, 'signed must be true or false');
}

function validateHook(t: PolicyTables, h: HookTable, i: number): void {
  const where = `hook ${i}`;
  if (!/^[a-z0-9_]+$/i.test(h.category ?? '') || !/^[a-z0-9_]+$/i.test(h.name ?? '')) {
    throw new TablesError(where, `"${h.category}/${h.name}" is not a tracepoint name`);
  }
  if (!['plain', 'enter', 'exit'].includes(h.kind)) {
    throw new TablesError(`${where} kind`, `"${h.kind}" is not plain, enter or exit`);
  }
  if (!Array.isArray(h.args)) throw new TablesError(`${where} args`, 'must be a list');
  if (!Array.isArray(h.selectors)) throw new TablesError(`${where} selectors`, 'must be a list');
  if (h.kind !== 'plain') {
    const p = h.pairWith;
    const other = p === undefined ? undefined : t.hooks[p];
    const want = h.kind === 'enter' ? 'exit' : 'enter';
    if (p === undefined || !other || other.kind !== want || other.pairWith !== i) {
      throw new TablesError(
        `${where} pairWith`,
        `an ${h.kind} hook needs the index of an ${want} hook paired back with it`,
      );
    }
  }
  if (h.kind === 'exit') {
    if (!h.ret) throw new TablesError(`${where} ret`, 'an exit hook needs the ret field');
    validateField(`${where} ret`, h.ret);
    if (h.args.length)
      throw new TablesError(`${where} args`, 'an exit hook reads no args; put them on its enter hook');
    if (h.selectors.length) {
      throw new TablesError(`${where} selectors`, "an exit hook has no selectors; its enter hook's apply");
    }
    return;
  }
  if (h.args.length > OSP_LIMITS.MAX_ARGS) {
    throw new TablesError(
      `${where} args`,
      `${h.args.length} args exceed the limit of ${OSP_LIMITS.MAX_ARGS}`,
    );
  }
  h.args.forEach((a, j) => {
    const w = `${where} arg ${j}`;
    if (!['int', 'string', 'char_buf', 'fd', 'sockaddr'].includes(a.type)) {
      throw new TablesError(w, `type "${a.type}" is not int, string, char_buf, fd or sockaddr`);
    }
    validateField(w, a.inRecord === 'array' ? { ...a, size: 1 } : (a as FieldRef));
    if (a.inRecord !== undefined) {
      if (a.type !== 'string') throw new TablesError(w, 'inRecord applies to string args only');
      if (a.inRecord === 'data_loc' ? a.size !== 4 : a.size < 1 || a.size > 255) {
        throw new TablesError(
          w,
          `a ${a.inRecord} string of ${a.size} bytes: a __data_loc field is 4, an array 1..255`,
        );
      }
    } else if (a.type !== 'int' && a.type !== 'fd' && a.size !== 8) {
      throw new TablesError(w, `a ${a.type} arg is a pointer: size must be 8, not ${a.size}`);
    }
    if (
      a.maxBytes !== undefined &&
      (!Number.isInteger(a.maxBytes) || a.maxBytes < 1 || a.maxBytes > MAX_STRING)
    ) {
      throw new TablesError(w, `maxBytes ${a.maxBytes} is not in 1..${MAX_STRING}`);
    }
    if (a.sizeFromReturn) {
      if (a.type !== 'char_buf') throw new TablesError(w, 'sizeFromReturn applies to char_buf only');
      if (h.kind !== 'enter') {
        throw new TablesError(w, 'sizeFromReturn needs an enter hook paired with the exit that reads it');
      }
      if (a.sizeArg !== undefined) throw new TablesError(w, 'give sizeArg or sizeFromReturn, not both');
    } else if (a.type === 'char_buf') {
      const s = a.sizeArg;
      if (s === undefined || !Number.isInteger(s) || s < 0 || s >= h.args.length || s === j) {
        throw new TablesError(w, 'a char_buf needs sizeArg: the index of another arg of this hook');
      }
      if (h.args[s]!.type !== 'int')
        throw new TablesError(w, `sizeArg ${s} is a ${h.args[s]!.type}, not an int`);
    } else if (a.sizeArg !== undefined) {
      throw new TablesError(w, 'sizeArg applies to char_buf only');
    }
  });
  if (h.selectors.length > OSP_LIMITS.MAX_SELECTORS) {
    throw new TablesError(
      `${where} selectors`,
      `${h.selectors.length} selectors exceed the limit of ${OSP_LIMITS.MAX_SELECTORS}`,
    );
  }
  h.selectors.forEach((s, k) => {
    validateSelector(t, h, s, `${where} selector ${k}`);
  });
}

function count(where: string, what: string, n: number, max: number): void {
  if (n > max) throw new TablesError(where, `${n} ${what} exceed the limit of ${max}`);
}

function validateSelector(t: PolicyTables, h: HookTable, s: SelectorTable, where: string): void {
  const args = s.matchArgs ?? [];
  count(where, 'matchArgs filters', args.length, OSP_LIMITS.MAX_ARG_FILTERS);
  args.forEach((f, j) => {
    validateArgFilter(h, f, `${where} filter ${j}`);
  });
  const rets = s.matchReturnArgs ?? [];
  if (rets.length && h.kind !== 'enter') {
    throw new TablesError(
      `${where} matchReturnArgs`,
      'needs the return value: make this an enter hook with an exit pair',
    );
  }
  count(where, 'matchReturnArgs filters', rets.length, OSP_LIMITS.MAX_RET_FILTERS);
  rets.forEach((f, j) => {
    const w = `${where} return filter ${j}`;
    if (!INT_OPS.has(f.op)) throw new TablesError(w, `${f.op} does not apply to the return value (an int)`);
    validateIntValues(w, f.op, f.ints, f.ranges);
  });
  const pids = s.matchPIDs ?? [];
  count(where, 'matchPIDs filters', pids.length, OSP_LIMITS.MAX_PID_FILTERS);
  pids.forEach((p, j) => {
    const w = `${where} matchPIDs ${j}`;
    if (p.op !== 'In' && p.op !== 'NotIn') throw new TablesError(w, `operator "${p.op}" is not In or NotIn`);
    count(w, 'values', p.pids.length, OSP_LIMITS.MAX_PIDS);
    if (p.pids.length === 0) throw new TablesError(w, 'needs at least one pid');
    for (const v of p.pids) if (!isU32(v)) throw new TablesError(w, `${v} is not a pid`);
  });
  for (const [name, b] of [
    ['matchBinaries', s.matchBinaries],
    ['matchParentBinaries', s.matchParentBinaries],
  ] as const) {
    if (!b) continue;
    const w = `${where} ${name}`;
    if (!['In', 'NotIn', 'Prefix', 'NotPrefix', 'Postfix', 'NotPostfix'].includes(b.op)) {
      throw new TablesError(
        w,
        `operator "${b.op}" is not In, NotIn, Prefix, NotPrefix, Postfix or NotPostfix`,
      );
    }
    if (b.values.length === 0) throw new TablesError(w, 'needs at least one value');
    const max = b.op.endsWith('Prefix')
      ? OSP_LIMITS.PREFIX_MAX
      : b.op.endsWith('Postfix')
        ? OSP_LIMITS.POSTFIX_MAX
        : OSPREY_BINARY_MAX - 1;
    for (const v of b.values) {
      const n = Buffer.byteLength(v);
      if (n > max) throw new TablesError(w, `"${v.slice(0, 40)}..." is ${n} bytes, over the limit of ${max}`);
    }
    if (b.followChildren && b.op.startsWith('Not')) {
      throw new TablesError(w, `followChildren applies to In, Prefix and Postfix, not ${b.op}`);
    }
  }
  const nss = s.matchNamespaces ?? [];
  count(where, 'matchNamespaces filters', nss.length, OSP_LIMITS.MAX_NS_FILTERS);
  nss.forEach((n, j) => {
    const w = `${where} matchNamespaces ${j}`;
    if (!(n.namespace in NS_INDEX)) throw new TablesError(w, `namespace "${n.namespace}" is unknown`);
    if (n.op !== 'In' && n.op !== 'NotIn') throw new TablesError(w, `operator "${n.op}" is not In or NotIn`);
    count(w, 'values', n.values.length, OSP_LIMITS.MAX_NS_VALS);
    for (const v of n.values) {
      if (v === 'host_ns') {
        if (!isU32(t.hostNs[n.namespace])) {
          throw new TablesError(w, `host_ns needs hostNs.${n.namespace}, the host's inode number`);
        }
      } else if (!isU32(v)) {
        throw new TablesError(w, `${v} is not a namespace inode number`);
      }
    }
  });
  const caps = s.matchCapabilities ?? [];
  count(where, 'matchCapabilities filters', caps.length, OSP_LIMITS.MAX_CAP_FILTERS);
  caps.forEach((c, j) => {
    const w = `${where} matchCapabilities ${j}`;
    if (!['Effective', 'Permitted', 'Inheritable'].includes(c.set)) {
      throw new TablesError(w, `set "${c.set}" is not Effective, Permitted or Inheritable`);
    }
    if (c.op !== 'In' && c.op !== 'NotIn') throw new TablesError(w, `operator "${c.op}" is not In or NotIn`);
    if (typeof c.mask !== 'bigint' || c.mask <= 0n || c.mask >= 1n << 64n) {
      throw new TablesError(w, 'mask must be a non-zero 64-bit bigint');
    }
  });
  const a = s.actions;
  if (!a || typeof a.post !== 'boolean')
    throw new TablesError(`${where} actions`, 'post must be true or false');
  if (a.rateLimitNs !== undefined && (typeof a.rateLimitNs !== 'bigint' || a.rateLimitNs <= 0n)) {
    throw new TablesError(`${where} actions`, 'rateLimitNs must be a positive bigint');
  }
  if (a.rateLimitScope !== undefined && !['thread', 'process', 'global'].includes(a.rateLimitScope)) {
    throw new TablesError(
      `${where} actions`,
      `rateLimitScope "${a.rateLimitScope}" is not thread, process or global`,
    );
  }
  if (a.enforce) {
    const e = a.enforce;
    if (e.action === 'Signal' || e.action === 'NotifyEnforcer') {
      if (!Number.isInteger(e.signal) || e.signal < 1 || e.signal > 64) {
        throw new TablesError(`${where} actions`, `signal ${e.signal} is not in 1..64`);
      }
    } else if (e.action !== 'Sigkill') {
      throw new TablesError(
        `${where} actions`,
        `action "${(e as { action: string }).action}" is not supported`,
      );
    }
  }
}

const OSPREY_BINARY_MAX = 256;

function validateIntValues(where: string, op: FilterOperator, ints?: bigint[], ranges?: IntRange[]): void {
  for (const v of ints ?? []) if (typeof v !== 'bigint') throw new TablesError(where, `${v} is not a bigint`);
  for (const r of ranges ?? []) {
    if (typeof r.min !== 'bigint' || typeof r.max !== 'bigint' || r.min > r.max) {
      throw new TablesError(where, `range ${r.min}..${r.max} is not a bigint range with min <= max`);
    }
  }
  switch (op) {
    case 'GT':
    case 'LT':
    case 'Mask':
      if (ints?.length !== 1) throw new TablesError(where, `${op} takes exactly one value`);
      return;
    case 'InRange':
    case 'NotInRange':
      if (!ranges?.length) throw new TablesError(where, `${op} needs ranges`);
      count(where, 'ranges', ranges.length, MAX_RANGES);
      return;
    case 'InMap':
    case 'NotInMap':
      if (!ints?.length && !ranges?.length) throw new TablesError(where, `${op} needs values`);
      count(where, 'ranges', ranges?.length ?? 0, MAX_RANGES);
      return;
    default:
      if (!ints?.length) throw new TablesError(where, `${op} needs values`);
  }
}

function validateArgFilter(h: HookTable, f: ArgFilterTable, where: string): void {
  const a = h.args[f.arg];
  if (!Number.isInteger(f.arg) || !a) {
    throw new TablesError(where, `arg ${f.arg} is not one of the hook's ${h.args.length} args`);
  }
  const isInt = a.type === 'int' || (a.type === 'fd' && fdCompareInts(f));
  if (isInt) {
    if (!INT_OPS.has(f.op)) throw new TablesError(where, `${f.op} does not apply to an int arg`);
    validateIntValues(where, f.op, f.ints, f.ranges);
    return;
  }
  if (a.type === 'sockaddr') {
    if (!SOCKADDR_OPS.has(f.op)) throw new TablesError(where, `${f.op} does not apply to a sockaddr arg`);
    if (f.op === 'Family') {
      if (!f.ints?.length) throw new TablesError(where, 'Family needs values');
      count(where, 'values', f.ints.length, OSP_LIMITS.MAX_FILTER_VALS);
    } else if (f.op.endsWith('Addr')) {
      if (!f.cidrs?.length) throw new TablesError(where, `${f.op} needs cidrs`);
      for (const c of f.cidrs) parseCidr(where, c);
    } else if (!f.op.endsWith('Priv')) {
      if (!f.ranges?.length) throw new TablesError(where, `${f.op} needs port ranges`);
      count(where, 'ranges', f.ranges.length, MAX_RANGES);
    }
    return;
  }
  if (!STRING_OPS.has(f.op)) throw new TablesError(where, `${f.op} does not apply to a ${a.type} arg`);
  const vals = f.strings ?? [];
  if (vals.length === 0) throw new TablesError(where, `${f.op} needs strings`);
  const max =
    f.op === 'SubString'
      ? OSP_LIMITS.SUBSTR_MAX
      : f.op.endsWith('Prefix')
        ? OSP_LIMITS.PREFIX_MAX
        : f.op.endsWith('Postfix')
          ? OSP_LIMITS.POSTFIX_MAX
          : MAX_STRING;
  if (f.op === 'SubString') count(where, 'values', vals.length, OSP_LIMITS.SUBSTR_VALS);
  for (const v of vals) {
    const n = strBytes(v).length;
    if (n > max) throw new TablesError(where, `a value of ${n} bytes exceeds the limit of ${max}`);
    if (n === 0 && f.op === 'SubString') throw new TablesError(where, 'an empty SubString needle');
  }
}

/** Parse "10.0.0.0/8", "::1/128" or a bare address. */
export function parseCidr(where: string, c: string): { family: number; addr: Buffer; bits: number } {
  const [ip, len] = c.split('/');
  const v = isIP(ip ?? '');
  if (v === 0) throw new TablesError(where, `"${c}" is not an IP address or CIDR`);
  const max = v === 4 ? 32 : 128;
  const bits = len === undefined ? max : Number(len);
  if (!Number.isInteger(bits) || bits < 0 || bits > max)
    throw new TablesError(where, `"${c}": prefix length out of range`);
  const addr = Buffer.alloc(16);
  if (v === 4) {
    ip!.split('.').forEach((o, i) => {
      addr[i] = Number(o);
    });
  } else {
    ipv6Bytes(ip!).copy(addr);
  }
  return { family: v === 4 ? 2 : 10, addr, bits };
}

function ipv6Bytes(ip: string): Buffer {
  let s = ip;
  const tail: number[] = [];
  const m = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (m) {
    const o = m[1]!.split('.').map(Number);
    tail.push((o[0]! << 8) | o[1]!, (o[2]! << 8) | o[3]!);
    s = s.slice(0, -m[1]!.length);
    if (s.endsWith(':') && !s.endsWith('::')) s = s.slice(0, -1);
  }
  const [head, rest] = s.includes('::') ? s.split('::') : [s, undefined];
  const hs = head ? head.split(':').filter((x) => x !== '') : [];
  const rs = rest ? rest.split(':').filter((x) => x !== '') : [];
  const groups = [...hs.map((g) => Number.parseInt(g, 16))];
  const after = [...rs.map((g) => Number.parseInt(g, 16)), ...tail];
  while (groups.length + after.length < 8) groups.push(0);
  const all = [...groups, ...after];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => {
    out.writeUInt16BE(g & 0xffff, i * 2);
  });
  return out;
}

// ---------------------------------------------------------------------------
// encoding

/** The map contents of one policy, ready for the loader. */
export interface KernelTables {
  config: Buffer;
  /** "hooks" array: index -> struct osp_hook */
  hooks: Buffer[];
  /**
   * Hooks to attach, one per distinct tracepoint: the first hook on each.
   * The kernel takes a program once per tracepoint, so the others on the
   * same tracepoint are chained behind it (osp_hook.next).
   */
  attach: number[];
  /** "selectors" array: hook * MAX_SELECTORS + selector -> struct osp_selector */
  selectors: Map<number, Buffer>;
  intSet: Buffer[];
  /** str_eq_<bucket> keys, by bucket */
  strEq: Buffer[][];
  prefix: Buffer[];
  postfix: Buffer[];
  addr: Buffer[];
  /** "substr" array: index -> struct osp_needle */
  needles: Map<number, Buffer>;
  /** "follow_filters": struct osp_bin_filter of each followChildren filter */
  follow: Buffer[];
  /** the osprey_procs.follow bits this policy uses */
  followBits: number[];
  /** raw_syscalls/sys_exit enforcer needed */
  needsEnforcer: boolean;
  /** osprey_procs needed (binary filters) */
  needsProcs: boolean;
}

const OP_CODE: Readonly<Record<FilterOperator, number>> = {
  Equal: Op.EQ,
  NotEqual: Op.NEQ,
  Prefix: Op.PREFIX,
  NotPrefix: Op.NOT_PREFIX,
  Postfix: Op.POSTFIX,
  NotPostfix: Op.NOT_POSTFIX,
  SubString: Op.SUBSTRING,
  Mask: Op.MASK,
  GT: Op.GT,
  LT: Op.LT,
  InRange: Op.IN_RANGE,
  NotInRange: Op.NOT_IN_RANGE,
  InMap: Op.IN_MAP,
  NotInMap: Op.NOT_IN_MAP,
  SAddr: Op.ADDR,
  DAddr: Op.ADDR,
  NotSAddr: Op.NOT_ADDR,
  NotDAddr: Op.NOT_ADDR,
  SPort: Op.PORT,
  DPort: Op.PORT,
  SPortPriv: Op.PORT,
  DPortPriv: Op.PORT,
  NotSPort: Op.NOT_PORT,
  NotDPort: Op.NOT_PORT,
  NotSPortPriv: Op.NOT_PORT,
  NotDPortPriv: Op.NOT_PORT,
  Family: Op.FAMILY,
};

const SET_OP: Readonly<Record<BinaryFilterTable['op'], number>> = {
  In: SetOp.IN,
  NotIn: SetOp.NOT_IN,
  Prefix: SetOp.PREFIX,
  NotPrefix: SetOp.NOT_PREFIX,
  Postfix: SetOp.POSTFIX,
  NotPostfix: SetOp.NOT_POSTFIX,
};

const ARG_TYPE_CODE = {
  int: ArgType.INT,
  string: ArgType.STRING,
  char_buf: ArgType.CHAR_BUF,
  fd: ArgType.FD,
  sockaddr: ArgType.SOCKADDR,
} as const;

/** Arg codes whose value is a string: at a user pointer, or in the record. */
const STRING_CODES: ReadonlySet<number> = new Set([ArgType.STRING, ArgType.STR_LOC, ArgType.STR_ARRAY]);

/** The value a BPF program compares: the field sign- or zero-extended to 64 bits. */
export function normalizeInt(v: bigint, size: number, signed: boolean): bigint {
  const bits = size * 8;
  return signed ? BigInt.asUintN(64, BigInt.asIntN(bits, v)) : BigInt.asUintN(bits, v);
}

/** The Equal bucket of a string of n bytes: keys of 32 << b bytes. */
export function strBucket(n: number): number {
  let b = 0;
  while (32 << b < n) b++;
  return b;
}

/**
 * A str_prefix key: filter id and value, the prefix length its bytes. A value
 * over PREFIX_MAX (an Equal filter's, put there for quick reject: a Prefix
 * value never is) is cut to it: a string equal to the value still starts with it.
 */
function prefixKey(id: number, value: Buffer): Buffer {
  const n = Math.min(value.length, OSP_LIMITS.PREFIX_MAX);
  const key = Buffer.alloc(PREFIX_KEY.SIZE);
  key.writeUInt32LE(32 + 8 * n, PREFIX_KEY.prefixlen);
  key.writeUInt32LE(id, PREFIX_KEY.id);
  value.copy(key, PREFIX_KEY.data, 0, n);
  return key;
}

class Encoder {
  private nextId = 1;
  /** each Equal filter's values (by filter id), for quick reject */
  private readonly eqValues = new Map<number, Buffer[]>();
  readonly out: KernelTables;

  constructor(
    private readonly t: PolicyTables,
    private readonly allocFollowBit: () => number,
  ) {
    this.out = {
      config: Buffer.alloc(CONFIG.SIZE),
      hooks: [],
      attach: [],
      selectors: new Map(),
      intSet: [],
      strEq: Array.from({ length: OSP_LIMITS.STR_BUCKETS }, () => []),
      prefix: [],
      postfix: [],
      addr: [],
      needles: new Map(),
      follow: [],
      followBits: [],
      needsEnforcer: false,
      needsProcs: false,
    };
  }

  run(): KernelTables {
    const { t, out } = this;
    out.config.writeUInt32LE(t.mode === 'monitor' ? 1 : 0, CONFIG.mode);
    out.config.writeUInt32LE(t.agentPid, CONFIG.agent_pid);
    out.config.writeUInt32LE(t.policyId, CONFIG.policy_id);
    const last = new Map<string, number>();
    t.hooks.forEach((h, i) => {
      out.hooks.push(this.hook(h));
      const tp = `${h.category}/${h.name}`;
      const prev = last.get(tp);
      if (prev === undefined) out.attach.push(i);
      else out.hooks[prev]!.writeUInt32LE(i, HOOK.next);
      last.set(tp, i);
      const selectors = h.selectors.map((s) => this.selector(h, s));
      selectors.forEach((b, k) => {
        out.selectors.set(i * OSP_LIMITS.MAX_SELECTORS + k, b);
      });
      this.quickReject(out.hooks[i]!, selectors);
    });
    out.config.writeUInt32LE(out.follow.length, CONFIG.nfollow);
    return out;
  }

  private id(): number {
    return this.nextId++;
  }

  /**
   * Fills a hook's quick-reject fields (osp_hook.quick_*) from its encoded
   * selectors: when each selector has a Prefix or an Equal filter on one and
   * the same string arg, the kernel reads that string first and drops a call
   * that starts with none of those filters' values (an Equal filter's values
   * are put in the prefix set under its id for this: a string equal to one
   * starts with it) before doing anything else. A hook with no selectors
   * (every call matches), an exit hook, or a selector without such a filter
   * leaves quick_n at 0: every call is read and matched in full.
   */
  private quickReject(hook: Buffer, selectors: readonly Buffer[]): void {
    if (hook.readUInt32LE(HOOK.kind) === HookKind.EXIT || selectors.length === 0) return;
    const nargs = hook.readUInt32LE(HOOK.nargs);
    let arg: number | undefined;
    const chosen: { id: number; op: number }[] = [];
    for (const sel of selectors) {
      let pick: { id: number; op: number } | undefined;
      for (let j = 0; j < sel.readUInt8(SELECTOR.nargf) && !pick; j++) {
        const f = SELECTOR.argf + j * FILTER.SIZE;
        const a = sel.readUInt8(f + FILTER.arg);
        const op = sel.readUInt8(f + FILTER.op);
        if ((op !== Op.PREFIX && op !== Op.EQ) || a >= nargs || (arg !== undefined && a !== arg)) continue;
        if (!STRING_CODES.has(hook.readUInt8(HOOK.args + a * ARG_SPEC.SIZE + ARG_SPEC.type))) continue;
        arg = a;
        pick = { id: sel.readUInt32LE(f + FILTER.id), op };
      }
      if (!pick) return;
      chosen.push(pick);
    }
    for (const { id, op } of chosen) {
      if (op !== Op.EQ) continue;
      for (const v of this.eqValues.get(id) ?? []) this.out.prefix.push(prefixKey(id, v));
    }
    hook.writeUInt8(arg!, HOOK.quick_arg);
    chosen.forEach(({ id }, k) => {
      hook.writeUInt32LE(id, HOOK.quick_ids + 4 * k);
    });
    hook.writeUInt8(chosen.length, HOOK.quick_n);
  }

  private hook(h: HookTable): Buffer {
    const b = Buffer.alloc(HOOK.SIZE);
    b.writeUInt32LE(
      h.kind === 'plain' ? HookKind.PLAIN : h.kind === 'enter' ? HookKind.ENTER : HookKind.EXIT,
      HOOK.kind,
    );
    b.writeUInt32LE(h.pairWith ?? 0, HOOK.pair);
    b.writeUInt32LE(h.args.length, HOOK.nargs);
    b.writeUInt32LE(h.selectors.length, HOOK.nsel);
    b.writeUInt32LE(OSP_LIMITS.NO_HOOK, HOOK.next);
    if (h.ret) {
      b.writeUInt16LE(h.ret.offset, HOOK.ret_offset);
      b.writeUInt8(h.ret.size, HOOK.ret_size);
      b.writeUInt8(h.ret.signed ? 1 : 0, HOOK.ret_signed);
    }
    h.args.forEach((a, j) => {
      const o = HOOK.args + j * ARG_SPEC.SIZE;
      b.writeUInt16LE(a.offset, o + ARG_SPEC.offset);
      b.writeUInt8(a.size, o + ARG_SPEC.size);
      b.writeUInt8(
        a.inRecord === 'data_loc'
          ? ArgType.STR_LOC
          : a.inRecord === 'array'
            ? ArgType.STR_ARRAY
            : ARG_TYPE_CODE[a.type],
        o + ARG_SPEC.type,
      );
      b.writeUInt8(a.signed ? 1 : 0, o + ARG_SPEC.is_signed);
      b.writeUInt8(
        a.sizeFromReturn ? OSP_LIMITS.SIZE_RET : (a.sizeArg ?? OSP_LIMITS.NO_ARG),
        o + ARG_SPEC.size_arg,
      );
      b.writeUInt16LE(a.maxBytes ?? MAX_STRING, o + ARG_SPEC.max_bytes);
    });
    return b;
  }

  private selector(h: HookTable, s: SelectorTable): Buffer {
    const b = Buffer.alloc(SELECTOR.SIZE);
    const args = s.matchArgs ?? [];
    const rets = s.matchReturnArgs ?? [];
    const pids = s.matchPIDs ?? [];
    const nss = s.matchNamespaces ?? [];
    const caps = s.matchCapabilities ?? [];
    b.writeUInt8(args.length, SELECTOR.nargf);
    b.writeUInt8(rets.length, SELECTOR.nretf);
    b.writeUInt8(pids.length, SELECTOR.npid);
    b.writeUInt8(nss.length, SELECTOR.nns);
    b.writeUInt8(caps.length, SELECTOR.ncap);
    const a = s.actions;
    b.writeUInt8(a.post ? 1 : 0, SELECTOR.post);
    b.writeUInt8(
      a.rateLimitScope === 'process'
        ? RateScope.PROCESS
        : a.rateLimitScope === 'global'
          ? RateScope.GLOBAL
          : RateScope.THREAD,
      SELECTOR.rate_scope,
    );
    b.writeBigUInt64LE(a.rateLimitNs ?? 0n, SELECTOR.rate_ns);
    const e = a.enforce;
    if (e) {
      b.writeUInt8(
        e.action === 'Sigkill' ? Action.SIGKILL : e.action === 'Signal' ? Action.SIGNAL : Action.NOTIFY,
        SELECTOR.action,
      );
      b.writeUInt32LE(e.action === 'Sigkill' ? 9 : e.signal, SELECTOR.signal);
      if (e.action === 'NotifyEnforcer') this.out.needsEnforcer = true;
    }
    if (s.matchBinaries) this.binFilter(s.matchBinaries).copy(b, SELECTOR.bin);
    if (s.matchParentBinaries) this.binFilter(s.matchParentBinaries).copy(b, SELECTOR.pbin);
    args.forEach((f, j) => {
      this.argFilter(h, f).copy(b, SELECTOR.argf + j * FILTER.SIZE);
    });
    rets.forEach((f, j) => {
      const ret = this.t.hooks[h.pairWith!]?.ret ?? { offset: 16, size: 8 as const, signed: true };
      this.intFilter(OSP_LIMITS.ARG_RETURN, f.op, ret.size, ret.signed, f.ints, f.ranges).copy(
        b,
        SELECTOR.retf + j * FILTER.SIZE,
      );
    });
    pids.forEach((p, j) => {
      const o = SELECTOR.pid + j * PID_FILTER.SIZE;
      b.writeUInt8(p.op === 'In' ? SetOp.IN : SetOp.NOT_IN, o + PID_FILTER.op);
      b.writeUInt8(p.followForks ? 1 : 0, o + PID_FILTER.follow_forks);
      b.writeUInt8(p.isNamespacePID ? 1 : 0, o + PID_FILTER.ns_pid);
      b.writeUInt8(p.pids.length, o + PID_FILTER.n);
      p.pids.forEach((v, k) => {
        b.writeUInt32LE(v, o + PID_FILTER.pids + 4 * k);
      });
    });
    nss.forEach((n, j) => {
      const o = SELECTOR.ns + j * NS_FILTER.SIZE;
      b.writeUInt8(NS_INDEX[n.namespace], o + NS_FILTER.ns);
      b.writeUInt8(n.op === 'In' ? SetOp.IN : SetOp.NOT_IN, o + NS_FILTER.op);
      b.writeUInt8(n.values.length, o + NS_FILTER.n);
      n.values.forEach((v, k) => {
        b.writeUInt32LE(v === 'host_ns' ? this.t.hostNs[n.namespace]! : v, o + NS_FILTER.inum + 4 * k);
      });
    });
    caps.forEach((c, j) => {
      const o = SELECTOR.cap + j * CAP_FILTER.SIZE;
      b.writeUInt8(c.set === 'Effective' ? 0 : c.set === 'Permitted' ? 1 : 2, o + CAP_FILTER.set);
      b.writeUInt8(c.op === 'In' ? SetOp.IN : SetOp.NOT_IN, o + CAP_FILTER.op);
      b.writeBigUInt64LE(c.mask, o + CAP_FILTER.mask);
    });
    return b;
  }

  private binFilter(f: BinaryFilterTable): Buffer {
    const b = Buffer.alloc(BIN_FILTER.SIZE);
    const id = this.id();
    const op = SET_OP[f.op];
    b.writeUInt8(op, BIN_FILTER.op);
    b.writeUInt32LE(id, BIN_FILTER.id);
    this.out.needsProcs = true;
    this.strings(op, id, f.values);
    if (f.followChildren) {
      const bit = this.allocFollowBit();
      b.writeUInt8(1, BIN_FILTER.follow);
      b.writeUInt8(bit, BIN_FILTER.follow_bit);
      this.out.followBits.push(bit);
      this.out.follow.push(Buffer.from(b));
    }
    return b;
  }

  /** Put string values in the set map the operator reads. */
  private strings(op: number, id: number, values: (string | Buffer)[]): void {
    values.forEach((v, k) => {
      const bytes = strBytes(v);
      switch (op) {
        case Op.EQ:
        case Op.NEQ: {
          if (op === Op.EQ) {
            const vs = this.eqValues.get(id);
            if (vs) vs.push(bytes);
            else this.eqValues.set(id, [bytes]);
          }
          const bucket = strBucket(bytes.length);
          const key = Buffer.alloc(STR_KEY.data + (32 << bucket));
          key.writeUInt32LE(id, STR_KEY.id);
          key.writeUInt32LE(bytes.length, STR_KEY.len);
          bytes.copy(key, STR_KEY.data);
          this.out.strEq[bucket]!.push(key);
          break;
        }
        case Op.PREFIX:
        case Op.NOT_PREFIX:
          this.out.prefix.push(prefixKey(id, bytes));
          break;
        case Op.POSTFIX:
        case Op.NOT_POSTFIX: {
          const key = Buffer.alloc(POSTFIX_KEY.SIZE);
          key.writeUInt32LE(32 + 8 * bytes.length, POSTFIX_KEY.prefixlen);
          key.writeUInt32LE(id, POSTFIX_KEY.id);
          Buffer.from(bytes).reverse().copy(key, POSTFIX_KEY.data);
          this.out.postfix.push(key);
          break;
        }
        case Op.SUBSTRING: {
          const n = Buffer.alloc(NEEDLE.SIZE);
          n.writeUInt32LE(bytes.length, NEEDLE.len);
          bytes.copy(n, NEEDLE.data);
          this.out.needles.set(id * OSP_LIMITS.SUBSTR_VALS + k, n);
          break;
        }
      }
    });
  }

  private intFilter(
    arg: number,
    opName: FilterOperator,
    size: number,
    signed: boolean,
    ints: bigint[] | undefined,
    ranges: IntRange[] | undefined,
    extraFlags = 0,
  ): Buffer {
    const b = Buffer.alloc(FILTER.SIZE);
    const op = OP_CODE[opName];
    const id = this.id();
    const norm = (v: bigint) => normalizeInt(v, size, signed);
    b.writeUInt8(arg, FILTER.arg);
    b.writeUInt8(op, FILTER.op);
    b.writeUInt8((signed ? FilterFlag.SIGNED : 0) | extraFlags, FILTER.flags);
    b.writeUInt32LE(id, FILTER.id);
    switch (op) {
      case Op.EQ:
      case Op.NEQ:
      case Op.IN_MAP:
      case Op.NOT_IN_MAP:
        for (const v of new Set((ints ?? []).map(norm))) {
          const key = Buffer.alloc(INT_KEY.SIZE);
          key.writeUInt32LE(id, INT_KEY.id);
          key.writeBigUInt64LE(v, INT_KEY.value);
          this.out.intSet.push(key);
        }
        this.ranges(b, ranges, norm);
        break;
      case Op.GT:
      case Op.LT:
      case Op.MASK:
        b.writeUInt8(1, FILTER.nvals);
        b.writeBigUInt64LE(norm(ints![0]!), FILTER.vals);
        break;
      default:
        this.ranges(b, ranges, norm);
    }
    return b;
  }

  private ranges(
    b: Buffer,
    ranges: IntRange[] | undefined,
    norm = (v: bigint) => BigInt.asUintN(64, v),
  ): void {
    (ranges ?? []).forEach((r, k) => {
      b.writeBigUInt64LE(norm(r.min), FILTER.vals + 16 * k);
      b.writeBigUInt64LE(norm(r.max), FILTER.vals + 16 * k + 8);
    });
    b.writeUInt8(2 * (ranges?.length ?? 0), FILTER.nvals);
  }

  private argFilter(h: HookTable, f: ArgFilterTable): Buffer {
    const a = h.args[f.arg]!;
    if (a.type === 'int') return this.intFilter(f.arg, f.op, a.size, a.signed, f.ints, f.ranges);
    if (a.type === 'fd' && fdCompareInts(f)) {
      return this.intFilter(f.arg, f.op, a.size, a.signed, f.ints, f.ranges, FilterFlag.INT);
    }
    const b = Buffer.alloc(FILTER.SIZE);
    const op = OP_CODE[f.op];
    const id = this.id();
    b.writeUInt8(f.arg, FILTER.arg);
    b.writeUInt8(op, FILTER.op);
    b.writeUInt32LE(id, FILTER.id);
    if (a.type !== 'sockaddr') {
      this.strings(op, id, f.strings ?? []);
      return b;
    }
    switch (f.op) {
      case 'Family':
        b.writeUInt8(f.ints!.length, FILTER.nvals);
        f.ints!.forEach((v, k) => {
          b.writeBigUInt64LE(BigInt.asUintN(64, v), FILTER.vals + 8 * k);
        });
        break;
      case 'SPortPriv':
      case 'DPortPriv':
      case 'NotSPortPriv':
      case 'NotDPortPriv':
        this.ranges(b, [{ min: 0n, max: 1023n }]);
        break;
      case 'SPort':
      case 'DPort':
      case 'NotSPort':
      case 'NotDPort':
        this.ranges(b, f.ranges);
        break;
      default:
        for (const c of f.cidrs ?? []) {
          const { family, addr, bits } = parseCidr('', c);
          const key = Buffer.alloc(ADDR_KEY.SIZE);
          key.writeUInt32LE(64 + bits, ADDR_KEY.prefixlen);
          key.writeUInt32LE(id, ADDR_KEY.id);
          key.writeUInt32LE(family, ADDR_KEY.family);
          addr.copy(key, ADDR_KEY.addr);
          this.out.addr.push(key);
        }
    }
    return b;
  }
}

/**
 * Encode validated tables into map contents. allocFollowBit hands out a bit of
 * osprey_proc.follow for each followChildren filter.
 */
export function encodeTables(t: PolicyTables, allocFollowBit: () => number): KernelTables {
  return new Encoder(t, allocFollowBit).run();
}
