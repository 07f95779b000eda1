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
