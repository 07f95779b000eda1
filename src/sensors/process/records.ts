/**
 * Decoded kernel records of the process sensor, one per ring-buffer record.
 * Field meanings follow bpf/include/records.h.
 */

export interface RecordHeader {
  /** ktime (CLOCK_MONOTONIC ns) when the kernel made the record */
  ktime: bigint;
  cpu: number;
  /** thread-group id */
  pid: number;
  tid: number;
}

export const NS_NAMES = [
  'uts',
  'ipc',
  'mnt',
  'pid',
  'pid_for_children',
  'net',
  'time',
  'time_for_children',
  'cgroup',
  'user',
] as const;
export type NamespaceName = (typeof NS_NAMES)[number];

export interface ExecRecord extends RecordHeader {
  kind: 'exec';
  ppid: number;
  uid: number;
  euid: number;
  gid: number;
  egid: number;
  suid: number;
  sgid: number;
  /** login uid; 4294967295 when unset */
  auid: number;
  flags: number;
  /** links of the executed file: 0 means deleted or memfd */
  nlink: number;
  ino: bigint;
  cgroupId: bigint;
  /** task->start_time, CLOCK_MONOTONIC ns */
  startTime: bigint;
  parentStartTime: bigint;
  capPermitted: bigint;
  capEffective: bigint;
  capInheritable: bigint;
  ns: Record<NamespaceName, number>;
  fileUid: number;
  fileGid: number;
  fileMode: number;
  argc: number;
  /** the executed file's absolute path as the kernel resolved it */
  path: string;
  /** the filename as passed to execve */
  filename: string;
  /** argv[0..], possibly truncated (see flags) */
  argv: string[];
  cwd: string;
}

export interface ForkRecord extends RecordHeader {
  kind: 'fork';
  ppid: number;
  startTime: bigint;
  parentStartTime: bigint;
  cgroupId: bigint;
}

export interface ExitRecord extends RecordHeader {
  kind: 'exit';
  ppid: number;
  /** wait(2) status: (code << 8) | signal */
  exitCode: number;
  startTime: bigint;
  cgroupId: bigint;
}

export type ProcessRecord = ExecRecord | ForkRecord | ExitRecord;

/** Mirrors enum osprey_exec_flags. */
export const ExecFlags = {
  ARGS_TRUNCATED: 1 << 0,
  PATH_TRUNCATED: 1 << 1,
  CWD_TRUNCATED: 1 << 2,
  SETUID: 1 << 3,
  SETGID: 1 << 4,
  FILENAME_TRUNCATED: 1 << 5,
  ARGS_FAULT: 1 << 6,
  CWD_UNREACHABLE: 1 << 7,
} as const;
