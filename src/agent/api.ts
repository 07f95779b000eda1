/**
 * The local API: HTTP over a root-only unix socket.
 *
 *   GET /v1/health                         liveness, and who is serving
 *   GET /v1/status                         AgentStatus as JSON
 *   GET /v1/events?types=a,b&process=RE    NDJSON stream of events from now on
 *
 * Each stream client has its own bounded bus queue. While its socket is not
 * writable, events queue; when the queue is full they are dropped and
 * counted; a client that stays full for longer than a grace period is
 * disconnected and counted.
 */
import { chmodSync, statSync, unlinkSync } from 'node:fs';
import http, { type ServerResponse } from 'node:http';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import type { EventBus, Subscription } from './bus.js';
import { describeFsError, mkdirp, UserError } from './fs-util.js';

export interface ApiOptions<T> {
  socketPath: string;
  bus: EventBus<T>;
  status: () => unknown;
  health: () => Record<string, unknown>;
  /** one JSON line, no newline */
  encode: (ev: T) => string;
  /** builds a server-side filter; throws on bad input */
  makeFilter: (opts: { eventTypes?: string[]; process?: string }) => (ev: T) => boolean;
  /** per-client queue bound (default 10,000 events) */
  clientMaxEvents?: number;
  /** per-client queue bound (default 8 MiB) */
  clientMaxBytes?: number;
  /** a client whose queue keeps overflowing this long is disconnected (default 5 s) */
  slowClientGraceMs?: number;
}

export const API_GROUP = 'api';

interface StreamClient<T> {
  res: ServerResponse;
  sub: Subscription<T>;
}

export class ApiServer<T> {
  /** clients disconnected for staying too far behind */
  clientsDisconnected = 0;
  private readonly clients = new Set<StreamClient<T>>();
  private closing: Promise<void> | undefined;
  private clientSeq = 0;

  private constructor(
    private readonly app: FastifyInstance,
    private readonly opts: ApiOptions<T>,
  ) {}

  get socketPath(): string {
    return this.opts.socketPath;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** Listen on the socket (see claimSocket first), readable and writable by root only. */
  static async listen<T>(opts: ApiOptions<T>): Promise<ApiServer<T>> {
    const app = Fastify({ logger: false, forceCloseConnections: true });
    const api = new ApiServer(app, opts);
    api.routes();
    // no window in which the socket exists with looser permissions
    const old = process.umask(0o177);
    try {
      await app.listen({ path: opts.socketPath });
    } catch (err) {
      throw new UserError(
        `cannot listen on API socket ${opts.socketPath}: ${describeFsError(err)}; choose another path with --api-socket`,
      );
    } finally {
      process.umask(old);
    }
    chmodSync(opts.socketPath, 0o600);
    return api;
  }

  /**
   * Stop: give each stream client up to graceMs to receive what is queued
   * for it, end the streams, close the server and remove the socket.
   */
  close(graceMs = 1000): Promise<void> {
    this.closing ??= (async () => {
      await Promise.race([
        Promise.all([...this.clients].map((c) => c.sub.idle())),
        new Promise((r) => setTimeout(r, graceMs).unref()),
      ]);
      const ended = [...this.clients].map((c) => {
        c.sub.close();
        return new Promise<void>((resolve) => {
          c.res.once('close', resolve);
          c.res.end(resolve);
        });
      });
      this.clients.clear();
      // a client that does not read may never take the end of its stream
      await Promise.race([Promise.all(ended), new Promise((r) => setTimeout(r, graceMs).unref())]);
      await this.app.close();
      try {
        unlinkSync(this.opts.socketPath);
      } catch {
        // already gone: closing the listener removes it
      }
    })();
    return this.closing;
  }

  private routes(): void {
    const { app, opts } = this;
    app.get('/v1/health', async () => ({ status: 'ok', ...opts.health() }));
    app.get('/v1/status', async () => opts.status());
    app.get('/v1/events', (req, reply) => {
      const q = req.query as Record<string, string | string[] | undefined>;
      const types = one(q.types);
      const proc = one(q.process);
      let filter: (ev: T) => boolean;
      try {
        filter = opts.makeFilter({
          ...(types ? { eventTypes: types.split(',').filter(Boolean) } : {}),
          ...(proc ? { process: proc } : {}),
        });
      } catch (err) {
        reply.code(400).send({ error: (err as Error).message });
        return;
      }
      reply.hijack();
      this.stream(reply.raw, filter);
    });
    app.setNotFoundHandler((req, reply) => {
      reply
        .code(404)
        .send({ error: `no endpoint ${req.method} ${req.url}; see /v1/health, /v1/status, /v1/events` });
    });
  }

  private stream(res: ServerResponse, filter: (ev: T) => boolean): void {
    if (this.closing) {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'the agent is stopping' }));
      return;
    }
    const { encode } = this.opts;
    const grace = this.opts.slowClientGraceMs ?? 5000;
    // armed by the first drop, disarmed when the client takes a batch: a
    // client that takes nothing for the whole grace period is cut off
    let overflowTimer: NodeJS.Timeout | undefined;
    const sub = this.opts.bus.subscribe(
      async (batch) => {
        clearTimeout(overflowTimer);
        overflowTimer = undefined;
        let text = '';
        for (const ev of batch) text += `${encode(ev)}\n`;
        if (!res.write(text)) await writable(res);
      },
      {
        name: `api-client-${++this.clientSeq}`,
        group: API_GROUP,
        maxEvents: this.opts.clientMaxEvents ?? 10_000,
        maxBytes: this.opts.clientMaxBytes ?? 8 * 1024 * 1024,
        // string length is close enough to bytes for a bound, and the encoding is cached
        sizeOf: (ev) => encode(ev).length + 1,
        filter,
        onDrop: () => {
          overflowTimer ??= setTimeout(() => {
            this.clientsDisconnected++;
            drop();
            res.destroy();
          }, grace).unref();
        },
        onError: () => {
          drop();
          res.destroy();
        },
      },
    );
    const client: StreamClient<T> = { res, sub };
    const drop = () => {
      clearTimeout(overflowTimer);
      sub.close();
      this.clients.delete(client);
    };
    this.clients.add(client);
    res.on('close', drop);
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    res.flushHeaders();
  }
}

/** Resolves when the response can take more data, or is gone. */
function writable(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}

/**
 * Make the socket path ours before anything is attached: create its
 * directory, refuse when an agent (or anything) answers on it, and remove it
 * when it is stale (connect is refused: its owner died).
 */
export async function claimSocket(socketPath: string): Promise<void> {
  const dir = path.dirname(socketPath);
  try {
    mkdirp(dir);
  } catch (err) {
    throw new UserError(
      `cannot create directory ${dir} for the API socket: ${describeFsError(err)}; choose another path with --api-socket`,
    );
  }
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(socketPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new UserError(
      `cannot use API socket ${socketPath}: ${describeFsError(err)}; pass another --api-socket`,
    );
  }
  if (!st.isSocket()) {
    throw new UserError(`${socketPath} exists and is not a socket; remove it or pass another --api-socket`);
  }
  const probe = await probeSocket(socketPath);
  if (probe.state === 'stale') {
    try {
      unlinkSync(socketPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new UserError(`cannot remove stale API socket ${socketPath}: ${describeFsError(err)}`);
    }
    return;
  }
  if (probe.state === 'agent') {
    const who = probe.pid ? ` (pid ${probe.pid})` : '';
    throw new UserError(`another agent${who} is serving on ${socketPath}; stop it or pass --api-socket`);
  }
  if (probe.state === 'other') {
    throw new UserError(`another program is listening on ${socketPath}; stop it or pass --api-socket`);
  }
  throw new UserError(`cannot check API socket ${socketPath}: ${probe.error}; pass another --api-socket`);
}

type Probe =
  | { state: 'stale' }
  | { state: 'agent'; pid?: number }
  | { state: 'other' }
  | { state: 'error'; error: string };

/** Ask whoever is on the socket for /v1/health. */
function probeSocket(socketPath: string, timeoutMs = 2000): Promise<Probe> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath, path: '/v1/health', timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => {
        try {
          const h = JSON.parse(body) as { status?: string; pid?: number };
          if (h.status === 'ok') {
            resolve(typeof h.pid === 'number' ? { state: 'agent', pid: h.pid } : { state: 'agent' });
            return;
          }
        } catch {
          // not ours
        }
        resolve({ state: 'other' });
      });
    });
    req.on('timeout', () => {
      req.destroy();
      // it accepted the connection, so someone is there
      resolve({ state: 'other' });
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') resolve({ state: 'stale' });
      else if (err.code === 'ENOENT') resolve({ state: 'stale' });
      else if (err.code === 'ECONNRESET' || err.code === 'EPIPE') resolve({ state: 'other' });
      else resolve({ state: 'error', error: describeFsError(err) });
    });
  });
}
