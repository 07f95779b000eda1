/**
 * Export options applied before a sink writes, as Tetragon's exporter
 * offers them: allow/deny lists, field filters, redaction of secrets in
 * arguments, and a rate limit that reports what it dropped.
 */
export { type FieldAction, FieldFilter, type FieldFilterSpec, parseFieldFilters } from './fields.js';
export {
  type AllowDenyLists,
  anyFilter,
  compileFilter,
  type EventFilterSpec,
  type EventPredicate,
  makeAllowDeny,
  parseFilterList,
  parseFilterSpec,
} from './filter.js';
export { ExportOptionError, jsonList } from './json-list.js';
export {
  type ExportOptions,
  ExportPipeline,
  type ExportPipelineParts,
  type ExportPipelineStats,
  pipelineSink,
} from './pipeline.js';
export {
  isRateLimitInfo,
  RateLimiter,
  type RateLimiterOptions,
  type RateLimitInfoEvent,
} from './rate-limit.js';
export { parseRedactionFilters, REDACTED, type RedactionFilterSpec, Redactor, redactText } from './redact.js';
