/** How `osprey policy add|list` shows network policies (CiliumNetworkPolicy). */
import type { NetworkPolicyInfo } from '../agent/netpolicies.js';
import type { PolicyInfo } from '../agent/policies.js';

export function isNetworkPolicy(p: PolicyInfo): p is NetworkPolicyInfo {
  const kind = (p as { kind?: unknown }).kind;
  return typeof kind === 'string' && kind !== 'TracingPolicy';
}

function modeText(p: NetworkPolicyInfo): string {
  return p.mode === 'monitor' ? 'audit (monitor)' : 'enforce';
}

/** The line `osprey policy add` prints for a network policy. */
export function networkAddedLine(p: NetworkPolicyInfo, ms: number): string {
  const sel = p.selected_workloads.length
    ? `selects ${p.selected_workloads.join(', ')}`
    : 'selects no workload yet';
  const lines = [
    `network policy "${p.name}" added: ${p.state}, ${modeText(p)}, ${p.rules} rule${p.rules === 1 ? '' : 's'}, ${sel}; in force in ${ms.toFixed(1)} ms`,
  ];
  for (const w of p.warnings) lines.push(`  warning: ${w}`);
  return lines.join('\n');
}

/** Network policies as a table, then the reason of each one in state error and the warnings. */
export function renderNetworkPolicyTable(policies: NetworkPolicyInfo[]): string {
  const head = [
    'NETWORK POLICY',
    'KIND',
    'STATE',
    'MODE',
    'SOURCE',
    'RULES',
    'FORWARDED',
    'DROPPED',
    'AUDIT',
    'WORKLOADS',
  ];
  const rows = policies.map((p) => [
    p.name,
    p.kind,
    p.state,
    p.mode === 'monitor' ? 'audit' : 'enforce',
    p.source,
    String(p.rules),
    String(p.flows.forwarded),
    String(p.flows.dropped),
    String(p.flows.audit),
    p.selected_workloads.join(',') || '-',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const numeric = new Set([5, 6, 7, 8]);
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out = [line(head), ...rows.map(line)];
  const notes = policies.flatMap((p) => [
    ...(p.state === 'error' ? [`${p.name}: ${p.error ?? 'error'}`] : []),
    ...p.warnings.map((w) => `${p.name}: warning: ${w}`),
  ]);
  if (notes.length) out.push('', ...notes);
  return out.join('\n');
}
