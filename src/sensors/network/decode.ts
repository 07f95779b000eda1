/**
 * Flow records (struct np_flow) -> typed records, and typed records ->
 * Hubble-shaped flow JSON.
 */
import { formatAddress } from '../../netpolicy/cidr.js';
import { reservedName } from '../../netpolicy/identity.js';
import type { Labels } from '../../netpolicy/model.js';
import { ktimeToTime } from '../../process/clock.js';
import { FLOW, FlowEvent, NP, VERDICT, VerdictFlag, VerdictKind } from './layout.js';

export type FlowVerdict = 'FORWARDED' | 'DROPPED' | 'AUDIT';
export type FlowEventName = 'NEW' | 'ESTABLISHED' | 'CLOSED' | 'REVOKED';
export type TrafficDirection = 'EGRESS' | 'INGRESS';

/** One decoded np_flow. src -> dst is initiator -> responder. */
export interface FlowRecord {
  ktime: bigint;
  cpu: number;
  /** 0 when the kernel posted it outside the process's context (packets, TCP state changes) */
  pid: number;
  tid: number;
  cgroupId: bigint;
  cookie: bigint;
  generation: bigint;
  event: FlowEventName;
  direction: TrafficDirection;
  protocol: 'TCP' | 'UDP';
  ipVersion: 4 | 6;
  /** '' when not known yet (a connect() before the route picked a source) */
  srcAddr: string;
  dstAddr: string;
  srcPort: number;
  dstPort: number;
  srcIdentity: number;
  dstIdentity: number;
  verdict: FlowVerdict;
  /** no rule allowed it and the direction is default-deny */
  defaultDeny: boolean;
  /** an egressDeny/ingressDeny rule decided */
  denyRule: boolean;
  /** no policy selects the workload in this direction */
  noPolicy: boolean;
  /** 0 = none */
  policyId: number;
  /** index in the deciding section, undefined for defaults */
  rule: number | undefined;
  /** CLOSED: bytes the local socket sent (acked by the peer) and received */
  bytesSent: bigint;
  bytesReceived: bigint;
}

const EVENTS: Record<number, FlowEventName> = {
  [FlowEvent.NEW]: 'NEW',
  [FlowEvent.ESTABLISHED]: 'ESTABLISHED',
  [FlowEvent.CLOSED]: 'CLOSED',
  [FlowEvent.REVOKED]: 'REVOKED',
};

const VERDICTS: Record<number, FlowVerdict> = {
  [VerdictKind.FORWARDED]: 'FORWARDED',
  [VerdictKind.DROPPED]: 'DROPPED',
  [VerdictKind.AUDIT]: 'AUDIT',
};

/** Decode the record at buf[off, off+len); throws on a record that is not a flow. */
export function decodeFlowRecord(buf: Buffer, off: number, len: number): FlowRecord {
  if (len < FLOW.SIZE) throw new Error(`flow record of ${len} bytes, expected ${FLOW.SIZE}`);
  const type = buf.readUInt16LE(off + FLOW.type);
  if (type !== NP.REC_FLOW) throw new Error(`record type ${type} is not a flow (${NP.REC_FLOW})`);
  const family = buf[off + FLOW.family] === NP.FAMILY_INET6 ? 6 : 4;
  const addr = (at: number): string => {
    const b = buf.subarray(off + at, off + at + 16);
    return b.every((x) => x === 0) ? '' : formatAddress(family, Buffer.from(b));
  };
  const v = off + FLOW.v;
  const flags = buf[v + VERDICT.flags]!;
  const rule = buf.readUInt16LE(v + VERDICT.rule);
  return {
    ktime: buf.readBigUInt64LE(off + FLOW.ktime),
    cpu: buf.readUInt16LE(off + FLOW.cpu),
    pid: buf.readUInt32LE(off + FLOW.pid),
    tid: buf.readUInt32LE(off + FLOW.tid),
    cgroupId: buf.readBigUInt64LE(off + FLOW.cgroup_id),
    cookie: buf.readBigUInt64LE(off + FLOW.cookie),
    generation: buf.readBigUInt64LE(off + FLOW.generation),
    event: EVENTS[buf[off + FLOW.event]!] ?? 'NEW',
    direction: buf[off + FLOW.dir] === 1 ? 'INGRESS' : 'EGRESS',
    protocol: buf[off + FLOW.proto] === NP.PROTO_UDP ? 'UDP' : 'TCP',
    ipVersion: family,
    srcAddr: addr(FLOW.src_addr),
    dstAddr: addr(FLOW.dst_addr),
    srcPort: buf.readUInt16LE(off + FLOW.src_port),
    dstPort: buf.readUInt16LE(off + FLOW.dst_port),
    srcIdentity: buf.readUInt32LE(off + FLOW.src_identity),
    dstIdentity: buf.readUInt32LE(off + FLOW.dst_identity),
    verdict: VERDICTS[buf[v + VERDICT.verdict]!] ?? 'FORWARDED',
    defaultDeny: (flags & VerdictFlag.DEFAULT_DENY) !== 0,
    denyRule: (flags & VerdictFlag.DENY_RULE) !== 0,
    noPolicy: (flags & VerdictFlag.NO_POLICY) !== 0,
    policyId: buf.readUInt32LE(v + VERDICT.policy),
    rule: rule === NP.RULE_NONE ? undefined : rule,
    bytesSent: buf.readBigUInt64LE(off + FLOW.bytes_sent),
    bytesReceived: buf.readBigUInt64LE(off + FLOW.bytes_received),
  };
}

/** The section a verdict's rule index refers to. */
export function ruleSection(r: FlowRecord): 'egress' | 'egressDeny' | 'ingress' | 'ingressDeny' {
  const base = r.direction === 'EGRESS' ? 'egress' : 'ingress';
  return r.denyRule ? `${base}Deny` : base;
}

/** What the JSON encoder needs to know beyond the record. */
export interface FlowContext {
  nodeName: string;
  /** labels of a local or reserved identity */
  labels(identity: number): Labels | undefined;
  /** name of the workload whose cgroup this is */
  workloadName?(cgroupId: bigint): string | undefined;
  /** metadata.name of a policy id */
  policyName(id: number): string | undefined;
}

export interface HubbleEndpoint {
  identity: number;
  labels: string[];
  workload?: string;
}

export interface PolicyRef {
  name: string;
  /** the deciding rule's field path, e.g. spec.egress[1]; absent for default-deny */
  rule?: string;
  default_deny?: true;
}

/** A Hubble-like flow. Extra facts Hubble has no field for live under `osprey`. */
export interface HubbleFlow {
  time: string;
  verdict: FlowVerdict;
  drop_reason_desc?: 'POLICY_DENIED';
  IP: { source: string; destination: string; ipVersion: 'IPv4' | 'IPv6' };
  l4: {
    TCP?: { source_port: number; destination_port: number };
    UDP?: { source_port: number; destination_port: number };
  };
  source: HubbleEndpoint;
  destination: HubbleEndpoint;
  Type: 'L3_L4';
  node_name: string;
  traffic_direction: TrafficDirection;
  is_reply: false;
  Summary: string;
  egress_allowed_by?: PolicyRef[];
  egress_denied_by?: PolicyRef[];
  ingress_allowed_by?: PolicyRef[];
  ingress_denied_by?: PolicyRef[];
  osprey: {
    event: FlowEventName;
    socket_cookie: string;
    policy_generation: string;
    pid?: number;
    bytes_sent?: string;
    bytes_received?: string;
    /** the verdict fell back to the default: no rule allowed it */
    default_deny?: true;
    /** no policy selects the workload in this direction */
    no_policy?: true;
  };
}

function labelList(l: Labels | undefined): string[] {
  return l ? Object.keys(l).map((k) => (l[k] === '' ? k : `${k}=${l[k]}`)) : [];
}

/** The `{flow, node_name, time}` line `hubble observe -o json` prints, for one record. */
export function toHubbleFlow(
  r: FlowRecord,
  ctx: FlowContext,
): { flow: HubbleFlow; node_name: string; time: string } {
  const time = ktimeToTime(r.ktime);
  const local = ctx.workloadName?.(r.cgroupId);
  const endpoint = (id: number, isLocal: boolean): HubbleEndpoint => {
    const e: HubbleEndpoint = { identity: id, labels: labelList(ctx.labels(id)) };
    if (e.labels.length === 0 && reservedName(id)) e.labels = [`reserved:${reservedName(id)}`];
    if (isLocal && local) e.workload = local;
    return e;
  };
  const egress = r.direction === 'EGRESS';
  const ports = { source_port: r.srcPort, destination_port: r.dstPort };
  const flow: HubbleFlow = {
    time,
    verdict: r.verdict,
    IP: { source: r.srcAddr, destination: r.dstAddr, ipVersion: r.ipVersion === 6 ? 'IPv6' : 'IPv4' },
    l4: r.protocol === 'TCP' ? { TCP: ports } : { UDP: ports },
    source: endpoint(r.srcIdentity, egress),
    destination: endpoint(r.dstIdentity, !egress),
    Type: 'L3_L4',
    node_name: ctx.nodeName,
    traffic_direction: r.direction,
    is_reply: false,
    Summary: summary(r),
    osprey: {
      event: r.event,
      socket_cookie: r.cookie.toString(),
      policy_generation: r.generation.toString(),
    },
  };
  if (r.verdict === 'DROPPED') flow.drop_reason_desc = 'POLICY_DENIED';
  if (r.pid) flow.osprey.pid = r.pid;
  if (r.event === 'CLOSED') {
    flow.osprey.bytes_sent = r.bytesSent.toString();
    flow.osprey.bytes_received = r.bytesReceived.toString();
  }
  if (r.defaultDeny) flow.osprey.default_deny = true;
  if (r.noPolicy) flow.osprey.no_policy = true;
  if (r.policyId) {
    const ref: PolicyRef = { name: ctx.policyName(r.policyId) ?? `policy#${r.policyId}` };
    if (r.rule !== undefined) ref.rule = `spec.${ruleSection(r)}[${r.rule}]`;
    if (r.defaultDeny) ref.default_deny = true;
    const denied = r.verdict !== 'FORWARDED';
    if (egress) flow[denied ? 'egress_denied_by' : 'egress_allowed_by'] = [ref];
    else flow[denied ? 'ingress_denied_by' : 'ingress_allowed_by'] = [ref];
  }
  return { flow, node_name: ctx.nodeName, time };
}

function summary(r: FlowRecord): string {
  const ep = (a: string, p: number) => (r.ipVersion === 6 ? `[${a || '::'}]:${p}` : `${a || '0.0.0.0'}:${p}`);
  const what = r.event === 'NEW' ? (r.protocol === 'TCP' ? 'connect' : 'datagram') : r.event.toLowerCase();
  const bytes = r.event === 'CLOSED' ? ` sent ${r.bytesSent} received ${r.bytesReceived}` : '';
  return `${r.protocol} ${what} ${ep(r.srcAddr, r.srcPort)} -> ${ep(r.dstAddr, r.dstPort)} ${r.verdict}${bytes}`;
}
