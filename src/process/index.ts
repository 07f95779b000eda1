/**
 * The process cache: exec_id, parent and ancestry for every process, kept
 * from the process sensor's records and bootstrapped from /proc.
 */
export { execFlagsString, joinArguments } from './arguments.js';
export { type ExecBinary, resolveExecBinary } from './binary.js';
export { ProcessBuilder } from './builder.js';
export { type EntryOrigin, ProcessCache, type ProcessCacheStats, type ProcessEntry } from './cache.js';
export { CgroupPaths, type CgroupPathsOptions } from './cgroups.js';
export { ktimeToTime, ktimeToWallNs, measureRealtimeOffsetNs, wallNsToTime } from './clock.js';
export { makeExecId, parseExecId } from './execid.js';
export { type HostNamespaces, NamespaceTable, readHostNamespaces } from './namespaces.js';
export { ProcessPipeline, type ProcessPipelineOptions } from './pipeline.js';
export {
  CLK_TCK,
  listProcesses,
  type ProcSnapshot,
  parseCgroupFile,
  parseCmdline,
  parseStat,
  parseStatus,
  readNamespaces,
  readProcess,
  readUptimeNs,
} from './procfs.js';
