/**
 * Network policy in the agent: workloads (labelled cgroups), the kernel
 * datapath and its controller, the network policies, and the flows the
 * datapath reports, which become `flow` events on the agent's bus (so they
 * reach the export file, the API and every other sink like any event).
 *
 * The agent starts without it when the kernel or the host cannot give it
 * (no cgroup v2, the datapath does not load): that is logged and shown in
 * status, and `policy add` of a network policy says why it cannot load.
 */
import type { FastifyInstance } from 'fastify';
import { decidingPolicy } from '../events/flow.js';
import type { ExportEvent } from '../events/types.js';
import { type HubbleFlowLine, NetworkPolicyController } from '../netpolicy/index.js';
import type { Labels } from '../netpolicy/model.js';
import { FlowEvent } from '../sensors/network/layout.js';
import { HOST_WORKLOAD_LABELS } from '../workload/labels.js';
import { UserError } from './fs-util.js';
import { NetworkPolicyManager, type PreparedNetworkPolicy } from './netpolicies.js';
import type { StreamFn } from './network-api.js';
import { networkRoutes } from './network-api.js';
import { PolicyOpError } from './policies.js';
import { type ConfiguredWorkload, WorkloadManager } from './workloads.js';

export const NETWORK_FLOWS = ['all', 'new', 'denied'] as const;
export type NetworkFlows = (typeof NETWORK_FLOWS)[number];

/** network-flows -> the events of FORWARDED flows the kernel leaves out (1 << FlowEvent). */
const FLOW_SKIP: Record<NetworkFlows, number> = {
  all: 0,
  new: (1 << FlowEvent.ESTABLISHED) | (1 << FlowEvent.CLOSED),
  denied: (1 << FlowEvent.NEW) | (1 << FlowEvent.ESTABLISHED) | (1 << FlowEvent.CLOSED),
};

/** The network-flows setting, checked; a UserError names the good values. */
export function parseNetworkFlows(v: string): NetworkFlows {
  if ((NETWORK_FLOWS as readonly string[]).includes(v)) return v as NetworkFlows;
  throw new UserError(`network-flows: "${v}" is not one of ${NETWORK_FLOWS.join(', ')}`);
}

export interface NetworkFeatureOptions {
  nodeName: string;
  stateDir: string;
  /** absolute directory for managed workloads (default <cgroup2>/osprey.workloads) */
  workloadCgroup?: string;
  workloads: ConfiguredWorkload[];
  /** network-flows: which flows of allowed traffic the kernel reports (default all) */
  flows?: NetworkFlows;
  /** wake-up coalescing of the flow ring's reader, ms */
  ringHoldoffMs?: number;
  log: (line: string) => void;
  publish: (events: ExportEvent[]) => void;
  /** exec_id of a pid (the process cache), for flows' osprey.exec_id */
  execIdOf?: (pid: number) => string | undefined;
  /** called before each hand-off of flows is built: drain the process ring first */
  beforeFlows?: () => void;
}

/** The network part of GET /v1/status. */
export interface NetworkStatus {
  /** false: network policy is off in this agent, `error` says why */
  available: boolean;
  error?: string;
  /** generation of the tables the kernel reads */
  generation: string;
  workload_cgroup: string | null;
  /** network-flows: which flows of allowed traffic are reported */
  flows_reported: NetworkFlows;
  workloads: number;
  attached_cgroups: number;
  policies: { total: number; enabled: number; error: number };
  flows: { total: number; forwarded: number; dropped: number; audit: number };
  /** the datapath's own counters (kernel) */
  datapath: {
    dropped: number;
    audited: number;
    revoked: number;
    /** open connections a policy change could not re-check (no memory for their state) */
    unchecked: number;
    /** connections opened without socket storage */
    light: number;
    ringbuf_drops: number;
    decode_errors: number;
    /** bytes of flow records in the ring or read and not handled yet */
    ring_pending_bytes: number;
  } | null;
}

export class NetworkFeature {
  workloads: WorkloadManager | undefined;
  controller: NetworkPolicyController | undefined;
  readonly policies: NetworkPolicyManager;
  /** why the datapath (or everything) is not available */
  readonly unavailable: string | undefined;
  private pending: ExportEvent[] = [];
  private readonly flowCounts = { total: 0, forwarded: 0, dropped: 0, audit: 0 };
  private stopped = false;

  private constructor(private readonly opts: NetworkFeatureOptions) {
    let why: string | undefined;
    try {
      this.workloads = new WorkloadManager({
        stateDir: opts.stateDir,
        configured: opts.workloads,
        log: opts.log,
        ...(opts.workloadCgroup ? { parentDir: opts.workloadCgroup } : {}),
      });
      this.workloads.start();
    } catch (err) {
      why = `workloads: ${(err as Error).message}`;
      this.workloads = undefined;
    }
    if (this.workloads) {
      try {
        this.controller = NetworkPolicyController.start({
          registry: this.workloads.registry,
          nodeName: opts.nodeName,
          onFlow: (line) => this.onFlow(line),
          onFlowsEnd: () => this.flush(),
          ...(opts.execIdOf ? { execIdOf: opts.execIdOf } : {}),
          ...(opts.beforeFlows ? { beforeFlows: opts.beforeFlows } : {}),
          log: opts.log,
          ...(opts.ringHoldoffMs ? { holdoffMs: opts.ringHoldoffMs } : {}),
        });
        this.controller.datapath.setFlowSkip(FLOW_SKIP[opts.flows ?? 'all']);
      } catch (err) {
        why = `the network datapath did not load: ${(err as Error).message}`;
      }
    }
    this.unavailable = why;
    if (why) opts.log(`warning: network policy is off: ${why}`);
    this.policies = new NetworkPolicyManager({
      controller: this.controller,
      ...(why ? { unavailable: why } : {}),
      registry: this.workloads?.registry,
      stateDir: opts.stateDir,
      log: opts.log,
    });
  }

  /** Never throws: what cannot start is reported (log, status) and left off. */
  static start(opts: NetworkFeatureOptions): NetworkFeature {
    return new NetworkFeature(opts);
  }

  /** Labels of the workload of a cgroup, for process events (host when none). */
  labelsOf = (cgroupId: string): Labels => this.workloads?.labelsOf(cgroupId) ?? HOST_WORKLOAD_LABELS;

  /** Load the --policy network policies (a failure is a start-up error), then the stored ones. */
  load(startup: PreparedNetworkPolicy[]): void {
    try {
      this.policies.loadStartup(startup);
    } catch (err) {
      const msg = err instanceof PolicyOpError ? err.errors.join('\n  ') : (err as Error).message;
      throw new UserError(`--policy: ${msg}`);
    }
    this.policies.restore();
  }

  /** The API routes: /v1/flows, /v1/workloads. */
  routes(app: FastifyInstance, stream: StreamFn<ExportEvent>): void {
    networkRoutes(app, stream, this);
  }

  status(): NetworkStatus {
    const c = this.controller;
    let datapath: NetworkStatus['datapath'] = null;
    if (c) {
      try {
        const k = c.datapath.counters();
        datapath = {
          dropped: k.dropped,
          audited: k.audited,
          revoked: k.revoked,
          unchecked: k.unchecked,
          light: k.light,
          ringbuf_drops: k.ringbufDrops,
          decode_errors: k.decodeErrors,
          ring_pending_bytes: k.ringPendingBytes,
        };
      } catch {
        // closed meanwhile (stopping)
      }
    }
    const list = this.policies.list();
    return {
      available: this.unavailable === undefined,
      ...(this.unavailable ? { error: this.unavailable } : {}),
      generation: (c?.datapath.generation ?? 0n).toString(),
      workload_cgroup: this.workloads?.parentDir ?? null,
      flows_reported: this.opts.flows ?? 'all',
      workloads: this.workloads?.registry.list().length ?? 0,
      attached_cgroups: c?.datapath.attachedCgroups().length ?? 0,
      policies: {
        total: list.length,
        enabled: list.filter((p) => p.state === 'enabled').length,
        error: list.filter((p) => p.state === 'error').length,
      },
      flows: { ...this.flowCounts },
      datapath,
    };
  }

  /**
   * Stop: detach the datapath from every workload (what is in its ring is
   * delivered first), then let the workloads go — managed ones that still
   * run are kept for the next agent.
   */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.policies.close();
    if (this.controller) {
      try {
        this.controller.drain();
      } catch {}
      this.flush();
      this.controller.stop();
    }
    this.workloads?.stop();
  }

  private onFlow(line: HubbleFlowLine): void {
    const f = line.flow;
    this.flowCounts.total++;
    if (f.verdict === 'FORWARDED') this.flowCounts.forwarded++;
    else if (f.verdict === 'DROPPED') this.flowCounts.dropped++;
    else this.flowCounts.audit++;
    const policy = decidingPolicy(f);
    if (policy) this.policies.countFlow(policy, f.verdict);
    // published as one batch when the controller's hand-off ends (onFlowsEnd)
    this.pending.push(line as unknown as ExportEvent);
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.opts.publish(batch);
  }
}
