/** Exported event shapes and what turns them into output: JSON lines, compact lines, filters. */
export { CAP_NAMES, capBit, capName, capNames } from './caps.js';
export { payloadProcess, renderCompact } from './compact.js';
export {
  type CopyableLine,
  copyLine,
  EncodedLine,
  encodeEvent,
  encodeLine,
  eventLine,
  joinLines,
  type Line,
  lineBytes,
  linesBytes,
  writeLines,
} from './encode.js';
export { type FilterOptions, makeFilter } from './filter.js';
export { decodeWaitStatus, signalName, signalNumber } from './signals.js';
export * from './tracing.js';
export * from './types.js';
