/**
 * `osprey events --since 1h ...`: events from the agent's event store
 * instead of the live stream.
 */
import { renderCompact } from '../events/index.js';
import type { ExportEvent } from '../events/types.js';
import { answerError, apiCall } from './client.js';

export interface HistoryParams {
  since?: string;
  until?: string;
  types?: string[];
  binary?: string;
  policy?: string;
  process?: string;
  allow?: string;
  deny?: string;
  limit?: string;
}

/** Fetch and print; a truncated answer is said on stderr with what to do. */
export async function printHistory(
  socket: string,
  p: HistoryParams,
  output: 'json' | 'compact',
): Promise<number> {
  const q = new URLSearchParams();
  if (p.since) q.set('since', p.since);
  if (p.until) q.set('until', p.until);
  if (p.types?.length) q.set('type', p.types.join(','));
  if (p.binary) q.set('binary', p.binary);
  if (p.policy) q.set('policy', p.policy);
  if (p.process) q.set('process', p.process);
  if (p.allow) q.set('allow', p.allow);
  if (p.deny) q.set('deny', p.deny);
  if (p.limit) q.set('limit', p.limit);
  // JSON lines: printed as they come for -o json, not parsed and made again
  q.set('format', 'lines');
  const res = await apiCall(socket, 'GET', `/v1/events/history?${q.toString()}`, undefined, 60_000);
  if (res.status !== 200) throw answerError(res);
  if (output === 'json') process.stdout.write(res.body);
  else {
    let text = '';
    for (const line of res.body.split('\n')) {
      if (line !== '') text += `${renderCompact(JSON.parse(line) as ExportEvent)}\n`;
    }
    process.stdout.write(text);
  }
  if (res.headers?.get('x-osprey-truncated') === 'true') {
    process.stderr.write(
      `osprey events: the newest ${res.headers.get('x-osprey-limit')} matching events are shown; older ones exist ` +
        '(narrow --since/--until, or raise --limit)\n',
    );
  }
  return 0;
}
