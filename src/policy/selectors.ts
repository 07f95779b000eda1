/**
 * A hook's selectors: the in-kernel filters (args, return value, PIDs,
 * binaries, namespaces, capabilities) and the actions taken on a match.
 */
import { type ActionHost, readActions } from './actions.js';
import { readArgFilter } from './arg-filters.js';
import type { PolicyContext } from './context.js';
import { atMost, collect, lastKey } from './filter-fields.js';
import { LIMITS } from './limits.js';
import type { HookArg, ReturnArg, Selector } from './model.js';
import {
  readBinaryFilter,
  readCapabilityFilter,
  readNamespaceFilter,
  readPidFilter,
} from './process-filters.js';
import { type Field, isNull } from './yaml-view.js';

const SELECTOR_FIELDS = [
  'matchPIDs',
  'matchArgs',
  'matchData',
  'matchActions',
  'matchReturnArgs',
  'matchReturnActions',
  'matchBinaries',
  'matchParentBinaries',
  'matchNamespaces',
  'matchNamespaceChanges',
  'matchCapabilities',
  'matchCapabilityChanges',
] as const;

const UNSUPPORTED_SELECTOR_FIELDS = ['matchData', 'matchNamespaceChanges', 'matchCapabilityChanges'] as const;

/** The hook selectors belong to, as selectors need to know it. */
export interface SelectorHost extends ActionHost {
  /** by position; undefined where the arg was refused */
  args: (HookArg | undefined)[];
  /** the index each arg was written with, by position; undefined where it was unreadable */
  argIndexes: (number | undefined)[];
  /** the hook reads its return (kprobe `return: true`) */
  hasReturn: boolean;
  returnArg: ReturnArg | undefined;
}

/** Read `selectors`: at most LIMITS.selectorsPerHook of them. */
export function readSelectors(ctx: PolicyContext, f: Field, host: SelectorHost): Selector[] {
  const items = ctx.r.list(f, 'selectors');
  if (items.length > LIMITS.selectorsPerHook) {
    ctx.errorAtKey(
      f,
      `too many selectors: ${items.length} (the limit is ${LIMITS.selectorsPerHook} per hook)`,
      'merge selectors, or split the hook across policies',
    );
  }
  const out: Selector[] = [];
  for (const item of items) {
    const s = readSelector(ctx, item, host);
    if (s) out.push(s);
  }
  return out;
}

function readSelector(ctx: PolicyContext, f: Field, host: SelectorHost): Selector | undefined {
  const { r } = ctx;
  // `- {}` and a bare `-` both select every call.
  const o = isNull(f) ? undefined : r.object(f, SELECTOR_FIELDS, 'a selector');
  if (!o && !isNull(f)) return undefined;
  const get = (k: string): Field => (o ? o.get(k) : { node: undefined, path: `${f.path}.${k}`, at: f.at });

  for (const k of UNSUPPORTED_SELECTOR_FIELDS) {
    if (o?.has(k)) ctx.error(o.get(k), `${k} is not supported by Osprey`, 'remove it');
  }

  const matchArgsF = get('matchArgs');
  const argItems = r.list(matchArgsF, 'matchArgs');
  atMost(
    ctx,
    matchArgsF,
    argItems,
    LIMITS.matchArgsPerSelector,
    'matchArgs filters',
    'per selector',
    'move some filters to another selector, or use InMap for many values',
  );
  const matchArgs = collect(argItems, (i) => readArgFilter(ctx, i, host, false));

  const retArgsF = get('matchReturnArgs');
  const retActionsF = get('matchReturnActions');
  for (const rf of [retArgsF, retActionsF]) {
    if (isNull(rf)) continue;
    if (host.kind === 'tracepoint' || host.kind === 'lsm') {
      ctx.errorAtKey(rf, `${lastKey(rf.path)} applies to kprobes: a ${host.kind} has no return`);
    } else if (!host.hasReturn) {
      ctx.errorAtKey(
        rf,
        `${lastKey(rf.path)} needs return: true on ${host.label}`,
        'add return: true and a returnArg',
      );
    }
  }
  const list = (key: string, limit: number): Field[] => {
    const lf = get(key);
    const items = r.list(lf, key);
    atMost(ctx, lf, items, limit, `${key} filters`, 'per selector');
    return items;
  };
  const matchReturnArgs = collect(list('matchReturnArgs', LIMITS.matchReturnArgsPerSelector), (i) =>
    readArgFilter(ctx, i, host, true),
  );
  const matchPIDs = collect(list('matchPIDs', LIMITS.matchPIDsPerSelector), (i) => readPidFilter(ctx, i));
  const matchBinaries = collect(list('matchBinaries', LIMITS.matchBinariesPerSelector), (i) =>
    readBinaryFilter(ctx, i),
  );
  const matchParentBinaries = collect(list('matchParentBinaries', LIMITS.matchBinariesPerSelector), (i) =>
    readBinaryFilter(ctx, i),
  );
  const matchNamespaces = collect(list('matchNamespaces', LIMITS.matchNamespacesPerSelector), (i) =>
    readNamespaceFilter(ctx, i),
  );
  const matchCapabilities = collect(list('matchCapabilities', LIMITS.matchCapabilitiesPerSelector), (i) =>
    readCapabilityFilter(ctx, i),
  );
  const onMatch = readActions(ctx, get('matchActions'), host);
  const onReturn = isNull(retActionsF) ? undefined : readActions(ctx, retActionsF, host);
  return {
    matchArgs,
    matchReturnArgs,
    matchPIDs,
    matchBinaries,
    matchParentBinaries,
    matchNamespaces,
    matchCapabilities,
    onMatch,
    onReturn,
    source: ctx.ref(f),
  };
}
