/**
 * The agent daemon: kernel sensor -> process pipeline -> event bus -> sinks
 * (export file, stdout, API streams), plus the local API.
 *
 * Start-up checks everything that can fail before any program is attached
 * (mounts, kernel features, cgroup, socket, export file), and on any error
 * undoes what it did, so a failed start leaves nothing attached behind.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { type EncodedLine, eventLine, renderCompact } from '../events/index.js';
import { type ExportEvent, eventType } from '../events/types.js';
import {
  cgroup2Root,
  enableRunTimeStats,
  ensureMounts,
  type Features,
  mounts,
  probeFeatures,
  programStats,
  requireBaseline,
  runTimeStatsOn,
  tracefsRoot,
} from '../kernel/index.js';
import { kernelCapabilities } from '../policy/kernel-caps.js';
import { ProcessPipeline } from '../process/index.js';
import type { ProcessRecord } from '../sensors/process/records.js';
import { ProcessSensor } from '../sensors/process/sensor.js';
import { closePolicySpares, prewarmPolicyObjects } from '../sensors/tracing/index.js';
import { API_GROUP, ApiServer, claimSocket } from './api.js';
import { EventBus, type Subscription } from './bus.js';
import type { AgentConfig } from './config.js';
import { eventFilter } from './event-filter.js';
import { FileExporter } from './export-file.js';
import { StdoutExporter } from './export-stdout.js';
import { describeFsError, UserError } from './fs-util.js';
import { LatencyHistogram } from './latency.js';
import { NetworkFeature, parseNetworkFlows } from './network.js';
import { PolicyManager, type PreparedPolicy } from './policies.js';
import { stopPolicyReads } from './policy-documents.js';
import { PolicyRouter, prepareStartupPolicies } from './policy-router.js';
import { AgentServices } from './service.js';
import type { AgentStatus, KernelFeaturesStatus, ProgramStatus } from './status.js';
import { startUi, type UiServer } from './ui-server.js';
import { version } from './version.js';
import { parseConfiguredWorkloads } from './workload-config.js';

/** Bus group of the exporters, whose drops show as bus_queue_overflow. */
export const EXPORT_GROUP = 'export';

export interface AgentOptions {
  /** one line for the operator (stderr) */
  log?: (line: string) => void;
  /** per-exporter queue bound in events (default 10,000) */
  exportQueueEvents?: number;
  /** per-exporter queue bound in bytes of JSON (default 16 MiB) */
  exportQueueBytes?: number;
}

/** Errors from sinks are reported at most this often (ms) each. */
const ERROR_REPORT_INTERVAL_MS = 10_000;
/** How often the process cache is reconciled with /proc. */
const PRUNE_INTERVAL_MS = 60_000;

export class Agent {
  readonly bus = new EventBus<ExportEvent>();
  readonly latency = new LatencyHistogram();
  private readonly startedAt = new Date();
  private readonly startedHr = process.hrtime.bigint();
  private readonly byType = new Map<string, number>();
  private eventsTotal = 0;
  private pipelineErrors = 0;
  private seeded = 0;
  private features: Features | undefined;
  private pipeline: ProcessPipeline | undefined;
  private sensor: ProcessSensor | undefined;
  private policyManager: PolicyManager | undefined;
  private network: NetworkFeature | undefined;
  private api: ApiServer<ExportEvent> | undefined;
  private ui: UiServer | undefined;
  private fileExporter: FileExporter | undefined;
  private fileSub: Subscription<ExportEvent> | undefined;
  private stdoutExporter: StdoutExporter<ExportEvent> | undefined;
  private stdoutSub: Subscription<ExportEvent> | undefined;
  private stopping: Promise<void> | undefined;
  /** store, history, metrics, TCP API, redaction and export filters (service.ts) */
  private services: AgentServices | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private readonly lastReported = new Map<string, number>();
  private readonly log: (line: string) => void;

  private constructor(
    readonly config: AgentConfig,
    private readonly opts: AgentOptions,
  ) {
    this.log = opts.log ?? ((l) => process.stderr.write(`osprey agent: ${l}\n`));
  }

  /** Start everything; on failure, stop what was started and throw. */
  static async start(config: AgentConfig, opts: AgentOptions = {}): Promise<Agent> {
    const agent = new Agent(config, opts);
    try {
      await agent.startUp();
    } catch (err) {
      await agent.teardown();
      throw err;
    }
    return agent;
  }

  /** One JSON line per event (UTF-8, no newline), computed once however many sinks want it. */
  encode = (ev: ExportEvent): EncodedLine => eventLine(ev);

  private async startUp(): Promise<void> {
    const cfg = this.config;
    checkPrivileges();
    try {
      ensureMounts();
    } catch (err) {
      throw new UserError(`${(err as Error).message}; the agent needs root to mount bpffs and tracefs`);
    }
    this.features = probeFeatures();
    requireBaseline(this.features);
    const scope = cfg.cgroup ? checkCgroup(cfg.cgroup) : undefined;
    // --policy files are checked before anything is attached: a bad one is
    // a start-up error that names its file, line and field
    const kernel = kernelCapabilities(this.features);
    const tracefs = tracefsRoot();
    // routed by kind: TracingPolicy files to the policy manager, network policies to the network's
    const startup = prepareStartupPolicies(cfg.policy, (files) =>
      PolicyManager.checkTexts(files, kernel, tracefs),
    );
    const startupPolicies: PreparedPolicy[] = startup.tracing;
    const configuredWorkloads = parseConfiguredWorkloads(cfg.workloads, cfg.configFile);
    const networkFlows = parseNetworkFlows(cfg.networkFlows);

    await claimSocket(cfg.apiSocket);
    this.services = AgentServices.open(
      cfg,
      this.log,
      (source, message) => this.report(source, message),
      this.encode,
    );
    const services = this.services;
    if (cfg.exportFile) {
      this.fileExporter = FileExporter.open({
        path: cfg.exportFile,
        maxBytes: Math.max(1, Math.round(cfg.exportFileMaxSizeMb * 1024 * 1024)),
        maxBackups: cfg.exportFileMaxBackups,
        rotateIntervalMs: cfg.exportFileRotationIntervalMs,
        compress: cfg.exportFileCompress,
        onError: (err) => this.report('export-file', err.message),
      });
      const fx = this.fileExporter;
      const bounds = this.exportQueue();
      this.fileSub = this.bus.subscribe(
        services.fileSink((batch) => {
          // the exporter copies a batch's lines at once and writes them behind the ones
          // before: its backlog has the queue's bounds, and a batch beyond them is dropped
          // and counted as the queue's drops are
          const held = fx.backlog();
          if (
            held.events > 0 &&
            (held.events + batch.length > bounds.maxEvents || held.bytes >= bounds.maxBytes)
          ) {
            this.fileSub?.countDropped(batch.length);
            return;
          }
          void fx.write(batch.map(this.encode));
        }),
        { name: 'export-file', ...bounds, backlog: () => fx.backlog() },
      );
    }
    if (cfg.exportStdout) {
      const render = cfg.stdoutFormat === 'compact' ? (ev: ExportEvent) => renderCompact(ev) : this.encode;
      const sx = new StdoutExporter<ExportEvent>(cfg.stdoutFormat, render, (err) =>
        this.report('stdout', err.message),
      );
      this.stdoutExporter = sx;
      this.stdoutSub = this.bus.subscribe((batch) => sx.write(batch), {
        name: 'export-stdout',
        ...this.exportQueue(),
      });
    }

    // it finds the cgroup v2 mount itself, and warns when there is none
    // workloads, the network datapath and its policies; never throws (off, with the reason, when it cannot start)
    this.network = NetworkFeature.start({
      nodeName: cfg.nodeName,
      stateDir: cfg.stateDir,
      workloadCgroup: cfg.workloadCgroup,
      workloads: configuredWorkloads,
      flows: networkFlows,
      ringHoldoffMs: cfg.ringHoldoffMs,
      log: this.log,
      publish: (events) => this.publish(events),
      // flows name their process as policy events do: through the cache, the process ring drained first
      execIdOf: (pid) => this.pipeline?.cache.get(pid)?.process.exec_id,
      beforeFlows: () => this.sensor?.drain(),
    });
    const net = this.network;
    const pipeline = new ProcessPipeline({
      nodeName: cfg.nodeName,
      workloadLabels: net.labelsOf,
      caps: cfg.processCaps,
      namespaces: cfg.processNs,
      capsNsEveryEvent: cfg.capsNsEveryEvent,
    });
    this.pipeline = pipeline;
    // takes requests once the stored policies are loaded (restore below)
    this.policyManager = new PolicyManager({
      kernel,
      nodeName: cfg.nodeName,
      lookup: pipeline.cache,
      processTableFd: () => this.sensor?.processTableFd(),
      ...(scope ? { scopeCgroup: scope } : {}),
      stateDir: cfg.stateDir,
      ...(tracefs ? { tracefsRoot: tracefs } : {}),
      publish: (events) => this.publish(events),
      beforeRecords: () => this.sensor?.drain(),
      log: this.log,
      ringHoldoffMs: cfg.ringHoldoffMs,
    });

    this.api = await ApiServer.listen<ExportEvent>({
      socketPath: cfg.apiSocket,
      bus: this.bus,
      encode: this.encode,
      makeFilter: (f) => eventFilter(f),
      serviceRoutes: (app) => services.routes(app),
      status: () => this.status(),
      health: () => ({ pid: process.pid, version: version(), node_name: cfg.nodeName }),
      policies: new PolicyRouter(this.policyManager, net.policies, net.unavailable),
      extraRoutes: (app, stream) => net.routes(app, stream),
      clientMaxBytes: cfg.apiClientBufferMb * 1024 * 1024,
    });
    const api = this.api;
    await services.listen({
      bus: this.bus,
      status: () => this.status(),
      routes: () => api.routeList(),
      handle: (req, res) => api.handle(req, res),
    });
    this.ui = await startUi(cfg, this.log);
    // off by default: while on, every BPF program on the host reads the clock twice a run
    if (cfg.bpfStats && !enableRunTimeStats())
      this.log('warning: --bpf-stats: the kernel refused to turn on BPF run-time statistics');
    this.sensor = ProcessSensor.start({
      argsMax: cfg.argsMax,
      ringBytes: cfg.ringBufferMb * 1024 * 1024,
      holdoffMs: cfg.ringHoldoffMs,
      ...(scope ? { scopeCgroup: scope } : {}),
      onRecords: (records) => this.onRecords(records),
    });
    // Seed in the same tick as the sensor starts: records reach JS only on a
    // later tick, so none are applied before the cache knows /proc, and no
    // process can slip between the /proc walk and the first record.
    if (cfg.seed) {
      this.seeded = this.pipeline.seedFromProc();
      // policy programs match binaries through the kernel's process table: give
      // it the processes that were already running
      const seeded = [...this.pipeline.cache.live()].filter((e) => e.origin === 'procfs');
      this.sensor.seedProcessTable(
        seeded.map((e) => ({
          pid: e.pid,
          ppid: e.process.ppid ?? 0,
          binary: e.process.binary,
          startNs: e.startNs,
        })),
      );
    }
    for (const w of this.pipeline.warnings) this.log(`warning: ${w}`);
    // policies after the process sensor: they share its process table
    await this.policyManager.loadStartup(startupPolicies);
    await this.policyManager.restore();
    net.load(startup.network);
    // verify a policy object ahead of time, off the event loop: a live add then only fills maps and attaches
    void prewarmPolicyObjects({ procsMapFd: this.sensor.processTableFd() });
    // and, while the kernel verifies it, have V8 compile the parser and compiler an add runs
    void this.policyManager.warmUp().then((problem) => {
      if (problem) this.log(`warning: the policy code's warm-up failed (live adds are slower): ${problem}`);
    });
    // exits lost to a full ring leave entries that look live; reconcile with /proc now and then
    this.pruneTimer = setInterval(() => {
      try {
        this.pipeline?.prune();
      } catch (err) {
        this.report('prune', `process cache reconciliation failed: ${(err as Error).message}`);
      }
    }, PRUNE_INTERVAL_MS);
    this.pruneTimer.unref();
  }

  /**
   * Queue bounds of an exporter. Queued events are live objects several
   * times the size of their JSON, so the byte bound is what keeps a stuck
   * exporter from costing the agent hundreds of MB.
   */
  private exportQueue() {
    return {
      group: EXPORT_GROUP,
      maxEvents: this.opts.exportQueueEvents ?? 10_000,
      maxBytes: this.opts.exportQueueBytes ?? 16 * 1024 * 1024,
      sizeOf: (ev: ExportEvent) => this.encode(ev).length + 1,
    };
  }

  private onRecords(records: ProcessRecord[]): void {
    const now = process.hrtime.bigint();
    for (const r of records) {
      if (r.kind === 'exec') this.latency.record(Number(now - r.ktime));
    }
    let events: ExportEvent[];
    try {
      events = this.pipeline!.apply(records);
    } catch (err) {
      this.pipelineErrors += records.length;
      this.report(
        'pipeline',
        `process pipeline failed on a batch of ${records.length}: ${(err as Error).message}`,
      );
      return;
    }
    this.publish(events);
  }

  /** Count events and put them on the bus. */
  private publish(events: ExportEvent[]): void {
    if (events.length === 0) return;
    this.eventsTotal += events.length;
    for (const ev of events) {
      const t = eventType(ev);
      this.byType.set(t, (this.byType.get(t) ?? 0) + 1);
    }
    // redacted before the bus: no sink ever holds the secrets
    this.bus.publish(this.services ? this.services.beforePublish(events) : events);
  }

  /** The policies of this agent (add, delete, list ...). */
  get policies(): PolicyManager | undefined {
    return this.policyManager;
  }

  /**
   * Stop: detach the sensor (handing on what is left in the ring), let the
   * exporters write everything queued, end API streams, remove the socket.
   */
  stop(): Promise<void> {
    this.stopping ??= this.teardown();
    return this.stopping;
  }

  private async teardown(): Promise<void> {
    const errors: string[] = [];
    // a sink stuck in a write (a stdout nobody reads, a hung file system)
    // must not keep the agent from stopping
    const step = async (what: string, f: () => unknown, timeoutMs = 5000) => {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          f(),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`gave up after ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
      } catch (err) {
        errors.push(`${what}: ${(err as Error).message}`);
      } finally {
        clearTimeout(timer);
      }
    };
    clearInterval(this.pruneTimer);
    closePolicySpares();
    stopPolicyReads();
    // policies first: their last records still find the processes, and they
    // hold the process table the sensor shares with them
    if (this.policyManager) {
      const pm = this.policyManager;
      await step('unload policies', () => pm.close());
    }
    if (this.network) {
      const n = this.network;
      await step('stop network policy', () => n.stop());
    }
    if (this.sensor) {
      const s = this.sensor;
      this.sensor = undefined;
      await step('stop sensor', () => s.stop());
    }
    await step(
      'flush exporters',
      async () => {
        if (!(await this.bus.settle(5000, [EXPORT_GROUP]))) throw new Error('queues not empty after 5000 ms');
      },
      6000,
    );
    if (this.services) {
      const sv = this.services;
      await step('close event store', () => sv.closeSinks(this.bus));
    }
    if (this.fileExporter) {
      const f = this.fileExporter;
      await step('close export file', () => f.close());
    }
    if (this.stdoutExporter) {
      const s = this.stdoutExporter;
      await step('flush stdout', () => s.flush(), 2000);
    }
    this.fileSub?.close();
    this.stdoutSub?.close();
    await step('close web UI', async () => this.ui?.close());
    if (this.api) {
      const a = this.api;
      this.api = undefined;
      await step('close API', () => a.close());
    }
    if (this.services) {
      const sv = this.services;
      await step('close metrics and TCP API', () => sv.close());
    }
    if (errors.length) this.log(`while stopping: ${errors.join('; ')}`);
  }

  /** A short line for the operator once the agent is running. */
  readyLine(): string {
    const progs = this.sensor?.programs().map((p) => p.name) ?? [];
    const parts = [
      `watching ${this.config.cgroup ? `cgroup ${this.config.cgroup}` : 'all processes'}`,
      `${progs.length} programs attached (${progs.join(', ')})`,
      this.policyLine(),
      `API on ${this.config.apiSocket}`,
      this.fileExporter ? `exporting to ${this.fileExporter.path}` : 'no export file',
      ...(this.services?.readyParts() ?? []),
    ];
    if (this.config.seed) parts.push(`${this.seeded} processes seeded from /proc`);
    return `ready: ${parts.join('; ')}`;
  }

  private policyLine(): string {
    const list = this.policyManager?.list() ?? [];
    const on = list.filter((p) => p.state === 'enabled').length;
    const bad = list.filter((p) => p.state === 'error').length;
    return `${on} of ${list.length} policies loaded${bad ? ` (${bad} in error: see osprey policy list)` : ''}`;
  }

  status(): AgentStatus {
    const cfg = this.config;
    const counters = this.sensor?.counters();
    const programs: ProgramStatus[] = [];
    for (const p of this.sensor?.programs() ?? []) {
      try {
        const st = programStats(p.fd);
        programs.push({
          name: p.name,
          hook: p.hook,
          id: st.id,
          run_count: st.runCount,
          run_time_ns: st.runTimeNs,
        });
      } catch {
        programs.push({ name: p.name, hook: p.hook, id: 0, run_count: 0, run_time_ns: 0 });
      }
    }
    for (const p of this.policyManager?.programs() ?? []) {
      let st = { id: 0, runCount: 0, runTimeNs: 0 };
      try {
        st = programStats(p.fd);
      } catch {
        // closed meanwhile
      }
      programs.push({
        name: p.name,
        hook: p.hook,
        policy: p.policy,
        id: st.id,
        run_count: st.runCount,
        run_time_ns: st.runTimeNs,
      });
    }
    const policies = this.policyManager?.list() ?? [];
    const cache = this.pipeline?.cache.stats() ?? { size: 0, live: 0, exited: 0, evictions: 0 };
    const mem = process.memoryUsage();
    const network = this.network?.status();
    const pending: Record<string, number> = {};
    if (counters) pending['process'] = counters.ringPendingBytes;
    for (const p of policies) if (p.counters) pending[`policy:${p.name}`] = p.counters.ring_pending_bytes;
    if (network?.datapath) pending['network_flows'] = network.datapath.ring_pending_bytes;
    return {
      node_name: cfg.nodeName,
      version: version(),
      pid: process.pid,
      started_at: this.startedAt.toISOString(),
      uptime_s: Math.round(Number(process.hrtime.bigint() - this.startedHr) / 1e6) / 1e3,
      config_file: cfg.configFile ?? null,
      scope_cgroup: cfg.cgroup ?? null,
      args_max: cfg.argsMax,
      ring: {
        buffer_bytes: cfg.ringBufferMb * 1024 * 1024,
        holdoff_ms: cfg.ringHoldoffMs,
        pending_bytes: pending,
      },
      kernel: featuresStatus(this.features),
      bpf_stats: runTimeStatsOn(),
      programs,
      records: { total: counters?.records ?? 0, batches: counters?.batches ?? 0 },
      events: { total: this.eventsTotal, by_type: Object.fromEntries(this.byType) },
      drops: {
        kernel_ringbuf: counters?.kernelDrops.ringbuf ?? 0,
        kernel_args: counters?.kernelDrops.args ?? 0,
        decode_errors: counters?.decodeErrors ?? 0,
        bus_queue_overflow: this.bus.dropped(EXPORT_GROUP),
        api_slow_client_dropped: this.bus.dropped(API_GROUP),
        api_clients_disconnected: this.api?.clientsDisconnected ?? 0,
      },
      policies,
      pipeline_errors: this.pipelineErrors,
      process_cache: {
        size: cache.size,
        live: cache.live,
        exited: cache.exited,
        evictions: cache.evictions,
        seeded: this.seeded,
      },
      export_file:
        this.fileExporter && this.fileSub
          ? { ...this.fileExporter.stats(), queued: this.fileSub.queued, dropped: this.fileSub.dropped }
          : null,
      export_stdout:
        this.stdoutExporter && this.stdoutSub
          ? { ...this.stdoutExporter.stats(), queued: this.stdoutSub.queued, dropped: this.stdoutSub.dropped }
          : null,
      api: { socket: cfg.apiSocket, clients: this.api?.clientCount ?? 0, ...this.services?.apiStatus() },
      latency: this.latency.summary(),
      memory: {
        rss_bytes: mem.rss,
        peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
        heap_used_bytes: mem.heapUsed,
        heap_total_bytes: mem.heapTotal,
        external_bytes: mem.external,
        array_buffers_bytes: mem.arrayBuffers,
      },
      ...(network ? { network } : {}),
      ...this.services?.status(),
    };
  }

  /** Log a sink's trouble, at most once per interval per source. */
  private report(source: string, message: string): void {
    const now = Date.now();
    const last = this.lastReported.get(source);
    if (last !== undefined && now - last < ERROR_REPORT_INTERVAL_MS) return;
    this.lastReported.set(source, now);
    this.log(message);
  }
}

function featuresStatus(f: Features | undefined): KernelFeaturesStatus {
  return {
    release: f?.kernel ?? '',
    btf: f?.btf ?? false,
    kprobes: f?.kprobes ?? false,
    uprobes: f?.uprobes ?? false,
    bpf_lsm: f?.bpfLsm ?? false,
    prog_types: f?.progTypes ?? {},
    map_types: f?.mapTypes ?? {},
    helpers: f?.helpers ?? {},
  };
}

/** The --cgroup directory, resolved, once it is known to be a cgroup v2 directory. */
function checkCgroup(dir: string): string {
  const abs = path.resolve(dir);
  let hint: string;
  try {
    hint = `give a directory under the cgroup v2 mount ${cgroup2Root()}`;
  } catch {
    hint = 'mount a cgroup v2 hierarchy first (no cgroup v2 is mounted)';
  }
  try {
    if (!statSync(abs).isDirectory()) throw new Error('ENOTDIR: not a directory');
  } catch (err) {
    throw new UserError(`--cgroup ${abs}: ${describeFsError(err)}; ${hint}`);
  }
  const inV2 = mounts().some(
    (m) => m.fsType === 'cgroup2' && (abs === m.mountPoint || abs.startsWith(`${m.mountPoint}/`)),
  );
  if (!inV2) throw new UserError(`--cgroup ${abs} is not in a cgroup v2 hierarchy; ${hint}`);
  return abs;
}

const CAP_SYS_ADMIN = 21n;
const CAP_PERFMON = 38n;
const CAP_BPF = 39n;

/**
 * Without privileges every BPF probe fails and the kernel would look
 * unsupported; say what is actually missing instead.
 */
function checkPrivileges(): void {
  let eff: bigint;
  try {
    const m = /^CapEff:\s*([0-9a-f]+)/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (!m) return;
    eff = BigInt(`0x${m[1]}`);
  } catch {
    return; // cannot tell: let the kernel answer
  }
  const has = (cap: bigint) => ((eff >> cap) & 1n) === 1n;
  if (has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))) return;
  throw new UserError(
    'the agent needs root (CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN) to load BPF programs; run it as root, e.g. with sudo',
  );
}
