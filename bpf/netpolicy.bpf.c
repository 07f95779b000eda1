// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Workload network policy: verdicts at the cgroup socket hooks of workload
 * cgroups, flow records into a ring buffer. See bpf/include/netpolicy.h for
 * the tables and how one verdict is found.
 *
 * Hooks, attached to each workload's cgroup:
 *   cgroup/connect4,6       TCP connect() and UDP connect(): refuse -> EPERM
 *   cgroup/sendmsg4,6       unconnected UDP sendto(): refuse -> EPERM
 *   cgroup_skb/ingress      inbound SYNs and datagrams: drop; every packet of
 *                           a connection re-checked when the generation moved
 *   cgroup_skb/egress       the same re-check for outbound packets, so a
 *                           revoked permission cuts an open connection
 *   sockops                 ESTABLISHED and CLOSED (with byte counts) flows
 *   cgroup/post_bind4,6     which workload holds which local port
 *   cgroup/sock_release     forget it again
 *   iter/tcp                run by the agent: gives socket storage to open
 *                           connections that have none (np_sockets_pass)
 *
 * A socket's state (its verdict, the generation of the tables it was decided
 * at, its peer) lives in socket storage, created at connect(), except for
 * the commonest connection of all when the agent wants no ESTABLISHED or
 * CLOSED flow of it: an allowed TCP connection to the world. Creating socket
 * storage costs two allocations charged to a memory cgroup, most of what
 * connect() cost; such a connection has nothing to be re-checked against
 * until the tables change, and when they do the agent runs np_sockets_pass,
 * which gives each of them storage holding an old generation, so its next
 * packet is judged by the new tables (and a revoked one is cut).
 *
 * Ingress is enforced in cgroup_skb/ingress because it is the one hook that
 * sees the peer's packet before the socket accepts it, for TCP (the SYN) and
 * UDP alike; post_bind/sock_ops run too late or not per packet.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#define __OSPREY_KERNEL_TYPES
#include "netpolicy.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define ETH_P_IP_BE 0x0008    /* htons(0x0800) */
#define ETH_P_IPV6_BE 0xDD86  /* htons(0x86DD) */
#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_ACK 0x10

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct np_config);
} np_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct np_workload);
} np_workloads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct np_ipcache_key);
	__type(value, __u32);
} np_ipcache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct np_endpoint_key);
	__type(value, struct np_endpoint);
} np_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct np_default_key);
	__type(value, struct np_verdict);
} np_defaults SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct np_peer_key);
	__type(value, struct np_class);
} np_peers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct np_cidr_key);
	__type(value, struct np_class);
} np_cidrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct np_port_key);
	__type(value, struct np_verdict);
} np_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct np_sock);
} np_sockets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct np_udp_peer_key);
	__type(value, struct np_udp_peer);
} np_udp_peers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} np_flows SEC(".maps");

#include "ringwake.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NP_CNT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} np_counters SEC(".maps");

/*
 * np_flow_skip[0]: bit (1 << event) set = do not post that event of FORWARDED
 * flows.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} np_flow_skip SEC(".maps");

/* np_pass[0]: what the next run of np_sockets_pass does */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct np_pass);
} np_pass SEC(".maps");

/* The remote end of a decision. */
struct peer {
	__u8 family;
	__u8 proto;
	__u16 port;        /* the peer's port, host order */
	__u16 local_port;  /* ours, host order */
	__u16 pad;
	__u8 addr[16];
};

static __always_inline void count(__u32 idx)
{
	__u64 *n = bpf_map_lookup_elem(&np_counters, &idx);

	if (n)
		__sync_fetch_and_add(n, 1);
}

static __always_inline __u64 current_generation(void)
{
	__u32 zero = 0;
	struct np_config *c = bpf_map_lookup_elem(&np_config, &zero);

	return c ? c->generation : 0;
}

static __always_inline void copy16(__u8 *dst, const __u8 *src)
{
	__builtin_memcpy(dst, src, 16);
}

static __always_inline void set_v4(__u8 *addr, __u32 be)
{
	__builtin_memset(addr, 0, 16);
	__builtin_memcpy(addr, &be, 4);
}

static __always_inline void set_v6(__u8 *addr, __u32 a0, __u32 a1, __u32 a2, __u32 a3)
{
	__u32 w[4] = { a0, a1, a2, a3 };

	__builtin_memcpy(addr, w, 16);
}

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 address it maps. */
static __always_inline __u8 normalize(__u8 family, __u8 *addr)
{
	__u32 w[4];

	if (family != NP_FAMILY_INET6)
		return family;
	__builtin_memcpy(w, addr, 16);
	if (w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0xffff)) {
		set_v4(addr, w[3]);
		return NP_FAMILY_INET;
	}
	return family;
}

/*
 * Who the peer is: a local workload (this host's address, on a port a
 * workload's socket holds), the host, or the world.
 */
static __always_inline __u32 remote_identity(const struct peer *p)
{
	struct np_ipcache_key k = {};
	struct np_endpoint_key ek = {};
	struct np_endpoint *ep;

	k.prefixlen = 32 + (p->family == NP_FAMILY_INET ? 32 : 128);
	k.family = p->family;
	copy16(k.addr, p->addr);
	if (!bpf_map_lookup_elem(&np_ipcache, &k))
		return NP_ID_WORLD;
	ek.port = p->port;
	ek.proto = p->proto;
	ep = bpf_map_lookup_elem(&np_endpoints, &ek);
	return ep ? ep->identity : NP_ID_HOST;
}

/* The verdict for (local identity, direction) with this peer, in table slot gen & 1. */
static __always_inline void decide(struct np_verdict *out, __u32 identity, __u8 dir, __u32 remote,
				   const struct peer *p, __u64 gen)
{
	__u8 slot = gen & 1;
	struct np_class *c;
	struct np_verdict *v;
	struct np_port_key pk = {};
	struct np_default_key dk = {};
	__u32 cls = 0;

	if (remote == NP_ID_WORLD) {
		struct np_cidr_key ck = {};

		ck.prefixlen = NP_CIDR_KEY_BITS + (p->family == NP_FAMILY_INET ? 32 : 128);
		ck.identity = identity;
		ck.dir = dir;
		ck.slot = slot;
		ck.family = p->family;
		copy16(ck.addr, p->addr);
		c = bpf_map_lookup_elem(&np_cidrs, &ck);
	} else {
		struct np_peer_key k = {};

		k.identity = identity;
		k.remote = remote;
		k.dir = dir;
		k.slot = slot;
		c = bpf_map_lookup_elem(&np_peers, &k);
	}
	if (c)
		cls = c->cls;

	pk.prefixlen = NP_PORT_KEY_BITS + 16;
	pk.identity = identity;
	pk.dir = dir;
	pk.slot = slot;
	pk.proto = p->proto;
	pk.cls = cls;
	pk.port = bpf_htons(dir == NP_DIR_EGRESS ? p->port : p->local_port);
	v = bpf_map_lookup_elem(&np_ports, &pk);
	if (v) {
		*out = *v;
		return;
	}
	dk.identity = identity;
	dk.dir = dir;
	dk.slot = slot;
	v = bpf_map_lookup_elem(&np_defaults, &dk);
	if (v) {
		*out = *v;
		return;
	}
	out->verdict = NP_VERDICT_FORWARDED;
	out->flags = NP_VF_NO_POLICY;
	out->rule = NP_RULE_NONE;
	out->policy = 0;
}

static __always_inline void count_verdict(const struct np_verdict *v)
{
	if (v->verdict == NP_VERDICT_DROPPED)
		count(NP_CNT_DROPPED);
	else if (v->verdict == NP_VERDICT_AUDIT)
		count(NP_CNT_AUDIT);
}

/* The agent may want fewer flows of allowed traffic; drops and audits always go out. */
static __always_inline bool flow_skipped(const struct np_sock *s, __u8 event)
{
	__u32 zero = 0;
	__u32 *skip;

	if (s->v.verdict != NP_VERDICT_FORWARDED)
		return false;
	skip = bpf_map_lookup_elem(&np_flow_skip, &zero);
	return skip && ((*skip >> (event & 31)) & 1);
}

/*
 * Post a flow record about socket state s. src -> dst is initiator ->
 * responder: the local end first for egress, the peer first for ingress.
 */
static __always_inline void emit(__u8 event, const struct np_sock *s, __u64 pid_tgid, __u64 sent, __u64 rcvd)
{
	if (flow_skipped(s, event))
		return;

	struct np_flow *f = bpf_ringbuf_reserve(&np_flows, sizeof(*f), 0);

	if (!f) {
		count(NP_CNT_RINGBUF_DROP);
		return;
	}
	f->type = NP_REC_FLOW;
	f->cpu = bpf_get_smp_processor_id();
	f->size = sizeof(*f);
	f->ktime = bpf_ktime_get_ns();
	f->pid = pid_tgid >> 32;
	f->tid = (__u32)pid_tgid;
	f->cgroup_id = s->cgroup_id;
	f->cookie = s->cookie;
	f->generation = s->generation;
	f->bytes_sent = sent;
	f->bytes_received = rcvd;
	f->v = s->v;
	f->event = event;
	f->dir = s->dir;
	f->proto = s->proto;
	f->family = s->family;
	if (s->dir == NP_DIR_EGRESS) {
		f->src_identity = s->identity;
		f->dst_identity = s->remote_identity;
		f->src_port = s->local_port;
		f->dst_port = s->remote_port;
		copy16(f->src_addr, s->local_addr);
		copy16(f->dst_addr, s->remote_addr);
	} else {
		f->src_identity = s->remote_identity;
		f->dst_identity = s->identity;
		f->src_port = s->remote_port;
		f->dst_port = s->local_port;
		copy16(f->src_addr, s->remote_addr);
		copy16(f->dst_addr, s->local_addr);
	}
	ring_submit(&np_flows, f);
}

/*
 * The verdict of an open connection at generation gen: unchanged while the
 * tables are, re-decided (and a REVOKED flow posted when it turns into a
 * drop) once they changed. Returns 1 to let the packet pass.
 */
static __always_inline int recheck(struct np_sock *s, __u64 gen)
{
	struct np_workload *w;
	struct peer p = {};
	__u8 before;

	if (s->generation != gen) {
		w = bpf_map_lookup_elem(&np_workloads, &s->cgroup_id);
		if (w)
			s->identity = w->identity;
		p.family = s->family;
		p.proto = s->proto;
		p.port = s->remote_port;
		p.local_port = s->local_port;
		copy16(p.addr, s->remote_addr);
		s->remote_identity = remote_identity(&p);
		before = s->v.verdict;
		decide(&s->v, s->identity, s->dir, s->remote_identity, &p, gen);
		s->generation = gen;
		if (s->v.verdict == NP_VERDICT_DROPPED && before != NP_VERDICT_DROPPED)
			emit(NP_EV_REVOKED, s, 0, 0, 0);
	}
	if (s->v.verdict == NP_VERDICT_DROPPED) {
		count(NP_CNT_REVOKED);
		return 0;
	}
	return 1;
}

/* ---- egress: connect() and sendto() ---------------------------------- */

static __always_inline int read_user_addr(struct bpf_sock_addr *ctx, __u8 family, struct peer *p)
{
	p->proto = ctx->protocol;
	if (p->proto != NP_PROTO_TCP && p->proto != NP_PROTO_UDP)
		return -1;
	p->port = bpf_ntohs((__u16)ctx->user_port);
	if (family == NP_FAMILY_INET)
		set_v4(p->addr, ctx->user_ip4);
	else
		set_v6(p->addr, ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3]);
	p->family = normalize(family, p->addr);
	return 0;
}

static __always_inline void fill_sock(struct np_sock *s, const struct peer *p, __u8 dir, __u32 identity,
				      __u32 remote, const struct np_verdict *v, __u64 gen, __u64 cgid,
				      __u64 cookie)
{
	s->generation = gen;
	s->cgroup_id = cgid;
	s->cookie = cookie;
	s->v = *v;
	s->identity = identity;
	s->remote_identity = remote;
	s->dir = dir;
	s->proto = p->proto;
	s->family = p->family;
	s->remote_port = p->port;
	copy16(s->remote_addr, p->addr);
}

/*
 * May this connection go without socket storage? An allowed TCP connection to
 * the world needs no client port in np_endpoints (see np_egress) and, when
 * neither its ESTABLISHED nor its CLOSED flow is wanted, nothing from sock_ops.
 */
static __always_inline bool light(const struct np_workload *w, const struct np_verdict *v, __u8 proto,
				  __u32 remote)
{
	__u32 zero = 0;
	__u32 *skip;
	__u32 want = (1u << NP_EV_ESTABLISHED) | (1u << NP_EV_CLOSED);

	/*
	 * Not before the workload's older sockets are marked (the mark would take
	 * this one for one of them); the agent marks only where the pass runs.
	 */
	if (!(w->flags & NP_WF_MARKED))
		return false;
	if (v->verdict != NP_VERDICT_FORWARDED || proto != NP_PROTO_TCP || remote != NP_ID_WORLD)
		return false;
	skip = bpf_map_lookup_elem(&np_flow_skip, &zero);
	return skip && (*skip & want) == want;
}

static __always_inline int on_connect(struct bpf_sock_addr *ctx, __u8 family)
{
	__u64 cgid = bpf_get_current_cgroup_id();
	struct np_workload *w = bpf_map_lookup_elem(&np_workloads, &cgid);
	struct np_verdict v = {};
	struct np_sock tmp = {};
	struct peer p = {};
	struct np_sock *s;
	__u64 gen, cookie;
	__u32 remote;

	if (!w || !ctx->sk)
		return 1;
	if (read_user_addr(ctx, family, &p) < 0)
		return 1;
	gen = current_generation();
	remote = remote_identity(&p);
	decide(&v, w->identity, NP_DIR_EGRESS, remote, &p, gen);
	count_verdict(&v);
	cookie = bpf_get_socket_cookie(ctx);
	s = bpf_sk_storage_get(&np_sockets, ctx->sk, 0, 0);
	if (!s && light(w, &v, p.proto, remote)) {
		count(NP_CNT_LIGHT);
		fill_sock(&tmp, &p, NP_DIR_EGRESS, w->identity, remote, &v, gen, cgid, cookie);
		emit(NP_EV_NEW, &tmp, bpf_get_current_pid_tgid(), 0, 0);
		return 1;
	}
	if (!s)
		s = bpf_sk_storage_get(&np_sockets, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (s) {
		__u8 keep = s->flags & NP_SF_PORT_KNOWN;

		fill_sock(s, &p, NP_DIR_EGRESS, w->identity, remote, &v, gen, cgid, cookie);
		s->flags = keep | NP_SF_CONNECTED;
		emit(NP_EV_NEW, s, bpf_get_current_pid_tgid(), 0, 0);
	}
	return v.verdict == NP_VERDICT_DROPPED ? 0 : 1;
}

SEC("cgroup/connect4")
int np_connect4(struct bpf_sock_addr *ctx)
{
	return on_connect(ctx, NP_FAMILY_INET);
}

SEC("cgroup/connect6")
int np_connect6(struct bpf_sock_addr *ctx)
{
	return on_connect(ctx, NP_FAMILY_INET6);
}

/*
 * Unconnected UDP: one verdict per (socket, peer) and generation, kept in
 * np_udp_peers, so a flow is posted once per new peer, not per datagram, and
 * a datagram to a peer that spoke first (ingress) is a reply.
 */
static __always_inline int on_sendmsg(struct bpf_sock_addr *ctx, __u8 family)
{
	__u64 cgid = bpf_get_current_cgroup_id();
	struct np_workload *w = bpf_map_lookup_elem(&np_workloads, &cgid);
	struct np_udp_peer_key uk = {};
	struct np_udp_peer *known, fresh = {};
	struct np_verdict v = {};
	struct peer p = {};
	struct np_sock *s;
	__u64 gen, cookie;
	__u32 remote;
	__u8 dir = NP_DIR_EGRESS, before = 0;

	if (!w || !ctx->sk)
		return 1;
	if (read_user_addr(ctx, family, &p) < 0 || p.proto != NP_PROTO_UDP)
		return 1;
	gen = current_generation();
	cookie = bpf_get_socket_cookie(ctx);
	uk.cookie = cookie;
	copy16(uk.addr, p.addr);
	uk.port = p.port;
	uk.family = p.family;
	known = bpf_map_lookup_elem(&np_udp_peers, &uk);
	if (known && known->generation == gen)
		return known->v.verdict == NP_VERDICT_DROPPED ? 0 : 1;
	if (known) {
		dir = known->dir;
		before = known->v.verdict;
	}
	s = bpf_sk_storage_get(&np_sockets, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (s)
		p.local_port = s->local_port;
	remote = remote_identity(&p);
	/* a reply to a peer that spoke first is judged by the ingress verdict */
	decide(&v, w->identity, dir, remote, &p, gen);
	count_verdict(&v);
	fresh.generation = gen;
	fresh.v = v;
	fresh.dir = dir;
	bpf_map_update_elem(&np_udp_peers, &uk, &fresh, BPF_ANY);
	if (s) {
		__u8 keep = s->flags & NP_SF_PORT_KNOWN;

		fill_sock(s, &p, dir, w->identity, remote, &v, gen, cgid, cookie);
		s->flags = keep;
		if (!known)
			emit(NP_EV_NEW, s, bpf_get_current_pid_tgid(), 0, 0);
		else if (v.verdict == NP_VERDICT_DROPPED && before != NP_VERDICT_DROPPED)
			emit(NP_EV_REVOKED, s, bpf_get_current_pid_tgid(), 0, 0);
	}
	return v.verdict == NP_VERDICT_DROPPED ? 0 : 1;
}

SEC("cgroup/sendmsg4")
int np_sendmsg4(struct bpf_sock_addr *ctx)
{
	return on_sendmsg(ctx, NP_FAMILY_INET);
}

SEC("cgroup/sendmsg6")
int np_sendmsg6(struct bpf_sock_addr *ctx)
{
	return on_sendmsg(ctx, NP_FAMILY_INET6);
}

/* ---- local ports of workloads ------------------------------------------ */

/*
 * A workload socket bound a port: record it, and remember the key in the
 * socket's storage so that sock_release (which cannot read the port) can
 * take it out again.
 */
static __always_inline int on_post_bind(struct bpf_sock *sk)
{
	__u64 cgid = bpf_get_current_cgroup_id();
	struct np_workload *w = bpf_map_lookup_elem(&np_workloads, &cgid);
	struct np_endpoint_key k = {};
	struct np_endpoint ep = {};
	struct np_sock *s;

	if (!w || (sk->protocol != NP_PROTO_TCP && sk->protocol != NP_PROTO_UDP))
		return 1;
	s = bpf_sk_storage_get(&np_sockets, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!s)
		return 1;
	k.port = sk->src_port;
	k.proto = sk->protocol;
	ep.identity = w->identity;
	ep.cookie = bpf_get_socket_cookie(sk);
	bpf_map_update_elem(&np_endpoints, &k, &ep, BPF_ANY);
	s->cookie = ep.cookie;
	s->cgroup_id = cgid;
	s->identity = w->identity;
	s->proto = k.proto;
	s->local_port = k.port;
	s->flags |= NP_SF_PORT_KNOWN;
	return 1;
}

SEC("cgroup/post_bind4")
int np_post_bind4(struct bpf_sock *sk)
{
	return on_post_bind(sk);
}

SEC("cgroup/post_bind6")
int np_post_bind6(struct bpf_sock *sk)
{
	return on_post_bind(sk);
}

SEC("cgroup/sock_release")
int np_sock_release(struct bpf_sock *sk)
{
	struct np_endpoint_key k = {};
	struct np_endpoint *ep;
	struct np_sock *s = bpf_sk_storage_get(&np_sockets, sk, 0, 0);

	if (!s || !(s->flags & NP_SF_PORT_KNOWN))
		return 1;
	k.port = s->local_port;
	k.proto = s->proto;
	ep = bpf_map_lookup_elem(&np_endpoints, &k);
	if (ep && ep->cookie == s->cookie)
		bpf_map_delete_elem(&np_endpoints, &k);
	return 1;
}

/* ---- packets ----------------------------------------------------------- */

struct pkt {
	struct peer p;     /* the sender */
	__u8 local_addr[16];
	__u8 tcp_flags;
	__u8 ok;
};

static __always_inline int parse(struct __sk_buff *skb, struct pkt *k)
{
	__u32 l4off;
	__u8 proto;
	__u16 ports[2];

	if (skb->protocol == ETH_P_IP_BE) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) < 0)
			return -1;
		if (ip.frag_off & bpf_htons(0x1fff))
			return -1;
		proto = ip.protocol;
		l4off = (ip.ihl & 0xf) * 4;
		k->p.family = NP_FAMILY_INET;
		set_v4(k->p.addr, ip.saddr);
		set_v4(k->local_addr, ip.daddr);
	} else if (skb->protocol == ETH_P_IPV6_BE) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)) < 0)
			return -1;
		proto = ip6.nexthdr;
		l4off = sizeof(ip6);
		k->p.family = NP_FAMILY_INET6;
		__builtin_memcpy(k->p.addr, &ip6.saddr, 16);
		__builtin_memcpy(k->local_addr, &ip6.daddr, 16);
		k->p.family = normalize(NP_FAMILY_INET6, k->p.addr);
		normalize(NP_FAMILY_INET6, k->local_addr);
	} else {
		return -1;
	}
	if (proto != NP_PROTO_TCP && proto != NP_PROTO_UDP)
		return -1;
	k->p.proto = proto;
	if (bpf_skb_load_bytes(skb, l4off, ports, sizeof(ports)) < 0)
		return -1;
	k->p.port = bpf_ntohs(ports[0]);
	k->p.local_port = bpf_ntohs(ports[1]);
	if (proto == NP_PROTO_TCP && bpf_skb_load_bytes(skb, l4off + 13, &k->tcp_flags, 1) < 0)
		return -1;
	return 0;
}

/* A datagram to an unconnected UDP socket: a reply to a peer we sent to, or a new inbound peer. */
static __always_inline int udp_ingress(struct __sk_buff *skb, struct bpf_sock *sk, struct pkt *k,
				       struct np_workload *w, __u64 cgid, __u64 gen)
{
	struct np_udp_peer_key uk = {};
	struct np_udp_peer *known, fresh = {};
	struct np_verdict v = {};
	struct np_sock *s;
	__u32 remote;
	__u8 dir = NP_DIR_INGRESS, before = 0;

	uk.cookie = bpf_get_socket_cookie(skb);
	copy16(uk.addr, k->p.addr);
	uk.port = k->p.port;
	uk.family = k->p.family;
	known = bpf_map_lookup_elem(&np_udp_peers, &uk);
	if (known && known->generation == gen)
		return known->v.verdict == NP_VERDICT_DROPPED ? 0 : 1;
	if (known) {
		dir = known->dir;
		before = known->v.verdict;
	}
	remote = remote_identity(&k->p);
	decide(&v, w->identity, dir, remote, &k->p, gen);
	count_verdict(&v);
	fresh.generation = gen;
	fresh.v = v;
	fresh.dir = dir;
	bpf_map_update_elem(&np_udp_peers, &uk, &fresh, BPF_ANY);
	s = bpf_sk_storage_get(&np_sockets, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (s) {
		__u8 keep = s->flags & NP_SF_PORT_KNOWN;

		fill_sock(s, &k->p, dir, w->identity, remote, &v, gen, cgid, uk.cookie);
		s->flags = keep;
		s->local_port = k->p.local_port;
		copy16(s->local_addr, k->local_addr);
		if (!known)
			emit(NP_EV_NEW, s, 0, 0, 0);
		else if (v.verdict == NP_VERDICT_DROPPED && before != NP_VERDICT_DROPPED)
			emit(NP_EV_REVOKED, s, 0, 0, 0);
	}
	return v.verdict == NP_VERDICT_DROPPED ? 0 : 1;
}

SEC("cgroup_skb/ingress")
int np_ingress(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	struct np_workload *w;
	struct np_sock *s, tmp = {};
	struct np_verdict v = {};
	struct pkt k = {};
	__u64 cgid, gen;
	__u32 remote;

	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return 1;
	/*
	 * A packet of an open connection: its socket's verdict, re-decided only
	 * when the tables changed. The packet is read only when the connection's
	 * CLOSED flow is wanted (the peer's FIN comes off its byte count).
	 */
	s = bpf_sk_storage_get(&np_sockets, sk, 0, 0);
	if (s && (s->flags & NP_SF_CONNECTED)) {
		if ((s->flags & NP_SF_WANT_CLOSE) && parse(skb, &k) == 0 && (k.tcp_flags & TCP_FLAG_FIN))
			s->flags |= NP_SF_FIN_IN;
		return recheck(s, current_generation());
	}
	/* a new TCP connection is judged at its SYN to a listener; no other TCP socket takes one */
	if (sk->protocol == NP_PROTO_TCP && sk->state != BPF_TCP_LISTEN)
		return 1;
	if (parse(skb, &k) < 0)
		return 1;
	cgid = bpf_skb_cgroup_id(skb);
	w = bpf_map_lookup_elem(&np_workloads, &cgid);
	if (!w)
		return 1;
	gen = current_generation();
	if (k.p.proto == NP_PROTO_UDP)
		return udp_ingress(skb, sk, &k, w, cgid, gen);
	/* TCP: only a SYN opens a connection; the rest of the handshake rides on it */
	if ((k.tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) != TCP_FLAG_SYN)
		return 1;
	remote = remote_identity(&k.p);
	decide(&v, w->identity, NP_DIR_INGRESS, remote, &k.p, gen);
	count_verdict(&v);
	fill_sock(&tmp, &k.p, NP_DIR_INGRESS, w->identity, remote, &v, gen, cgid, bpf_get_socket_cookie(skb));
	tmp.local_port = k.p.local_port;
	copy16(tmp.local_addr, k.local_addr);
	emit(NP_EV_NEW, &tmp, 0, 0, 0);
	return v.verdict == NP_VERDICT_DROPPED ? 0 : 1;
}

SEC("cgroup_skb/egress")
int np_egress(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	struct np_sock *s;

	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return 1;
	s = bpf_sk_storage_get(&np_sockets, sk, 0, 0);
	if (!s)
		return 1;
	/*
	 * The source port of a client socket: a peer on this host learns who we
	 * are by it. The one peer of a TCP connection to the world never looks
	 * it up, so such a connection costs no table write here and none at
	 * sock_release. (A UDP socket may send to a local peer later.)
	 */
	if (s->dir == NP_DIR_EGRESS && !(s->flags & (NP_SF_PORT_KNOWN | NP_SF_UNJUDGED)) && sk->src_port &&
	    (s->proto != NP_PROTO_TCP || s->remote_identity != NP_ID_WORLD)) {
		struct np_endpoint_key ek = {};
		struct np_endpoint ep = {};

		ek.port = sk->src_port;
		ek.proto = s->proto;
		ep.identity = s->identity;
		ep.cookie = s->cookie;
		bpf_map_update_elem(&np_endpoints, &ek, &ep, BPF_ANY);
		s->flags |= NP_SF_PORT_KNOWN;
		s->local_port = sk->src_port;
	}
	if (!(s->flags & NP_SF_CONNECTED))
		return 1;
	return recheck(s, current_generation());
}

/* ---- TCP life cycle ---------------------------------------------------- */

static __always_inline void sockops_addrs(struct bpf_sock_ops *ctx, struct np_sock *s)
{
	if (ctx->family == NP_FAMILY_INET) {
		set_v4(s->remote_addr, ctx->remote_ip4);
		set_v4(s->local_addr, ctx->local_ip4);
		s->family = NP_FAMILY_INET;
	} else {
		set_v6(s->remote_addr, ctx->remote_ip6[0], ctx->remote_ip6[1], ctx->remote_ip6[2],
		       ctx->remote_ip6[3]);
		set_v6(s->local_addr, ctx->local_ip6[0], ctx->local_ip6[1], ctx->local_ip6[2],
		       ctx->local_ip6[3]);
		s->family = normalize(NP_FAMILY_INET6, s->remote_addr);
		normalize(NP_FAMILY_INET6, s->local_addr);
	}
	s->remote_port = bpf_ntohl(ctx->remote_port);
	s->local_port = ctx->local_port;
}

/*
 * cgroup id of an accepted socket: sock_ops runs in softirq here, so not the
 * current task's. tp is a BTF pointer (bpf_skc_to_tcp_sock): plain loads,
 * not a probe-read helper per field.
 */
static __always_inline __u64 tcp_cgroup_id(struct tcp_sock *tp)
{
	struct cgroup *cg = tp->inet_conn.icsk_inet.sk.sk_cgrp_data.cgroup;

	return cg ? cg->kn->id : 0;
}

static __always_inline __u64 sock_cgroup_id(struct bpf_sock *sk)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);

	return tp ? tcp_cgroup_id(tp) : 0;
}

/*
 * State changes call back only when the socket's CLOSED flow is wanted, which
 * the agent may not want for allowed traffic: each state change of a
 * connection would otherwise run the program once more. (An allowed
 * connection revoked later is reported REVOKED by the packet hooks.)
 */
static __always_inline void watch_close(struct bpf_sock_ops *ctx, struct np_sock *s)
{
	if (flow_skipped(s, NP_EV_CLOSED))
		return;
	s->flags |= NP_SF_WANT_CLOSE;
	bpf_sock_ops_cb_flags_set(ctx, ctx->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
}

/*
 * Payload bytes of a closing connection. The kernel's bytes_acked and
 * bytes_received count the SYN and FIN sequence octets too; bytes_sent minus
 * bytes_retrans is the payload sent once, and the peer's FIN (seen at
 * ingress) comes off bytes_received.
 */
static __always_inline void closed_bytes(struct bpf_sock *sk, const struct np_sock *s, __u64 received,
					 __u64 *sent, __u64 *rcvd)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);

	*sent = 0;
	if (tp)
		*sent = tp->bytes_sent - tp->bytes_retrans;
	*rcvd = received;
	if ((s->flags & NP_SF_FIN_IN) && received > 0)
		*rcvd -= 1;
}

SEC("sockops")
int np_sockops(struct bpf_sock_ops *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	struct np_workload *w;
	struct np_sock *s;
	struct peer p = {};
	__u64 cgid, sent, rcvd;

	if (!sk)
		return 1;
	switch (ctx->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		s = bpf_sk_storage_get(&np_sockets, sk, 0, 0);
		if (!s)
			return 1;
		sockops_addrs(ctx, s);
		watch_close(ctx, s);
		emit(NP_EV_ESTABLISHED, s, 0, 0, 0);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		cgid = sock_cgroup_id(sk);
		w = bpf_map_lookup_elem(&np_workloads, &cgid);
		if (!w)
			return 1;
		s = bpf_sk_storage_get(&np_sockets, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (!s)
			return 1;
		sockops_addrs(ctx, s);
		s->cgroup_id = cgid;
		s->cookie = bpf_get_socket_cookie(ctx);
		s->identity = w->identity;
		s->dir = NP_DIR_INGRESS;
		s->proto = NP_PROTO_TCP;
		s->flags = NP_SF_CONNECTED;
		p.family = s->family;
		p.proto = NP_PROTO_TCP;
		p.port = s->remote_port;
		p.local_port = s->local_port;
		copy16(p.addr, s->remote_addr);
		s->generation = current_generation();
		s->remote_identity = remote_identity(&p);
		decide(&s->v, s->identity, NP_DIR_INGRESS, s->remote_identity, &p, s->generation);
		watch_close(ctx, s);
		emit(NP_EV_ESTABLISHED, s, 0, 0, 0);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		if (ctx->args[1] != BPF_TCP_CLOSE)
			return 1;
		s = bpf_sk_storage_get(&np_sockets, sk, 0, 0);
		if (!s || !(s->flags & NP_SF_CONNECTED))
			return 1;
		closed_bytes(sk, s, ctx->bytes_received, &sent, &rcvd);
		emit(NP_EV_CLOSED, s, 0, sent, rcvd);
		s->flags &= ~NP_SF_CONNECTED;
		break;
	}
	return 1;
}

/* ---- open connections without storage ------------------------------------ */

/*
 * Run by the agent (a read of an iterator over every TCP socket), with
 * np_pass[0].op:
 *   NP_PASS_PROMOTE  after the tables changed: each open connection of a
 *                    workload without storage (an allowed connection to the
 *                    world, see light()) gets storage with generation 0, so
 *                    its next packet in either direction re-decides it.
 *   NP_PASS_MARK     after attaching to cgroup np_pass[0].cgroup_id: its
 *                    sockets from before are marked NP_SF_UNJUDGED (no hook
 *                    saw them open, so their direction is unknown); the
 *                    packet hooks leave them alone, as they did before.
 * The agent runs PROMOTE a second time a moment later for a connect() that
 * read the old tables but was not yet in the socket table at the first run,
 * and flags a workload NP_WF_MARKED once its MARK has run: only then may its
 * connections go without storage, and only then does PROMOTE look at them.
 */
SEC("iter/tcp")
int np_sockets_pass(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct tcp_sock *tp;
	struct np_workload *w = 0;
	struct np_pass *pass;
	struct np_sock *s;
	__u32 zero = 0, op;
	__u64 cgid;
	__u8 state;

	pass = bpf_map_lookup_elem(&np_pass, &zero);
	if (!pass || !skc)
		return 0;
	op = pass->op;
	if (op != NP_PASS_MARK && op != NP_PASS_PROMOTE)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0;
	state = BPF_CORE_READ(skc, skc_state);
	if (state == BPF_TCP_LISTEN || state == BPF_TCP_CLOSE)
		return 0;
	cgid = tcp_cgroup_id(tp);
	if (op == NP_PASS_MARK) {
		if (cgid != pass->cgroup_id)
			return 0;
	} else {
		w = bpf_map_lookup_elem(&np_workloads, &cgid);
		/* a workload not yet marked has no light connections, only sockets from before */
		if (!w || !(w->flags & NP_WF_MARKED))
			return 0;
	}
	if (bpf_sk_storage_get(&np_sockets, tp, 0, 0))
		return 0;
	s = bpf_sk_storage_get(&np_sockets, tp, 0, BPF_SK_STORAGE_GET_F_CREATE);
	/* from here w is set for PROMOTE and null for MARK */
	if (!s) {
		/* a light connection keeps the verdict it had: counted, so that it shows */
		if (w)
			count(NP_CNT_UNCHECKED);
		return 0;
	}
	s->cgroup_id = cgid;
	s->proto = NP_PROTO_TCP;
	if (!w) {
		s->flags = NP_SF_UNJUDGED;
		return 0;
	}
	s->identity = w->identity;
	s->cookie = bpf_get_socket_cookie(tp);
	s->generation = 0;
	s->v.verdict = NP_VERDICT_FORWARDED;
	s->dir = NP_DIR_EGRESS;
	s->remote_identity = NP_ID_WORLD;
	s->remote_port = bpf_ntohs(BPF_CORE_READ(skc, skc_dport));
	s->local_port = BPF_CORE_READ(skc, skc_num);
	if (BPF_CORE_READ(skc, skc_family) == NP_FAMILY_INET) {
		s->family = NP_FAMILY_INET;
		set_v4(s->remote_addr, BPF_CORE_READ(skc, skc_daddr));
		set_v4(s->local_addr, BPF_CORE_READ(skc, skc_rcv_saddr));
	} else {
		BPF_CORE_READ_INTO(&s->remote_addr, skc, skc_v6_daddr);
		BPF_CORE_READ_INTO(&s->local_addr, skc, skc_v6_rcv_saddr);
		s->family = normalize(NP_FAMILY_INET6, s->remote_addr);
		normalize(NP_FAMILY_INET6, s->local_addr);
	}
	s->flags = NP_SF_CONNECTED;
	return 0;
}
