/**
 * Exported event shapes: Tetragon's JSON export (snake_case), so pipelines
 * built for it read Osprey's events unchanged. Optional fields are omitted
 * from JSON when absent, as protojson does.
 */

export interface Capabilities {
  permitted?: string[];
  effective?: string[];
  inheritable?: string[];
}

export interface Namespace {
  inum: number;
  is_host?: boolean;
}

export interface Namespaces {
  uts?: Namespace;
  ipc?: Namespace;
  mnt?: Namespace;
  pid?: Namespace;
  pid_for_children?: Namespace;
  net?: Namespace;
  time?: Namespace;
  time_for_children?: Namespace;
  cgroup?: Namespace;
  user?: Namespace;
}

export interface BinaryProperties {
  /** the euid the setuid bit gave */
  setuid?: number;
  setgid?: number;
  /** privileges gained through setuid/setgid or file capabilities */
  privileges_changed?: string[];
  file?: { inode?: { number: string; links: number } };
}

export interface Workload {
  cgroup_id: string;
  cgroup_path: string;
  labels?: Record<string, string>;
}

export interface Credentials {
  uid: number;
  gid: number;
  euid: number;
  egid: number;
  suid: number;
  sgid: number;
}

export interface Process {
  exec_id: string;
  pid: number;
  uid: number;
  cwd: string;
  binary: string;
  arguments: string;
  /** "execve", "procFS" (seeded), "clone" (forked without exec), with " truncArgs" etc. appended */
  flags: string;
  start_time: string;
  auid: number;
  parent_exec_id?: string;
  tid: number;
  cap?: Capabilities;
  ns?: Namespaces;
  binary_properties?: BinaryProperties;
  process_credentials?: Credentials;
  /** for a script: the interpreter the kernel ran it with */
  interpreter?: string;
  /** ppid as the kernel reported it (even when the parent is unknown to the cache) */
  ppid?: number;
  workload?: Workload;
  /** number of references the cache holds; Tetragon reports it, we keep the name */
  refcnt?: number;
}

export interface ProcessExec {
  process: Process;
  parent?: Process;
  ancestors?: Process[];
}

export interface ProcessExit {
  process: Process;
  parent?: Process;
  /** signal name, e.g. "SIGKILL", when a signal ended it */
  signal?: string;
  status?: number;
  time: string;
}

export interface EventBase {
  node_name: string;
  time: string;
}

export type ExportEvent =
  | (EventBase & { process_exec: ProcessExec })
  | (EventBase & { process_exit: ProcessExit })
  | (EventBase & Record<string, unknown>);

/** The event kinds Osprey emits, as named in the JSON (`--event-types`). */
export const EVENT_TYPES = [
  'process_exec',
  'process_exit',
  'process_kprobe',
  'process_tracepoint',
  'flow',
  'rate_limit_info',
] as const;
export type EventType = (typeof EVENT_TYPES)[number] | string;

/** Name of the one top-level payload key of an export event. */
export function eventType(ev: ExportEvent): string {
  // for...in, not Object.keys: no array per event (events are plain objects, the payload's key first)
  for (const k in ev) {
    if (k !== 'node_name' && k !== 'time' && k !== 'aggregation_info') return k;
  }
  return 'unknown';
}
