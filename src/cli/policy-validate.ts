/**
 * `osprey policy validate PATH...`: check policy files as the agent would
 * before loading them (parsed, and a TracingPolicy compiled for this
 * kernel's tracepoints and features), with no agent running. Kept out of the
 * CLI's bundle (scripts/bundle-cli.mjs): it needs the policy compiler and
 * the kernel's feature probe, which the other client commands do not.
 */
import { UserError } from '../agent/fs-util.js';
import { PolicyManager } from '../agent/policies.js';
import { prepareStartupPolicies } from '../agent/policy-router.js';
import { probeFeatures, tracefsRoot } from '../kernel/index.js';
import { kernelCapabilities } from '../policy/kernel-caps.js';

const WHAT = 'policy validate';

/** Prints each policy found valid, or every problem at its file:line; returns the exit code. */
export function validatePolicies(paths: string[]): number {
  const kernel = kernelCapabilities(probeFeatures());
  const tracefs = tracefsRoot();
  let found: ReturnType<typeof prepareStartupPolicies>;
  try {
    found = prepareStartupPolicies(
      paths,
      (files) => PolicyManager.prepare(files, kernel, tracefs, WHAT),
      WHAT,
    );
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    // a header line, then one indented line per problem
    const lines = err.message.split('\n').slice(1);
    const problems = lines.length ? lines.map((l) => l.trim()) : [err.message];
    for (const p of problems) process.stderr.write(`${p}\n`);
    const n = problems.length;
    process.stderr.write(`osprey policy validate: ${n} problem${n === 1 ? '' : 's'}\n`);
    return 1;
  }
  for (const p of found.tracing) process.stdout.write(`${p.file}: ${p.name} (TracingPolicy): valid\n`);
  for (const p of found.network) process.stdout.write(`${p.file}: ${p.name} (${p.kind}): valid\n`);
  return 0;
}
