/**
 * Flow records (struct np_flow) -> typed records, and typed records ->
 * Hubble-shaped flow JSON.
 */

import { placeText } from '../../events/encode.js';
import { BuiltFlowEvent } from '../../events/flow.js';
import { formatAddress } from '../../netpolicy/cidr.js';
import { reservedName } from '../../netpolicy/identity.js';
import type { Labels } from '../../netpolicy/model.js';
import { ktimeAtToTime } from '../../process/clock.js';
import { FLOW, FlowEvent, NP, VERDICT, VerdictFlag, VerdictKind } from './layout.js';

export type FlowVerdict = 'FORWARDED' | 'DROPPED' | 'AUDIT';
export type FlowEventName = 'NEW' | 'ESTABLISHED' | 'CLOSED' | 'REVOKED';
export type TrafficDirection = 'EGRESS' | 'INGRESS';

/** One decoded np_flow. src -> dst is initiator -> responder. */
export interface FlowRecord {
  /** when the kernel posted it, RFC 3339 UTC with nanoseconds */
  time: string;
  cpu: number;
  /** 0 when the kernel posted it outside the process's context (packets, TCP state changes) */
  pid: number;
  tid: number;
  cgroupId: bigint;
  /** the socket's cookie (u64, in decimal, as the flow's JSON carries it) */
  cookie: string;
  /** generation of the tables that decided (u64, in decimal) */
  generation: string;
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
  /** CLOSED: bytes the local socket sent (acked by the peer) and received (u64, in decimal) */
  bytesSent: string;
  bytesReceived: string;
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

/** The u64 at buf[off] in decimal: through a number below 2^53 (always, in practice), else a bigint. */
function u64Text(buf: Buffer, off: number): string {
  const hi = buf.readUInt32LE(off + 4);
  if (hi < 0x200000) return String(hi * 4294967296 + buf.readUInt32LE(off));
  return buf.readBigUInt64LE(off).toString();
}

/** Text of recent IPv4 addresses (flows of a host name the same few over and over), by their u32. */
const V4_TEXT = new Map<number, string>();
const V4_TEXT_MAX = 4096;

/** The 16 address bytes at buf[at] as text; '' when all zero. */
function addrText(buf: Buffer, at: number, family: 4 | 6): string {
  let any = 0;
  for (let i = 0; i < 16; i++) any |= buf[at + i]!;
  if (any === 0) return '';
  if (family === 6) return formatAddress(6, buf.subarray(at, at + 16));
  const key = buf.readUInt32BE(at);
  let t = V4_TEXT.get(key);
  if (t === undefined) {
    t = `${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`;
    if (V4_TEXT.size >= V4_TEXT_MAX) V4_TEXT.clear();
    V4_TEXT.set(key, t);
  }
  return t;
}

/** Decode the record at buf[off, off+len); throws on a record that is not a flow. */
export function decodeFlowRecord(buf: Buffer, off: number, len: number): FlowRecord {
  if (len < FLOW.SIZE) throw new Error(`flow record of ${len} bytes, expected ${FLOW.SIZE}`);
  const type = buf.readUInt16LE(off + FLOW.type);
  if (type !== NP.REC_FLOW) throw new Error(`record type ${type} is not a flow (${NP.REC_FLOW})`);
  const family = buf[off + FLOW.family] === NP.FAMILY_INET6 ? 6 : 4;
  const v = off + FLOW.v;
  const flags = buf[v + VERDICT.flags]!;
  const rule = buf.readUInt16LE(v + VERDICT.rule);
  return {
    time: ktimeAtToTime(buf, off + FLOW.ktime),
    cpu: buf.readUInt16LE(off + FLOW.cpu),
    pid: buf.readUInt32LE(off + FLOW.pid),
    tid: buf.readUInt32LE(off + FLOW.tid),
    cgroupId: buf.readBigUInt64LE(off + FLOW.cgroup_id),
    cookie: u64Text(buf, off + FLOW.cookie),
    generation: u64Text(buf, off + FLOW.generation),
    event: EVENTS[buf[off + FLOW.event]!] ?? 'NEW',
    direction: buf[off + FLOW.dir] === 1 ? 'INGRESS' : 'EGRESS',
    protocol: buf[off + FLOW.proto] === NP.PROTO_UDP ? 'UDP' : 'TCP',
    ipVersion: family,
    srcAddr: addrText(buf, off + FLOW.src_addr, family),
    dstAddr: addrText(buf, off + FLOW.dst_addr, family),
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
    bytesSent: u64Text(buf, off + FLOW.bytes_sent),
    bytesReceived: u64Text(buf, off + FLOW.bytes_received),
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
  /** exec_id of the process with this pid (thread group) as the process cache knows it now */
  execIdOf?(pid: number): string | undefined;
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
    /** the process that made the connection or sent the datagram (its process_exec's exec_id) */
    exec_id?: string;
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

/** An endpoint as flows show it, shared (frozen) by every flow of the same identity and workload, with its JSON. */
interface EndpointEntry {
  labels: Labels | undefined;
  workload: string | undefined;
  value: HubbleEndpoint;
  json: string;
  ascii: boolean;
}

/** The `{"name":...}` a verdict's policy, rule and section come to, shared (frozen) by the flows it decides. */
interface RefEntry {
  refs: readonly PolicyRef[];
  json: string;
  ascii: boolean;
}

const isAscii = (s: string): boolean => /^[\x00-\x7f]*$/.test(s);

const REF_CACHE_MAX = 4096;
/** open TCP connections whose process is remembered for their ESTABLISHED and CLOSED flows */
export const EXEC_BY_COOKIE_MAX = 65_536;

/**
 * Builds flow events from records: the Hubble-shaped object every reader of
 * the bus sees, and its JSON line, made together from the record (flows
 * come at the rate of new connections; a generic encoding of the object
 * was most of what a flow cost). What flows share (endpoints with their
 * labels, the deciding policy) is built once and shared, frozen.
 */
export class FlowBuilder {
  private readonly endpoints = new Map<number, EndpointEntry>();
  private readonly localEndpoints = new Map<number, EndpointEntry>();
  private readonly refs = new Map<number, RefEntry>();
  /**
   * socket cookie -> exec_id of the process that connected: ESTABLISHED and
   * CLOSED are posted outside any process (TCP's state changes), so they
   * name the process their NEW flow found
   */
  private readonly execByCookie = new Map<string, string>();
  private readonly nodeJson: string;
  private readonly nodeAscii: boolean;

  constructor(private readonly ctx: FlowContext) {
    this.nodeJson = JSON.stringify(ctx.nodeName);
    this.nodeAscii = isAscii(this.nodeJson);
  }

  /** The `{flow, node_name, time}` line `hubble observe -o json` prints, for one record. */
  build(r: FlowRecord): BuiltFlowEvent {
    const ctx = this.ctx;
    const egress = r.direction === 'EGRESS';
    const local = ctx.workloadName?.(r.cgroupId);
    const src = this.endpoint(r.srcIdentity, egress ? local : undefined);
    const dst = this.endpoint(r.dstIdentity, egress ? undefined : local);
    const ports = { source_port: r.srcPort, destination_port: r.dstPort };
    const ipVersion = r.ipVersion === 6 ? 'IPv6' : 'IPv4';
    const sum = summary(r);
    const osprey: HubbleFlow['osprey'] = {
      event: r.event,
      socket_cookie: r.cookie,
      policy_generation: r.generation,
    };
    let os = `{"event":"${r.event}","socket_cookie":"${r.cookie}","policy_generation":"${r.generation}"`;
    if (r.pid) {
      osprey.pid = r.pid;
      os += `,"pid":${r.pid}`;
    }
    const exec = this.execOf(r);
    if (exec !== undefined) {
      osprey.exec_id = exec;
      // base64: nothing to escape
      os += `,"exec_id":"${exec}"`;
    }
    if (r.event === 'CLOSED') {
      osprey.bytes_sent = r.bytesSent;
      osprey.bytes_received = r.bytesReceived;
      os += `,"bytes_sent":"${r.bytesSent}","bytes_received":"${r.bytesReceived}"`;
    }
    if (r.defaultDeny) {
      osprey.default_deny = true;
      os += ',"default_deny":true';
    }
    if (r.noPolicy) {
      osprey.no_policy = true;
      os += ',"no_policy":true';
    }
    const flow: HubbleFlow = {
      time: r.time,
      verdict: r.verdict,
      IP: { source: r.srcAddr, destination: r.dstAddr, ipVersion },
      l4: r.protocol === 'TCP' ? { TCP: ports } : { UDP: ports },
      source: src.value,
      destination: dst.value,
      Type: 'L3_L4',
      node_name: ctx.nodeName,
      traffic_direction: r.direction,
      is_reply: false,
      Summary: sum,
      osprey,
    };
    // the rest of the line is addresses, numbers and names of ours: ASCII
    let ascii = this.nodeAscii && src.ascii && dst.ascii;
    let tail = '';
    if (r.verdict === 'DROPPED') {
      flow.drop_reason_desc = 'POLICY_DENIED';
      tail += ',"drop_reason_desc":"POLICY_DENIED"';
    }
    if (r.policyId) {
      const denied = r.verdict !== 'FORWARDED';
      const key = egress
        ? denied
          ? 'egress_denied_by'
          : 'egress_allowed_by'
        : denied
          ? 'ingress_denied_by'
          : 'ingress_allowed_by';
      const ref = this.ref(r);
      flow[key] = ref.refs as PolicyRef[];
      ascii &&= ref.ascii;
      tail += `,"${key}":${ref.json}`;
    }
    const line =
      `{"flow":{"time":"${r.time}","verdict":"${r.verdict}",` +
      `"IP":{"source":"${r.srcAddr}","destination":"${r.dstAddr}","ipVersion":"${ipVersion}"},` +
      `"l4":{"${r.protocol}":{"source_port":${r.srcPort},"destination_port":${r.dstPort}}},` +
      `"source":${src.json},"destination":${dst.json},"Type":"L3_L4","node_name":${this.nodeJson},` +
      `"traffic_direction":"${r.direction}","is_reply":false,"Summary":"${sum}","osprey":${os}}${tail}},` +
      `"node_name":${this.nodeJson},"time":"${r.time}"}`;
    const ev = new BuiltFlowEvent(flow, ctx.nodeName, r.time);
    ev.setLine(placeText(line, ev, ascii));
    return ev;
  }

  /** The process a flow is of: by its pid when the kernel posted it in the process, else by its socket. */
  private execOf(r: FlowRecord): string | undefined {
    const lookup = this.ctx.execIdOf;
    if (lookup === undefined) return undefined;
    const byCookie = this.execByCookie;
    let exec: string | undefined;
    if (r.pid) {
      exec = lookup(r.pid);
      if (exec !== undefined && r.protocol === 'TCP' && r.event === 'NEW') {
        if (byCookie.size >= EXEC_BY_COOKIE_MAX) byCookie.delete(byCookie.keys().next().value!);
        byCookie.set(r.cookie, exec);
      }
    } else {
      exec = byCookie.get(r.cookie);
    }
    if (r.event === 'CLOSED') byCookie.delete(r.cookie);
    return exec;
  }

  private endpoint(id: number, workload: string | undefined): EndpointEntry {
    const cache = workload === undefined ? this.endpoints : this.localEndpoints;
    const labels = this.ctx.labels(id);
    const hit = cache.get(id);
    if (hit && hit.labels === labels && hit.workload === workload) return hit;
    let list = labelList(labels);
    if (list.length === 0 && reservedName(id)) list = [`reserved:${reservedName(id)}`];
    const value: HubbleEndpoint = { identity: id, labels: Object.freeze(list) as string[] };
    if (workload !== undefined) value.workload = workload;
    const json = JSON.stringify(value);
    const entry: EndpointEntry = {
      labels,
      workload,
      value: Object.freeze(value),
      json,
      ascii: isAscii(json),
    };
    if (cache.size >= REF_CACHE_MAX) cache.clear();
    cache.set(id, entry);
    return entry;
  }

  private ref(r: FlowRecord): RefEntry {
    // policy id, rule, section and default-deny in one number
    const key =
      ((r.policyId * 0x10000 + (r.rule ?? NP.RULE_NONE)) * 4 +
        (r.direction === 'EGRESS' ? 0 : 2) +
        (r.denyRule ? 1 : 0)) *
        2 +
      (r.defaultDeny ? 1 : 0);
    const name = this.ctx.policyName(r.policyId) ?? `policy#${r.policyId}`;
    let hit = this.refs.get(key);
    if (hit === undefined || hit.refs[0]!.name !== name) {
      const ref: PolicyRef = { name };
      if (r.rule !== undefined) ref.rule = `spec.${ruleSection(r)}[${r.rule}]`;
      if (r.defaultDeny) ref.default_deny = true;
      Object.freeze(ref);
      const json = JSON.stringify([ref]);
      hit = { refs: Object.freeze([ref]), json, ascii: isAscii(json) };
      if (this.refs.size >= REF_CACHE_MAX) this.refs.clear();
      this.refs.set(key, hit);
    }
    return hit;
  }
}

/** The `{flow, node_name, time}` line `hubble observe -o json` prints, for one record. */
export function toHubbleFlow(r: FlowRecord, ctx: FlowContext): BuiltFlowEvent {
  return new FlowBuilder(ctx).build(r);
}

/** Text made only of addresses, ports, names of events and verdicts, and digits: nothing JSON escapes. */
function summary(r: FlowRecord): string {
  const ep = (a: string, p: number) => (r.ipVersion === 6 ? `[${a || '::'}]:${p}` : `${a || '0.0.0.0'}:${p}`);
  const what = r.event === 'NEW' ? (r.protocol === 'TCP' ? 'connect' : 'datagram') : r.event.toLowerCase();
  const bytes = r.event === 'CLOSED' ? ` sent ${r.bytesSent} received ${r.bytesReceived}` : '';
  return `${r.protocol} ${what} ${ep(r.srcAddr, r.srcPort)} -> ${ep(r.dstAddr, r.dstPort)} ${r.verdict}${bytes}`;
}
