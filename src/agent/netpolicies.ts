/**
 * CiliumNetworkPolicies in a running agent, beside the TracingPolicies of
 * policies.ts and reached through the same commands (policy-router.ts routes
 * by kind): add, delete, enable, disable and mode (monitor = Cilium's audit
 * mode: verdicts are reported as AUDIT, nothing is dropped), live, with the
 * policies added at run time kept under STATE_DIR/network-policies/ so that
 * the next agent loads them again.
 *
 * All network policies share one set of kernel tables; every change
 * recompiles them all and swaps them in one step (NetworkPolicyController).
 * A change the compiler or the kernel refuses leaves the tables in force as
 * they were, and one that cannot be stored is undone.
 */
import path from 'node:path';
import { selectorMatches } from '../netpolicy/identity.js';
import { type CompileWarning, NETPOLICY_KINDS, type NetworkPolicyController } from '../netpolicy/index.js';
import { type NetworkPolicy, policyRules } from '../netpolicy/model.js';
import { parseNetworkPolicyText } from '../netpolicy/parse.js';
import type { PolicyMode } from '../sensors/tracing/index.js';
import type { WorkloadRegistry } from '../workload/registry.js';
import { type PolicyInfo, PolicyOpError, type PolicyOrigin, type PolicyState } from './policies.js';
import { hasNetworkKind, type NetworkParse, policyDocuments } from './policy-documents.js';
import { PolicyStore, type StoredPolicy } from './policy-store.js';

export type NetworkPolicyKind = (typeof NETPOLICY_KINDS)[number];

/** Flows each policy decided, counted from the flow events. */
export interface NetworkPolicyFlowCounts {
  forwarded: number;
  dropped: number;
  audit: number;
}

/** A network policy as `osprey policy list` shows it: PolicyInfo plus what only network policies have. */
export interface NetworkPolicyInfo extends PolicyInfo {
  kind: NetworkPolicyKind;
  /** rules in egress, egressDeny, ingress and ingressDeny */
  rules: number;
  /** workloads its endpointSelector selects now */
  selected_workloads: string[];
  /** what the compiler noticed (a selector that selects nothing) */
  warnings: string[];
  /** flows it decided since it was loaded */
  flows: NetworkPolicyFlowCounts;
}

export interface NetworkPolicyManagerOptions {
  /** undefined when the datapath did not load; `unavailable` says why */
  controller: NetworkPolicyController | undefined;
  unavailable?: string;
  registry: WorkloadRegistry | undefined;
  stateDir: string;
  log: (line: string) => void;
}

/** A --policy network policy document, validated, not loaded yet. */
export interface PreparedNetworkPolicy {
  name: string;
  kind: NetworkPolicyKind;
  text: string;
  file: string;
  policy: NetworkPolicy;
}

interface Entry {
  name: string;
  kind: NetworkPolicyKind;
  origin: PolicyOrigin;
  file: string;
  text: string;
  mode: PolicyMode;
  enabled: boolean;
  addedAt: string;
  storeFile?: string;
  /** the parsed policy, as it was given (its audit flag is the annotation's) */
  policy?: NetworkPolicy;
  loaded: boolean;
  loadedAt?: string;
  loadMs?: number;
  error?: string;
  flows: NetworkPolicyFlowCounts;
}

export class NetworkPolicyManager {
  private readonly entries = new Map<string, Entry>();
  /** stored policies a --policy one of the same name keeps from loading: they stay in the index */
  private shadowed: StoredPolicy[] = [];
  private readonly store: PolicyStore;
  private ready = false;
  private closed = false;

  constructor(private readonly opts: NetworkPolicyManagerOptions) {
    this.store = new PolicyStore(opts.stateDir, 'network-policies');
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** Load the --policy network policies; on any failure unload them and throw (a start-up error). */
  loadStartup(prepared: PreparedNetworkPolicy[]): void {
    const now = new Date().toISOString();
    for (const p of prepared) {
      const e = this.newEntry({
        name: p.name,
        kind: p.kind,
        origin: 'flag',
        file: p.file,
        text: p.text,
        mode: p.policy.audit ? 'monitor' : 'enforce',
        enabled: true,
        addedAt: now,
      });
      e.policy = p.policy;
      try {
        this.load(e);
      } catch (err) {
        for (const x of this.entries.values()) this.unload(x);
        this.entries.clear();
        throw err;
      }
      this.entries.set(p.name, e);
    }
  }

  /** Load the stored policies; one that fails shows state error. Then take requests. */
  restore(): void {
    let stored: StoredPolicy[] = [];
    try {
      const r = this.store.read();
      stored = r.policies;
      if (r.warning) this.opts.log(`warning: ${r.warning}`);
    } catch (err) {
      this.opts.log(`warning: stored network policies not loaded: ${(err as Error).message}`);
    }
    for (const s of stored) {
      if (this.entries.has(s.name)) {
        this.shadowed.push(s);
        this.opts.log(
          `warning: stored network policy "${s.name}" is not loaded: --policy defines a policy of that name; it stays stored`,
        );
        continue;
      }
      const e = this.newEntry({
        name: s.name,
        kind: 'CiliumNetworkPolicy',
        origin: 'api',
        file: s.source,
        text: '',
        mode: s.mode,
        enabled: s.enabled,
        addedAt: s.added_at,
        storeFile: s.file,
      });
      this.entries.set(s.name, e);
      try {
        e.text = this.store.readText(s);
        const { policy, kind } = this.parseOne(e.text, e.file, s.name);
        e.policy = policy;
        e.kind = kind;
        if (s.enabled) this.load(e);
      } catch (err) {
        e.error = reason(err);
        this.opts.log(
          `stored network policy "${s.name}" did not load: ${e.error} (read from its stored copy ${path.join(this.store.dir, s.file)})`,
        );
      }
    }
    this.ready = true;
  }

  /** Parse, validate, compile and install one policy; store it. */
  async add(
    text: string,
    source: string,
    opts: { mode?: PolicyMode } = {},
    /** the text's parse, when it was parsed already (off the event loop: policy-documents.ts) */
    parsed?: NetworkParse,
  ): Promise<NetworkPolicyInfo> {
    this.checkReady();
    if (opts.mode !== undefined) checkMode(opts.mode);
    const { policy, kind } = this.parseOne(text, source, undefined, parsed);
    const existing = this.entries.get(policy.name);
    if (existing) {
      throw new PolicyOpError('exists', [
        `network policy "${policy.name}" is already loaded (${existing.origin === 'flag' ? `from --policy ${existing.file}` : `state ${stateOf(existing)}`}); delete it first: osprey policy delete ${policy.name}`,
      ]);
    }
    const e = this.newEntry({
      name: policy.name,
      kind,
      origin: 'api',
      file: source,
      text,
      mode: opts.mode ?? (policy.audit ? 'monitor' : 'enforce'),
      enabled: true,
      addedAt: new Date().toISOString(),
      storeFile: this.store.fileFor(policy.name),
    });
    e.policy = policy;
    await this.load(e, true);
    try {
      this.store.writeText(e.storeFile!, text);
      this.store.save([...this.storedList(), stored(e)]);
    } catch (err) {
      try {
        this.store.removeText(e.storeFile!);
      } catch {}
      this.unload(e);
      throw new PolicyOpError('storage', [
        `network policy "${policy.name}" was not added: ${(err as Error).message}`,
      ]);
    }
    this.entries.set(policy.name, e);
    return this.info(e);
  }

  async delete(name: string): Promise<void> {
    this.checkReady();
    const e = this.find(name);
    if (e.origin === 'api')
      this.saveOrThrow(
        this.storedList().filter((s) => s.name !== name),
        name,
      );
    this.entries.delete(name);
    await this.unloadSliced(e);
    if (e.storeFile) {
      try {
        this.store.removeText(e.storeFile);
      } catch (err) {
        this.opts.log(`network policy "${name}": deleted, but its file stays: ${(err as Error).message}`);
      }
    }
  }

  async enable(name: string): Promise<NetworkPolicyInfo> {
    this.checkReady();
    const e = this.find(name);
    if (e.loaded) return this.info(e);
    if (!e.policy) {
      const { policy, kind } = this.parseOne(e.text, e.file, name);
      e.policy = policy;
      e.kind = kind;
    }
    await this.load(e, true);
    if (e.origin === 'api') {
      try {
        this.saveOrThrow(
          this.storedList().map((s) => (s.name === name ? { ...s, enabled: true } : s)),
          name,
        );
      } catch (err) {
        this.unload(e);
        throw err;
      }
    }
    e.enabled = true;
    e.error = undefined;
    return this.info(e);
  }

  async disable(name: string): Promise<NetworkPolicyInfo> {
    this.checkReady();
    const e = this.find(name);
    if (e.origin === 'api' && e.enabled) {
      this.saveOrThrow(
        this.storedList().map((s) => (s.name === name ? { ...s, enabled: false } : s)),
        name,
      );
    }
    e.enabled = false;
    e.error = undefined;
    await this.unloadSliced(e);
    return this.info(e);
  }

  /** monitor (audit: report, drop nothing) or enforce; live, and stored. */
  async setMode(name: string, mode: PolicyMode): Promise<NetworkPolicyInfo> {
    this.checkReady();
    checkMode(mode);
    const e = this.find(name);
    const old = e.mode;
    if (old === mode) return this.info(e);
    e.mode = mode;
    try {
      if (e.loaded) await this.load(e, true);
    } catch (err) {
      e.mode = old;
      throw err;
    }
    if (e.origin === 'api') {
      try {
        this.saveOrThrow(
          this.storedList().map((s) => (s.name === name ? { ...s, mode } : s)),
          name,
        );
      } catch (err) {
        e.mode = old;
        if (e.loaded) this.load(e);
        throw err;
      }
    }
    return this.info(e);
  }

  list(): NetworkPolicyInfo[] {
    return [...this.entries.values()].sort((a, b) => a.name.localeCompare(b.name)).map((e) => this.info(e));
  }

  get(name: string): NetworkPolicyInfo {
    return this.info(this.find(name));
  }

  /** Count a flow against the policy that decided it (by name). */
  countFlow(policy: string, verdict: 'FORWARDED' | 'DROPPED' | 'AUDIT'): void {
    const e = this.entries.get(policy);
    if (!e) return;
    if (verdict === 'FORWARDED') e.flows.forwarded++;
    else if (verdict === 'DROPPED') e.flows.dropped++;
    else e.flows.audit++;
  }

  /** The agent is stopping: nothing more is taken. The tables go with the datapath. */
  close(): void {
    this.closed = true;
  }

  // ---------------------------------------------------------------------------

  private newEntry(
    init: Pick<Entry, 'name' | 'kind' | 'origin' | 'file' | 'text' | 'mode' | 'enabled' | 'addedAt'> & {
      storeFile?: string;
    },
  ): Entry {
    return { ...init, loaded: false, flows: { forwarded: 0, dropped: 0, audit: 0 } };
  }

  private checkReady(): void {
    if (this.closed) throw new PolicyOpError('unavailable', ['the agent is stopping']);
    if (!this.ready) throw new PolicyOpError('unavailable', ['the agent is still starting; try again']);
  }

  private find(name: string): Entry {
    const e = this.entries.get(name);
    if (!e) throw new PolicyOpError('not-found', [`no network policy "${name}" (see osprey policy list)`]);
    return e;
  }

  private parseOne(
    text: string,
    source: string,
    name?: string,
    parsed?: NetworkParse,
  ): { policy: NetworkPolicy; kind: NetworkPolicyKind } {
    const r = parsed ?? parseNetworkPolicyText(text, source);
    if (r.errors.length) throw new PolicyOpError('invalid', r.errors.map(String));
    const kinds = documentKinds(text);
    if (name !== undefined) {
      const i = r.policies.findIndex((x) => x.name === name);
      if (i < 0) throw new PolicyOpError('invalid', [`${source}: no longer defines policy "${name}"`]);
      return { policy: r.policies[i]!, kind: kinds[i] ?? 'CiliumNetworkPolicy' };
    }
    if (r.policies.length !== 1) {
      throw new PolicyOpError('invalid', [
        `${source}: holds ${r.policies.length} policies (${r.policies.map((p) => p.name).join(', ')}); add one policy per file`,
      ]);
    }
    return { policy: r.policies[0]!, kind: kinds[0] ?? 'CiliumNetworkPolicy' };
  }

  /**
   * Install the entry's policy in its mode (add or replace): all or nothing.
   * `sliced`: compile it in slices of the event loop (a live add).
   */
  private load(e: Entry): void;
  private load(e: Entry, sliced: true): Promise<void>;
  private load(e: Entry, sliced?: true): void | Promise<void> {
    const c = this.opts.controller;
    if (!c) {
      throw new PolicyOpError('load-failed', [
        `network policy "${e.name}": the network datapath is not available: ${this.opts.unavailable ?? 'not loaded'}`,
      ]);
    }
    const t0 = process.hrtime.bigint();
    const policy = { ...e.policy!, audit: e.mode === 'monitor' };
    const failed = (err: unknown) =>
      new PolicyOpError('load-failed', [
        `network policy "${e.name}": not installed, the tables in force are unchanged: ${(err as Error).message}`,
      ]);
    const loaded = () => {
      e.loaded = true;
      e.loadedAt = new Date().toISOString();
      e.loadMs = Math.round((Number(process.hrtime.bigint() - t0) / 1e6) * 10) / 10;
      e.flows = { forwarded: 0, dropped: 0, audit: 0 };
    };
    if (sliced) {
      return c.applySliced(policy).then(loaded, (err) => {
        throw failed(err);
      });
    }
    try {
      c.apply(policy);
    } catch (err) {
      throw failed(err);
    }
    loaded();
  }

  /** unload, the tables recompiled in slices of the event loop (delete, disable). */
  private async unloadSliced(e: Entry): Promise<void> {
    if (!e.loaded) return;
    try {
      await this.opts.controller?.removeSliced(e.name);
    } catch (err) {
      this.opts.log(`network policy "${e.name}": while removing: ${(err as Error).message}`);
    }
    e.loaded = false;
  }

  private unload(e: Entry): void {
    if (!e.loaded) return;
    try {
      this.opts.controller?.remove(e.name);
    } catch (err) {
      this.opts.log(`network policy "${e.name}": while removing: ${(err as Error).message}`);
    }
    e.loaded = false;
  }

  private storedList(): StoredPolicy[] {
    const out: StoredPolicy[] = [];
    for (const e of this.entries.values()) if (e.origin === 'api') out.push(stored(e));
    return [...out, ...this.shadowed];
  }

  private saveOrThrow(list: StoredPolicy[], name: string): void {
    try {
      this.store.save(list);
    } catch (err) {
      throw new PolicyOpError('storage', [
        `network policy "${name}" is unchanged: ${(err as Error).message}`,
      ]);
    }
  }

  private info(e: Entry): NetworkPolicyInfo {
    const p = e.policy;
    const rules = p ? policyRules(p).length : 0;
    const selected =
      p && this.opts.controller
        ? (this.opts.registry?.list() ?? [])
            .filter((w) => selects(p, w.labels))
            .map((w) => w.name)
            .sort()
        : [];
    const out: NetworkPolicyInfo = {
      name: e.name,
      kind: e.kind,
      state: stateOf(e),
      mode: e.mode,
      source: e.origin,
      file: e.file,
      hooks: rules,
      programs: 0,
      added_at: e.addedAt,
      memory_bytes: 0,
      counters: null,
      rules,
      selected_workloads: selected,
      // as of the last recompile: workloads come and go
      warnings: e.loaded
        ? (this.opts.controller?.lastInstall?.warnings ?? [])
            .filter((w) => w.policy === e.name)
            .map(formatWarning)
        : [],
      flows: { ...e.flows },
    };
    if (e.error !== undefined && !e.loaded) out.error = e.error;
    if (e.loaded) {
      if (e.loadedAt) out.loaded_at = e.loadedAt;
      if (e.loadMs !== undefined) out.load_ms = e.loadMs;
    }
    return out;
  }
}

/** The `kind` of each YAML document of a text (undefined where there is none or it is not a string). */
export function documentKinds(text: string): (NetworkPolicyKind | undefined)[] {
  return policyDocuments(text)
    .filter((d) => d.kind !== undefined || d.name !== undefined)
    .map((d) =>
      (NETPOLICY_KINDS as readonly string[]).includes(d.kind ?? '')
        ? (d.kind as NetworkPolicyKind)
        : undefined,
    );
}

/** Whether any document of the text is a network policy kind. */
export function isNetworkPolicyText(text: string): boolean {
  return hasNetworkKind(policyDocuments(text));
}

function selects(p: NetworkPolicy, labels: Record<string, string>): boolean {
  return selectorMatches(p.endpointSelector, labels);
}

function formatWarning(w: CompileWarning): string {
  return `${w.file || 'policy'}:${w.line}:${w.column}: ${w.fieldPath ? `${w.fieldPath}: ` : ''}${w.message}`;
}

function stateOf(e: Entry): PolicyState {
  if (e.loaded) return 'enabled';
  return e.error !== undefined ? 'error' : 'disabled';
}

function stored(e: Entry): StoredPolicy {
  return {
    name: e.name,
    file: e.storeFile!,
    mode: e.mode,
    enabled: e.enabled,
    source: e.file,
    added_at: e.addedAt,
  };
}

function checkMode(mode: string): asserts mode is PolicyMode {
  if (mode !== 'monitor' && mode !== 'enforce') {
    throw new PolicyOpError('invalid', [`mode "${mode}" is neither monitor nor enforce`]);
  }
}

function reason(err: unknown): string {
  if (err instanceof PolicyOpError) return err.errors.join('; ');
  return (err as Error).message;
}
