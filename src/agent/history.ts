/**
 * The API's questions about the past, answered from the event store:
 *
 *   GET /v1/events/history?since=1h&until=..&type=a,b&binary=RE&policy=NAME&process=RE
 *                         &allow=JSON&deny=JSON&limit=N[&format=lines]
 *       -> {events: [...], count, limit, truncated}   (oldest first)
 *       -> format=lines: one event a line (application/x-ndjson), count,
 *          limit and truncated in the X-Osprey-Count, -Limit and -Truncated headers
 *   GET /v1/processes/:exec_id?events=N
 *       -> {process, ancestors, children, descendants, events}
 *
 * since/until take a duration back from now ("30m", "1h", "7d") or an RFC
 * 3339 time. type, binary and policy are answered by the store's indexes;
 * process, allow and deny are applied to what the store returns, so `limit`
 * counts the events before them.
 *
 * Both are answered on the store's query thread (src/store/queries.ts),
 * which makes the JSON body too: the event loop only checks the parameters
 * and sends the bytes.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { checkEventTypes } from '../events/filter.js';
import type { ExportEvent } from '../events/types.js';
import { ExportOptionError } from '../export/json-list.js';
import { boundToNs, StoreError, type StoreQuery } from '../store/index.js';
import { QueryError } from '../store/queries.js';
import { parseTimeBound } from './duration.js';
import { type EventFilterOptions, eventFilter } from './event-filter.js';
import type { AgentStore } from './store.js';

/** Default and largest `limit` of a history query. */
export const HISTORY_DEFAULT_LIMIT = 1000;
export const HISTORY_MAX_LIMIT = 100_000;

type Query = Record<string, string | string[] | undefined>;

/** A request the client got wrong: answered 400 with the message. */
class BadRequest extends Error {}

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}

function list(v: string | string[] | undefined): string[] | undefined {
  const s = one(v);
  if (s === undefined) return undefined;
  const l = s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  return l.length ? l : undefined;
}

function intParam(q: Query, name: string, def: number, max: number): number {
  const raw = one(q[name]);
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > max) {
    throw new BadRequest(`${name}=${raw}: give a whole number from 1 to ${max}`);
  }
  return n;
}

/**
 * The store query and the filters applied after it, from the request's
 * parameters: as options (for the query thread) and as the predicate they
 * make (checked here, so that a bad one is refused before any query).
 */
export function historyQuery(
  q: Query,
  nowMs = Date.now(),
): {
  query: StoreQuery;
  filter: EventFilterOptions | undefined;
  after: ((ev: ExportEvent) => boolean) | undefined;
} {
  const query: StoreQuery = { limit: intParam(q, 'limit', HISTORY_DEFAULT_LIMIT, HISTORY_MAX_LIMIT) };
  try {
    const since = one(q.since);
    const until = one(q.until);
    if (since) query.since = parseTimeBound(since, 'since', nowMs);
    if (until) query.until = parseTimeBound(until, 'until', nowMs);
    if (query.since !== undefined && query.until !== undefined) {
      if (boundToNs(query.since, 'since') > boundToNs(query.until, 'until')) {
        throw new Error(
          `since "${since}" (${query.since}) is after until "${until}" (${query.until}): no event lies ` +
            'between them; since is the older bound (e.g. since 2h, until 1h)',
        );
      }
    }
  } catch (err) {
    throw new BadRequest((err as Error).message);
  }
  const types = list(q.type) ?? list(q.types);
  if (types) {
    try {
      checkEventTypes(types);
    } catch (err) {
      throw new BadRequest((err as Error).message);
    }
    query.types = types;
  }
  const binary = one(q.binary);
  if (binary) {
    try {
      new RegExp(binary);
    } catch (err) {
      throw new BadRequest(`binary "${binary}" is not a valid regular expression: ${(err as Error).message}`);
    }
    query.binary = binary;
  }
  const policies = list(q.policy);
  if (policies) query.policy = policies;
  const proc = one(q.process);
  const allow = one(q.allow);
  const deny = one(q.deny);
  let after: ((ev: ExportEvent) => boolean) | undefined;
  let filter: EventFilterOptions | undefined;
  if (proc || allow || deny) {
    filter = {
      ...(proc ? { process: proc } : {}),
      ...(allow ? { allow } : {}),
      ...(deny ? { deny } : {}),
    };
    try {
      after = eventFilter(filter);
    } catch (err) {
      throw new BadRequest((err as Error).message);
    }
  }
  return { query, filter, after };
}

function failed(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof BadRequest || err instanceof ExportOptionError || err instanceof QueryError) {
    return reply.code(400).send({ error: err.message });
  }
  if (err instanceof StoreError) return reply.code(500).send({ error: err.message });
  // the store's own checks (event type names, limits) are about the request
  return reply.code(400).send({ error: (err as Error)?.message ?? String(err) });
}

/** Register the history routes; `store` may be unavailable, and then they answer 503. */
export function historyRoutes(app: FastifyInstance, store: AgentStore): void {
  app.get('/v1/events/history', async (req, reply) => {
    const why = store.unavailable();
    if (why) return reply.code(503).send({ error: why });
    try {
      const q = req.query as Query;
      const { query, filter } = historyQuery(q);
      const format = one(q.format);
      if (format !== undefined && format !== 'json' && format !== 'lines') {
        throw new BadRequest(`format=${format}: give json (the default) or lines`);
      }
      const { body, meta } = await store.queries!.history(query, filter, format === 'lines');
      if (format === 'lines') {
        return reply
          .type('application/x-ndjson; charset=utf-8')
          .header('x-osprey-count', String(meta.count))
          .header('x-osprey-limit', String(meta.limit))
          .header('x-osprey-truncated', String(meta.truncated))
          .send(body);
      }
      return reply.type('application/json; charset=utf-8').send(body);
    } catch (err) {
      return failed(reply, err);
    }
  });

  app.get('/v1/processes/:exec_id', async (req, reply) => {
    const why = store.unavailable();
    if (why) return reply.code(503).send({ error: why });
    const execId = (req.params as { exec_id: string }).exec_id;
    try {
      const q = req.query as Query;
      const maxEvents = intParam(q, 'events', 1000, HISTORY_MAX_LIMIT);
      const body = await store.queries!.process(execId, { maxEvents });
      if (!body) {
        return reply.code(404).send({
          error:
            `no process with exec_id ${execId} in the event store; it may have run before the store ` +
            'was on, or left it by retention',
        });
      }
      return reply.type('application/json; charset=utf-8').send(body);
    } catch (err) {
      return failed(reply, err);
    }
  });
}
