// Policy texts the tests generate.

/** A CiliumNetworkPolicy `name` for the workloads labelled app=APP: egress to CIDRS (on TCP PORT, when given). */
export function cidrPolicyText(name: string, app: string, cidrs: readonly string[], port?: number): string {
  return `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: ${name} }
spec:
  endpointSelector: { matchLabels: { app: ${app} } }
  egress:
    - toCIDR: [${cidrs.join(', ')}]
${port === undefined ? '' : `      toPorts: [{ ports: [{ port: "${port}", protocol: TCP }] }]\n`}`;
}

/**
 * A TracingPolicy `name` on openat(2) whose Prefix filter on the path lists
 * PREFIXES, with ACTION (Post by default); its events carry the fd, the path
 * and the flags as args 0, 1 and 2.
 */
export function openatPrefixPolicyText(
  name: string,
  prefixes: readonly string[],
  action: 'Post' | 'Sigkill' = 'Post',
): string {
  return `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: ${name}
spec:
  kprobes:
    - call: sys_openat
      syscall: true
      args:
        - index: 0
          type: int
        - index: 1
          type: string
        - index: 2
          type: int
      selectors:
        - matchArgs:
            - index: 1
              operator: Prefix
              values:
${prefixes.map((p) => `                - ${JSON.stringify(p)}`).join('\n')}
          matchActions:
            - action: ${action}
`;
}
