/**
 * SQLite failures in words a user can act on: what is wrong with which file,
 * and what to do about it.
 */
import { UserError } from '../agent/fs-util.js';

/** A store failure whose message names the file and the way out. */
export class StoreError extends UserError {
  constructor(
    message: string,
    /** the SQLite result code ("SQLITE_NOTADB"), when SQLite gave one */
    readonly code?: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

/** The flag that moves the store elsewhere, named in the advice. */
export const STORE_PATH_FLAG = '--store-path';

/**
 * Wrap a failure of `doing` on the store at `file`. Result codes are
 * matched by prefix, so extended codes (SQLITE_BUSY_SNAPSHOT,
 * SQLITE_IOERR_WRITE) get the advice of their primary code.
 */
export function storeError(file: string, doing: string, err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : '';
  const msg = err instanceof Error ? err.message : String(err);
  const why = msg;
  const is = (c: string) => code === c || code.startsWith(`${c}_`);
  if (is('SQLITE_NOTADB')) {
    return new StoreError(
      `event store ${file} is not a SQLite database (${why}); move it aside or choose ${STORE_PATH_FLAG}`,
      code,
    );
  }
  if (is('SQLITE_CORRUPT')) {
    return new StoreError(
      `event store ${file} is corrupted (${why}); move it aside (a new store is created in its place) ` +
        `or choose ${STORE_PATH_FLAG}`,
      code,
    );
  }
  if (is('SQLITE_BUSY') || is('SQLITE_LOCKED')) {
    return new StoreError(
      `event store ${file} is locked by another process (${why}); stop the other agent or program ` +
        `using it, or choose ${STORE_PATH_FLAG}`,
      code,
    );
  }
  if (is('SQLITE_CANTOPEN')) {
    return new StoreError(
      `cannot open event store ${file} (${why}); check that its directory exists and is writable, ` +
        `or choose ${STORE_PATH_FLAG}`,
      code,
    );
  }
  if (is('SQLITE_READONLY') || is('SQLITE_PERM') || is('SQLITE_AUTH')) {
    return new StoreError(
      `event store ${file} is read-only to the agent (${why}); make it and its directory writable, ` +
        `or choose ${STORE_PATH_FLAG}`,
      code,
    );
  }
  if (is('SQLITE_FULL')) {
    return new StoreError(
      `event store ${file}: the disk is full (${why}); free space, lower the store's size limit, ` +
        `or choose ${STORE_PATH_FLAG}`,
      code,
    );
  }
  if (is('SQLITE_IOERR')) {
    return new StoreError(
      `event store ${file}: I/O error while ${doing} (${why}); check the disk, or choose ${STORE_PATH_FLAG}`,
      code,
    );
  }
  return new StoreError(`event store ${file}: ${doing}: ${why}`, code || undefined);
}
