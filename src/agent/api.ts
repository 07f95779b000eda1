/**
 * The local API: HTTP over a root-only unix socket.
 *
 *   GET /v1/health                         liveness, and who is serving
 *   GET /v1/status                         AgentStatus as JSON
 *   GET /v1/events?types=a,b&process=RE&binary=RE&policy=NAME&allow=JSON&deny=JSON
 *                                          NDJSON stream of events from now on; allow/deny
 *                                          are Tetragon filter lists (src/export/filter.ts)
 *   GET    /v1/policies                    {policies: PolicyInfo[]}
 *   GET    /v1/policies/:name              PolicyInfo
 *   POST   /v1/policies?mode=M&source=F    body: the policy's YAML -> 201 PolicyInfo;
 *                                          400 {error, errors[]} invalid, 409 name taken
 *   DELETE /v1/policies/:name              {deleted: name}
 *   POST   /v1/policies/:name/enable       PolicyInfo (load again from the stored YAML)
 *   POST   /v1/policies/:name/disable      PolicyInfo (unloaded, kept)
 *   PUT    /v1/policies/:name/mode         ?mode=M, or body M or {"mode": M} -> PolicyInfo
 *
 * Every policy error answers {error, errors[]} (404 for an unknown name).
 *
 * The service routes (service.ts) add GET /v1/events/history,
 * GET /v1/processes/:exec_id and GET /v1/openapi.json, the document that
 * describes every route; the same router also serves --api-address (tcp-api.ts).
 *
 * Each stream client has its own bounded bus queue. While its socket is not
 * writable, events queue; when the queue is full they are dropped and
 * counted; a client that stays full for longer than a grace period is
 * disconnected and counted.
 */
import { chmodSync, statSync, unlinkSync } from 'node:fs';
import http, { type ServerResponse } from 'node:http';
import path from 'node:path';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { type Line, linesBytes, writeLines } from '../events/encode.js';
import { native } from '../kernel/native.js';
import type { PolicyMode } from '../sensors/tracing/index.js';
import { POLICY_BODY_LIMIT, policyTooLarge } from './api-limits.js';
import type { EventBus, Subscription } from './bus.js';
import { describeFsError, mkdirp, UserError } from './fs-util.js';
import { type PolicyInfo, PolicyOpError } from './policies.js';
import { type SlabPiece, SlabPool } from './slabs.js';

/** What the API needs of the policy manager. */
export interface PolicyApi {
  list(): PolicyInfo[];
  get(name: string): PolicyInfo;
  add(text: string, source: string, opts: { mode?: PolicyMode }): Promise<PolicyInfo>;
  delete(name: string): Promise<void>;
  enable(name: string): Promise<PolicyInfo>;
  disable(name: string): Promise<PolicyInfo>;
  setMode(name: string, mode: PolicyMode): Promise<PolicyInfo>;
}

const STATUS_OF: Readonly<Record<PolicyOpError['code'], number>> = {
  invalid: 400,
  'not-found': 404,
  exists: 409,
  'load-failed': 422,
  storage: 500,
  unavailable: 503,
};

export interface ApiOptions<T> {
  socketPath: string;
  bus: EventBus<T>;
  status: () => unknown;
  health: () => Record<string, unknown>;
  /** one JSON line, no newline */
  encode: (ev: T) => Line;
  /** builds a server-side filter; throws on bad input */
  makeFilter: (opts: {
    eventTypes?: string[];
    process?: string;
    policy?: string;
    /** regular expression on the process binary */
    binary?: string;
    /** Tetragon-style allow/deny filter lists (JSON lines or a JSON array) */
    allow?: string;
    deny?: string;
  }) => (ev: T) => boolean;
  /** the service routes (history, processes, OpenAPI: see service.ts) */
  serviceRoutes?: (app: FastifyInstance) => void;
  /** the policy endpoints answer 503 without it */
  policies?: PolicyApi;
  /** per-client buffer bound (default 40,000 events) */
  clientMaxEvents?: number;
  /** per-client buffer bound (default 32 MiB: ~0.6 s of events at 20,000/s) */
  clientMaxBytes?: number;
  /** a client that takes nothing this long after its buffer overflowed is disconnected (default 5 s) */
  slowClientGraceMs?: number;
  /**
   * after writing a batch to a stream, wait this long before the next one
   * (default 10 ms), so that what comes meanwhile goes in one write: a
   * client reads a few large chunks instead of one per ring wake-up. The
   * first event after a quiet spell is written at once.
   */
  streamCoalesceMs?: number;
  /**
   * send buffer asked of the kernel for an event stream on the unix socket
   * (default 4 MiB; the kernel keeps twice that): a client that reads in
   * bursts finds the bytes waiting in the socket, and the agent hands each
   * batch over in one write instead of a write per 200 KB and a wake-up for
   * the rest. 0 keeps the system's default.
   */
  streamSendBuffer?: number;
  /** more routes (network: /v1/flows, /v1/workloads), given the event stream of this server */
  extraRoutes?: (
    app: FastifyInstance,
    stream: (res: ServerResponse, filter: (ev: T) => boolean) => void,
  ) => void;
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
  /** "GET /v1/status" ..., as fastify registered them (HEAD routes included) */
  private readonly registered: string[] = [];

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

  /** Every route served, "GET /v1/status", without the HEAD routes fastify adds to GETs. */
  routeList(): string[] {
    return this.registered.filter((r) => !r.startsWith('HEAD ')).sort();
  }

  /** Route a request that arrived elsewhere (the TCP listener) through this server. */
  handle(req: http.IncomingMessage, res: ServerResponse): void {
    this.app.routing(req, res);
  }

  /** Listen on the socket (see claimSocket first), readable and writable by root only. */
  static async listen<T>(opts: ApiOptions<T>): Promise<ApiServer<T>> {
    const app = Fastify({ logger: false, forceCloseConnections: true });
    const api = new ApiServer(app, opts);
    app.addHook('onRoute', (r) => {
      for (const m of Array.isArray(r.method) ? r.method : [r.method]) api.registered.push(`${m} ${r.url}`);
    });
    api.routes();
    // a body past its limit: what the limit is and what to do, not only "Payload Too Large"
    app.setErrorHandler((err: FastifyError, req, reply) => {
      if (err.statusCode === 413) {
        const source = (req.query as { source?: unknown } | undefined)?.source;
        const why = policyTooLarge(typeof source === 'string' ? source : undefined);
        return reply.code(413).send({ error: why, errors: [why] });
      }
      throw err;
    });
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
      const policy = one(q.policy);
      const allow = one(q.allow);
      const deny = one(q.deny);
      const binary = one(q.binary);
      let filter: (ev: T) => boolean;
      try {
        filter = opts.makeFilter({
          ...(types ? { eventTypes: types.split(',').filter(Boolean) } : {}),
          ...(proc ? { process: proc } : {}),
          ...(policy ? { policy } : {}),
          ...(allow ? { allow } : {}),
          ...(deny ? { deny } : {}),
          ...(binary ? { binary } : {}),
        });
      } catch (err) {
        reply.code(400).send({ error: (err as Error).message });
        return;
      }
      reply.hijack();
      this.stream(reply.raw, filter);
    });
    this.policyRoutes();
    opts.extraRoutes?.(app, (res, filter) => this.stream(res, filter));
    opts.serviceRoutes?.(app);
    app.setNotFoundHandler((req, reply) => {
      reply.code(404).send({
        error: `no endpoint ${req.method} ${req.url}; see /v1/health, /v1/status, /v1/events, /v1/policies`,
      });
    });
  }

  private policyRoutes(): void {
    const { app } = this;
    // a policy is YAML text; JSON bodies ({"yaml": ..., "mode": ...}) are parsed by fastify itself
    app.addContentTypeParser(
      ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml'],
      { parseAs: 'string', bodyLimit: POLICY_BODY_LIMIT },
      (_req, body, done) => done(null, body),
    );
    type Req = { name: string; query: Record<string, string | string[] | undefined>; body: unknown };
    const handle =
      (status: number, f: (pm: PolicyApi, req: Req) => unknown) =>
      async (request: FastifyRequest, reply: FastifyReply) => {
        const req: Req = {
          name: (request.params as { name?: string }).name ?? '',
          query: request.query as Req['query'],
          body: request.body,
        };
        const pm = this.opts.policies;
        if (!pm) return reply.code(503).send({ error: 'this agent does not manage policies', errors: [] });
        try {
          return reply.code(status).send(await f(pm, req));
        } catch (err) {
          if (err instanceof PolicyOpError) {
            return reply.code(STATUS_OF[err.code]).send({ error: err.message, errors: err.errors });
          }
          throw err;
        }
      };
    app.get(
      '/v1/policies',
      handle(200, (pm) => ({ policies: pm.list() })),
    );
    app.get(
      '/v1/policies/:name',
      handle(200, (pm, req) => pm.get(req.name)),
    );
    app.post(
      '/v1/policies',
      { bodyLimit: POLICY_BODY_LIMIT },
      handle(201, (pm, req) => {
        const q = req.query;
        const body = req.body;
        let text: string | undefined;
        let mode = one(q.mode);
        let source = one(q.source);
        if (typeof body === 'string') text = body;
        else if (body !== null && typeof body === 'object') {
          const b = body as { yaml?: unknown; mode?: unknown; source?: unknown };
          if (typeof b.yaml === 'string') text = b.yaml;
          if (typeof b.mode === 'string') mode ??= b.mode;
          if (typeof b.source === 'string') source ??= b.source;
        }
        if (text === undefined || text.trim() === '') {
          throw new PolicyOpError('invalid', [
            'the request has no policy: send the YAML as the body (content-type application/yaml)',
          ]);
        }
        return pm.add(text, source || 'request', mode ? { mode: mode as PolicyMode } : {});
      }),
    );
    app.delete(
      '/v1/policies/:name',
      handle(200, async (pm, req) => {
        await pm.delete(req.name);
        return { deleted: req.name };
      }),
    );
    app.post(
      '/v1/policies/:name/enable',
      handle(200, (pm, req) => pm.enable(req.name)),
    );
    app.post(
      '/v1/policies/:name/disable',
      handle(200, (pm, req) => pm.disable(req.name)),
    );
    app.put(
      '/v1/policies/:name/mode',
      handle(200, (pm, req) => {
        const q = req.query;
        let mode = one(q.mode);
        const body = req.body;
        if (mode === undefined && typeof body === 'string') mode = body.trim();
        if (mode === undefined && body !== null && typeof body === 'object') {
          const m = (body as { mode?: unknown }).mode;
          if (typeof m === 'string') mode = m;
        }
        if (mode === undefined) {
          throw new PolicyOpError('invalid', ['give the mode: ?mode=monitor or ?mode=enforce']);
        }
        return pm.setMode(req.name, mode as PolicyMode);
      }),
    );
  }

  /**
   * The last batch joined for a client, and its bytes: the bus hands every
   * client the same events in the same batches unless their filters (or a
   * full queue) differ, so the bytes are made once and shared. Never written
   * to once made.
   */
  private lastJoined: { batch: readonly T[]; piece: SlabPiece } | undefined;
  /** where the joined bytes live (slabs.ts); the last join holds a reference to its piece */
  private readonly slabs = new SlabPool();

  /** The bytes of this batch if the last batch joined was the same events. */
  private sharedJoin(batch: readonly T[]): SlabPiece | undefined {
    const last = this.lastJoined;
    if (!last || last.batch.length !== batch.length) return undefined;
    for (let i = 0; i < batch.length; i++) if (last.batch[i] !== batch[i]) return undefined;
    return last.piece;
  }

  /** The batch's lines joined into a piece of a slab, kept as the last join. */
  private join(batch: readonly T[], lines: readonly Line[], size: number): SlabPiece {
    const piece = this.slabs.take(size);
    writeLines(lines, piece.bytes);
    if (this.lastJoined) this.slabs.release(this.lastJoined.piece);
    this.lastJoined = { batch, piece };
    return piece;
  }

  private stream(res: ServerResponse, filter: (ev: T) => boolean): void {
    if (this.closing) {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'the agent is stopping' }));
      return;
    }
    const { encode } = this.opts;
    const slabs = this.slabs;
    const grace = this.opts.slowClientGraceMs ?? 5000;
    const coalesce = this.opts.streamCoalesceMs ?? 10;
    const maxEvents = this.opts.clientMaxEvents ?? 40_000;
    const maxBytes = this.opts.clientMaxBytes ?? 32 * 1024 * 1024;
    // The client's own buffer: each batch's lines are copied out of the
    // shared ring of encoded lines as it is published (the copy its write
    // makes anyway), so a client that lags holds bytes, never lines that the
    // ring has gone round and that would have to be encoded again (which
    // made a lagging client lag further). Bounded; what does not fit is
    // dropped and counted.
    // each piece held here, or being written, holds a reference to its slab
    let held: SlabPiece[] = [];
    let heldBytes = 0;
    let heldEvents = 0;
    let writing = false;
    // armed by the first drop, disarmed when the client takes what is held: a
    // client that takes nothing for the whole grace period is cut off
    let overflowTimer: NodeJS.Timeout | undefined;
    const send = async () => {
      writing = true;
      try {
        while (held.length > 0 && !res.destroyed) {
          const chunks = held;
          held = [];
          heldBytes = 0;
          heldEvents = 0;
          clearTimeout(overflowTimer);
          overflowTimer = undefined;
          res.cork();
          let ok = true;
          // a piece's reference is released once its bytes are written (or the write failed)
          for (const c of chunks) ok = res.write(c.bytes, () => slabs.release(c));
          res.uncork();
          if (!ok) await writable(res);
          if (coalesce > 0) await new Promise((r) => setTimeout(r, coalesce));
        }
      } catch {
        // the response is gone: its close handler cleans up
      } finally {
        writing = false;
      }
    };
    const sub = this.opts.bus.subscribe(
      (batch) => {
        if (res.destroyed) return;
        // clients that take the same events (most follow everything) share the batch's bytes
        const shared = this.sharedJoin(batch);
        const lines = shared ? undefined : batch.map(encode);
        // sized before it is copied: a batch that does not fit is not copied at all
        const size = shared ? shared.bytes.length : linesBytes(lines!);
        if (held.length > 0 && (heldBytes + size > maxBytes || heldEvents + batch.length > maxEvents)) {
          sub.countDropped(batch.length);
          overflowTimer ??= setTimeout(() => {
            this.clientsDisconnected++;
            drop();
            res.destroy();
          }, grace).unref();
          return;
        }
        const piece = shared ?? this.join(batch, lines!, size);
        slabs.retain(piece);
        held.push(piece);
        heldBytes += size;
        heldEvents += batch.length;
        if (!writing) void send();
      },
      {
        name: `api-client-${++this.clientSeq}`,
        group: API_GROUP,
        filter,
        backlog: () => ({ events: heldEvents, bytes: heldBytes }),
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
      // what was never given to a write
      for (const c of held) slabs.release(c);
      held = [];
    };
    this.clients.add(client);
    res.on('close', drop);
    raiseSendBuffer(res, this.opts.streamSendBuffer ?? 4 * 1024 * 1024);
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    res.flushHeaders();
  }
}

/**
 * A larger kernel send buffer for a stream over the unix socket (a TCP
 * socket keeps the kernel's autotuning, which a fixed size would turn off).
 * Best effort: the system's default stays if it cannot be raised.
 */
function raiseSendBuffer(res: ServerResponse, bytes: number): void {
  const sock = res.socket;
  if (bytes <= 0 || !sock || sock.remoteAddress !== undefined) return;
  const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return;
  try {
    native().setSendBuffer(fd, bytes);
  } catch {
    // the default buffer works, only with more wake-ups
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
