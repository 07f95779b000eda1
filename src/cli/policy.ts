/**
 * `osprey policy add|list|delete|enable|disable|set-mode`: manage the
 * policies of the running agent through its API; `validate` checks files
 * with no agent (policy-validate.ts).
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { POLICY_BODY_LIMIT, policyTooLarge } from '../agent/api-limits.js';
import { DEFAULT_SOCKET, parseCommandLine } from '../agent/config.js';
import { describeFsError, expandPolicyPaths, UserError } from '../agent/fs-util.js';
import type { PolicyInfo } from '../agent/policies.js';
import { type ApiAnswer, apiCall } from './client.js';
import { isNetworkPolicy, networkAddedLine, renderNetworkPolicyTable } from './netpolicy-table.js';
import { commandUsage } from './usage.js';

const SUBCOMMANDS = ['add', 'list', 'delete', 'enable', 'disable', 'set-mode', 'validate'] as const;
type Sub = (typeof SUBCOMMANDS)[number];

export async function policyCommand(argv: string[]): Promise<number> {
  const { flags: f, positionals } = parseCommandLine(argv, {
    mode: { type: 'string' },
    output: { type: 'string', short: 'o' },
    socket: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (f.help) {
    process.stdout.write(`${commandUsage('policy')}\n`);
    return 0;
  }
  const [sub, ...args] = positionals;
  if (sub === undefined)
    throw new UserError('give a subcommand: add, list, delete, enable, disable, set-mode or validate', 2);
  if (!(SUBCOMMANDS as readonly string[]).includes(sub)) {
    throw new UserError(`unknown subcommand "${sub}"; give one of: ${SUBCOMMANDS.join(', ')}`, 2);
  }
  const socket = (f.socket as string | undefined) ?? DEFAULT_SOCKET;
  const mode = f.mode as string | undefined;
  if (mode !== undefined && sub !== 'add')
    throw new UserError('--mode goes with add; use set-mode NAME MODE', 2);
  if (mode !== undefined) checkMode(mode);
  if (f.output !== undefined && sub !== 'list') throw new UserError('-o goes with list', 2);

  switch (sub as Sub) {
    case 'validate': {
      if (f.socket !== undefined) throw new UserError('validate needs no agent: it takes no --socket', 2);
      if (args.length === 0)
        throw new UserError('validate takes one or more files or directories of policies', 2);
      // not in the CLI's bundle: it loads the policy compiler and the kernel's feature probe
      const { validatePolicies } = await import('./policy-validate.js');
      return validatePolicies(args);
    }
    case 'add':
      return addPath(socket, oneArg(args, 'FILE'), mode);
    case 'list':
      if (args.length) throw new UserError(`unexpected argument "${args[0]}"`, 2);
      return list(socket, (f.output as string | undefined) ?? 'text');
    case 'delete': {
      const name = oneArg(args, 'NAME');
      await call(socket, 'DELETE', `/v1/policies/${encodeURIComponent(name)}`);
      process.stdout.write(`policy "${name}" deleted\n`);
      return 0;
    }
    case 'enable': {
      const p = await call<PolicyInfo>(
        socket,
        'POST',
        `/v1/policies/${encodeURIComponent(oneArg(args, 'NAME'))}/enable`,
      );
      process.stdout.write(`policy "${p.name}" enabled (${p.mode} mode, ${plural(p.hooks, 'hook')})\n`);
      return 0;
    }
    case 'disable': {
      const p = await call<PolicyInfo>(
        socket,
        'POST',
        `/v1/policies/${encodeURIComponent(oneArg(args, 'NAME'))}/disable`,
      );
      process.stdout.write(
        `policy "${p.name}" disabled; it stays ${p.source === 'api' ? 'stored' : 'listed'} (osprey policy enable ${p.name} loads it again)\n`,
      );
      return 0;
    }
    case 'set-mode': {
      if (args.length !== 2) throw new UserError('set-mode takes NAME and MODE (monitor or enforce)', 2);
      const [name, m] = args as [string, string];
      checkMode(m);
      const p = await call<PolicyInfo>(
        socket,
        'PUT',
        `/v1/policies/${encodeURIComponent(name)}/mode?mode=${encodeURIComponent(m)}`,
      );
      process.stdout.write(`policy "${p.name}" is in ${p.mode} mode\n`);
      return 0;
    }
  }
}

/**
 * A file, or a directory's *.yaml and *.yml in name order: each policy is
 * added on its own (all of it or none), and one that fails does not stop the
 * ones after it. Exits 1 when any failed.
 */
async function addPath(socket: string, file: string, mode: string | undefined): Promise<number> {
  let isDir = false;
  try {
    isDir = statSync(file).isDirectory();
  } catch {
    // add() says why it cannot be read
  }
  if (!isDir) return add(socket, file, mode);
  const problems: string[] = [];
  const files = expandPolicyPaths([file], problems, 'policy add');
  if (problems.length) throw new UserError(problems.join('\n'));
  let failed = 0;
  for (const f of files) {
    try {
      await add(socket, f, mode);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      failed++;
      process.stderr.write(`osprey policy: ${f}: ${err.message}\n`);
    }
  }
  if (failed)
    process.stderr.write(`osprey policy: ${failed} of ${files.length} policies in ${file} not added\n`);
  return failed ? 1 : 0;
}

async function add(socket: string, file: string, mode: string | undefined): Promise<number> {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read ${file}: ${describeFsError(err)}`);
  }
  // the agent would refuse it, closing the connection while this still writes
  if (Buffer.byteLength(text) > POLICY_BODY_LIMIT) throw new UserError(policyTooLarge(abs));
  const q = new URLSearchParams({ source: abs });
  if (mode) q.set('mode', mode);
  const t0 = process.hrtime.bigint();
  const p = await call<PolicyInfo>(socket, 'POST', `/v1/policies?${q}`, {
    text,
    contentType: 'application/yaml',
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (isNetworkPolicy(p)) {
    process.stdout.write(`${networkAddedLine(p, ms)}\n`);
    return 0;
  }
  process.stdout.write(
    `policy "${p.name}" added: ${p.state}, ${p.mode} mode, ${plural(p.hooks, 'hook')} on ${plural(p.programs, 'tracepoint')}, ${bytes(p.memory_bytes)} of kernel memory; loaded in ${ms.toFixed(1)} ms\n`,
  );
  return 0;
}

async function list(socket: string, output: string): Promise<number> {
  if (output !== 'text' && output !== 'json') {
    throw new UserError(`unknown output format "${output}" for -o; give text or json`, 2);
  }
  const { policies } = await call<{ policies: PolicyInfo[] }>(socket, 'GET', '/v1/policies');
  if (output === 'json') {
    process.stdout.write(`${JSON.stringify(policies, null, 2)}\n`);
  } else {
    const network = policies.filter(isNetworkPolicy);
    const tracing = policies.filter((p) => !isNetworkPolicy(p));
    const parts = tracing.length || !network.length ? [renderPolicyTable(tracing)] : [];
    if (network.length) parts.push(renderNetworkPolicyTable(network));
    process.stdout.write(`${parts.join('\n\n')}\n`);
  }
  return 0;
}

/** The policies as a table, then the reason of each one in state error. */
export function renderPolicyTable(policies: PolicyInfo[]): string {
  if (policies.length === 0) return 'no policies; add one with: osprey policy add FILE';
  const head = [
    'NAME',
    'STATE',
    'MODE',
    'SOURCE',
    'HOOKS',
    'EVENTS',
    'ACTIONS',
    'MONITORED',
    'REFUSED',
    'RATE-LIMITED',
    'DROPS',
    'MEMORY',
  ];
  const rows = policies.map((p) => {
    const c = p.counters;
    const n = (v: number | undefined) => (c ? String(v ?? 0) : '-');
    return [
      p.name,
      p.state,
      p.mode,
      p.source,
      String(p.hooks),
      n(c?.events_posted),
      n(c?.actions_taken),
      n(c?.actions_monitored),
      n(c?.actions_refused),
      n(c?.rate_limited),
      n(c?.drops),
      c ? bytes(p.memory_bytes) : '-',
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const numeric = new Set([4, 5, 6, 7, 8, 9, 10, 11]);
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out = [line(head), ...rows.map(line)];
  const bad = policies.filter((p) => p.state === 'error');
  if (bad.length) {
    out.push('');
    for (const p of bad) out.push(`${p.name}: ${p.error ?? 'error'}`);
  }
  return out.join('\n');
}

/** Call the API; a refusal becomes a UserError holding every message the agent gave. */
async function call<T>(
  socket: string,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  p: string,
  body?: { text: string; contentType: string },
): Promise<T> {
  const res = await apiCall(socket, method, p, body);
  if (res.status >= 200 && res.status < 300) return JSON.parse(res.body) as T;
  throw refusal(res);
}

function refusal(res: ApiAnswer): UserError {
  let errors: string[] = [];
  let error = res.body.trim();
  try {
    const b = JSON.parse(res.body) as { error?: string; errors?: unknown };
    if (Array.isArray(b.errors)) errors = b.errors.filter((e): e is string => typeof e === 'string');
    if (typeof b.error === 'string') error = b.error;
  } catch {
    // not JSON: show it as it is
  }
  if (res.status === 400 && errors.length > 1) {
    return new UserError(
      `the policy is not valid (${errors.length} problems; nothing was loaded):\n${errors.map((e) => `  ${e}`).join('\n')}`,
    );
  }
  if (res.status === 400 && errors.length === 1) {
    return new UserError(`the policy is not valid (nothing was loaded):\n  ${errors[0]}`);
  }
  const msg = errors.length ? errors.join('\n') : error || `status ${res.status}`;
  return new UserError(msg);
}

function oneArg(args: string[], what: string): string {
  if (args.length === 0) throw new UserError(`give ${what}`, 2);
  if (args.length > 1) throw new UserError(`unexpected argument "${args[1]}"`, 2);
  return args[0]!;
}

function checkMode(m: string): void {
  if (m !== 'monitor' && m !== 'enforce') {
    throw new UserError(`mode "${m}" is neither monitor nor enforce`, 2);
  }
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
