/**
 * The shape of GET /v1/status (snake_case, like the event JSON) and its
 * human-readable rendering for `osprey status`.
 */
import type { FileExporterStats } from './export-file.js';
import type { StdoutExporterStats } from './export-stdout.js';
import type { LatencySummary } from './latency.js';
import { type NetworkStatus, renderNetworkStatus } from './network-status.js';
import type { PolicyInfo } from './policies.js';
import type { ApiServiceStatus } from './service.js';
import { renderServiceStatus, type ServiceStatusView } from './service-status.js';

export interface ProgramStatus {
  name: string;
  hook: string;
  id: number;
  run_count: number;
  run_time_ns: number;
  /** the TracingPolicy it belongs to; absent for the process sensor's */
  policy?: string;
}

export interface KernelFeaturesStatus {
  release: string;
  btf: boolean;
  kprobes: boolean;
  uprobes: boolean;
  bpf_lsm: boolean;
  prog_types: Record<string, boolean>;
  map_types: Record<string, boolean>;
  helpers: Record<string, boolean>;
}

export interface DropsStatus {
  /** records the kernel could not reserve in the ring buffer */
  kernel_ringbuf: number;
  /** execs whose arguments could not be read */
  kernel_args: number;
  /** records user space could not decode */
  decode_errors: number;
  /** events the exporters' queues (file, stdout) had no room for */
  bus_queue_overflow: number;
  /** events dropped for API clients that did not keep up */
  api_slow_client_dropped: number;
  /** API clients disconnected for staying too far behind */
  api_clients_disconnected: number;
}

export interface AgentStatus {
  node_name: string;
  version: string;
  pid: number;
  started_at: string;
  uptime_s: number;
  config_file: string | null;
  scope_cgroup: string | null;
  args_max: number;
  ring: {
    buffer_bytes: number;
    holdoff_ms: number;
    /**
     * each ring's depth: bytes of records in it or read and not handled yet,
     * by ring ("process", "policy:NAME", "network_flows")
     */
    pending_bytes: Record<string, number>;
  };
  kernel: KernelFeaturesStatus;
  /** the kernel is counting programs' runs and run time (--bpf-stats, or the host's sysctl) */
  bpf_stats: boolean;
  programs: ProgramStatus[];
  records: { total: number; batches: number };
  events: { total: number; by_type: Record<string, number> };
  drops: DropsStatus;
  /** every TracingPolicy, with its kernel counters (its drops among them) */
  policies: PolicyInfo[];
  /** records the process pipeline failed on */
  pipeline_errors: number;
  process_cache: { size: number; live: number; exited: number; evictions: number; seeded: number };
  export_file: (FileExporterStats & { queued: number; dropped: number }) | null;
  export_stdout: (StdoutExporterStats & { queued: number; dropped: number }) | null;
  api: { socket: string; clients: number } & Partial<ApiServiceStatus>;
  /** ms from the kernel making a record to user space receiving it (exec records) */
  latency: LatencySummary;
  memory: {
    rss_bytes: number;
    peak_rss_bytes: number;
    heap_used_bytes: number;
    heap_total_bytes: number;
    external_bytes: number;
    array_buffers_bytes: number;
  };
  /** workloads, network policies, flows and the network datapath's counters */
  network?: NetworkStatus;
  /** the event store: path, counters, or why it is unavailable */
  store?: ServiceStatusView['store'];
  /** the Prometheus endpoint; null when turned off */
  metrics?: ServiceStatusView['metrics'];
  /** the export file's allow/deny lists, field filters and rate limit; null when none is set */
  export_filters?: ServiceStatusView['export_filters'];
  /** redaction before the bus; null when no redaction filter is set */
  redaction?: ServiceStatusView['redaction'];
}

/** A readable summary of a status document. */
export function renderStatusText(s: AgentStatus): string {
  const out: string[] = [];
  // wide enough for every fixed key (api_clients_disconnected); a longer policy name pushes its own value over
  const kv = (k: string, v: string | number) => out.push(`  ${k.padEnd(24)} ${v}`);
  out.push(`Osprey agent ${s.version} on ${s.node_name} (pid ${s.pid}), up ${duration(s.uptime_s)}`);
  kv('kernel', `${s.kernel.release}${s.kernel.btf ? ', BTF' : ', no BTF'}`);
  if (s.scope_cgroup) kv('watching cgroup', s.scope_cgroup);
  if (s.config_file) kv('config', s.config_file);
  out.push('');
  out.push(s.bpf_stats ? 'Programs' : 'Programs (runs not counted: start the agent with --bpf-stats)');
  const named = s.programs.map((p) => ({ ...p, shown: p.policy ? `${p.policy}/${p.name}` : p.name }));
  const nameWidth = Math.max(16, ...named.map((p) => p.shown.length));
  const hookWidth = Math.max(30, ...named.map((p) => p.hook.length));
  for (const p of named) {
    const avg = p.run_count ? `${Math.round(p.run_time_ns / p.run_count)} ns/run` : '-';
    out.push(
      `  ${p.shown.padEnd(nameWidth)} ${p.hook.padEnd(hookWidth)} runs ${String(p.run_count).padStart(10)}  ${avg}`,
    );
  }
  out.push('');
  out.push('Policies');
  if (!s.policies?.length) kv('none', 'add one with osprey policy add FILE');
  for (const p of s.policies ?? []) {
    const c = p.counters;
    const what = c
      ? `${p.mode}, ${c.events_posted} events, ${c.actions_taken} actions taken, ${c.actions_monitored} monitored, ` +
        `${c.actions_refused ? `${c.actions_refused} refused (protected targets), ` : ''}${c.drops} dropped`
      : p.state === 'error'
        ? `error: ${p.error ?? ''}`
        : p.state;
    kv(p.name, what);
  }
  out.push('');
  out.push('Events');
  kv('total', s.events.total);
  for (const [t, n] of Object.entries(s.events.by_type).sort()) kv(t, n);
  kv('latency (exec)', latencyText(s.latency));
  const depths = Object.entries(s.ring.pending_bytes ?? {});
  if (depths.length) kv('waiting in rings', depths.map(([ring, n]) => `${ring} ${bytes(n)}`).join(', '));
  out.push('');
  out.push('Drops');
  for (const [k, v] of Object.entries(s.drops)) kv(k, v);
  if (s.pipeline_errors) kv('pipeline_errors', s.pipeline_errors);
  out.push('');
  out.push('Process cache');
  const c = s.process_cache;
  kv('entries', `${c.size} (${c.live} live, ${c.exited} exited), ${c.evictions} evicted, ${c.seeded} seeded`);
  out.push('');
  out.push('Export');
  if (s.export_file) {
    const f = s.export_file;
    kv(
      'file',
      `${f.path}: ${f.events_written} events, ${bytes(f.size_bytes)} of ${bytes(f.max_size_bytes)}, ` +
        `${f.rotations} rotations, ${f.write_errors} errors` +
        (f.compress_pending > 0 ? `, ${f.compress_pending} waiting for gzip` : ''),
    );
    if (f.last_error) kv('last error', f.last_error);
  } else {
    kv('file', 'off');
  }
  kv(
    'stdout',
    s.export_stdout ? `${s.export_stdout.format}, ${s.export_stdout.events_written} events` : 'off',
  );
  kv('api', `${s.api.socket}, ${s.api.clients} stream client(s)`);
  renderServiceStatus(s, kv);
  out.push('');
  kv('memory', `rss ${bytes(s.memory.rss_bytes)}, peak ${bytes(s.memory.peak_rss_bytes)}`);
  if (s.network) out.push('', ...renderNetworkStatus(s.network));
  return out.join('\n');
}

function latencyText(l: LatencySummary): string {
  if (l.count === 0) return 'no samples yet';
  return `p50 ${l.p50_ms} ms, p99 ${l.p99_ms} ms, max ${l.max_ms} ms (${l.count} samples)`;
}

function duration(s: number): string {
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${sec}s`;
  return `${sec}s`;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
