/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Workload network policy: the tables the compiler (src/netpolicy/compile.ts)
 * fills and bpf/netpolicy.bpf.c reads, and the flow record it posts.
 *
 * The TypeScript mirror is src/sensors/network/layout.ts;
 * test/unit/netpolicy-layout.test.ts compiles this header and checks that
 * every size, offset and constant agrees.
 *
 * A verdict takes at most four lookups, none of which walks rules:
 *   1. np_workloads  (cgroup id)                         -> local identity
 *   2. remote identity: np_ipcache LPM (address) says whether the peer is
 *      this host; if so np_endpoints (port, proto) names the local workload
 *      bound to that port; otherwise the peer is "world"
 *   3. peer class: np_peers (identity, dir, remote identity) for local peers,
 *      np_cidrs LPM (identity, dir, address) for world peers. A class stands
 *      for the set of rules whose L3 part (toEndpoints/toEntities/toCIDR...)
 *      selects that peer; the compiler numbers the distinct sets.
 *   4. np_ports LPM (identity, dir, class, proto, port) -> verdict, over the
 *      port ranges the compiler split into disjoint atoms.
 * A miss in 3 is class 0 (rules without an L3 part); a miss in 4 is the
 * direction's default, from np_defaults.
 *
 * Every table key carries a slot (0 or 1). The compiler writes the new tables
 * into the slot not in use, then flips np_config.generation, whose low bit
 * is the active slot: the kernel sees the old tables or the new ones, never a
 * mix. Sockets remember the generation their verdict was made at, and
 * established traffic is re-checked when it changed.
 */
#ifndef OSPREY_NETPOLICY_H
#define OSPREY_NETPOLICY_H

#ifndef __OSPREY_KERNEL_TYPES
#include <stdint.h>
typedef uint8_t __u8;
typedef uint16_t __u16;
typedef uint32_t __u32;
typedef uint64_t __u64;
#endif

/* reserved identities (the numbers Cilium uses) */
#define NP_ID_UNKNOWN 0
#define NP_ID_HOST 1
#define NP_ID_WORLD 2
/* workload identities are allocated from here */
#define NP_ID_FIRST_LOCAL 256

enum np_direction {
	NP_DIR_EGRESS = 0,
	NP_DIR_INGRESS = 1,
};

enum np_verdict_kind {
	NP_VERDICT_FORWARDED = 1,
	NP_VERDICT_DROPPED = 2,
	NP_VERDICT_AUDIT = 3,  /* a policy in audit mode would have dropped it */
};

/* np_verdict.flags */
enum np_verdict_flags {
	NP_VF_DEFAULT_DENY = 1 << 0, /* no rule allowed it and the direction is default-deny */
	NP_VF_DENY_RULE = 1 << 1,    /* decided by an egressDeny/ingressDeny rule */
	NP_VF_NO_POLICY = 1 << 2,    /* no policy selects the workload in this direction */
};

/* np_flow.event */
enum np_flow_event {
	NP_EV_NEW = 1,          /* connect(), sendmsg() to a new peer, inbound SYN/datagram */
	NP_EV_ESTABLISHED = 2,  /* TCP handshake done */
	NP_EV_CLOSED = 3,       /* TCP socket closed, with byte counts */
	NP_EV_REVOKED = 4,      /* a policy change took the permission of an open connection away */
};

#define NP_RULE_NONE 0xffff
#define NP_FAMILY_INET 2
#define NP_FAMILY_INET6 10
#define NP_PROTO_TCP 6
#define NP_PROTO_UDP 17

/* What decided: verdict kind, which policy (np id) and which rule of it. */
struct np_verdict {
	__u8 verdict;   /* enum np_verdict_kind */
	__u8 flags;     /* enum np_verdict_flags */
	__u16 rule;     /* index in the policy's egress/egressDeny/ingress/ingressDeny list, or NP_RULE_NONE */
	__u32 policy;   /* policy id given by the compiler; 0 = none */
};

/*
 * np_flow_skip[0] (a __u32): bit (1 << enum np_flow_event) set = that event
 * of a FORWARDED flow is not posted. Zero (the default) posts every flow;
 * DROPPED and AUDIT flows and REVOKED events are always posted.
 */

/* np_config[0]: the generation; generation & 1 is the active table slot */
struct np_config {
	__u64 generation;
};

/* np_workloads: cgroup id -> workload */
struct np_workload {
	__u32 identity;
	__u32 flags;      /* NP_WF_* */
};

/* its sockets from before the hooks were attached are marked (np_sockets_pass): light connections may start */
#define NP_WF_MARKED 1

/* np_ipcache LPM: addresses of this host (-> NP_ID_HOST) */
struct np_ipcache_key {
	__u32 prefixlen;  /* 32 + address bits */
	__u32 family;
	__u8 addr[16];
};

/* np_endpoints: local port -> the workload whose socket holds it */
struct np_endpoint_key {
	__u16 port;       /* host order */
	__u8 proto;
	__u8 pad;
};

struct np_endpoint {
	__u32 identity;
	__u32 pad;
	__u64 cookie;     /* socket that holds the port: only it may remove the entry */
};

/* np_defaults: (identity, direction, slot) -> the verdict when no rule decides */
struct np_default_key {
	__u32 identity;
	__u8 dir;
	__u8 slot;
	__u16 pad;
};

/* np_peers: local peer (host or workload identity) -> peer class */
struct np_peer_key {
	__u32 identity;
	__u32 remote;
	__u8 dir;
	__u8 slot;
	__u16 pad;
};

struct np_class {
	__u32 cls;
};

/* np_cidrs LPM: world address -> peer class */
struct np_cidr_key {
	__u32 prefixlen;  /* NP_CIDR_KEY_BITS + address bits */
	__u32 identity;
	__u8 dir;
	__u8 slot;
	__u8 family;
	__u8 pad;
	__u8 addr[16];
};
#define NP_CIDR_KEY_BITS 64

/* np_ports LPM: (class, proto, port prefix) -> verdict */
struct np_port_key {
	__u32 prefixlen;  /* NP_PORT_KEY_BITS + port bits */
	__u32 identity;
	__u8 dir;
	__u8 slot;
	__u8 proto;
	__u8 pad;
	__u16 cls;        /* fully matched: byte order does not matter */
	__u16 port;       /* big-endian: the prefix bits are the port's high bits */
};
#define NP_PORT_KEY_BITS 80

/*
 * What a socket remembers (np_sockets, socket storage): which way it was
 * opened, with whom, and the verdict and the generation it was made at.
 */
struct np_sock {
	__u64 generation;
	__u64 cgroup_id;
	__u64 cookie;
	struct np_verdict v;
	__u32 identity;
	__u32 remote_identity;
	__u8 dir;
	__u8 proto;
	__u8 family;
	__u8 flags;       /* enum np_sock_flags */
	__u16 local_port; /* host order */
	__u16 remote_port;/* host order */
	__u8 remote_addr[16];
	__u8 local_addr[16];
};

enum np_sock_flags {
	NP_SF_CONNECTED = 1 << 0, /* remote_* is the one peer of the socket */
	NP_SF_PORT_KNOWN = 1 << 1,/* the local port is in np_endpoints */
	NP_SF_FIN_IN = 1 << 2,    /* the peer's FIN passed ingress: bytes_received counts it */
	NP_SF_WANT_CLOSE = 1 << 3,/* its CLOSED flow is wanted: state changes call back, FIN is watched */
	NP_SF_UNJUDGED = 1 << 4,  /* open before the hooks were attached: left alone */
};

/* np_pass[0]: what np_sockets_pass does on its next run */
enum np_pass_op {
	NP_PASS_NONE = 0,
	NP_PASS_PROMOTE = 1,
	NP_PASS_MARK = 2,
};

struct np_pass {
	__u64 cgroup_id;  /* NP_PASS_MARK: the cgroup just attached */
	__u32 op;
	__u32 pad;
};

/* np_udp_peers LRU: (socket, peer) pairs a UDP socket sent to, so replies pass ingress */
struct np_udp_peer_key {
	__u64 cookie;
	__u8 addr[16];
	__u16 port;       /* host order */
	__u16 family;
	__u32 pad;
};

struct np_udp_peer {
	__u64 generation; /* of the verdict below */
	struct np_verdict v;
	__u8 dir;         /* who spoke first: NP_DIR_EGRESS = this socket */
	__u8 pad[7];
};

#define NP_REC_FLOW 32

/*
 * One flow record. src is always the connection's initiator's side of this
 * packet/attempt for NEW; for ESTABLISHED/CLOSED/REVOKED it is the local end
 * for egress connections and the remote end for ingress ones, so src -> dst
 * is always initiator -> responder.
 */
struct np_flow {
	/* the first 24 bytes are struct osprey_hdr's layout */
	__u16 type;       /* NP_REC_FLOW */
	__u16 cpu;
	__u32 size;
	__u64 ktime;
	__u32 pid;        /* 0 when posted outside process context */
	__u32 tid;
	__u64 cgroup_id;  /* the local workload's cgroup */
	__u64 cookie;     /* socket cookie: ties NEW/ESTABLISHED/CLOSED of one connection */
	__u64 generation; /* policy generation of the verdict */
	__u64 bytes_sent;     /* CLOSED: payload bytes sent, retransmissions not counted twice */
	__u64 bytes_received; /* CLOSED: payload bytes received */
	__u32 src_identity;
	__u32 dst_identity;
	struct np_verdict v;
	__u8 event;       /* enum np_flow_event */
	__u8 dir;         /* enum np_direction, seen from the local workload */
	__u8 proto;
	__u8 family;
	__u16 src_port;   /* host order */
	__u16 dst_port;
	__u8 src_addr[16];
	__u8 dst_addr[16];
};

/* per-CPU counters in np_counters */
enum np_counter {
	NP_CNT_RINGBUF_DROP = 0,  /* flow records lost: ring full */
	NP_CNT_DROPPED = 1,       /* connections/packets refused */
	NP_CNT_AUDIT = 2,         /* would have been refused (audit) */
	NP_CNT_REVOKED = 3,       /* packets of revoked connections dropped */
	NP_CNT_UNCHECKED = 4,     /* open connections the socket pass could not give storage */
	NP_CNT_LIGHT = 5,         /* connections opened without socket storage (light()) */
	NP_CNT_COUNT = 8,
};

#endif
