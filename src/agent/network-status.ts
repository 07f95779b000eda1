/** The network part of `osprey status`: workloads, network policies, flows, datapath counters. */
import type { NetworkStatus } from './network.js';

export type { NetworkStatus };

export function renderNetworkStatus(n: NetworkStatus): string[] {
  const out: string[] = ['Network policy'];
  const kv = (k: string, v: string | number) => out.push(`  ${k.padEnd(22)} ${v}`);
  if (!n.available) {
    kv('state', `off: ${n.error ?? 'not available'}`);
    return out;
  }
  kv(
    'workloads',
    `${n.workloads} (${n.attached_cgroups} cgroups enforced), new ones in ${n.workload_cgroup ?? '-'}`,
  );
  kv(
    'policies',
    `${n.policies.enabled} of ${n.policies.total} enabled${n.policies.error ? `, ${n.policies.error} in error` : ''}; tables generation ${n.generation}`,
  );
  const f = n.flows;
  kv(
    'flows',
    `${f.total} (${f.forwarded} forwarded, ${f.dropped} dropped, ${f.audit} audit); allowed traffic reported: ${n.flows_reported}`,
  );
  const d = n.datapath;
  if (d) {
    kv('datapath dropped', d.dropped);
    kv('datapath audited', d.audited);
    kv('revoked (open conns)', d.revoked);
    kv('open conns not re-checked', d.unchecked);
    kv('conns without socket storage', d.light);
    kv('flow ring drops', d.ringbuf_drops);
    kv('flow decode errors', d.decode_errors);
  }
  return out;
}
