/**
 * The `osprey` command line: dispatches to one file per command. Usage
 * errors exit 2 with the usage; other failures exit 1 with one line saying
 * what went wrong and what to do.
 */
// Commands are imported when run: a client command must not pay for loading
// the agent (fastify, the native addon, every sensor) before it can talk to it.
import { UserError } from '../agent/fs-util.js';
import { COMMANDS, type Command, commandUsage, mainUsage } from './usage.js';
import { versionCommand } from './version.js';

export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    process.stderr.write(`${mainUsage()}\n`);
    return 2;
  }
  if (first === '-h' || first === '--help') return helpCommand([]);
  if (first === '--version' || first === '-V') return versionCommand();
  if (!isCommand(first)) {
    const cmd = rest.find(isCommand);
    const what = !first.startsWith('-')
      ? `unknown command "${first}"`
      : cmd !== undefined
        ? `${first}: flags go after the command (osprey ${cmd} ... ${first} ...)`
        : `unknown flag ${first}`;
    process.stderr.write(`osprey: ${what}\n\n${mainUsage()}\n`);
    return 2;
  }
  try {
    switch (first) {
      case 'agent':
        return await (await import('./agent.js')).agentCommand(rest);
      case 'events':
        return await (await import('./events.js')).eventsCommand(rest);
      case 'status':
        return await (await import('./status.js')).statusCommand(rest);
      case 'policy':
        return await (await import('./policy.js')).policyCommand(rest);
      case 'run':
        return await (await import('./run.js')).runCommand(rest);
      case 'flows':
        return await (await import('./flows.js')).flowsCommand(rest);
      case 'workload':
        return await (await import('./workload.js')).workloadCommand(rest);
      case 'process':
        return await (await import('./process.js')).processCommand(rest);
      case 'version':
        if (rest.length) throw new UserError(`unexpected argument "${rest[0]}"`, 2);
        return versionCommand();
      case 'help':
        return helpCommand(rest);
    }
  } catch (err) {
    return fail(first, err);
  }
}

function helpCommand(args: string[]): number {
  const [topic, ...extra] = args;
  if (topic === undefined) {
    process.stdout.write(`${mainUsage()}\n`);
    return 0;
  }
  if (!isCommand(topic) || extra.length) {
    process.stderr.write(`osprey help: unknown command "${topic}"\n\n${mainUsage()}\n`);
    return 2;
  }
  process.stdout.write(`${commandUsage(topic)}\n`);
  return 0;
}

function fail(cmd: Command, err: unknown): number {
  if (err instanceof UserError) {
    process.stderr.write(`osprey ${cmd}: ${err.message}\n`);
    if (err.exitCode === 2) process.stderr.write(`\n${commandUsage(cmd)}\n`);
    return err.exitCode;
  }
  const e = err as Error;
  const detail = process.env.OSPREY_DEBUG ? (e.stack ?? e.message) : (e?.message ?? String(err));
  process.stderr.write(`osprey ${cmd}: ${detail}\n`);
  return 1;
}

function isCommand(s: string): s is Command {
  return (COMMANDS as readonly string[]).includes(s);
}
