/**
 * `osprey flows`: stream the agent's flow events, like `hubble observe`, or
 * pick them out of JSON lines on stdin (an export file).
 */
import { fstatSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { DEFAULT_SOCKET, parseFlags } from '../agent/config.js';
import { UserError } from '../agent/fs-util.js';
import {
  type FlowEvent,
  type FlowFilterOptions,
  flowOf,
  makeFlowFilter,
  renderFlowCompact,
} from '../events/flow.js';
import type { ExportEvent } from '../events/types.js';
import { lineSink, openStream, stdoutSink, streamError } from './stream-client.js';
import { commandUsage } from './usage.js';

export async function flowsCommand(argv: string[]): Promise<number> {
  const f = parseFlags(argv, {
    output: { type: 'string', short: 'o' },
    verdict: { type: 'string', multiple: true },
    label: { type: 'string', short: 'l', multiple: true },
    port: { type: 'string', multiple: true },
    policy: { type: 'string' },
    socket: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (f.help) {
    process.stdout.write(`${commandUsage('flows')}\n`);
    return 0;
  }
  const output = (f.output as string | undefined) ?? (process.stdout.isTTY ? 'compact' : 'json');
  if (output !== 'json' && output !== 'compact') {
    throw new UserError(`unknown output format "${output}" for -o; give json or compact`, 2);
  }
  const list = (k: string) =>
    ((f[k] as string[] | undefined) ?? []).flatMap((v) => v.split(',')).filter(Boolean);
  const verdicts = list('verdict').map((v) => v.toUpperCase());
  const labels = (f.label as string[] | undefined) ?? [];
  const ports = list('port').map((p) => {
    if (!/^\d+$/.test(p) || Number(p) > 65535)
      throw new UserError(`--port ${p}: give a port number 0..65535`, 2);
    return Number(p);
  });
  const policy = f.policy as string | undefined;
  const spec: FlowFilterOptions = { verdicts, labels, ports, ...(policy ? { policy } : {}) };
  let filter: (ev: ExportEvent) => boolean;
  try {
    filter = makeFlowFilter(spec);
  } catch (err) {
    throw new UserError((err as Error).message, 2);
  }
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  const render = (line: string, ev: ExportEvent) =>
    output === 'json' ? line : renderFlowCompact(ev as unknown as FlowEvent);

  if (f.socket === undefined && stdinHoldsData()) {
    for await (const line of lines(process.stdin)) {
      if (line.trim() === '') continue;
      let ev: ExportEvent;
      try {
        ev = JSON.parse(line) as ExportEvent;
      } catch {
        continue;
      }
      if (ev && typeof ev === 'object' && flowOf(ev) && filter(ev))
        process.stdout.write(`${render(line, ev)}\n`);
    }
    return 0;
  }

  const socket = (f.socket as string | undefined) ?? DEFAULT_SOCKET;
  const q = new URLSearchParams();
  for (const v of verdicts) q.append('verdict', v);
  for (const l of labels) q.append('label', l);
  for (const p of ports) q.append('port', String(p));
  if (policy) q.set('policy', policy);
  const qs = q.toString();
  const stream = await openStream(socket, `/v1/flows${qs ? `?${qs}` : ''}`);
  if (stream.status !== 200) throw await streamError(stream);
  await stream.pipe(
    output === 'json'
      ? // the agent sends JSON lines already: its bytes go to stdout as they are
        stdoutSink(
          process.stdout,
          () => stream.resume(),
          () => process.exit(0),
        )
      : lineSink((line) => {
          try {
            process.stdout.write(`${render(line, JSON.parse(line) as ExportEvent)}\n`);
          } catch (err) {
            process.stderr.write(`osprey flows: ${(err as Error).message}\n`);
          }
        }),
  );
  process.stderr.write('osprey flows: the agent ended the stream\n');
  return 0;
}

function stdinHoldsData(): boolean {
  try {
    const st = fstatSync(0);
    return st.isFIFO() || st.isFile() || st.isSocket();
  } catch {
    return false;
  }
}

function lines(input: Readable): AsyncIterable<string> {
  return createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
}
