/**
 * Warming the policy parser and compiler up at start. A policy added live
 * goes through the YAML parser, the validator and the compiler: code that a
 * fresh agent has never run, which V8 must first compile. The first parse
 * and compile of a typical policy took ~40 ms here, the next ones ~10, and
 * `osprey policy add` pays that inside its request. Parsing and compiling a
 * policy that uses the common hooks, arguments, filters and actions at start
 * moves that cost out of the adds. Nothing is loaded.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { compilePolicy } from '../policy/compile.js';
import type { KernelCapabilities } from '../policy/kernel-caps.js';
import { parsePolicyText } from '../policy/parse.js';

/**
 * Enough for V8 to optimize what an add runs, not only to compile it: after
 * 3 rounds an add's request (POST /v1/policies) took 20.5-20.7 ms (median of
 * 20, twice), after 30 rounds 16.0-19.6. One round a turn of the event loop
 * (~5 ms each), so events keep flowing while it runs.
 */
const ROUNDS = 30;

const WARMUP_POLICY = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: osprey-warmup
spec:
  options:
  - name: policy-mode
    value: monitor
  lists:
  - name: writes
    type: syscalls
    values: ["sys_write", "sys_pwrite64"]
  kprobes:
  - call: sys_openat
    syscall: true
    return: true
    args:
    - index: 0
      type: int
    - index: 1
      type: string
    - index: 2
      type: int
    returnArg:
      index: 0
      type: int
    selectors:
    - matchArgs:
      - index: 1
        operator: Prefix
        values: ["/etc/osprey-warmup/", "/var/osprey-warmup/"]
      - index: 2
        operator: Mask
        values: ["3"]
      matchBinaries:
      - operator: NotIn
        values: ["/usr/sbin/osprey-warmup"]
      matchActions:
      - action: Post
        rateLimit: 1m
    - matchArgs:
      - index: 1
        operator: Postfix
        values: [".osprey-warmup"]
      matchPIDs:
      - operator: NotIn
        followForks: true
        isNamespacePID: false
        values: [1]
      matchActions:
      - action: Sigkill
  - call: "list:writes"
    syscall: true
    args:
    - index: 0
      type: fd
    - index: 1
      type: char_buf
      sizeArgIndex: 3
    - index: 2
      type: size_t
    selectors:
    - matchArgs:
      - index: 0
        operator: Prefix
        values: ["/etc/osprey-warmup/"]
      - index: 2
        operator: GT
        values: ["0"]
      matchNamespaces:
      - namespace: Mnt
        operator: NotIn
        values: ["host_ns"]
      matchActions:
      - action: Post
  - call: sys_connect
    syscall: true
    args:
    - index: 0
      type: int
    - index: 1
      type: sockaddr
    selectors:
    - matchArgs:
      - index: 1
        operator: DAddr
        values: ["192.0.2.0/24"]
      - index: 1
        operator: DPort
        values: ["4444"]
      matchCapabilities:
      - type: Effective
        operator: NotIn
        values: ["CAP_NET_ADMIN"]
      matchActions:
      - action: Signal
        argSig: 9
  - call: sys_setuid
    syscall: true
    args:
    - index: 0
      type: int
    selectors:
    - matchArgs:
      - index: 0
        operator: InRange
        values: ["0:0"]
      matchParentBinaries:
      - operator: Prefix
        values: ["/usr/sbin/osprey-warmup"]
      matchActions:
      - action: NoPost
  tracepoints:
  - subsystem: syscalls
    event: sys_enter_lseek
    args:
    - index: 7
      type: int
    selectors:
    - matchArgs:
      - index: 7
        operator: Equal
        values: ["4"]
`;

/**
 * Parse and compile the warm-up policy `rounds` times, one round a turn of
 * the event loop, until `stopped()` says the agent is stopping; resolves to
 * how long it took (ms) and the first problem, if the policy did not parse
 * or compile on this host (then nothing is warmed beyond what ran).
 */
export async function warmUpPolicyCode(
  kernel: KernelCapabilities,
  tracefsRoot?: string,
  opts: { rounds?: number; stopped?: () => boolean } = {},
): Promise<{ ms: number; rounds: number; problem?: string }> {
  const t0 = performance.now();
  const rounds = opts.rounds ?? ROUNDS;
  let done = 0;
  for (; done < rounds && !opts.stopped?.(); done++) {
    if (done > 0) await nextTurn();
    const r = parsePolicyText(WARMUP_POLICY, 'osprey-warmup', {
      kernel,
      ...(tracefsRoot ? { tracefsRoot } : {}),
    });
    const policy = r.policies[0];
    if (r.errors.length || !policy) {
      return { ms: performance.now() - t0, rounds: done, problem: String(r.errors[0] ?? 'no policy') };
    }
    try {
      compilePolicy(policy, { policyId: 0, agentPid: process.pid });
    } catch (err) {
      return { ms: performance.now() - t0, rounds: done, problem: (err as Error).message };
    }
  }
  return { ms: performance.now() - t0, rounds: done };
}
