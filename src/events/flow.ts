/**
 * Flow events on the agent's bus: `{flow, node_name, time}`, the line
 * `hubble observe -o json` prints, with the flow in Hubble's field names.
 * Here: the filter of GET /v1/flows and `osprey flows`, and the compact line.
 */
import type { HubbleEndpoint, HubbleFlow } from '../sensors/network/decode.js';
import type { EncodedLine } from './encode.js';
import type { ExportEvent } from './types.js';

export interface FlowEvent {
  flow: HubbleFlow;
  node_name: string;
  time: string;
}

/**
 * A flow event as the datapath's reader builds it (FlowBuilder): to every
 * reader a plain `{flow, node_name, time}` (its own fields, in that order,
 * are all that JSON, spread and Object.keys see), with its line already in
 * the shared ring of lines, written by its builder from the same record.
 * What it shares with other flows (endpoints, policy references) is
 * frozen; the rest is never changed once built, as for every published
 * event.
 */
export class BuiltFlowEvent implements FlowEvent {
  readonly flow: HubbleFlow;
  readonly node_name: string;
  readonly time: string;
  #encoded: EncodedLine | undefined;

  constructor(flow: HubbleFlow, nodeName: string, time: string) {
    this.flow = flow;
    this.node_name = nodeName;
    this.time = time;
  }

  /** Its line, once: its builder's. */
  setLine(line: EncodedLine): void {
    if (this.#encoded === undefined) this.#encoded = line;
  }

  /** The line of an event a builder made. */
  static encodedOf(ev: object): EncodedLine | undefined {
    return #encoded in ev ? (ev as BuiltFlowEvent).#encoded : undefined;
  }

  /** Its line's pieces again (the ring went round before a sink copied it). */
  linePieces(): string[] {
    return [JSON.stringify(this)];
  }
}

export const FLOW_VERDICTS = ['FORWARDED', 'DROPPED', 'AUDIT'] as const;

export interface FlowFilterOptions {
  /** FORWARDED | DROPPED | AUDIT; several: any of them */
  verdicts?: string[];
  /** `key=value` (or `key` for a label without value); every one must be on the source or the destination */
  labels?: string[];
  /** source or destination port */
  ports?: number[];
  /** the policy that decided (allowed or denied) the flow */
  policy?: string;
}

/** The flow of an event, if it is a flow event. */
export function flowOf(ev: ExportEvent): HubbleFlow | undefined {
  const f = (ev as { flow?: unknown }).flow;
  return f !== null && typeof f === 'object' ? (f as HubbleFlow) : undefined;
}

/** A predicate keeping the flow events asked for; throws on a bad verdict, label or port. */
export function makeFlowFilter(opts: FlowFilterOptions): (ev: ExportEvent) => boolean {
  const verdicts = opts.verdicts?.length ? new Set(opts.verdicts.map((v) => v.toUpperCase())) : undefined;
  for (const v of verdicts ?? []) {
    if (!(FLOW_VERDICTS as readonly string[]).includes(v)) {
      throw new Error(`verdict "${v}" is not one of ${FLOW_VERDICTS.join(', ')}`);
    }
  }
  const labels = opts.labels?.filter((l) => l !== '') ?? [];
  for (const l of labels) {
    if (l.startsWith('=')) throw new Error(`label "${l}" has no key; give key=value`);
  }
  const ports = opts.ports ?? [];
  for (const p of ports) {
    if (!Number.isInteger(p) || p < 0 || p > 65535) throw new Error(`port ${p} is not in 0..65535`);
  }
  const policy = opts.policy;
  return (ev) => {
    const f = flowOf(ev);
    if (!f) return false;
    if (verdicts && !verdicts.has(f.verdict)) return false;
    if (ports.length) {
      const l4 = f.l4.TCP ?? f.l4.UDP;
      if (!l4 || !ports.some((p) => p === l4.source_port || p === l4.destination_port)) return false;
    }
    for (const l of labels) {
      if (!hasLabel(f.source, l) && !hasLabel(f.destination, l)) return false;
    }
    if (policy && !policiesOf(f).some((r) => r.name === policy)) return false;
    return true;
  };
}

function hasLabel(e: HubbleEndpoint, want: string): boolean {
  // flows spell a label without value as its key alone; "k8s:"-style source prefixes are accepted
  const bare = want.endsWith('=') ? want.slice(0, -1) : want;
  return e.labels.some((l) => l === want || l === bare || l.replace(/^[a-z0-9]+:/, '') === want);
}

/** The name of the policy that decided a flow (allowed or denied it), if one did. */
export function decidingPolicy(f: Partial<HubbleFlow>): string | undefined {
  const refs = f.egress_allowed_by ?? f.egress_denied_by ?? f.ingress_allowed_by ?? f.ingress_denied_by;
  const name = refs?.[0]?.name;
  return typeof name === 'string' && name !== '' ? name : undefined;
}

function policiesOf(f: HubbleFlow) {
  return [
    ...(f.egress_allowed_by ?? []),
    ...(f.egress_denied_by ?? []),
    ...(f.ingress_allowed_by ?? []),
    ...(f.ingress_denied_by ?? []),
  ];
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** "Nov 25 08:13:22.123" from an RFC 3339 time, as `hubble observe` shows it. */
function shortTime(t: string): string {
  const m = /^\d{4}-(\d{2})-(\d{2})T(\d{2}:\d{2}:\d{2})(\.\d{1,3})?/.exec(t);
  if (!m) return t;
  return `${MONTHS[Number(m[1]) - 1] ?? m[1]} ${m[2]} ${m[3]}${(m[4] ?? '.000').padEnd(4, '0')}`;
}

function endpoint(addr: string, port: number, e: HubbleEndpoint, v6: boolean): string {
  const a = addr || (v6 ? '::' : '0.0.0.0');
  const ap = v6 ? `[${a}]:${port}` : `${a}:${port}`;
  const labels = e.labels.length ? e.labels.join(',') : `identity ${e.identity}`;
  return `${ap} (${e.workload ? `${e.workload}: ` : ''}${labels})`;
}

/**
 * One line per flow:
 *   TIME SRC:PORT (labels) -> DST:PORT (labels) PROTO VERDICT POLICY/RULE [EVENT ...]
 * POLICY/RULE is the deciding rule (spec.egress[1]), POLICY/default-deny
 * when no rule allowed it, or "-" when no policy selects the workload.
 */
export function renderFlowCompact(ev: FlowEvent): string {
  const f = ev.flow;
  const v6 = f.IP.ipVersion === 'IPv6';
  const proto = f.l4.TCP ? 'TCP' : 'UDP';
  const ports = f.l4.TCP ?? f.l4.UDP ?? { source_port: 0, destination_port: 0 };
  const ref = policiesOf(f)[0];
  const decided = ref ? `${ref.name}/${ref.rule ?? (ref.default_deny ? 'default-deny' : 'policy')}` : '-';
  const o = f.osprey;
  const extra =
    o?.event === 'CLOSED'
      ? ` CLOSED sent ${o.bytes_sent ?? 0} received ${o.bytes_received ?? 0}`
      : o?.event && o.event !== 'NEW'
        ? ` ${o.event}`
        : '';
  return (
    `${shortTime(f.time || ev.time)} ${endpoint(f.IP.source, ports.source_port, f.source, v6)} -> ` +
    `${endpoint(f.IP.destination, ports.destination_port, f.destination, v6)} ${proto} ${f.verdict} ${decided}${extra}`
  );
}

/**
 * A flow line as JSON, byte for byte what JSON.stringify gives (a unit test
 * holds it to that): the line its builder wrote (FlowBuilder, which every
 * flow of the datapath comes from), or JSON.stringify's for any other flow
 * event (a copy an export filter made).
 */
export function encodeFlowLine(ev: FlowEvent): string {
  const built = BuiltFlowEvent.encodedOf(ev);
  return built !== undefined ? built.toBuffer().toString() : JSON.stringify(ev);
}
