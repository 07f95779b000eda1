/**
 * The config key `workloads`: existing cgroups to label.
 *
 *   workloads:
 *     - path: system.slice/nginx.service
 *       labels: {app: nginx}
 *       name: nginx            # optional; default the last part of the path
 *
 * The config loader keeps the value as given; this checks it, naming the
 * config file's line of a bad entry.
 */
import { readFileSync } from 'node:fs';
import { isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { labelProblems } from '../workload/labels.js';
import { UserError } from './fs-util.js';
import { type ConfiguredWorkload, configuredName } from './workloads.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** The configured workloads, checked; throws a UserError listing every problem. */
export function parseConfiguredWorkloads(value: unknown, configFile?: string): ConfiguredWorkload[] {
  if (value === undefined || value === null || value === '') return [];
  let list: unknown = value;
  // a string came from the flag: there is no line to point at
  const file = typeof value === 'string' ? undefined : configFile;
  if (typeof value === 'string') {
    // a flag: JSON, one object per line or a JSON array
    try {
      const t = value.trim();
      list = t.startsWith('[')
        ? JSON.parse(t)
        : t
            .split('\n')
            .filter((l) => l.trim() !== '')
            .map((l) => JSON.parse(l));
    } catch (err) {
      throw new UserError(
        `workloads: not JSON (${(err as Error).message}); give [{"path": "...", "labels": {"k": "v"}}]`,
      );
    }
  }
  if (!Array.isArray(list)) list = [list];
  const problems: string[] = [];
  const out: ConfiguredWorkload[] = [];
  const names = new Set<string>();
  (list as unknown[]).forEach((item, i) => {
    const where = `${lineOf(file, i)}workloads[${i}]`;
    if (item === null || typeof item !== 'object' || Array.isArray(item)) {
      problems.push(`${where}: expected {path: ..., labels: {...}}`);
      return;
    }
    const o = item as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (!['path', 'labels', 'name'].includes(k))
        problems.push(`${where}.${k}: unknown field (give path, labels, name)`);
    }
    if (typeof o.path !== 'string' || o.path === '') {
      problems.push(`${where}.path: give the cgroup directory, e.g. system.slice/nginx.service`);
      return;
    }
    if (o.labels === null || typeof o.labels !== 'object' || Array.isArray(o.labels)) {
      problems.push(`${where}.labels: give the labels as a map, e.g. {app: nginx}`);
      return;
    }
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(o.labels as Record<string, unknown>)) {
      labels[k] = typeof v === 'number' || typeof v === 'boolean' ? String(v) : (v as string);
    }
    const lp = labelProblems(labels);
    if (Object.keys(labels).length === 0) lp.push('give at least one label');
    for (const p of lp) problems.push(`${where}.labels: ${p}`);
    if (o.name !== undefined && (typeof o.name !== 'string' || !NAME.test(o.name))) {
      problems.push(`${where}.name: must be 1-128 letters, digits, ".", "_" or "-"`);
      return;
    }
    const w: ConfiguredWorkload = {
      path: o.path,
      labels,
      ...(typeof o.name === 'string' ? { name: o.name } : {}),
    };
    const n = configuredName(w);
    if (names.has(n)) problems.push(`${where}: a second workload named "${n}" (give it a name:)`);
    names.add(n);
    if (lp.length === 0) out.push(w);
  });
  if (problems.length) {
    throw new UserError(
      `workloads: ${problems.length} problem(s):\n${problems.map((p) => `  ${p}`).join('\n')}`,
    );
  }
  return out;
}

/** "FILE:LINE:COL: " of entry i of `workloads` in the config file, when it is there. */
function lineOf(file: string | undefined, i: number): string {
  if (!file) return '';
  try {
    const lc = new LineCounter();
    const doc = parseDocument(readFileSync(file, 'utf8'), { lineCounter: lc });
    const seq = doc.get('workloads', true) as Node | undefined;
    if (!isSeq(seq)) return '';
    const item = seq.items[i] as Node | undefined;
    const at = item?.range ? lc.linePos(item.range[0]) : undefined;
    return at ? `${file}:${at.line}:${at.col}: ` : '';
  } catch {
    return '';
  }
}
