/**
 * One set of policy commands for both kinds of policy: `osprey policy
 * add|list|delete|enable|disable|set-mode` and `--policy` reach the
 * TracingPolicy manager or the network policy manager by the YAML's `kind`
 * (add, --policy) or by the name (the rest). A name is unique across both,
 * so `osprey policy delete NAME` never has to guess.
 */
import { readFileSync } from 'node:fs';
import { NETPOLICY_KINDS } from '../netpolicy/index.js';
import { parseNetworkPolicyText } from '../netpolicy/parse.js';
import type { PolicyMode } from '../sensors/tracing/index.js';
import type { PolicyApi } from './api.js';
import { describeFsError, expandPolicyPaths, UserError } from './fs-util.js';
import {
  documentKinds,
  isNetworkPolicyText,
  type NetworkPolicyInfo,
  type NetworkPolicyKind,
  type NetworkPolicyManager,
  type PreparedNetworkPolicy,
} from './netpolicies.js';
import { type PolicyInfo, type PolicyManager, PolicyOpError, type PreparedPolicy } from './policies.js';
import { PolicyReadError, readPolicyText } from './policy-documents.js';

/** A policy as the API lists it: the kind says which manager holds it. */
export type AnyPolicyInfo = (PolicyInfo & { kind: 'TracingPolicy' }) | NetworkPolicyInfo;

export class PolicyRouter implements PolicyApi {
  /** The last change queued: changes run one at a time, in the order they came. */
  private changes: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly tracing: PolicyManager,
    private readonly network: NetworkPolicyManager | undefined,
    /** why there is no network policy manager */
    private readonly networkUnavailable = 'network policy is not available in this agent',
  ) {}

  list(): AnyPolicyInfo[] {
    const all: AnyPolicyInfo[] = [
      ...this.tracing.list().map((p) => ({ ...p, kind: 'TracingPolicy' as const })),
      ...(this.network?.list() ?? []),
    ];
    return all.sort((a, b) => a.name.localeCompare(b.name));
  }

  get(name: string): AnyPolicyInfo {
    if (this.network?.has(name)) return this.network.get(name);
    return { ...this.tracing.get(name), kind: 'TracingPolicy' };
  }

  /**
   * Changes wait for the one before them: an add may wait for the kernel's
   * verifier off the event loop, and the next change must see its outcome
   * (a second add of the same name is refused, a delete finds it).
   */
  private serial<T>(change: () => T | Promise<T>): Promise<T> {
    const run = this.changes.then(change);
    this.changes = run.catch(() => undefined);
    return run;
  }

  add(text: string, source: string, opts: { mode?: PolicyMode }): Promise<AnyPolicyInfo> {
    return this.serial(() => this.addNow(text, source, opts));
  }

  private async addNow(text: string, source: string, opts: { mode?: PolicyMode }): Promise<AnyPolicyInfo> {
    // a large text is read off the event loop, and its network policy parse with it
    const read = await readPolicyText(text, source, this.tracing.parseOptions()).catch((err: unknown) => {
      if (!(err instanceof PolicyReadError)) throw err;
      throw new PolicyOpError(err.stopping ? 'unavailable' : 'load-failed', [err.message]);
    });
    const { docs, network: parsed } = read;
    const names = docs.map((d) => d.name).filter((n): n is string => n !== undefined);
    if (isNetworkPolicyText(text)) {
      const other = docs.find(
        (d) => d.kind !== undefined && !(NETPOLICY_KINDS as readonly string[]).includes(d.kind),
      );
      if (other) {
        throw new PolicyOpError('invalid', [
          `${source}: mixes network policies with kind ${other.kind}; put each policy in its own file`,
        ]);
      }
      if (!this.network) {
        throw new PolicyOpError('load-failed', [`${source}: ${this.networkUnavailable}`]);
      }
      for (const n of names) this.refuseTaken(n, 'network');
      return this.network.add(text, source, opts, parsed);
    }
    for (const n of names) this.refuseTaken(n, 'tracing');
    return { ...(await this.tracing.add(text, source, opts, read.tracing)), kind: 'TracingPolicy' };
  }

  delete(name: string): Promise<void> {
    return this.serial(async () => {
      if (this.network?.has(name)) await this.network.delete(name);
      else await this.tracing.delete(name);
    });
  }

  enable(name: string): Promise<AnyPolicyInfo> {
    return this.serial(async () => {
      if (this.network?.has(name)) return this.network.enable(name);
      return { ...(await this.tracing.enable(name)), kind: 'TracingPolicy' as const };
    });
  }

  disable(name: string): Promise<AnyPolicyInfo> {
    return this.serial(async () => {
      if (this.network?.has(name)) return this.network.disable(name);
      return { ...(await this.tracing.disable(name)), kind: 'TracingPolicy' as const };
    });
  }

  setMode(name: string, mode: PolicyMode): Promise<AnyPolicyInfo> {
    return this.serial(async (): Promise<AnyPolicyInfo> => {
      if (this.network?.has(name)) return this.network.setMode(name, mode);
      return { ...this.tracing.setMode(name, mode), kind: 'TracingPolicy' as const };
    });
  }

  /** A name the other kind holds is refused: later commands by name must not be ambiguous. */
  private refuseTaken(name: string, adding: 'network' | 'tracing'): void {
    const taken =
      adding === 'network'
        ? this.tracing.list().some((p) => p.name === name)
        : this.network?.has(name) === true;
    if (taken) {
      throw new PolicyOpError('exists', [
        `a ${adding === 'network' ? 'TracingPolicy' : 'network policy'} named "${name}" is loaded; policy names are shared by both kinds, give this one another name or delete that one first: osprey policy delete ${name}`,
      ]);
    }
  }
}

/** The --policy files, split by kind and validated. */
export interface StartupPolicies {
  tracing: PreparedPolicy[];
  network: PreparedNetworkPolicy[];
}

/** TracingPolicy texts checked: the policies that passed, and every problem. */
export type TracingCheck = (files: { file: string; text: string }[]) => {
  policies: PreparedPolicy[];
  problems: string[];
};

/**
 * Read and validate every policy file of `paths` (a directory: each *.yaml
 * and *.yml in it) before anything is attached, sending each file to the
 * checker of its kind. Returns what passed and every problem of every file
 * as FILE:LINE:COL: field: message; `what` (the flag or command) is named
 * in a path that cannot be read.
 */
export function checkPolicyFiles(
  paths: string[],
  checkTracing: TracingCheck,
  what: string,
): StartupPolicies & { problems: string[] } {
  const problems: string[] = [];
  const tracingFiles: { file: string; text: string }[] = [];
  const network: PreparedNetworkPolicy[] = [];
  const seen = new Map<string, string>();
  for (const file of expandPolicyPaths(paths, problems, what)) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      problems.push(`${file}: cannot read: ${describeFsError(err)}`);
      continue;
    }
    if (!isNetworkPolicyText(text)) {
      tracingFiles.push({ file, text });
      continue;
    }
    const r = parseNetworkPolicyText(text, file);
    problems.push(...r.errors.map(String));
    const kinds = documentKinds(text);
    r.policies.forEach((p, i) => {
      const other = seen.get(p.name);
      if (other !== undefined) {
        problems.push(
          `${file}:${p.source.line}:${p.source.column}: metadata.name: policy "${p.name}" is also defined in ${other} (give each policy its own name)`,
        );
        return;
      }
      seen.set(p.name, file);
      const kind: NetworkPolicyKind = kinds[i] ?? 'CiliumNetworkPolicy';
      network.push({ name: p.name, kind, text, file, policy: p });
    });
  }
  const checked = tracingFiles.length ? checkTracing(tracingFiles) : { policies: [], problems: [] };
  problems.push(...checked.problems);
  for (const t of checked.policies) {
    const other = seen.get(t.name);
    if (other !== undefined) {
      problems.push(
        `${t.file}: metadata.name: policy "${t.name}" is also defined in ${other} (policy names are shared by both kinds; give each policy its own name)`,
      );
    }
  }
  return { tracing: checked.policies, network, problems };
}

/**
 * The --policy files, checked (checkPolicyFiles). Throws a UserError listing
 * every problem when there is one: nothing is loaded then.
 */
export function prepareStartupPolicies(paths: string[], checkTracing: TracingCheck): StartupPolicies {
  const { tracing, network, problems } = checkPolicyFiles(paths, checkTracing, '--policy');
  if (problems.length) {
    const n = problems.length;
    throw new UserError(
      `--policy: ${n} problem${n === 1 ? '' : 's'}; fix ${n === 1 ? 'it' : 'them'} and start again (nothing was loaded):\n${problems.map((p) => `  ${p}`).join('\n')}`,
    );
  }
  return { tracing, network };
}
