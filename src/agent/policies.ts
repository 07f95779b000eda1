/**
 * TracingPolicies in a running agent: add, delete, enable, disable and
 * switch modes without a restart, with the policies added at run time kept
 * under the state directory so that the next agent loads them again.
 *
 * Each policy is its own BPF object with its own ring buffer
 * (PolicyProgram), so loading or unloading one never touches another's
 * programs or events. Its records become process_kprobe/process_tracepoint
 * events on the agent's bus, after the process sensor's ring is drained so
 * that the exec of a process reaches the cache (and the bus) before the
 * first event of the process does.
 *
 * Every operation is all or nothing: a policy that does not parse, validate,
 * compile, load or attach leaves nothing in the kernel, and a change that
 * cannot be stored is undone. Operations are synchronous, so two of them
 * never interleave.
 *
 * Policies from `--policy` are not stored: they come from the flag at every
 * start. Changing them at run time (delete, disable, mode) lasts until the
 * agent stops.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildTracingEvent, type PolicyEventMeta, type ProcessLookup } from '../events/tracing.js';
import type { ExportEvent } from '../events/types.js';
import { type CompiledPolicy, compilePolicy, PolicyCompileError } from '../policy/compile.js';
import type { KernelCapabilities } from '../policy/kernel-caps.js';
import type { TracingPolicy } from '../policy/model.js';
import { parsePolicyText } from '../policy/parse.js';
import type { ValidateOptions } from '../policy/validate.js';
import { closest } from '../policy/yaml-view.js';
import {
  type PolicyCounters,
  type PolicyMode,
  PolicyProgram,
  type PolicyProgramOptions,
} from '../sensors/tracing/index.js';
import { UserError } from './fs-util.js';
import type { TracingParse } from './policy-documents.js';
import { PolicyStore, type StoredPolicy } from './policy-store.js';
import { warmUpPolicyCode } from './policy-warmup.js';

export type PolicyState = 'enabled' | 'disabled' | 'error';
/** api: added at run time and stored; flag: from --policy, not stored */
export type PolicyOrigin = 'api' | 'flag';

/** A policy's counters, from its maps in the kernel and from the agent. */
export interface PolicyCountersInfo {
  /** events the kernel posted to the policy's ring */
  events_posted: number;
  /** events the agent built from them and put on the bus */
  events_delivered: number;
  /** enforcement actions taken (signal sent) */
  actions_taken: number;
  /** enforcement actions held back because the policy is in monitor mode */
  actions_monitored: number;
  /** enforcement actions refused: the target was PID 1, a kernel thread or the agent */
  actions_refused: number;
  /** enforcement actions whose helper failed */
  actions_failed: number;
  /** events a rateLimit held back */
  rate_limited: number;
  /** every event lost: ringbuf_drops + pending_drops + decode_errors + event_errors */
  drops: number;
  /** the policy's ring buffer was full */
  ringbuf_drops: number;
  /** too many threads inside a hooked syscall at once (enter/exit pairs) */
  pending_drops: number;
  /** records user space could not decode */
  decode_errors: number;
  /** records no event could be built from */
  event_errors: number;
  /** bytes of records in the policy's ring or read and not handled yet */
  ring_pending_bytes: number;
}

/** One policy as `osprey policy list` and GET /v1/policies show it. */
export interface PolicyInfo {
  name: string;
  state: PolicyState;
  /** why it is in state error */
  error?: string;
  mode: PolicyMode;
  source: PolicyOrigin;
  /** the file it was added from, as its error messages name it */
  file: string;
  /** hooks in the policy (kprobes + tracepoints) */
  hooks: number;
  /** program attachments in the kernel (one per hooked tracepoint) */
  programs: number;
  added_at: string;
  loaded_at?: string;
  /** how long parse, compile, load and attach took (ms) */
  load_ms?: number;
  /** kernel memory of the policy's maps, as the kernel accounts it (memlock in fdinfo) */
  memory_bytes: number;
  /** null while not loaded */
  counters: PolicyCountersInfo | null;
}

export type PolicyOpCode = 'invalid' | 'exists' | 'not-found' | 'load-failed' | 'storage' | 'unavailable';

/** Why an operation on a policy was refused; `errors` holds every message (validation: one per problem). */
export class PolicyOpError extends Error {
  constructor(
    readonly code: PolicyOpCode,
    readonly errors: string[],
  ) {
    super(errors.join('\n'));
    this.name = 'PolicyOpError';
  }
}

export interface PolicyManagerOptions {
  /** what the kernel offers beyond tracepoints (kernelCapabilities(probeFeatures())) */
  kernel: KernelCapabilities;
  nodeName: string;
  /** the process cache events take their process and parent from */
  lookup: ProcessLookup;
  /** the process sensor's process table, shared by every policy object */
  processTableFd: () => number | undefined;
  /** --cgroup: policies act only inside it, as the process sensor watches only it */
  scopeCgroup?: string;
  /** --state-dir */
  stateDir: string;
  publish: (events: ExportEvent[]) => void;
  /** runs before a batch of policy records becomes events: drains the process sensor */
  beforeRecords?: () => void;
  log: (line: string) => void;
  tracefsRoot?: string;
  /** bytes of each policy's ring buffer (default: the engine's, 1 MiB) */
  ringBytes?: number;
  /** wake-up coalescing of each policy's ring reader, ms (default 0: off) */
  ringHoldoffMs?: number;
}

/** A --policy document, validated, not loaded yet. */
export interface PreparedPolicy {
  name: string;
  /** the whole file it is in (a file may hold several policies) */
  text: string;
  file: string;
}

interface Live {
  prog: PolicyProgram;
  meta: PolicyEventMeta;
  memoryBytes: number;
  loadedAt: string;
  loadMs: number;
}

interface Entry {
  name: string;
  origin: PolicyOrigin;
  file: string;
  text: string;
  mode: PolicyMode;
  /** what the operator asked for; the policy may still have failed to load */
  enabled: boolean;
  addedAt: string;
  /** api: its YAML file in the store */
  storeFile?: string;
  hooks: number;
  live?: Live;
  error?: string;
  delivered: number;
  eventErrors: number;
}

/** Errors of one report are at most this often logged (ms) per policy. */
const REPORT_INTERVAL_MS = 10_000;

export class PolicyManager {
  private readonly entries = new Map<string, Entry>();
  /** stored policies a --policy file of the same name keeps from loading; kept in the index */
  private shadowed: StoredPolicy[] = [];
  private readonly store: PolicyStore;
  private nextPolicyId = 1;
  private ready = false;
  private closed = false;
  private readonly lastReport = new Map<string, number>();

  constructor(private readonly opts: PolicyManagerOptions) {
    this.store = new PolicyStore(opts.stateDir);
  }

  /**
   * Validate TracingPolicy texts (the --policy files, read by the router)
   * before anything is attached: parsed, names distinct, compiled. Returns the
   * policies that passed and every problem, FILE:LINE:COL: field: message.
   */
  static checkTexts(
    files: readonly { file: string; text: string }[],
    kernel: KernelCapabilities,
    tracefsRoot?: string,
  ): { policies: PreparedPolicy[]; problems: string[] } {
    const problems: string[] = [];
    const policies: PreparedPolicy[] = [];
    const seen = new Map<string, string>();
    for (const { file, text } of files) {
      const r = parsePolicyText(text, file, { kernel, ...(tracefsRoot ? { tracefsRoot } : {}) });
      problems.push(...r.errors.map(String));
      for (const p of r.policies) {
        const other = seen.get(p.name);
        if (other !== undefined) {
          problems.push(
            `${file}:${p.source.line}:${p.source.column}: metadata.name: policy "${p.name}" is also defined in ${other} (give each policy its own name)`,
          );
          continue;
        }
        seen.set(p.name, file);
        try {
          compilePolicy(p, { policyId: 0, agentPid: process.pid });
        } catch (err) {
          problems.push(...compileMessages(err));
          continue;
        }
        policies.push({ name: p.name, text, file });
      }
    }
    return { policies, problems };
  }

  /**
   * Run the parser and compiler ahead of live adds, in turns of the event
   * loop, until done or closed (see policy-warmup.ts). Resolves to the
   * problem when the warm-up policy did not parse or compile here; adds are
   * then only slower, not wrong.
   */
  async warmUp(): Promise<string | undefined> {
    const r = await warmUpPolicyCode(this.opts.kernel, this.opts.tracefsRoot, {
      stopped: () => this.closed,
    });
    return r.problem;
  }

  /**
   * Load the --policy policies; on any failure unload those loaded and throw.
   * They are verified side by side on worker threads, and the agent takes
   * events meanwhile.
   */
  async loadStartup(prepared: PreparedPolicy[]): Promise<void> {
    const now = new Date().toISOString();
    const entries = prepared.map((p) =>
      this.newEntry({
        name: p.name,
        origin: 'flag',
        file: p.file,
        text: p.text,
        mode: 'enforce',
        enabled: true,
        addedAt: now,
      }),
    );
    // the file's own policy-mode decides
    const loads = await Promise.allSettled(entries.map((e) => this.instantiate(e, undefined, e.name)));
    let failure: unknown;
    loads.forEach((r, i) => {
      const entry = entries[i]!;
      if (r.status === 'rejected') {
        failure ??= r.reason;
        return;
      }
      entry.mode = r.value.policy.mode;
      entry.hooks = r.value.policy.hooks.length;
      entry.live = r.value.live;
      this.entries.set(entry.name, entry);
    });
    if (failure !== undefined) {
      this.close();
      const msg = failure instanceof PolicyOpError ? failure.errors.join('\n  ') : (failure as Error).message;
      throw new UserError(`--policy: ${msg}`);
    }
  }

  /**
   * Load the stored policies, side by side as loadStartup() does. One that
   * fails shows state "error" with the reason and does not stop the others
   * or the agent. Then the manager takes requests.
   */
  async restore(): Promise<void> {
    const loads: Promise<void>[] = [];
    let stored: StoredPolicy[] = [];
    try {
      const r = this.store.read();
      stored = r.policies;
      if (r.warning) this.opts.log(`warning: ${r.warning}`);
    } catch (err) {
      this.opts.log(`warning: stored policies not loaded: ${(err as Error).message}`);
    }
    for (const s of stored) {
      const taken = this.entries.get(s.name);
      if (taken) {
        this.shadowed.push(s);
        this.opts.log(
          `warning: stored policy "${s.name}" is not loaded: --policy ${taken.file} defines a policy of that name; it stays stored`,
        );
        continue;
      }
      const entry = this.newEntry({
        name: s.name,
        origin: 'api',
        file: s.source,
        text: '',
        mode: s.mode,
        enabled: s.enabled,
        addedAt: s.added_at,
        storeFile: s.file,
      });
      this.entries.set(s.name, entry);
      try {
        entry.text = this.store.readText(s);
      } catch (err) {
        entry.error = (err as Error).message;
        this.opts.log(`policy "${s.name}": ${entry.error}`);
        continue;
      }
      if (!s.enabled) {
        // its hook count, for the list; a problem shows when it is enabled
        try {
          entry.hooks = this.parseOne(entry.text, entry.file, s.name).hooks.length;
        } catch {
          // enable reports it
        }
        continue;
      }
      loads.push(
        this.instantiate(entry, entry.mode, s.name).then(
          ({ live, policy }) => {
            entry.live = live;
            entry.hooks = policy.hooks.length;
          },
          (err) => {
            entry.error = reason(err);
            this.opts.log(
              `stored policy "${s.name}" did not load: ${entry.error} (read from its stored copy ${path.join(this.store.dir, s.file)})`,
            );
          },
        ),
      );
    }
    await Promise.all(loads);
    this.ready = true;
  }

  /**
   * Parse, validate, compile, load and attach one policy; store it. Returns
   * once its programs are attached. `source` names it in error messages.
   */
  /**
   * Add a policy from its text. `parsed`: the text's parse, made elsewhere
   * with parseOptions() (a large text is parsed on a thread of its own,
   * src/agent/policy-documents.ts); otherwise it is parsed here.
   */
  async add(
    text: string,
    source: string,
    opts: { mode?: PolicyMode } = {},
    parsed?: TracingParse,
  ): Promise<PolicyInfo> {
    this.checkReady();
    if (opts.mode !== undefined) checkMode(opts.mode);
    const policy = this.oneOf(parsed ?? this.parse(text, source), source);
    const existing = this.entries.get(policy.name);
    if (existing) {
      throw new PolicyOpError('exists', [
        `policy "${policy.name}" is already loaded (${existing.origin === 'flag' ? `from --policy ${existing.file}` : `state ${stateOf(existing)}`}); delete it first: osprey policy delete ${policy.name}`,
      ]);
    }
    const entry = this.newEntry({
      name: policy.name,
      origin: 'api',
      file: source,
      text,
      mode: opts.mode ?? policy.mode,
      enabled: true,
      addedAt: new Date().toISOString(),
      storeFile: this.store.fileFor(policy.name),
    });
    entry.hooks = policy.hooks.length;
    // the YAML is written while the kernel loads the programs; the index names it once both are done
    const written = this.store.writeTextAsync(entry.storeFile!, text).then(
      () => undefined,
      (err: Error) => err,
    );
    let live: Live;
    try {
      ({ live } = await this.instantiate(entry, entry.mode, policy.name, policy));
    } catch (err) {
      if ((await written) === undefined) {
        try {
          this.store.removeText(entry.storeFile!);
        } catch {
          // the index never named it: a stray file is ignored, and replaced by the next add of this name
        }
      }
      throw err;
    }
    try {
      const writeError = await written;
      if (writeError) throw writeError;
      this.store.save([...this.storedList(), stored(entry)]);
    } catch (err) {
      try {
        this.store.removeText(entry.storeFile!);
      } catch {
        // nothing more to undo: the index never named it
      }
      this.unload(entry, live);
      throw new PolicyOpError('storage', [
        `policy "${policy.name}" was not added: ${(err as Error).message}`,
      ]);
    }
    entry.live = live;
    this.entries.set(policy.name, entry);
    return this.info(entry);
  }

  /** Unload and forget a policy (a stored one is removed from the state directory). */
  async delete(name: string): Promise<void> {
    this.checkReady();
    const entry = this.find(name);
    if (entry.origin === 'api')
      this.saveOrThrow(
        this.storedList().filter((s) => s.name !== name),
        name,
      );
    this.entries.delete(name);
    const live = entry.live;
    entry.live = undefined;
    if (live) await this.unloadAsync(entry, live);
    if (entry.storeFile) {
      try {
        this.store.removeText(entry.storeFile);
      } catch (err) {
        this.opts.log(`policy "${name}": deleted, but its file stays: ${(err as Error).message}`);
      }
    }
  }

  /** Load a disabled (or failed) policy again from its stored YAML. */
  async enable(name: string): Promise<PolicyInfo> {
    this.checkReady();
    const entry = this.find(name);
    if (entry.live) return this.info(entry);
    if (entry.text === '') {
      throw new PolicyOpError('load-failed', [`policy "${name}": ${entry.error ?? 'its YAML is missing'}`]);
    }
    const { live, policy } = await this.instantiate(entry, entry.mode, name);
    if (entry.origin === 'api') {
      try {
        this.saveOrThrow(
          this.storedList().map((s) => (s.name === name ? { ...s, enabled: true } : s)),
          name,
        );
      } catch (err) {
        this.unload(entry, live);
        throw err;
      }
    }
    entry.live = live;
    entry.hooks = policy.hooks.length;
    entry.enabled = true;
    entry.error = undefined;
    return this.info(entry);
  }

  /** Unload a policy but keep it (stored, state "disabled"). */
  async disable(name: string): Promise<PolicyInfo> {
    this.checkReady();
    const entry = this.find(name);
    if (entry.origin === 'api' && entry.enabled) {
      this.saveOrThrow(
        this.storedList().map((s) => (s.name === name ? { ...s, enabled: false } : s)),
        name,
      );
    }
    entry.enabled = false;
    entry.error = undefined;
    const live = entry.live;
    entry.live = undefined;
    if (live) await this.unloadAsync(entry, live);
    return this.info(entry);
  }

  /** Monitor (actions counted, not taken) or enforce, live in the kernel, and stored. */
  setMode(name: string, mode: PolicyMode): PolicyInfo {
    this.checkReady();
    checkMode(mode);
    const entry = this.find(name);
    const old = entry.mode;
    if (old === mode && (!entry.live || entry.live.prog.mode === mode)) return this.info(entry);
    entry.live?.prog.setMode(mode);
    if (entry.origin === 'api') {
      try {
        this.saveOrThrow(
          this.storedList().map((s) => (s.name === name ? { ...s, mode } : s)),
          name,
        );
      } catch (err) {
        entry.live?.prog.setMode(old);
        throw err;
      }
    }
    entry.mode = mode;
    return this.info(entry);
  }

  list(): PolicyInfo[] {
    return [...this.entries.values()].sort((a, b) => a.name.localeCompare(b.name)).map((e) => this.info(e));
  }

  get(name: string): PolicyInfo {
    return this.info(this.find(name));
  }

  /** Every attached program of every policy, for status. */
  programs(): { policy: string; name: string; hook: string; fd: number }[] {
    const out: { policy: string; name: string; hook: string; fd: number }[] = [];
    for (const e of this.entries.values()) {
      for (const p of e.live?.prog.programs() ?? []) out.push({ policy: e.name, ...p });
    }
    return out;
  }

  /** Deliver what is in every policy's ring now. */
  drain(): void {
    for (const e of this.entries.values()) e.live?.prog.drain();
  }

  /** Unload every policy (the agent is stopping); what they stored stays stored. */
  close(): void {
    this.closed = true;
    for (const e of this.entries.values()) {
      if (e.live) this.unload(e, e.live);
      e.live = undefined;
    }
  }

  // -------------------------------------------------------------------------

  private newEntry(
    init: Pick<Entry, 'name' | 'origin' | 'file' | 'text' | 'mode' | 'enabled' | 'addedAt'> & {
      storeFile?: string;
    },
  ): Entry {
    return { ...init, hooks: 0, delivered: 0, eventErrors: 0 };
  }

  private checkReady(): void {
    if (this.closed) throw new PolicyOpError('unavailable', ['the agent is stopping']);
    if (!this.ready) throw new PolicyOpError('unavailable', ['the agent is still starting; try again']);
  }

  private find(name: string): Entry {
    const e = this.entries.get(name);
    if (!e) {
      const known = [...this.entries.keys()];
      const near = closest(name, known);
      const hint = near
        ? `did you mean "${near}"?`
        : known.length
          ? `loaded: ${known.join(', ')}`
          : 'none is loaded';
      throw new PolicyOpError('not-found', [`no policy "${name}"; ${hint} (see osprey policy list)`]);
    }
    return e;
  }

  /** What the policies' texts are parsed with: the kernel's features and tracefs. */
  parseOptions(): ValidateOptions {
    return {
      kernel: this.opts.kernel,
      ...(this.opts.tracefsRoot ? { tracefsRoot: this.opts.tracefsRoot } : {}),
    };
  }

  private parse(text: string, source: string): TracingParse {
    const r = parsePolicyText(text, source, this.parseOptions());
    return { policies: r.policies, errors: r.errors.map(String) };
  }

  private parseOne(text: string, source: string, name?: string): TracingPolicy {
    return this.oneOf(this.parse(text, source), source, name);
  }

  /** The one policy of a parse (or the one named), or the PolicyOpError that says why not. */
  private oneOf(r: TracingParse, source: string, name?: string): TracingPolicy {
    if (r.errors.length) throw new PolicyOpError('invalid', r.errors);
    if (name !== undefined) {
      const p = r.policies.find((x) => x.name === name);
      if (!p) throw new PolicyOpError('invalid', [`${source}: no longer defines policy "${name}"`]);
      return p;
    }
    if (r.policies.length !== 1) {
      throw new PolicyOpError('invalid', [
        `${source}: holds ${r.policies.length} policies (${r.policies.map((p) => p.name).join(', ')}); add one policy per file`,
      ]);
    }
    return r.policies[0]!;
  }

  /**
   * Compile and load a policy of entry's text, with the kernel's verifier
   * off the event loop (events keep flowing while it runs). mode undefined
   * keeps the policy's own. Throws PolicyOpError with nothing loaded.
   */
  private async instantiate(
    entry: Entry,
    mode: PolicyMode | undefined,
    name?: string,
    parsed?: TracingPolicy,
  ): Promise<{ live: Live; policy: TracingPolicy }> {
    const job = this.compileFor(entry, mode, name, parsed);
    let prog: PolicyProgram;
    try {
      prog = await PolicyProgram.loadAsync(job.compiled.tables, this.programOptions(entry, job.compiled));
    } catch (err) {
      throw notTaken(job.policy, err);
    }
    if (this.closed) {
      prog.close();
      throw new PolicyOpError('unavailable', ['the agent is stopping']);
    }
    return this.loaded(entry, job, prog);
  }

  private compileFor(
    entry: Entry,
    mode: PolicyMode | undefined,
    name?: string,
    parsed?: TracingPolicy,
  ): CompileJob {
    const t0 = process.hrtime.bigint();
    const policy = parsed ?? this.parseOne(entry.text, entry.file, name);
    const policyId = this.nextPolicyId++;
    try {
      const compiled = compilePolicy(policy, {
        policyId,
        agentPid: process.pid,
        ...(mode !== undefined ? { mode } : {}),
      });
      return { policy, compiled, t0 };
    } catch (err) {
      throw new PolicyOpError('invalid', compileMessages(err));
    }
  }

  private programOptions(entry: Entry, compiled: CompiledPolicy): PolicyProgramOptions {
    const procsFd = this.opts.processTableFd();
    return {
      onRecords: (records) => this.deliver(entry, compiled.meta, records),
      ...(procsFd !== undefined ? { procsMapFd: procsFd } : {}),
      ...(this.opts.scopeCgroup ? { scopeCgroup: this.opts.scopeCgroup } : {}),
      ...(this.opts.ringBytes ? { ringBytes: this.opts.ringBytes } : {}),
      ...(this.opts.ringHoldoffMs ? { holdoffMs: this.opts.ringHoldoffMs } : {}),
    };
  }

  private loaded(entry: Entry, job: CompileJob, prog: PolicyProgram): { live: Live; policy: TracingPolicy } {
    const memoryBytes = mapMemory(prog);
    // the counters are those of this load, like the kernel's
    entry.delivered = 0;
    entry.eventErrors = 0;
    const loadMs = Number(process.hrtime.bigint() - job.t0) / 1e6;
    return {
      live: {
        prog,
        meta: job.compiled.meta,
        memoryBytes,
        loadedAt: new Date().toISOString(),
        loadMs: Math.round(loadMs * 10) / 10,
      },
      policy: job.policy,
    };
  }

  /** Detach (delivering what is left in its ring). */
  private unload(entry: Entry, live: Live): void {
    try {
      live.prog.close();
    } catch (err) {
      this.opts.log(`policy "${entry.name}": while unloading: ${(err as Error).message}`);
    }
  }

  /** As unload(), with the kernel's detach off the event loop (a live delete or disable). */
  private async unloadAsync(entry: Entry, live: Live): Promise<void> {
    try {
      await live.prog.closeAsync();
    } catch (err) {
      this.opts.log(`policy "${entry.name}": while unloading: ${(err as Error).message}`);
    }
  }

  private deliver(
    entry: Entry,
    meta: PolicyEventMeta,
    records: Parameters<typeof buildTracingEvent>[0][],
  ): void {
    try {
      this.opts.beforeRecords?.();
    } catch {
      // the process sensor is gone (stopping): events get what the cache has
    }
    const events: ExportEvent[] = [];
    let firstError: string | undefined;
    for (const r of records) {
      try {
        events.push(buildTracingEvent(r, meta, this.opts.lookup, this.opts.nodeName) as ExportEvent);
      } catch (err) {
        entry.eventErrors++;
        firstError ??= (err as Error).message;
      }
    }
    if (firstError !== undefined) this.report(entry.name, `cannot build an event: ${firstError}`);
    entry.delivered += events.length;
    if (events.length) this.opts.publish(events);
  }

  private report(name: string, message: string): void {
    const now = Date.now();
    const last = this.lastReport.get(name);
    if (last !== undefined && now - last < REPORT_INTERVAL_MS) return;
    this.lastReport.set(name, now);
    this.opts.log(`policy "${name}": ${message}`);
  }

  /** The index as it stands: run-time policies and the shadowed ones. */
  private storedList(): StoredPolicy[] {
    const out: StoredPolicy[] = [];
    for (const e of this.entries.values()) if (e.origin === 'api') out.push(stored(e));
    return [...out, ...this.shadowed];
  }

  private saveOrThrow(list: StoredPolicy[], name: string): void {
    try {
      this.store.save(list);
    } catch (err) {
      throw new PolicyOpError('storage', [`policy "${name}" is unchanged: ${(err as Error).message}`]);
    }
  }

  private info(e: Entry): PolicyInfo {
    const live = e.live;
    const out: PolicyInfo = {
      name: e.name,
      state: stateOf(e),
      mode: e.mode,
      source: e.origin,
      file: e.file,
      hooks: e.hooks,
      programs: live ? live.prog.programs().length : 0,
      added_at: e.addedAt,
      memory_bytes: live?.memoryBytes ?? 0,
      counters: null,
    };
    if (e.error !== undefined && !live) out.error = e.error;
    if (live) {
      out.loaded_at = live.loadedAt;
      out.load_ms = live.loadMs;
      out.counters = countersInfo(live.prog.counters(), e);
    }
    return out;
  }
}

function stateOf(e: Entry): PolicyState {
  if (e.live) return 'enabled';
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

function countersInfo(c: PolicyCounters, e: Entry): PolicyCountersInfo {
  return {
    events_posted: c.posted,
    events_delivered: e.delivered,
    actions_taken: c.actionsTaken,
    actions_monitored: c.actionsMonitored,
    actions_refused: c.actionsRefused,
    actions_failed: c.actionsFailed,
    rate_limited: c.rateLimited,
    drops: c.ringbufDrops + c.pendingDrops + c.decodeErrors + e.eventErrors,
    ringbuf_drops: c.ringbufDrops,
    pending_drops: c.pendingDrops,
    decode_errors: c.decodeErrors,
    event_errors: e.eventErrors,
    ring_pending_bytes: c.ringPendingBytes,
  };
}

function checkMode(mode: string): asserts mode is PolicyMode {
  if (mode !== 'monitor' && mode !== 'enforce') {
    throw new PolicyOpError('invalid', [`mode "${mode}" is neither monitor nor enforce`]);
  }
}

function compileMessages(err: unknown): string[] {
  if (err instanceof PolicyCompileError) return err.problems.map(String);
  throw err;
}

/** One line for state "error". */
function reason(err: unknown): string {
  if (err instanceof PolicyOpError) return err.errors.join('; ');
  return (err as Error).message;
}

// ---------------------------------------------------------------------------
// kernel memory of a policy's maps

/** The fields of /proc/self/fdinfo/FD ("memlock" -> "4096"). */
function fdInfo(fd: number): Map<string, string> | undefined {
  try {
    const m = new Map<string, string>();
    for (const line of readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').split('\n')) {
      const i = line.indexOf(':');
      if (i > 0) m.set(line.slice(0, i), line.slice(i + 1).trim());
    }
    return m;
  } catch {
    return undefined;
  }
}

/**
 * The memlock of the BPF maps among the fds opened since `before`: what a
 * policy object just loaded holds, as the kernel accounts it. The shared
 * process table (reused by fd, not the policy's) is left out. Loading is
 * synchronous on this thread, so no other BPF map can appear meanwhile.
 */
function mapMemory(prog: PolicyProgram): number {
  let total = 0;
  for (const m of prog.maps()) total += Number(fdInfo(m.fd)?.get('memlock') ?? 0) || 0;
  return total;
}

/** A policy parsed and compiled for a load, and when its load began (for load_ms). */
interface CompileJob {
  policy: TracingPolicy;
  compiled: CompiledPolicy;
  t0: bigint;
}

function notTaken(policy: TracingPolicy, err: unknown): PolicyOpError {
  return new PolicyOpError('load-failed', [
    `policy "${policy.name}": the kernel did not take it: ${(err as Error).message}`,
  ]);
}
