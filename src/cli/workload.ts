/** `osprey workload list|delete`: the labelled cgroups of the running agent. */
import { DEFAULT_SOCKET, parseCommandLine } from '../agent/config.js';
import { UserError } from '../agent/fs-util.js';
import type { WorkloadInfo } from '../agent/workloads.js';
import { labelsText } from '../workload/labels.js';
import { apiCall } from './client.js';
import { commandUsage } from './usage.js';

export async function workloadCommand(argv: string[]): Promise<number> {
  const { flags: f, positionals } = parseCommandLine(argv, {
    output: { type: 'string', short: 'o' },
    socket: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (f.help) {
    process.stdout.write(`${commandUsage('workload')}\n`);
    return 0;
  }
  const socket = (f.socket as string | undefined) ?? DEFAULT_SOCKET;
  const [sub, ...args] = positionals;
  switch (sub) {
    case 'list': {
      if (args.length) throw new UserError(`unexpected argument "${args[0]}"`, 2);
      const output = (f.output as string | undefined) ?? 'text';
      if (output !== 'text' && output !== 'json') throw new UserError(`unknown output format "${output}"`, 2);
      const { workloads } = await call<{ workloads: WorkloadInfo[] }>(socket, 'GET', '/v1/workloads');
      process.stdout.write(
        output === 'json' ? `${JSON.stringify(workloads, null, 2)}\n` : `${table(workloads)}\n`,
      );
      return 0;
    }
    case 'delete': {
      if (args.length !== 1) throw new UserError('give the workload NAME', 2);
      const name = args[0]!;
      await call(socket, 'DELETE', `/v1/workloads/${encodeURIComponent(name)}`);
      process.stdout.write(`workload "${name}" deleted\n`);
      return 0;
    }
    case undefined:
      throw new UserError('give a subcommand: list or delete', 2);
    default:
      throw new UserError(`unknown subcommand "${sub}"; give list or delete`, 2);
  }
}

function table(ws: WorkloadInfo[]): string {
  if (ws.length === 0) return 'no workloads; start one with: osprey run --label app=NAME -- CMD';
  const head = ['NAME', 'LABELS', 'IDENTITY', 'SOURCE', 'PROCESSES', 'CGROUP'];
  const rows = ws.map((w) => [
    w.name,
    labelsText(w.labels),
    String(w.identity),
    w.source,
    w.populated ? 'yes' : 'no',
    w.cgroup_path,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

async function call<T>(socket: string, method: 'GET' | 'DELETE', p: string): Promise<T> {
  const res = await apiCall(socket, method, p);
  if (res.status >= 200 && res.status < 300) return JSON.parse(res.body) as T;
  let msg = res.body.trim();
  try {
    msg = (JSON.parse(res.body) as { error?: string }).error ?? msg;
  } catch {}
  throw new UserError(msg || `status ${res.status}`);
}
