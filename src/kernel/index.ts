/** The kernel bridge: load BPF objects, attach programs, read maps and ring buffers, probe features. */
export { Collection, type CollectionOptions, closeAll, type Link } from './collection.js';
export { KernelError, logTail } from './errors.js';
export { type Features, Helper, MapType, ProgType, probeFeatures, requireBaseline } from './features.js';
export { BPF_ANY, BPF_EXIST, BPF_NOEXIST, BpfMap, bytes, type Codec, possibleCpus, u32, u64 } from './map.js';
export { cgroup2Root, ensureMounts, mounts, tracefsRoot } from './mounts.js';
export { bpfObjectPath, native, repoRoot } from './native.js';
export { type RecordHandler, RecordReader, RingReader, ringBufferBytes } from './ring.js';
export { enableRunTimeStats, type ProgramStats, programStats, runTimeStatsOn } from './stats.js';
