/**
 * Byte offsets of the records in bpf/include/records.h. The layout test
 * compiles that header and checks every number here against offsetof/sizeof.
 */
export const HDR = { type: 0, cpu: 2, size: 4, ktime: 8, pid: 16, tid: 20, SIZE: 24 } as const;

export const EXEC = {
  ppid: 24,
  uid: 28,
  euid: 32,
  gid: 36,
  egid: 40,
  suid: 44,
  sgid: 48,
  auid: 52,
  flags: 56,
  nlink: 60,
  ino: 64,
  cgroup_id: 72,
  start_time: 80,
  parent_start_time: 88,
  cap_permitted: 96,
  cap_effective: 104,
  cap_inheritable: 112,
  ns: 120,
  file_uid: 160,
  file_gid: 164,
  file_mode: 168,
  path_len: 172,
  filename_len: 174,
  args_len: 176,
  cwd_len: 180,
  argc: 184,
  SIZE: 192,
} as const;

export const FORK = { ppid: 24, start_time: 32, parent_start_time: 40, cgroup_id: 48, SIZE: 56 } as const;

export const EXIT = { ppid: 24, exit_code: 28, start_time: 32, cgroup_id: 40, SIZE: 48 } as const;

export const RecordType = { EXEC: 1, FORK: 2, EXIT: 3 } as const;

/** Mirrors the OSPREY_* limits */
export const LIMITS = { PATH_MAX: 4096, ARGS_MAX: 32768 } as const;

/** struct osprey_config */
export const CONFIG = { args_max: 0, scope_cgroup: 4, agent_pid: 8, SIZE: 16 } as const;

/** enum osprey_drop_index */
export const DROP = { RINGBUF: 0, ARGS: 1, COUNT: 4 } as const;

/** struct osprey_proc: an entry of the kernel's process table (osprey_procs) */
export const PROC = {
  exec_ktime: 0,
  ppid: 8,
  flags: 12,
  bin_len: 16,
  exit_pid: 20,
  follow: 24,
  binary: 32,
  BINARY_MAX: 256,
  SIZE: 288,
} as const;

/** enum osprey_proc_flags */
export const ProcFlags = { EXEC: 1, CLONE: 2, PROCFS: 4, PREPARED: 8 } as const;
