/**
 * Network policies + the current workloads -> the kernel's lookup tables
 * (bpf/include/netpolicy.h). Pure: no kernel, no I/O, so it is unit-tested
 * directly and its output is what the loader writes into the inactive slot.
 *
 * For each workload identity and direction the rules of the policies that
 * select it are folded into:
 *   - peer classes: every distinct set of rules whose L3 part selects a peer
 *     gets a number; local peers (host, workloads) map to a class by identity
 *     (peers table), world addresses by longest prefix (cidrs table). Class 0
 *     is the set of rules that select every peer (toPorts-only rules).
 *   - per class and protocol, the port space split at every rule's bounds into
 *     atoms with one decision each, written as port prefixes (ports table);
 *     atoms that decide like the default are left out.
 *   - the default verdict (defaults table): default-deny or forward.
 */
import type { SourceRef } from '../policy/errors.js';
import { ANY_V4, ANY_V6, cidrContains } from './cidr.js';
import { HOST_IDENTITY, selectorMatches, selectsReserved } from './identity.js';
import {
  type Cidr,
  type Direction,
  defaultDenies,
  type LabelSelector,
  type Labels,
  type NetworkPolicy,
  type NetworkRule,
  policyRules,
  type RuleSection,
} from './model.js';
import { runAll, runSliced } from './slices.js';

export const VERDICT = { FORWARDED: 1, DROPPED: 2, AUDIT: 3 } as const;
export const VFLAG = { DEFAULT_DENY: 1, DENY_RULE: 2, NO_POLICY: 4 } as const;
export const RULE_NONE = 0xffff;
export const PROTO = { TCP: 6, UDP: 17 } as const;

export interface Verdict {
  verdict: 1 | 2 | 3;
  flags: number;
  rule: number;
  /** policy id; 0 = none */
  policy: number;
}

/** A local workload as the compiler sees it. */
export interface Endpoint {
  identity: number;
  labels: Labels;
}

/** A policy with the id flows will carry. Ids must be unique and at least 1. */
export interface NumberedPolicy {
  id: number;
  policy: NetworkPolicy;
}

export interface DefaultEntry {
  identity: number;
  dir: Direction;
  verdict: Verdict;
}

export interface PeerEntry {
  identity: number;
  dir: Direction;
  remote: number;
  cls: number;
}

export interface CidrEntry {
  identity: number;
  dir: Direction;
  cidr: Cidr;
  cls: number;
}

export interface PortEntry {
  identity: number;
  dir: Direction;
  cls: number;
  proto: number;
  /** first port of the prefix */
  port: number;
  /** prefix length over the 16 port bits */
  bits: number;
  verdict: Verdict;
}

export interface CompileWarning {
  policy: string;
  file: string;
  line: number;
  column: number;
  fieldPath: string;
  message: string;
}

export interface CompiledTables {
  defaults: DefaultEntry[];
  peers: PeerEntry[];
  cidrs: CidrEntry[];
  ports: PortEntry[];
  warnings: CompileWarning[];
}

interface RuleRef {
  policyId: number;
  policy: NetworkPolicy;
  rule: NetworkRule;
  deny: boolean;
}

const SECTIONS: Record<Direction, [RuleSection, RuleSection]> = {
  egress: ['egress', 'egressDeny'],
  ingress: ['ingress', 'ingressDeny'],
};

/** What the compile knows of the host besides its workloads. */
export interface CompileHost {
  /** the addresses that are this host (identity host): CIDR rules that name only these get a warning */
  hostCidrs?: readonly Cidr[];
}

/** Compile every policy for every endpoint. */
export function compileNetworkPolicies(
  policies: NumberedPolicy[],
  endpoints: Endpoint[],
  host: CompileHost = {},
): CompiledTables {
  return runAll(compileSteps(policies, endpoints, host));
}

/**
 * compileNetworkPolicies in slices of about `sliceMs` of the event loop, so
 * that a policy of 100,000 CIDRs (~0.3 s of compiling here) does not hold up
 * what else the agent does. The result is the same.
 */
export function compileNetworkPoliciesSliced(
  policies: NumberedPolicy[],
  endpoints: Endpoint[],
  host: CompileHost = {},
  sliceMs = 8,
): Promise<CompiledTables> {
  return runSliced(compileSteps(policies, endpoints, host), sliceMs);
}

/** Units of work between two places where compileSteps may pause (each a few µs to tens of µs). */
const STEP = 256;

/** The compile as a generator that pauses every STEP units of work. */
function* compileSteps(
  policies: NumberedPolicy[],
  endpoints: Endpoint[],
  host: CompileHost,
): Generator<void, CompiledTables> {
  const out: CompiledTables = { defaults: [], peers: [], cidrs: [], ports: [], warnings: [] };
  const ids = new Set<number>();
  for (const p of policies) {
    if (!Number.isInteger(p.id) || p.id < 1 || p.id > 0xffffffff || ids.has(p.id)) {
      throw new Error(`policy "${p.policy.name}": id ${p.id} is not a unique integer in 1..2^32-1`);
    }
    ids.add(p.id);
  }
  const sorted = [...policies].sort((a, b) => a.id - b.id);
  warnUnmatched(sorted, endpoints, out.warnings);
  warnHostCidrs(sorted, host.hostCidrs ?? [], out.warnings);
  const seen = new Set<number>();
  for (const ep of endpoints) {
    if (seen.has(ep.identity)) continue;
    seen.add(ep.identity);
    const selected = sorted.filter((p) => selectorMatches(p.policy.endpointSelector, ep.labels));
    for (const dir of ['egress', 'ingress'] as const)
      yield* compileDirection(ep.identity, dir, selected, endpoints, out);
  }
  return out;
}

function* compileDirection(
  identity: number,
  dir: Direction,
  selected: NumberedPolicy[],
  endpoints: Endpoint[],
  out: CompiledTables,
): Generator<void, void> {
  let work = 0;
  const rules: RuleRef[] = [];
  for (const p of selected) {
    const [allow, deny] = SECTIONS[dir];
    for (const rule of p.policy[allow]) rules.push({ policyId: p.id, policy: p.policy, rule, deny: false });
    for (const rule of p.policy[deny]) rules.push({ policyId: p.id, policy: p.policy, rule, deny: true });
  }
  const enforcing = selected.find((p) => !p.policy.audit && defaultDenies(p.policy, dir));
  const auditing = selected.find((p) => p.policy.audit && defaultDenies(p.policy, dir));
  if (rules.length === 0 && !enforcing && !auditing) return;
  const dflt: Verdict = enforcing
    ? { verdict: VERDICT.DROPPED, flags: VFLAG.DEFAULT_DENY, rule: RULE_NONE, policy: enforcing.id }
    : auditing
      ? { verdict: VERDICT.AUDIT, flags: VFLAG.DEFAULT_DENY, rule: RULE_NONE, policy: auditing.id }
      : { verdict: VERDICT.FORWARDED, flags: 0, rule: RULE_NONE, policy: 0 };
  out.defaults.push({ identity, dir, verdict: dflt });
  if (rules.length === 0) return;

  // peer classes: the set of rules that select a peer, numbered; class 0 = the rules that select every peer.
  // A set is known by its rules' indices in `rules`, ascending, joined by commas.
  const classes = new Map<string, { cls: number; rules: RuleRef[] }>();
  const classOfKey = (key: string): number => {
    let c = classes.get(key);
    if (!c) {
      c = { cls: classes.size, rules: key === '' ? [] : key.split(',').map((i) => rules[Number(i)]!) };
      classes.set(key, c);
    }
    return c.cls;
  };
  const indexOf = new Map(rules.map((r, i) => [r, i]));
  const classOf = (set: RuleRef[]): number => classOfKey(set.map((r) => indexOf.get(r)).join(','));
  const wildcard = rules.filter((r) => r.rule.peers === 'any');
  classOf(wildcard);

  // local peers: the host and every workload identity
  const locals = new Map<number, Labels>([[HOST_IDENTITY, { 'reserved:host': '' }]]);
  for (const e of endpoints) locals.set(e.identity, e.labels);
  for (const [remote, labels] of locals) {
    if (++work % STEP === 0) yield;
    const set = rules.filter((r) => selectsLocal(r.rule, remote, labels));
    const cls = classOf(set);
    if (cls !== 0) out.peers.push({ identity, dir, remote, cls });
  }

  // world addresses: every prefix any rule names, and /0 of each family so every address finds one
  const prefixes = new Map<string, Cidr>([
    [ANY_V4.text, ANY_V4],
    [ANY_V6.text, ANY_V6],
  ]);
  for (const r of rules) {
    if (r.rule.peers === 'any') continue;
    for (const c of r.rule.peers.cidrs) {
      if (++work % STEP === 0) yield;
      prefixes.set(c.cidr.text, c.cidr);
      for (const e of c.except) prefixes.set(e.text, e);
    }
  }
  const world = new WorldIndex();
  yield* world.build(rules);
  for (const cidr of prefixes.values()) {
    if (++work % STEP === 0) yield;
    out.cidrs.push({ identity, dir, cidr, cls: classOfKey(world.select(cidr)) });
  }

  // ports, per class and protocol
  for (const { cls, rules: set } of classes.values()) {
    if (++work % STEP === 0) yield;
    for (const proto of [PROTO.TCP, PROTO.UDP]) {
      for (const atom of portAtoms(set, proto, dflt)) {
        if (sameVerdict(atom.verdict, dflt)) continue;
        for (const [port, bits] of rangeToPrefixes(atom.lo, atom.hi)) {
          out.ports.push({ identity, dir, cls, proto, port, bits, verdict: atom.verdict });
        }
      }
    }
  }
}

function selectorSelects(sel: LabelSelector, remote: number, labels: Labels): boolean {
  // reserved identities are selected only by selectors that name reserved labels
  if (remote < 256 && !selectsReserved(sel)) return false;
  return selectorMatches(sel, labels);
}

/** Whether a rule's L3 part selects a local peer (the host or a workload). CIDRs never do, as in Cilium. */
function selectsLocal(rule: NetworkRule, remote: number, labels: Labels): boolean {
  if (rule.peers === 'any') return true;
  const { entities, endpoints } = rule.peers;
  if (entities.includes('all') || entities.includes('cluster')) return true;
  if (remote === HOST_IDENTITY && entities.includes('host')) return true;
  return endpoints.some((s) => selectorSelects(s, remote, labels));
}

/** A binary trie node over address bits: the CIDR entries and excepts that are exactly this prefix. */
interface TrieNode {
  zero?: TrieNode;
  one?: TrieNode;
  /** ids of CIDR entries (rule i's toCIDR/toCIDRSet item) whose prefix is this node */
  cidrs?: number[];
  /** ids of CIDR entries one of whose excepts is this node */
  excepts?: number[];
}

function bitAt(addr: Buffer, i: number): number {
  return (addr[i >> 3]! >> (7 - (i & 7))) & 1;
}

/**
 * Which rules select the world addresses whose longest listed prefix is p:
 * a rule that selects every peer or names the world, or has a CIDR that
 * contains p with no except of that CIDR containing p (every CIDR and except
 * is listed, so "contains p" decides for all the addresses p stands for);
 * found by walking p's bits through a trie of every listed CIDR and except
 * instead of comparing p with every CIDR of every rule. With N CIDRs that
 * is O(N * address bits) for the whole table instead of O(N^2).
 */
class WorldIndex {
  private readonly roots: Record<4 | 6, TrieNode> = { 4: {}, 6: {} };
  /** rules that select every world prefix of a family, whatever the CIDRs */
  private readonly always: Record<4 | 6, Set<number>> = { 4: new Set(), 6: new Set() };
  /** CIDR entry id -> index of its rule */
  private readonly ruleOf: number[] = [];

  /** Lists every rule's CIDRs and excepts; pauses every STEP of them. */
  *build(rules: RuleRef[]): Generator<void, void> {
    let work = 0;
    for (const [i, r] of rules.entries()) {
      const peers = r.rule.peers;
      if (peers === 'any') {
        this.always[4].add(i);
        this.always[6].add(i);
        continue;
      }
      const e = peers.entities;
      if (e.includes('all') || e.includes('world') || e.includes('world-ipv4')) this.always[4].add(i);
      if (e.includes('all') || e.includes('world') || e.includes('world-ipv6')) this.always[6].add(i);
      for (const c of peers.cidrs) {
        if (++work % STEP === 0) yield;
        const id = this.ruleOf.length;
        this.ruleOf.push(i);
        const node = this.node(c.cidr);
        node.cidrs ??= [];
        node.cidrs.push(id);
        for (const x of c.except) {
          const ex = this.node(x);
          ex.excepts ??= [];
          ex.excepts.push(id);
        }
      }
    }
  }

  /** The rules that select p, as their indices ascending joined by commas (a class's key). */
  select(p: Cidr): string {
    const always = this.always[p.family];
    // most prefixes are one rule's CIDR and nothing else: no sets, no sort
    let picked: number[] = [];
    let excluded: Set<number> | undefined;
    let candidates: number[] | undefined;
    let n: TrieNode | undefined = this.roots[p.family];
    for (let depth = 0; n; depth++) {
      if (n.cidrs) {
        candidates ??= [];
        for (const id of n.cidrs) candidates.push(id);
      }
      if (n.excepts) {
        excluded ??= new Set();
        for (const id of n.excepts) excluded.add(id);
      }
      if (depth === p.bits) break;
      n = bitAt(p.addr, depth) ? n.one : n.zero;
    }
    if (candidates) for (const id of candidates) if (!excluded?.has(id)) picked.push(this.ruleOf[id]!);
    if (always.size > 0) picked = picked.concat([...always]);
    if (picked.length > 1) picked = [...new Set(picked)].sort((a, b) => a - b);
    return picked.join(',');
  }

  private node(c: Cidr): TrieNode {
    let n = this.roots[c.family];
    for (let depth = 0; depth < c.bits; depth++) {
      if (bitAt(c.addr, depth)) {
        n.one ??= {};
        n = n.one;
      } else {
        n.zero ??= {};
        n = n.zero;
      }
    }
    return n;
  }
}

interface Atom {
  lo: number;
  hi: number;
  verdict: Verdict;
}

function ruleCovers(rule: NetworkRule, proto: number, lo: number, hi: number): boolean {
  if (rule.ports === undefined) return true;
  return rule.ports.some(
    (p) => (p.protocol === 'ANY' || PROTO[p.protocol] === proto) && p.port <= lo && hi <= p.endPort,
  );
}

/** The port space of one protocol split at every rule bound, adjacent atoms of one verdict merged. */
function portAtoms(set: RuleRef[], proto: number, dflt: Verdict): Atom[] {
  const cuts = new Set<number>([0, 65536]);
  for (const r of set) {
    for (const p of r.rule.ports ?? []) {
      if (p.protocol !== 'ANY' && PROTO[p.protocol] !== proto) continue;
      cuts.add(p.port);
      cuts.add(p.endPort + 1);
    }
  }
  const bounds = [...cuts].sort((a, b) => a - b);
  const atoms: Atom[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const lo = bounds[i]!;
    const hi = bounds[i + 1]! - 1;
    const v = decideAtom(
      set.filter((r) => ruleCovers(r.rule, proto, lo, hi)),
      dflt,
    );
    const last = atoms[atoms.length - 1];
    if (last && last.hi + 1 === lo && sameVerdict(last.verdict, v)) last.hi = hi;
    else atoms.push({ lo, hi, verdict: v });
  }
  return atoms;
}

/**
 * Deny beats allow; a deny of an audit-mode policy is reported (AUDIT) but
 * not enforced; with no rule, the default. The first rule (lowest policy id,
 * then section, then index) names the decision.
 */
function decideAtom(matching: RuleRef[], dflt: Verdict): Verdict {
  const pick = (r: RuleRef, verdict: Verdict['verdict'], flags: number): Verdict => ({
    verdict,
    flags,
    rule: r.rule.index,
    policy: r.policyId,
  });
  const enforcedDeny = matching.find((r) => r.deny && !r.policy.audit);
  if (enforcedDeny) return pick(enforcedDeny, VERDICT.DROPPED, VFLAG.DENY_RULE);
  const auditDeny = matching.find((r) => r.deny && r.policy.audit);
  if (auditDeny) return pick(auditDeny, VERDICT.AUDIT, VFLAG.DENY_RULE);
  const allow = matching.find((r) => !r.deny);
  if (allow) return pick(allow, VERDICT.FORWARDED, 0);
  return dflt;
}

function sameVerdict(a: Verdict, b: Verdict): boolean {
  return a.verdict === b.verdict && a.flags === b.flags && a.rule === b.rule && a.policy === b.policy;
}

/** [lo, hi] as the fewest aligned prefixes: [first port, prefix bits] over 16 bits. */
export function rangeToPrefixes(lo: number, hi: number): [number, number][] {
  const out: [number, number][] = [];
  let p = lo;
  while (p <= hi) {
    let size = p === 0 ? 65536 : p & -p;
    while (p + size - 1 > hi) size >>= 1;
    out.push([p, 16 - Math.log2(size)]);
    p += size;
  }
  return out;
}

function warning(p: NetworkPolicy, at: SourceRef, message: string): CompileWarning {
  return {
    policy: p.name,
    file: p.file,
    line: at.line,
    column: at.column,
    fieldPath: at.fieldPath,
    message,
  };
}

/**
 * A CIDR every address of which is this host's selects nothing: CIDR rules
 * never select the host, as in Cilium (127.0.0.1/32 is the `host` entity,
 * not `world`). Said at load, so that a rule that cannot match is not
 * found by its drops.
 */
function warnHostCidrs(
  policies: NumberedPolicy[],
  hostCidrs: readonly Cidr[],
  warnings: CompileWarning[],
): void {
  if (hostCidrs.length === 0) return;
  for (const { policy } of policies) {
    for (const rule of policyRules(policy)) {
      if (rule.peers === 'any') continue;
      const entities = rule.section.startsWith('egress') ? 'toEntities' : 'fromEntities';
      for (const c of rule.peers.cidrs) {
        if (!hostCidrs.some((h) => cidrContains(h, c.cidr))) continue;
        warnings.push(
          warning(
            policy,
            rule.source,
            `${c.cidr.text} is this host's address: CIDR rules never select the host (as in Cilium), ` +
              `so it selects nothing; use ${entities}: [host]`,
          ),
        );
      }
    }
  }
}

function warnUnmatched(policies: NumberedPolicy[], endpoints: Endpoint[], warnings: CompileWarning[]): void {
  const warn = (p: NetworkPolicy, sel: LabelSelector, message: string) =>
    warnings.push(warning(p, sel.source, message));
  for (const { policy } of policies) {
    if (!endpoints.some((e) => selectorMatches(policy.endpointSelector, e.labels))) {
      warn(
        policy,
        policy.endpointSelector,
        'endpointSelector selects no workload: the policy has no effect yet',
      );
    }
    for (const rule of policyRules(policy)) {
      if (rule.peers === 'any') continue;
      for (const sel of rule.peers.endpoints) {
        const any =
          endpoints.some((e) => selectorSelects(sel, e.identity, e.labels)) ||
          selectorSelects(sel, HOST_IDENTITY, { 'reserved:host': '' });
        if (!any) warn(policy, sel, 'this selector matches no workload: the rule selects no peer through it');
      }
    }
  }
}
