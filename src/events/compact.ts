import { X86_64_SYSCALL_NUMBERS } from '../policy/syscall-numbers.js';
import { type FlowEvent, flowOf, renderFlowCompact } from './flow.js';
import { printable } from './printable.js';
import type {
  EventProcess,
  KprobeAction,
  KprobeArgument,
  ProcessKprobe,
  ProcessTracepoint,
} from './tracing.js';
import { type ExportEvent, eventType, type Process, type ProcessExec, type ProcessExit } from './types.js';

/** The `process` of whatever payload the event carries, if it has one. */
export function payloadProcess(ev: ExportEvent): Process | undefined {
  const payload = (ev as Record<string, unknown>)[eventType(ev)];
  if (payload === null || typeof payload !== 'object') return undefined;
  const p = (payload as { process?: unknown }).process;
  if (p === null || typeof p !== 'object') return undefined;
  return p as Process;
}

function words(...parts: (string | number | undefined)[]): string {
  let s = '';
  for (const p of parts) {
    if (p === undefined || p === '') continue;
    s = s === '' ? `${p}` : `${s} ${p}`;
  }
  return s;
}

function binaryOf(p: Process | EventProcess): string {
  return 'binary' in p && p.binary !== '' ? p.binary : `[pid ${p.pid}]`;
}

/** An event label as Tetragon's CLI pads it (%-7s). */
function label(emoji: string, name: string): string {
  return `${emoji} ${name.padEnd(7)}`;
}

function stringOf(a: KprobeArgument | undefined): string | undefined {
  return a && 'string_arg' in a ? a.string_arg : undefined;
}

function fileOf(a: KprobeArgument | undefined): string | undefined {
  return a && 'file_arg' in a ? a.file_arg.path : undefined;
}

function numberOf(a: KprobeArgument | undefined): string | undefined {
  if (!a) return undefined;
  if ('int_arg' in a) return String(a.int_arg);
  if ('uint_arg' in a) return String(a.uint_arg);
  if ('size_arg' in a) return a.size_arg;
  if ('long_arg' in a) return a.long_arg;
  return undefined;
}

/** "__x64_sys_openat" -> "sys_openat"; other names as they are. */
function syscallOf(fn: string): string {
  const m = /^__[a-z0-9]+_sys_(.+)$/.exec(fn);
  return m ? `sys_${m[1]}` : fn;
}

let syscallNames: Map<number, string> | undefined;

function syscallName(id: number, abi: string): string {
  if (abi !== 'x64') return 'unknown';
  if (!syscallNames) {
    syscallNames = new Map(Object.entries(X86_64_SYSCALL_NUMBERS).map(([name, nr]) => [nr, name]));
  }
  return syscallNames.get(id) ?? 'unknown';
}

/** What enforcement the event reports, after the line (nothing for Post); one monitor mode held back or the engine refused, as such. */
function enforced(
  action: KprobeAction,
  monitored?: KprobeAction,
  refused?: KprobeAction,
): string | undefined {
  if (monitored !== undefined && action === 'KPROBE_ACTION_POST') {
    const would = enforced(monitored);
    return would === undefined ? undefined : `👁 monitor: would ${would}`;
  }
  if (refused !== undefined && action === 'KPROBE_ACTION_POST') {
    const would = enforced(refused);
    return would === undefined ? undefined : `🛡 refused: ${would} (protected target)`;
  }
  switch (action) {
    case 'KPROBE_ACTION_SIGKILL':
      return '☠️ SIGKILL';
    case 'KPROBE_ACTION_SIGNAL':
      return '☠️ signal';
    case 'KPROBE_ACTION_NOTIFYENFORCER':
      return '☠️ enforcer';
    default:
      return undefined;
  }
}

function kprobeLine(k: ProcessKprobe): string {
  const bin = binaryOf(k.process);
  const a = k.args ?? [];
  let line: string;
  switch (syscallOf(k.function_name)) {
    case 'sys_write':
    case 'sys_read': {
      const n = numberOf(a[2]);
      const what = k.function_name.endsWith('write') ? label('📝', 'write') : label('📚', 'read');
      line = words(what, bin, fileOf(a[0]), n === undefined ? undefined : `${n} bytes`);
      break;
    }
    case 'sys_openat':
      line = words(label('📬', 'openat'), bin, stringOf(a[1]));
      break;
    case 'sys_open':
      line = words(label('📬', 'open'), bin, stringOf(a[0]));
      break;
    case 'sys_close':
      line = words(label('📪', 'close'), bin, fileOf(a[0]));
      break;
    case 'sys_setuid':
      line = words(label('🔑', 'setuid'), bin, numberOf(a[0]));
      break;
    case 'sys_setgid':
      line = words(label('🔑', 'setgid'), bin, numberOf(a[0]));
      break;
    case 'sys_mount':
      line = words(label('💾', 'mount'), bin, stringOf(a[0]), stringOf(a[1]));
      break;
    case 'sys_setns':
      line = words(label('🔧', 'setns'), bin);
      break;
    default:
      line = words(label('☎ ', 'syscall'), bin, k.function_name);
  }
  return words(line, enforced(k.action, k.monitored_action, k.refused_action));
}

function tracepointLine(t: ProcessTracepoint): string {
  const bin = binaryOf(t.process);
  let line: string;
  if (t.subsys === 'raw_syscalls' && t.event === 'sys_enter') {
    const a = t.args?.[0];
    const name = a && 'syscall_id' in a ? syscallName(a.syscall_id.id, a.syscall_id.abi) : 'unknown';
    line = words(label('☎ ', 'syscall'), bin, name);
  } else {
    line = words(label('⁉️', 'tracepoint'), bin, t.subsys, t.event);
  }
  return words(line, enforced(t.action, t.monitored_action, t.refused_action));
}

/**
 * One human line per event, in the spirit of `tetra getevents -o compact`:
 *   🚀 process /usr/bin/curl -s https://example.com
 *   💥 exit    /usr/bin/curl -s https://example.com 0
 *   💥 exit    /usr/bin/sleep 100 SIGKILL
 *   📬 openat  /usr/bin/cat /etc/shadow ☠️ SIGKILL
 *   ☎  syscall /usr/bin/curl lseek
 *   ⁉️ tracepoint /usr/bin/curl syscalls sys_enter_lseek
 * Tracing events name the process by its binary only, as Tetragon's do,
 * and end with ☠️ and the enforcement when one was taken.
 * Types this renderer does not know show as "❓ <type>" with the process
 * they concern, when they name one.
 */
export function renderCompact(ev: ExportEvent): string {
  // argv and paths are the watched processes' to choose: no control character reaches a terminal
  return printable(compactLine(ev));
}

function compactLine(ev: ExportEvent): string {
  // the union's open member (other sensors' events) defeats `in` narrowing
  const exec = (ev as { process_exec?: ProcessExec }).process_exec;
  if (exec) {
    const p = exec.process;
    return words('🚀 process', binaryOf(p), p.arguments);
  }
  const x = (ev as { process_exit?: ProcessExit }).process_exit;
  if (x) {
    const p = x.process;
    return words('💥 exit   ', binaryOf(p), p.arguments, x.signal ?? x.status ?? 0);
  }
  const kprobe = (ev as { process_kprobe?: ProcessKprobe }).process_kprobe;
  if (kprobe?.process) return kprobeLine(kprobe);
  const tp = (ev as { process_tracepoint?: ProcessTracepoint }).process_tracepoint;
  if (tp?.process) return tracepointLine(tp);
  const flow = flowOf(ev);
  if (flow?.IP && flow.l4 && flow.source && flow.destination) {
    return `🌐 flow    ${renderFlowCompact(ev as unknown as FlowEvent)}`;
  }
  const type = eventType(ev);
  const p = payloadProcess(ev);
  const fn = (ev as Record<string, { function_name?: unknown } | undefined>)[type]?.function_name;
  return words(
    `❓ ${type}`,
    p ? binaryOf(p) : undefined,
    p?.arguments,
    typeof fn === 'string' ? fn : undefined,
  );
}
