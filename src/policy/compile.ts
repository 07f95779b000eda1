/**
 * A validated TracingPolicy to the tracing engine's tables
 * (src/sensors/tracing/tables.ts), with the metadata its events need.
 *
 * Tracepoints map one to one. A syscall kprobe becomes one hook per
 * syscall on syscalls/sys_enter_X, or an enter/exit pair when it needs the
 * return value. Args are read where the model found them in the record, at
 * the width of their type. Anything the engine cannot do is a
 * PolicyCompileError naming the policy, the hook and the field: a policy
 * compiles whole or not at all.
 */
import type { PolicyEventMeta, TracingArgMeta, TracingHookMeta } from '../events/tracing.js';
import { readHostNamespaces } from '../process/namespaces.js';
import { OSP_LIMITS } from '../sensors/tracing/layout.js';
import {
  type ArgSpec,
  type FieldRef,
  type HookTable,
  type NamespaceName,
  type PolicyMode,
  type PolicyTables,
  type SelectorTable,
  TablesError,
  validateTables,
} from '../sensors/tracing/tables.js';
import { ARG_TYPES, type ArgType } from './arg-types.js';
import { compileSelector, type SelectorHost, type SelectorProblem } from './compile-selectors.js';
import { PolicyError, type SourceRef } from './errors.js';
import { LIMITS } from './limits.js';
import type { ArgField, Hook, HookArg, SyscallHook, TracepointHook, TracingPolicy } from './model.js';

export interface CompileContext {
  /** identifies the policy in its events (TracingRecord.policyId) */
  policyId: number;
  /** never signalled by the policy's actions */
  agentPid: number;
  /**
   * the host's namespace inode numbers, for `host_ns` values; read from
   * PID 1 (or, where /proc/1/ns is unreadable, the agent's own) when not
   * given and the policy needs them
   */
  hostNs?: Partial<Record<NamespaceName, number>>;
  /** overrides the policy's own `policy-mode` option */
  mode?: PolicyMode;
}

export interface CompiledPolicy {
  name: string;
  tables: PolicyTables;
  /** what buildTracingEvent needs, hook by hook */
  meta: PolicyEventMeta;
}

/** One thing in a policy the engine cannot do, located like a validation error. */
export class CompileProblem extends PolicyError {
  /** the hook it concerns ("kprobes[0]"); '' for the policy itself */
  readonly hook: string;

  constructor(init: ConstructorParameters<typeof PolicyError>[0] & { hook: string }) {
    super(init);
    this.name = 'CompileProblem';
    this.hook = init.hook;
  }
}

/** A policy that does not compile: every problem found, one per line. */
export class PolicyCompileError extends Error {
  constructor(
    readonly policy: string,
    readonly problems: CompileProblem[],
  ) {
    super(problems.map(String).join('\n'));
    this.name = 'PolicyCompileError';
  }
}

/** Where the policy validator's limits and the engine's disagree; [] when they agree. */
export function limitDisagreements(): string[] {
  const pairs: [string, number, number][] = [
    ['tracepointsPerPolicy / MAX_HOOKS', LIMITS.tracepointsPerPolicy, OSP_LIMITS.MAX_HOOKS],
    ['argsPerHook / MAX_ARGS', LIMITS.argsPerHook, OSP_LIMITS.MAX_ARGS],
    ['selectorsPerHook / MAX_SELECTORS', LIMITS.selectorsPerHook, OSP_LIMITS.MAX_SELECTORS],
    ['matchArgsPerSelector / MAX_ARG_FILTERS', LIMITS.matchArgsPerSelector, OSP_LIMITS.MAX_ARG_FILTERS],
    [
      'matchReturnArgsPerSelector / MAX_RET_FILTERS',
      LIMITS.matchReturnArgsPerSelector,
      OSP_LIMITS.MAX_RET_FILTERS,
    ],
    ['matchPIDsPerSelector / MAX_PID_FILTERS', LIMITS.matchPIDsPerSelector, OSP_LIMITS.MAX_PID_FILTERS],
    ['pidsPerFilter / MAX_PIDS', LIMITS.pidsPerFilter, OSP_LIMITS.MAX_PIDS],
    [
      'matchNamespacesPerSelector / MAX_NS_FILTERS',
      LIMITS.matchNamespacesPerSelector,
      OSP_LIMITS.MAX_NS_FILTERS,
    ],
    ['namespaceValues / MAX_NS_VALS', LIMITS.namespaceValues, OSP_LIMITS.MAX_NS_VALS],
    [
      'matchCapabilitiesPerSelector / MAX_CAP_FILTERS',
      LIMITS.matchCapabilitiesPerSelector,
      OSP_LIMITS.MAX_CAP_FILTERS,
    ],
    ['rangesPerFilter / MAX_FILTER_VALS/2', LIMITS.rangesPerFilter, OSP_LIMITS.MAX_FILTER_VALS / 2],
    ['familiesPerFilter / MAX_FILTER_VALS', LIMITS.familiesPerFilter, OSP_LIMITS.MAX_FILTER_VALS],
    ['stringValueBytes / STR_MAX-1', LIMITS.stringValueBytes, OSP_LIMITS.STR_MAX - 1],
    ['prefixBytes / PREFIX_MAX', LIMITS.prefixBytes, OSP_LIMITS.PREFIX_MAX],
    ['postfixBytes / POSTFIX_MAX', LIMITS.postfixBytes, OSP_LIMITS.POSTFIX_MAX],
    ['substringBytes / SUBSTR_MAX', LIMITS.substringBytes, OSP_LIMITS.SUBSTR_MAX],
    ['substringValues / SUBSTR_VALS', LIMITS.substringValues, OSP_LIMITS.SUBSTR_VALS],
  ];
  return pairs.filter(([, a, b]) => a !== b).map(([name, a, b]) => `${name}: policy ${a}, engine ${b}`);
}

/** process/namespaces' names to matchNamespaces' */
const NS_FROM_PROC: Readonly<Record<string, NamespaceName>> = {
  uts: 'Uts',
  ipc: 'Ipc',
  mnt: 'Mnt',
  pid: 'Pid',
  pid_for_children: 'PidForChildren',
  net: 'Net',
  time: 'Time',
  time_for_children: 'TimeForChildren',
  cgroup: 'Cgroup',
  user: 'User',
};

/** The host's namespaces as the engine's tables name them: PID 1's, or the agent's own. */
export function hostNamespaces(procRoot = '/proc'): Partial<Record<NamespaceName, number>> {
  const out: Partial<Record<NamespaceName, number>> = {};
  for (const [k, v] of Object.entries(readHostNamespaces(procRoot).inums)) {
    const name = NS_FROM_PROC[k];
    if (name && v) out[name] = v;
  }
  return out;
}

function fieldSize(n: number): 1 | 2 | 4 | 8 {
  return n >= 8 ? 8 : n >= 4 ? 4 : n >= 2 ? 2 : 1;
}

/** How an int of `type` is read from a field: at the type's width (at most the field's). */
function intField(type: ArgType, f: ArgField): FieldRef {
  const info = ARG_TYPES[type];
  return { offset: f.offset, size: fieldSize(Math.min(f.size, info.bits / 8)), signed: info.signed };
}

/** One policy hook's compiled form: its args, selectors and event metadata. */
interface HookParts {
  args: ArgSpec[];
  argMeta: TracingArgMeta[];
  selectors: SelectorTable[];
}

class Compiler {
  readonly problems: CompileProblem[] = [];
  private readonly hooks: HookTable[] = [];
  private readonly metas: (TracingHookMeta | undefined)[] = [];
  /** the policy hook each table hook came from */
  private readonly origin: Hook[] = [];
  private readonly enforcerCalls: ReadonlySet<string> | undefined;

  constructor(
    private readonly policy: TracingPolicy,
    private readonly ctx: CompileContext,
  ) {
    const enf = policy.enforcers[0];
    this.enforcerCalls = enf ? new Set(enf.syscalls.map((s) => s.name)) : undefined;
  }

  private fail(at: SourceRef, hook: Hook | undefined, message: string, hint?: string): void {
    const who = hook ? `policy "${this.policy.name}": ${hook.label}` : `policy "${this.policy.name}"`;
    this.problems.push(
      new CompileProblem({
        file: this.policy.file,
        line: at.line,
        column: at.column,
        fieldPath: at.fieldPath,
        message: `${who}: ${message}`,
        hint,
        policy: this.policy.name,
        hook: hook?.id ?? '',
      }),
    );
  }

  run(): CompiledPolicy | undefined {
    const p = this.policy;
    const bad = limitDisagreements();
    if (bad.length) {
      throw new Error(`the policy validator and the tracing engine disagree on limits: ${bad.join('; ')}`);
    }
    if (p.kind === 'TracingPolicyNamespaced') {
      this.fail(
        p.source,
        undefined,
        `a TracingPolicyNamespaced applies to the pods of Kubernetes namespace "${p.namespace}", which Osprey does not know`,
        'use kind: TracingPolicy; scope it to a workload with the agent instead',
      );
    }
    for (const h of p.hooks) {
      switch (h.kind) {
        case 'tracepoint':
          this.tracepoint(h);
          break;
        case 'syscall':
          this.syscall(h);
          break;
        default:
          this.fail(
            h.source,
            h,
            `${h.kind} hooks are not run by the tracing engine, which attaches to tracepoints only`,
            'hook the syscall (syscall: true) or a tracepoint instead',
          );
      }
    }
    if (this.hooks.length > OSP_LIMITS.MAX_HOOKS) {
      this.fail(
        p.source,
        undefined,
        `compiles to ${this.hooks.length} tracepoint hooks; the engine's limit is ${OSP_LIMITS.MAX_HOOKS} per policy`,
        'hook fewer syscalls, or split them across policies',
      );
    }
    const hostNs = this.hostNs();
    if (this.problems.length) return undefined;
    const tables: PolicyTables = {
      policyId: this.ctx.policyId,
      mode: this.ctx.mode ?? p.mode,
      agentPid: this.ctx.agentPid,
      hostNs,
      hooks: this.hooks,
    };
    try {
      validateTables(tables);
    } catch (err) {
      if (!(err instanceof TablesError)) throw err;
      // a gap between this compiler and the engine: still say where
      const m = /^hook (\d+)/.exec(err.where);
      const hook = m ? this.hookOf(Number(m[1])) : undefined;
      this.fail(hook?.source ?? p.source, hook, `the engine refuses the compiled form: ${err.message}`);
      return undefined;
    }
    return { name: p.name, tables, meta: { policyName: p.name, hooks: this.metas } };
  }

  private hookOf(i: number): Hook | undefined {
    return this.origin[i];
  }

  private push(h: Hook, table: HookTable, meta: TracingHookMeta | undefined): number {
    this.hooks.push(table);
    this.metas.push(meta);
    this.origin.push(h);
    return this.hooks.length - 1;
  }

  /** host_ns values and isNamespaceCapability need the host's inode numbers. */
  private hostNs(): Partial<Record<NamespaceName, number>> {
    const wanted = new Set<NamespaceName>();
    for (const t of this.hooks) {
      for (const s of t.selectors) {
        for (const n of s.matchNamespaces ?? []) {
          if (n.values.includes('host_ns')) wanted.add(n.namespace);
        }
      }
    }
    if (wanted.size === 0) return this.ctx.hostNs ?? {};
    const ns = this.ctx.hostNs ?? hostNamespaces();
    for (const name of wanted) {
      if (!ns[name]) {
        this.fail(
          this.policy.source,
          undefined,
          `host_ns: the host's ${name} namespace is unknown (/proc/1/ns and /proc/self/ns are unreadable)`,
          'give the inode number instead of host_ns (see lsns)',
        );
      }
    }
    return ns;
  }

  /** Args as the engine reads them; undefined after reporting when one cannot be read. */
  private args(h: Hook): { args: ArgSpec[]; meta: TracingArgMeta[] } | undefined {
    const args: ArgSpec[] = [];
    const meta: TracingArgMeta[] = [];
    const buffers: { pos: number; arg: HookArg }[] = [];
    let ok = true;
    for (const a of h.args) {
      const f = a.field;
      if (!f) {
        this.fail(a.source, h, `arg ${a.index}: where it sits in the tracepoint record is unknown`);
        ok = false;
        continue;
      }
      const info = ARG_TYPES[a.type];
      switch (info.class) {
        case 'int':
          args.push({ type: 'int', ...intField(a.type, f) });
          break;
        case 'fd':
          // the descriptor number: ints compare it, strings its file's path
          args.push({ type: 'fd', ...intField(a.type, f) });
          break;
        case 'string':
          args.push(
            f.inRecord
              ? { type: 'string', offset: f.offset, size: f.size, signed: false, inRecord: f.inRecord }
              : { type: 'string', offset: f.offset, size: 8, signed: false },
          );
          break;
        case 'sockaddr':
          args.push({ type: 'sockaddr', offset: f.offset, size: 8, signed: false });
          break;
        case 'buffer':
          if (a.returnCopy) {
            // read when the syscall returns (read(2) fills it), as many bytes as it returned
            args.push({ type: 'char_buf', offset: f.offset, size: 8, signed: false, sizeFromReturn: true });
            break;
          }
          if (!a.sizeField) {
            this.fail(a.source, h, `arg ${a.index}: a char_buf needs sizeArgIndex`);
            ok = false;
            continue;
          }
          buffers.push({ pos: args.length, arg: a });
          args.push({ type: 'char_buf', offset: f.offset, size: 8, signed: false });
          break;
      }
      const m: TracingArgMeta = { type: a.type };
      if (a.label !== undefined) m.label = a.label;
      meta.push(m);
    }
    if (!ok) return undefined;
    // a char_buf's byte count comes from another arg: a declared int on the
    // same field, or one read for the purpose and left out of events
    for (const { pos, arg } of buffers) {
      const sf = arg.sizeField!;
      let j = args.findIndex((s, k) => k !== pos && s.type === 'int' && s.offset === sf.offset);
      if (j < 0) {
        j = args.length;
        args.push({ type: 'int', offset: sf.offset, size: fieldSize(sf.size), signed: sf.signed });
        meta.push({ type: sf.signed ? 'int64' : 'uint64', hidden: true });
      }
      args[pos]!.sizeArg = j;
      meta[pos]!.sizeArg = j;
    }
    if (args.length > OSP_LIMITS.MAX_ARGS) {
      this.fail(
        h.source,
        h,
        `reads ${args.length} args (${args.length - h.args.length} of them the byte counts of char_buf args); the engine reads at most ${OSP_LIMITS.MAX_ARGS} per hook`,
        'declare the byte count among the args, or read fewer args',
      );
      return undefined;
    }
    return { args, meta };
  }

  private selectors(h: Hook, host: SelectorHost): SelectorTable[] | undefined {
    const problems: SelectorProblem[] = [];
    const out = h.selectors.map((s) => compileSelector(s, host, problems));
    for (const p of problems) this.fail(p.at, h, p.message, p.hint);
    return problems.length ? undefined : (out as SelectorTable[]);
  }

  private parts(h: Hook, host: SelectorHost): HookParts | undefined {
    const a = this.args(h);
    const selectors = this.selectors(h, host);
    if (!a || !selectors) return undefined;
    return { args: a.args, argMeta: a.meta, selectors };
  }

  private base(h: Hook): { hookId: string; tags: string[]; message?: string } {
    const b: { hookId: string; tags: string[]; message?: string } = { hookId: h.id, tags: [...h.tags] };
    if (h.message !== undefined) b.message = h.message;
    return b;
  }

  private tracepoint(h: TracepointHook): void {
    const m = /^sys_(?:enter|exit)_(.+)$/.exec(h.event);
    const parts = this.parts(h, {
      label: h.label,
      syscalls: h.subsystem === 'syscalls' && m ? [m[1]!] : undefined,
      enforcerCalls: this.enforcerCalls,
    });
    if (!parts) return;
    this.push(
      h,
      { category: h.subsystem, name: h.event, kind: 'plain', args: parts.args, selectors: parts.selectors },
      { shape: 'tracepoint', ...this.base(h), subsys: h.subsystem, event: h.event, args: parts.argMeta },
    );
  }

  private syscall(h: SyscallHook): void {
    const parts = this.parts(h, {
      label: h.label,
      syscalls: h.syscalls.map((s) => s.name),
      enforcerCalls: this.enforcerCalls,
    });
    // returnCopy alone asks for the exit too, and was refused with the args
    if (!parts) return;
    let ret: FieldRef | undefined;
    if (h.needsExit) {
      const ra = h.returnArg;
      if (!ra?.field) {
        this.fail(
          h.source,
          h,
          'needs the return value but has no returnArg the engine can read',
          'add return: true and returnArg: {index: 0, type: long}',
        );
        return;
      }
      ret = intField(ra.type, ra.field);
    }
    for (const t of h.syscalls) {
      const meta: TracingHookMeta = {
        shape: 'kprobe',
        ...this.base(h),
        functionName: t.functionName,
        args: parts.argMeta.map((a) => ({ ...a })),
      };
      const enterTable: HookTable = {
        category: t.enter.subsystem,
        name: t.enter.event,
        kind: 'plain',
        args: parts.args.map((a) => ({ ...a })),
        selectors: parts.selectors,
      };
      if (!ret) {
        this.push(h, enterTable, meta);
        continue;
      }
      if (!t.exit) {
        this.fail(h.source, h, `syscall ${t.name}: its sys_exit tracepoint was not resolved`);
        return;
      }
      if (h.returnArg) meta.returnType = h.returnArg.type;
      const enter = this.hooks.length;
      enterTable.kind = 'enter';
      enterTable.pairWith = enter + 1;
      this.push(h, enterTable, meta);
      this.push(
        h,
        {
          category: t.exit.subsystem,
          name: t.exit.event,
          kind: 'exit',
          pairWith: enter,
          args: [],
          ret,
          selectors: [],
        },
        undefined,
      );
    }
  }
}

/**
 * Compile one validated policy. Throws PolicyCompileError, listing every
 * problem, when the engine cannot express some part of it.
 */
export function compilePolicy(policy: TracingPolicy, ctx: CompileContext): CompiledPolicy {
  const c = new Compiler(policy, ctx);
  const out = c.run();
  if (!out) throw new PolicyCompileError(policy.name, c.problems);
  return out;
}
