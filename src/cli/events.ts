/**
 * `osprey events`: stream events from the agent, or render JSON lines read
 * from stdin when stdin is a pipe or a file.
 */
import { fstatSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { DEFAULT_SOCKET, parseFlags } from '../agent/config.js';
import { eventFilter } from '../agent/event-filter.js';
import { UserError } from '../agent/fs-util.js';
import { renderCompact } from '../events/index.js';
import type { ExportEvent } from '../events/types.js';
import { printHistory } from './history.js';
import { lineSink, openStream, type Stream, stdoutSink, streamError } from './stream-client.js';
import { commandUsage } from './usage.js';

export async function eventsCommand(argv: string[]): Promise<number> {
  const f = parseFlags(argv, {
    output: { type: 'string', short: 'o' },
    'event-types': { type: 'string' },
    process: { type: 'string' },
    policy: { type: 'string' },
    socket: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
    // history (the event store) and Tetragon-style filters
    since: { type: 'string' },
    until: { type: 'string' },
    type: { type: 'string' },
    binary: { type: 'string' },
    allow: { type: 'string' },
    deny: { type: 'string' },
    limit: { type: 'string' },
  });
  if (f.help) {
    process.stdout.write(`${commandUsage('events')}\n`);
    return 0;
  }
  const output = (f.output as string | undefined) ?? (process.stdout.isTTY ? 'compact' : 'json');
  if (output !== 'json' && output !== 'compact')
    throw new UserError(`unknown output format "${output}" for -o; give json or compact`, 2);
  const types = [f['event-types'], f.type]
    .filter((v): v is string => typeof v === 'string')
    .join(',')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  const proc = f.process as string | undefined;
  const policy = f.policy as string | undefined;
  const binary = f.binary as string | undefined;
  const allow = f.allow as string | undefined;
  const deny = f.deny as string | undefined;
  const spec = {
    ...(types?.length ? { eventTypes: types } : {}),
    ...(proc !== undefined ? { process: proc } : {}),
    ...(policy ? { policy } : {}),
    ...(binary ? { binary } : {}),
    ...(allow ? { allow } : {}),
    ...(deny ? { deny } : {}),
  };
  let filter: (ev: ExportEvent) => boolean;
  try {
    filter = eventFilter(spec);
  } catch (err) {
    throw new UserError((err as Error).message, 2);
  }

  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    // the reader went away (osprey events | head): that is a normal end
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });

  if (f.socket === undefined && stdinHoldsData()) return renderStdin(output, filter);

  const socket = (f.socket as string | undefined) ?? DEFAULT_SOCKET;
  if (f.since !== undefined || f.until !== undefined) {
    const str = (k: string) => (typeof f[k] === 'string' ? { [k]: f[k] as string } : {});
    return printHistory(
      socket,
      { ...str('since'), ...str('until'), ...str('limit'), ...spec, ...(types.length ? { types } : {}) },
      output,
    );
  }
  if (f.limit !== undefined)
    throw new UserError('--limit goes with --since (history); a live stream has none', 2);
  const q = new URLSearchParams();
  if (types?.length) q.set('types', types.join(','));
  if (proc !== undefined) q.set('process', proc);
  if (policy) q.set('policy', policy);
  if (binary) q.set('binary', binary);
  if (allow) q.set('allow', allow);
  if (deny) q.set('deny', deny);
  const qs = q.toString();
  const stream = await openStream(socket, `/v1/events${qs ? `?${qs}` : ''}`);
  if (stream.status !== 200) throw await streamError(stream);
  return renderStream(stream, output);
}

/** stdin is a pipe, a socket or a regular file (not a terminal, not /dev/null). */
function stdinHoldsData(): boolean {
  try {
    const st = fstatSync(0);
    return st.isFIFO() || st.isFile() || st.isSocket();
  } catch {
    return false;
  }
}

/** Render the agent's stream until the agent ends it. */
async function renderStream(stream: Stream, output: 'json' | 'compact'): Promise<number> {
  if (output === 'json') {
    // the agent sends JSON lines already: its bytes go to stdout as they are
    await stream.pipe(
      stdoutSink(
        process.stdout,
        () => stream.resume(),
        () => process.exit(0),
      ),
    );
  } else {
    let lineNo = 0;
    await stream.pipe(
      lineSink((line) => {
        lineNo++;
        try {
          process.stdout.write(`${renderCompact(JSON.parse(line) as ExportEvent)}\n`);
        } catch (err) {
          process.stderr.write(`osprey events: event ${lineNo} from the agent: ${(err as Error).message}\n`);
        }
      }),
    );
  }
  process.stderr.write('osprey events: the agent ended the stream\n');
  return 0;
}

/**
 * Render JSON lines from stdin. A line that is not an event is reported on
 * stderr with its number and skipped; the exit code is then 1.
 */
async function renderStdin(
  output: 'json' | 'compact',
  filter: (ev: ExportEvent) => boolean,
): Promise<number> {
  let lineNo = 0;
  let bad = 0;
  for await (const line of lines(process.stdin)) {
    lineNo++;
    if (line.trim() === '') continue;
    let ev: ExportEvent;
    try {
      const v = JSON.parse(line) as unknown;
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
      ev = v as ExportEvent;
    } catch (err) {
      bad++;
      process.stderr.write(`osprey events: line ${lineNo}: not JSON (${(err as Error).message})\n`);
      continue;
    }
    let keep: boolean;
    let text: string;
    try {
      keep = filter(ev);
      text = keep ? (output === 'json' ? line : renderCompact(ev)) : '';
    } catch (err) {
      bad++;
      process.stderr.write(`osprey events: line ${lineNo}: not an event (${(err as Error).message})\n`);
      continue;
    }
    if (keep) process.stdout.write(`${text}\n`);
  }
  if (bad) process.stderr.write(`osprey events: ${bad} of ${lineNo} lines skipped\n`);
  return bad ? 1 : 0;
}

function lines(input: Readable): AsyncIterable<string> {
  return createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
}
