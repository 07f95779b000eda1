/** Prometheus metrics: the registry and text format, Osprey's metric set, and the /metrics endpoint. */
export {
  type MetricsSources,
  type NumbersByName,
  OspreyMetrics,
  type OspreyMetricsOptions,
  OTHER,
  type PolicyActionCount,
  type ProgramRunStats,
  type StoreMetricsStats,
} from './osprey.js';
export { Cell, type Collector, MetricFamily, type MetricKind, Registry, type Sample } from './registry.js';
export { CONTENT_TYPE, METRICS_ADDRESS_FLAG, MetricsServer, type MetricsServerOptions } from './server.js';
