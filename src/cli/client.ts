/**
 * A client of the agent's local API over its unix socket, for the commands
 * that make one request and take one answer (policy, workload, status,
 * process, events --since). Event and flow streams: stream-client.ts.
 *
 * A one-shot request is written and its answer read straight on the
 * socket, without node:http: loading node:http and sending a request
 * through it cost each command ~10 ms here (a process that GETs
 * /v1/policies: 78.4 ms median with node:http, 68.5 without, 30 runs
 * alternated), for what is one request and one answer on a local socket.
 * The request asks the agent to close the connection after its answer; an
 * answer of known length is taken as soon as it is all there.
 */
import net from 'node:net';
import { describeFsError, UserError } from '../agent/fs-util.js';

export interface ApiAnswer {
  status: number;
  body: string;
}

/**
 * One request with an optional body, answered in full. Connection failures
 * become UserErrors that say what to do; any status is returned.
 */
export function apiCall(
  socketPath: string,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  path: string,
  body?: { text: string; contentType: string },
  timeoutMs = 120_000,
): Promise<ApiAnswer> {
  return new Promise((resolve, reject) => {
    const payload = body ? Buffer.from(body.text, 'utf8') : undefined;
    let head = `${method} ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n`;
    if (payload) head += `Content-Type: ${body!.contentType}\r\nContent-Length: ${payload.length}\r\n`;
    else if (method !== 'GET') head += 'Content-Length: 0\r\n';
    const sock = net.createConnection(socketPath);
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (err: Error | undefined, answer?: ApiAnswer) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(answer!);
    };
    const timer =
      timeoutMs > 0
        ? setTimeout(
            () => finish(new UserError(`the agent on ${socketPath} did not answer within ${timeoutMs} ms`)),
            timeoutMs,
          )
        : undefined;
    let received = 0;
    // the whole answer's length, once its headers are in and give one (Content-Length)
    let whole: number | 'unknown' | undefined;
    sock.on('data', (c: Buffer) => {
      chunks.push(c);
      received += c.length;
      if (whole === undefined) whole = answerLength(Buffer.concat(chunks, received));
      // an answer of known length is complete without waiting for the close
      if (typeof whole === 'number' && received >= whole)
        complete(Buffer.concat(chunks, received).subarray(0, whole));
    });
    sock.on('end', () => complete(Buffer.concat(chunks)));
    const complete = (raw: Buffer) => {
      try {
        finish(undefined, parseAnswer(raw));
      } catch (err) {
        finish(
          new UserError(
            `the agent on ${socketPath} answered something unexpected: ${(err as Error).message}`,
          ),
        );
      }
    };
    sock.on('error', (err: NodeJS.ErrnoException) => finish(connectError(socketPath, err)));
    sock.write(`${head}\r\n`);
    if (payload) sock.write(payload);
  });
}

/** An answer's head: where its headers end, its status line and headers (names in lower case). */
export function readHead(
  raw: Buffer,
): { end: number; statusLine: string; headers: Map<string, string> } | undefined {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = raw.subarray(0, end).toString('latin1').split('\r\n');
  const headers = new Map<string, string>();
  for (const l of lines.slice(1)) {
    const colon = l.indexOf(':');
    if (colon > 0) headers.set(l.slice(0, colon).trim().toLowerCase(), l.slice(colon + 1).trim());
  }
  return { end, statusLine: lines[0]!, headers };
}

/**
 * An HTTP/1.1 answer read to its end: the status and the body (by
 * Content-Length, chunked, or up to the end). Throws on anything else.
 */
export function parseAnswer(raw: Buffer): ApiAnswer {
  const head = readHead(raw);
  if (!head) throw new Error(raw.length ? 'an HTTP answer without its end of headers' : 'nothing');
  const { end, statusLine, headers } = head;
  const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine);
  if (!m) throw new Error(`"${statusLine.slice(0, 80)}" is not an HTTP status line`);
  let body = raw.subarray(end + 4);
  if (isChunked(headers)) body = dechunk(body);
  else if (headers.has('content-length')) {
    const n = Number(headers.get('content-length'));
    if (!Number.isSafeInteger(n) || n < 0 || n > body.length) {
      throw new Error(
        `an answer of ${body.length} bytes where its Content-Length says ${headers.get('content-length')}`,
      );
    }
    body = body.subarray(0, n);
  }
  return { status: Number(m[1]), body: body.toString('utf8') };
}

/**
 * The length of the whole answer from its headers: undefined while they are
 * not all in, 'unknown' when only the close can tell (chunked, no length).
 */
function answerLength(raw: Buffer): number | 'unknown' | undefined {
  const head = readHead(raw);
  if (!head) return undefined;
  const n = Number(head.headers.get('content-length'));
  if (isChunked(head.headers) || !head.headers.has('content-length') || !Number.isSafeInteger(n) || n < 0) {
    return 'unknown';
  }
  return head.end + 4 + n;
}

function isChunked(headers: Map<string, string>): boolean {
  return /\bchunked\b/i.test(headers.get('transfer-encoding') ?? '');
}

function dechunk(b: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = b.indexOf('\r\n', at);
    if (eol < 0) throw new Error('a chunked answer cut short');
    const size = Number.parseInt(b.subarray(at, eol).toString('latin1').split(';')[0]!, 16);
    if (!Number.isSafeInteger(size) || size < 0) throw new Error('a chunked answer with a bad chunk size');
    if (size === 0) return Buffer.concat(parts);
    if (eol + 2 + size > b.length) throw new Error('a chunked answer cut short');
    parts.push(b.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/** The error message of a non-2xx answer: the agent's `error`, or the body as it is. */
export function answerError(a: ApiAnswer): UserError {
  let msg = a.body.trim();
  try {
    msg = (JSON.parse(a.body) as { error?: string }).error ?? msg;
  } catch {
    // not JSON: show it as it is
  }
  return new UserError(`the agent answered ${a.status}: ${msg}`, a.status === 400 ? 2 : 1);
}

/** A connection failure as a UserError that says what to do. */
export function connectError(socketPath: string, err: NodeJS.ErrnoException): UserError {
  switch (err.code) {
    case 'ENOENT':
    case 'ECONNREFUSED':
      return new UserError(`no agent is listening on ${socketPath}; start one with \`osprey agent\``);
    case 'EACCES':
    case 'EPERM':
      return new UserError(`permission denied on ${socketPath}; the API is root-only, run as root`);
    default:
      return new UserError(`cannot reach the agent on ${socketPath}: ${describeFsError(err)}`);
  }
}
