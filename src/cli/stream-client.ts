/**
 * The agent's event and flow streams over its unix socket: an answer that
 * goes on for as long as the user watches. One-shot requests use client.ts.
 *
 * Read straight off the socket, without node:http: the socket reads into
 * one buffer of ours, reused for every read (no buffer allocated and copied
 * per read), and the HTTP framing (chunked, or a Content-Length for an
 * error's answer) is taken off as the bytes come. What `osprey events -o
 * json > FILE` does per event is then one copy into the file; through
 * node:http it was ~2.5 µs of a client's CPU per 2.6-KB event (its reads,
 * the chunk parser's slices and a stream's buffering), as much as a
 * quarter of what the agent spends making the event.
 */
import { writeSync } from 'node:fs';
import net from 'node:net';
import { UserError } from '../agent/fs-util.js';
import {
  answerError,
  type BodyDecoder,
  bodyDecoder,
  connectError,
  FramingError,
  readHead,
  statusOf,
} from './client.js';

/** Bytes of the buffer every read of a stream goes into. */
const READ_BUFFER_BYTES = 256 * 1024;
/** An answer's head larger than this is not one the agent sends. */
const MAX_HEAD_BYTES = 64 * 1024;

/**
 * Takes body bytes buf[start, end), which are only valid during the call
 * (the buffer is read into again). Returns false to have the stream pause
 * until resume() is called.
 */
export type BodySink = (buf: Buffer, start: number, end: number) => boolean;

/** An open stream: its status, and its body once a sink is given. */
export interface Stream {
  status: number;
  /** Deliver the body to sink; resolves when the agent ends it (or the connection does). */
  pipe(sink: BodySink): Promise<void>;
  /** After a sink returned false: go on reading. */
  resume(): void;
  /** The whole body as text (an error's answer). */
  text(): Promise<string>;
  /** Stop reading and close the connection. */
  close(): void;
}

/**
 * GET a stream. Resolves once the answer's head is in; connection failures
 * become UserErrors that say what to do.
 */
export function openStream(socketPath: string, path: string): Promise<Stream> {
  return new Promise((resolve, reject) => {
    let head: Buffer | undefined = Buffer.alloc(0);
    /** body bytes that came with the head, or before a sink was given */
    let early: Buffer[] = [];
    let decoder: BodyDecoder | undefined;
    let sink: BodySink | undefined;
    let ended = false;
    let finished: (() => void) | undefined;
    let failed: ((err: Error) => void) | undefined;
    let opened = false;
    const notHttp = (err: unknown): Error =>
      err instanceof FramingError
        ? new UserError(`the agent on ${socketPath} sent a stream that is not HTTP: ${err.message}`)
        : (err as Error);
    const fail = (err: Error) => {
      sock.destroy();
      if (!opened) reject(err);
      else failed?.(err);
    };
    const end = () => {
      if (ended) return;
      ended = true;
      sock.destroy();
      finished?.();
    };
    // every read lands in this buffer: what is kept past the call is copied
    const sock = net.createConnection({
      path: socketPath,
      onread: {
        buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES),
        callback: (n: number, buf: Uint8Array): boolean => {
          const b = buf as Buffer;
          try {
            if (head !== undefined) return onHead(b, n);
            if (!sink) {
              early.push(Buffer.from(b.subarray(0, n)));
              return true;
            }
            const go = decoder!.feed(b, 0, n, sink);
            if (decoder!.done) end();
            return go;
          } catch (err) {
            fail(notHttp(err));
            return false;
          }
        },
      },
    });
    const onHead = (b: Buffer, n: number): boolean => {
      const all = Buffer.concat([head!, b.subarray(0, n)]);
      const h = readHead(all);
      if (!h) {
        if (all.length > MAX_HEAD_BYTES) throw new FramingError(`no end of headers in ${all.length} bytes`);
        head = all;
        return true;
      }
      head = undefined;
      const status = statusOf(h.statusLine);
      decoder = bodyDecoder(h.headers);
      if (all.length > h.end + 4) early.push(all.subarray(h.end + 4));
      opened = true;
      resolve(stream(status));
      return true;
    };
    const stream = (status: number): Stream => ({
      status,
      pipe(s) {
        return new Promise<void>((res, rej) => {
          finished = res;
          failed = rej;
          sink = s;
          const before = early;
          early = [];
          let go = true;
          try {
            for (const b of before) if (!decoder!.feed(b, 0, b.length, s)) go = false;
          } catch (err) {
            fail(notHttp(err));
            return;
          }
          // the connection may have ended before the sink was given: all there is has been fed
          if (ended) res();
          else if (decoder!.done) end();
          else if (!go) sock.pause();
        });
      },
      resume: () => sock.resume(),
      async text() {
        const parts: Buffer[] = [];
        await this.pipe((b, s, e) => {
          parts.push(Buffer.from(b.subarray(s, e)));
          return true;
        });
        return Buffer.concat(parts).toString('utf8');
      },
      close: () => end(),
    });
    sock.on('connect', () =>
      sock.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`),
    );
    sock.on('end', end);
    sock.on('close', () => {
      if (!opened)
        reject(new UserError(`the agent on ${socketPath} closed the connection without answering`));
      end();
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (!opened) reject(connectError(socketPath, err));
      else failed?.(new UserError(`the stream from the agent on ${socketPath} broke: ${err.message}`));
    });
  });
}

/** The error of a stream the agent refused (a non-200 answer), from its body. */
export async function streamError(s: Stream): Promise<UserError> {
  return answerError({ status: s.status, body: await s.text() });
}

/**
 * A sink that writes the body to stdout (fd 1) as it comes: straight to
 * the descriptor while it takes the bytes at once (a file, a terminal, a
 * pipe with room), otherwise through `out` (process.stdout, which waits for
 * the descriptor), in order, the stream paused until it has written them.
 * resume: the stream's, called once `out` has written them all. onGone:
 * the reader went away (EPIPE: `osprey events | head`).
 */
export function stdoutSink(
  out: NodeJS.WritableStream,
  resume: () => void,
  onGone: () => void,
  fd = 1,
): BodySink {
  /** writes handed to `out` and not yet done: while any is, bytes go the same way */
  let queued = 0;
  const done = (err?: Error | null) => {
    if (err) {
      if ((err as NodeJS.ErrnoException).code === 'EPIPE') onGone();
      return;
    }
    if (--queued === 0) resume();
  };
  const later = (buf: Buffer, start: number, end: number): boolean => {
    queued++;
    out.write(Buffer.from(buf.subarray(start, end)), done);
    return false;
  };
  return (buf, start, end) => {
    if (queued > 0) return later(buf, start, end);
    let at = start;
    try {
      while (at < end) at += writeSync(fd, buf, at, end - at);
      return true;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'EPIPE') {
        onGone();
        return false;
      }
      if (e.code !== 'EAGAIN') throw err;
    }
    return later(buf, at, end);
  };
}

/** A sink that splits the body into lines (without their newlines) for onLine. */
export function lineSink(onLine: (line: string) => void): BodySink {
  let rest: Buffer | undefined;
  return (buf, start, end) => {
    let at = start;
    for (;;) {
      const nl = buf.indexOf(0x0a, at);
      if (nl < 0 || nl >= end) break;
      const line = rest
        ? Buffer.concat([rest, buf.subarray(at, nl)]).toString('utf8')
        : buf.toString('utf8', at, nl);
      rest = undefined;
      at = nl + 1;
      if (line.length > 0) onLine(line);
    }
    if (at < end)
      rest = rest ? Buffer.concat([rest, buf.subarray(at, end)]) : Buffer.from(buf.subarray(at, end));
    return true;
  };
}
