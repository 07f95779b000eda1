/**
 * Selectors of the validated model to the engine's SelectorTables: filter
 * values in the form the engine takes (one value for GT, LT and Mask),
 * process filters, and the action a match takes. What the engine cannot do
 * is reported, never dropped.
 */
import type {
  ArgFilterTable,
  BinaryFilterTable,
  EnforceTable,
  IntRange,
  NamespaceFilterTable,
  ReturnFilterTable,
  SelectorActions,
  SelectorTable,
} from '../sensors/tracing/tables.js';
import type { SourceRef } from './errors.js';
import { LIMITS } from './limits.js';
import type { ActionSet, ArgFilter, ArgOperator, FilterValue, Selector } from './model.js';

/** A problem with a selector, at the element it concerns. */
export interface SelectorProblem {
  at: SourceRef;
  message: string;
  hint?: string;
}

/** What selectors need to know of the hook they belong to. */
export interface SelectorHost {
  /** `kprobe "sys_openat"` */
  label: string;
  /** the syscalls the hook fires on (sys_enter_X tracepoints included); undefined when not a syscall */
  syscalls: string[] | undefined;
  /** spec.enforcers' calls; undefined when the policy has no enforcer */
  enforcerCalls: ReadonlySet<string> | undefined;
}

/**
 * Several values of GT, LT and Mask match when any one does (as in
 * Tetragon); the engine compares one, which is the same test: GT the
 * smallest, LT the largest, Mask the union of the bits. Values are already
 * in the arg's width and signedness, so comparing them as bigints orders
 * them as the kernel will.
 */
export function combineInts(op: ArgOperator, values: bigint[]): bigint[] {
  if (values.length <= 1) return values;
  const sorted = () => [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  switch (op) {
    case 'GT':
      return [sorted()[0]!];
    case 'LT':
      return [sorted()[values.length - 1]!];
    case 'Mask':
      return [values.reduce((a, b) => a | b)];
    default:
      return values;
  }
}

function ranges(r: { min: bigint; max: bigint }[]): IntRange[] {
  return r.map(({ min, max }) => ({ min, max }));
}

/** The engine's form of one matchArgs filter's values. */
function filterValues(op: ArgOperator, v: FilterValue): Omit<ArgFilterTable, 'arg' | 'op'> {
  switch (v.kind) {
    case 'ints':
      return { ints: combineInts(op, v.values) };
    case 'ranges':
    case 'ports':
      return { ranges: ranges(v.ranges) };
    case 'set': {
      const out: Omit<ArgFilterTable, 'arg' | 'op'> = {};
      if (v.values.length) out.ints = [...v.values];
      if (v.ranges.length) out.ranges = ranges(v.ranges);
      return out;
    }
    case 'strings':
      return { strings: [...v.values] };
    case 'cidrs':
      return { cidrs: v.cidrs.map((c) => (c.text.includes('/') ? c.text : `${c.text}/${c.prefixLength}`)) };
    case 'families':
      return { ints: v.values.map((f) => BigInt(f)) };
    case 'none':
      return {};
  }
}

const RETURN_OPS: ReadonlySet<string> = new Set<ReturnFilterTable['op']>([
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

function returnFilter(f: ArgFilter, problems: SelectorProblem[]): ReturnFilterTable | undefined {
  if (!RETURN_OPS.has(f.operator)) {
    problems.push({
      at: f.source,
      message: `matchReturnArgs operator ${f.operator} does not apply to a return value`,
      hint: `the return value is an integer: ${[...RETURN_OPS].join(', ')}`,
    });
    return undefined;
  }
  const vals = filterValues(f.operator, f.value);
  const out: ReturnFilterTable = { op: f.operator as ReturnFilterTable['op'] };
  if (vals.ints) out.ints = vals.ints;
  if (vals.ranges) out.ranges = vals.ranges;
  return out;
}

/** The enforcement action of a list, or a problem when the engine cannot take it. */
function enforcement(
  set: ActionSet,
  host: SelectorHost,
  problems: SelectorProblem[],
): EnforceTable | undefined | null {
  if (set.enforce.length === 0) return undefined;
  if (set.enforce.length > 1) {
    problems.push({
      at: set.enforce[1]!.source,
      message: `${set.enforce.length} enforcement actions; the engine takes one per selector`,
      hint: 'keep one',
    });
    return null;
  }
  const e = set.enforce[0]!;
  switch (e.action) {
    case 'Sigkill':
      return { action: 'Sigkill' };
    case 'Signal':
      return { action: 'Signal', signal: e.signal };
    case 'Override':
      problems.push({
        at: e.source,
        message:
          'action Override is not supported by the tracing engine: it runs on tracepoints, where a return value cannot be replaced',
        hint: 'use Sigkill or Signal',
      });
      return null;
    case 'NotifyEnforcer': {
      if (e.error !== undefined || e.signal === undefined) {
        problems.push({
          at: e.source,
          message:
            'NotifyEnforcer with argError is not supported by the tracing engine: it cannot replace a return value',
          hint: 'give argSig (e.g. 9) and no argError',
        });
        return null;
      }
      // The engine's enforcer signals the thread when it leaves the syscall
      // it is in. Tetragon's acts in the enforcer's calls, so the two agree
      // only when the notifying hook is itself one of those calls.
      const calls = host.enforcerCalls;
      if (calls && host.syscalls) {
        const outside = host.syscalls.filter((s) => !calls.has(s));
        if (outside.length) {
          problems.push({
            at: e.source,
            message: `NotifyEnforcer on ${host.label}: syscall ${outside.join(', ')} is not among spec.enforcers calls; Osprey's enforcer signals the thread as it leaves the notifying syscall, so it can only stand for an enforcer on that same syscall`,
            hint: `add ${outside.join(', ')} to spec.enforcers calls, or use Sigkill/Signal`,
          });
          return null;
        }
      }
      return { action: 'NotifyEnforcer', signal: e.signal };
    }
  }
}

/**
 * A selector's actions. With matchReturnActions the selector is decided at
 * the syscall's return (its matchReturnArgs are read there), so both lists
 * are taken there, together: the event is posted unless either list says
 * NoPost, and at most one enforcement action is taken across the two.
 */
function actions(s: Selector, host: SelectorHost, problems: SelectorProblem[]): SelectorActions | undefined {
  const set = s.onReturn ? mergeActionSets(s, s.onMatch, s.onReturn, problems) : s.onMatch;
  if (!set) return undefined;
  const enforce = enforcement(set, host, problems);
  if (enforce === null) return undefined;
  const out: SelectorActions = { post: set.post !== undefined };
  if (set.post?.rateLimitMs !== undefined) {
    out.rateLimitNs = BigInt(set.post.rateLimitMs) * 1_000_000n;
    out.rateLimitScope = set.post.rateLimitScope;
  }
  if (enforce) out.enforce = enforce;
  return out;
}

function mergeActionSets(
  s: Selector,
  entry: ActionSet,
  ret: ActionSet,
  problems: SelectorProblem[],
): ActionSet | undefined {
  const posts = [entry.post, ret.post];
  const limited = posts.filter((p) => p?.rateLimitMs !== undefined);
  if (limited.length > 1) {
    problems.push({
      at: s.source,
      message:
        'matchActions and matchReturnActions both give Post a rateLimit; the engine posts one event per call',
      hint: 'keep the rateLimit in one of the two lists',
    });
    return undefined;
  }
  return {
    post: entry.post && ret.post ? (limited[0] ?? entry.post) : undefined,
    enforce: [...entry.enforce, ...ret.enforce],
  };
}

/** One selector; undefined (with problems) when the engine cannot express it. */
export function compileSelector(
  s: Selector,
  host: SelectorHost,
  problems: SelectorProblem[],
): SelectorTable | undefined {
  const before = problems.length;
  const table: SelectorTable = { actions: { post: true } };
  if (s.matchArgs.length) {
    table.matchArgs = s.matchArgs.map((f) => ({
      arg: f.argPosition,
      op: f.operator,
      ...filterValues(f.operator, f.value),
    }));
  }
  if (s.matchReturnArgs.length) {
    const rets = s.matchReturnArgs.map((f) => returnFilter(f, problems));
    if (rets.every((r) => r !== undefined)) table.matchReturnArgs = rets as ReturnFilterTable[];
  }
  if (s.matchPIDs.length) {
    table.matchPIDs = s.matchPIDs.map((p) => ({
      op: p.operator,
      pids: [...p.values],
      followForks: p.followForks,
      isNamespacePID: p.isNamespacePID,
    }));
  }
  for (const key of ['matchBinaries', 'matchParentBinaries'] as const) {
    const list = s[key];
    if (list.length > LIMITS.matchBinariesPerSelector) {
      problems.push({
        at: list[1]!.source,
        message: `${list.length} ${key} filters; the engine takes ${LIMITS.matchBinariesPerSelector} per selector`,
        hint: 'merge their values into one filter, or split the selector',
      });
      continue;
    }
    const b = list[0];
    if (!b) continue;
    const f: BinaryFilterTable = { op: b.operator, values: [...b.values] };
    if (b.followChildren) f.followChildren = true;
    table[key] = f;
  }
  const nss: NamespaceFilterTable[] = s.matchNamespaces.map((n) => ({
    namespace: n.namespace,
    op: n.operator,
    values: [...n.values],
  }));
  if (s.matchCapabilities.length) {
    table.matchCapabilities = s.matchCapabilities.map((c) => ({ set: c.type, op: c.operator, mask: c.mask }));
    // isNamespaceCapability: the filter only holds outside the host's user
    // namespace, which is a namespace filter ANDed with the others
    const nsCap = s.matchCapabilities.find((c) => c.isNamespaceCapability);
    if (nsCap) {
      if (nss.length >= LIMITS.matchNamespacesPerSelector) {
        problems.push({
          at: nsCap.source,
          message: `isNamespaceCapability needs a matchNamespaces filter (User NotIn host_ns) and this selector already has ${nss.length}, the engine's limit`,
          hint: 'drop a matchNamespaces filter or isNamespaceCapability',
        });
      } else {
        nss.push({ namespace: 'User', op: 'NotIn', values: ['host_ns'] });
      }
    }
  }
  if (nss.length) table.matchNamespaces = nss;
  const a = actions(s, host, problems);
  if (a) table.actions = a;
  return problems.length === before ? table : undefined;
}
