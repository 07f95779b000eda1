/**
 * Read CiliumNetworkPolicy YAML: every `---` document is a policy. Reading is
 * strict (unknown fields are errors) and every problem is reported at the
 * file, line and field it concerns; a document with any error yields no
 * policy, and the other documents of the file are still read.
 */
import { readFileSync } from 'node:fs';
import { type Document, isMap, isScalar, type LineCounter, type Node } from 'yaml';
import { ErrorSink, PolicyError, type SourceRef } from '../policy/errors.js';
import { readPolicyYaml } from '../policy/parse.js';
import { describe, type Field, isNull, joinPath, type ObjectView, YamlReader } from '../policy/yaml-view.js';
import { cidrContains, parseCidr } from './cidr.js';
import {
  AUDIT_ANNOTATION,
  type Cidr,
  type CidrRule,
  type Entity,
  type LabelRequirement,
  type LabelSelector,
  NETPOLICY_API_VERSION,
  NETPOLICY_KIND,
  type NetworkPolicy,
  type NetworkRule,
  type PortRange,
  type Protocol,
  type RuleSection,
  type SelectorOperator,
} from './model.js';

export interface NetworkPolicyParseResult {
  policies: NetworkPolicy[];
  errors: PolicyError[];
}

/** Kinds this parser reads; the clusterwide kind has the same spec (and no namespace). */
export const NETPOLICY_KINDS = [NETPOLICY_KIND, 'CiliumClusterwideNetworkPolicy'] as const;

const ENTITIES: readonly Entity[] = ['all', 'world', 'world-ipv4', 'world-ipv6', 'host', 'cluster'];
/** Cilium entities that mean nothing without a cluster around the host */
const CLUSTER_ENTITIES = ['remote-node', 'kube-apiserver', 'init', 'health', 'unmanaged', 'ingress'];
const OPERATORS: readonly SelectorOperator[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

const SECTION_FIELDS: Record<RuleSection, { known: string[]; unsupported: string[] }> = {
  egress: {
    known: ['toEndpoints', 'toCIDR', 'toCIDRSet', 'toEntities', 'toPorts'],
    unsupported: ['toFQDNs', 'toServices', 'toGroups', 'toRequires', 'toNodes', 'icmps', 'authentication'],
  },
  egressDeny: {
    known: ['toEndpoints', 'toCIDR', 'toCIDRSet', 'toEntities', 'toPorts'],
    unsupported: ['toServices', 'toGroups', 'toRequires', 'toNodes', 'icmps'],
  },
  ingress: {
    known: ['fromEndpoints', 'fromCIDR', 'fromCIDRSet', 'fromEntities', 'toPorts'],
    unsupported: ['fromRequires', 'fromGroups', 'fromNodes', 'icmps', 'authentication'],
  },
  ingressDeny: {
    known: ['fromEndpoints', 'fromCIDR', 'fromCIDRSet', 'fromEntities', 'toPorts'],
    unsupported: ['fromRequires', 'fromGroups', 'fromNodes', 'icmps'],
  },
};

/** Parse and validate every policy in `text`; `file` names it in errors. */
export function parseNetworkPolicyText(text: string, file: string): NetworkPolicyParseResult {
  const y = readPolicyYaml(text);
  return parseNetworkPolicyDocuments(y.docs, y.lines, file);
}

/** The validating half of parseNetworkPolicyText. */
export function parseNetworkPolicyDocuments(
  docs: readonly Document.Parsed[],
  lines: LineCounter,
  file: string,
): NetworkPolicyParseResult {
  const policies: NetworkPolicy[] = [];
  const errors: PolicyError[] = [];
  let nonEmpty = 0;
  for (const doc of docs) {
    const sink = new ErrorSink(file);
    const problems = [...doc.errors, ...doc.warnings];
    if (problems.length > 0) {
      for (const e of problems) {
        const p = lines.linePos(e.pos[0]);
        sink.add(
          { line: p.line, column: p.col },
          '',
          `YAML: ${e.message.split('\n')[0]!.trim()}`,
          'fix the YAML syntax',
        );
      }
      errors.push(...sink.errors);
      nonEmpty++;
      continue;
    }
    const contents = doc.contents as Node | null;
    if (contents === null || (isScalar(contents) && contents.value === null)) continue;
    nonEmpty++;
    const r = new YamlReader(sink, lines, doc);
    const policy = readPolicy(r, sink, file);
    errors.push(...sink.errors);
    if (policy && sink.errors.length === 0) policies.push(policy);
  }
  if (nonEmpty === 0) {
    errors.push(
      new PolicyError({
        file,
        line: 1,
        column: 1,
        fieldPath: '',
        message: 'no policy in this file',
        hint: `a network policy starts with apiVersion: ${NETPOLICY_API_VERSION} and kind: ${NETPOLICY_KIND}`,
      }),
    );
  }
  const seen = new Map<string, NetworkPolicy>();
  for (const p of policies) {
    const first = seen.get(p.name);
    if (first) {
      errors.push(
        new PolicyError({
          file,
          line: p.source.line,
          column: p.source.column,
          fieldPath: 'metadata.name',
          message: `a second policy named "${p.name}" (the first is at line ${first.source.line})`,
          hint: 'policy names must be unique',
          policy: p.name,
        }),
      );
    } else seen.set(p.name, p);
  }
  errors.sort((a, b) => a.line - b.line || a.column - b.column);
  return { policies: policies.filter((p) => seen.get(p.name) === p), errors };
}

/** Parse and validate every policy in the file at `path`. */
export function parseNetworkPolicyFile(path: string): NetworkPolicyParseResult {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return {
      policies: [],
      errors: [
        new PolicyError({
          file: path,
          line: 1,
          column: 1,
          fieldPath: '',
          message: `cannot read: ${err.message}`,
        }),
      ],
    };
  }
  return parseNetworkPolicyText(text, path);
}

function ref(f: Field): SourceRef {
  return { line: f.at.line, column: f.at.column, fieldPath: f.path };
}

function readPolicy(r: YamlReader, sink: ErrorSink, file: string): NetworkPolicy | undefined {
  const root = r.root();
  const doc = r.object(root, ['apiVersion', 'kind', 'metadata', 'spec'], 'a network policy');
  if (!doc) {
    if (isNull(root)) r.error(root, 'the document is empty');
    return undefined;
  }
  const apiVersion = r.string(doc.get('apiVersion'), 'apiVersion', true);
  if (apiVersion !== undefined && apiVersion !== NETPOLICY_API_VERSION) {
    r.error(doc.get('apiVersion'), `apiVersion "${apiVersion}" is not ${NETPOLICY_API_VERSION}`);
  }
  const kind = r.string(doc.get('kind'), 'kind', true);
  if (kind !== undefined && !(NETPOLICY_KINDS as readonly string[]).includes(kind)) {
    r.error(doc.get('kind'), `kind "${kind}" is not ${NETPOLICY_KINDS.join(' or ')}`);
  }
  const metaF = doc.get('metadata');
  const meta = r.object(metaF, ['name', 'namespace', 'labels', 'annotations'], 'metadata');
  if (!meta) {
    if (isNull(metaF)) r.missing(metaF, 'metadata');
    return undefined;
  }
  const name = r.string(meta.get('name'), 'metadata.name', true);
  if (name !== undefined) sink.policy = name;
  r.string(meta.get('namespace'), 'metadata.namespace');
  stringMap(r, meta.get('labels'), 'metadata.labels');
  const annotations = stringMap(r, meta.get('annotations'), 'metadata.annotations');
  let audit = false;
  const a = annotations?.[AUDIT_ANNOTATION];
  if (a !== undefined) {
    if (a !== 'true' && a !== 'false') {
      r.error(
        { ...meta.get('annotations'), path: `metadata.annotations.${AUDIT_ANNOTATION}` },
        `${AUDIT_ANNOTATION} must be "true" or "false", not "${a}"`,
      );
    }
    audit = a === 'true';
  }

  const specF = doc.get('spec');
  const spec = r.object(
    specF,
    [
      'endpointSelector',
      'nodeSelector',
      'ingress',
      'ingressDeny',
      'egress',
      'egressDeny',
      'enableDefaultDeny',
      'description',
      'labels',
    ],
    'spec',
  );
  if (!spec) {
    if (isNull(specF)) r.missing(specF, 'spec');
    return undefined;
  }
  if (spec.has('nodeSelector')) {
    r.error(
      spec.get('nodeSelector'),
      'spec.nodeSelector (host policies) is not supported',
      'select workloads with spec.endpointSelector',
    );
  }
  if (spec.has('labels')) {
    r.error(spec.get('labels'), 'spec.labels is not supported', 'put labels in metadata.labels');
  }
  r.string(spec.get('description'), 'spec.description');
  const selF = spec.get('endpointSelector');
  let endpointSelector: LabelSelector | undefined;
  if (isNull(selF)) r.missing(selF, 'spec.endpointSelector', 'use {} to select every workload');
  else endpointSelector = readSelector(r, selF);

  const dd = r.object(spec.get('enableDefaultDeny'), ['egress', 'ingress'], 'spec.enableDefaultDeny');
  const enableDefaultDeny: NetworkPolicy['enableDefaultDeny'] = {};
  if (dd) {
    const e = r.bool(dd.get('egress'), 'enableDefaultDeny.egress');
    const i = r.bool(dd.get('ingress'), 'enableDefaultDeny.ingress');
    if (e !== undefined) enableDefaultDeny.egress = e;
    if (i !== undefined) enableDefaultDeny.ingress = i;
  }
  const sections: Record<RuleSection, NetworkRule[]> = {
    egress: [],
    egressDeny: [],
    ingress: [],
    ingressDeny: [],
  };
  for (const section of Object.keys(sections) as RuleSection[]) {
    const list = r.list(spec.get(section), `spec.${section}`);
    list.forEach((item, index) => {
      const rule = readRule(r, item, section, index);
      if (rule) sections[section].push(rule);
    });
  }
  if (name === undefined || endpointSelector === undefined) return undefined;
  return {
    name,
    file,
    endpointSelector,
    ...sections,
    enableDefaultDeny,
    audit,
    source: { line: root.at.line, column: root.at.column, fieldPath: '' },
  };
}

/** A mapping of string keys to string values (labels, annotations); numbers and booleans are taken as written. */
function stringMap(r: YamlReader, f: Field, what: string): Record<string, string> | undefined {
  if (isNull(f)) return undefined;
  if (!isMap(f.node)) {
    r.error(f, `${what} must be a mapping, not ${describe(f.node)}`);
    return undefined;
  }
  const out: Record<string, string> = {};
  for (const pair of f.node.items) {
    const k = pair.key as Node | null;
    const at = r.pos(k, f.at);
    if (!isScalar(k) || typeof k.value !== 'string') {
      r.sink.add(at, f.path, `${what} has a key that is not a string: ${describe(k ?? undefined)}`);
      continue;
    }
    const vf: Field = { node: r.deref(pair.value as Node | null), path: joinPath(f.path, k.value), at };
    const v = isNull(vf) ? '' : r.text(vf, `${what}.${k.value}`);
    if (v !== undefined) out[k.value] = v;
  }
  return out;
}

function readSelector(r: YamlReader, f: Field): LabelSelector | undefined {
  const o = r.object(f, ['matchLabels', 'matchExpressions'], 'a label selector');
  if (!o) return undefined;
  const matchLabels = stringMap(r, o.get('matchLabels'), 'matchLabels') ?? {};
  const matchExpressions: LabelRequirement[] = [];
  for (const item of r.list(o.get('matchExpressions'), 'matchExpressions')) {
    const e = r.object(item, ['key', 'operator', 'values'], 'a match expression');
    if (!e) continue;
    const key = r.string(e.get('key'), 'key', true);
    const op = r.string(e.get('operator'), 'operator', true);
    const values: string[] = [];
    for (const v of r.list(e.get('values'), 'values')) {
      const s = r.text(v, 'a value');
      if (s !== undefined) values.push(s);
    }
    if (op !== undefined && !(OPERATORS as readonly string[]).includes(op)) {
      r.error(e.get('operator'), `operator "${op}" is not one of ${OPERATORS.join(', ')}`);
      continue;
    }
    const operator = op as SelectorOperator | undefined;
    if (operator === 'In' || operator === 'NotIn') {
      if (values.length === 0) r.errorAtKey(e.get('values'), `operator ${operator} needs at least one value`);
    } else if (operator && values.length > 0) {
      r.error(e.get('values'), `operator ${operator} takes no values`);
    }
    if (key !== undefined && operator !== undefined) matchExpressions.push({ key, operator, values });
  }
  return { matchLabels, matchExpressions, source: ref(f) };
}

function readCidr(r: YamlReader, f: Field, what: string): Cidr | undefined {
  const s = r.string(f, what, true);
  if (s === undefined) return undefined;
  const c = parseCidr(s.trim());
  if (typeof c === 'string') {
    r.error(f, `${what} "${s}": ${c}`, 'write a prefix such as 10.0.0.0/8 or fd00::/64');
    return undefined;
  }
  return c;
}

function readRule(r: YamlReader, f: Field, section: RuleSection, index: number): NetworkRule | undefined {
  const { known, unsupported } = SECTION_FIELDS[section];
  const o = r.object(f, [...known, ...unsupported], `a rule of ${section}`);
  if (!o) {
    if (isNull(f))
      return { section, index, peers: { endpoints: [], entities: [], cidrs: [] }, ports: [], source: ref(f) };
    return undefined;
  }
  for (const u of unsupported) {
    if (o.has(u)) r.error(o.get(u), `${u} is not supported by Osprey's network policy`);
  }
  const to = section.startsWith('egress') ? 'to' : 'from';
  const endpoints: LabelSelector[] = [];
  for (const item of r.list(o.get(`${to}Endpoints`), `${to}Endpoints`)) {
    const s = readSelector(r, item);
    if (s) endpoints.push(s);
  }
  const entities: Entity[] = [];
  for (const item of r.list(o.get(`${to}Entities`), `${to}Entities`)) {
    const e = r.string(item, 'an entity', true);
    if (e === undefined) continue;
    if ((ENTITIES as readonly string[]).includes(e)) entities.push(e as Entity);
    else if (CLUSTER_ENTITIES.includes(e)) {
      r.error(item, `entity "${e}" has no meaning on a single host`, `use one of ${ENTITIES.join(', ')}`);
    } else r.error(item, `unknown entity "${e}"`, `use one of ${ENTITIES.join(', ')}`);
  }
  const cidrs: CidrRule[] = [];
  for (const item of r.list(o.get(`${to}CIDR`), `${to}CIDR`)) {
    const c = readCidr(r, item, 'a CIDR');
    if (c) cidrs.push({ cidr: c, except: [] });
  }
  for (const item of r.list(o.get(`${to}CIDRSet`), `${to}CIDRSet`)) {
    const s = r.object(item, ['cidr', 'except', 'cidrGroupRef', 'cidrGroupSelector'], 'a CIDR set');
    if (!s) continue;
    for (const u of ['cidrGroupRef', 'cidrGroupSelector']) {
      if (s.has(u)) r.error(s.get(u), `${u} is not supported`, 'write the cidr itself');
    }
    const c = readCidr(r, s.get('cidr'), 'cidr');
    const except: Cidr[] = [];
    for (const ef of r.list(s.get('except'), 'except')) {
      const e = readCidr(r, ef, 'an except CIDR');
      if (!e || !c) continue;
      if (!cidrContains(c, e)) {
        r.error(
          ef,
          `except ${e.text} is not inside cidr ${c.text}`,
          'an exception must be a part of its cidr',
        );
        continue;
      }
      except.push(e);
    }
    if (c) cidrs.push({ cidr: c, except });
  }
  const ports = readToPorts(r, o);
  const hasL3 = [`${to}Endpoints`, `${to}Entities`, `${to}CIDR`, `${to}CIDRSet`].some((k) => o.has(k));
  return {
    section,
    index,
    // a rule with only toPorts applies to every peer; a rule with nothing selects nothing
    peers: hasL3
      ? { endpoints, entities, cidrs }
      : ports === undefined
        ? { endpoints, entities, cidrs }
        : 'any',
    ports,
    source: ref(f),
  };
}

function readToPorts(r: YamlReader, rule: ObjectView): PortRange[] | undefined {
  const f = rule.get('toPorts');
  if (isNull(f)) return undefined;
  const out: PortRange[] = [];
  for (const item of r.list(f, 'toPorts')) {
    const pr = r.object(
      item,
      ['ports', 'rules', 'terminatingTLS', 'originatingTLS', 'serverNames', 'listener'],
      'a toPorts entry',
    );
    if (!pr) continue;
    for (const u of ['rules', 'terminatingTLS', 'originatingTLS', 'serverNames', 'listener']) {
      if (pr.has(u)) r.error(pr.get(u), `${u} (layer 7) is not supported`, 'Osprey enforces layers 3 and 4');
    }
    const list = r.list(pr.get('ports'), 'ports');
    if (list.length === 0) {
      // toPorts with no ports: every port, as Cilium reads it
      out.push({ port: 0, endPort: 65535, protocol: 'ANY' });
    }
    for (const pf of list) {
      const p = r.object(pf, ['port', 'endPort', 'protocol'], 'a port');
      if (!p) continue;
      const port = readPort(r, p.get('port'));
      const endF = p.get('endPort');
      const end = r.int(endF, 'endPort', 0, 65535);
      const proto = r.string(p.get('protocol'), 'protocol') ?? 'ANY';
      if (!['TCP', 'UDP', 'ANY'].includes(proto)) {
        const hint =
          proto === 'SCTP' || proto === 'ICMP' ? `${proto} is not supported` : 'use TCP, UDP or ANY';
        r.error(p.get('protocol'), `protocol "${proto}" is not TCP, UDP or ANY`, hint);
        continue;
      }
      if (port === undefined) continue;
      let endPort = port === 0 ? 65535 : port;
      if (end !== undefined && end !== 0) {
        if (port === 0) {
          r.error(endF, 'endPort needs a port to start from', 'set port too');
          continue;
        }
        if (end < port) {
          r.error(endF, `endPort ${end} is below port ${port}`);
          continue;
        }
        endPort = end;
      }
      out.push({ port, endPort, protocol: proto as Protocol });
    }
  }
  return out;
}

/** A port: a number or a numeric string ("80"), 0 meaning every port. Named ports are refused. */
function readPort(r: YamlReader, f: Field): number | undefined {
  if (isNull(f)) {
    r.missing(f, 'port');
    return undefined;
  }
  const v = isScalar(f.node) ? f.node.value : undefined;
  let n: number;
  if (typeof v === 'bigint') n = Number(v);
  else if (typeof v === 'string' && /^\d+$/.test(v)) n = Number(v);
  else if (typeof v === 'string' && v !== '') {
    r.error(f, `named port "${v}" cannot be resolved here`, 'write the port number');
    return undefined;
  } else {
    r.error(f, `port must be a number, not ${describe(f.node)}`);
    return undefined;
  }
  if (n < 0 || n > 65535) {
    r.error(f, `port ${n} is out of range 0..65535`);
    return undefined;
  }
  return n;
}
