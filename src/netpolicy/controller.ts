/**
 * Keeps the kernel's network policy tables in step with the policies and
 * the workloads: any change recompiles everything and installs it in one
 * atomic swap (NetworkDatapath.install), so the kernel never sees a policy
 * half applied.
 */
import { hostname } from 'node:os';
import {
  FlowBuilder,
  type FlowContext,
  type FlowRecord,
  type HubbleFlow,
} from '../sensors/network/decode.js';
import { NetworkDatapath, type NetworkDatapathOptions, PackedTables } from '../sensors/network/loader.js';
import type { Workload, WorkloadChange, WorkloadRegistry } from '../workload/registry.js';
import {
  type CompiledTables,
  type CompileWarning,
  compileNetworkPolicies,
  compileNetworkPoliciesSliced,
  type Endpoint,
} from './compile.js';
import type { NetworkPolicy } from './model.js';

export interface HubbleFlowLine {
  flow: HubbleFlow;
  node_name: string;
  time: string;
}

export interface NetworkPolicyControllerOptions {
  registry: WorkloadRegistry;
  /** each flow, decoded and in Hubble's shape */
  onFlow?: (line: HubbleFlowLine, record: FlowRecord) => void;
  /** compiler warnings (selectors that select nothing), after each recompile */
  onWarnings?: (warnings: CompileWarning[]) => void;
  nodeName?: string;
  /** passed to NetworkDatapath.load (tests) */
  objectFile?: string;
  ringBytes?: number;
  /** wake-up coalescing of the flow ring reader, ms (default 0: off) */
  holdoffMs?: number;
  /** what went wrong out of band in the datapath */
  log?: (line: string) => void;
}

export interface InstallResult {
  generation: bigint;
  warnings: CompileWarning[];
  tables: CompiledTables;
}

export class NetworkPolicyController {
  readonly datapath: NetworkDatapath;
  private readonly policiesByName = new Map<string, { id: number; policy: NetworkPolicy }>();
  private readonly ids = new Map<string, number>();
  private readonly names = new Map<number, string>();
  private nextId = 1;
  private readonly unsubscribe: () => void;
  private readonly ctx: FlowContext;
  private readonly flows: FlowBuilder;
  private last: InstallResult | undefined;
  /** moves on at every install: a sliced compile started before one is stale */
  private version = 0;

  private constructor(
    private readonly opts: NetworkPolicyControllerOptions,
    dpOpts: Omit<NetworkDatapathOptions, 'onFlows'>,
  ) {
    const registry = opts.registry;
    this.ctx = {
      nodeName: opts.nodeName ?? hostname(),
      labels: (id) => registry.identities.labels(id),
      workloadName: (cg) => registry.byCgroupId(cg)?.name,
      policyName: (id) => this.names.get(id),
    };
    this.flows = new FlowBuilder(this.ctx);
    this.datapath = NetworkDatapath.load({ ...dpOpts, onFlows: (recs) => this.deliver(recs) });
    this.unsubscribe = registry.onChange((c) => this.onWorkload(c));
  }

  /** Load the datapath and enforce on every workload the registry has. */
  static start(opts: NetworkPolicyControllerOptions): NetworkPolicyController {
    const c = new NetworkPolicyController(opts, {
      objectFile: opts.objectFile,
      ringBytes: opts.ringBytes,
      holdoffMs: opts.holdoffMs,
      log: opts.log,
    });
    try {
      c.install();
      for (const w of opts.registry.list()) c.enroll(w);
    } catch (err) {
      c.stop();
      throw err;
    }
    return c;
  }

  /** Add a policy, or replace the one of the same name. Returns what was installed. */
  apply(policy: NetworkPolicy): InstallResult {
    const id = this.idFor(policy.name);
    const before = this.policiesByName.get(policy.name);
    this.policiesByName.set(policy.name, { id, policy });
    try {
      return this.install();
    } catch (err) {
      if (before) this.policiesByName.set(policy.name, before);
      else this.policiesByName.delete(policy.name);
      throw err;
    }
  }

  /**
   * apply() with the compile in slices of the event loop (a policy of
   * 100,000 CIDRs takes ~0.3 s to compile here): the policy joins the
   * others, and its tables are written and swapped in, in one step at the
   * end, as apply() does; until then the tables in force are the old ones.
   * Should the policies or the workloads change meanwhile, it compiles again
   * with what is there then.
   */
  async applySliced(policy: NetworkPolicy): Promise<InstallResult> {
    const id = this.idFor(policy.name);
    for (;;) {
      const version = this.version;
      const policies = [...this.policiesByName.values()].filter((p) => p.policy.name !== policy.name);
      policies.push({ id, policy });
      const tables = await compileNetworkPoliciesSliced(policies, this.endpoints());
      if (version !== this.version) continue;
      // the tables' bytes too: what is left for the swap is the kernel's batch writes
      const packed = await PackedTables.sliced(tables);
      if (version !== this.version) continue;
      const before = this.policiesByName.get(policy.name);
      this.policiesByName.set(policy.name, { id, policy });
      try {
        return this.installTables(tables, packed);
      } catch (err) {
        if (before) this.policiesByName.set(policy.name, before);
        else this.policiesByName.delete(policy.name);
        throw err;
      }
    }
  }

  /** Remove a policy by name; false when there was none. */
  remove(name: string): boolean {
    const before = this.policiesByName.get(name);
    if (!before) return false;
    this.policiesByName.delete(name);
    try {
      this.install();
    } catch (err) {
      this.policiesByName.set(name, before);
      throw err;
    }
    return true;
  }

  policies(): NetworkPolicy[] {
    return [...this.policiesByName.values()].map((p) => p.policy);
  }

  /** The id flows carry for a policy name. */
  policyId(name: string): number | undefined {
    return this.ids.get(name);
  }

  get lastInstall(): InstallResult | undefined {
    return this.last;
  }

  /** Everything FlowBuilder needs to name identities, workloads and policies. */
  get flowContext(): FlowContext {
    return this.ctx;
  }

  /** Read the flows ready now (tests; the ring reader also delivers on its own). */
  drain(): number {
    return this.datapath.drain();
  }

  /** Detach everything and free the kernel objects. Workloads stay as they are. */
  stop(): void {
    this.unsubscribe();
    this.datapath.close();
  }

  /** Recompile all policies for all workloads and swap the kernel's tables. */
  install(): InstallResult {
    this.version++;
    return this.installTables(compileNetworkPolicies([...this.policiesByName.values()], this.endpoints()));
  }

  private installTables(tables: CompiledTables, packed?: PackedTables): InstallResult {
    this.version++;
    const generation = this.datapath.install(packed ?? tables);
    this.last = { generation, warnings: tables.warnings, tables };
    if (tables.warnings.length > 0) this.opts.onWarnings?.(tables.warnings);
    return this.last;
  }

  private endpoints(): Endpoint[] {
    return this.opts.registry.list().map((w) => ({ identity: w.identity, labels: w.labels }));
  }

  /** The id flows will carry for a policy of this name, given to it the first time. */
  private idFor(name: string): number {
    let id = this.ids.get(name);
    if (id === undefined) {
      id = this.nextId++;
      this.ids.set(name, id);
      this.names.set(id, name);
    }
    return id;
  }

  private onWorkload(c: WorkloadChange): void {
    if (c.kind === 'added') {
      // tables that know the new identity first, then the cgroup -> identity entry, then the hooks
      this.install();
      this.enroll(c.workload);
    } else {
      this.datapath.detach(c.workload.cgroupPath);
      this.datapath.removeWorkload(c.workload.cgroupId);
      this.install();
    }
  }

  private enroll(w: Workload): void {
    this.datapath.setWorkload(w.cgroupId, w.identity);
    this.datapath.attach(w.cgroupPath, w.cgroupId);
  }

  private deliver(records: FlowRecord[]): void {
    const f = this.opts.onFlow;
    if (!f) return;
    for (const r of records) f(this.flows.build(r), r);
  }
}
