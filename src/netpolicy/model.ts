/**
 * CiliumNetworkPolicy as Osprey reads it: the validated model the parser
 * produces and the compiler consumes. Every rule keeps where it came from, so
 * a flow can name the rule that decided it and an error can point at it.
 */
import type { SourceRef } from '../policy/errors.js';

export const NETPOLICY_API_VERSION = 'cilium.io/v2';
export const NETPOLICY_KIND = 'CiliumNetworkPolicy';

/** metadata.annotations key that puts a policy in audit mode: verdicts are reported, nothing is dropped. */
export const AUDIT_ANNOTATION = 'osprey.io/audit-mode';

export type Labels = Readonly<Record<string, string>>;

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface LabelRequirement {
  key: string;
  operator: SelectorOperator;
  values: string[];
}

/** A Kubernetes label selector. Both parts empty selects every workload. */
export interface LabelSelector {
  matchLabels: Record<string, string>;
  matchExpressions: LabelRequirement[];
  source: SourceRef;
}

/** An IPv4 or IPv6 prefix, host bits cleared. */
export interface Cidr {
  family: 4 | 6;
  /** prefix length */
  bits: number;
  /** 16 bytes; IPv4 in the first 4 */
  addr: Buffer;
  /** as normalized text, e.g. 10.0.0.0/8 */
  text: string;
}

export interface CidrRule {
  cidr: Cidr;
  except: Cidr[];
}

/** Entities a rule can name (toEntities/fromEntities). */
export type Entity = 'all' | 'world' | 'world-ipv4' | 'world-ipv6' | 'host' | 'cluster';

export type Protocol = 'TCP' | 'UDP' | 'ANY';

/** ports [port, endPort] of one protocol (ANY = TCP and UDP) */
export interface PortRange {
  port: number;
  endPort: number;
  protocol: Protocol;
}

export type Direction = 'egress' | 'ingress';

export type RuleSection = 'egress' | 'egressDeny' | 'ingress' | 'ingressDeny';

/**
 * One rule: its peers (L3) and ports (L4). A peer matches if any of the L3
 * parts selects it; `peers === 'any'` (a rule with toPorts only) matches every
 * peer, and a rule with neither peers nor ports matches nothing.
 */
export interface NetworkRule {
  section: RuleSection;
  /** index in its section's list */
  index: number;
  peers: 'any' | PeerSelection;
  /** undefined: every port of every protocol */
  ports: PortRange[] | undefined;
  source: SourceRef;
}

export interface PeerSelection {
  endpoints: LabelSelector[];
  entities: Entity[];
  cidrs: CidrRule[];
}

export interface NetworkPolicy {
  name: string;
  /** file it was read from ('' when built in code) */
  file: string;
  endpointSelector: LabelSelector;
  egress: NetworkRule[];
  egressDeny: NetworkRule[];
  ingress: NetworkRule[];
  ingressDeny: NetworkRule[];
  /** spec.enableDefaultDeny; undefined = default-deny when the direction has rules */
  enableDefaultDeny: { egress?: boolean; ingress?: boolean };
  /** report what would be dropped, drop nothing */
  audit: boolean;
  source: SourceRef;
}

/** A policy's rule lists, in this order wherever they are walked. */
export const RULE_SECTIONS: readonly RuleSection[] = ['egress', 'egressDeny', 'ingress', 'ingressDeny'];

/** Every rule of a policy, section by section (RULE_SECTIONS). */
export function policyRules(p: NetworkPolicy): NetworkRule[] {
  return RULE_SECTIONS.flatMap((s) => p[s]);
}

/** Whether the policy makes its workloads default-deny in a direction. */
export function defaultDenies(p: NetworkPolicy, dir: Direction): boolean {
  const explicit = p.enableDefaultDeny[dir];
  if (explicit !== undefined) return explicit;
  return dir === 'egress'
    ? p.egress.length + p.egressDeny.length > 0
    : p.ingress.length + p.ingressDeny.length > 0;
}
