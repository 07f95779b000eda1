/**
 * The agent as a service: the event store, history and process queries,
 * redaction and the export file's filters, Prometheus metrics, the API over
 * TCP and its OpenAPI document. One object, so that the daemon's wiring
 * (agent.ts) calls it at a handful of points and stays readable:
 *
 *   open          at start, before anything is attached (options checked, store opened)
 *   routes        while the API registers its routes
 *   listen        once the API is up (store fed from the bus, metrics and TCP listening)
 *   beforePublish every batch on its way to the bus (redaction, event metrics)
 *   closeSinks    at stop, before the export file closes
 *   close         at stop, after the API has closed
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { EncodedLine } from '../events/encode.js';
import type { ExportEvent } from '../events/types.js';
import type { ExportPipelineStats } from '../export/index.js';
import { parseListenAddress } from './address.js';
import type { EventBus } from './bus.js';
import type { AgentConfig } from './config.js';
import { ExportOptions, type RedactionStatus } from './export-options.js';
import { historyRoutes } from './history.js';
import { AgentMetrics, agentMetricsSources, type MetricsStatus } from './metrics.js';
import { compareRoutes, openApiDocument, openApiRoutes } from './openapi.js';
import type { AgentStatus } from './status.js';
import { AgentStore, type StoreStatus } from './store.js';
import { loadOrCreateToken, TcpApi, type TcpApiStatus } from './tcp-api.js';
import { version } from './version.js';

export interface ServiceStatus {
  store: StoreStatus;
  metrics: MetricsStatus | null;
  /** what the export file's allow/deny lists, field filters and rate limit did; null when none is set */
  export_filters: ExportPipelineStats | null;
  redaction: RedactionStatus | null;
}

export interface ApiServiceStatus {
  /** the API over TCP; null when --api-address is not set */
  tcp: TcpApiStatus | null;
  /** every route the API serves, "GET /v1/status" ... */
  routes: string[];
}

/** What listen needs of the API server and the agent. */
export interface ServiceHost {
  bus: EventBus<ExportEvent>;
  status: () => AgentStatus;
  /** routes registered so far, "GET /v1/x" */
  routes: () => string[];
  /** the API's router, for requests arriving over TCP */
  handle: (req: IncomingMessage, res: ServerResponse) => void;
}

export class AgentServices {
  readonly store: AgentStore;
  readonly metrics: AgentMetrics;
  private readonly exportOptions: ExportOptions;
  private tcp: TcpApi | undefined;
  private host: ServiceHost | undefined;

  private constructor(
    private readonly cfg: AgentConfig,
    private readonly log: (line: string) => void,
    report: (source: string, message: string) => void,
    encode: ((ev: ExportEvent) => EncodedLine) | undefined,
  ) {
    // options first: a bad one stops the start before the store is touched
    this.exportOptions = new ExportOptions(cfg);
    if (cfg.apiAddress !== undefined) parseListenAddress(cfg.apiAddress, '--api-address');
    this.metrics = new AgentMetrics(cfg.metricsAddress, version());
    this.store = AgentStore.open({
      path: cfg.storePath,
      maxAgeMs: cfg.storeMaxAgeMs,
      maxBytes: Math.round(cfg.storeMaxSizeMb * 1024 * 1024),
      log,
      onError: (m) => report('store', m),
      ...(encode ? { encode } : {}),
    });
  }

  /**
   * Check the options and open the store. Throws a UserError for a bad
   * option; a store that cannot be opened is a warning, not an error.
   */
  static open(
    cfg: AgentConfig,
    log: (line: string) => void,
    report: (source: string, message: string) => void,
    /** the agent's cached JSON of an event, so the store does not encode it again */
    encode?: (ev: ExportEvent) => EncodedLine,
  ): AgentServices {
    return new AgentServices(cfg, log, report, encode);
  }

  /** Register the history, process and OpenAPI routes on the API. */
  routes(app: FastifyInstance): void {
    historyRoutes(app, this.store);
    openApiRoutes(app, version());
  }

  /**
   * Feed the store, serve metrics and, when configured, the API over TCP.
   * A TCP address that cannot be served is an error (it was asked for); a
   * metrics port that cannot be bound is a warning.
   */
  async listen(host: ServiceHost): Promise<void> {
    this.host = host;
    this.store.attach(host.bus);
    const { undocumented, unregistered } = compareRoutes(host.routes(), openApiDocument(version()));
    if (undocumented.length > 0 || unregistered.length > 0) {
      this.log(
        `warning: the OpenAPI document and the API disagree: undocumented ${undocumented.join(', ') || 'none'}; ` +
          `documented but not served ${unregistered.join(', ') || 'none'}`,
      );
    }
    await this.metrics.listen(
      agentMetricsSources({
        status: host.status,
        bus: host.bus,
        store: this.store,
        exportFilters: () => this.exportOptions.fileStats(),
        version: version(),
      }),
      host.status,
      this.log,
    );
    if (this.cfg.apiAddress !== undefined) {
      const token = loadOrCreateToken(this.cfg.apiTokenFile, this.log);
      this.tcp = await TcpApi.listen({
        address: parseListenAddress(this.cfg.apiAddress, '--api-address'),
        token,
        tokenFile: this.cfg.apiTokenFile,
        handle: host.handle,
      });
    }
  }

  /** A batch on its way to the bus: secrets redacted, events counted. */
  beforePublish(events: ExportEvent[]): ExportEvent[] {
    const out = this.exportOptions.redact(events);
    this.metrics.observe(out);
    return out;
  }

  /** The export file's sink with its filters and rate limit in front. */
  fileSink(sink: (batch: ExportEvent[]) => void | Promise<void>) {
    return this.exportOptions.fileSink(sink);
  }

  /** Before the export file closes: the last rate_limit_info, the store written and closed. */
  async closeSinks(bus: EventBus<ExportEvent>): Promise<void> {
    await this.exportOptions.closeFile();
    await this.store.close(bus);
  }

  /** After the API has ended its streams: stop listening on TCP and for metrics. */
  async close(): Promise<void> {
    const tcp = this.tcp;
    this.tcp = undefined;
    await Promise.all([tcp?.close(), this.metrics.close()]);
  }

  /** Lines for the ready message. */
  readyParts(): string[] {
    const parts: string[] = [];
    const st = this.store.status();
    parts.push(
      st.enabled ? `event store ${st.path}` : st.error ? 'event store unavailable' : 'no event store',
    );
    const m = this.metrics.boundAddress;
    if (m) parts.push(`metrics on http://${m}/metrics`);
    if (this.tcp) parts.push(`API also on ${this.tcp.address}`);
    return parts;
  }

  status(): ServiceStatus {
    return {
      store: this.store.status(),
      metrics: this.metrics.status(),
      export_filters: this.exportOptions.fileStats() ?? null,
      redaction: this.exportOptions.redactionStatus(),
    };
  }

  apiStatus(): ApiServiceStatus {
    return { tcp: this.tcp?.status() ?? null, routes: this.host?.routes() ?? [] };
  }
}
