/**
 * Identities: a number per distinct label set of local workloads, plus the
 * reserved ones (host, world) with the numbers Cilium gives them. Policies
 * select peers by labels; the kernel compares numbers.
 */
import { Identity } from '../sensors/network/layout.js';
import type { LabelSelector, Labels } from './model.js';

export const HOST_IDENTITY = Identity.HOST;
export const WORLD_IDENTITY = Identity.WORLD;
export const FIRST_LOCAL_IDENTITY = Identity.FIRST_LOCAL;

/** Labels of the reserved identities, as Cilium spells them. */
export const RESERVED_LABELS: Readonly<Record<number, Labels>> = {
  [HOST_IDENTITY]: { 'reserved:host': '' },
  [WORLD_IDENTITY]: { 'reserved:world': '' },
};

export function reservedName(id: number): string | undefined {
  if (id === HOST_IDENTITY) return 'host';
  if (id === WORLD_IDENTITY) return 'world';
  return undefined;
}

/** Canonical text of a label set: sorted key=value pairs. */
export function labelsKey(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}

/** `k8s:app=web` / `any:app=web` select the label `app=web`: the source prefix is not part of our keys. */
function selectorKey(k: string): string {
  return k.replace(/^(any|k8s):/, '');
}

/** Whether the selector selects a workload with these labels (Kubernetes semantics). */
export function selectorMatches(
  sel: Pick<LabelSelector, 'matchLabels' | 'matchExpressions'>,
  labels: Labels,
): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels)) {
    if (labels[selectorKey(k)] !== v) return false;
  }
  for (const r of sel.matchExpressions) {
    const key = selectorKey(r.key);
    const has = Object.hasOwn(labels, key);
    switch (r.operator) {
      case 'In':
        if (!has || !r.values.includes(labels[key]!)) return false;
        break;
      case 'NotIn':
        if (has && r.values.includes(labels[key]!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}

/** Whether a selector names a reserved label (reserved:host): only those select reserved identities. */
export function selectsReserved(sel: Pick<LabelSelector, 'matchLabels' | 'matchExpressions'>): boolean {
  return (
    Object.keys(sel.matchLabels).some((k) => k.startsWith('reserved:')) ||
    sel.matchExpressions.some((r) => r.key.startsWith('reserved:'))
  );
}

/**
 * Label set -> identity, stable for as long as some workload holds the set.
 * Released numbers are not reused while the allocator lives, so a flow's
 * identity never silently changes meaning.
 */
export class IdentityAllocator {
  private byKey = new Map<string, { id: number; labels: Labels; refs: number }>();
  private byId = new Map<number, Labels>();
  private next: number;

  constructor(first: number = FIRST_LOCAL_IDENTITY) {
    this.next = first;
  }

  /** The identity of a label set, allocating it on first use; each call takes a reference. */
  acquire(labels: Labels): number {
    const key = labelsKey(labels);
    const hit = this.byKey.get(key);
    if (hit) {
      hit.refs++;
      return hit.id;
    }
    const id = this.next++;
    const frozen = Object.freeze({ ...labels });
    this.byKey.set(key, { id, labels: frozen, refs: 1 });
    this.byId.set(id, frozen);
    return id;
  }

  /** Drop one reference; the identity is forgotten with its last one. */
  release(labels: Labels): void {
    const key = labelsKey(labels);
    const hit = this.byKey.get(key);
    if (!hit) return;
    if (--hit.refs <= 0) {
      this.byKey.delete(key);
      this.byId.delete(hit.id);
    }
  }

  /** Labels of a local or reserved identity. */
  labels(id: number): Labels | undefined {
    return this.byId.get(id) ?? RESERVED_LABELS[id];
  }
}
