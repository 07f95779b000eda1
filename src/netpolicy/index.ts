/**
 * Workload network policy (CiliumNetworkPolicy): the model, the strict YAML
 * parser, identities, the compiler to kernel tables, and the controller that
 * keeps the kernel's tables in step with policies and workloads.
 */
export { addressBytes, cidrContains, formatAddress, parseCidr } from './cidr.js';
export {
  type CompiledTables,
  type CompileWarning,
  compileNetworkPolicies,
  type Endpoint,
  type NumberedPolicy,
  rangeToPrefixes,
  type Verdict,
} from './compile.js';
export {
  type HubbleFlowLine,
  type InstallResult,
  NetworkPolicyController,
  type NetworkPolicyControllerOptions,
} from './controller.js';
export {
  HOST_IDENTITY,
  IdentityAllocator,
  labelsKey,
  RESERVED_LABELS,
  selectorMatches,
  WORLD_IDENTITY,
} from './identity.js';
export * from './model.js';
export {
  NETPOLICY_KINDS,
  type NetworkPolicyParseResult,
  parseNetworkPolicyFile,
  parseNetworkPolicyText,
} from './parse.js';
