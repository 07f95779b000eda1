import { capNames } from '../events/caps.js';
import type { BinaryProperties, Capabilities, Credentials, Process, Workload } from '../events/types.js';
import { ExecFlags, type ExecRecord, type ExitRecord, type ForkRecord } from '../sensors/process/records.js';
import { execFlagsString, joinArguments } from './arguments.js';
import { resolveExecBinary } from './binary.js';
import type { CgroupPaths } from './cgroups.js';
import { ktimeToTime, wallNsToTime } from './clock.js';
import { makeExecId } from './execid.js';
import type { NamespaceTable } from './namespaces.js';
import type { ProcSnapshot } from './procfs.js';

const DELETED = ' (deleted)';
const AUID_UNSET = 4294967295;
const MAX_INTERNED_CAPS = 1024;

/**
 * Objects that many processes share, made once: a process's JSON copies
 * the bytes of each shared object (src/events/encode.ts), so the same
 * capability list or set, credentials or workload is encoded once, not once
 * per process, and held in memory once. Bounded: past the limit it starts over.
 */
class Interned<K, V> {
  private readonly map = new Map<K, V>();

  constructor(private readonly max: number) {}

  /** same: whether a kept value still stands for key (default: always) */
  get(key: K, make: () => V, same?: (v: V) => boolean): V {
    let v = this.map.get(key);
    if (v === undefined || (same !== undefined && !same(v))) {
      v = make();
      if (this.map.size >= this.max) this.map.clear();
      this.map.set(key, v);
    }
    return v;
  }
}

/**
 * Makes the exported Process objects from kernel records and /proc
 * snapshots. Parts that many processes share (capability name lists,
 * namespace sets) are shared objects: every Process is read-only once built.
 */
export class ProcessBuilder {
  private readonly capLists = new Interned<bigint, string[]>(MAX_INTERNED_CAPS);
  private readonly capSets = new Interned<string, Capabilities>(MAX_INTERNED_CAPS);
  private readonly credentials = new Interned<string, Credentials>(MAX_INTERNED_CAPS);
  private readonly workloads = new Interned<bigint, Workload>(MAX_INTERNED_CAPS);
  /**
   * Labels of the workload a cgroup id (decimal) is, for process.workload.labels:
   * a Map lookup on the hot path, and the labels object is shared by every
   * process of the workload. Unset: no labels.
   */
  workloadLabels: ((cgroupId: string) => Readonly<Record<string, string>> | undefined) | undefined;
  /** process.cap in what it builds (capability name lists: the largest part of a process) */
  withCaps = true;
  /** process.ns in what it builds */
  withNamespaces = true;

  constructor(
    readonly nodeName: string,
    private readonly cgroups: CgroupPaths,
    private readonly namespaces: NamespaceTable,
    /** realpath for script detection; replaceable so tests need no files */
    private readonly realpath?: (p: string) => string,
  ) {}

  execId(ktimeNs: bigint, pid: number): string {
    return makeExecId(this.nodeName, ktimeNs, pid);
  }

  /** The Process an exec record describes; `time` is the RFC 3339 of its ktime, computed once by the caller. */
  fromExec(rec: ExecRecord, parentExecId: string | undefined, time: string): Process {
    const deleted = rec.nlink === 0;
    const exe = resolveExecBinary(rec.path, rec.filename, rec.argv, rec.cwd, this.realpath);
    let binary = exe.binary;
    let interpreter = exe.interpreter;
    // /proc/PID/exe shows a deleted (or memfd) file this way; do the same so both sources agree
    if (deleted) {
      if (interpreter !== undefined) interpreter += DELETED;
      else binary += DELETED;
    }
    const setuid = (rec.flags & ExecFlags.SETUID) !== 0;
    const setgid = (rec.flags & ExecFlags.SETGID) !== 0;
    let props: BinaryProperties | undefined;
    if (setuid || setgid || deleted) {
      const changed: string[] = [];
      if (setuid) changed.push('PRIVILEGES_RAISED_EXEC_FILE_SETUID');
      if (setgid) changed.push('PRIVILEGES_RAISED_EXEC_FILE_SETGID');
      props = {
        setuid: setuid ? rec.euid : undefined,
        setgid: setgid ? rec.egid : undefined,
        privileges_changed: changed.length > 0 ? changed : undefined,
        file: deleted ? { inode: { number: rec.ino.toString(), links: rec.nlink } } : undefined,
      };
    }
    return {
      exec_id: this.execId(rec.ktime, rec.pid),
      pid: rec.pid,
      uid: rec.uid,
      cwd: rec.cwd,
      binary,
      arguments: joinArguments(rec.argv, exe.argsFrom),
      flags: execFlagsString(rec.flags),
      start_time: time,
      auid: rec.auid,
      parent_exec_id: parentExecId,
      cap: this.withCaps ? this.caps(rec.capPermitted, rec.capEffective, rec.capInheritable) : undefined,
      ns: this.withNamespaces ? this.namespaces.get(rec.ns) : undefined,
      tid: rec.tid,
      process_credentials: this.creds(rec),
      binary_properties: props,
      interpreter,
      ppid: rec.ppid,
      workload: this.workload(rec.cgroupId),
    };
  }

  /**
   * A child that forked and has not exec'd runs its parent's program: it
   * gets the parent's binary, arguments, cwd and credentials, flags "clone"
   * and an exec_id of its own (from its start time).
   */
  fromFork(rec: ForkRecord, parent: Process | undefined, parentExecId: string | undefined): Process {
    return {
      exec_id: this.execId(rec.startTime, rec.pid),
      pid: rec.pid,
      uid: parent?.uid ?? AUID_UNSET,
      cwd: parent?.cwd ?? '',
      binary: parent?.binary ?? '',
      arguments: parent?.arguments ?? '',
      flags: 'clone',
      start_time: ktimeToTime(rec.startTime),
      auid: parent?.auid ?? AUID_UNSET,
      parent_exec_id: parentExecId,
      cap: parent?.cap,
      ns: parent?.ns,
      tid: rec.tid,
      process_credentials: parent?.process_credentials,
      binary_properties: parent?.binary_properties,
      interpreter: parent?.interpreter,
      ppid: rec.ppid,
      workload: this.workload(rec.cgroupId),
    };
  }

  /**
   * An exit of a process the cache never saw (started before the agent and
   * missed by the seed, or its records were dropped): only what the exit
   * record carries, with flags "miss" and uid 4294967295 (unknown).
   */
  forUnknownExit(rec: ExitRecord, parentExecId: string | undefined): Process {
    return {
      exec_id: this.execId(rec.startTime, rec.pid),
      pid: rec.pid,
      uid: AUID_UNSET,
      cwd: '',
      binary: '',
      arguments: '',
      flags: 'miss',
      start_time: ktimeToTime(rec.startTime),
      auid: AUID_UNSET,
      parent_exec_id: parentExecId,
      cap: undefined,
      ns: undefined,
      tid: rec.tid,
      process_credentials: undefined,
      binary_properties: undefined,
      interpreter: undefined,
      ppid: rec.ppid,
      workload: this.workload(rec.cgroupId),
    };
  }

  /**
   * A process that was running before the agent, from /proc. Its exec_id
   * uses the start time /proc gives (clock ticks since boot, in ns), the
   * only start time there is for it. bootWallNs: wall-clock ns at boot.
   */
  fromProc(snap: ProcSnapshot, parentExecId: string | undefined, bootWallNs: bigint): Process {
    const binary = snap.exe !== '' ? snap.exe : (snap.argv[0] ?? '');
    return {
      exec_id: this.execId(snap.startBootNs, snap.pid),
      pid: snap.pid,
      uid: snap.uid,
      cwd: snap.cwd,
      binary,
      arguments: joinArguments(snap.argv, 1),
      flags: 'procFS',
      start_time: wallNsToTime(bootWallNs + snap.startBootNs),
      auid: snap.auid,
      parent_exec_id: parentExecId,
      cap: this.withCaps ? this.caps(snap.capPermitted, snap.capEffective, snap.capInheritable) : undefined,
      ns: this.withNamespaces ? this.namespaces.get(snap.ns) : undefined,
      tid: snap.pid,
      process_credentials: this.creds(snap),
      binary_properties: snap.exeInode
        ? { file: { inode: { number: snap.exeInode.number.toString(), links: snap.exeInode.links } } }
        : undefined,
      interpreter: undefined,
      ppid: snap.ppid,
      workload: this.workloadOfPath(snap.cgroupPath),
    };
  }

  workload(cgroupId: bigint): Workload {
    const path = this.cgroups.path(cgroupId);
    const labels = this.workloadLabels?.(cgroupId.toString());
    // the same while the cgroup keeps its path and its labels
    return this.workloads.get(
      cgroupId,
      () => {
        const w: Workload = { cgroup_id: cgroupId.toString(), cgroup_path: path };
        if (labels) w.labels = labels as Record<string, string>;
        return w;
      },
      (w) => w.cgroup_path === path && w.labels === labels,
    );
  }

  private workloadOfPath(rel: string | undefined): Workload | undefined {
    if (rel === undefined) return undefined;
    const w: Workload = { cgroup_id: this.cgroups.idOf(rel) ?? '', cgroup_path: rel };
    const labels = w.cgroup_id ? this.workloadLabels?.(w.cgroup_id) : undefined;
    if (labels) w.labels = labels as Record<string, string>;
    return w;
  }

  private caps(permitted: bigint, effective: bigint, inheritable: bigint): Capabilities {
    return this.capSets.get(`${permitted}:${effective}:${inheritable}`, () => ({
      permitted: this.capList(permitted),
      effective: this.capList(effective),
      inheritable: this.capList(inheritable),
    }));
  }

  private creds(c: Credentials): Credentials {
    return this.credentials.get(`${c.uid}:${c.gid}:${c.euid}:${c.egid}:${c.suid}:${c.sgid}`, () => ({
      uid: c.uid,
      gid: c.gid,
      euid: c.euid,
      egid: c.egid,
      suid: c.suid,
      sgid: c.sgid,
    }));
  }

  /** undefined for an empty set: protojson leaves empty lists out, and so do we. */
  private capList(mask: bigint): string[] | undefined {
    if (mask === 0n) return undefined;
    return this.capLists.get(mask, () => capNames(mask));
  }
}
