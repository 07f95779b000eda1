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
 * answer of known length is taken as soon as it is all there. How an
 * answer's head and body are read (statusOf, bodyDecoder, BodyDecoder) is
 * shared with the streams.
 */
import net from 'node:net';
import { describeFsError, UserError } from '../agent/fs-util.js';

export interface ApiAnswer {
  status: number;
  body: string;
  /** names in lower case */
  headers?: Map<string, string>;
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
  const status = statusOf(statusLine);
  let body = raw.subarray(end + 4);
  if (isChunked(headers)) {
    const decoder = new BodyDecoder('chunked');
    const parts: Buffer[] = [];
    decoder.feed(body, 0, body.length, (b, s, e) => parts.push(b.subarray(s, e)) > 0);
    if (!decoder.done) throw new Error('a chunked answer cut short');
    body = Buffer.concat(parts);
  } else if (headers.has('content-length')) {
    const n = Number(headers.get('content-length'));
    if (!Number.isSafeInteger(n) || n < 0 || n > body.length) {
      throw new Error(
        `an answer of ${body.length} bytes where its Content-Length says ${headers.get('content-length')}`,
      );
    }
    body = body.subarray(0, n);
  }
  return { status, body: body.toString('utf8'), headers };
}

/**
 * The length of the whole answer from its headers: undefined while they are
 * not all in, 'unknown' when only the close can tell (chunked, no length).
 */
function answerLength(raw: Buffer): number | 'unknown' | undefined {
  const head = readHead(raw);
  if (!head) return undefined;
  const d = bodyDecoder(head.headers);
  return d.framing === 'length' ? head.end + 4 + d.length : 'unknown';
}

function isChunked(headers: Map<string, string>): boolean {
  return /\bchunked\b/i.test(headers.get('transfer-encoding') ?? '');
}

/** The status of an answer's status line; throws a FramingError when it is not HTTP's. */
export function statusOf(statusLine: string): number {
  const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine);
  if (!m) throw new FramingError(`"${statusLine.slice(0, 80)}" is not an HTTP status line`);
  return Number(m[1]);
}

/** A decoder for the body an answer's headers announce: chunked, by Content-Length, or up to the close. */
export function bodyDecoder(headers: Map<string, string>): BodyDecoder {
  if (isChunked(headers)) return new BodyDecoder('chunked');
  const n = Number(headers.get('content-length'));
  return headers.has('content-length') && Number.isSafeInteger(n) && n >= 0
    ? new BodyDecoder('length', n)
    : new BodyDecoder('close');
}

/** Bytes that are not the HTTP framing an answer should have. */
export class FramingError extends Error {}

/** Takes the HTTP framing off an answer's body, as its bytes come. */
export class BodyDecoder {
  /** chunked: the state of the chunk being read */
  private state: 'size' | 'data' | 'data-end' | 'trailer' | 'done' = 'size';
  /** the chunk size line being read, or the trailer line */
  private line = '';
  /** bytes of the current chunk (or, with a length, of the body) still to come */
  private left: number;

  constructor(
    readonly framing: 'chunked' | 'length' | 'close',
    /** with a length: the body's bytes */
    readonly length = 0,
  ) {
    this.left = length;
    if (framing === 'length') this.state = length > 0 ? 'data' : 'done';
    if (framing === 'close') this.state = 'data';
  }

  /** The whole body has come. */
  get done(): boolean {
    return this.state === 'done';
  }

  /**
   * Feeds buf[start, end); body bytes go to emit, in order. Returns whether
   * every emit returned true. Throws on framing that is not HTTP's.
   */
  feed(
    buf: Buffer,
    start: number,
    end: number,
    emit: (buf: Buffer, start: number, end: number) => boolean,
  ): boolean {
    let ok = true;
    let at = start;
    while (at < end && this.state !== 'done') {
      switch (this.state) {
        case 'data': {
          const n = this.framing === 'close' ? end - at : Math.min(this.left, end - at);
          if (!emit(buf, at, at + n)) ok = false;
          at += n;
          if (this.framing === 'close') break;
          this.left -= n;
          if (this.left === 0) this.state = this.framing === 'length' ? 'done' : 'data-end';
          break;
        }
        case 'data-end': {
          // the CRLF after a chunk's bytes
          const c = buf[at++];
          if (c === 0x0a) this.state = 'size';
          else if (c !== 0x0d) throw new FramingError('a chunk not followed by CRLF');
          break;
        }
        case 'size':
        case 'trailer': {
          const eol = buf.indexOf(0x0a, at);
          const stop = eol < 0 || eol >= end ? end : eol;
          this.line += buf.toString('latin1', at, stop);
          if (this.line.length > 1024) throw new FramingError('a chunk size line of more than 1 KB');
          at = stop;
          if (stop === end) break;
          at++;
          const line = this.line.endsWith('\r') ? this.line.slice(0, -1) : this.line;
          this.line = '';
          if (this.state === 'trailer') {
            if (line === '') this.state = 'done';
            break;
          }
          const size = Number.parseInt(line.split(';')[0]!.trim(), 16);
          if (!Number.isSafeInteger(size) || size < 0 || !/^[0-9a-fA-F]/.test(line))
            throw new FramingError(`a bad chunk size "${line.slice(0, 40)}"`);
          if (size === 0) this.state = 'trailer';
          else {
            this.left = size;
            this.state = 'data';
          }
          break;
        }
      }
    }
    return ok;
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
