/**
 * Read TracingPolicy YAML: every `---` document is a policy. Syntax errors
 * are reported at the YAML parser's line; a document with any error yields
 * no policy, and the other documents of the file are still read.
 */
import { readFileSync } from 'node:fs';
import { type Document, LineCounter, type Node, parseAllDocuments } from 'yaml';
import { ErrorSink, PolicyError } from './errors.js';
import type { TracingPolicy } from './model.js';
import { type ValidateOptions, validateDocument, validationEnv } from './validate.js';
import { YamlReader } from './yaml-view.js';

export interface ParseResult {
  policies: TracingPolicy[];
  errors: PolicyError[];
}

/** Parse and validate every policy in `text`; `file` names it in errors. */
export function parsePolicyText(text: string, file: string, opts?: ValidateOptions): ParseResult {
  return parsePolicyDocuments(readPolicyYaml(text), file, opts);
}

/** A text's YAML documents as the policy parsers (tracing and network) read them, and where their lines start. */
export interface PolicyYaml {
  docs: Document.Parsed[];
  lines: LineCounter;
}

/** The YAML half of a parse: the documents, to be looked at (their kinds) before they are validated. */
export function readPolicyYaml(text: string): PolicyYaml {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, {
    lineCounter: lines,
    // 64-bit values (masks, inodes) must not lose precision
    intAsBigInt: true,
    prettyErrors: false,
    uniqueKeys: true,
    version: '1.2',
  });
  return { docs: docs as Document.Parsed[], lines };
}

/** Parse and validate every policy in the file at `path`. */
export function parsePolicyFile(path: string, opts?: ValidateOptions): ParseResult {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const hint =
      err.code === 'ENOENT' ? 'check the path' : err.code === 'EACCES' ? 'check its permissions' : undefined;
    return {
      policies: [],
      errors: [
        new PolicyError({
          file: path,
          line: 1,
          column: 1,
          fieldPath: '',
          message: `cannot read: ${err.message}`,
          hint,
        }),
      ],
    };
  }
  return parsePolicyText(text, path, opts);
}

/** The validating half of parsePolicyText, on documents readPolicyYaml read. */
export function parsePolicyDocuments(y: PolicyYaml, file: string, opts?: ValidateOptions): ParseResult {
  const { docs, lines } = y;
  const env = validationEnv(opts);
  const policies: TracingPolicy[] = [];
  const errors: PolicyError[] = [];
  let nonEmpty = 0;
  for (const doc of docs) {
    const sink = new ErrorSink(file);
    const problems = [...doc.errors, ...doc.warnings];
    if (problems.length > 0) {
      for (const e of problems) {
        const p = lines.linePos(e.pos[0]);
        sink.add({ line: p.line, column: p.col }, '', `YAML: ${firstLine(e.message)}`, 'fix the YAML syntax');
      }
      errors.push(...sink.errors);
      nonEmpty++;
      continue;
    }
    const contents = doc.contents as Node | null;
    // a document of comments only, e.g. after a trailing ---
    if (contents === null || isNullScalar(contents)) continue;
    nonEmpty++;
    const reader = new YamlReader(sink, lines, doc);
    const policy = validateDocument(reader, sink, env);
    errors.push(...sink.errors);
    if (policy) policies.push(policy);
  }
  if (nonEmpty === 0) {
    errors.push(
      new PolicyError({
        file,
        line: 1,
        column: 1,
        fieldPath: '',
        message: 'no policy in this file',
        hint: 'a TracingPolicy starts with apiVersion: cilium.io/v1alpha1',
      }),
    );
  }
  errors.sort((a, b) => a.line - b.line || a.column - b.column);
  return { policies, errors };
}

function isNullScalar(n: Node): boolean {
  return (n as { value?: unknown }).value === null && !('items' in n);
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim();
}
