/**
 * Workload labels as users write them: `app=web` on the command line,
 * `{app: web}` in the config. Keys and values follow Kubernetes' rules, so a
 * policy's matchLabels can name any label a workload can have; the
 * `reserved:` prefix belongs to Osprey's own identities (host, world).
 */
import type { Labels } from '../netpolicy/model.js';

/** The labels of a process in no labelled cgroup: the reserved host workload. */
export const HOST_WORKLOAD_LABELS: Labels = Object.freeze({ 'reserved:host': '' });

const NAME_PART = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;
const PREFIX = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;
const VALUE = /^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/;

/** Why a label key is not valid, or undefined. */
export function labelKeyProblem(key: string): string | undefined {
  if (key.startsWith('reserved:')) return `label "${key}": the reserved: prefix is Osprey's own`;
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && !PREFIX.test(prefix)) {
    return `label key "${key}": the prefix before "/" must be a DNS subdomain (lower case letters, digits, ".", "-")`;
  }
  if (!NAME_PART.test(name)) {
    return `label key "${key}": must be 1-63 letters, digits, ".", "_" or "-", starting and ending with a letter or digit`;
  }
  return undefined;
}

/** Why a label value is not valid, or undefined. */
export function labelValueProblem(key: string, value: string): string | undefined {
  if (!VALUE.test(value)) {
    return `label "${key}": value "${value}" must be at most 63 letters, digits, ".", "_" or "-", starting and ending with a letter or digit`;
  }
  return undefined;
}

/** Every problem of a label set ([] when it is valid). */
export function labelProblems(labels: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(labels)) {
    const kp = labelKeyProblem(k);
    if (kp) out.push(kp);
    if (typeof v !== 'string') out.push(`label "${k}": the value must be a string`);
    else {
      const vp = labelValueProblem(k, v);
      if (vp) out.push(vp);
    }
  }
  return out;
}

/** `k=v` strings (command-line --label) to a label set; throws with every problem. */
export function parseLabelArgs(args: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const problems: string[] = [];
  for (const a of args) {
    const i = a.indexOf('=');
    if (i <= 0) {
      problems.push(`label "${a}" is not key=value`);
      continue;
    }
    const k = a.slice(0, i);
    const v = a.slice(i + 1);
    if (Object.hasOwn(out, k) && out[k] !== v) problems.push(`label "${k}" is given twice`);
    out[k] = v;
  }
  problems.push(...labelProblems(out));
  if (problems.length) throw new Error(problems.join('; '));
  return out;
}

/** `app=web,tier=front`, keys sorted: how labels are shown on one line. */
export function labelsText(labels: Labels | undefined): string {
  if (!labels) return '';
  return Object.keys(labels)
    .sort()
    .map((k) => (labels[k] === '' ? k : `${k}=${labels[k]}`))
    .join(',');
}
