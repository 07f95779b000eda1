/**
 * Reads one large policy text on a thread of its own (see
 * policy-documents.ts): its documents' kinds and names, and the network
 * policy parse when one of them is of that kind (else the TracingPolicy
 * parse, when asked for). Answers once, then the
 * thread is ended, its heap with it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { niceThisThread } from '../kernel/thread.js';
import { parseNetworkPolicyDocuments } from '../netpolicy/parse.js';
import { parsePolicyDocuments, readPolicyYaml } from '../policy/parse.js';
import {
  documentsOf,
  hasNetworkKind,
  type ParseReply,
  type ParseRequest,
  packNetworkParse,
} from './policy-documents.js';

// a policy is read while the agent goes on taking events: when the cores are short, the event loop comes first
niceThisThread(10);

const { text, source, tracing } = workerData as ParseRequest;
let reply: ParseReply;
try {
  // one YAML parse, read loosely for the kinds and names, then validated as what it is
  const yaml = readPolicyYaml(text);
  const docs = [...documentsOf(yaml.docs)];
  reply = { docs };
  if (hasNetworkKind(docs)) {
    const r = parseNetworkPolicyDocuments(yaml.docs, yaml.lines, source);
    reply.network = packNetworkParse(r.policies, r.errors.map(String));
  } else if (tracing) {
    // the TracingPolicy parse as the policy manager would make it (its model is plain data: it crosses as it is)
    const r = parsePolicyDocuments(yaml, source, tracing);
    reply.tracing = { policies: r.policies, errors: r.errors.map(String) };
  }
} catch (err) {
  reply = { docs: [], error: (err as Error).message };
}
parentPort?.postMessage(reply, reply.network ? [reply.network.addrs.buffer as ArrayBuffer] : []);
