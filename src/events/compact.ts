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

function binaryOf(p: Process): string {
  return p.binary !== '' ? p.binary : `[pid ${p.pid}]`;
}

/**
 * One human line per event, in the spirit of `tetra getevents -o compact`:
 *   🚀 process /usr/bin/curl -s https://example.com
 *   💥 exit    /usr/bin/curl -s https://example.com 0
 *   💥 exit    /usr/bin/sleep 100 SIGKILL
 * Types this renderer does not know show as "❓ <type>" with the process
 * they concern, when they name one.
 */
export function renderCompact(ev: ExportEvent): string {
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
