/** Workloads: labelled cgroup v2 directories, managed or adopted, and their identities. */
export {
  type Workload,
  type WorkloadChange,
  WorkloadRegistry,
  type WorkloadRegistryOptions,
} from './registry.js';
