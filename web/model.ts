/**
 * What the pages know about events, processes and flows, without the DOM:
 * the one-line description of an event, the bounded pause buffer, the
 * process index built from a live stream, the flow graph and the parsing of
 * policy validation errors. Unit tests run this file under Node.
 */
import type { KprobeArgument } from '../src/events/tracing.js';
import type { ExportEvent, Process } from '../src/events/types.js';
import type { HubbleEndpoint, HubbleFlow } from '../src/sensors/network/decode.js';
import type { StoredProcess } from '../src/store/reader.js';

export type { ExportEvent, HubbleFlow, Process };

/** The top-level payload key of an event (process_exec, process_kprobe ...). */
export function eventType(ev: ExportEvent): string {
  for (const k of Object.keys(ev)) {
    if (k !== 'node_name' && k !== 'time' && k !== 'aggregation_info') return k;
  }
  return 'unknown';
}

function payload(ev: ExportEvent): Record<string, unknown> | undefined {
  const p = (ev as Record<string, unknown>)[eventType(ev)];
  return p !== null && typeof p === 'object' ? (p as Record<string, unknown>) : undefined;
}

/** A process as events name it: the cache may not have known it (then only pid and tid). */
export type EventProcess = Partial<Process> & { pid: number };

export function eventProcess(ev: ExportEvent): EventProcess | undefined {
  const p = payload(ev)?.['process'];
  return p !== null && typeof p === 'object' && typeof (p as { pid?: unknown }).pid === 'number'
    ? (p as EventProcess)
    : undefined;
}

export function eventParent(ev: ExportEvent): Process | undefined {
  const p = payload(ev)?.['parent'];
  return p !== null && typeof p === 'object' ? (p as Process) : undefined;
}

export function eventPolicy(ev: ExportEvent): string | undefined {
  const n = payload(ev)?.['policy_name'];
  return typeof n === 'string' ? n : undefined;
}

/** ms since the epoch of an RFC 3339 time (its nanoseconds cut to ms); NaN when unparsable. */
export function timeMs(t: string | undefined): number {
  return t ? Date.parse(t) : Number.NaN;
}

/** The event's own time: an exit's time, else the envelope's. */
export function eventTime(ev: ExportEvent): string {
  const t = payload(ev)?.['time'];
  return typeof t === 'string' ? t : ev.time;
}

export type Severity = 'info' | 'notice' | 'danger';

export interface EventSummary {
  /** exec, exit, the syscall or tracepoint name */
  verb: string;
  /** the rest of the line: arguments, status, file, address */
  detail: string;
  /** the enforcement the kernel took or was asked to take (SIGKILL, signal ...) */
  enforcement?: string;
  severity: Severity;
}

/** "__x64_sys_openat" -> "openat". */
export function syscallName(fn: string): string {
  const m = /^__[a-z0-9]+_sys_(.+)$/.exec(fn);
  if (m) return m[1]!;
  return fn.startsWith('sys_') ? fn.slice(4) : fn;
}

/** One kprobe/tracepoint argument as a short text. */
export function argText(a: KprobeArgument): string {
  const label = a.label ? `${a.label}=` : '';
  let v: string;
  if ('string_arg' in a) v = JSON.stringify(a.string_arg);
  else if ('file_arg' in a) v = a.file_arg.path;
  else if ('int_arg' in a) v = String(a.int_arg);
  else if ('uint_arg' in a) v = String(a.uint_arg);
  else if ('size_arg' in a) v = a.size_arg;
  else if ('long_arg' in a) v = a.long_arg;
  else if ('sockaddr_arg' in a) {
    const s = a.sockaddr_arg;
    v =
      s.addr !== undefined
        ? `${s.addr}${s.port !== undefined ? `:${s.port}` : ''}`
        : (s.family ?? 'sockaddr');
  } else if ('bytes_arg' in a) v = `${a.bytes_arg.length} b64`;
  else if ('truncated_bytes_arg' in a) v = `${a.truncated_bytes_arg.orig_size} bytes (cut)`;
  else if ('syscall_id' in a) v = `syscall ${a.syscall_id.id}`;
  else v = '?';
  return label + v;
}

const ACTIONS: Record<string, string> = {
  KPROBE_ACTION_SIGKILL: 'SIGKILL',
  KPROBE_ACTION_SIGNAL: 'signal',
  KPROBE_ACTION_NOTIFYENFORCER: 'enforcer',
};

/** The class of an event's enforcement tag: taken (or a drop), or what monitor mode held back. */
export function enforcementClass(enforcement: string): string {
  // held back or refused: outlined, not the red of a kill that happened
  return enforcement.startsWith('monitor:') || enforcement.startsWith('refused:')
    ? 'tag tag-monitor'
    : 'tag tag-enforce';
}

/** A one-line description of any event; unknown types get their JSON, cut. */
export function describeEvent(ev: ExportEvent): EventSummary {
  const type = eventType(ev);
  const p = payload(ev) ?? {};
  const proc = eventProcess(ev);
  switch (type) {
    case 'process_exec':
      return {
        verb: 'exec',
        detail: `${proc?.binary ?? '?'}${proc?.arguments ? ` ${proc.arguments}` : ''}`,
        severity: 'info',
      };
    case 'process_exit': {
      const signal = typeof p['signal'] === 'string' ? (p['signal'] as string) : undefined;
      const status = typeof p['status'] === 'number' ? (p['status'] as number) : 0;
      return {
        verb: 'exit',
        detail: signal ? `killed by ${signal}` : `status ${status}`,
        severity: signal === 'SIGKILL' ? 'danger' : signal || status ? 'notice' : 'info',
      };
    }
    case 'process_kprobe':
    case 'process_tracepoint': {
      const args = Array.isArray(p['args']) ? (p['args'] as KprobeArgument[]) : [];
      const ret = p['return'] as KprobeArgument | undefined;
      const verb =
        type === 'process_kprobe'
          ? syscallName(String(p['function_name'] ?? '?'))
          : `${String(p['subsys'] ?? '?')}/${String(p['event'] ?? '?')}`;
      let detail = args.map(argText).join(' ');
      if (ret) detail += ` = ${argText(ret)}`;
      if (typeof p['message'] === 'string' && p['message']) detail = `${p['message']}: ${detail}`;
      const enforcement = ACTIONS[String(p['action'] ?? '')];
      // what a policy in monitor mode held back: shown, not alarmed
      const held = ACTIONS[String(p['monitored_action'] ?? '')];
      // what the engine would not do to PID 1, a kernel thread or the agent
      const refused = ACTIONS[String(p['refused_action'] ?? '')];
      return {
        verb,
        detail: detail.trim(),
        ...(enforcement
          ? { enforcement }
          : held
            ? { enforcement: `monitor: would ${held}` }
            : refused
              ? { enforcement: `refused: ${refused} (protected target)` }
              : {}),
        severity: enforcement ? 'danger' : 'notice',
      };
    }
    case 'flow': {
      const f = toFlow(ev);
      if (!f) break;
      const dropped = f.verdict === 'DROPPED';
      return {
        verb: 'flow',
        detail: f.Summary ?? `${f.IP?.source} -> ${f.IP?.destination} ${f.verdict}`,
        ...(dropped ? { enforcement: 'DROPPED' } : {}),
        severity: dropped ? 'danger' : 'info',
      };
    }
  }
  const text = JSON.stringify(p);
  return { verb: type, detail: text.length > 160 ? `${text.slice(0, 160)}…` : text, severity: 'info' };
}

// ---------------------------------------------------------------------------
// pause buffer

/**
 * What arrives while the view is paused: bounded, keeping the newest. What
 * it had to let go is counted, so the view can say how many events it never
 * showed.
 */
export class PauseBuffer<T> {
  private items: T[] = [];
  private head = 0;
  /** events let go because the buffer was full, since the last drain */
  dropped = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new Error(`pause buffer capacity ${capacity} must be a positive integer`);
    }
  }

  get size(): number {
    return this.items.length - this.head;
  }

  push(...xs: T[]): void {
    for (const x of xs) this.items.push(x);
    const over = this.size - this.capacity;
    if (over > 0) {
      this.head += over;
      this.dropped += over;
    }
    // compact now and then, so that the array does not grow without bound
    if (this.head > this.capacity) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  /** Everything buffered, oldest first, and how many were dropped; empties the buffer. */
  drain(): { items: T[]; dropped: number } {
    const out = { items: this.items.slice(this.head), dropped: this.dropped };
    this.items = [];
    this.head = 0;
    this.dropped = 0;
    return out;
  }
}

// ---------------------------------------------------------------------------
// processes

/** A process as the explorer shows it: the store's shape, also built from live events. */
export type ProcNode = Omit<StoredProcess, 'process'> & {
  /** the full process object of the last event that named it */
  process?: Partial<Process>;
};

/** A ProcNode from whatever the API gave: a store row, a Process, or a row with a `process`. */
export function toProcNode(x: unknown): ProcNode | undefined {
  if (x === null || typeof x !== 'object') return undefined;
  const o = x as Record<string, unknown>;
  const inner =
    o['process'] !== null && typeof o['process'] === 'object'
      ? (o['process'] as Record<string, unknown>)
      : undefined;
  const get = (k: string): unknown => o[k] ?? inner?.[k];
  const execId = get('exec_id');
  if (typeof execId !== 'string') return undefined;
  const n: ProcNode = {
    exec_id: execId,
    pid: Number(get('pid') ?? 0),
    binary: String(get('binary') ?? ''),
    arguments: String(get('arguments') ?? ''),
  };
  const parent = get('parent_exec_id');
  if (typeof parent === 'string' && parent) n.parent_exec_id = parent;
  const start = get('start_time');
  if (typeof start === 'string') n.start_time = start;
  for (const k of ['exit_time', 'exit_signal'] as const) {
    const v = o[k];
    if (typeof v === 'string') n[k] = v;
  }
  if (typeof o['exit_status'] === 'number') n.exit_status = o['exit_status'];
  n.process = (inner ?? o) as Partial<Process>;
  return n;
}

/** Does this search text match the process? A number is a pid, anything else a regex on binary and args. */
export function processMatcher(query: string): (n: ProcNode) => boolean {
  const q = query.trim();
  if (q === '') return () => true;
  if (/^\d+$/.test(q)) {
    const pid = Number(q);
    return (n) => n.pid === pid;
  }
  let re: RegExp;
  try {
    re = new RegExp(q);
  } catch (err) {
    throw new Error(`"${q}" is not a pid nor a valid regular expression: ${(err as Error).message}`);
  }
  return (n) => re.test(`${n.binary} ${n.arguments}`);
}

/**
 * Processes and their events as seen on a live stream, bounded: the oldest
 * processes are forgotten first, and each keeps its newest events.
 */
export class ProcessIndex {
  private readonly procs = new Map<string, ProcNode>();
  private readonly kids = new Map<string, Set<string>>();
  private readonly evs = new Map<string, ExportEvent[]>();
  /** processes forgotten to stay within the bound */
  evicted = 0;

  constructor(
    readonly maxProcesses = 5000,
    readonly maxEventsPerProcess = 200,
  ) {}

  get size(): number {
    return this.procs.size;
  }

  add(ev: ExportEvent): void {
    const type = eventType(ev);
    const p = eventProcess(ev);
    if (!p?.exec_id) return;
    const parent = eventParent(ev);
    if (parent?.exec_id) this.learn(parent);
    if (type === 'process_exec') {
      const anc = (payload(ev)?.['ancestors'] as Process[] | undefined) ?? [];
      for (const a of anc) if (a?.exec_id) this.learn(a);
    }
    const node = this.learn(p as Process);
    if (type === 'process_exit') {
      const x = payload(ev) ?? {};
      node.exit_time = typeof x['time'] === 'string' ? (x['time'] as string) : ev.time;
      if (typeof x['status'] === 'number') node.exit_status = x['status'] as number;
      if (typeof x['signal'] === 'string') node.exit_signal = x['signal'] as string;
    }
    let list = this.evs.get(p.exec_id);
    if (!list) {
      list = [];
      this.evs.set(p.exec_id, list);
    }
    list.push(ev);
    if (list.length > this.maxEventsPerProcess) list.splice(0, list.length - this.maxEventsPerProcess);
  }

  private learn(p: Partial<Process> & { exec_id: string }): ProcNode {
    let n = this.procs.get(p.exec_id);
    if (!n) {
      n = { exec_id: p.exec_id, pid: p.pid ?? 0, binary: p.binary ?? '', arguments: p.arguments ?? '' };
      this.procs.set(p.exec_id, n);
      this.evict();
    }
    if (p.binary) n.binary = p.binary;
    if (p.arguments !== undefined) n.arguments = p.arguments;
    if (p.pid) n.pid = p.pid;
    if (p.start_time) n.start_time = p.start_time;
    // prefer the fuller object: events of unknown processes carry only pid and tid
    if (!n.process || Object.keys(p).length >= Object.keys(n.process).length) n.process = p;
    if (p.parent_exec_id && p.parent_exec_id !== n.parent_exec_id) {
      if (n.parent_exec_id) this.kids.get(n.parent_exec_id)?.delete(n.exec_id);
      n.parent_exec_id = p.parent_exec_id;
      let set = this.kids.get(p.parent_exec_id);
      if (!set) {
        set = new Set();
        this.kids.set(p.parent_exec_id, set);
      }
      set.add(n.exec_id);
    }
    return n;
  }

  private evict(): void {
    while (this.procs.size > this.maxProcesses) {
      const oldest = this.procs.keys().next().value as string;
      const n = this.procs.get(oldest)!;
      this.procs.delete(oldest);
      this.evs.delete(oldest);
      if (n.parent_exec_id) this.kids.get(n.parent_exec_id)?.delete(oldest);
      this.evicted++;
    }
  }

  get(execId: string): ProcNode | undefined {
    return this.procs.get(execId);
  }

  events(execId: string): ExportEvent[] {
    return this.evs.get(execId) ?? [];
  }

  children(execId: string): ProcNode[] {
    return [...(this.kids.get(execId) ?? [])].flatMap((id) => {
      const n = this.procs.get(id);
      return n ? [n] : [];
    });
  }

  /** Parent first, up to the oldest known; stops on a loop. */
  ancestors(execId: string): ProcNode[] {
    const out: ProcNode[] = [];
    const seen = new Set([execId]);
    let cur = this.procs.get(execId)?.parent_exec_id;
    while (cur && !seen.has(cur)) {
      seen.add(cur);
      const n = this.procs.get(cur);
      if (!n) break;
      out.push(n);
      cur = n.parent_exec_id;
    }
    return out;
  }

  /** Children, then their children ... (depth 1 = child), breadth first, bounded. */
  descendants(execId: string, max = 1000): (ProcNode & { depth: number })[] {
    const out: (ProcNode & { depth: number })[] = [];
    const seen = new Set([execId]);
    let level = [execId];
    for (let depth = 1; level.length && out.length < max; depth++) {
      const next: string[] = [];
      for (const id of level) {
        for (const c of this.children(id)) {
          if (seen.has(c.exec_id)) continue;
          seen.add(c.exec_id);
          out.push({ ...c, depth });
          next.push(c.exec_id);
        }
      }
      level = next;
    }
    return out.slice(0, max);
  }

  /** Newest first. */
  search(query: string, limit = 100): ProcNode[] {
    const match = processMatcher(query);
    const out: ProcNode[] = [];
    for (const n of [...this.procs.values()].reverse()) {
      if (n.binary && match(n)) out.push(n);
      if (out.length >= limit) break;
    }
    return out;
  }
}

/** A key that names one event, to merge lists from the store and the live stream. */
export function eventKey(ev: ExportEvent): string {
  const p = eventProcess(ev);
  const x = payload(ev) ?? {};
  return `${eventType(ev)}|${ev.time}|${p?.exec_id ?? p?.pid ?? ''}|${String(x['function_name'] ?? x['event'] ?? '')}`;
}

// ---------------------------------------------------------------------------
// flows

/** One line of GET /v1/flows, as `hubble observe -o json` prints it. */
export interface FlowLine {
  flow: HubbleFlow;
  node_name?: string;
  time?: string;
}

/** The flow in a line that may or may not wrap it in {flow}. */
export function toFlow(x: unknown): HubbleFlow | undefined {
  if (x === null || typeof x !== 'object') return undefined;
  const o = x as Record<string, unknown>;
  const f = (o['flow'] ?? o) as Partial<HubbleFlow>;
  return f && typeof f === 'object' && f.IP && f.verdict ? (f as HubbleFlow) : undefined;
}

/** A readable name for one side of a flow: the workload, else its labels, else its address. */
export function endpointName(e: HubbleEndpoint | undefined, ip: string): string {
  if (e?.workload) return e.workload;
  const labels = (e?.labels ?? []).filter((l) => !l.startsWith('reserved:'));
  if (labels.length) return labels.join(',');
  const reserved = (e?.labels ?? []).find((l) => l.startsWith('reserved:'));
  if (ip) return reserved && reserved !== 'reserved:world' ? `${ip} (${reserved.slice(9)})` : ip;
  return reserved ? reserved.slice(9) : `identity ${e?.identity ?? '?'}`;
}

export function flowPorts(f: HubbleFlow): { proto: string; src: number; dst: number } {
  const l4 = f.l4?.TCP ?? f.l4?.UDP;
  return {
    proto: f.l4?.TCP ? 'TCP' : f.l4?.UDP ? 'UDP' : '?',
    src: l4?.source_port ?? 0,
    dst: l4?.destination_port ?? 0,
  };
}

export function flowPolicy(f: HubbleFlow): string {
  const refs = [
    ...(f.egress_denied_by ?? []),
    ...(f.ingress_denied_by ?? []),
    ...(f.egress_allowed_by ?? []),
    ...(f.ingress_allowed_by ?? []),
  ];
  return refs
    .map((r) => `${r.name}${r.rule ? ` ${r.rule}` : ''}${r.default_deny ? ' (default deny)' : ''}`)
    .join(', ');
}

export interface GraphNode {
  id: string;
  /** a workload of this host (it sent or took a flow itself) */
  local: boolean;
}

export interface GraphEdge {
  from: string;
  to: string;
  forwarded: number;
  dropped: number;
  /** "TCP/443", at most a few */
  ports: string[];
}

/** Which endpoint talks to which, with counts; dropped flows counted apart. */
export function flowGraph(flows: readonly HubbleFlow[]): { nodes: GraphNode[]; edges: GraphEdge[] } {
  const nodes = new Map<string, GraphNode>();
  const edges = new Map<string, GraphEdge>();
  const node = (id: string, local: boolean) => {
    const n = nodes.get(id);
    if (n) n.local ||= local;
    else nodes.set(id, { id, local });
  };
  for (const f of flows) {
    const from = endpointName(f.source, f.IP?.source ?? '');
    const to = endpointName(f.destination, f.IP?.destination ?? '');
    const egress = f.traffic_direction !== 'INGRESS';
    node(from, egress);
    node(to, !egress);
    const key = `${from}\u0000${to}`;
    let e = edges.get(key);
    if (!e) {
      e = { from, to, forwarded: 0, dropped: 0, ports: [] };
      edges.set(key, e);
    }
    if (f.verdict === 'DROPPED') e.dropped++;
    else e.forwarded++;
    const p = flowPorts(f);
    const port = `${p.proto}/${p.dst}`;
    if (!e.ports.includes(port) && e.ports.length < 4) e.ports.push(port);
  }
  return { nodes: [...nodes.values()], edges: [...edges.values()] };
}

// ---------------------------------------------------------------------------
// policy validation errors

export interface PolicyProblem {
  line?: number;
  col?: number;
  /** the YAML path, e.g. spec.kprobes[0].args[0].type */
  field?: string;
  message: string;
  /** the whole message as the agent sent it */
  text: string;
}

/** Split "FILE:LINE:COL: field: message (hint)" into its parts; other texts keep only a message. */
export function parsePolicyError(text: string): PolicyProblem {
  const m = /^(.*?):(\d+):(\d+): (.*)$/s.exec(text);
  if (!m) return { message: text, text };
  const rest = m[4]!;
  const f = /^([A-Za-z_][\w.[\]-]*): (.*)$/s.exec(rest);
  return {
    line: Number(m[2]),
    col: Number(m[3]),
    ...(f ? { field: f[1]! } : {}),
    message: f ? f[2]! : rest,
    text,
  };
}
