/**
 * `osprey run --label app=web [--name N] -- CMD ARGS`: start CMD as a
 * labelled workload. The agent creates a managed cgroup with the labels
 * (POST /v1/workloads); this process moves itself into it (its pid into
 * cgroup.procs), so that CMD starts inside it and everything CMD starts
 * stays inside it; then it runs CMD with the terminal and the signals it
 * gets, and exits as CMD did (its exit code, or the signal that ended it).
 * The agent removes the cgroup once it is empty.
 *
 * Node has no execve() before v22.15, so this process stays as CMD's parent
 * (in the same cgroup) instead of becoming CMD; where process.execve exists
 * it is used, and the workload is exactly CMD.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_SOCKET } from '../agent/config.js';
import { describeFsError, UserError } from '../agent/fs-util.js';
import type { WorkloadInfo } from '../agent/workloads.js';
import { parseLabelArgs } from '../workload/labels.js';
import { apiCall } from './client.js';
import { commandUsage } from './usage.js';

interface RunArgs {
  labels: string[];
  name?: string;
  socket?: string;
  help: boolean;
  command: string[];
}

/** Flags up to `--` or the first argument that is not a flag; the rest is the command. */
export function parseRunArgs(argv: string[]): RunArgs {
  const out: RunArgs = { labels: [], help: false, command: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      out.command = argv.slice(i + 1);
      return out;
    }
    if (!a.startsWith('-') || a === '-') {
      out.command = argv.slice(i);
      return out;
    }
    const eq = a.indexOf('=');
    const flag = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const inline = a.startsWith('--') && eq > 0 ? a.slice(eq + 1) : undefined;
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined) throw new UserError(`flag ${flag} needs a value`, 2);
      return v;
    };
    switch (flag) {
      case '-l':
      case '--label':
        out.labels.push(value());
        break;
      case '--name':
        out.name = value();
        break;
      case '--socket':
        out.socket = value();
        break;
      case '-h':
      case '--help':
        out.help = true;
        break;
      default:
        throw new UserError(`unknown flag ${flag}`, 2);
    }
  }
  return out;
}

export async function runCommand(argv: string[]): Promise<number> {
  const a = parseRunArgs(argv);
  if (a.help) {
    process.stdout.write(`${commandUsage('run')}\n`);
    return 0;
  }
  if (a.command.length === 0)
    throw new UserError('give the command to run: osprey run --label app=web -- CMD ARGS', 2);
  if (a.labels.length === 0) throw new UserError('give the workload at least one --label key=value', 2);
  let labels: Record<string, string>;
  try {
    labels = parseLabelArgs(a.labels);
  } catch (err) {
    throw new UserError((err as Error).message, 2);
  }
  const socket = a.socket ?? DEFAULT_SOCKET;
  const name = a.name ?? defaultName(a.command[0]!);
  const res = await apiCall(socket, 'POST', '/v1/workloads', {
    text: JSON.stringify({ name, labels }),
    contentType: 'application/json',
  });
  if (res.status !== 201)
    throw new UserError(`the agent did not create the workload: ${errorOf(res.body, res.status)}`);
  const w = JSON.parse(res.body) as WorkloadInfo;
  try {
    writeFileSync(path.join(w.cgroup_path, 'cgroup.procs'), `${process.pid}\n`);
  } catch (err) {
    // nothing joined it: give it back now rather than after the agent's grace period
    await apiCall(socket, 'DELETE', `/v1/workloads/${encodeURIComponent(w.name)}`).catch(() => undefined);
    throw new UserError(
      `cannot join workload cgroup ${w.cgroup_path}: ${describeFsError(err)}; osprey run needs root, as the agent does`,
    );
  }
  return exec(a.command);
}

/** Run the command with this terminal; resolve to its exit status (or re-raise its signal). */
function exec(command: string[]): Promise<number> {
  const [file, ...args] = command as [string, ...string[]];
  const execve = (
    process as unknown as { execve?: (file: string, args: string[], env: NodeJS.ProcessEnv) => never }
  ).execve;
  if (typeof execve === 'function' && path.isAbsolute(file)) {
    execve(file, [file, ...args], process.env);
  }
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: 'inherit' });
    // the terminal sends SIGINT/SIGQUIT to the whole process group: let the child decide, and pass on the rest
    const forward = (sig: NodeJS.Signals) => () => {
      if (sig !== 'SIGINT' && sig !== 'SIGQUIT') child.kill(sig);
    };
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'];
    const handlers = signals.map((s) => [s, forward(s)] as const);
    for (const [s, h] of handlers) process.on(s, h);
    child.on('error', (err: NodeJS.ErrnoException) => {
      for (const [s, h] of handlers) process.off(s, h);
      const code = err.code === 'ENOENT' ? 127 : 126;
      process.stderr.write(
        `osprey run: ${file}: ${err.code === 'ENOENT' ? 'command not found' : describeFsError(err)}\n`,
      );
      resolve(code);
    });
    child.on('exit', (code, signal) => {
      for (const [s, h] of handlers) process.off(s, h);
      if (signal) {
        // end the same way, so that a shell sees what it would have seen of CMD
        process.kill(process.pid, signal);
        setTimeout(() => resolve(128 + (os.constants.signals[signal] ?? 0)), 100).unref();
        return;
      }
      resolve(code ?? 0);
    });
  });
}

/** The command's name and this pid: "curl-4242". */
function defaultName(cmd: string): string {
  const base = path
    .basename(cmd)
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 100);
  return `${base || 'run'}-${process.pid}`;
}

function errorOf(body: string, status: number): string {
  try {
    return (JSON.parse(body) as { error?: string }).error ?? `status ${status}`;
  } catch {
    return body.trim() || `status ${status}`;
  }
}
