/** The OpenAPI description of the flow and workload routes (network-api.ts); openapi.ts merges it in. */
import type { Parameter, PathItem, Response, Schema } from './openapi.js';

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Schema) => ({ 'application/json': { schema } });
const error = (description: string): Response => ({ description, content: json(ref('Error')) });
const TOKEN = [{ bearerAuth: [] }];

const workloadName: Parameter = {
  name: 'name',
  in: 'path',
  required: true,
  description: 'the workload name',
  schema: { type: 'string' },
};

const noWorkloads = error('this agent has no workloads (no cgroup v2): the reason is in the error');

export const networkTags = [
  { name: 'network', description: 'workloads (labelled cgroups) and network flows' },
];

export const networkPaths: Record<string, PathItem> = {
  '/v1/flows': {
    get: {
      operationId: 'streamFlows',
      summary: 'Live network flows of workloads (NDJSON), from now on',
      description:
        'One {"flow": {...}, "node_name", "time"} line per flow event, as `hubble observe -o json` prints ' +
        'them: connections and datagrams of workloads with verdict FORWARDED, DROPPED or AUDIT and the ' +
        'policy and rule that decided (egress_denied_by, ...); ESTABLISHED, CLOSED (with bytes) and ' +
        'REVOKED events under flow.osprey.event. Parameters repeat; labels must all match.',
      tags: ['network'],
      parameters: [
        {
          name: 'verdict',
          in: 'query',
          description: 'FORWARDED, DROPPED or AUDIT (repeatable, or comma-separated)',
          schema: { type: 'string' },
        },
        {
          name: 'label',
          in: 'query',
          description: 'key=value on the source or the destination (repeatable: all of them)',
          schema: { type: 'string' },
          example: 'app=web',
        },
        {
          name: 'port',
          in: 'query',
          description: 'source or destination port (repeatable)',
          schema: { type: 'integer' },
        },
        {
          name: 'policy',
          in: 'query',
          description: 'flows decided by this network policy',
          schema: { type: 'string' },
        },
      ],
      responses: {
        '200': { description: 'the stream', content: { 'application/x-ndjson': { schema: ref('Flow') } } },
        '400': error('a bad verdict, label or port'),
      },
    },
  },
  '/v1/workloads': {
    get: {
      operationId: 'listWorkloads',
      summary: 'Every workload: labels, identity, cgroup',
      tags: ['network'],
      responses: {
        '200': {
          description: 'the workloads',
          content: json({
            type: 'object',
            properties: { workloads: { type: 'array', items: ref('Workload') } },
          }),
        },
        '503': noWorkloads,
      },
    },
    post: {
      operationId: 'createWorkload',
      summary: 'Create a managed workload cgroup (what `osprey run` does)',
      description:
        'The caller joins it by writing a pid to cgroup_path/cgroup.procs. The agent removes it once it ' +
        'has had processes and is empty again, or when nothing joined it within 30 s.',
      tags: ['network'],
      security: TOKEN,
      requestBody: {
        required: true,
        content: json({
          type: 'object',
          properties: {
            name: { type: 'string', description: 'default: generated' },
            labels: { type: 'object', additionalProperties: { type: 'string' } },
          },
          required: ['labels'],
        }),
      },
      responses: {
        '201': { description: 'created', content: json(ref('Workload')) },
        '400': error('bad labels or name'),
        '401': error('over TCP without a valid bearer token'),
        '409': error('a workload of that name exists'),
        '503': noWorkloads,
      },
    },
  },
  '/v1/workloads/{name}': {
    get: {
      operationId: 'getWorkload',
      summary: 'One workload',
      tags: ['network'],
      parameters: [workloadName],
      responses: {
        '200': { description: 'the workload', content: json(ref('Workload')) },
        '404': error('no workload of that name'),
        '503': noWorkloads,
      },
    },
    delete: {
      operationId: 'deleteWorkload',
      summary: 'Forget a workload; a managed one is emptied (its processes killed) and removed',
      tags: ['network'],
      security: TOKEN,
      parameters: [workloadName],
      responses: {
        '200': {
          description: 'deleted',
          content: json({ type: 'object', properties: { deleted: { type: 'string' } } }),
        },
        '401': error('over TCP without a valid bearer token'),
        '404': error('no workload of that name'),
        '409': error('a workload from the config file: change it there'),
        '503': noWorkloads,
      },
    },
  },
};

export const networkSchemas: Record<string, Schema> = {
  Workload: {
    type: 'object',
    properties: {
      name: { type: 'string' },
      labels: { type: 'object', additionalProperties: { type: 'string' } },
      identity: { type: 'integer', description: 'numeric identity of the label set (flows carry it)' },
      cgroup_path: { type: 'string' },
      cgroup_id: { type: 'string' },
      source: { type: 'string', enum: ['run', 'config'] },
      managed: { type: 'boolean', description: 'created and removed by the agent' },
      populated: { type: 'boolean', description: 'has processes now' },
      created_at: { type: 'string' },
    },
    required: ['name', 'labels', 'identity', 'cgroup_path', 'cgroup_id'],
  },
  Flow: {
    type: 'object',
    description:
      "a flow line in Hubble's shape: flow {time, verdict, IP, l4, source, destination, traffic_direction, " +
      'Summary, egress_allowed_by/egress_denied_by/ingress_..., osprey {event, socket_cookie, policy_generation, pid, exec_id, bytes}}',
    properties: {
      flow: { type: 'object', additionalProperties: true },
      node_name: { type: 'string' },
      time: { type: 'string', format: 'date-time' },
    },
    required: ['flow', 'node_name', 'time'],
  },
};
