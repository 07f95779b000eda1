import { existsSync, readFileSync } from 'node:fs';
import { native } from './native.js';

/** uapi enum bpf_prog_type values we care about */
export const ProgType = {
  socket_filter: 1,
  kprobe: 2,
  sched_cls: 3,
  tracepoint: 5,
  xdp: 6,
  perf_event: 7,
  cgroup_skb: 8,
  cgroup_sock: 9,
  sock_ops: 13,
  raw_tracepoint: 17,
  cgroup_sock_addr: 18,
  cgroup_sockopt: 25,
  tracing: 26,
  lsm: 29,
} as const;

export const MapType = {
  hash: 1,
  array: 2,
  percpu_hash: 5,
  percpu_array: 6,
  cgroup_array: 8,
  lru_hash: 9,
  lpm_trie: 11,
  hash_of_maps: 13,
  ringbuf: 27,
  bloom_filter: 30,
} as const;

/** uapi enum bpf_func_id values, probed from a tracepoint program */
export const Helper = {
  current_task_under_cgroup: 37,
  override_return: 58,
  get_current_cgroup_id: 80,
  send_signal: 109,
  probe_read_user: 112,
  probe_read_kernel: 113,
  ringbuf_output: 130,
  d_path: 147,
  get_current_task_btf: 158,
  loop: 181,
} as const;

export interface Features {
  kernel: string;
  btf: boolean;
  progTypes: Record<string, boolean>;
  mapTypes: Record<string, boolean>;
  helpers: Record<string, boolean>;
  /** kprobes need CONFIG_KPROBES: the kprobe PMU exists */
  kprobes: boolean;
  uprobes: boolean;
  /** BPF-LSM is active: "bpf" in /sys/kernel/security/lsm */
  bpfLsm: boolean;
}

let cached: Features | undefined;

/** What this kernel supports, probed once (like `bpftool feature probe`). */
export function probeFeatures(): Features {
  if (cached) return cached;
  const n = native();
  const progTypes: Record<string, boolean> = {};
  for (const [k, v] of Object.entries(ProgType)) progTypes[k] = n.probeProgType(v);
  const mapTypes: Record<string, boolean> = {};
  for (const [k, v] of Object.entries(MapType)) mapTypes[k] = n.probeMapType(v);
  const helpers: Record<string, boolean> = {};
  for (const [k, v] of Object.entries(Helper)) {
    helpers[k] = n.probeHelper(k === 'override_return' ? ProgType.kprobe : ProgType.tracepoint, v);
  }
  cached = {
    kernel: readOr('/proc/sys/kernel/osrelease').trim(),
    btf: existsSync('/sys/kernel/btf/vmlinux'),
    progTypes,
    mapTypes,
    helpers,
    kprobes: existsSync('/sys/bus/event_source/devices/kprobe'),
    uprobes: existsSync('/sys/bus/event_source/devices/uprobe'),
    bpfLsm: readOr('/sys/kernel/security/lsm').split(',').includes('bpf'),
  };
  return cached;
}

/**
 * Fail early, with what is missing, when the kernel cannot run the process
 * sensor at all.
 */
export function requireBaseline(f: Features = probeFeatures()): void {
  const missing: string[] = [];
  if (!f.btf) missing.push('BTF (/sys/kernel/btf/vmlinux; CONFIG_DEBUG_INFO_BTF)');
  if (!f.mapTypes.ringbuf) missing.push('BPF ring buffer maps (Linux 5.8+)');
  if (!f.progTypes.tracing && !f.progTypes.raw_tracepoint) missing.push('BTF-enabled tracepoints (tp_btf)');
  if (missing.length) {
    throw new Error(`this kernel lacks what Osprey needs: ${missing.join('; ')}`);
  }
}

function readOr(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}
