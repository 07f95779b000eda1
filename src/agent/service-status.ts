/**
 * The status of the service parts (event store, metrics, export filters,
 * redaction, TCP API) as `osprey status` shows it. Types only: the CLI
 * imports this without loading SQLite or the servers.
 */
import type { ExportPipelineStats } from '../export/pipeline.js';
import type { RedactionStatus } from './export-options.js';
import type { MetricsStatus } from './metrics.js';
import type { StoreStatus } from './store.js';
import type { TcpApiStatus } from './tcp-api.js';

export interface ServiceStatusView {
  store?: StoreStatus;
  metrics?: MetricsStatus | null;
  export_filters?: ExportPipelineStats | null;
  redaction?: RedactionStatus | null;
  api: { tcp?: TcpApiStatus | null };
}

/** Lines of `osprey status` for the service parts ("  key    value"). */
export function renderServiceStatus(s: ServiceStatusView, kv: (k: string, v: string | number) => void): void {
  if (s.store) {
    const st = s.store;
    if (st.stats) {
      const x = st.stats;
      kv(
        'store',
        `${x.path}: ${x.rows} events, ${x.processes} processes, ${mib(x.bytes)} of ${mib(x.max_bytes)}, ` +
          `${x.skipped} skipped, ${x.failed} failed`,
      );
      if (x.last_error) kv('store last error', x.last_error);
    } else {
      kv('store', st.error ? `unavailable: ${st.error}` : 'off');
    }
  }
  if (s.export_filters) {
    const f = s.export_filters;
    kv(
      'export filters',
      `${f.passed} passed, ${f.filtered_out} filtered out, ${f.rate_limited} rate-limited ` +
        `(${f.rate_limit_info_sent} rate_limit_info)`,
    );
  }
  if (s.redaction)
    kv('redaction', `${s.redaction.filters} filters, ${s.redaction.events_redacted} events redacted`);
  if (s.metrics !== undefined) {
    const m = s.metrics;
    kv(
      'metrics',
      m === null ? 'off' : m.url ? `${m.url}, ${m.scrapes} scrapes` : `unavailable: ${m.error ?? ''}`,
    );
  }
  if (s.api.tcp) {
    const t = s.api.tcp;
    kv('api tcp', `${t.address} (token ${t.token_file}), ${t.unauthorized} refused without token`);
  }
}

function mib(n: number): string {
  return n === 0 ? 'no limit' : `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
