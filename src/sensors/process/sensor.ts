import { existsSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import {
  BPF_NOEXIST,
  type BpfMap,
  bpfObjectPath,
  bytes,
  type Codec,
  Collection,
  native,
  possibleCpus,
  RecordReader,
  ringBufferBytes,
  tracefsRoot,
  u32,
  u64,
} from '../../kernel/index.js';
import { decodeRecord } from './decode.js';
import { CONFIG, DROP, PROC, ProcFlags } from './layout.js';
import type { ProcessRecord } from './records.js';

export interface ProcessSensorOptions {
  /** bytes of argv captured per exec (default 4096, at most 32767) */
  argsMax?: number;
  /** watch only tasks in this cgroup v2 directory and below */
  scopeCgroup?: string;
  /** ring buffer size in bytes, a power of 2 of at least 4096 (default 4 MiB) */
  ringBytes?: number;
  /** wake-up coalescing of the ring reader, ms (default 0: off) */
  holdoffMs?: number;
  /** called with each batch's records, in ring order */
  onRecords: (records: ProcessRecord[]) => void;
}

export interface SensorCounters {
  records: number;
  batches: number;
  /** records the decoder did not know or could not read */
  decodeErrors: number;
  /** kernel-side drops, by reason */
  kernelDrops: { ringbuf: number; args: number };
  /** bytes of records in the ring or read and not handled yet */
  ringPendingBytes: number;
}

const PROGRAMS = ['osprey_exec', 'osprey_fork', 'osprey_exit'] as const;

/**
 * Enters an exec's new binary in the process table at its point of no return
 * (sched_prepare_exec, Linux 6.10), ahead of every program at
 * sched_process_exec. Left out where the kernel has no such tracepoint: a
 * policy at sched_process_exec then sees the new binary only when it runs
 * after osprey_exec.
 */
const PREPARE_EXEC = 'osprey_prepare_exec';

function hasPrepareExec(): boolean {
  const root = tracefsRoot();
  return root !== undefined && existsSync(path.join(root, 'events/sched/sched_prepare_exec'));
}

/**
 * The process lifecycle sensor: loads bpf/process.bpf.c, attaches exec, fork
 * and exit, and hands decoded records to its consumer batch by batch.
 */
export class ProcessSensor {
  private readonly coll: Collection;
  private readonly reader: RecordReader<ProcessRecord>;
  private readonly drops: BpfMap<number, bigint>;

  private constructor(coll: Collection, opts: ProcessSensorOptions) {
    this.coll = coll;
    this.drops = coll.map('drops', u32, u64);
    this.reader = new RecordReader(
      coll.mapInfo('events').fd,
      decodeRecord,
      (records) => opts.onRecords(records),
      opts.holdoffMs ?? 0,
      coll.mapInfo('ring_waits').fd,
    );
  }

  static start(opts: ProcessSensorOptions): ProcessSensor {
    const argsMax = opts.argsMax ?? 4096;
    if (!Number.isInteger(argsMax) || argsMax < 0 || argsMax > 32767) {
      throw new Error(`args-max ${argsMax} is out of range: give 0..32767 bytes`);
    }
    const ringBytes = ringBufferBytes(opts.ringBytes ?? 4 << 20);
    const prepareExec = hasPrepareExec();
    const coll = Collection.load(bpfObjectPath('process'), {
      maxEntries: { exec_heap: Math.max(possibleCpus(), availableParallelism()), events: ringBytes },
      ...(prepareExec ? {} : { skipPrograms: [PREPARE_EXEC] }),
    });
    try {
      const cfg = Buffer.alloc(CONFIG.SIZE);
      cfg.writeUInt32LE(argsMax, CONFIG.args_max);
      cfg.writeUInt32LE(process.pid, CONFIG.agent_pid);
      if (opts.scopeCgroup) {
        const dir = path.resolve(opts.scopeCgroup);
        if (!statSync(dir).isDirectory()) throw new Error(`scope cgroup ${dir} is not a directory`);
        coll.setCgroup('scope_cgroups', 0, dir);
        cfg.writeUInt32LE(1, CONFIG.scope_cgroup);
      }
      coll.map('osprey_cfg', u32, bytes(CONFIG.SIZE) as Codec<Buffer>).update(0, cfg);
      const sensor = new ProcessSensor(coll, opts);
      for (const p of PROGRAMS) coll.attach(p);
      if (prepareExec) coll.attach(PREPARE_EXEC);
      return sensor;
    } catch (err) {
      coll.close();
      throw err;
    }
  }

  /** Records ready in the ring now, delivered synchronously. */
  drain(): void {
    this.reader.drain();
  }

  counters(): SensorCounters {
    const sum = (idx: number) => (this.drops.lookupPerCpu(idx) ?? []).reduce((a, b) => a + b, 0n);
    return {
      records: this.reader.records,
      batches: this.reader.batches,
      decodeErrors: this.reader.decodeErrors,
      kernelDrops: { ringbuf: Number(sum(DROP.RINGBUF)), args: Number(sum(DROP.ARGS)) },
      ringPendingBytes: this.reader.pendingBytes,
    };
  }

  /**
   * Enter processes that were running before the sensor started into the
   * kernel's process table, so policy programs know their binaries too.
   * Entries the kernel already made (a fork or exec since start) are kept.
   */
  seedProcessTable(procs: Iterable<{ pid: number; ppid: number; binary: string; startNs: bigint }>): number {
    const table = this.coll.mapInfo('osprey_procs');
    const key = Buffer.alloc(4);
    const val = Buffer.alloc(PROC.SIZE);
    let n = 0;
    for (const p of procs) {
      if (!p.binary) continue;
      val.fill(0);
      val.writeBigUInt64LE(p.startNs, PROC.exec_ktime);
      val.writeUInt32LE(p.ppid, PROC.ppid);
      val.writeUInt32LE(ProcFlags.PROCFS, PROC.flags);
      const bin = Buffer.from(p.binary);
      val.writeUInt32LE(bin.length, PROC.bin_len);
      bin.copy(val, PROC.binary, 0, Math.min(bin.length, PROC.BINARY_MAX - 1));
      key.writeUInt32LE(p.pid);
      try {
        native().mapUpdate(table.fd, key, val, BPF_NOEXIST);
        n++;
      } catch (err) {
        if ((err as { errno?: number }).errno !== 17 /* EEXIST */) throw err;
      }
    }
    return n;
  }

  /** The kernel's process-table entry of pid, if it has one. */
  processTableEntry(pid: number): { ppid: number; flags: number; binary: string } | undefined {
    const key = Buffer.alloc(4);
    key.writeUInt32LE(pid);
    const val = Buffer.alloc(PROC.SIZE);
    if (!native().mapLookup(this.coll.mapInfo('osprey_procs').fd, key, val)) return undefined;
    const len = Math.min(val.readUInt32LE(PROC.bin_len), PROC.BINARY_MAX - 1);
    return {
      ppid: val.readUInt32LE(PROC.ppid),
      flags: val.readUInt32LE(PROC.flags),
      binary: val.toString('utf8', PROC.binary, PROC.binary + len),
    };
  }

  /** The fd of the kernel's process table, for policy objects to share. */
  processTableFd(): number {
    return this.coll.mapInfo('osprey_procs').fd;
  }

  /** Programs with their hooks, for status. */
  programs(): { name: string; hook: string; fd: number }[] {
    const fds = new Map(this.coll.programs().map((p) => [p.name, p.fd]));
    return this.coll.attached().map((l) => ({ name: l.program, hook: l.hook, fd: fds.get(l.program) ?? -1 }));
  }

  maps(): { name: string; type: number; maxEntries: number; keySize: number; valueSize: number }[] {
    return this.coll.maps();
  }

  stop(): void {
    // hand over what is already in the ring before detaching
    try {
      this.drain();
    } finally {
      this.reader.close();
      this.coll.close();
    }
  }
}
