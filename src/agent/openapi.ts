/**
 * The API described as an OpenAPI 3.0 document, served at GET
 * /v1/openapi.json. Written by hand as a typed object: it is the contract
 * the web UI and other clients are built against, so it says what each
 * field means rather than what a generator could infer.
 *
 * Every route the server registers must be here: `undocumentedRoutes`
 * compares the two, the agent logs any difference at start, and a test
 * fails on it.
 */
import type { FastifyInstance } from 'fastify';
import { networkPaths, networkSchemas, networkTags } from './network-openapi.js';

// The parts of OpenAPI 3.0 this document uses.
export interface Schema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  items?: Schema;
  required?: string[];
  enum?: string[];
  format?: string;
  nullable?: boolean;
  example?: unknown;
  $ref?: string;
}

export interface Parameter {
  name: string;
  in: 'query' | 'path' | 'header';
  description: string;
  required?: boolean;
  schema: Schema;
  example?: unknown;
}

interface MediaType {
  schema: Schema;
  example?: unknown;
}

export interface Response {
  description: string;
  content?: Record<string, MediaType>;
}

export interface Operation {
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  parameters?: Parameter[];
  requestBody?: { required?: boolean; description?: string; content: Record<string, MediaType> };
  responses: Record<string, Response>;
  security?: Record<string, string[]>[];
}

export type Method = 'get' | 'post' | 'put' | 'delete' | 'patch';
export type PathItem = Partial<Record<Method, Operation>>;

export interface OpenApiDocument {
  openapi: '3.0.3';
  info: { title: string; version: string; description: string };
  servers: { url: string; description: string }[];
  tags: { name: string; description: string }[];
  paths: Record<string, PathItem>;
  components: {
    schemas: Record<string, Schema>;
    securitySchemes: Record<string, { type: 'http'; scheme: 'bearer'; description: string }>;
  };
}

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Schema, example?: unknown): Record<string, MediaType> => ({
  'application/json': example === undefined ? { schema } : { schema, example },
});
const error = (description: string): Response => ({ description, content: json(ref('Error')) });
const TOKEN = [{ bearerAuth: [] }];

const policyName: Parameter = {
  name: 'name',
  in: 'path',
  required: true,
  description: 'the policy name (metadata.name of the TracingPolicy)',
  schema: { type: 'string' },
};

const workloadName: Parameter = {
  name: 'name',
  in: 'path',
  required: true,
  description: 'the workload name',
  schema: { type: 'string' },
};

const policyErrors = {
  '401': error('over TCP without a valid bearer token'),
  '404': error('no policy of that name'),
  '503': error('this agent does not manage policies'),
};

/** Filters of the live stream and of history, in the manner of Tetragon's export filters. */
const filterParams: Parameter[] = [
  {
    name: 'allow',
    in: 'query',
    description:
      'allow list: Tetragon filters as JSON lines or a JSON array; an event passes when any filter ' +
      'matches (fields within one filter AND, values within one field OR). Fields: binary_regex, ' +
      'arguments_regex, parent_binary_regex, parent_arguments_regex, ancestor_binary_regex, pid, ' +
      'pid_set, event_set, policy_names',
    schema: { type: 'string' },
    example: '[{"binary_regex":["^/usr/bin/curl$"],"event_set":["PROCESS_EXEC"]}]',
  },
  {
    name: 'deny',
    in: 'query',
    description: 'deny list, same shape as allow; an event matching any deny filter is left out (deny wins)',
    schema: { type: 'string' },
  },
  {
    name: 'process',
    in: 'query',
    description: 'regular expression searched in "binary arguments" of the event\'s process',
    schema: { type: 'string' },
  },
];

const timeBound = (name: string, what: string): Parameter => ({
  name,
  in: 'query',
  description: `${what}: a duration back from now (30m, 1h, 7d) or an RFC 3339 time`,
  schema: { type: 'string' },
  example: name === 'since' ? '1h' : '2026-11-25T08:13:22Z',
});

const process_: Schema = {
  type: 'object',
  description: 'a process as Tetragon exports it (exec_id, pid, binary, arguments, parent_exec_id, ...)',
  properties: {
    exec_id: { type: 'string', description: 'base64 of node:ktime:pid' },
    pid: { type: 'integer' },
    binary: { type: 'string' },
    arguments: { type: 'string' },
    parent_exec_id: { type: 'string' },
    start_time: { type: 'string', format: 'date-time' },
  },
  additionalProperties: true,
};

export function openApiDocument(version: string): OpenApiDocument {
  return {
    openapi: '3.0.3',
    info: {
      title: 'Osprey agent API',
      version,
      description:
        'The API of one Osprey agent, on its unix socket (root only, no token) and, with --api-address, ' +
        'over TCP. Over TCP every request that is not GET/HEAD/OPTIONS needs "Authorization: Bearer ' +
        'TOKEN" (the token is in --api-token-file). Errors answer {"error": "..."}; policy errors add ' +
        '{"errors": [...]}, one message per problem.',
    },
    servers: [{ url: '/', description: 'the agent this document was fetched from' }],
    tags: [
      { name: 'agent', description: 'health, status and this document' },
      { name: 'events', description: 'live events and history' },
      { name: 'processes', description: 'process trees from the event store' },
      {
        name: 'policies',
        description: 'TracingPolicies and network policies (CiliumNetworkPolicy shape) of the running agent',
      },
      { name: 'network', description: 'workloads (cgroups with labels) and network flows' },
      ...networkTags,
    ],
    paths: {
      ...networkPaths,
      '/v1/health': {
        get: {
          operationId: 'health',
          summary: 'Liveness, and which agent answers',
          tags: ['agent'],
          responses: { '200': { description: 'the agent is up', content: json(ref('Health')) } },
        },
      },
      '/v1/status': {
        get: {
          operationId: 'status',
          summary: 'Kernel features, programs, counters, drops, store, exporters, memory',
          tags: ['agent'],
          responses: { '200': { description: 'the status document', content: json(ref('Status')) } },
        },
      },
      '/v1/openapi.json': {
        get: {
          operationId: 'openapi',
          summary: 'This document',
          tags: ['agent'],
          responses: {
            '200': { description: 'OpenAPI 3.0 document', content: json({ type: 'object' }) },
          },
        },
      },
      '/v1/events': {
        get: {
          operationId: 'streamEvents',
          summary: 'Live events from now on, as NDJSON (one event per line), filtered by the agent',
          description:
            'Each client has a bounded queue; a client that does not read drops events (counted in ' +
            'status.drops.api_slow_client_dropped) and is disconnected once it stays behind for 5 s ' +
            '(status.drops.api_clients_disconnected). Other clients are never held up.',
          tags: ['events'],
          parameters: [
            {
              name: 'types',
              in: 'query',
              description: 'comma-separated event types (process_exec,process_exit,process_kprobe ...)',
              schema: { type: 'string' },
            },
            {
              name: 'policy',
              in: 'query',
              description: 'only events of this TracingPolicy (policy_name)',
              schema: { type: 'string' },
            },
            ...filterParams,
          ],
          responses: {
            '200': {
              description: 'a stream of events, one JSON object per line, until the client or agent ends it',
              content: { 'application/x-ndjson': { schema: ref('Event') } },
            },
            '400': error('a bad filter (the message names the list, line and field)'),
            '503': error('the agent is stopping'),
          },
        },
      },
      '/v1/events/history': {
        get: {
          operationId: 'eventHistory',
          summary: 'Stored events matching the filters, oldest first (the newest `limit` of them)',
          description:
            "type, binary and policy use the store's indexes; process, allow and deny are applied to " +
            'what the store returns, so limit counts the events before them.',
          tags: ['events'],
          parameters: [
            timeBound('since', 'events at or after'),
            timeBound('until', 'events before'),
            {
              name: 'type',
              in: 'query',
              description: 'comma-separated event types',
              schema: { type: 'string' },
              example: 'process_exec,process_exit',
            },
            {
              name: 'binary',
              in: 'query',
              description: "regular expression searched in the event's process binary",
              schema: { type: 'string' },
            },
            {
              name: 'policy',
              in: 'query',
              description: 'comma-separated policy names (policy_name)',
              schema: { type: 'string' },
            },
            {
              name: 'limit',
              in: 'query',
              description: 'at most this many events, the newest (default 1000, at most 100000)',
              schema: { type: 'integer' },
            },
            {
              name: 'format',
              in: 'query',
              description:
                'json (default): one object; lines: one event a line (application/x-ndjson), with ' +
                'count, limit and truncated in the X-Osprey-Count, X-Osprey-Limit and X-Osprey-Truncated headers',
              schema: { type: 'string', enum: ['json', 'lines'] },
            },
            ...filterParams,
          ],
          responses: {
            '200': {
              description: 'the events',
              content: {
                ...json(ref('History')),
                'application/x-ndjson': { schema: { type: 'string', description: 'one event a line' } },
              },
            },
            '400': error('a bad parameter'),
            '500': error('the store failed to answer'),
            '503': error('the event store is off or could not be opened (the message says why)'),
          },
        },
      },
      '/v1/processes/{exec_id}': {
        get: {
          operationId: 'processTree',
          summary: 'A process with its ancestors, children, descendants and events, from the event store',
          tags: ['processes'],
          parameters: [
            {
              name: 'exec_id',
              in: 'path',
              required: true,
              description: 'the exec_id (URL-encoded: base64 may hold "/", "+" and "=")',
              schema: { type: 'string' },
            },
            {
              name: 'events',
              in: 'query',
              description: 'at most this many of its events, the newest (default 1000)',
              schema: { type: 'integer' },
            },
          ],
          responses: {
            '200': { description: 'the process tree', content: json(ref('ProcessTree')) },
            '400': error('a bad parameter'),
            '404': error('the store does not know this exec_id'),
            '503': error('the event store is off or could not be opened'),
          },
        },
      },
      '/v1/policies': {
        get: {
          operationId: 'listPolicies',
          summary: 'Every policy: state, mode, source, counters, kernel memory',
          tags: ['policies'],
          responses: {
            '200': {
              description: 'the policies',
              content: json({
                type: 'object',
                properties: { policies: { type: 'array', items: ref('PolicyInfo') } },
                required: ['policies'],
              }),
            },
            '503': policyErrors['503'],
          },
        },
        post: {
          operationId: 'addPolicy',
          summary: 'Load a TracingPolicy; answers once its programs are attached',
          tags: ['policies'],
          security: TOKEN,
          parameters: [
            {
              name: 'mode',
              in: 'query',
              description: 'overrides the policy-mode option',
              schema: { type: 'string', enum: ['monitor', 'enforce'] },
            },
            {
              name: 'source',
              in: 'query',
              description: 'file name that error messages name (default "request")',
              schema: { type: 'string' },
            },
          ],
          requestBody: {
            required: true,
            description: 'the YAML, or JSON {"yaml": "...", "mode": "...", "source": "..."}',
            content: {
              'application/yaml': { schema: { type: 'string' } },
              'application/json': {
                schema: {
                  type: 'object',
                  properties: {
                    yaml: { type: 'string' },
                    mode: { type: 'string', enum: ['monitor', 'enforce'] },
                    source: { type: 'string' },
                  },
                  required: ['yaml'],
                },
              },
            },
          },
          responses: {
            '201': { description: 'loaded', content: json(ref('PolicyInfo')) },
            '400': {
              description: 'invalid: every problem as FILE:LINE:COL: field: message (hint)',
              content: json(ref('PolicyError')),
            },
            '401': policyErrors['401'],
            '409': { description: 'a policy of that name is loaded', content: json(ref('PolicyError')) },
            '422': { description: 'the kernel refused it', content: json(ref('PolicyError')) },
            '503': policyErrors['503'],
          },
        },
      },
      '/v1/policies/{name}': {
        get: {
          operationId: 'getPolicy',
          summary: 'One policy',
          tags: ['policies'],
          parameters: [policyName],
          responses: {
            '200': { description: 'the policy', content: json(ref('PolicyInfo')) },
            '404': policyErrors['404'],
            '503': policyErrors['503'],
          },
        },
        delete: {
          operationId: 'deletePolicy',
          summary: 'Unload the policy and forget it',
          tags: ['policies'],
          security: TOKEN,
          parameters: [policyName],
          responses: {
            '200': {
              description: 'deleted',
              content: json({ type: 'object', properties: { deleted: { type: 'string' } } }),
            },
            ...policyErrors,
          },
        },
      },
      '/v1/policies/{name}/enable': {
        post: {
          operationId: 'enablePolicy',
          summary: 'Load a disabled policy again from its stored YAML',
          tags: ['policies'],
          security: TOKEN,
          parameters: [policyName],
          responses: {
            '200': { description: 'enabled', content: json(ref('PolicyInfo')) },
            '422': { description: 'the kernel refused it', content: json(ref('PolicyError')) },
            ...policyErrors,
          },
        },
      },
      '/v1/policies/{name}/disable': {
        post: {
          operationId: 'disablePolicy',
          summary: 'Unload the policy and keep it (state disabled)',
          tags: ['policies'],
          security: TOKEN,
          parameters: [policyName],
          responses: {
            '200': { description: 'disabled', content: json(ref('PolicyInfo')) },
            ...policyErrors,
          },
        },
      },
      '/v1/policies/{name}/mode': {
        put: {
          operationId: 'setPolicyMode',
          summary: 'Switch between monitor (actions counted, not taken) and enforce, live',
          tags: ['policies'],
          security: TOKEN,
          parameters: [
            policyName,
            {
              name: 'mode',
              in: 'query',
              description: 'the mode; may come in the body instead (text, or JSON {"mode": ...})',
              schema: { type: 'string', enum: ['monitor', 'enforce'] },
            },
          ],
          responses: {
            '200': { description: 'the mode is set', content: json(ref('PolicyInfo')) },
            '400': { description: 'no or bad mode', content: json(ref('PolicyError')) },
            ...policyErrors,
          },
        },
      },
      '/v1/flows': {
        get: {
          operationId: 'streamFlows',
          summary: 'Live network flows with their verdicts, as NDJSON (Hubble flow field names)',
          description: 'Each parameter may be repeated or comma-separated; labels must all match.',
          tags: ['network'],
          parameters: [
            {
              name: 'verdict',
              in: 'query',
              description: 'flow verdicts to keep (e.g. FORWARDED, DROPPED)',
              schema: { type: 'string' },
            },
            {
              name: 'label',
              in: 'query',
              description: 'workload label k=v that the source or destination carries',
              schema: { type: 'string' },
              example: 'app=web',
            },
            { name: 'port', in: 'query', description: 'destination port', schema: { type: 'integer' } },
            {
              name: 'policy',
              in: 'query',
              description: 'only flows decided by this network policy',
              schema: { type: 'string' },
            },
          ],
          responses: {
            '200': {
              description: 'a stream of flow events, one JSON object per line',
              content: { 'application/x-ndjson': { schema: ref('Event') } },
            },
            '400': error('a bad filter'),
          },
        },
      },
      '/v1/workloads': {
        get: {
          operationId: 'listWorkloads',
          summary: 'Every workload: name, labels, identity, cgroup',
          tags: ['network'],
          responses: {
            '200': {
              description: 'the workloads',
              content: json({
                type: 'object',
                properties: { workloads: { type: 'array', items: ref('Workload') } },
                required: ['workloads'],
              }),
            },
            '503': error('this agent has no workloads (no cgroup v2)'),
          },
        },
        post: {
          operationId: 'createWorkload',
          summary:
            'Create a managed workload (a cgroup the agent owns); join it by writing a pid to cgroup.procs',
          tags: ['network'],
          security: TOKEN,
          requestBody: {
            required: true,
            content: json(
              {
                type: 'object',
                properties: {
                  name: { type: 'string' },
                  labels: { type: 'object', additionalProperties: { type: 'string' } },
                },
                required: ['labels'],
              },
              { name: 'web-1', labels: { app: 'web' } },
            ),
          },
          responses: {
            '201': { description: 'created', content: json(ref('Workload')) },
            '400': error('invalid name or labels'),
            '401': error('over TCP without a valid bearer token'),
            '409': error('the name exists, or the request was refused'),
            '503': error('this agent has no workloads'),
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
            '503': error('this agent has no workloads'),
          },
        },
        delete: {
          operationId: 'deleteWorkload',
          summary: "Delete a workload; a managed workload's processes are killed",
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
            '409': error('refused'),
            '503': error('this agent has no workloads'),
          },
        },
      },
    },
    components: {
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          description: 'over TCP only: the content of --api-token-file; the unix socket needs none',
        },
      },
      schemas: {
        ...networkSchemas,
        Error: {
          type: 'object',
          properties: { error: { type: 'string', description: 'what went wrong and what to do' } },
          required: ['error'],
        },
        PolicyError: {
          type: 'object',
          properties: {
            error: { type: 'string' },
            errors: { type: 'array', items: { type: 'string' }, description: 'one message per problem' },
          },
          required: ['error', 'errors'],
        },
        Health: {
          type: 'object',
          properties: {
            status: { type: 'string', enum: ['ok'] },
            pid: { type: 'integer' },
            version: { type: 'string' },
            node_name: { type: 'string' },
          },
          required: ['status'],
        },
        Status: {
          type: 'object',
          description:
            'see `osprey status -o json`: node_name, version, kernel, programs, events, drops, policies, ' +
            'process_cache, export_file, export_stdout, store, metrics, api, latency, memory',
          additionalProperties: true,
        },
        Event: {
          type: 'object',
          description:
            "one event in Tetragon's export shape: a single payload key (process_exec, process_exit, " +
            'process_kprobe, process_tracepoint, rate_limit_info ...) plus node_name and time',
          properties: { node_name: { type: 'string' }, time: { type: 'string', format: 'date-time' } },
          additionalProperties: true,
          example: {
            process_exec: { process: { exec_id: 'bm9kZToxMjM6NDI=', pid: 42, binary: '/usr/bin/curl' } },
            node_name: 'web-1',
            time: '2026-11-25T08:13:22.123456789Z',
          },
        },
        History: {
          type: 'object',
          properties: {
            events: { type: 'array', items: ref('Event') },
            count: { type: 'integer' },
            limit: { type: 'integer' },
            truncated: {
              type: 'boolean',
              description: 'the store held at least `limit` matches: older exist',
            },
          },
          required: ['events', 'count', 'limit', 'truncated'],
        },
        Process: process_,
        StoredProcess: {
          type: 'object',
          properties: {
            exec_id: { type: 'string' },
            parent_exec_id: { type: 'string' },
            pid: { type: 'integer' },
            binary: { type: 'string' },
            arguments: { type: 'string' },
            start_time: { type: 'string', format: 'date-time' },
            exit_time: { type: 'string', format: 'date-time' },
            exit_status: { type: 'integer' },
            exit_signal: { type: 'string' },
            depth: { type: 'integer', description: 'descendants only: 1 = child, 2 = grandchild ...' },
            process: ref('Process'),
          },
          required: ['exec_id', 'pid', 'binary', 'arguments', 'process'],
        },
        ProcessTree: {
          type: 'object',
          properties: {
            process: ref('StoredProcess'),
            ancestors: {
              type: 'array',
              items: ref('StoredProcess'),
              description: 'parent first, up to the oldest the store knows',
            },
            children: { type: 'array', items: ref('StoredProcess') },
            descendants: {
              type: 'array',
              items: ref('StoredProcess'),
              description: 'children, grandchildren ... by depth',
            },
            events: {
              type: 'array',
              items: ref('Event'),
              description: "the process's own events, oldest first",
            },
          },
          required: ['process', 'ancestors', 'children', 'descendants', 'events'],
        },
        Workload: {
          type: 'object',
          properties: {
            name: { type: 'string' },
            labels: { type: 'object', additionalProperties: { type: 'string' } },
            identity: { type: 'integer', description: 'numeric identity of its label set' },
            cgroup_path: { type: 'string' },
            cgroup_id: { type: 'string' },
            source: { type: 'string' },
            managed: { type: 'boolean', description: 'created (and removed) by the agent' },
            populated: { type: 'boolean', description: 'processes in it now' },
            created_at: { type: 'string', format: 'date-time' },
          },
          additionalProperties: true,
          required: ['name', 'labels'],
        },
        PolicyInfo: {
          type: 'object',
          description:
            'see `osprey policy list -o json`; kind tells a TracingPolicy from a network policy, whose ' +
            'fields differ',
          properties: {
            name: { type: 'string' },
            kind: { type: 'string', description: 'TracingPolicy, CiliumNetworkPolicy ...' },
            state: { type: 'string', enum: ['enabled', 'disabled', 'error'] },
            error: { type: 'string' },
            mode: { type: 'string', enum: ['monitor', 'enforce'] },
            source: { type: 'string' },
            file: { type: 'string' },
            hooks: { type: 'integer' },
            programs: { type: 'integer' },
            memory_bytes: { type: 'integer' },
            counters: { type: 'object', nullable: true, additionalProperties: { type: 'integer' } },
          },
          additionalProperties: true,
          required: ['name', 'state', 'mode'],
        },
      },
    },
  };
}

/** "GET /v1/policies/:name" for every operation of the document. */
export function documentedRoutes(doc: OpenApiDocument): string[] {
  const out: string[] = [];
  for (const [p, item] of Object.entries(doc.paths)) {
    const url = p.replace(/\{([^}]+)\}/g, ':$1');
    for (const m of Object.keys(item)) out.push(`${m.toUpperCase()} ${url}`);
  }
  return out.sort();
}

/** Registered routes ("GET /v1/x") the document does not describe, and documented ones not registered. */
export function compareRoutes(
  registered: readonly string[],
  doc: OpenApiDocument,
): { undocumented: string[]; unregistered: string[] } {
  const documented = new Set(documentedRoutes(doc));
  const reg = new Set(registered.filter((r) => !r.startsWith('HEAD ') && !r.startsWith('OPTIONS ')));
  return {
    undocumented: [...reg].filter((r) => !documented.has(r)).sort(),
    unregistered: [...documented].filter((r) => !reg.has(r)).sort(),
  };
}

export function openApiRoutes(app: FastifyInstance, version: string): void {
  // built once: the document does not change while the agent runs
  const body = JSON.stringify(openApiDocument(version));
  app.get('/v1/openapi.json', async (_req, reply) => reply.type('application/json').send(body));
}
