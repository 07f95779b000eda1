/**
 * Byte offsets, enums and limits of bpf/include/policy.h. The unit test
 * test/unit/tracing-layout.test.ts compiles that header and checks every
 * number here against offsetof/sizeof and the C constants.
 */

/** OSP_* limits */
export const OSP_LIMITS = {
  MAX_HOOKS: 64,
  MAX_ARGS: 5,
  MAX_SELECTORS: 5,
  MAX_ARG_FILTERS: 5,
  MAX_RET_FILTERS: 2,
  MAX_FILTER_VALS: 16,
  MAX_PID_FILTERS: 2,
  MAX_PIDS: 8,
  MAX_NS_FILTERS: 4,
  MAX_NS_VALS: 4,
  MAX_CAP_FILTERS: 3,
  MAX_FOLLOW: 8,
  STR_MAX: 4096,
  PREFIX_MAX: 252,
  POSTFIX_MAX: 128,
  SUBSTR_MAX: 32,
  SUBSTR_SCAN: 256,
  SUBSTR_VALS: 4,
  DATA_SIZE: 32768,
  STR_BUCKETS: 8,
  NO_ARG: 0xff,
  SIZE_RET: 0xfe,
  ARG_RETURN: 0xff,
  NO_SELECTOR: 0xff,
  NO_HOOK: 0xffffffff,
} as const;

export const HookKind = { PLAIN: 0, ENTER: 1, EXIT: 2 } as const;

export const ArgType = {
  NONE: 0,
  INT: 1,
  STRING: 2,
  CHAR_BUF: 3,
  FD: 4,
  SOCKADDR: 5,
  STR_LOC: 6,
  STR_ARRAY: 7,
} as const;

export const Op = {
  EQ: 1,
  NEQ: 2,
  PREFIX: 3,
  NOT_PREFIX: 4,
  POSTFIX: 5,
  NOT_POSTFIX: 6,
  SUBSTRING: 7,
  MASK: 8,
  GT: 9,
  LT: 10,
  IN_RANGE: 11,
  NOT_IN_RANGE: 12,
  IN_MAP: 13,
  NOT_IN_MAP: 14,
  ADDR: 15,
  NOT_ADDR: 16,
  PORT: 17,
  NOT_PORT: 18,
  FAMILY: 19,
} as const;

export const SetOp = { IN: 1, NOT_IN: 2, PREFIX: 3, NOT_PREFIX: 4, POSTFIX: 5, NOT_POSTFIX: 6 } as const;

export const Action = { NONE: 0, SIGKILL: 1, SIGNAL: 2, NOTIFY: 3 } as const;

export const ActionResult = { NONE: 0, TAKEN: 1, MONITORED: 2, REFUSED: 3, FAILED: 4 } as const;

export const RateScope = { THREAD: 0, PROCESS: 1, GLOBAL: 2 } as const;

export const Counter = {
  POSTED: 0,
  TAKEN: 1,
  MONITORED: 2,
  REFUSED: 3,
  RATE_LIMITED: 4,
  RINGBUF_DROP: 5,
  PENDING_DROP: 6,
  ACTION_FAILED: 7,
  COUNT: 8,
} as const;

export const FilterFlag = { SIGNED: 1, INT: 2 } as const;

export const ArgFlag = { TRUNCATED: 1, FAULT: 2, NO_FILE: 4, AT_RETURN: 8 } as const;

export const EventFlag = { RET: 1 } as const;

export const REC_TRACING = 16;

export const ARG_SPEC = {
  offset: 0,
  size: 2,
  type: 3,
  is_signed: 4,
  size_arg: 5,
  max_bytes: 6,
  SIZE: 8,
} as const;

export const HOOK = {
  kind: 0,
  pair: 4,
  nargs: 8,
  nsel: 12,
  ret_offset: 16,
  ret_size: 18,
  ret_signed: 19,
  next: 20,
  args: 24,
  quick_n: 64,
  quick_arg: 65,
  quick_ids: 68,
  SIZE: 88,
} as const;

export const FILTER = { arg: 0, op: 1, nvals: 2, flags: 3, id: 4, vals: 8, SIZE: 136 } as const;

export const PID_FILTER = { op: 0, follow_forks: 1, ns_pid: 2, n: 3, pids: 4, SIZE: 36 } as const;

export const NS_FILTER = { ns: 0, op: 1, n: 2, inum: 4, SIZE: 20 } as const;

export const CAP_FILTER = { set: 0, op: 1, mask: 8, SIZE: 16 } as const;

export const BIN_FILTER = { op: 0, follow: 1, follow_bit: 2, id: 4, SIZE: 8 } as const;

export const SELECTOR = {
  nargf: 0,
  nretf: 1,
  npid: 2,
  nns: 3,
  ncap: 4,
  post: 5,
  rate_scope: 6,
  action: 7,
  signal: 8,
  rate_ns: 16,
  bin: 24,
  pbin: 32,
  argf: 40,
  retf: 720,
  pid: 992,
  ns: 1064,
  cap: 1144,
  SIZE: 1192,
} as const;

export const CONFIG = {
  mode: 0,
  agent_pid: 4,
  scope_cgroup: 8,
  policy_id: 12,
  nfollow: 16,
  SIZE: 24,
} as const;

export const INT_KEY = { id: 0, value: 8, SIZE: 16 } as const;

/** Equal-map keys; a bucket's key is the first 8 + (32 << b) bytes */
export const STR_KEY = { id: 0, len: 4, data: 8, SIZE: 4104 } as const;

export const PREFIX_KEY = { prefixlen: 0, id: 4, data: 8, SIZE: 260 } as const;

export const POSTFIX_KEY = { prefixlen: 0, id: 4, data: 8, SIZE: 136 } as const;

export const ADDR_KEY = { prefixlen: 0, id: 4, family: 8, addr: 12, SIZE: 28 } as const;

export const PENDING_KEY = { pid_tgid: 0, hook: 8, SIZE: 16 } as const;

export const NEEDLE = { len: 0, data: 4, SIZE: 36 } as const;

export const EVENT = {
  hdr: 0,
  policy_id: 24,
  hook: 28,
  selector: 30,
  nargs: 31,
  action: 32,
  result: 33,
  signal: 34,
  flags: 35,
  data_len: 36,
  ret: 40,
  SIZE: 48,
} as const;

export const ARG_REC = { type: 0, flags: 1, len: 2, SIZE: 4 } as const;

export const SOCKADDR = { family: 0, port: 2, addr: 4, SIZE: 20 } as const;
