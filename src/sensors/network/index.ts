/**
 * The network policy engine's kernel half: the loader that attaches
 * bpf/netpolicy.bpf.c to workload cgroups and swaps its tables atomically,
 * and the decoder of its flow records (to Hubble-shaped JSON).
 */
export {
  decodeFlowRecord,
  FlowBuilder,
  type FlowContext,
  type FlowEventName,
  type FlowRecord,
  type FlowVerdict,
  type HubbleFlow,
  type PolicyRef,
  ruleSection,
  type TrafficDirection,
  toHubbleFlow,
} from './decode.js';
export { type NetworkCounters, NetworkDatapath, type NetworkDatapathOptions } from './loader.js';
