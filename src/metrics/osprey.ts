/**
 * Osprey's metrics. Events are counted as they pass (observeEvent, on the
 * event path: a few Map lookups and an increment); everything another
 * component already counts (drops, queue depths, BPF run statistics, the
 * store) is read from callbacks at scrape time, so nothing is counted twice
 * and nothing can drift.
 *
 * Label values that come from the host (binaries, policy names) are bounded:
 * the first maxBinaries distinct binaries get their own series, later ones
 * share "other", so a host that runs a million distinct paths cannot blow up
 * the metrics.
 */
import type { ExportEvent } from '../events/types.js';
import { type Cell, type MetricFamily, Registry, type Sample } from './registry.js';

/** Label value of everything past the cardinality limit. */
export const OTHER = 'other';

export interface PolicyActionCount {
  policy: string;
  /** "sigkill", "override", "deny", ... */
  action: string;
  /** "taken", "monitor" (held back by monitor mode), "refused" (protected target), "failed" */
  outcome: string;
  count: number;
}

export interface ProgramRunStats {
  name: string;
  /** where it is attached, e.g. "tp_btf/sched_process_exec" */
  hook?: string;
  run_count: number;
  run_time_ns: number;
}

export interface StoreMetricsStats {
  bytes: number;
  rows: number;
  written: number;
  skipped: number;
  failed: number;
  deleted_by_retention: number;
}

/**
 * Numbers by name, e.g. the agent's DropsStatus as it is ({kernel_ringbuf: 3,
 * ...}); properties that are not numbers are skipped.
 */
export type NumbersByName = object;

/** Where the numbers other components keep are read, at scrape time. Every one is optional. */
export interface MetricsSources {
  /** dropped events so far by stage: kernel_ringbuf, bus_queue_overflow, api_slow_client... */
  drops?: () => NumbersByName;
  /** bytes of records waiting in each BPF ring buffer (or read and not handled), by ring name */
  ringBuffers?: () => NumbersByName;
  /** events waiting in each user-space queue, by queue name (bus subscriptions, the store) */
  queues?: () => NumbersByName;
  processCache?: () => { size: number; evictions: number };
  policyActions?: () => Iterable<PolicyActionCount>;
  programs?: () => Iterable<ProgramRunStats>;
  store?: () => StoreMetricsStats;
  apiClients?: () => number;
}

export interface OspreyMetricsOptions {
  /** distinct binaries with their own series (default 100) */
  maxBinaries?: number;
  /** distinct policy names with their own series (default 100) */
  maxPolicies?: number;
  version?: string;
  sources?: MetricsSources;
}

const PAYLOAD_SKIP = new Set(['node_name', 'time', 'aggregation_info']);

/** Admits the first `max` distinct values; the rest become OTHER. */
class BoundedLabel {
  private readonly admitted = new Set<string>();
  overflowed = 0;
  constructor(readonly max: number) {}

  label(v: string): string {
    if (v === '' || this.admitted.has(v)) return v;
    if (this.admitted.size < this.max) {
      this.admitted.add(v);
      return v;
    }
    this.overflowed++;
    return OTHER;
  }
}

export class OspreyMetrics {
  readonly registry = new Registry();
  private sources: MetricsSources;
  private readonly binaries: BoundedLabel;
  private readonly policies: BoundedLabel;
  private readonly events: MetricFamily;
  private readonly drops: MetricFamily;
  private readonly policyActions: MetricFamily;
  /** type -> policy -> binary -> cell; keys are label values, so its size is bounded too */
  private readonly eventCells = new Map<string, Map<string, Map<string, Cell>>>();

  constructor(opts: OspreyMetricsOptions = {}) {
    const maxBinaries = opts.maxBinaries ?? 100;
    const maxPolicies = opts.maxPolicies ?? 100;
    for (const [what, v] of [
      ['maxBinaries', maxBinaries],
      ['maxPolicies', maxPolicies],
    ] as const) {
      if (!Number.isInteger(v) || v < 0) throw new Error(`metrics ${what} ${v} must be an integer >= 0`);
    }
    this.binaries = new BoundedLabel(maxBinaries);
    this.policies = new BoundedLabel(maxPolicies);
    this.sources = { ...opts.sources };
    const r = this.registry;
    const src = () => this.sources;

    r.gauge('osprey_build_info', 'Osprey version (value 1)', ['version']).set([opts.version ?? 'unknown'], 1);

    this.events = r.counter('osprey_events_total', 'Events exported, by type, policy and binary', [
      'type',
      'policy',
      'binary',
    ]);
    r.counter(
      'osprey_metrics_label_overflow_total',
      'Events counted under binary or policy "other" because the label limit was reached',
      ['label'],
    ).collect(() => [
      { labels: ['binary'], value: this.binaries.overflowed },
      { labels: ['policy'], value: this.policies.overflowed },
    ]);

    this.drops = r
      .counter('osprey_event_drops_total', 'Events dropped, by the stage that dropped them', ['stage'])
      .collect(() => records(src().drops?.(), (stage, v) => ({ labels: [stage], value: v })));

    r.gauge(
      'osprey_ringbuf_pending_bytes',
      'Bytes of records waiting in a BPF ring buffer, or read from it and not yet handled',
      ['ring'],
    ).collect(() => records(src().ringBuffers?.(), (ring, v) => ({ labels: [ring], value: v })));
    r.gauge('osprey_queue_depth', 'Events waiting in a user-space queue', ['queue']).collect(() =>
      records(src().queues?.(), (q, v) => ({ labels: [q], value: v })),
    );

    r.gauge('osprey_process_cache_size', 'Processes in the process cache').collect(() => {
      const c = src().processCache?.();
      return c ? [{ labels: [], value: c.size }] : [];
    });
    r.counter('osprey_process_cache_evictions_total', 'Processes evicted from the process cache').collect(
      () => {
        const c = src().processCache?.();
        return c ? [{ labels: [], value: c.evictions }] : [];
      },
    );

    this.policyActions = r
      .counter('osprey_policy_actions_total', 'Policy actions, by policy, action and outcome', [
        'policy',
        'action',
        'outcome',
      ])
      .collect(() => {
        const out: Sample[] = [];
        for (const a of src().policyActions?.() ?? []) {
          out.push({ labels: [this.policies.label(a.policy), a.action, a.outcome], value: a.count });
        }
        return out;
      });

    r.counter('osprey_bpf_program_runs_total', 'Times a BPF program ran (needs BPF run-time stats)', [
      'program',
      'hook',
    ]).collect(() => programSamples(src().programs?.(), (p) => p.run_count));
    r.counter('osprey_bpf_program_run_seconds_total', 'Time spent running a BPF program', [
      'program',
      'hook',
    ]).collect(() => programSamples(src().programs?.(), (p) => p.run_time_ns / 1e9));

    const store = (pick: (s: StoreMetricsStats) => number) => () => {
      const s = src().store?.();
      return s ? [{ labels: [], value: pick(s) }] : [];
    };
    r.gauge('osprey_store_size_bytes', 'Size of the event store database file').collect(
      store((s) => s.bytes),
    );
    r.gauge('osprey_store_events', 'Events in the event store').collect(store((s) => s.rows));
    r.counter('osprey_store_written_total', 'Events written to the event store').collect(
      store((s) => s.written),
    );
    r.counter(
      'osprey_store_skipped_total',
      'Events the event store skipped because its queue was full',
    ).collect(store((s) => s.skipped));
    r.counter(
      'osprey_store_failed_total',
      'Events lost because the event store could not write them',
    ).collect(store((s) => s.failed));
    r.counter('osprey_store_retention_deleted_total', 'Events deleted by the event store retention').collect(
      store((s) => s.deleted_by_retention),
    );

    r.gauge('osprey_api_clients', 'Clients connected to the API event stream').collect(() => {
      const n = src().apiClients?.();
      return n === undefined ? [] : [{ labels: [], value: n }];
    });

    r.gauge('process_resident_memory_bytes', 'Resident memory of the agent').collect(() => [
      { labels: [], value: process.memoryUsage.rss() },
    ]);
    r.gauge('nodejs_heap_used_bytes', 'V8 heap in use').collect(() => [
      { labels: [], value: process.memoryUsage().heapUsed },
    ]);
    r.counter('process_cpu_seconds_total', 'CPU time of the agent (user + system)').collect(() => {
      const u = process.cpuUsage();
      return [{ labels: [], value: (u.user + u.system) / 1e6 }];
    });
    const started = Math.round(Date.now() / 1000 - process.uptime());
    r.gauge('process_start_time_seconds', 'Start of the agent, seconds since the epoch').set([], started);
  }

  /** Add or replace sources, e.g. once the store is open. */
  setSources(s: MetricsSources): void {
    this.sources = { ...this.sources, ...s };
  }

  /** Count one exported event. Cheap: made to be called for every event. */
  observeEvent(ev: ExportEvent): void {
    let type = 'unknown';
    for (const k in ev) {
      if (!PAYLOAD_SKIP.has(k)) {
        type = k;
        break;
      }
    }
    let binary = '';
    let policy = '';
    const payload = (ev as Record<string, unknown>)[type];
    if (payload !== null && typeof payload === 'object') {
      const proc = (payload as { process?: unknown }).process;
      if (proc !== null && typeof proc === 'object') {
        const b = (proc as { binary?: unknown }).binary;
        if (typeof b === 'string') binary = b;
      }
      const p = (payload as { policy_name?: unknown }).policy_name;
      if (typeof p === 'string') policy = p;
    }
    this.eventCell(type, policy, binary).value++;
  }

  observeEvents(batch: readonly ExportEvent[]): void {
    for (const ev of batch) this.observeEvent(ev);
  }

  /** Count drops at a stage no other component counts (added to what the drops source reports). */
  observeDrop(stage: string, n = 1): void {
    this.drops.inc([stage], n);
  }

  /** Count a policy action (added to what the policyActions source reports). */
  observePolicyAction(policy: string, action: string, outcome = 'taken', n = 1): void {
    this.policyActions.inc([this.policies.label(policy), action, outcome], n);
  }

  render(): string {
    return this.registry.render();
  }

  private eventCell(type: string, policy: string, binary: string): Cell {
    let byPolicy = this.eventCells.get(type);
    if (byPolicy === undefined) {
      byPolicy = new Map();
      this.eventCells.set(type, byPolicy);
    }
    let byBinary = byPolicy.get(policy);
    if (byBinary === undefined) {
      const pl = this.policies.label(policy);
      byBinary = byPolicy.get(pl);
      if (byBinary === undefined) {
        byBinary = new Map();
        byPolicy.set(pl, byBinary);
      }
      policy = pl;
    }
    let cell = byBinary.get(binary);
    if (cell === undefined) {
      // a miss is a new binary or one past the limit: only admitted labels are kept as keys
      const bl = this.binaries.label(binary);
      cell = byBinary.get(bl);
      if (cell === undefined) {
        cell = this.events.cell(type, policy, bl);
        byBinary.set(bl, cell);
      }
    }
    return cell;
  }
}

function records(r: NumbersByName | undefined, f: (k: string, v: number) => Sample): Sample[] {
  if (!r) return [];
  const out: Sample[] = [];
  for (const [k, v] of Object.entries(r)) if (typeof v === 'number') out.push(f(k, v));
  return out;
}

function programSamples(
  progs: Iterable<ProgramRunStats> | undefined,
  value: (p: ProgramRunStats) => number,
): Sample[] {
  const out: Sample[] = [];
  for (const p of progs ?? []) out.push({ labels: [p.name, p.hook ?? ''], value: value(p) });
  return out;
}
