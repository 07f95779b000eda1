/**
 * `osprey process EXEC_ID`: a process from the agent's event store with its
 * ancestors, its descendants and its events; as text, an indented tree
 * (ancestors above it, descendants below) followed by the events.
 */
import { DEFAULT_SOCKET, parseCommandLine } from '../agent/config.js';
import { UserError } from '../agent/fs-util.js';
import { renderCompact } from '../events/index.js';
import { printable } from '../events/printable.js';
import type { ExportEvent } from '../events/types.js';
import type { StoredProcess } from '../store/reader.js';
import { answerError, apiCall } from './client.js';
import { commandUsage } from './usage.js';

/** A process of the answer: the store's fields (its whole process object is not used here), descendants with their depth. */
export type TreeProcess = Omit<StoredProcess, 'process'> & { depth?: number };

export interface ProcessTreeAnswer {
  process: TreeProcess;
  ancestors: TreeProcess[];
  children: TreeProcess[];
  descendants: TreeProcess[];
  events: ExportEvent[];
}

export async function processCommand(argv: string[]): Promise<number> {
  const { flags: f, positionals } = parseCommandLine(argv, {
    output: { type: 'string', short: 'o' },
    events: { type: 'string' },
    socket: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (f.help) {
    process.stdout.write(`${commandUsage('process')}\n`);
    return 0;
  }
  const output = (f.output as string | undefined) ?? 'text';
  if (output !== 'text' && output !== 'json') {
    throw new UserError(`unknown output format "${output}" for -o; give text or json`, 2);
  }
  if (positionals.length !== 1) {
    throw new UserError(
      positionals.length === 0
        ? 'give the exec_id of a process (from an event, or osprey events --since 1h -o json)'
        : `give one exec_id, not ${positionals.length}`,
      2,
    );
  }
  const execId = positionals[0]!;
  const socket = (f.socket as string | undefined) ?? DEFAULT_SOCKET;
  const q = typeof f.events === 'string' ? `?events=${encodeURIComponent(f.events)}` : '';
  const res = await apiCall(
    socket,
    'GET',
    `/v1/processes/${encodeURIComponent(execId)}${q}`,
    undefined,
    60_000,
  );
  if (res.status !== 200) throw answerError(res);
  const body = res.body;
  if (output === 'json') {
    process.stdout.write(`${JSON.stringify(JSON.parse(body), null, 2)}\n`);
  } else {
    process.stdout.write(`${renderProcessTree(JSON.parse(body) as ProcessTreeAnswer)}\n`);
  }
  return 0;
}

function describe(p: TreeProcess): string {
  const args = p.arguments
    ? ` ${p.arguments.length > 80 ? `${p.arguments.slice(0, 77)}...` : p.arguments}`
    : '';
  let end = '';
  if (p.exit_signal) end = `, killed by ${p.exit_signal}`;
  else if (p.exit_time) end = `, exited ${p.exit_status ?? 0}`;
  return `${p.binary || '?'}${args}  (pid ${p.pid}${end})`;
}

/**
 * The tree as text: each ancestor one level deeper than its parent, the
 * process marked with "*", its descendants below it, then its events.
 */
export function renderProcessTree(t: ProcessTreeAnswer): string {
  const out: string[] = [];
  // level 0 is the oldest ancestor the store knows; each level is indented 3 more
  const at = (level: number) => (level === 0 ? '' : `${'   '.repeat(level - 1)}└─ `);
  const chain = [...t.ancestors].reverse();
  chain.forEach((a, i) => {
    out.push(`${at(i)}${describe(a)}`);
  });
  const base = chain.length;
  out.push(`${at(base)}* ${describe(t.process)}`);
  const under = ' '.repeat(base * 3 + 2);
  out.push(`${under}exec_id ${t.process.exec_id}`);
  if (t.process.start_time) out.push(`${under}started ${t.process.start_time}`);

  // descendants, grouped by parent, drawn below the process
  const byParent = new Map<string, TreeProcess[]>();
  for (const d of t.descendants) {
    const k = d.parent_exec_id ?? '';
    const l = byParent.get(k);
    if (l) l.push(d);
    else byParent.set(k, [d]);
  }
  const walk = (parent: string, prefix: string, seen: Set<string>) => {
    const kids = byParent.get(parent) ?? [];
    kids.forEach((k, i) => {
      if (seen.has(k.exec_id)) return;
      seen.add(k.exec_id);
      const last = i === kids.length - 1;
      out.push(`${prefix}${last ? '└─ ' : '├─ '}${describe(k)}`);
      walk(k.exec_id, `${prefix}${last ? '   ' : '│  '}`, seen);
    });
  };
  walk(t.process.exec_id, '   '.repeat(base), new Set([t.process.exec_id]));

  out.push('');
  out.push(`Events of this process (${t.events.length})`);
  if (t.events.length === 0) out.push('  none in the store');
  for (const ev of t.events) {
    let line: string;
    try {
      line = renderCompact(ev);
    } catch {
      line = JSON.stringify(ev);
    }
    out.push(`  ${typeof ev.time === 'string' ? `${ev.time}  ` : ''}${line}`);
  }
  // the processes' arguments are theirs to choose: no control character reaches the terminal
  return out.map(printable).join('\n');
}
