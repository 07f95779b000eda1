/**
 * The API of workloads and flows:
 *
 *   GET    /v1/flows?verdict=V&label=k=v&port=N&policy=NAME
 *                                 NDJSON stream of flow events from now on
 *                                 (each parameter repeatable; labels: all must match)
 *   GET    /v1/workloads          {workloads: WorkloadInfo[]}
 *   GET    /v1/workloads/:name    WorkloadInfo
 *   POST   /v1/workloads          body {"name"?: N, "labels": {k: v}} -> 201 WorkloadInfo
 *                                 (a managed cgroup; join it by writing a pid to
 *                                 cgroup_path/cgroup.procs)
 *   DELETE /v1/workloads/:name    {deleted: name}; a managed workload's processes are killed
 *
 * Errors answer {error} with 400 (invalid), 404, 409 (exists, refused), 500,
 * or 503 when the agent has no workloads (no cgroup v2).
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { makeFlowFilter } from '../events/flow.js';
import type { ExportEvent } from '../events/types.js';
import type { NetworkFeature } from './network.js';
import { type WorkloadManager, WorkloadOpError } from './workloads.js';

/** Starts an NDJSON stream of the bus events the filter keeps (ApiServer's own). */
export type StreamFn<T> = (res: ServerResponse, filter: (ev: T) => boolean) => void;

const STATUS_OF: Readonly<Record<WorkloadOpError['code'], number>> = {
  invalid: 400,
  'not-found': 404,
  exists: 409,
  refused: 409,
  failed: 500,
};

type Query = Record<string, string | string[] | undefined>;

function many(v: string | string[] | undefined): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).filter((s) => s !== '');
}

export function networkRoutes(
  app: FastifyInstance,
  stream: StreamFn<ExportEvent>,
  net: NetworkFeature,
): void {
  app.get('/v1/flows', (req, reply) => {
    const q = req.query as Query;
    let filter: (ev: ExportEvent) => boolean;
    try {
      const ports = many(q.port).map((p) => {
        const n = Number(p);
        if (!/^\d+$/.test(p) || n > 65535) throw new Error(`port "${p}" is not a number in 0..65535`);
        return n;
      });
      const policy = many(q.policy)[0];
      filter = makeFlowFilter({
        verdicts: many(q.verdict),
        // a label value may hold a comma-free "k=v"; commas separate several
        labels: many(q.label),
        ports,
        ...(policy ? { policy } : {}),
      });
    } catch (err) {
      reply.code(400).send({ error: (err as Error).message });
      return;
    }
    reply.hijack();
    stream(reply.raw, filter);
  });

  const handle =
    (status: number, f: (wm: WorkloadManager, req: FastifyRequest) => unknown) =>
    async (req: FastifyRequest, reply: FastifyReply) => {
      const wm = net.workloads;
      if (!wm) {
        return reply
          .code(503)
          .send({ error: `this agent has no workloads: ${net.unavailable ?? 'not started'}` });
      }
      try {
        return reply.code(status).send(await f(wm, req));
      } catch (err) {
        if (err instanceof WorkloadOpError)
          return reply.code(STATUS_OF[err.code]).send({ error: err.message });
        throw err;
      }
    };
  const nameOf = (req: FastifyRequest) => (req.params as { name?: string }).name ?? '';

  app.get(
    '/v1/workloads',
    handle(200, (wm) => ({ workloads: wm.list() })),
  );
  app.get(
    '/v1/workloads/:name',
    handle(200, (wm, req) => wm.get(nameOf(req))),
  );
  app.post(
    '/v1/workloads',
    handle(201, (wm, req) => {
      const b = req.body as { name?: unknown; labels?: unknown } | null;
      if (b === null || typeof b !== 'object') {
        throw new WorkloadOpError('invalid', 'send JSON: {"name": "web-1", "labels": {"app": "web"}}');
      }
      if (b.name !== undefined && typeof b.name !== 'string')
        throw new WorkloadOpError('invalid', 'name must be a string');
      if (b.labels === null || typeof b.labels !== 'object' || Array.isArray(b.labels)) {
        throw new WorkloadOpError('invalid', 'labels must be an object of strings: {"app": "web"}');
      }
      const info = wm.create(b.name as string | undefined, b.labels as Record<string, string>);
      // with large policies its tables are compiled in slices: nothing may start in it before they are in force
      return (net.controller?.attached(info.cgroup_id) ?? Promise.resolve()).then(
        () => info,
        (err: Error) => {
          throw new WorkloadOpError(
            'failed',
            `workload "${info.name}" was made, but its network policy is not in force: ${err.message}`,
          );
        },
      );
    }),
  );
  app.delete(
    '/v1/workloads/:name',
    handle(200, (wm, req) => {
      wm.delete(nameOf(req));
      return { deleted: nameOf(req) };
    }),
  );
}
