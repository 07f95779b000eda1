/**
 * The store's schema as an ordered list of migrations. A migration is never
 * edited once released: a change is a new entry, so every existing file can
 * be brought forward step by step. schema_version holds the last one applied.
 */

/** "OSPR": marks the file as an Osprey store, so another program's database is not taken for one. */
export const APPLICATION_ID = 0x4f535052;

export const MIGRATIONS: readonly string[] = [
  // 1: events and processes
  `
  CREATE TABLE events (
    id             INTEGER PRIMARY KEY,
    time_ns        INTEGER NOT NULL,
    type           TEXT NOT NULL,
    exec_id        TEXT,
    parent_exec_id TEXT,
    pid            INTEGER,
    binary         TEXT,
    policy_name    TEXT,
    node_name      TEXT,
    json           TEXT NOT NULL
  );
  CREATE INDEX events_time ON events (time_ns);
  CREATE INDEX events_type_time ON events (type, time_ns);
  CREATE INDEX events_exec_time ON events (exec_id, time_ns) WHERE exec_id IS NOT NULL;
  CREATE INDEX events_policy_time ON events (policy_name, time_ns) WHERE policy_name IS NOT NULL;

  CREATE TABLE processes (
    exec_id        TEXT PRIMARY KEY,
    parent_exec_id TEXT,
    pid            INTEGER NOT NULL,
    binary         TEXT NOT NULL,
    arguments      TEXT NOT NULL DEFAULT '',
    start_time     TEXT,
    exit_time      TEXT,
    exit_time_ns   INTEGER,
    exit_status    INTEGER,
    exit_signal    TEXT,
    -- when an event last named it: retention keys on this for processes that never exited
    last_seen_ns   INTEGER NOT NULL,
    json           TEXT NOT NULL
  );
  CREATE INDEX processes_parent ON processes (parent_exec_id) WHERE parent_exec_id IS NOT NULL;
  CREATE INDEX processes_retire ON processes (coalesce(exit_time_ns, last_seen_ns));
  `,
  // 2: the parts processes share (capability sets, namespaces, workload), kept
  // once; a process row names them by id ({"$part": id}), keyed by their JSON's
  // hash. seen_ns: at most an hour before any process row naming it was
  // written, so retention can drop parts no process row can name any more
  `
  CREATE TABLE process_parts (
    id      TEXT PRIMARY KEY,
    json    TEXT NOT NULL,
    seen_ns INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  // 3: events kept in blocks (see blocks.ts); prepareFile moves the rows of
  // the events table into blocks and drops it in the same transaction
  `
  CREATE TABLE event_blocks (
    id     INTEGER PRIMARY KEY,
    min_ns INTEGER NOT NULL,
    max_ns INTEGER NOT NULL,
    count  INTEGER NOT NULL,
    meta   BLOB NOT NULL,
    dict   TEXT NOT NULL,
    text   BLOB NOT NULL
  );
  CREATE INDEX event_blocks_time ON event_blocks (max_ns);
  CREATE TABLE event_block_keys (
    key   TEXT NOT NULL,
    block INTEGER NOT NULL,
    PRIMARY KEY (key, block)
  ) WITHOUT ROWID;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;
