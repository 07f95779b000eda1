/**
 * The agent's Prometheus metrics: events are counted on the way to the bus;
 * everything else is read at scrape time from what the agent already counts
 * for `osprey status` (one status snapshot per scrape), so the two never
 * disagree.
 */
import type { ExportEvent } from '../events/types.js';
import type { ExportPipelineStats } from '../export/index.js';
import {
  MetricsServer,
  type MetricsSources,
  OspreyMetrics,
  type PolicyActionCount,
  type ProgramRunStats,
} from '../metrics/index.js';
import { formatAddress, parseListenAddress } from './address.js';
import type { EventBus } from './bus.js';
import type { AgentStatus } from './status.js';
import type { AgentStore } from './store.js';

export interface MetricsStatus {
  /** "http://127.0.0.1:2112/metrics" while serving */
  url: string | null;
  /** the configured address */
  address: string;
  scrapes: number;
  /** why it is not serving */
  error?: string;
}

export interface AgentMetricsInputs {
  status: () => AgentStatus;
  bus: EventBus<ExportEvent>;
  store: AgentStore;
  exportFilters: () => ExportPipelineStats | undefined;
  version: string;
}

/** A status snapshot shared by the collectors of one scrape. */
function snapshot(f: () => AgentStatus, ttlMs = 200): () => AgentStatus {
  let at = 0;
  let last: AgentStatus | undefined;
  return () => {
    const now = Date.now();
    if (!last || now - at > ttlMs) {
      last = f();
      at = now;
    }
    return last;
  };
}

/** Queue names: API stream clients share one series, whatever their number. */
function queueName(sub: string): string {
  return sub.startsWith('api-client-') ? 'api_streams' : sub.replaceAll('-', '_');
}

export function agentMetricsSources(i: AgentMetricsInputs): MetricsSources {
  const st = snapshot(i.status);
  return {
    drops: () => {
      const s = st();
      // clients are not events: they have their own counter (osprey_api_clients_disconnected_total)
      const { api_clients_disconnected: _clients, ...events } = s.drops;
      const out: Record<string, number> = { ...events };
      const policy = { ringbuf: 0, pending: 0, decode_errors: 0, event_errors: 0 };
      for (const p of s.policies) {
        if (!p.counters) continue;
        policy.ringbuf += p.counters.ringbuf_drops;
        policy.pending += p.counters.pending_drops;
        policy.decode_errors += p.counters.decode_errors;
        policy.event_errors += p.counters.event_errors;
      }
      out['policy_ringbuf'] = policy.ringbuf;
      out['policy_pending'] = policy.pending;
      out['policy_decode_errors'] = policy.decode_errors;
      out['policy_event_errors'] = policy.event_errors;
      out['pipeline_errors'] = s.pipeline_errors;
      const store = i.store.status();
      if (store.stats) {
        out['store_skipped'] = store.stats.skipped;
        out['store_failed'] = store.stats.failed;
      }
      if (store.bus_dropped !== undefined) out['store_bus_queue'] = store.bus_dropped;
      if (s.export_file) out['export_file_lost'] = s.export_file.events_lost;
      const ex = i.exportFilters();
      if (ex) out['export_rate_limited'] = ex.rate_limited;
      return out;
    },
    queues: () => {
      const out: Record<string, number> = {};
      for (const sub of i.bus.subscriptions()) {
        const k = queueName(sub.name);
        out[k] = (out[k] ?? 0) + sub.queued;
      }
      const store = i.store.status();
      if (store.stats) out['store_writer'] = store.stats.queued;
      return out;
    },
    ringBuffers: () => st().ring.pending_bytes,
    processCache: () => st().process_cache,
    policyActions: () => {
      const out: PolicyActionCount[] = [];
      for (const p of st().policies) {
        const c = p.counters;
        if (!c) continue;
        const add = (outcome: string, count: number) =>
          out.push({ policy: p.name, action: 'enforce', outcome, count });
        add('taken', c.actions_taken);
        add('monitor', c.actions_monitored);
        add('refused', c.actions_refused);
        add('failed', c.actions_failed);
        add('rate_limited', c.rate_limited);
      }
      return out;
    },
    programs: (): ProgramRunStats[] =>
      st().programs.map((p) => ({
        name: p.policy ? `${p.policy}/${p.name}` : p.name,
        hook: p.hook,
        run_count: p.run_count,
        run_time_ns: p.run_time_ns,
      })),
    store: () => {
      const s = i.store.status().stats;
      return s ?? { bytes: 0, rows: 0, written: 0, skipped: 0, failed: 0, deleted_by_retention: 0 };
    },
    apiClients: () => st().api.clients,
  };
}

/**
 * The metrics and, when an address is configured, their endpoint. A port
 * that cannot be bound is a warning and a status entry, not a failed start:
 * the event path matters more than its numbers.
 */
export class AgentMetrics {
  readonly metrics: OspreyMetrics;
  private server: MetricsServer | undefined;
  private error: string | undefined;

  constructor(
    private readonly address: string | undefined,
    version: string,
  ) {
    this.metrics = new OspreyMetrics({ version });
  }

  get enabled(): boolean {
    return this.address !== undefined;
  }

  /** Count a batch on its way to the bus. */
  observe(batch: readonly ExportEvent[]): void {
    if (this.address !== undefined) this.metrics.observeEvents(batch);
  }

  async listen(
    sources: MetricsSources,
    status: () => AgentStatus,
    log: (line: string) => void,
  ): Promise<void> {
    if (this.address === undefined) return;
    this.metrics.setSources(sources);
    this.metrics.registry
      .counter(
        'osprey_api_clients_disconnected_total',
        'API stream clients disconnected for staying too far behind',
      )
      .collect(() => [{ labels: [], value: status().drops.api_clients_disconnected }]);
    try {
      const a = parseListenAddress(this.address, '--metrics-address');
      this.server = await MetricsServer.listen({ host: a.host, port: a.port, metrics: this.metrics });
    } catch (err) {
      this.error = (err as Error).message;
      log(`warning: ${this.error}; running without the metrics endpoint`);
    }
  }

  /** host:port actually bound (the port is known only after listen when 0 was asked for). */
  get boundAddress(): string | undefined {
    return this.server ? formatAddress({ host: this.server.host, port: this.server.port }) : undefined;
  }

  status(): MetricsStatus | null {
    if (this.address === undefined) return null;
    const s: MetricsStatus = {
      url: this.server?.url ?? null,
      address: this.address,
      scrapes: this.server?.stats().scrapes ?? 0,
    };
    if (this.error) s.error = this.error;
    return s;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    await s?.close();
  }
}
