/**
 * What the store indexes of an event: the fields its queries filter on
 * (kept in the event's block entry), and the processes it names, read from
 * the one payload every export event carries. A flow's process is its
 * osprey.exec_id and its policy the one that decided it.
 */
import { decidingPolicy } from '../events/flow.js';
import { type ExportEvent, eventType, type Process } from '../events/types.js';
import { nowNs, nsToParts, type TimeParts, timeParts } from './time.js';

export interface EventColumns extends TimeParts {
  type: string;
  /** the payload's process, when it is one the process cache knew (it has an exec_id) */
  process: Process | undefined;
  parent: Process | undefined;
  execId: string | null;
  binary: string | null;
  policyName: string | null;
}

function asProcess(v: unknown): Process | undefined {
  if (v === null || typeof v !== 'object') return undefined;
  const p = v as Partial<Process>;
  return typeof p.exec_id === 'string' && p.exec_id !== '' ? (p as Process) : undefined;
}

/** The process a flow names (osprey.exec_id), so that the process's history holds its connections. */
function flowExecId(flow: Record<string, unknown>): string | null {
  const o = flow['osprey'] as { exec_id?: unknown } | undefined;
  return typeof o?.exec_id === 'string' && o.exec_id !== '' ? o.exec_id : null;
}

export function eventColumns(ev: ExportEvent): EventColumns {
  const type = eventType(ev);
  const payload = (ev as Record<string, unknown>)[type];
  const body = payload !== null && typeof payload === 'object' ? (payload as Record<string, unknown>) : {};
  const process = asProcess(body['process']);
  const parent = asProcess(body['parent']);
  const policy = type === 'flow' ? decidingPolicy(body) : body['policy_name'];
  const c: EventColumns = {
    sec: 0,
    nsec: 0,
    type,
    process,
    parent,
    execId: process?.exec_id ?? (type === 'flow' ? flowExecId(body) : null),
    binary: process && typeof process.binary === 'string' ? process.binary : null,
    policyName: typeof policy === 'string' && policy !== '' ? policy : null,
  };
  // no time of its own: now
  if (typeof ev.time !== 'string' || !timeParts(ev.time, c)) nsToParts(nowNs(), c);
  return c;
}
