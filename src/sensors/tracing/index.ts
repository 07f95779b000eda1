/**
 * The TracingPolicy engine's kernel half: compiled policy tables (the
 * contract with the policy compiler), the loader that installs one policy
 * atomically, and the decoder of its events.
 */
export {
  decodeTracingRecord,
  type TracingAction,
  type TracingActionResult,
  type TracingArg,
  type TracingRecord,
} from './decode.js';
export {
  closePolicySpares,
  type PolicyCounters,
  PolicyProgram,
  type PolicyProgramOptions,
  prewarmPolicyObjects,
} from './loader.js';
export {
  type ArgFilterTable,
  type ArgSpec,
  type BinaryFilterTable,
  type CapabilityFilterTable,
  type EnforceTable,
  encodeTables,
  type FieldRef,
  type FilterOperator,
  type HookTable,
  type IntRange,
  type KernelTables,
  type NamespaceFilterTable,
  type NamespaceName,
  normalizeInt,
  type PidFilterTable,
  type PolicyMode,
  type PolicyTables,
  type ReturnFilterTable,
  type SelectorActions,
  type SelectorTable,
  TablesError,
  validateTables,
} from './tables.js';
