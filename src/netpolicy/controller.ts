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
  type CompileHost,
  type CompileWarning,
  compileNetworkPolicies,
  compileNetworkPoliciesSliced,
  type Endpoint,
  type NumberedPolicy,
} from './compile.js';
import { type NetworkPolicy, policyRules } from './model.js';

/** CIDRs in all policies from which a workload change recompiles in slices of the event loop (~15 ms of compiling here) */
export const LARGE_CIDRS = 5000;

export interface HubbleFlowLine {
  flow: HubbleFlow;
  node_name: string;
  time: string;
}

export interface NetworkPolicyControllerOptions {
  registry: WorkloadRegistry;
  /** each flow, decoded and in Hubble's shape */
  onFlow?: (line: HubbleFlowLine, record: FlowRecord) => void;
  /**
   * after the flows of one hand-off from the ring (at most MAX_HANDOFF) went
   * to onFlow: the moment to publish them, while they are the only ones alive
   */
  onFlowsEnd?: () => void;
  /** before a hand-off's flows are built: bring the process cache up to date (drain the process ring) */
  beforeFlows?: () => void;
  /** exec_id of a pid, for the flows the kernel posted in a process */
  execIdOf?: (pid: number) => string | undefined;
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
  /** the workload changes whose tables are compiled in slices, in order (settled()) */
  private pending: Promise<void> = Promise.resolve();
  /** workloads (by cgroup id) whose attach waits for such a change */
  private readonly attaching = new Map<string, Promise<void>>();

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
      ...(opts.execIdOf ? { execIdOf: opts.execIdOf } : {}),
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
    return this.swapPolicy(policy.name, { id: this.idFor(policy.name), policy }, () => this.install());
  }

  /**
   * apply() with the compile in slices of the event loop (a policy of
   * 100,000 CIDRs takes ~0.3 s to compile here): the policy joins the
   * others, and its tables are written and swapped in, in one step at the
   * end, as apply() does; until then the tables in force are the old ones.
   * Should the policies or the workloads change meanwhile, it compiles again
   * with what is there then.
   */
  applySliced(policy: NetworkPolicy): Promise<InstallResult> {
    const adding = { id: this.idFor(policy.name), policy };
    return this.installSliced({ name: policy.name, to: adding });
  }

  /** remove() with the compile in slices of the event loop, as applySliced. */
  async removeSliced(name: string): Promise<boolean> {
    if (!this.policiesByName.has(name)) return false;
    await this.installSliced({ name, to: undefined });
    return true;
  }

  /**
   * Resolves once the workload changes made so far are done (their tables
   * swapped in, new workloads attached), whether or not they succeeded.
   * With small policies they are done at once; with large ones
   * (LARGE_CIDRS) their tables are compiled in slices of the event loop.
   */
  settled(): Promise<void> {
    return this.pending.catch(() => undefined);
  }

  /**
   * Resolves once the workload of this cgroup is attached (at once with
   * small policies); rejects with why it is not. `osprey run` waits for it
   * before it starts anything in a new workload.
   */
  attached(cgroupId: bigint | string): Promise<void> {
    return this.attaching.get(String(cgroupId)) ?? Promise.resolve();
  }

  /**
   * Recompile in slices and swap the tables in; with `change`, the policy of
   * that name becomes `to` (added, replaced, or removed when undefined) at the swap.
   */
  private async installSliced(change?: {
    name: string;
    to: NumberedPolicy | undefined;
  }): Promise<InstallResult> {
    for (;;) {
      const version = this.version;
      const policies = [...this.policiesByName.values()].filter((p) => p.policy.name !== change?.name);
      if (change?.to) policies.push(change.to);
      const tables = await compileNetworkPoliciesSliced(policies, this.endpoints(), this.host());
      if (version !== this.version) continue;
      // the tables' bytes too: what is left for the swap is the kernel's batch writes
      const packed = await PackedTables.sliced(tables);
      if (version !== this.version) continue;
      if (!change) return this.installTables(tables, packed);
      return this.swapPolicy(change.name, change.to, () => this.installTables(tables, packed));
    }
  }

  /** The policy of `name` becomes `to` (none when undefined) for f, and stays so unless f throws. */
  private swapPolicy<T>(name: string, to: NumberedPolicy | undefined, f: () => T): T {
    const before = this.policiesByName.get(name);
    if (to) this.policiesByName.set(name, to);
    else this.policiesByName.delete(name);
    try {
      return f();
    } catch (err) {
      if (before) this.policiesByName.set(name, before);
      else this.policiesByName.delete(name);
      throw err;
    }
  }

  /** Whether the policies are large enough that a recompile goes in slices (workload changes). */
  private large(): boolean {
    let n = 0;
    for (const { policy } of this.policiesByName.values()) {
      for (const r of policyRules(policy)) if (r.peers !== 'any') n += r.peers.cidrs.length;
      if (n >= LARGE_CIDRS) return true;
    }
    return false;
  }

  /** Runs a workload change's install after those before it; settled() waits for it. */
  private queueChange(change: () => Promise<void>, what: string): Promise<void> {
    const next = this.pending.catch(() => undefined).then(change);
    next.catch((err) => this.opts.log?.(`network policy: ${what}: ${(err as Error).message}`));
    this.pending = next;
    return next;
  }

  /** Remove a policy by name; false when there was none. */
  remove(name: string): boolean {
    if (!this.policiesByName.has(name)) return false;
    this.swapPolicy(name, undefined, () => this.install());
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
    return this.installTables(
      compileNetworkPolicies([...this.policiesByName.values()], this.endpoints(), this.host()),
    );
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

  private host(): CompileHost {
    return { hostCidrs: this.datapath.hostCidrs };
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
    const w = c.workload;
    if (c.kind === 'added') {
      // tables that know the new identity first, then the cgroup -> identity entry, then the hooks
      if (!this.large()) {
        this.install();
        this.enroll(w);
        return;
      }
      const key = String(w.cgroupId);
      const done = this.queueChange(async () => {
        await this.installSliced();
        // a workload removed meanwhile is not attached
        if (this.opts.registry.byCgroupId(w.cgroupId) === w) this.enroll(w);
      }, `workload "${w.name}" not attached`);
      this.attaching.set(key, done);
      const forget = () => {
        if (this.attaching.get(key) === done) this.attaching.delete(key);
      };
      done.then(forget, forget);
    } else {
      this.datapath.detach(w.cgroupPath);
      this.datapath.removeWorkload(w.cgroupId);
      if (!this.large()) this.install();
      else
        this.queueChange(async () => {
          await this.installSliced();
        }, `tables without workload "${w.name}" not installed`);
    }
  }

  private enroll(w: Workload): void {
    this.datapath.setWorkload(w.cgroupId, w.identity);
    this.datapath.attach(w.cgroupPath, w.cgroupId);
  }

  private deliver(records: FlowRecord[]): void {
    const f = this.opts.onFlow;
    if (!f) return;
    this.opts.beforeFlows?.();
    for (const r of records) f(this.flows.build(r), r);
    this.opts.onFlowsEnd?.();
  }
}
