import { networkInterfaces } from 'node:os';
import {
  type BpfMap,
  bpfObjectPath,
  bytes,
  type Codec,
  Collection,
  type Link,
  RecordReader,
  ringBufferBytes,
  u32,
  u64,
} from '../../kernel/index.js';
import { parseCidr } from '../../netpolicy/cidr.js';
import type { CompiledTables, Verdict } from '../../netpolicy/compile.js';
import type { Cidr, Direction } from '../../netpolicy/model.js';
import { runAll, runSliced } from '../../netpolicy/slices.js';
import { decodeFlowRecord, type FlowRecord } from './decode.js';
import {
  CIDR_KEY,
  CLASS,
  Counter,
  DEFAULT_KEY,
  Identity,
  IPCACHE_KEY,
  NP,
  PEER_KEY,
  PORT_KEY,
  VERDICT,
  WORKLOAD,
} from './layout.js';

export interface NetworkDatapathOptions {
  /** called with each batch of decoded flows, in ring order */
  onFlows: (flows: FlowRecord[]) => void;
  /** the object to load; default bpf/.output/netpolicy.bpf.o */
  objectFile?: string;
  /** bytes of the flow ring: a power of 2, at least 4096 (default 4 MiB: 32,000 flows, most of a second of the busiest connection load here) */
  ringBytes?: number;
  /** wake-up coalescing of the flow ring's reader, ms (default 0: off) */
  holdoffMs?: number;
  /** what went wrong out of band (a socket pass that failed) */
  log?: (line: string) => void;
}

export interface NetworkCounters {
  /** flow records lost: the ring was full */
  ringbufDrops: number;
  /** connections, datagrams and packets refused */
  dropped: number;
  /** would have been refused, but a policy is in audit mode */
  audited: number;
  /** packets of connections whose permission was revoked, dropped */
  revoked: number;
  /** open connections the socket pass could not give storage: they keep the verdict they had */
  unchecked: number;
  /** connections opened without socket storage (allowed, to the world, no ESTABLISHED/CLOSED flow wanted) */
  light: number;
  /** records user space could not decode */
  decodeErrors: number;
  /** bytes of flow records in the ring or read and not handled yet */
  ringPendingBytes: number;
}

/**
 * Order of attachment: the programs that learn (ports, sockets, packets)
 * before the ones that refuse, so that a workload is never half enforced by
 * a hook whose companions are missing.
 */
const PROGRAMS = [
  'np_post_bind4',
  'np_post_bind6',
  'np_sock_release',
  'np_sockops',
  'np_ingress',
  'np_egress',
  'np_connect4',
  'np_connect6',
  'np_sendmsg4',
  'np_sendmsg6',
] as const;

const DIR: Record<Direction, number> = { egress: 0, ingress: 1 };

/** np_workload flag: its older sockets are marked (bpf/include/netpolicy.h) */
const WF_MARKED = 1;

/** np_pass ops (bpf/include/netpolicy.h) */
const PASS = { NONE: 0, PROMOTE: 1, MARK: 2 } as const;

/**
 * The second run of the promote pass after a change of the tables: for a
 * connect() that read the old tables but was not in the socket table yet.
 */
const PROMOTE_AGAIN_MS = 200;

/** struct np_pass: cgroup_id u64, op u32, pad u32 */
const PASS_SIZE = 16;

/**
 * How often the interfaces' addresses are looked at again: an address
 * added after the agent started (a bridge, a container runtime's, DHCP) is
 * the host's too, and until the kernel's table says so, traffic to it is
 * the world's (which a policy allowing the world but not the host lets
 * through).
 */
export const HOST_ADDRESS_CHECK_MS = 2000;

/** Entries of the CIDR and port tables (both slots together). */
const LPM_TABLE_ENTRIES = 1 << 20;

/** Every interface's addresses (an IPv6 one without its %zone), sorted. */
function interfaceAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) out.push(a.address.split('%')[0]!);
  }
  return out.sort();
}

type RawMap = BpfMap<Buffer, Buffer>;

/**
 * The kernel half of workload network policy: one instance of
 * bpf/netpolicy.bpf.c whose programs are attached to each workload's cgroup,
 * the tables the compiler fills, and the reader of its flow ring.
 *
 * install() writes compiled tables into the slot the kernel is not reading,
 * then flips the generation (one 8-byte array value) whose low bit is the
 * active slot: a verdict is made from the old tables or the new, never a
 * mix. Sockets remember the generation of their verdict, so open
 * connections are re-checked at their next packet.
 */
export class NetworkDatapath {
  private readonly coll: Collection;
  private readonly reader: RecordReader<FlowRecord>;
  private readonly maps: {
    config: BpfMap<number, bigint>;
    workloads: BpfMap<bigint, Buffer>;
    ipcache: RawMap;
    defaults: RawMap;
    peers: RawMap;
    cidrs: RawMap;
    ports: RawMap;
    counters: BpfMap<number, bigint>;
    pass: BpfMap<number, Buffer>;
  };
  private gen = 0n;
  /** keys written per slot, so the slot can be emptied before it is refilled */
  private written: [SlotTable[], SlotTable[]] = [[], []];
  private hostKeys: Buffer[] = [];
  private hostCidrList: Cidr[] = [];
  /** what setHostAddresses was given besides the interfaces */
  private hostExtra: string[] = [];
  /** the interfaces' addresses setHostAddresses saw, joined */
  private hostSeen = '';
  private hostTimer: NodeJS.Timeout | undefined;
  private attachments = new Map<string, Link[]>();
  private closed = false;
  /** np_sockets_pass runs here (and has not failed): workloads are marked after attach */
  private passes: boolean;
  private promoteAgain: NodeJS.Timeout | undefined;
  /** workloads whose older sockets the MARK pass has marked */
  private readonly marked = new Set<bigint>();
  /** the socket passes, one after the other */
  private passChain: Promise<void> = Promise.resolve();
  private readonly log: (line: string) => void;

  private constructor(coll: Collection, opts: NetworkDatapathOptions) {
    this.coll = coll;
    const raw = (name: string, k: number, v: number): RawMap =>
      coll.map(name, bytes(k) as Codec<Buffer>, bytes(v) as Codec<Buffer>);
    this.maps = {
      config: coll.map('np_config', u32, u64),
      workloads: coll.map('np_workloads', u64, bytes(WORKLOAD.SIZE) as Codec<Buffer>),
      ipcache: raw('np_ipcache', IPCACHE_KEY.SIZE, 4),
      defaults: raw('np_defaults', DEFAULT_KEY.SIZE, VERDICT.SIZE),
      peers: raw('np_peers', PEER_KEY.SIZE, 4),
      cidrs: raw('np_cidrs', CIDR_KEY.SIZE, 4),
      ports: raw('np_ports', PORT_KEY.SIZE, VERDICT.SIZE),
      counters: coll.map('np_counters', u32, u64),
      pass: coll.map('np_pass', u32, bytes(PASS_SIZE) as Codec<Buffer>),
    };
    this.log = opts.log ?? (() => {});
    // can the pass run here? (attaching it is synchronous; reading it is not)
    this.passes = true;
    try {
      const run = this.runPass(PASS.NONE);
      this.passChain = run.then(
        () => {},
        (err) => this.passFailed(err),
      );
    } catch (err) {
      this.passes = false;
      this.log(
        `network policy: every connection keeps its state in socket storage (the socket pass cannot run: ${(err as Error).message})`,
      );
    }
    this.reader = new RecordReader(
      coll.mapInfo('np_flows').fd,
      decodeFlowRecord,
      (flows) => opts.onFlows(flows),
      opts.holdoffMs ?? 0,
      coll.mapInfo('ring_waits').fd,
    );
  }

  /** Load the programs and maps (nothing attached yet). Throws with nothing left behind. */
  static load(opts: NetworkDatapathOptions): NetworkDatapath {
    const ringBytes = ringBufferBytes(opts.ringBytes ?? 4 << 20);
    const coll = Collection.load(opts.objectFile ?? bpfObjectPath('netpolicy'), {
      // LPM tries allocate per entry (no prealloc): the cap costs nothing until used, and the
      // two table slots must hold a policy of 100,000 CIDRs each while the other is in force
      maxEntries: { np_flows: ringBytes, np_cidrs: LPM_TABLE_ENTRIES, np_ports: LPM_TABLE_ENTRIES },
    });
    let dp: NetworkDatapath;
    try {
      dp = new NetworkDatapath(coll, opts);
      dp.setHostAddresses();
      dp.hostTimer = setInterval(() => dp.refreshHostAddresses(), HOST_ADDRESS_CHECK_MS);
      dp.hostTimer.unref();
    } catch (err) {
      coll.close();
      throw err;
    }
    return dp;
  }

  /** The generation of the tables the kernel reads now (0 before the first install). */
  get generation(): bigint {
    return this.gen;
  }

  /** Tell the kernel which identity a cgroup's sockets have. */
  setWorkload(cgroupId: bigint, identity: number): void {
    const v = Buffer.alloc(WORKLOAD.SIZE);
    v.writeUInt32LE(identity, WORKLOAD.identity);
    v.writeUInt32LE(this.marked.has(cgroupId) ? WF_MARKED : 0, WORKLOAD.flags);
    this.maps.workloads.update(cgroupId, v);
  }

  removeWorkload(cgroupId: bigint): void {
    this.marked.delete(cgroupId);
    this.maps.workloads.delete(cgroupId);
  }

  /**
   * Attach every program to a workload's cgroup (its path, and its id as
   * setWorkload has it). All or nothing: on a failure the programs attached
   * so far are detached again.
   */
  attach(cgroupPath: string, cgroupId: bigint): void {
    if (this.attachments.has(cgroupPath)) return;
    const links: Link[] = [];
    try {
      for (const p of PROGRAMS) links.push(this.coll.attachCgroup(p, cgroupPath));
    } catch (err) {
      for (const l of links.reverse()) l.destroy();
      throw err;
    }
    this.attachments.set(cgroupPath, links);
    // its connections from before: no hook saw them open, the packet hooks leave them alone
    if (this.passes) this.queuePass(PASS.MARK, cgroupId, () => this.writeMark(cgroupId, true));
  }

  /** Detach from a cgroup: the refusing hooks first. */
  detach(cgroupPath: string): void {
    const links = this.attachments.get(cgroupPath);
    if (!links) return;
    for (const l of [...links].reverse()) l.destroy();
    this.attachments.delete(cgroupPath);
  }

  attachedCgroups(): string[] {
    return [...this.attachments.keys()];
  }

  /**
   * The addresses that are this host (identity host, not world): loopback,
   * the addresses of every interface now, and `extra`. Call again when
   * interfaces change.
   */
  setHostAddresses(extra: string[] = []): void {
    this.hostExtra = extra;
    const cidrs: Cidr[] = [];
    const add = (s: string) => {
      const c = parseCidr(s);
      if (typeof c === 'string') throw new Error(`host address ${s}: ${c}`);
      cidrs.push(c);
    };
    add('127.0.0.0/8');
    add('::1/128');
    const seen = interfaceAddresses();
    for (const a of seen) add(a);
    for (const s of extra) add(s);
    const keys = cidrs.map((c) => ipcacheKey(c));
    const value = Buffer.alloc(4);
    value.writeUInt32LE(Identity.HOST);
    for (const k of keys) this.maps.ipcache.update(k, value);
    const now = new Set(keys.map((k) => k.toString('hex')));
    for (const k of this.hostKeys) if (!now.has(k.toString('hex'))) this.maps.ipcache.delete(k);
    this.hostKeys = keys;
    this.hostCidrList = cidrs;
    this.hostSeen = seen.join(',');
  }

  /**
   * setHostAddresses() again when the interfaces' addresses are not those
   * it last saw. Returns whether they had changed. Never throws (says why).
   */
  refreshHostAddresses(): boolean {
    if (this.closed) return false;
    try {
      if (interfaceAddresses().join(',') === this.hostSeen) return false;
      this.setHostAddresses(this.hostExtra);
      return true;
    } catch (err) {
      this.log(`network policy: the host's addresses could not be read again: ${(err as Error).message}`);
      return false;
    }
  }

  /** The addresses that are this host, as setHostAddresses() last set them. */
  get hostCidrs(): readonly Cidr[] {
    return this.hostCidrList;
  }

  /**
   * Make `tables` the kernel's tables: write them into the inactive slot,
   * then flip. Returns the new generation. On a failure the active tables
   * stay as they were and the half-written slot is emptied again.
   */
  install(tables: CompiledTables | PackedTables): bigint {
    // a change that was still compiling when the agent stopped: its map fds are closed
    if (this.closed) throw new Error('install network policy tables: the network datapath is closed');
    const packed = tables instanceof PackedTables ? tables : PackedTables.pack(tables);
    const next = this.gen + 1n;
    const slot = Number(next & 1n);
    this.clearSlot(slot);
    const w = this.written[slot]!;
    try {
      for (const t of packed.tables) {
        const m = this.maps[t.map];
        for (let i = 0; i < t.count; i++) t.keys[i * t.keySize + t.slotAt] = slot;
        // recorded first: a batch that fails half-way leaves entries the slot's clearing must find
        w.push({ map: m, keys: t.keys, count: t.count });
        m.updateMany(t.keys, t.values, t.count);
      }
    } catch (err) {
      this.clearSlot(slot);
      throw new Error(`install network policy tables: ${(err as Error).message}`, { cause: err });
    }
    this.maps.config.update(0, next);
    this.gen = next;
    if (this.passes) {
      // open connections without socket storage get it, so their next packet meets the new tables
      this.queuePass(PASS.PROMOTE);
      clearTimeout(this.promoteAgain);
      this.promoteAgain = setTimeout(() => {
        this.promoteAgain = undefined;
        this.queuePass(PASS.PROMOTE);
      }, PROMOTE_AGAIN_MS).unref();
    }
    return next;
  }

  /**
   * Which events of FORWARDED flows the kernel leaves out: a mask of
   * 1 << FlowEvent. 0 (the default) posts every flow; DROPPED and AUDIT
   * flows and REVOKED events are posted whatever the mask.
   */
  setFlowSkip(mask: number): void {
    this.coll.map('np_flow_skip', u32, u32).update(0, mask >>> 0);
  }

  counters(): NetworkCounters {
    const sum = (i: number) => Number((this.maps.counters.lookupPerCpu(i) ?? []).reduce((a, b) => a + b, 0n));
    return {
      ringbufDrops: sum(Counter.RINGBUF_DROP),
      dropped: sum(Counter.DROPPED),
      audited: sum(Counter.AUDIT),
      revoked: sum(Counter.REVOKED),
      unchecked: sum(Counter.UNCHECKED),
      light: sum(Counter.LIGHT),
      decodeErrors: this.reader.decodeErrors,
      ringPendingBytes: this.reader.pendingBytes,
    };
  }

  /** Deliver the flows ready now, synchronously. Returns how many records were read. */
  drain(): number {
    const before = this.reader.records;
    this.reader.drain();
    return this.reader.records - before;
  }

  /** Detach from every cgroup and free the programs and maps. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.promoteAgain);
    clearInterval(this.hostTimer);
    for (const path of [...this.attachments.keys()]) this.detach(path);
    this.reader.close();
    this.coll.close();
  }

  /** Settles once the socket passes queued so far have run. */
  passesSettled(): Promise<void> {
    return this.passChain;
  }

  /**
   * One run of np_sockets_pass over every TCP socket of the host, off the
   * event loop. Attaching it throws here; the read settles the promise.
   */
  private runPass(op: number, cgroupId = 0n): Promise<Buffer> {
    const v = Buffer.alloc(PASS_SIZE);
    v.writeBigUInt64LE(cgroupId, 0);
    v.writeUInt32LE(op, 8);
    this.maps.pass.update(0, v);
    return this.coll.runIterator('np_sockets_pass');
  }

  /** Passes run one at a time, in order: each one's op is in np_pass while it runs. */
  private queuePass(op: number, cgroupId = 0n, then?: () => void): void {
    this.passChain = this.passChain.then(async () => {
      if (this.closed || !this.passes) return;
      try {
        await this.runPass(op, cgroupId);
      } catch (err) {
        this.passFailed(err);
        return;
      }
      if (!this.closed) then?.();
    });
  }

  /**
   * Set or clear a workload's NP_WF_MARKED (its older sockets are marked: its
   * connections may go without storage), in np_workloads and this.marked; a
   * workload removed meanwhile stays removed.
   */
  private writeMark(cgroupId: bigint, on: boolean): void {
    const v = this.maps.workloads.lookup(cgroupId);
    if (!v) {
      this.marked.delete(cgroupId);
      return;
    }
    if (on) this.marked.add(cgroupId);
    else this.marked.delete(cgroupId);
    v.writeUInt32LE(on ? WF_MARKED : 0, WORKLOAD.flags);
    this.maps.workloads.update(cgroupId, v);
  }

  /**
   * A pass that fails leaves connections without storage that the tables
   * may no longer allow: from then on every connection gets storage at
   * connect() (no workload is marked, as when the pass cannot run at all),
   * and the failure is logged.
   */
  private passFailed(err: unknown): void {
    if (this.closed || !this.passes) return;
    this.passes = false;
    for (const id of [...this.marked]) this.writeMark(id, false);
    this.log(
      `network policy: the socket pass failed (${(err as Error).message}); connections opened before now without socket storage keep their verdict until they close`,
    );
  }

  private clearSlot(slot: number): void {
    for (const { map, keys, count } of this.written[slot]!) map.deleteMany(keys, count);
    this.written[slot] = [];
  }
}

/** One table packed for the kernel: keys and values end to end, the keys' slot byte set at install. */
interface PackedTable {
  map: 'defaults' | 'peers' | 'cidrs' | 'ports';
  keys: Buffer;
  values: Buffer;
  count: number;
  keySize: number;
  /** offset of the slot byte in each key */
  slotAt: number;
}

/** Table entries packed between two places where PackedTables.steps may pause. */
const PACK_STEP = 4096;

/**
 * Compiled tables as the bytes NetworkDatapath.install writes: made apart
 * from the install (and for a large policy, in slices of the event loop:
 * PackedTables.sliced), so that what install does in one step is setting
 * each key's slot and the kernel's batch writes.
 */
export class PackedTables {
  private constructor(readonly tables: PackedTable[]) {}

  static pack(tables: CompiledTables): PackedTables {
    return runAll(PackedTables.steps(tables));
  }

  /** pack() in slices of about `sliceMs` of the event loop. */
  static sliced(tables: CompiledTables, sliceMs = 8): Promise<PackedTables> {
    return runSliced(PackedTables.steps(tables), sliceMs);
  }

  private static *steps(tables: CompiledTables): Generator<void, PackedTables> {
    for (const p of tables.ports)
      if (p.cls > 0xffff) throw new Error(`too many peer classes (${p.cls}) for identity ${p.identity}`);
    const out: PackedTable[] = [];
    function* table<E>(
      map: PackedTable['map'],
      entries: readonly E[],
      keySize: number,
      valueSize: number,
      slotAt: number,
      fill: (e: E, k: Buffer, v: Buffer) => void,
    ): Generator<void, void> {
      const n = entries.length;
      if (n === 0) return;
      const keys = Buffer.alloc(n * keySize);
      const values = Buffer.alloc(n * valueSize);
      for (let i = 0; i < n; i++) {
        if (i > 0 && i % PACK_STEP === 0) yield;
        fill(
          entries[i]!,
          keys.subarray(i * keySize, (i + 1) * keySize),
          values.subarray(i * valueSize, (i + 1) * valueSize),
        );
      }
      out.push({ map, keys, values, count: n, keySize, slotAt });
    }
    yield* table('defaults', tables.defaults, DEFAULT_KEY.SIZE, VERDICT.SIZE, DEFAULT_KEY.slot, (d, k, v) => {
      k.writeUInt32LE(d.identity, DEFAULT_KEY.identity);
      k[DEFAULT_KEY.dir] = DIR[d.dir];
      writeVerdict(d.verdict, v);
    });
    yield* table('peers', tables.peers, PEER_KEY.SIZE, CLASS.SIZE, PEER_KEY.slot, (p, k, v) => {
      k.writeUInt32LE(p.identity, PEER_KEY.identity);
      k.writeUInt32LE(p.remote, PEER_KEY.remote);
      k[PEER_KEY.dir] = DIR[p.dir];
      v.writeUInt32LE(p.cls, CLASS.cls);
    });
    yield* table('cidrs', tables.cidrs, CIDR_KEY.SIZE, CLASS.SIZE, CIDR_KEY.slot, (c, k, v) => {
      k.writeUInt32LE(NP.CIDR_KEY_BITS + c.cidr.bits, CIDR_KEY.prefixlen);
      k.writeUInt32LE(c.identity, CIDR_KEY.identity);
      k[CIDR_KEY.dir] = DIR[c.dir];
      k[CIDR_KEY.family] = c.cidr.family === 4 ? NP.FAMILY_INET : NP.FAMILY_INET6;
      k.set(c.cidr.addr.subarray(0, 16), CIDR_KEY.addr);
      v.writeUInt32LE(c.cls, CLASS.cls);
    });
    yield* table('ports', tables.ports, PORT_KEY.SIZE, VERDICT.SIZE, PORT_KEY.slot, (p, k, v) => {
      k.writeUInt32LE(NP.PORT_KEY_BITS + p.bits, PORT_KEY.prefixlen);
      k.writeUInt32LE(p.identity, PORT_KEY.identity);
      k[PORT_KEY.dir] = DIR[p.dir];
      k[PORT_KEY.proto] = p.proto;
      k.writeUInt16LE(p.cls, PORT_KEY.cls);
      k.writeUInt16BE(p.port, PORT_KEY.port);
      writeVerdict(p.verdict, v);
    });
    return new PackedTables(out);
  }
}

/** One table's keys as written into a slot, packed end to end. */
interface SlotTable {
  map: RawMap;
  keys: Buffer;
  count: number;
}

function writeVerdict(v: Verdict, b: Buffer): void {
  b[VERDICT.verdict] = v.verdict;
  b[VERDICT.flags] = v.flags;
  b.writeUInt16LE(v.rule, VERDICT.rule);
  b.writeUInt32LE(v.policy, VERDICT.policy);
}

function ipcacheKey(c: Cidr): Buffer {
  const k = Buffer.alloc(IPCACHE_KEY.SIZE);
  k.writeUInt32LE(32 + c.bits, IPCACHE_KEY.prefixlen);
  k.writeUInt32LE(c.family === 4 ? NP.FAMILY_INET : NP.FAMILY_INET6, IPCACHE_KEY.family);
  c.addr.copy(k, IPCACHE_KEY.addr);
  return k;
}
