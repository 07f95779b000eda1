/**
 * What the policy commands read of a policy text before they know which
 * parser it is for: the `kind` and `metadata.name` of each YAML document.
 * And, for a large text, that and the network policy parse together on a
 * thread of their own (policy-parse-worker.ts), so that a policy of 100,000
 * CIDRs (about 2 MB of YAML, seconds of parsing and some 200 MB of parser
 * garbage) neither stops the event loop nor leaves that garbage in the
 * agent's heap.
 */
import { Worker } from 'node:worker_threads';
import { type Document, parseAllDocuments } from 'yaml';
import { type Cidr, type NetworkPolicy, type NetworkRule, RULE_SECTIONS } from '../netpolicy/model.js';
import { NETPOLICY_KINDS, parseNetworkPolicyText } from '../netpolicy/parse.js';
import { runSliced } from '../netpolicy/slices.js';
import type { TracingPolicy } from '../policy/model.js';
import type { ValidateOptions } from '../policy/validate.js';

export type PolicyDocument = Readonly<{ kind?: string; name?: string }>;

/** The text policyDocuments read last, and what it found: one add asks of the same text several times. */
let lastDocsText: string | undefined;
let lastDocs: readonly PolicyDocument[] = [];

/**
 * kind and metadata.name of each document, read loosely (the parsers
 * report the problems). Routing an add asks this of the same text three
 * times (the router, the kind check, the network manager): the text read
 * last is answered from memory.
 */
export function policyDocuments(text: string): readonly PolicyDocument[] {
  if (text === lastDocsText) return lastDocs;
  remember(text, readPolicyDocuments(text));
  return lastDocs;
}

function remember(text: string, docs: readonly PolicyDocument[]): void {
  lastDocsText = text;
  lastDocs = docs;
}

/** Whether any of the documents is of a network policy kind. */
export function hasNetworkKind(docs: readonly PolicyDocument[]): boolean {
  return docs.some((d) => (NETPOLICY_KINDS as readonly string[]).includes(d.kind ?? ''));
}

export function readPolicyDocuments(text: string): readonly PolicyDocument[] {
  let docs: ReturnType<typeof parseAllDocuments>;
  try {
    docs = parseAllDocuments(text, { prettyErrors: false });
  } catch {
    return Object.freeze([]);
  }
  return documentsOf(docs as Document[]);
}

/** kind and metadata.name of each parsed document. */
export function documentsOf(docs: readonly Document[]): readonly PolicyDocument[] {
  const out: PolicyDocument[] = [];
  for (const d of docs) {
    try {
      const kind = d.get('kind');
      const name = d.getIn(['metadata', 'name']);
      out.push(
        Object.freeze({
          ...(typeof kind === 'string' ? { kind } : {}),
          ...(typeof name === 'string' ? { name } : {}),
        }),
      );
    } catch {
      out.push(Object.freeze({}));
    }
  }
  return Object.freeze(out);
}

/** A text could not be read (its thread failed), or was not because the agent is stopping. */
export class PolicyReadError extends Error {
  constructor(
    message: string,
    readonly stopping = false,
  ) {
    super(message);
    this.name = 'PolicyReadError';
  }
}

/** The threads reading texts now, and whether the agent is stopping (stopPolicyReads). */
const reading = new Set<Worker>();
let stopping = false;

/** The agent is stopping: texts being read are given up (their adds fail), none is started. */
export function stopPolicyReads(): void {
  stopping = true;
  for (const w of reading) void w.terminate();
}

/** Texts from this size on are read on a thread of their own. */
export const OFF_LOOP_BYTES = 16 * 1024;

/** A network policy parse whose errors are already text (as they cross between threads). */
export interface NetworkParse {
  policies: NetworkPolicy[];
  errors: string[];
}

/** A TracingPolicy parse whose errors are already text (as they cross between threads). */
export interface TracingParse {
  policies: TracingPolicy[];
  errors: string[];
}

/** What the worker answers. */
export interface ParseReply {
  docs: PolicyDocument[];
  /** when a document is of a network policy kind */
  network?: PackedNetworkParse;
  /** when the request asked for it and no document is of a network policy kind */
  tracing?: TracingParse;
  /** the worker itself failed */
  error?: string;
}

/** What the worker is given. */
export interface ParseRequest {
  text: string;
  source: string;
  /** parse TracingPolicies too, with these options (the policy manager's) */
  tracing?: ValidateOptions;
}

/**
 * Reads a text's documents, and parses it as network policies when one of
 * them is of that kind: a text of OFF_LOOP_BYTES or more on a worker thread
 * (started for it and ended after it), a smaller one right here (a thread
 * costs ~30 ms to start; a small text parses in less). The documents are
 * remembered for policyDocuments.
 */
export async function readPolicyText(
  text: string,
  source: string,
  tracing?: ValidateOptions,
): Promise<{ docs: readonly PolicyDocument[]; network?: NetworkParse; tracing?: TracingParse }> {
  if (Buffer.byteLength(text) < OFF_LOOP_BYTES) {
    const docs = policyDocuments(text);
    if (!hasNetworkKind(docs)) return { docs };
    const r = parseNetworkPolicyText(text, source);
    return { docs, network: { policies: r.policies, errors: r.errors.map(String) } };
  }
  if (stopping) throw new PolicyReadError(`${source}: not read: the agent is stopping`, true);
  const reply = await new Promise<ParseReply>((resolve, reject) => {
    const w = new Worker(new URL('./policy-parse-worker.js', import.meta.url), {
      workerData: { text, source, ...(tracing ? { tracing } : {}) } satisfies ParseRequest,
    });
    reading.add(w);
    let answered = false;
    w.once('message', (m: ParseReply) => {
      answered = true;
      resolve(m);
      void w.terminate();
    });
    w.once('error', (err) =>
      reject(new PolicyReadError(`${source}: reading the policy failed: ${err.message}`)),
    );
    w.once('exit', (code) => {
      reading.delete(w);
      if (answered) return;
      reject(
        stopping
          ? new PolicyReadError(`${source}: not read: the agent is stopping`, true)
          : new PolicyReadError(`${source}: the thread reading the policy ended (status ${code})`),
      );
    });
  });
  if (reply.error !== undefined)
    throw new PolicyReadError(`${source}: reading the policy failed: ${reply.error}`);
  const docs = Object.freeze(reply.docs.map((d) => Object.freeze(d)));
  remember(text, docs);
  if (reply.tracing !== undefined) return { docs, tracing: reply.tracing };
  if (reply.network === undefined) return { docs };
  return { docs, network: await unpackNetworkParse(reply.network) };
}

/**
 * A network policy parse as it crosses between threads: each rule as JSON
 * text of its own, the policies around them as JSON with each rule list
 * replaced by its length, and every CIDR's address bytes packed in one
 * buffer, in the order eachCidr visits them. A structured clone of a policy
 * of 100,000 CIDRs (several objects and a typed array each) took ~0.4 s of
 * the event loop to take in; JSON.parse of the same, a fifth of that, and
 * rule by rule it can pause between rules (unpackNetworkParse).
 */
export interface PackedNetworkParse {
  json: string;
  rules: string[];
  addrs: Uint8Array;
  errors: string[];
}

/** Every CIDR and except of a rule, in one fixed order. */
function eachCidr(r: NetworkRule, f: (c: Cidr) => void): void {
  if (r.peers === 'any') return;
  for (const c of r.peers.cidrs) {
    f(c.cidr);
    for (const x of c.except) f(x);
  }
}

/** Packs a parse to be sent (the policies' addresses are taken out of them). */
export function packNetworkParse(policies: NetworkPolicy[], errors: string[]): PackedNetworkParse {
  let n = 0;
  for (const p of policies) for (const sec of RULE_SECTIONS) for (const r of p[sec]) eachCidr(r, () => n++);
  const addrs = new Uint8Array(n * 16);
  const rules: string[] = [];
  let at = 0;
  const shells = policies.map((p) => {
    const shell: Record<string, unknown> = { ...p };
    for (const sec of RULE_SECTIONS) {
      for (const r of p[sec]) {
        eachCidr(r, (c) => {
          addrs.set(c.addr.subarray(0, 16), at);
          at += 16;
          (c as { addr?: Buffer }).addr = undefined;
        });
        rules.push(JSON.stringify(r));
      }
      shell[sec] = p[sec].length;
    }
    return shell;
  });
  return { json: JSON.stringify(shells), rules, addrs, errors };
}

/**
 * The parse packNetworkParse packed, taken in by slices of about `sliceMs`
 * of the event loop (a pause can come between two rules).
 */
export function unpackNetworkParse(packed: PackedNetworkParse, sliceMs = 8): Promise<NetworkParse> {
  return runSliced(unpackSteps(packed), sliceMs);
}

/** unpackNetworkParse's work, pausing after each rule. */
function* unpackSteps(packed: PackedNetworkParse): Generator<void, NetworkParse> {
  const shells = JSON.parse(packed.json) as Record<string, unknown>[];
  const bytes = Buffer.from(packed.addrs.buffer, packed.addrs.byteOffset, packed.addrs.byteLength);
  let at = 0;
  let next = 0;
  for (const p of shells) {
    for (const sec of RULE_SECTIONS) {
      const list: NetworkRule[] = [];
      for (let i = p[sec] as number; i > 0; i--) {
        const r = JSON.parse(packed.rules[next++]!) as NetworkRule;
        eachCidr(r, (c) => {
          c.addr = bytes.subarray(at, at + 16);
          at += 16;
        });
        list.push(r);
        yield;
      }
      p[sec] = list;
    }
  }
  return { policies: shells as unknown as NetworkPolicy[], errors: packed.errors };
}
