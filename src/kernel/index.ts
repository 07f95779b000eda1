/** The kernel bridge: load BPF objects, attach programs, read maps and ring buffers, probe features. */
export { Collection, closeAll, type Link, type CollectionOptions } from './collection.js';
export { KernelError, logTail } from './errors.js';
export { BpfMap, type Codec, u32, u64, bytes, BPF_ANY, BPF_EXIST, BPF_NOEXIST, possibleCpus } from './map.js';
export { RingReader, type RecordHandler } from './ring.js';
export { probeFeatures, requireBaseline, type Features, ProgType, MapType, Helper } from './features.js';
export { ensureMounts, cgroup2Root, tracefsRoot, mounts } from './mounts.js';
export { bpfObjectPath, native, repoRoot } from './native.js';
export { programStats, enableRunTimeStats, type ProgramStats } from './stats.js';
