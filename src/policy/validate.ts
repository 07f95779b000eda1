/**
 * One YAML document to one TracingPolicy: the envelope (apiVersion, kind,
 * metadata), then spec in the order its parts depend on each other (options,
 * lists, enforcers, hooks), then checks across hooks. Every problem is
 * reported; a document with any problem yields no policy.
 */
import { isMap, isScalar, type Node } from 'yaml';
import { PolicyContext } from './context.js';
import type { ErrorSink } from './errors.js';
import { readKprobeHook, readLsmHook, readTracepointHook } from './hooks.js';
import { type KernelCapabilities, NO_EXTRA_KERNEL_FEATURES } from './kernel-caps.js';
import { LIMITS } from './limits.js';
import { LIST_PREFIX, listRef, readLists } from './lists.js';
import type {
  Enforcer,
  Hook,
  PolicyKind,
  PolicyMode,
  PolicyOption,
  SyscallTarget,
  TracingPolicy,
} from './model.js';
import { syscallName } from './syscalls.js';
import { DEFAULT_TRACEFS, Tracefs } from './tracepoints.js';
import { closest, type Field, isNull, type YamlReader } from './yaml-view.js';

export interface ValidateOptions {
  /** what the kernel offers beyond tracepoints; all false when not given */
  kernel?: KernelCapabilities;
  /** where tracefs is mounted; /sys/kernel/tracing when not given */
  tracefsRoot?: string;
  /** Node's arch name ('x64', 'arm64'); process.arch when not given */
  arch?: string;
}

export const API_VERSION = 'cilium.io/v1alpha1';
const KINDS: readonly PolicyKind[] = ['TracingPolicy', 'TracingPolicyNamespaced'];
const ROOT_FIELDS = ['apiVersion', 'kind', 'metadata', 'spec'] as const;
const METADATA_FIELDS = ['name', 'namespace', 'labels', 'annotations'] as const;
const SPEC_FIELDS = [
  'kprobes',
  'tracepoints',
  'lists',
  'enforcers',
  'options',
  'lsmhooks',
  'fentries',
  'uprobes',
  'usdts',
  'loader',
  'podSelector',
  'containerSelector',
  'hostSelector',
  'selectorsMacros',
] as const;

/** Per-run state shared by the documents of one parse (the tracefs cache). */
export interface ValidationEnv {
  kernel: KernelCapabilities;
  tracefs: Tracefs;
  arch: string;
}

export function validationEnv(opts: ValidateOptions = {}): ValidationEnv {
  return {
    kernel: opts.kernel ?? { ...NO_EXTRA_KERNEL_FEATURES },
    tracefs: new Tracefs(opts.tracefsRoot ?? DEFAULT_TRACEFS),
    arch: opts.arch ?? process.arch,
  };
}

/** Validate one parsed (syntax-error-free) document, read through `reader`; undefined when it has errors, all reported to `sink`. */
export function validateDocument(
  reader: YamlReader,
  sink: ErrorSink,
  env: ValidationEnv,
): TracingPolicy | undefined {
  const before = sink.errors.length;
  const r = reader;
  const ctx = new PolicyContext(r, sink, env.kernel, env.tracefs, env.arch);
  const rootF = r.root();
  const root = r.object(rootF, ROOT_FIELDS, 'a TracingPolicy');
  if (!root) {
    if (isNull(rootF)) r.error(rootF, 'the document is empty');
    return undefined;
  }

  const apiF = root.get('apiVersion');
  const api = r.string(apiF, 'apiVersion', true);
  if (api !== undefined && api !== API_VERSION) {
    r.error(apiF, `apiVersion must be "${API_VERSION}", not "${api}"`);
  }
  const kindF = root.get('kind');
  const kindText = r.string(kindF, 'kind', true);
  let kind: PolicyKind | undefined;
  if (kindText !== undefined) {
    kind = KINDS.find((k) => k === kindText);
    if (!kind) r.error(kindF, `kind must be TracingPolicy or TracingPolicyNamespaced, not "${kindText}"`);
  }

  // metadata first: later messages name the policy.
  const metaF = root.get('metadata');
  const meta = r.object(metaF, METADATA_FIELDS, 'metadata');
  let name: string | undefined;
  let namespace: string | undefined;
  let labels: Record<string, string> = {};
  if (!meta) {
    if (isNull(metaF)) r.missing(metaF, 'metadata', 'add metadata: {name: my-policy}');
  } else {
    const nameF = meta.get('name');
    name = r.string(nameF, 'metadata.name', true);
    if (name !== undefined) {
      if (name.length > 253 || !/^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/.test(name)) {
        r.error(
          nameF,
          `metadata.name "${name}" is not a valid name`,
          'use letters, digits, "-", "_" and "."; at most 253',
        );
        name = undefined;
      } else sink.policy = name;
    }
    const nsF = meta.get('namespace');
    namespace = r.string(nsF, 'metadata.namespace');
    if (namespace !== undefined && kind === 'TracingPolicy') {
      r.error(
        nsF,
        'a TracingPolicy is cluster-wide: it has no namespace',
        'use kind: TracingPolicyNamespaced',
      );
    }
    if (kind === 'TracingPolicyNamespaced') namespace ??= 'default';
    labels = readStringMap(r, meta.get('labels'), 'labels');
    readStringMap(r, meta.get('annotations'), 'annotations');
  }

  const specF = root.get('spec');
  const spec = r.object(specF, SPEC_FIELDS, 'spec');
  if (!spec) {
    if (isNull(specF)) r.missing(specF, 'spec', 'add spec with tracepoints or kprobes');
    return undefined;
  }

  // Known Tetragon features Osprey does not have.
  const unsupported: [string, string, string][] = [
    ['uprobes', 'uprobes are not supported by Osprey yet', 'use tracepoints or syscall kprobes'],
    ['usdts', 'usdts are not supported by Osprey yet', 'use tracepoints or syscall kprobes'],
    ['podSelector', 'podSelector needs Kubernetes pod metadata, which Osprey does not have', 'remove it'],
    [
      'containerSelector',
      'containerSelector needs Kubernetes container metadata, which Osprey does not have',
      'remove it',
    ],
    [
      'selectorsMacros',
      'selectorsMacros are not supported by Osprey',
      'write the selectors out in each hook',
    ],
  ];
  for (const [key, message, hint] of unsupported) {
    const f = spec.get(key);
    if (isNull(f)) continue;
    if (key === 'uprobes' || key === 'usdts' ? r.list(f, key).length > 0 : true) {
      r.errorAtKey(f, `${sink.policyPrefix}${message}`, hint);
    }
  }
  if (r.bool(spec.get('loader'), 'loader')) {
    r.error(
      spec.get('loader'),
      'loader events are not supported by Osprey',
      'remove loader or set it to false',
    );
  }
  const hostSel = spec.get('hostSelector');
  if (!isNull(hostSel)) {
    const o = r.object(hostSel, ['matchLabels', 'matchExpressions'], 'hostSelector');
    if (o && o.keys().length > 0) {
      r.error(
        hostSel,
        'hostSelector must be {} (all hosts) or absent',
        'remove its matchLabels/matchExpressions',
      );
    }
  }

  const { mode, options } = readOptions(ctx, spec.get('options'));
  readLists(ctx, spec.get('lists'));
  const enforcers = readEnforcers(ctx, spec.get('enforcers'));

  const hooks: Hook[] = [];
  let written = 0;
  const sections: [string, (item: Field, i: number) => Hook | undefined][] = [
    ['tracepoints', (item, i) => readTracepointHook(ctx, item, i)],
    ['kprobes', (item, i) => readKprobeHook(ctx, item, i, 'kprobes')],
    ['lsmhooks', (item, i) => readLsmHook(ctx, item, i)],
    ['fentries', (item, i) => readKprobeHook(ctx, item, i, 'fentries')],
  ];
  for (const [key, read] of sections) {
    const items = r.list(spec.get(key), `spec.${key}`);
    written += items.length;
    items.forEach((item, i) => {
      const h = read(item, i);
      if (h) hooks.push(h);
    });
  }
  for (const key of ['uprobes', 'usdts']) {
    if (!isNull(spec.get(key))) written += 1;
  }
  // after other errors in spec (a misspelt "kprobe:"), "no hooks" is only noise
  if (written === 0 && sink.errors.length === before) {
    r.errorAtKey(specF, 'spec has no hooks', 'add spec.tracepoints or spec.kprobes');
  }
  checkDuplicateHooks(ctx, hooks);
  let attached = 0;
  for (const h of hooks) {
    attached += h.tracepoints.length;
    if (attached > LIMITS.tracepointsPerPolicy) {
      sink.add(
        h.source,
        h.source.fieldPath,
        `too many tracepoints: ${h.label} brings the policy to ${attached} (the limit is ${LIMITS.tracepointsPerPolicy} per policy)`,
        'hook fewer syscalls, or split them across policies; raw_syscalls/sys_enter with InMap covers many at once',
      );
      break;
    }
  }

  if (sink.errors.length > before || !name || !kind) return undefined;
  return {
    name,
    kind,
    namespace,
    labels,
    file: sink.file,
    source: { ...rootF.at, fieldPath: '' },
    mode,
    hooks,
    lists: [...ctx.lists.values()],
    enforcers,
    options,
  };
}

/** labels/annotations: any keys, string values. */
function readStringMap(r: YamlReader, f: Field, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (isNull(f)) return out;
  if (!isMap(f.node)) {
    r.error(f, `${what} must be a mapping of strings`);
    return out;
  }
  for (const pair of f.node.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
    const node = r.deref(pair.value as Node | null);
    const vf: Field = { node, path: `${f.path}.${key ?? '?'}`, at: r.pos(pair.value as Node | null, f.at) };
    const v = r.text(vf, `${what} value`);
    if (key !== undefined && v !== undefined) out[key] = v;
  }
  return out;
}

const OPTIONS: Readonly<Record<string, readonly string[] | 'bool'>> = {
  'policy-mode': ['enforce', 'monitor'],
  'disable-kprobe-multi': 'bool',
  'disable-uprobe-multi': 'bool',
};

function readOptions(ctx: PolicyContext, f: Field): { mode: PolicyMode; options: PolicyOption[] } {
  const { r } = ctx;
  let mode: PolicyMode = 'enforce';
  const options: PolicyOption[] = [];
  const seen = new Set<string>();
  for (const item of r.list(f, 'spec.options')) {
    const o = r.object(item, ['name', 'value'], 'an option');
    if (!o) {
      if (isNull(item)) r.missing(item, 'option');
      continue;
    }
    const nameF = o.get('name');
    const name = r.string(nameF, 'option name', true);
    if (name === undefined) continue;
    const spec = OPTIONS[name];
    if (!spec) {
      const guess = closest(name, Object.keys(OPTIONS));
      ctx.error(
        nameF,
        `unknown option "${name}"`,
        guess ? `did you mean "${guess}"?` : `options: ${Object.keys(OPTIONS).join(', ')}`,
      );
      continue;
    }
    if (seen.has(name)) {
      ctx.error(nameF, `option "${name}" is given twice`, 'keep one');
      continue;
    }
    seen.add(name);
    const valueF = o.get('value');
    const value = isNull(valueF) ? undefined : optionText(ctx, valueF);
    if (value === undefined) {
      if (isNull(valueF)) r.missing(valueF, `option "${name}" value`);
      continue;
    }
    if (spec === 'bool') {
      if (!['true', 'false', '1', '0'].includes(value.toLowerCase())) {
        ctx.error(valueF, `option "${name}" takes true or false, not "${value}"`);
        continue;
      }
    } else if (!spec.includes(value)) {
      ctx.error(valueF, `option "${name}" takes ${spec.join(' or ')}, not "${value}"`);
      continue;
    }
    if (name === 'policy-mode') mode = value as PolicyMode;
    options.push({ name, value, source: ctx.ref(item) });
  }
  return { mode, options };
}

/** Option values are strings in the CRD; accept a bare true/1 as YAML writes them. */
function optionText(ctx: PolicyContext, f: Field): string | undefined {
  const n = f.node as { value?: unknown } | undefined;
  if (typeof n?.value === 'boolean') return String(n.value);
  return ctx.r.text(f, 'option value');
}

function readEnforcers(ctx: PolicyContext, f: Field): Enforcer[] {
  const { r } = ctx;
  const items = r.list(f, 'spec.enforcers');
  ctx.hasEnforcers = items.length > 0;
  if (items.length > LIMITS.enforcersPerPolicy) {
    ctx.error(
      f,
      `too many enforcers: ${items.length} (the limit is ${LIMITS.enforcersPerPolicy})`,
      'put all calls in one',
    );
  }
  const out: Enforcer[] = [];
  for (const item of items) {
    const o = r.object(item, ['calls'], 'an enforcer');
    if (!o) {
      if (isNull(item)) r.missing(item, 'enforcer');
      continue;
    }
    const callsF = o.get('calls');
    const calls = r.list(callsF, 'calls');
    if (calls.length === 0) {
      ctx.error(callsF, 'an enforcer needs calls', 'list the syscalls it enforces on, or list:NAME');
      continue;
    }
    const syscalls: SyscallTarget[] = [];
    const seen = new Set<string>();
    let ok = true;
    const add = (cf: Field, raw: string): void => {
      const n = syscallName(raw, ctx.arch);
      if (!n.ok) {
        ctx.error(cf, n.message, n.hint);
        ok = false;
        return;
      }
      if (seen.has(n.name)) return;
      seen.add(n.name);
      const t = ctx.syscallTarget(cf, n.name, false);
      if (t) syscalls.push(t);
      else ok = false;
    };
    for (const cf of calls) {
      const call = r.string(cf, 'call', true);
      if (call === undefined) {
        ok = false;
        continue;
      }
      if (call.startsWith(LIST_PREFIX)) {
        const list = listRef(ctx, cf, call);
        if (!list) ok = false;
        else if (list.type === 'none') for (const v of list.values) add(cf, v);
        else for (const t of list.syscalls) add(cf, t.name);
      } else add(cf, call);
    }
    if (ok) out.push({ syscalls, source: ctx.ref(item) });
  }
  return out;
}

/** What each hook attaches to, for telling two hooks on the same thing apart. */
function hookKeys(h: Hook): string[] {
  switch (h.kind) {
    case 'tracepoint':
      return [`tracepoint ${h.subsystem}/${h.event}`];
    case 'syscall':
      return h.syscalls.map((s) => `syscall ${s.name}`);
    case 'kprobe':
      return h.functions.map((f) => `function ${f}`);
    case 'lsm':
      return [`LSM hook ${h.hook}`];
    case 'fentry':
      return [`fentry ${h.call}`];
  }
}

/** One hook per attachment point per policy: two would race for the same event. */
function checkDuplicateHooks(ctx: PolicyContext, hooks: Hook[]): void {
  const first = new Map<string, Hook>();
  for (const h of hooks) {
    for (const key of hookKeys(h)) {
      const prev = first.get(key);
      if (!prev) {
        first.set(key, h);
        continue;
      }
      ctx.sink.add(
        h.source,
        h.source.fieldPath,
        `duplicate hook: ${h.label} hooks ${key}, which ${prev.source.fieldPath} (line ${prev.source.line}) already hooks`,
        'merge their selectors into one hook (up to 5 selectors)',
      );
      break;
    }
  }
}
