/**
 * Byte offsets, enums and limits of bpf/include/netpolicy.h. The unit test
 * test/unit/netpolicy-layout.test.ts compiles that header and checks every
 * number here against offsetof/sizeof and the C constants.
 */

export const Identity = { UNKNOWN: 0, HOST: 1, WORLD: 2, FIRST_LOCAL: 256 } as const;

export const Direction = { EGRESS: 0, INGRESS: 1 } as const;

export const VerdictKind = { FORWARDED: 1, DROPPED: 2, AUDIT: 3 } as const;

export const VerdictFlag = { DEFAULT_DENY: 1, DENY_RULE: 2, NO_POLICY: 4 } as const;

export const FlowEvent = { NEW: 1, ESTABLISHED: 2, CLOSED: 3, REVOKED: 4 } as const;

export const NP = {
  RULE_NONE: 0xffff,
  FAMILY_INET: 2,
  FAMILY_INET6: 10,
  PROTO_TCP: 6,
  PROTO_UDP: 17,
  CIDR_KEY_BITS: 64,
  PORT_KEY_BITS: 80,
  REC_FLOW: 32,
} as const;

export const Counter = {
  RINGBUF_DROP: 0,
  DROPPED: 1,
  AUDIT: 2,
  REVOKED: 3,
  UNCHECKED: 4,
  LIGHT: 5,
  COUNT: 8,
} as const;

export const VERDICT = { verdict: 0, flags: 1, rule: 2, policy: 4, SIZE: 8 } as const;

export const CONFIG = { generation: 0, SIZE: 8 } as const;

export const WORKLOAD = { identity: 0, flags: 4, SIZE: 8 } as const;

export const IPCACHE_KEY = { prefixlen: 0, family: 4, addr: 8, SIZE: 24 } as const;

export const ENDPOINT_KEY = { port: 0, proto: 2, SIZE: 4 } as const;

export const ENDPOINT = { identity: 0, cookie: 8, SIZE: 16 } as const;

export const DEFAULT_KEY = { identity: 0, dir: 4, slot: 5, SIZE: 8 } as const;

export const PEER_KEY = { identity: 0, remote: 4, dir: 8, slot: 9, SIZE: 12 } as const;

export const CLASS = { cls: 0, SIZE: 4 } as const;

export const CIDR_KEY = {
  prefixlen: 0,
  identity: 4,
  dir: 8,
  slot: 9,
  family: 10,
  addr: 12,
  SIZE: 28,
} as const;

export const PORT_KEY = {
  prefixlen: 0,
  identity: 4,
  dir: 8,
  slot: 9,
  proto: 10,
  cls: 12,
  port: 14,
  SIZE: 16,
} as const;

export const SOCK = { SIZE: 80 } as const;

export const UDP_PEER_KEY = { SIZE: 32 } as const;

export const UDP_PEER = { SIZE: 24 } as const;

export const FLOW = {
  type: 0,
  cpu: 2,
  size: 4,
  ktime: 8,
  pid: 16,
  tid: 20,
  cgroup_id: 24,
  cookie: 32,
  generation: 40,
  bytes_sent: 48,
  bytes_received: 56,
  src_identity: 64,
  dst_identity: 68,
  v: 72,
  event: 80,
  dir: 81,
  proto: 82,
  family: 83,
  src_port: 84,
  dst_port: 86,
  src_addr: 88,
  dst_addr: 104,
  SIZE: 120,
} as const;
