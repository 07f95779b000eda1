/**
 * Limits of the agent's API that its clients check too, before they send
 * what the agent would refuse (a refused body's connection is closed under a
 * client still writing it, which then sees EPIPE instead of the answer).
 */

/**
 * Policy bodies are small, but a network policy listing 100,000 CIDRs is
 * about 2 MiB of YAML; 16 MiB still catches a file that is not a policy.
 */
export const POLICY_BODY_LIMIT = 16 * 1024 * 1024;

/** Why a policy of more than POLICY_BODY_LIMIT bytes is refused, and what to do. */
export function policyTooLarge(source: string | undefined): string {
  const mib = POLICY_BODY_LIMIT / (1024 * 1024);
  return (
    `${source ? `${source}: ` : ''}the policy is larger than ` +
    `${mib} MiB, the most the agent takes: split it into smaller policies`
  );
}
