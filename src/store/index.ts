/**
 * The embedded event store: events and the processes they name in a SQLite
 * file, with retention by age and size, and queries by time, type, binary,
 * policy and process tree.
 */
export { STORE_PATH_FLAG, StoreError, storeError } from './errors.js';
export { SCHEMA_VERSION } from './schema.js';
export {
  DEFAULT_MAX_AGE_MS,
  DEFAULT_MAX_BYTES,
  EventStore,
  type EventStoreOptions,
  type EventStoreStats,
  type ProcessTree,
  type ProcessTreeOptions,
  type RetentionResult,
  type StoredProcess,
  type StoreQuery,
} from './store.js';
export { boundToNs, type TimeBound, timeToNs } from './time.js';
