/**
 * `osprey policy validate PATH...`: check policy files as the agent would
 * before loading them (parsed, and a TracingPolicy compiled for this
 * kernel's tracepoints and features), with no agent running. Kept out of the
 * CLI's bundle (scripts/bundle-cli.mjs): it needs the policy compiler and
 * the kernel's feature probe, which the other client commands do not.
 */
import { PolicyManager } from '../agent/policies.js';
import { checkPolicyFiles } from '../agent/policy-router.js';
import { probeFeatures, tracefsRoot } from '../kernel/index.js';
import { kernelCapabilities } from '../policy/kernel-caps.js';

/** Prints each policy found valid, or every problem at its file:line; returns the exit code. */
export function validatePolicies(paths: string[]): number {
  const kernel = kernelCapabilities(probeFeatures());
  const tracefs = tracefsRoot();
  const found = checkPolicyFiles(
    paths,
    (files) => PolicyManager.checkTexts(files, kernel, tracefs),
    'policy validate',
  );
  if (found.problems.length) {
    for (const p of found.problems) process.stderr.write(`${p}\n`);
    const n = found.problems.length;
    process.stderr.write(`osprey policy validate: ${n} problem${n === 1 ? '' : 's'}\n`);
    return 1;
  }
  for (const p of found.tracing) process.stdout.write(`${p.file}: ${p.name} (TracingPolicy): valid\n`);
  for (const p of found.network) process.stdout.write(`${p.file}: ${p.name} (${p.kind}): valid\n`);
  return 0;
}
