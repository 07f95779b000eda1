/**
 * process_kprobe and process_tracepoint events from the policy engine's
 * records, in the shape of Tetragon's export: the compiled policy's
 * per-hook metadata says which event a record makes, what its args are and
 * how each is written; the process cache supplies process and parent.
 */
import type { ArgType } from '../policy/arg-types.js';
import { ktimeToTime } from '../process/clock.js';
import type { TracingArg, TracingRecord } from '../sensors/tracing/decode.js';
import { type Piece, PiecedEvent, stringify } from './encode.js';
import { jsonString } from './json.js';
import type { ExportEvent, Process } from './types.js';

// ---------------------------------------------------------------------------
// metadata the policy compiler hands over

/** One arg a hook reads, as events carry it. */
export interface TracingArgMeta {
  /** the policy's arg type: decides the JSON field (int_arg, size_arg, file_arg...) */
  type: ArgType;
  label?: string;
  /**
   * read only because the engine needs it (the byte count of a char_buf the
   * policy did not declare): not part of the event
   */
  hidden?: boolean;
  /** char_buf: index in the hook's args of its byte count */
  sizeArg?: number;
}

interface HookMetaBase {
  /** where the hook is in the policy: "kprobes[0]" */
  hookId: string;
  args: TracingArgMeta[];
  message?: string;
  tags: string[];
}

/** A syscall kprobe: events keep the kprobe shape (process_kprobe). */
export interface KprobeHookMeta extends HookMetaBase {
  shape: 'kprobe';
  /** "__x64_sys_openat" */
  functionName: string;
  /** the returnArg's type, when the hook reads the return value */
  returnType?: ArgType;
}

/** A tracepoint: process_tracepoint. */
export interface TracepointHookMeta extends HookMetaBase {
  shape: 'tracepoint';
  subsys: string;
  event: string;
}

export type TracingHookMeta = KprobeHookMeta | TracepointHookMeta;

/** What the event builder needs of one compiled policy. */
export interface PolicyEventMeta {
  policyName: string;
  /** by index in PolicyTables.hooks; undefined for exit hooks (their events carry the enter hook's index) */
  hooks: (TracingHookMeta | undefined)[];
}

// ---------------------------------------------------------------------------
// event shapes

/**
 * One KprobeArgument: exactly one of the value fields, and the label the
 * policy gave. 64-bit integers are strings, as protojson writes them;
 * bytes are base64.
 */
export type KprobeArgument = (
  | { int_arg: number }
  | { uint_arg: number }
  | { long_arg: string }
  | { size_arg: string }
  | { string_arg: string }
  | { bytes_arg: string }
  | { truncated_bytes_arg: { bytes_arg: string; orig_size: string } }
  | { file_arg: { path: string } }
  | { sockaddr_arg: { family?: string; addr?: string; port?: number } }
  | { syscall_id: { id: number; abi: string } }
) & { label?: string };

export type KprobeAction =
  | 'KPROBE_ACTION_POST'
  | 'KPROBE_ACTION_SIGKILL'
  | 'KPROBE_ACTION_SIGNAL'
  | 'KPROBE_ACTION_NOTIFYENFORCER';

/** A process the cache did not know: what the record itself says. */
export interface UnknownProcess {
  pid: number;
  tid: number;
}

export type EventProcess = Process | UnknownProcess;

export interface ProcessKprobe {
  process: EventProcess;
  parent?: Process;
  function_name: string;
  args?: KprobeArgument[];
  return?: KprobeArgument;
  action: KprobeAction;
  /** the enforcement monitor mode held back (Osprey's; action then says Post) */
  monitored_action?: KprobeAction;
  /** the enforcement refused: its target was PID 1, a kernel thread or the agent (Osprey's; action then says Post) */
  refused_action?: KprobeAction;
  policy_name: string;
  message?: string;
  tags?: string[];
}

export interface ProcessTracepoint {
  process: EventProcess;
  parent?: Process;
  subsys: string;
  event: string;
  args?: KprobeArgument[];
  policy_name: string;
  action: KprobeAction;
  /** the enforcement monitor mode held back (Osprey's; action then says Post) */
  monitored_action?: KprobeAction;
  /** the enforcement refused: its target was PID 1, a kernel thread or the agent (Osprey's; action then says Post) */
  refused_action?: KprobeAction;
  message?: string;
  tags?: string[];
}

export type KprobeEvent = { process_kprobe: ProcessKprobe; node_name: string; time: string };
export type TracepointEvent = { process_tracepoint: ProcessTracepoint; node_name: string; time: string };

/** Where events find their processes: ProcessPipeline.cache. */
export interface ProcessLookup {
  get(pid: number): { readonly process: Process; thread(tid: number): Process } | undefined;
  byExecId(execId: string): { readonly brief: Process } | undefined;
}

// ---------------------------------------------------------------------------
// building

/**
 * The action an event reports: the enforcement when it was attempted
 * (taken, or tried and failed), otherwise Post. A kill that monitor mode
 * held back, or that was refused because the target was PID 1, a kernel
 * thread or the agent, reports Post: the event must not claim a kill that
 * did not happen (the policy's counters say what was held back).
 */
export function kprobeAction(rec: TracingRecord): KprobeAction {
  if (rec.actionResult !== 'taken' && rec.actionResult !== 'failed') return 'KPROBE_ACTION_POST';
  return actionOf(rec);
}

/**
 * The enforcement a policy in monitor mode held back, reported beside
 * action (which says Post: nothing was done) so that a policy can be
 * watched before it is enforced; undefined for any other record.
 */
export function monitoredAction(rec: TracingRecord): KprobeAction | undefined {
  return rec.actionResult === 'monitored' && rec.action !== 'none' ? actionOf(rec) : undefined;
}

/**
 * The enforcement refused because its target was PID 1, a kernel thread or
 * the agent itself, reported beside action (which says Post): the policy
 * matched and nothing was done, on purpose, which the event says rather
 * than leave a reader to wonder why a kill did not happen; undefined for
 * any other record.
 */
export function refusedAction(rec: TracingRecord): KprobeAction | undefined {
  return rec.actionResult === 'refused' && rec.action !== 'none' ? actionOf(rec) : undefined;
}

function actionOf(rec: TracingRecord): KprobeAction {
  switch (rec.action) {
    case 'sigkill':
      return 'KPROBE_ACTION_SIGKILL';
    case 'signal':
      return 'KPROBE_ACTION_SIGNAL';
    case 'notify-enforcer':
      return 'KPROBE_ACTION_NOTIFYENFORCER';
    default:
      return 'KPROBE_ACTION_POST';
  }
}

/** The syscall ABI Tetragon names in syscall_id. */
function syscallAbi(arch: string): string {
  return arch === 'x64' ? 'x64' : arch === 'arm64' ? 'arm64' : arch;
}

const FAMILIES: Readonly<Record<number, string>> = { 2: 'AF_INET', 10: 'AF_INET6' };

const SAFE = 2n ** 53n;

/** BigInt.asIntN(32, v) / asUintN(32, v) as a number, without a bigint operation for the usual small value. */
function int32(v: bigint, signed: boolean): number {
  if (v > -SAFE && v < SAFE) {
    const n = Number(v);
    return signed ? n | 0 : n >>> 0;
  }
  return Number(signed ? BigInt.asIntN(32, v) : BigInt.asUintN(32, v));
}

/** An int read by the engine as the JSON field its policy type calls for. */
function intArgument(type: ArgType, v: bigint): KprobeArgument {
  switch (type) {
    case 'int':
    case 'int8':
    case 'int16':
    case 'int32':
      return { int_arg: int32(v, true) };
    case 'uint8':
    case 'uint16':
    case 'uint32':
      return { uint_arg: int32(v, false) };
    case 'int64':
    case 'long':
      return { long_arg: BigInt.asIntN(64, v).toString() };
    case 'syscall64':
      return { syscall_id: { id: int32(v, false), abi: syscallAbi(process.arch) } };
    case 'fd':
      return { int_arg: int32(v, true) };
    default:
      // size_t, uint64, ulong
      return { size_arg: BigInt.asUintN(64, v).toString() };
  }
}

function argument(
  a: TracingArg,
  meta: TracingArgMeta | undefined,
  all: readonly TracingArg[],
): KprobeArgument {
  let out: KprobeArgument;
  switch (a.type) {
    case 'int':
      out = intArgument(meta?.type ?? 'int64', a.value);
      break;
    case 'string':
      out = { string_arg: a.value };
      break;
    case 'bytes': {
      const b64 = a.value.toString('base64');
      const size = meta?.sizeArg === undefined ? undefined : all[meta.sizeArg];
      const orig = size?.type === 'int' && size.value > 0n ? BigInt.asUintN(64, size.value) : undefined;
      out =
        a.truncated && orig !== undefined && orig > BigInt(a.value.length)
          ? { truncated_bytes_arg: { bytes_arg: b64, orig_size: orig.toString() } }
          : { bytes_arg: b64 };
      break;
    }
    case 'fd':
      // the descriptor's file, as Tetragon's file_arg; a number that names no open file stays a number
      out = a.path === undefined ? { int_arg: a.fd } : { file_arg: { path: a.path } };
      break;
    case 'sockaddr': {
      // protojson leaves out empty strings and zeros
      const s: { family?: string; addr?: string; port?: number } = {};
      const fam = FAMILIES[a.family];
      if (fam) s.family = fam;
      if (a.addr) s.addr = a.addr;
      if (a.port) s.port = a.port;
      out = { sockaddr_arg: s };
      break;
    }
  }
  if (meta?.label) out.label = meta.label;
  return out;
}

/**
 * An argument's JSON as JSON.stringify writes it: the usual ints and strings
 * straight from what they are, the rest from the argument's object.
 */
function argumentJson(a: TracingArg, arg: KprobeArgument, meta: TracingArgMeta | undefined): string {
  const label = meta?.label ? `,"label":${jsonString(meta.label)}` : '';
  if (a.type === 'string') return `{"string_arg":${jsonString(a.value)}${label}}`;
  if ('int_arg' in arg) return `{"int_arg":${arg.int_arg}${label}}`;
  if ('uint_arg' in arg) return `{"uint_arg":${arg.uint_arg}${label}}`;
  return stringify(arg);
}

/** The process of the record, with the record's thread, and its parent. */
function processes(rec: TracingRecord, lookup: ProcessLookup): { process: EventProcess; parent?: Process } {
  const entry = lookup.get(rec.pid);
  if (!entry) return { process: { pid: rec.pid, tid: rec.tid } };
  // cached Process objects are shared with other events: another thread's is a copy, kept by the cache
  const process = entry.thread(rec.tid);
  const pe = entry.process.parent_exec_id;
  const parent = pe === undefined ? undefined : lookup.byExecId(pe)?.brief;
  return parent ? { process, parent } : { process };
}

/**
 * One engine record as a process_kprobe (syscall kprobes) or
 * process_tracepoint (tracepoints) event. meta is the compiled policy's
 * (CompiledPolicy.meta); throws when the record names a hook the policy
 * does not have, which means it came from another policy.
 */
export function buildTracingEvent(
  rec: TracingRecord,
  meta: PolicyEventMeta,
  lookup: ProcessLookup,
  nodeName: string,
): KprobeEvent | TracepointEvent {
  const hook = meta.hooks[rec.hook];
  if (!hook) {
    throw new Error(
      `policy "${meta.policyName}": the record names hook ${rec.hook}, which is not an event hook of this policy`,
    );
  }
  const args: KprobeArgument[] = [];
  let argsJson = '';
  for (let i = 0; i < rec.args.length; i++) {
    const a = rec.args[i]!;
    const m = hook.args[i];
    if (m?.hidden) continue;
    const arg = argument(a, m, rec.args);
    argsJson += `${args.length ? ',' : ''}${argumentJson(a, arg, m)}`;
    args.push(arg);
  }
  const { process, parent } = processes(rec, lookup);
  const time = ktimeToTime(rec.ktime);
  const action = kprobeAction(rec);
  const held = monitoredAction(rec);
  const refused = refusedAction(rec);
  let actionText = `,"action":"${action}"`;
  if (held) actionText += `,"monitored_action":"${held}"`;
  if (refused) actionText += `,"refused_action":"${refused}"`;
  const text = hookText(hook, meta.policyName, nodeName);
  const argsText = args.length ? `,"args":[${argsJson}]` : '';
  if (hook.shape === 'kprobe') {
    // keys in the proto's field order, as protojson writes them
    const ev = { process } as ProcessKprobe;
    if (parent) ev.parent = parent;
    ev.function_name = hook.functionName;
    if (args.length) ev.args = args;
    let returnText = '';
    if (rec.ret !== undefined) {
      ev.return = intArgument(hook.returnType ?? 'long', rec.ret);
      returnText = `,"return":${stringify(ev.return)}`;
    }
    ev.action = action;
    if (held) ev.monitored_action = held;
    if (refused) ev.refused_action = refused;
    ev.policy_name = meta.policyName;
    if (hook.message) ev.message = hook.message;
    if (hook.tags.length) ev.tags = [...hook.tags];
    const own = `${text.head}${argsText}${returnText}${text.beforeAction}${actionText}${text.tail}"${time}"}`;
    return new BuiltKprobeEvent(ev, nodeName, time, linePieces(text.open, process, parent, own));
  } else {
    const ev = { process } as ProcessTracepoint;
    if (parent) ev.parent = parent;
    ev.subsys = hook.subsys;
    ev.event = hook.event;
    if (args.length) ev.args = args;
    ev.policy_name = meta.policyName;
    ev.action = action;
    if (held) ev.monitored_action = held;
    if (refused) ev.refused_action = refused;
    if (hook.message) ev.message = hook.message;
    if (hook.tags.length) ev.tags = [...hook.tags];
    const own = `${text.head}${argsText}${text.beforeAction}${actionText}${text.tail}"${time}"}`;
    return new BuiltTracepointEvent(ev, nodeName, time, linePieces(text.open, process, parent, own));
  }
}

/**
 * The pieces of a policy event's line, made where every value is at hand:
 * from one event of a hook to the next only the args, action and time
 * change (time is ours and ASCII: it needs no escape).
 */
function linePieces(open: string, process: EventProcess, parent: Process | undefined, own: string): Piece[] {
  return parent ? [open, process, ',"parent":', parent, own] : [open, process, own];
}

/** A process_kprobe event as buildTracingEvent makes it: its line's pieces kept with it. */
class BuiltKprobeEvent extends PiecedEvent implements KprobeEvent {
  readonly process_kprobe: ProcessKprobe;
  readonly node_name: string;
  readonly time: string;

  constructor(ev: ProcessKprobe, nodeName: string, time: string, pieces: Piece[]) {
    super(pieces);
    this.process_kprobe = ev;
    this.node_name = nodeName;
    this.time = time;
  }
}

/** A process_tracepoint event as buildTracingEvent makes it. */
class BuiltTracepointEvent extends PiecedEvent implements TracepointEvent {
  readonly process_tracepoint: ProcessTracepoint;
  readonly node_name: string;
  readonly time: string;

  constructor(ev: ProcessTracepoint, nodeName: string, time: string, pieces: Piece[]) {
    super(pieces);
    this.process_tracepoint = ev;
    this.node_name = nodeName;
    this.time = time;
  }
}

/** The text of a hook's events that is the same in every one of them. */
interface HookText {
  policyName: string;
  nodeName: string;
  /** up to the process */
  open: string;
  /** after the processes, up to the args */
  head: string;
  /** after the args (and return), before the action */
  beforeAction: string;
  /** after the action, up to the time */
  tail: string;
}

const HOOK_TEXT = new WeakMap<TracingHookMeta, HookText>();

function hookText(hook: TracingHookMeta, policyName: string, nodeName: string): HookText {
  const had = HOOK_TEXT.get(hook);
  if (had && had.policyName === policyName && had.nodeName === nodeName) return had;
  const policy = `,"policy_name":${jsonString(policyName)}`;
  const extra =
    (hook.message ? `,"message":${jsonString(hook.message)}` : '') +
    (hook.tags.length ? `,"tags":${stringify(hook.tags)}` : '');
  const end = `},"node_name":${jsonString(nodeName)},"time":`;
  const text: HookText =
    hook.shape === 'kprobe'
      ? {
          policyName,
          nodeName,
          open: '{"process_kprobe":{"process":',
          head: `,"function_name":${jsonString(hook.functionName)}`,
          beforeAction: '',
          tail: `${policy}${extra}${end}`,
        }
      : {
          policyName,
          nodeName,
          open: '{"process_tracepoint":{"process":',
          head: `,"subsys":${jsonString(hook.subsys)},"event":${jsonString(hook.event)}`,
          // policy_name comes before action in a tracepoint event
          beforeAction: policy,
          tail: `${extra}${end}`,
        };
  HOOK_TEXT.set(hook, text);
  return text;
}

/** Whether an export event is one of these (for sinks that treat them apart). */
export function isTracingEvent(ev: ExportEvent): ev is KprobeEvent | TracepointEvent {
  return 'process_kprobe' in ev || 'process_tracepoint' in ev;
}
