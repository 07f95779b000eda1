/**
 * TracingPolicy: the model, the parser and validator of Tetragon-style
 * policy YAML, and tracepoint formats from tracefs. The compiler to selector
 * tables builds on the validated model (model.ts).
 */
export {
  ARG_TYPES,
  type ArgClass,
  type ArgTypeInfo,
  OPERATORS_FOR,
  SUPPORTED_ARG_TYPES,
} from './arg-types.js';
export {
  type CompileContext,
  type CompiledPolicy,
  CompileProblem,
  compilePolicy,
  hostNamespaces,
  PolicyCompileError,
} from './compile.js';
export { PolicyError, type SourcePos, type SourceRef } from './errors.js';
export {
  FEATURE_NAMES,
  type KernelCapabilities,
  kernelCapabilities,
  NO_EXTRA_KERNEL_FEATURES,
} from './kernel-caps.js';
export { LIMITS } from './limits.js';
export type * from './model.js';
export { type ParseResult, parsePolicyFile, parsePolicyText } from './parse.js';
export { syscallFunctionName, syscallName, syscallNumber } from './syscalls.js';
export {
  DEFAULT_TRACEFS,
  type FormatLookup,
  parseTracepointFormat,
  Tracefs,
  type TracepointField,
  type TracepointFormat,
} from './tracepoints.js';
export { API_VERSION, type ValidateOptions } from './validate.js';
