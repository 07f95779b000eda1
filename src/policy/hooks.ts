/**
 * The hooks of a policy: tracepoints, kprobes (syscall kprobes run on the
 * syscall tracepoints), and the kernel-function hooks (kprobes on functions,
 * lsmhooks, fentries) that only kernels with those features can run.
 */
import {
  type ArgHost,
  type ArgLayout,
  readArgs,
  readReturnArg,
  syscallLayout,
  tracepointLayout,
} from './args.js';
import type { PolicyContext } from './context.js';
import { FEATURE_NAMES, type KernelCapabilities } from './kernel-caps.js';
import { LIMITS } from './limits.js';
import { LIST_PREFIX, listRef } from './lists.js';
import type { Hook, SyscallTarget, TracepointRef } from './model.js';
import { readSelectors, type SelectorHost } from './selectors.js';
import {
  enterEvent,
  exitEvent,
  SYSCALL_SUBSYSTEM,
  syscallFunctionName,
  syscallName,
  syscallPrefix,
} from './syscalls.js';
import type { TracepointField } from './tracepoints.js';
import { type Field, isNull, type ObjectView } from './yaml-view.js';

const TRACEPOINT_FIELDS = ['subsystem', 'event', 'args', 'selectors', 'message', 'tags', 'raw'] as const;
const KPROBE_FIELDS = [
  'call',
  'syscall',
  'return',
  'message',
  'args',
  'returnArg',
  'returnArgAction',
  'selectors',
  'tags',
  'data',
  'ignore',
] as const;
const LSM_FIELDS = ['hook', 'args', 'selectors', 'message', 'tags'] as const;

/** message and tags, common to every hook. */
function readMessageAndTags(
  ctx: PolicyContext,
  o: ObjectView,
): { message: string | undefined; tags: string[] } {
  const { r } = ctx;
  const msgF = o.get('message');
  let message = r.string(msgF, 'message');
  if (message !== undefined && [...message].length > LIMITS.messageLength) {
    ctx.error(
      msgF,
      `message is ${[...message].length} characters; the limit is ${LIMITS.messageLength}`,
      'shorten it',
    );
    message = undefined;
  }
  const tagsF = o.get('tags');
  const items = r.list(tagsF, 'tags');
  if (items.length > LIMITS.tagsPerHook) {
    ctx.errorAtKey(tagsF, `too many tags: ${items.length} (the limit is ${LIMITS.tagsPerHook})`);
  }
  const tags: string[] = [];
  for (const t of items) {
    const s = r.string(t, 'tag', true);
    if (s !== undefined) tags.push(s);
  }
  return { message, tags };
}

// ---------------------------------------------------------------- tracepoints

export function readTracepointHook(ctx: PolicyContext, item: Field, i: number): Hook | undefined {
  const { r } = ctx;
  const o = r.object(item, TRACEPOINT_FIELDS, 'a tracepoint');
  if (!o) {
    if (isNull(item)) r.missing(item, 'tracepoint');
    return undefined;
  }
  let ok = true;
  if (r.bool(o.get('raw'), 'raw')) {
    ctx.error(
      o.get('raw'),
      'raw tracepoints are not supported by Osprey',
      'remove raw: the tracepoint is read from its format',
    );
    ok = false;
  }
  const subF = o.get('subsystem');
  const evF = o.get('event');
  const subsystem = r.string(subF, 'subsystem', true);
  const event = r.string(evF, 'event', true);
  let tracepoint: TracepointRef | undefined;
  let fields: TracepointField[] | undefined;
  if (subsystem !== undefined && event !== undefined) {
    const got = ctx.tracefs.format(subsystem, event);
    if (got.ok) {
      tracepoint = { subsystem, event, id: got.format.id };
      fields = got.format.fields;
    } else {
      ctx.tracepointError(evF, subsystem, event, got.reason, got.detail);
    }
  }
  const label = `tracepoint "${subsystem ?? '?'}/${event ?? '?'}"`;
  const host: ArgHost = {
    kind: 'tracepoint',
    label,
    layouts: fields
      ? [
          tracepointLayout(
            `tracepoint ${subsystem}/${event}`,
            fields,
            `${ctx.tracefs.root}/events/${subsystem}/${event}/format`,
          ),
        ]
      : [],
  };
  const read = readArgs(ctx, o.get('args'), host);
  const selectors = readSelectors(ctx, o.get('selectors'), {
    kind: 'tracepoint',
    label,
    args: read.args,
    argIndexes: read.indexes,
    hasReturn: false,
    returnArg: undefined,
  });
  const { message, tags } = readMessageAndTags(ctx, o);
  if (!ok || !tracepoint || read.args.includes(undefined)) return undefined;
  return {
    kind: 'tracepoint',
    id: `tracepoints[${i}]`,
    label,
    subsystem: subsystem!,
    event: event!,
    tracepoint,
    args: read.args as NonNullable<(typeof read.args)[number]>[],
    selectors,
    message,
    tags,
    tracepoints: [tracepoint],
    source: ctx.ref(item),
  };
}

// ---------------------------------------------------------------- kprobes

/** What a kprobe's `call` stands for. */
type CallTarget = { kind: 'syscall'; name: string } | { kind: 'function'; name: string };

/**
 * Classify one name: a syscall when `syscall: true`, or when it is spelt as a
 * syscall entry point (sys_openat, __x64_sys_openat) that has a tracepoint;
 * otherwise a kernel function.
 */
function classify(
  ctx: PolicyContext,
  f: Field,
  name: string,
  syscall: boolean | undefined,
): CallTarget | undefined {
  const n = syscallName(name, ctx.arch);
  if (syscall === true) {
    if (!n.ok) {
      ctx.error(f, n.message, n.hint);
      return undefined;
    }
    return { kind: 'syscall', name: n.name };
  }
  const spelt = name.startsWith('sys_') || name.startsWith(syscallPrefix(ctx.arch));
  // Without tracefs, trust the spelling: the tracepoint lookup then says tracefs is missing.
  if (
    n.ok &&
    spelt &&
    (!ctx.tracefs.mounted() || ctx.tracefs.exists(SYSCALL_SUBSYSTEM, enterEvent(n.name)))
  ) {
    return { kind: 'syscall', name: n.name };
  }
  return { kind: 'function', name };
}

/** The names a `call` stands for: itself, or a list's values. */
function expandCall(
  ctx: PolicyContext,
  f: Field,
  call: string,
  syscall: boolean | undefined,
): CallTarget[] | undefined {
  if (!call.startsWith(LIST_PREFIX)) {
    const t = classify(ctx, f, call, syscall);
    return t ? [t] : undefined;
  }
  const list = listRef(ctx, f, call);
  if (!list) return undefined;
  if (list.type !== 'none') return list.syscalls.map((s) => ({ kind: 'syscall', name: s.name }));
  const out: CallTarget[] = [];
  for (const v of list.values) {
    const t = classify(ctx, f, v, syscall);
    if (!t) return undefined;
    out.push(t);
  }
  return out;
}

function refuse(
  ctx: PolicyContext,
  f: Field,
  what: string,
  feature: keyof KernelCapabilities,
  hint: string,
): void {
  ctx.error(f, `${ctx.policyPrefix}${what} needs ${FEATURE_NAMES[feature]}, which this kernel lacks`, hint);
}

/**
 * A kprobe (section 'kprobes') or fentry (section 'fentries'); both are
 * Tetragon's KProbeSpec.
 */
export function readKprobeHook(
  ctx: PolicyContext,
  item: Field,
  i: number,
  section: 'kprobes' | 'fentries',
): Hook | undefined {
  const { r } = ctx;
  const noun = section === 'kprobes' ? 'kprobe' : 'fentry';
  const o = r.object(item, KPROBE_FIELDS, `a ${noun}`);
  if (!o) {
    if (isNull(item)) r.missing(item, noun);
    return undefined;
  }
  let ok = true;
  for (const k of ['data', 'ignore'] as const) {
    if (o.has(k)) {
      ctx.error(o.get(k), `${k} is not supported by Osprey`, 'remove it');
      ok = false;
    }
  }
  const callF = o.get('call');
  const call = r.string(callF, 'call', true);
  const syscall = r.bool(o.get('syscall'), 'syscall');
  const ret = r.bool(o.get('return'), 'return') ?? false;
  const label = `${noun} "${call ?? '?'}"`;

  // What it hooks, and whether this kernel can.
  let targets: CallTarget[] | undefined;
  if (call !== undefined) {
    if (section === 'fentries') {
      if (!ctx.kernel.fentry) {
        refuse(ctx, callF, label, 'fentry', 'use a kprobe with syscall: true, or a tracepoint');
        ok = false;
      } else targets = [{ kind: 'function', name: call }];
    } else {
      targets = expandCall(ctx, callF, call, syscall);
      const fn = targets?.find((t) => t.kind === 'function');
      if (fn && !ctx.kernel.kprobes) {
        const what = fn.name === call ? label : `${label} (function "${fn.name}")`;
        refuse(
          ctx,
          callF,
          what,
          'kprobes',
          'syscall kprobes (syscall: true) and tracepoints work here; hook the syscall or a tracepoint instead',
        );
        ok = false;
        targets = undefined;
      }
    }
  }
  if (!targets) ok = false;
  const isSyscall = targets?.every((t) => t.kind === 'syscall') ?? false;

  // Each syscall's sys_enter layout (what arg indexes name).
  const layouts: ArgLayout[] = [];
  const syscalls: SyscallTarget[] = [];
  if (isSyscall) {
    const seen = new Set<string>();
    for (const t of targets!) {
      if (seen.has(t.name)) continue;
      seen.add(t.name);
      const target = ctx.syscallTarget(callF, t.name, false);
      if (!target) {
        ok = false;
        continue;
      }
      syscalls.push(target);
      const fmt = ctx.tracefs.format(SYSCALL_SUBSYSTEM, enterEvent(t.name));
      if (fmt.ok) layouts.push(syscallLayout(t.name, fmt.format.fields));
    }
  }
  const host: ArgHost = { kind: isSyscall ? 'syscall' : 'function', label, layouts };
  const read = readArgs(ctx, o.get('args'), host);

  // The return value: sys_exit's `ret` for syscalls.
  const retArgF = o.get('returnArg');
  let retField: TracepointField | undefined;
  let retIndex: number | undefined;
  if (isSyscall && syscalls[0]) {
    const fmt = ctx.tracefs.format(SYSCALL_SUBSYSTEM, exitEvent(syscalls[0].name));
    if (fmt.ok) {
      retIndex = fmt.format.fields.findIndex((fl) => fl.name === 'ret');
      retField = retIndex >= 0 ? fmt.format.fields[retIndex] : undefined;
    }
  }
  const returnArg = isNull(retArgF) ? undefined : readReturnArg(ctx, retArgF, retField, retIndex);
  if (!isNull(retArgF) && !returnArg) ok = false;
  if (ret && isNull(retArgF)) {
    ctx.error(o.get('return'), 'return: true needs a returnArg', 'e.g. returnArg: {index: 0, type: int}');
    ok = false;
  }
  if (!ret && !isNull(retArgF)) {
    ctx.error(retArgF, `returnArg is read only with return: true on ${label}`, 'add return: true');
    ok = false;
  }
  const actF = o.get('returnArgAction');
  const act = r.string(actF, 'returnArgAction');
  let returnArgAction: 'Post' | undefined;
  if (act !== undefined) {
    if (act === 'Post') {
      if (!ret) {
        ctx.error(actF, 'returnArgAction needs return: true');
        ok = false;
      } else returnArgAction = 'Post';
    } else if (act === 'TrackSock' || act === 'UntrackSock') {
      ctx.error(actF, `returnArgAction ${act} is not supported by Osprey`, 'returnArgAction: Post is');
      ok = false;
    } else {
      ctx.error(actF, `unknown returnArgAction "${act}"`, 'returnArgAction: Post');
      ok = false;
    }
  }

  const selHost: SelectorHost = {
    kind: section === 'fentries' ? 'fentry' : isSyscall ? 'syscall' : 'kprobe',
    label,
    args: read.args,
    argIndexes: read.indexes,
    hasReturn: ret,
    returnArg,
  };
  const selectors = readSelectors(ctx, o.get('selectors'), selHost);
  const { message, tags } = readMessageAndTags(ctx, o);
  if (!ok || read.args.includes(undefined) || !targets) return undefined;
  const args = read.args as NonNullable<(typeof read.args)[number]>[];
  const base = { id: `${section}[${i}]`, label, args, selectors, message, tags, source: ctx.ref(item) };

  if (section === 'fentries') {
    return { ...base, kind: 'fentry', call: call!, return: ret, returnArg, tracepoints: [] };
  }
  if (!isSyscall) {
    return {
      ...base,
      kind: 'kprobe',
      call: call!,
      // with kprobes, a syscall in a mixed list is probed at its entry point
      functions: targets.map((t) => (t.kind === 'syscall' ? syscallFunctionName(t.name, ctx.arch) : t.name)),
      return: ret,
      returnArg,
      tracepoints: [],
    };
  }
  const needsExit =
    ret ||
    args.some((a) => a.returnCopy) ||
    selectors.some((s) => s.matchReturnArgs.length > 0 || s.onReturn !== undefined);
  if (needsExit) {
    for (const t of syscalls) {
      const exit = ctx.tracepoint(callF, SYSCALL_SUBSYSTEM, exitEvent(t.name));
      if (!exit) return undefined;
      t.exit = exit;
    }
  }
  const tracepoints: TracepointRef[] = [];
  for (const t of syscalls) {
    tracepoints.push(t.enter);
    if (t.exit) tracepoints.push(t.exit);
  }
  return {
    ...base,
    kind: 'syscall',
    call: call!,
    syscalls,
    needsExit,
    returnArg,
    returnArgAction,
    tracepoints,
  };
}

// ---------------------------------------------------------------- lsm hooks

export function readLsmHook(ctx: PolicyContext, item: Field, i: number): Hook | undefined {
  const { r } = ctx;
  const o = r.object(item, LSM_FIELDS, 'an lsmhook');
  if (!o) {
    if (isNull(item)) r.missing(item, 'lsmhook');
    return undefined;
  }
  const hookF = o.get('hook');
  const hook = r.string(hookF, 'hook', true);
  const label = `lsmhook "${hook ?? '?'}"`;
  let ok = hook !== undefined;
  if (hook !== undefined && !ctx.kernel.bpfLsm) {
    refuse(ctx, hookF, label, 'bpfLsm', 'use a syscall kprobe (syscall: true) with Sigkill, or a tracepoint');
    ok = false;
  }
  const read = readArgs(ctx, o.get('args'), { kind: 'function', label, layouts: [] });
  const selectors = readSelectors(ctx, o.get('selectors'), {
    kind: 'lsm',
    label,
    args: read.args,
    argIndexes: read.indexes,
    hasReturn: false,
    returnArg: undefined,
  });
  const { message, tags } = readMessageAndTags(ctx, o);
  if (!ok || read.args.includes(undefined)) return undefined;
  return {
    kind: 'lsm',
    id: `lsmhooks[${i}]`,
    label,
    hook: hook!,
    args: read.args as NonNullable<(typeof read.args)[number]>[],
    selectors,
    message,
    tags,
    tracepoints: [],
    source: ctx.ref(item),
  };
}
