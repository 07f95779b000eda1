/** `osprey status`: the running agent's status, as text or JSON. */
import { DEFAULT_SOCKET, parseFlags } from '../agent/config.js';
import { UserError } from '../agent/fs-util.js';
import { type AgentStatus, renderStatusText } from '../agent/status.js';
import { answerError, apiCall } from './client.js';
import { commandUsage } from './usage.js';

export async function statusCommand(argv: string[]): Promise<number> {
  const f = parseFlags(argv, {
    output: { type: 'string', short: 'o' },
    socket: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (f.help) {
    process.stdout.write(`${commandUsage('status')}\n`);
    return 0;
  }
  const output = (f.output as string | undefined) ?? 'text';
  if (output !== 'text' && output !== 'json') {
    throw new UserError(`unknown output format "${output}" for -o; give text or json`, 2);
  }
  const socket = (f.socket as string | undefined) ?? DEFAULT_SOCKET;
  const res = await apiCall(socket, 'GET', '/v1/status', undefined, 10_000);
  if (res.status !== 200) throw answerError(res);
  const body = res.body;
  if (output === 'json') {
    process.stdout.write(`${JSON.stringify(JSON.parse(body), null, 2)}\n`);
  } else {
    process.stdout.write(`${renderStatusText(JSON.parse(body) as AgentStatus)}\n`);
  }
  return 0;
}
